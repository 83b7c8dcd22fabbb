/*
 * verifier_nitro.c - the AWS Nitro Enclaves backend of the evidence
 * verifier: the attestation document (COSE_Sign1, RFC 9052, ES384) whose
 * payload is the NSM document CBOR map (module_id, digest, timestamp,
 * pcrs, certificate, cabundle, public_key, user_data, nonce), its
 * signature by the leaf certificate, and the leaf's chain through the
 * cabundle to the pinned AWS Nitro root.
 *
 * It must never decide policy, never accept a COSE header or document
 * field it does not know, and never trust the cabundle's root: only the
 * policy's anchors, compared whole.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "luna/bytes.h"
#include "luna/cbor.h"
#include "luna/crypto.h"
#include "luna/pki.h"
#include "verifier_hw.h"
#include "verifier_internal.h"

#define NITRO_SIG_LEN 96 /* P-384 r || s */
#define NITRO_PCR_LEN 48 /* SHA-384 */
#define NITRO_MAX_PCRS 32
#define NITRO_MAX_CABUNDLE 8
#define NITRO_FIELD_MAX 1024 /* public_key, user_data, nonce (NSM API limit) */
#define COSE_ALG_ES384 (-35)
#define COSE_TAG_SIGN1 18

typedef struct nitro_state {
    const uint8_t *protected_hdr; /* views into the caller's evidence, */
    size_t protected_len;         /* valid for the verification */
    const uint8_t *payload;
    size_t payload_len;
    uint8_t sig[NITRO_SIG_LEN];
    uint64_t timestamp_ms;
    uint8_t pcrs[NITRO_MAX_PCRS][NITRO_PCR_LEN];
    uint32_t pcr_present; /* bit per index */
    const uint8_t *cert;
    size_t cert_len;
    const uint8_t *cabundle[NITRO_MAX_CABUNDLE];
    size_t cabundle_len[NITRO_MAX_CABUNDLE];
    size_t n_cabundle;
    const uint8_t *public_key, *user_data, *nonce; /* NULL: absent or null */
    size_t public_key_len, user_data_len, nonce_len;
    /* Set by nitro_verify. */
    uint8_t serial[LUNA_CLAIM_SERIAL_MAX];
    size_t serial_len;
} nitro_state;

/* ---- parse ---- */

static luna_verify_reason fail(const char **why, const char *msg, luna_verify_reason r)
{
    *why = msg;
    return r;
}

static luna_err read_bytes(luna_reader *r, const uint8_t **p, size_t *n)
{
    luna_cbor_item it;
    LUNA_GUARD(luna_cbor_read(r, &it));
    LUNA_ENSURE(it.major == LUNA_CBOR_BYTES, LUNA_ERR_FORMAT);
    *p = it.data;
    *n = (size_t)it.arg;
    return LUNA_OK;
}

/* A bytes field that may be null. */
static luna_err read_opt_bytes(luna_reader *r, const uint8_t **p, size_t *n)
{
    luna_cbor_item it;
    LUNA_GUARD(luna_cbor_read(r, &it));
    if (it.major == LUNA_CBOR_SIMPLE && it.arg == LUNA_CBOR_NULL) {
        *p = NULL;
        *n = 0;
        return LUNA_OK;
    }
    LUNA_ENSURE(it.major == LUNA_CBOR_BYTES && it.arg <= NITRO_FIELD_MAX, LUNA_ERR_FORMAT);
    *p = it.data;
    *n = (size_t)it.arg;
    return LUNA_OK;
}

/* The protected header must be exactly {1: -35} (alg ES384). */
static luna_verify_reason parse_protected(const uint8_t *p, size_t n, const char **why)
{
    luna_reader r;
    luna_cbor_item it;
    luna_reader_init(&r, p, n);
    if (luna_cbor_read(&r, &it) != LUNA_OK || it.major != LUNA_CBOR_MAP)
        return fail(why, "COSE protected header is not a map", LUNA_VERIFY_MALFORMED);
    if (it.arg != 1)
        return fail(why, "COSE protected header has fields other than alg",
                    LUNA_VERIFY_UNSUPPORTED_VERSION);
    if (luna_cbor_read(&r, &it) != LUNA_OK || it.major != LUNA_CBOR_UINT || it.arg != 1)
        return fail(why, "COSE protected header has fields other than alg",
                    LUNA_VERIFY_UNSUPPORTED_VERSION);
    if (luna_cbor_read(&r, &it) != LUNA_OK || it.major != LUNA_CBOR_NEGINT ||
        it.arg != (uint64_t)(-1 - COSE_ALG_ES384) || luna_read_end(&r) != LUNA_OK)
        return fail(why, "COSE algorithm is not ES384", LUNA_VERIFY_UNSUPPORTED_VERSION);
    return LUNA_VERIFY_OK;
}

static luna_err parse_pcrs(luna_reader *r, nitro_state *s)
{
    luna_cbor_item it;
    LUNA_GUARD(luna_cbor_read(r, &it));
    LUNA_ENSURE(it.major == LUNA_CBOR_MAP && it.arg >= 1 && it.arg <= NITRO_MAX_PCRS,
                LUNA_ERR_FORMAT);
    for (uint64_t i = 0, n = it.arg; i < n; i++) {
        const uint8_t *v = NULL;
        size_t len = 0;
        LUNA_GUARD(luna_cbor_read(r, &it));
        LUNA_ENSURE(it.major == LUNA_CBOR_UINT && it.arg < NITRO_MAX_PCRS, LUNA_ERR_FORMAT);
        const uint32_t bit = 1u << it.arg;
        LUNA_ENSURE((s->pcr_present & bit) == 0, LUNA_ERR_FORMAT);
        LUNA_GUARD(read_bytes(r, &v, &len));
        LUNA_ENSURE(len == NITRO_PCR_LEN, LUNA_ERR_FORMAT);
        memcpy(s->pcrs[it.arg], v, NITRO_PCR_LEN);
        s->pcr_present |= bit;
    }
    return LUNA_OK;
}

static luna_err parse_cabundle(luna_reader *r, nitro_state *s)
{
    luna_cbor_item it;
    LUNA_GUARD(luna_cbor_read(r, &it));
    LUNA_ENSURE(it.major == LUNA_CBOR_ARRAY && it.arg >= 1 && it.arg <= NITRO_MAX_CABUNDLE,
                LUNA_ERR_FORMAT);
    s->n_cabundle = (size_t)it.arg;
    for (size_t i = 0; i < s->n_cabundle; i++) {
        LUNA_GUARD(read_bytes(r, &s->cabundle[i], &s->cabundle_len[i]));
        LUNA_ENSURE(s->cabundle_len[i] > 0, LUNA_ERR_FORMAT);
    }
    return LUNA_OK;
}

enum {
    F_MODULE = 1u << 0,
    F_DIGEST = 1u << 1,
    F_TIMESTAMP = 1u << 2,
    F_PCRS = 1u << 3,
    F_CERT = 1u << 4,
    F_CABUNDLE = 1u << 5,
    F_PUBKEY = 1u << 6,
    F_USERDATA = 1u << 7,
    F_NONCE = 1u << 8,
    F_REQUIRED = F_MODULE | F_DIGEST | F_TIMESTAMP | F_PCRS | F_CERT | F_CABUNDLE,
};

static luna_verify_reason parse_document(nitro_state *s, const char **why)
{
    luna_reader r;
    luna_cbor_item it;
    unsigned seen = 0;

    *why = "malformed Nitro attestation document";
    luna_reader_init(&r, s->payload, s->payload_len);
    if (luna_cbor_read(&r, &it) != LUNA_OK || it.major != LUNA_CBOR_MAP || it.arg > 16)
        return LUNA_VERIFY_MALFORMED;
    for (uint64_t i = 0, n = it.arg; i < n; i++) {
        luna_cbor_item key, v;
        unsigned f = 0;
        luna_err e = LUNA_OK;
        if (luna_cbor_read(&r, &key) != LUNA_OK || key.major != LUNA_CBOR_TEXT)
            return LUNA_VERIFY_MALFORMED;
        if (luna_cbor_text_is(&key, "module_id")) {
            f = F_MODULE;
            e = luna_cbor_read(&r, &v);
            if (e == LUNA_OK && (v.major != LUNA_CBOR_TEXT || v.arg == 0))
                e = LUNA_ERR_FORMAT;
        } else if (luna_cbor_text_is(&key, "digest")) {
            f = F_DIGEST;
            e = luna_cbor_read(&r, &v);
            if (e == LUNA_OK && !luna_cbor_text_is(&v, "SHA384")) {
                *why = "Nitro document digest is not SHA384";
                return LUNA_VERIFY_UNSUPPORTED_VERSION;
            }
        } else if (luna_cbor_text_is(&key, "timestamp")) {
            f = F_TIMESTAMP;
            e = luna_cbor_read(&r, &v);
            if (e == LUNA_OK && (v.major != LUNA_CBOR_UINT || v.arg == 0 ||
                                 v.arg > (uint64_t)INT64_MAX / 2))
                e = LUNA_ERR_FORMAT;
            s->timestamp_ms = v.arg;
        } else if (luna_cbor_text_is(&key, "pcrs")) {
            f = F_PCRS;
            e = parse_pcrs(&r, s);
        } else if (luna_cbor_text_is(&key, "certificate")) {
            f = F_CERT;
            e = read_bytes(&r, &s->cert, &s->cert_len);
            if (e == LUNA_OK && s->cert_len == 0)
                e = LUNA_ERR_FORMAT;
        } else if (luna_cbor_text_is(&key, "cabundle")) {
            f = F_CABUNDLE;
            e = parse_cabundle(&r, s);
        } else if (luna_cbor_text_is(&key, "public_key")) {
            f = F_PUBKEY;
            e = read_opt_bytes(&r, &s->public_key, &s->public_key_len);
        } else if (luna_cbor_text_is(&key, "user_data")) {
            f = F_USERDATA;
            e = read_opt_bytes(&r, &s->user_data, &s->user_data_len);
        } else if (luna_cbor_text_is(&key, "nonce")) {
            f = F_NONCE;
            e = read_opt_bytes(&r, &s->nonce, &s->nonce_len);
        } else {
            *why = "unknown field in the Nitro attestation document";
            return LUNA_VERIFY_RESERVED_BITS;
        }
        if (e != LUNA_OK || (seen & f) != 0)
            return LUNA_VERIFY_MALFORMED; /* bad value or duplicate key */
        seen |= f;
    }
    if (luna_read_end(&r) != LUNA_OK || (seen & F_REQUIRED) != F_REQUIRED)
        return LUNA_VERIFY_MALFORMED;
    /* PCR0 (enclave image) and PCR8 (signing certificate) feed the claims. */
    if ((s->pcr_present & 1u) == 0 || (s->pcr_present & (1u << 8)) == 0)
        return LUNA_VERIFY_MALFORMED;
    return LUNA_VERIFY_OK;
}

static luna_verify_reason nitro_parse(const uint8_t *ev, size_t len, void **state,
                                      const char **why)
{
    luna_reader r;
    luna_cbor_item it;
    const uint8_t *sig = NULL;
    size_t sig_len = 0;
    luna_verify_reason res = LUNA_VERIFY_MALFORMED;
    nitro_state *s = calloc(1, sizeof(*s));

    *state = NULL;
    if (s == NULL)
        return fail(why, "out of memory", LUNA_VERIFY_INTERNAL);
    *why = "malformed COSE_Sign1";
    luna_reader_init(&r, ev, len);
    if (luna_cbor_read(&r, &it) != LUNA_OK)
        goto out;
    if (it.major == LUNA_CBOR_TAG) { /* tagged COSE_Sign1 is fine too */
        if (it.arg != COSE_TAG_SIGN1 || luna_cbor_read(&r, &it) != LUNA_OK)
            goto out;
    }
    if (it.major != LUNA_CBOR_ARRAY || it.arg != 4)
        goto out;
    if (read_bytes(&r, &s->protected_hdr, &s->protected_len) != LUNA_OK)
        goto out;
    res = parse_protected(s->protected_hdr, s->protected_len, why);
    if (res != LUNA_VERIFY_OK)
        goto out;
    res = LUNA_VERIFY_MALFORMED;
    *why = "malformed COSE_Sign1";
    /* Unprotected header: Nitro sends none; anything there is unsigned. */
    if (luna_cbor_read(&r, &it) != LUNA_OK || it.major != LUNA_CBOR_MAP)
        goto out;
    if (it.arg != 0) {
        res = fail(why, "COSE unprotected header is not empty", LUNA_VERIFY_RESERVED_BITS);
        goto out;
    }
    if (read_bytes(&r, &s->payload, &s->payload_len) != LUNA_OK ||
        read_bytes(&r, &sig, &sig_len) != LUNA_OK || sig_len != NITRO_SIG_LEN ||
        luna_read_end(&r) != LUNA_OK)
        goto out;
    memcpy(s->sig, sig, NITRO_SIG_LEN);
    res = parse_document(s, why);
out:
    if (res != LUNA_VERIFY_OK) {
        free(s);
        return res;
    }
    *state = s;
    return LUNA_VERIFY_OK;
}

static void nitro_free_state(void *state)
{
    free(state);
}

/* ---- verify ---- */

static X509 *der_cert(const uint8_t *p, size_t n)
{
    const unsigned char *q = p;
    X509 *c = d2i_X509(NULL, &q, (long)n);
    if (c != NULL && q != p + n) {
        X509_free(c);
        return NULL;
    }
    return c;
}

static luna_err write_bstr(luna_wbuf *w, const uint8_t *p, size_t n)
{
    if (n < 24) {
        LUNA_GUARD(luna_write_u8(w, (uint8_t)(0x40 | n)));
    } else if (n <= 0xff) {
        LUNA_GUARD(luna_write_u8(w, 0x58));
        LUNA_GUARD(luna_write_u8(w, (uint8_t)n));
    } else if (n <= 0xffff) {
        LUNA_GUARD(luna_write_u8(w, 0x59));
        LUNA_GUARD(luna_write_u16(w, (uint16_t)n));
    } else {
        LUNA_ENSURE(n <= 0xffffffffu, LUNA_ERR_TOO_LARGE);
        LUNA_GUARD(luna_write_u8(w, 0x5a));
        LUNA_GUARD(luna_write_u32(w, (uint32_t)n));
    }
    return n > 0 ? luna_write_bytes(w, p, n) : LUNA_OK;
}

/* Sig_structure = ["Signature1", protected, external_aad = h'', payload]
   (RFC 9052 section 4.4). */
static luna_err sig_structure(const nitro_state *s, luna_wbuf *w)
{
    static const uint8_t head[] = {0x84, 0x6a, 'S', 'i', 'g', 'n', 'a', 't', 'u', 'r', 'e', '1'};
    LUNA_GUARD(luna_wbuf_init_alloc(w, sizeof(head) + 2 * 5 + 1 + s->protected_len +
                                           s->payload_len));
    LUNA_GUARD(luna_write_bytes(w, head, sizeof(head)));
    LUNA_GUARD(write_bstr(w, s->protected_hdr, s->protected_len));
    LUNA_GUARD(luna_write_u8(w, 0x40));
    return write_bstr(w, s->payload, s->payload_len);
}

/* Caches the verified leaf with the tightest window of leaf and bundle. */
static void remember(const luna_backend_ctx *ctx, const nitro_state *s, X509 *leaf,
                     X509 *const *bundle, const uint8_t pt[97])
{
    luna_chain_entry e;
    int64_t nb = 0, na = 0;
    memset(&e, 0, sizeof(e));
    e.type = LUNA_EVIDENCE_NITRO;
    e.kind = LUNA_CHAIN_KEY_P384;
    memcpy(e.key, pt, 97);
    e.key_len = 97;
    if (!luna_hw_serial(leaf, e.serial, &e.serial_len) ||
        luna_pki_cert_times(leaf, &e.not_before, &e.not_after) != LUNA_OK)
        return;
    for (size_t i = 0; i < s->n_cabundle; i++) {
        if (luna_pki_cert_times(bundle[i], &nb, &na) != LUNA_OK)
            return;
        if (nb > e.not_before)
            e.not_before = nb;
        if (na < e.not_after)
            e.not_after = na;
    }
    luna_chain_cache_put(ctx->cache, s->cert, s->cert_len, &e);
}

static luna_verify_reason nitro_verify(void *state, const luna_backend_ctx *ctx, const char **why)
{
    nitro_state *s = state;
    X509 *leaf = NULL, *root = NULL;
    X509 *bundle[NITRO_MAX_CABUNDLE] = {0};
    uint8_t pt[97];
    size_t pt_len = 0;
    luna_wbuf w = {0};
    luna_verify_reason r = LUNA_VERIFY_BAD_CERTIFICATE;
    int64_t nb = 0, na = 0;

    *why = "Nitro certificate or cabundle entry is not valid DER";
    leaf = der_cert(s->cert, s->cert_len);
    if (leaf == NULL)
        goto out;
    /* A leaf that already chained (exact bytes, inside the chain's
       window) skips the X.509 work; the document signature never does. */
    luna_chain_entry e;
    if (luna_chain_cache_get(ctx->cache, LUNA_EVIDENCE_NITRO, s->cert, s->cert_len, ctx->now,
                             &e) &&
        e.kind == LUNA_CHAIN_KEY_P384 && e.key_len == sizeof(pt)) {
        memcpy(pt, e.key, sizeof(pt));
        pt_len = e.key_len;
        goto chained;
    }
    for (size_t i = 0; i < s->n_cabundle; i++)
        if ((bundle[i] = der_cert(s->cabundle[i], s->cabundle_len[i])) == NULL)
            goto out;
    luna_hw_chain_opts o = {.anchors = ctx->anchors,
                            .n_anchors = ctx->n_anchors,
                            .untrusted = bundle,
                            .n_untrusted = s->n_cabundle,
                            .check_crls = false,
                            .now = ctx->now};
    r = luna_hw_verify_chain(leaf, &o, &root, NULL, why);
    if (r != LUNA_VERIFY_OK)
        goto out;
    /* cabundle[0] is the root by the document's definition: it must be
       the very anchor the chain reached. */
    if (X509_cmp(bundle[0], root) != 0) {
        r = fail(why, "Nitro cabundle does not start with the pinned root",
                 LUNA_VERIFY_UNKNOWN_ROOT);
        goto out;
    }
    r = luna_hw_ec_point(X509_get0_pubkey(leaf), LUNA_EC_P384, pt, sizeof(pt), &pt_len, why);
    if (r != LUNA_VERIFY_OK)
        goto out;
    remember(ctx, s, leaf, bundle, pt);
chained:
    if (!luna_hw_serial(leaf, s->serial, &s->serial_len) ||
        luna_pki_cert_times(leaf, &nb, &na) != LUNA_OK) {
        r = fail(why, "Nitro leaf certificate fields are unusable", LUNA_VERIFY_BAD_CERTIFICATE);
        goto out;
    }
    /* The document was made while its signing certificate was valid. */
    const int64_t ts = (int64_t)(s->timestamp_ms / 1000);
    if (ts < nb || ts > na) {
        r = fail(why, "Nitro document timestamp is outside its certificate's validity",
                 LUNA_VERIFY_CERT_EXPIRED);
        goto out;
    }
    if (sig_structure(s, &w) != LUNA_OK) {
        r = fail(why, "out of memory", LUNA_VERIFY_INTERNAL);
        goto out;
    }
    if (luna_ecdsa_verify(LUNA_EC_P384, pt, pt_len, LUNA_SIG_P1363, w.data, w.len, s->sig,
                          NITRO_SIG_LEN) != LUNA_OK) {
        r = fail(why, "Nitro COSE_Sign1 signature does not verify with the leaf key",
                 LUNA_VERIFY_BAD_SIGNATURE);
        goto out;
    }
    r = LUNA_VERIFY_OK;
out:
    luna_wbuf_free(&w);
    X509_free(leaf);
    for (size_t i = 0; i < NITRO_MAX_CABUNDLE; i++)
        X509_free(bundle[i]);
    return r;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

static luna_verify_reason nitro_claims(const void *state, const luna_backend_ctx *ctx,
                                       luna_claims *c, const char **why)
{
    const nitro_state *s = state;
    (void)ctx;
    (void)why;

    memset(c, 0, sizeof(*c));
    c->type = LUNA_EVIDENCE_NITRO;
    c->version = 1;
    memcpy(c->measurement, s->pcrs[0], NITRO_PCR_LEN);
    c->measurement_len = NITRO_PCR_LEN;
    memcpy(c->signer, s->pcrs[8], NITRO_PCR_LEN);
    c->signer_len = NITRO_PCR_LEN;
    /* An enclave in debug mode reports all-zero PCR0/1/2 (AWS docs). */
    c->debug = all_zero(s->pcrs[0], NITRO_PCR_LEN);
    if (s->public_key != NULL && s->public_key_len == LUNA_CLAIM_KEY_LEN) {
        memcpy(c->tee_x25519, s->public_key, LUNA_CLAIM_KEY_LEN);
        c->has_tee_x25519 = true;
    }
    if (s->user_data != NULL && s->user_data_len <= LUNA_CLAIM_REPORT_DATA_LEN)
        memcpy(c->report_data, s->user_data, s->user_data_len);
    if (s->nonce != NULL && s->nonce_len <= LUNA_CLAIM_NONCE_MAX) {
        memcpy(c->nonce, s->nonce, s->nonce_len);
        c->nonce_len = s->nonce_len;
    }
    c->has_timestamp = true;
    c->timestamp = (int64_t)(s->timestamp_ms / 1000);
    /* AWS publishes no TCB or revocation data for Nitro. */
    c->tcb_status = LUNA_TCB_UP_TO_DATE;
    c->qe_status = LUNA_QE_NOT_APPLICABLE;
    memcpy(c->platform_serial, s->serial, s->serial_len);
    c->platform_serial_len = s->serial_len;
    c->revocation_checked = false;
    return LUNA_VERIFY_OK;
}

const luna_verifier_backend luna_verifier_backend_nitro = {
    .type = LUNA_EVIDENCE_NITRO,
    .simulated = false,
    .parse = nitro_parse,
    .verify = nitro_verify,
    .claims = nitro_claims,
    .free_state = nitro_free_state,
};
