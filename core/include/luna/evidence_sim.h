/*
 * luna/evidence_sim.h - the SIMULATED TEE platform's evidence: its
 * byte-exact format (docs/evidence-sim.md), the parser the sim verifier
 * backend uses, and the builders the sim platform process and the tests
 * use: a simulated vendor root, platform certificates, signed evidence and
 * the signed TCB status document.
 *
 * INSECURE BY DESIGN.  Sim evidence proves nothing about hardware: the
 * "vendor" is whoever holds the root key.  Its root certificate says
 * "SIMULATED - INSECURE" in its subject, a production policy refuses both
 * the root and the evidence, and every report of sim evidence says it is
 * simulated (development only).
 *
 * Ownership.  luna_sim_vendor and luna_sim_platform own their private keys
 * (wiped on free).  Parsed structs hold views into the caller's buffer:
 * valid only while it is.  Thread safety: an object may sign from several
 * threads at once; nothing here keeps global state or logs.
 */
#ifndef LUNA_EVIDENCE_SIM_H
#define LUNA_EVIDENCE_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "luna/err.h"
#include "luna/verifier.h"

/* ---- evidence format (version 1) ---- */
#define LUNA_SIM_MAGIC "LUNASIM1"
#define LUNA_SIM_MAGIC_LEN 8
#define LUNA_SIM_VERSION 1
#define LUNA_SIM_FLAG_DEBUG 0x0001u
#define LUNA_SIM_FLAG_SIGN_KEY 0x0002u /* the Ed25519 key field is present */
#define LUNA_SIM_FLAGS_KNOWN (LUNA_SIM_FLAG_DEBUG | LUNA_SIM_FLAG_SIGN_KEY)
#define LUNA_SIM_HEADER_LEN 284        /* bytes before the certificate */
#define LUNA_SIM_SIG_LEN 64
#define LUNA_SIM_CERT_MAX 2048
#define LUNA_SIM_EVIDENCE_MAX (LUNA_SIM_HEADER_LEN + LUNA_SIM_CERT_MAX + LUNA_SIM_SIG_LEN)
#define LUNA_SIM_FIELD_LEN 32

typedef enum luna_sim_sig_alg {
    LUNA_SIM_SIG_ED25519 = 1,
    LUNA_SIM_SIG_P256 = 2, /* ECDSA P-256 SHA-256, raw r || s */
} luna_sim_sig_alg;

typedef struct luna_sim_evidence {
    uint16_t version;
    uint16_t flags;
    uint16_t sig_alg;
    uint32_t tcb_level;
    uint64_t timestamp;
    const uint8_t *measurement;   /* 32 bytes each */
    const uint8_t *signer;
    const uint8_t *tee_x25519;
    const uint8_t *tee_ed25519;   /* all zero unless LUNA_SIM_FLAG_SIGN_KEY */
    const uint8_t *nonce;
    const uint8_t *report_data;   /* LUNA_CLAIM_REPORT_DATA_LEN bytes */
    const uint8_t *memory_digest;
    const uint8_t *cert;          /* platform certificate, DER */
    size_t cert_len;
    const uint8_t *signed_part;   /* everything the signature covers */
    size_t signed_len;
    const uint8_t *sig;           /* LUNA_SIM_SIG_LEN bytes */
} luna_sim_evidence;

/*
 * Parses buf strictly (no crypto).  LUNA_OK, or LUNA_ERR_FORMAT /
 * LUNA_ERR_UNSUPPORTED with *why (may be NULL) set to MALFORMED,
 * UNSUPPORTED_VERSION or RESERVED_BITS.  Refuses: bad magic, version != 1,
 * unknown flags, unknown sig_alg, a non-zero Ed25519 field without its
 * flag, a certificate of 0 or over LUNA_SIM_CERT_MAX bytes, truncation and
 * trailing bytes.
 */
luna_err luna_sim_evidence_parse(const uint8_t *buf, size_t len, luna_sim_evidence *out,
                                 luna_verify_reason *why) LUNA_MUST_CHECK;

/* ---- TCB status collateral (version 1) ---- */
#define LUNA_SIM_TCB_MAGIC "LUNATCB1"
#define LUNA_SIM_TCB_VERSION 1
#define LUNA_SIM_TCB_MAX_REVOKED 256
#define LUNA_SIM_TCB_MAX (40 + LUNA_SIM_TCB_MAX_REVOKED * (1 + LUNA_CLAIM_SERIAL_MAX) + 64)

typedef struct luna_sim_tcb {
    uint32_t current_level;  /* levels >= are up to date */
    uint32_t revoked_below;  /* levels < are revoked; between: out of date */
    uint64_t issued_at;
    uint64_t next_update;
    size_t n_revoked;
    const uint8_t *revoked;  /* n_revoked entries: len u8 || serial, packed */
    size_t revoked_len;
    const uint8_t *signed_part;
    size_t signed_len;
    const uint8_t *sig;      /* 64 bytes, ECDSA P-256 r || s by the vendor root */
} luna_sim_tcb;

/* Parses a TCB status document strictly (no signature check). */
luna_err luna_sim_tcb_parse(const uint8_t *buf, size_t len, luna_sim_tcb *out) LUNA_MUST_CHECK;
/* True when serial is in the document's revoked list. */
bool luna_sim_tcb_is_revoked(const luna_sim_tcb *t, const uint8_t *serial, size_t serial_len);

/* ---- builders ---- */

typedef struct luna_sim_vendor luna_sim_vendor;

/*
 * A new simulated vendor root: P-256 key, self-signed X.509 v3,
 * subject "O=Lunal SIMULATED - INSECURE, CN=Lunal Sim Vendor Root - SIMULATED - INSECURE",
 * CA:TRUE pathlen:0, keyCertSign+cRLSign, valid from not_before to
 * not_after (Unix seconds).
 */
luna_err luna_sim_vendor_create(int64_t not_before, int64_t not_after,
                                luna_sim_vendor **out) LUNA_MUST_CHECK;
/* From a loaded root (takes both on success only; the key must match). */
luna_err luna_sim_vendor_from_parts(X509 *cert, EVP_PKEY *key,
                                    luna_sim_vendor **out) LUNA_MUST_CHECK;
X509 *luna_sim_vendor_cert(const luna_sim_vendor *v); /* borrowed */
EVP_PKEY *luna_sim_vendor_key(const luna_sim_vendor *v); /* borrowed, for saving */
void luna_sim_vendor_free(luna_sim_vendor *v);

typedef struct luna_sim_platform luna_sim_platform;

/*
 * A new platform key of alg, certified by vendor: X.509 v3, 16-byte random
 * serial, CA:FALSE, digitalSignature, valid not_before..not_after.
 */
luna_err luna_sim_platform_create(const luna_sim_vendor *vendor, luna_sim_sig_alg alg,
                                  int64_t not_before, int64_t not_after,
                                  luna_sim_platform **out) LUNA_MUST_CHECK;
/* The certificate serial (up to LUNA_CLAIM_SERIAL_MAX bytes). */
luna_err luna_sim_platform_serial(const luna_sim_platform *p, uint8_t *out, size_t cap,
                                  size_t *out_len) LUNA_MUST_CHECK;
void luna_sim_platform_free(luna_sim_platform *p);

typedef struct luna_sim_evidence_params {
    uint32_t tcb_level;
    bool debug;
    uint8_t measurement[LUNA_SIM_FIELD_LEN];
    uint8_t signer[LUNA_SIM_FIELD_LEN];
    uint8_t tee_x25519[LUNA_SIM_FIELD_LEN];
    bool has_tee_ed25519;
    uint8_t tee_ed25519[LUNA_SIM_FIELD_LEN];
    uint8_t nonce[LUNA_SIM_FIELD_LEN];
    uint8_t memory_digest[LUNA_SIM_FIELD_LEN];
    int64_t timestamp; /* >= 0 */
    /* NULL: the binding of (nonce, keys) per luna_verifier_binding();
       otherwise these 64 bytes (tests forge unbound evidence with it). */
    const uint8_t *report_data;
} luna_sim_evidence_params;

/*
 * Writes signed evidence into out (cap >= LUNA_SIM_EVIDENCE_MAX always
 * suffices); *out_len gets its length.
 */
luna_err luna_sim_evidence_sign(const luna_sim_platform *p, const luna_sim_evidence_params *params,
                                uint8_t *out, size_t cap, size_t *out_len) LUNA_MUST_CHECK;

typedef struct luna_sim_tcb_params {
    uint32_t current_level;
    uint32_t revoked_below; /* <= current_level */
    int64_t issued_at;
    int64_t next_update;    /* > issued_at */
    const uint8_t *const *revoked; /* serials, n_revoked of them */
    const size_t *revoked_lens;    /* each 1..LUNA_CLAIM_SERIAL_MAX */
    size_t n_revoked;              /* <= LUNA_SIM_TCB_MAX_REVOKED */
} luna_sim_tcb_params;

/* Writes a TCB status document signed by the vendor root (cap >= LUNA_SIM_TCB_MAX). */
luna_err luna_sim_tcb_sign(const luna_sim_vendor *vendor, const luna_sim_tcb_params *params,
                           uint8_t *out, size_t cap, size_t *out_len) LUNA_MUST_CHECK;

#endif
