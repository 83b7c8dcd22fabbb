/*
 * ipc.h - the messages between the SIMULATED platform (luna-tee-host) and
 * the TEE runtimes it starts, over a private SOCK_SEQPACKET socketpair
 * (one message per datagram).  Byte-exact format in docs/tee.md, "Host <->
 * runtime messages".
 *
 * Every message is 8 header bytes (u8 version = 1, u8 type, u16 reserved
 * = 0, u32 body_len = the bytes that follow, exactly) and a typed body;
 * integers big-endian.  The decoder is strict: unknown version or type,
 * non-zero reserved bits, a length field that disagrees with the datagram,
 * a field over its cap, truncation and trailing bytes are all refused.
 * Decoded messages hold views into the caller's buffer.
 * Thread safety: no state.  Nothing here logs.
 */
#ifndef LUNA_TEE_IPC_H
#define LUNA_TEE_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "luna/bytes.h"
#include "luna/err.h"

#define LUNA_TEE_IPC_VERSION 1
#define LUNA_TEE_IPC_HEADER_LEN 8
#define LUNA_TEE_IPC_MAX (72u * 1024u) /* whole datagram */
#define LUNA_TEE_IPC_CONFIG_MAX (64u * 1024u)
#define LUNA_TEE_IPC_ID_MAX 64
#define LUNA_TEE_IPC_EVIDENCE_MAX (8u * 1024u)
#define LUNA_TEE_IPC_SPKI_MAX 512u
#define LUNA_TEE_IPC_CERT_MAX (16u * 1024u)
#define LUNA_TEE_IPC_REPORT_MAX (16u * 1024u)
#define LUNA_TEE_IPC_ARENA_MAX (16u * 1024u * 1024u) /* memory-state region */
#define LUNA_TEE_KEY_LEN 32
#define LUNA_TEE_MR_LEN 32

typedef enum luna_tee_msg_type {
    LUNA_TEE_MSG_CONFIG = 1,       /* host -> runtime: tee id + measured config */
    LUNA_TEE_MSG_LOADED = 2,       /* runtime -> host: where the bundle is mapped */
    LUNA_TEE_MSG_MEASURED = 3,     /* host -> runtime: mr_enclave, mr_signer */
    LUNA_TEE_MSG_EVIDENCE_REQ = 4, /* runtime -> host: nonce, keys, memory region */
    LUNA_TEE_MSG_EVIDENCE = 5,     /* host -> runtime: status + evidence */
    LUNA_TEE_MSG_ADMIT_REQ = 6,    /* runtime -> host: keys, TLS SPKI, region, port */
    LUNA_TEE_MSG_ADMITTED = 7,     /* host -> runtime: status + certificate + report */
} luna_tee_msg_type;
#define LUNA_TEE_MSG_TYPE_MAX 7

typedef struct luna_tee_msg {
    uint8_t type;
    /* CONFIG */
    const uint8_t *tee_id; /* 1..LUNA_TEE_IPC_ID_MAX bytes of [a-z0-9_-] */
    size_t tee_id_len;
    const uint8_t *config; /* 1..LUNA_TEE_IPC_CONFIG_MAX bytes */
    size_t config_len;
    /* LOADED */
    uint64_t bundle_addr;  /* start of the bundle's first mapping */
    /* MEASURED, EVIDENCE: a luna_err from the host (0 = ok) */
    uint16_t status;
    const uint8_t *mr_enclave; /* LUNA_TEE_MR_LEN */
    const uint8_t *mr_signer;  /* LUNA_TEE_MR_LEN */
    /* EVIDENCE_REQ (nonce too), ADMIT_REQ (the rest) */
    const uint8_t *nonce;   /* LUNA_TEE_KEY_LEN */
    const uint8_t *x25519;  /* LUNA_TEE_KEY_LEN */
    const uint8_t *ed25519; /* LUNA_TEE_KEY_LEN */
    uint64_t arena_addr;
    uint64_t arena_len;     /* 1..LUNA_TEE_IPC_ARENA_MAX */
    const uint8_t *spki;    /* ADMIT_REQ: 1..LUNA_TEE_IPC_SPKI_MAX bytes of DER */
    size_t spki_len;
    uint16_t port;          /* ADMIT_REQ: the runtime's listening port, >= 1 */
    /* EVIDENCE */
    const uint8_t *evidence; /* 0 bytes when status != 0 */
    size_t evidence_len;
    /* ADMITTED: both present exactly when status == 0 */
    const uint8_t *cert;     /* PEM, 1..LUNA_TEE_IPC_CERT_MAX */
    size_t cert_len;
    const uint8_t *report;   /* JWS, 1..LUNA_TEE_IPC_REPORT_MAX */
    size_t report_len;
} luna_tee_msg;

/* Strict decode of one whole datagram (see the header comment). */
luna_err luna_tee_ipc_decode(const uint8_t *buf, size_t len, luna_tee_msg *out) LUNA_MUST_CHECK;

/*
 * Encodes m (the fields its type uses) into out, which must have room for
 * LUNA_TEE_IPC_MAX bytes.  LUNA_ERR_INVALID_ARG for a field outside its
 * rules (so the encoder never writes what the decoder refuses).
 */
luna_err luna_tee_ipc_encode(const luna_tee_msg *m, luna_wbuf *out) LUNA_MUST_CHECK;

/* Sends one message on a SOCK_SEQPACKET fd (LUNA_ERR_IO on failure). */
luna_err luna_tee_ipc_send(int fd, const luna_tee_msg *m) LUNA_MUST_CHECK;
/*
 * Receives one datagram into buf (cap >= LUNA_TEE_IPC_MAX) and decodes it.
 * LUNA_ERR_UNAVAILABLE when the peer closed, LUNA_ERR_TOO_LARGE for a
 * datagram over cap, LUNA_ERR_TIMEOUT after timeout_ms (< 0: wait forever).
 */
luna_err luna_tee_ipc_recv(int fd, uint8_t *buf, size_t cap, int timeout_ms,
                           luna_tee_msg *out) LUNA_MUST_CHECK;

#endif
