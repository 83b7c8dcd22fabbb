/*
 * hsm_ipc.h - the typed messages between the KMS (client) and its HSM
 * process, and their one codec.  Both sides build and parse messages only
 * through these functions; nothing else touches the wire bytes.
 *
 * Wire format (docs/kms-hsm.md, "Messages"): one SOCK_SEQPACKET datagram per
 * message, a 12-byte header then the payload, integers big-endian:
 *
 *   u16 type | u16 reserved (0) | u32 request id | u32 payload length | payload
 *
 * The header's length must equal the datagram length minus 12, and every
 * type has an EXACT payload size (or an exact size computed from its own
 * length fields): relayd's IMSG_SIZE_CHECK, but exact rather than minimum.
 * Anything else is LUNA_ERR_FORMAT, which the receiver treats as a fatal
 * protocol violation by its sibling.
 *
 * Parsed bodies are views into the caller's buffer (no copy, no
 * allocation); they live as long as that buffer.  Some payloads carry key
 * material (SEAL plaintext, OPENED plaintext, DATA_KEY): whoever owns the
 * buffer wipes it.  This module never logs.  Thread-safe (no state).
 */
#ifndef LUNA_KMS_HSM_IPC_H
#define LUNA_KMS_HSM_IPC_H

#include <stddef.h>
#include <stdint.h>

#include "luna/bytes.h"
#include "luna/err.h"

/* The HSM process finds its end of the socketpair at this descriptor. */
#define LUNA_HSM_IPC_FD 3

#define LUNA_HSM_HDR_LEN 12u
#define LUNA_HSM_KEY_LEN 32u     /* every generated key is AES-256 */
#define LUNA_HSM_WRAPPED_LEN 40u /* RFC 5649 wrap of a 32-byte key */
#define LUNA_HSM_NONCE_LEN 12u
#define LUNA_HSM_TAG_LEN 16u
#define LUNA_HSM_SEAL_OVERHEAD (LUNA_HSM_NONCE_LEN + LUNA_HSM_TAG_LEN)
#define LUNA_HSM_MAC_LEN 32u     /* HMAC-SHA256 */

/* Named caps: the HSM is for keys and small records, not bulk data. */
#define LUNA_HSM_AAD_MAX 1024u
#define LUNA_HSM_SEAL_MAX 4096u    /* plaintext of one SEAL */
#define LUNA_HSM_MAC_MSG_MAX 16384u /* one registry row */
#define LUNA_HSM_SEALED_KEY_LEN (LUNA_HSM_SEAL_OVERHEAD + LUNA_HSM_KEY_LEN)

/* Largest payload of any type (MAC_VERIFY at its cap) and whole message. */
#define LUNA_HSM_PAYLOAD_MAX (LUNA_HSM_MAC_LEN + 2u + LUNA_HSM_MAC_MSG_MAX)
#define LUNA_HSM_MSG_MAX (LUNA_HSM_HDR_LEN + LUNA_HSM_PAYLOAD_MAX)

/*
 * Message types.  Odd numbers >= 3 are requests (client -> HSM), the next
 * even number is that request's reply.  READY and ERROR go HSM -> client
 * only.  Numbers are part of the wire format: append, never renumber.
 */
typedef enum luna_hsm_msg_type {
    LUNA_HSM_MSG_READY = 1,        /* u32 err, u32 ck_rv; id 0, sent once at start */
    LUNA_HSM_MSG_ERROR = 2,        /* u32 err (!= 0), u32 ck_rv */
    LUNA_HSM_MSG_PING = 3,         /* empty */
    LUNA_HSM_MSG_PONG = 4,         /* empty */
    LUNA_HSM_MSG_CHECK_ROOT = 5,   /* empty */
    LUNA_HSM_MSG_ROOT_OK = 6,      /* empty */
    LUNA_HSM_MSG_GEN_KEK = 7,      /* empty */
    LUNA_HSM_MSG_KEK = 8,          /* wrapped[40] */
    LUNA_HSM_MSG_SEAL = 9,         /* wrapped[40] u16 aad_len aad u16 pt_len pt */
    LUNA_HSM_MSG_SEALED = 10,      /* nonce[12] ct[pt_len] tag[16] */
    LUNA_HSM_MSG_OPEN = 11,        /* wrapped[40] u16 aad_len aad u16 sealed_len sealed */
    LUNA_HSM_MSG_OPENED = 12,      /* pt[sealed_len - 28] */
    LUNA_HSM_MSG_GEN_DATA_KEY = 13,/* wrapped[40] u16 aad_len aad */
    LUNA_HSM_MSG_DATA_KEY = 14,    /* key[32] sealed[60] */
    LUNA_HSM_MSG_MAC_SIGN = 15,    /* u16 msg_len msg */
    LUNA_HSM_MSG_MAC = 16,         /* tag[32] */
    LUNA_HSM_MSG_MAC_VERIFY = 17,  /* tag[32] u16 msg_len msg */
    LUNA_HSM_MSG_MAC_OK = 18,      /* empty */
} luna_hsm_msg_type;

/* The header and a view of the payload of one received datagram. */
typedef struct luna_hsm_msg {
    uint16_t type;
    uint32_t id;
    const uint8_t *payload;
    size_t payload_len;
} luna_hsm_msg;

/*
 * Decoded payload fields; each type uses the ones its comment above names
 * (wrapped, aad, data = pt / sealed / msg / key+sealed, tag, err + rv).
 * Unused fields are NULL / 0.
 */
typedef struct luna_hsm_body {
    const uint8_t *wrapped; /* LUNA_HSM_WRAPPED_LEN bytes */
    const uint8_t *aad;
    size_t aad_len;
    const uint8_t *data;
    size_t data_len;
    const uint8_t *tag; /* LUNA_HSM_MAC_LEN bytes */
    uint32_t err;
    uint32_t rv;
} luna_hsm_body;

/*
 * Parses the header of a datagram of len bytes: reserved must be 0, the
 * length field must equal len - 12, len <= LUNA_HSM_MSG_MAX, the type must
 * be known.  Does not look at the payload.
 */
luna_err luna_hsm_msg_parse(const uint8_t *buf, size_t len, luna_hsm_msg *out) LUNA_MUST_CHECK;

/*
 * Parses msg's payload by its type with the exact size rule of that type,
 * every length field within its cap and consistent with the total.
 * LUNA_ERR_FORMAT on any mismatch (including an ERROR whose err is 0 or
 * not a known code, a READY whose err is unknown).
 */
luna_err luna_hsm_body_parse(const luna_hsm_msg *msg, luna_hsm_body *out) LUNA_MUST_CHECK;

/*
 * Builds one whole message (header + payload of type from body) into w.
 * Refuses fields over their caps (LUNA_ERR_TOO_LARGE), missing pointers
 * (LUNA_ERR_INVALID_ARG) and sizes the parser would refuse, so a correct
 * peer never builds what the other side treats as fatal.
 */
luna_err luna_hsm_msg_build(luna_wbuf *w, luna_hsm_msg_type type, uint32_t id,
                            const luna_hsm_body *body) LUNA_MUST_CHECK;

/* True for the request types the HSM process serves. */
int luna_hsm_msg_is_request(uint16_t type);

#endif
