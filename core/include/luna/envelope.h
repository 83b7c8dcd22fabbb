/*
 * luna/envelope.h - the platform's double envelope (docs/envelope.md is
 * the byte-exact spec).
 *
 * Request (client -> TEE): inner layer = HPKE auth mode (DHKEM(X25519,
 * HKDF-SHA256), HKDF-SHA256, AES-256-GCM) from the client's static X25519
 * key to the TEE's attested X25519 key, info binding the header's version,
 * type, suites, tenant, job, TEE id and request id; outer layer =
 * AES-256-GCM under HKDF-SHA256(OTK, client public key), AAD = the whole
 * header.  Both layers also take the whole header as AAD.
 * Result (TEE -> client): the same format with type 2, HPKE auth from the
 * TEE's key to the client's key, the outer key derived from the same OTK
 * under the result type, and a receipt signed with the TEE's Ed25519 key
 * inside the inner layer.
 *
 * Memory: sealing writes straight into the caller's luna_wbuf (one copy of
 * the plaintext, both AEAD passes in place); opening decrypts in place
 * inside the caller's buffer and returns pointers into it.  A failed open
 * may leave the body wiped: keep a copy if you need to retry.
 * Errors: LUNA_ERR_FORMAT malformed (truncated, trailing bytes, bad id),
 * LUNA_ERR_UNSUPPORTED unknown version/type/suite, LUNA_ERR_TOO_LARGE over
 * a cap, LUNA_ERR_VERIFY any authentication failure (either layer, wrong
 * key, wrong TEE id, receipt signature or mismatch), LUNA_ERR_INVALID_ARG.
 * All functions are thread-safe (no shared state).  Nothing here logs.
 */
#ifndef LUNA_ENVELOPE_H
#define LUNA_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "luna/bytes.h"
#include "luna/err.h"

#define LUNA_ENVELOPE_VERSION 1
#define LUNA_ENVELOPE_TYPE_REQUEST 1
#define LUNA_ENVELOPE_TYPE_RESULT 2
/* Ids are 1..64 bytes of printable ASCII without space (0x21..0x7e). */
#define LUNA_ENVELOPE_MAX_ID_LEN 64
#define LUNA_ENVELOPE_KEY_LEN 32   /* X25519 keys and the OTK */
#define LUNA_ENVELOPE_NONCE_LEN 12 /* outer AES-256-GCM nonce */
#define LUNA_ENVELOPE_TAG_LEN 16
/* Request plaintext and result data cap. */
#define LUNA_ENVELOPE_MAX_PAYLOAD (64u * 1024u * 1024u)
/* Body cap: payload + room for a receipt + both tags. */
#define LUNA_ENVELOPE_MAX_BODY (LUNA_ENVELOPE_MAX_PAYLOAD + 1024u + 2u * LUNA_ENVELOPE_TAG_LEN)
/* Fixed part of a header (everything but the four id strings). */
#define LUNA_ENVELOPE_FIXED_HEADER_LEN (14 + 4 + 32 + 32 + 12 + 4)
#define LUNA_ENVELOPE_MAX_HEADER_LEN (LUNA_ENVELOPE_FIXED_HEADER_LEN + 4 * LUNA_ENVELOPE_MAX_ID_LEN)
#define LUNA_RECEIPT_MAX_MEASUREMENT_LEN 64

/* NUL-terminated ids; each checked against the rules above. */
typedef struct luna_envelope_ids {
    const char *tenant;
    const char *job;
    const char *tee_id;
    const char *request_id;
} luna_envelope_ids;

/* A parsed header; ids are copied and NUL-terminated. */
typedef struct luna_envelope_header {
    uint8_t version;
    uint8_t type;
    uint16_t kem_id, kdf_id, aead_id, outer_aead_id;
    char tenant[LUNA_ENVELOPE_MAX_ID_LEN + 1];
    char job[LUNA_ENVELOPE_MAX_ID_LEN + 1];
    char tee_id[LUNA_ENVELOPE_MAX_ID_LEN + 1];
    char request_id[LUNA_ENVELOPE_MAX_ID_LEN + 1];
    uint8_t client_pk[LUNA_ENVELOPE_KEY_LEN];
    uint8_t enc[LUNA_ENVELOPE_KEY_LEN];
    uint8_t outer_nonce[LUNA_ENVELOPE_NONCE_LEN];
    uint32_t body_len;
    size_t header_len; /* bytes before the body (the AAD of both layers) */
} luna_envelope_header;

/*
 * Parses and checks the header of a whole envelope: magic, version, type,
 * suites, id rules, and body_len == the bytes left (no truncation, no
 * trailing bytes).  Authenticates nothing: use the open functions.
 */
luna_err luna_envelope_parse_header(const uint8_t *env, size_t env_len,
                                    luna_envelope_header *h) LUNA_MUST_CHECK;

/* ---- requests (client -> TEE) ---- */

typedef struct luna_envelope_seal_params {
    luna_envelope_ids ids;
    const uint8_t *client_sk; /* client's static X25519 private key (32) */
    const uint8_t *tee_pk;    /* TEE's attested X25519 public key (32) */
    const uint8_t *otk;       /* KMS one-time key (32) */
    /* Deterministic fixtures only; NULL (always in production) = random. */
    const uint8_t *fixed_ephemeral_sk;
    const uint8_t *fixed_outer_nonce;
} luna_envelope_seal_params;

/* Size of the sealed request for these ids and pt_len bytes. */
luna_err luna_envelope_sealed_len(const luna_envelope_ids *ids, size_t pt_len,
                                  size_t *out_len) LUNA_MUST_CHECK;
/* Appends the envelope to out; pt_len <= LUNA_ENVELOPE_MAX_PAYLOAD. */
luna_err luna_envelope_seal(const luna_envelope_seal_params *p, const uint8_t *pt, size_t pt_len,
                            luna_wbuf *out) LUNA_MUST_CHECK;

/*
 * Outer layer only (what the OTK alone gives): parses env, checks the type
 * and that the header's client key is client_pk (the key the KMS bound the
 * OTK to), derives the outer key from otk and client_pk and decrypts the
 * body in place.  *inner points into env at the inner HPKE ciphertext
 * (*inner_len = body_len - 16 bytes).
 */
luna_err luna_envelope_open_outer(uint8_t *env, size_t env_len, uint8_t type,
                                  const uint8_t otk[LUNA_ENVELOPE_KEY_LEN],
                                  const uint8_t client_pk[LUNA_ENVELOPE_KEY_LEN],
                                  luna_envelope_header *h, uint8_t **inner,
                                  size_t *inner_len) LUNA_MUST_CHECK;
/*
 * Inner layer only, given the header and the output of open_outer:
 * HPKE auth open in place with the recipient's private key and the
 * sender's public key.  *pt points into inner.
 */
luna_err luna_envelope_open_inner(const luna_envelope_header *h, uint8_t *inner, size_t inner_len,
                                  const uint8_t recipient_sk[LUNA_ENVELOPE_KEY_LEN],
                                  const uint8_t sender_pk[LUNA_ENVELOPE_KEY_LEN], uint8_t **pt,
                                  size_t *pt_len) LUNA_MUST_CHECK;

typedef struct luna_envelope_open_params {
    const char *tee_id;    /* this TEE's id: an envelope for another TEE is refused */
    /*
     * What the KMS's release answer says this one-time key was issued for
     * (docs/protocol.md).  The header's ids are the client's claim,
     * authenticated only by the client's own key; these bind them to what
     * IAM and the KMS approved.  All three required.
     */
    const char *tenant;
    const char *job;
    const char *request_id;
    const uint8_t *tee_sk; /* this TEE's X25519 private key (32) */
    const uint8_t *otk;    /* the one-time key the KMS released (32) */
    const uint8_t *client_pk; /* the client key the KMS bound that OTK to (32) */
} luna_envelope_open_params;

/*
 * TEE side: both layers, in place.  Refuses (LUNA_ERR_VERIFY, before any
 * decryption) a header whose tee id, tenant, job or request id differs from
 * the params.  The caller still checks the request id for reuse.
 */
luna_err luna_envelope_open(uint8_t *env, size_t env_len, const luna_envelope_open_params *p,
                            luna_envelope_header *h, uint8_t **pt,
                            size_t *pt_len) LUNA_MUST_CHECK;

/* ---- results (TEE -> client) ---- */

typedef struct luna_receipt {
    char tenant[LUNA_ENVELOPE_MAX_ID_LEN + 1];
    char job[LUNA_ENVELOPE_MAX_ID_LEN + 1];
    char tee_id[LUNA_ENVELOPE_MAX_ID_LEN + 1];
    char request_id[LUNA_ENVELOPE_MAX_ID_LEN + 1];
    uint8_t measurement[LUNA_RECEIPT_MAX_MEASUREMENT_LEN];
    size_t measurement_len;
    uint8_t client_pk[LUNA_ENVELOPE_KEY_LEN];
    uint8_t result_hash[32]; /* SHA-256 of the result data */
    uint8_t signature[64];   /* Ed25519 */
} luna_receipt;

typedef struct luna_result_seal_params {
    luna_envelope_ids ids;      /* those of the request being answered */
    const uint8_t *tee_sk;      /* TEE's X25519 private key (HPKE sender) */
    const uint8_t *client_pk;   /* the request's client key (recipient) */
    const uint8_t *otk;         /* the request's one-time key */
    const uint8_t *sign_seed;   /* TEE's Ed25519 signing seed (32) */
    const uint8_t *measurement; /* 1..64 bytes */
    size_t measurement_len;
    const uint8_t *fixed_ephemeral_sk; /* fixtures only; NULL = random */
    const uint8_t *fixed_outer_nonce;
} luna_result_seal_params;

luna_err luna_result_sealed_len(const luna_envelope_ids *ids, size_t measurement_len,
                                size_t result_len, size_t *out_len) LUNA_MUST_CHECK;
/* Appends the result envelope to out; result_len <= LUNA_ENVELOPE_MAX_PAYLOAD. */
luna_err luna_result_seal(const luna_result_seal_params *p, const uint8_t *result,
                          size_t result_len, luna_wbuf *out) LUNA_MUST_CHECK;

typedef struct luna_result_open_params {
    luna_envelope_ids expected;   /* the ids of the request the client sent */
    const uint8_t *client_sk;     /* (32) */
    const uint8_t *tee_pk;        /* the attested X25519 key of the TEE (32) */
    const uint8_t *tee_sign_pk;   /* the TEE's Ed25519 public key (32) */
    const uint8_t *otk;           /* (32) */
    const uint8_t *expected_measurement; /* optional (NULL): checked when given */
    size_t expected_measurement_len;
} luna_result_open_params;

/*
 * Client side: both layers in place, then the receipt: its signature, its
 * ids and the header's against p->expected, its client key, the result
 * hash, and the measurement when expected.  *result points into env.
 */
luna_err luna_result_open(uint8_t *env, size_t env_len, const luna_result_open_params *p,
                          luna_receipt *receipt, uint8_t **result,
                          size_t *result_len) LUNA_MUST_CHECK;

#endif
