/*
 * verifier_sim.c - the `sim` backend of the evidence verifier: checks the
 * platform certificate against the simulated vendor root, the platform key
 * against the signed TCB status document (revocation, TCB level), and the
 * evidence signature; then hands the claims to the generic appraisal.
 *
 * It must never decide policy (verifier.c does), never skip the evidence
 * signature (only the X.509 chain work is cached, by exact bytes and
 * within validity), and always label its claims simulated.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/evidence_sim.h"
#include "luna/pki.h"
#include "verifier_internal.h"

typedef struct sim_state {
    luna_sim_evidence ev;
    luna_chain_entry chain; /* set by sim_verify */
} sim_state;

typedef struct sim_collateral {
    uint8_t *doc; /* owned copy; tcb holds views into it */
    size_t len;
    luna_sim_tcb tcb;
} sim_collateral;

static luna_verify_reason sim_parse(const uint8_t *ev, size_t len, void **state, const char **why)
{
    luna_verify_reason r = LUNA_VERIFY_MALFORMED;
    sim_state *s = calloc(1, sizeof(*s));

    *state = NULL;
    if (s == NULL) {
        *why = "out of memory";
        return LUNA_VERIFY_INTERNAL;
    }
    if (luna_sim_evidence_parse(ev, len, &s->ev, &r) != LUNA_OK) {
        free(s);
        switch (r) {
        case LUNA_VERIFY_UNSUPPORTED_VERSION:
            *why = "unsupported sim evidence version or signature algorithm";
            break;
        case LUNA_VERIFY_RESERVED_BITS:
            *why = "unknown flag or reserved field set in sim evidence";
            break;
        default:
            r = LUNA_VERIFY_MALFORMED;
            *why = "malformed sim evidence (length, magic or field)";
            break;
        }
        return r;
    }
    *state = s;
    return LUNA_VERIFY_OK;
}

static void sim_free_state(void *state)
{
    free(state);
}

/* ---- platform certificate ---- */

static luna_verify_reason map_x509_error(int e, const char **why)
{
    switch (e) {
    case X509_V_ERR_CERT_NOT_YET_VALID:
    case X509_V_ERR_CERT_HAS_EXPIRED:
        *why = "a certificate of the platform chain is outside its validity";
        return LUNA_VERIFY_CERT_EXPIRED;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
        *why = "platform certificate does not chain to a trusted vendor root";
        return LUNA_VERIFY_UNKNOWN_ROOT;
    default:
        *why = "platform certificate chain is not acceptable";
        return LUNA_VERIFY_BAD_CERTIFICATE;
    }
}

static luna_verify_reason leaf_key(X509 *leaf, luna_chain_entry *e, const char **why)
{
    EVP_PKEY *k = X509_get0_pubkey(leaf);
    size_t n = 0;
    char group[32];

    *why = "platform key is neither Ed25519 nor P-256";
    if (k == NULL)
        return LUNA_VERIFY_BAD_CERTIFICATE;
    if (EVP_PKEY_get_id(k) == EVP_PKEY_ED25519) {
        n = LUNA_ED25519_PUB_LEN;
        if (EVP_PKEY_get_raw_public_key(k, e->key, &n) != 1 || n != LUNA_ED25519_PUB_LEN)
            return LUNA_VERIFY_BAD_CERTIFICATE;
        e->kind = LUNA_CHAIN_KEY_ED25519;
    } else if (EVP_PKEY_is_a(k, "EC")) {
        if (EVP_PKEY_get_group_name(k, group, sizeof(group), &n) != 1 ||
            strcmp(group, "prime256v1") != 0)
            return LUNA_VERIFY_BAD_CERTIFICATE;
        if (EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, e->key,
                                            sizeof(e->key), &n) != 1 ||
            n != 65 || e->key[0] != 0x04)
            return LUNA_VERIFY_BAD_CERTIFICATE;
        e->kind = LUNA_CHAIN_KEY_P256;
    } else {
        return LUNA_VERIFY_BAD_CERTIFICATE;
    }
    e->key_len = n;
    return LUNA_VERIFY_OK;
}

static luna_verify_reason leaf_facts(X509 *leaf, X509 *root, luna_chain_entry *e,
                                     const char **why)
{
    int64_t nb = 0, na = 0, rnb = 0, rna = 0;
    const ASN1_INTEGER *ser = X509_get0_serialNumber(leaf);

    *why = "platform certificate profile is wrong (CA, key usage or serial)";
    /* A platform key signs evidence; it must not be a CA, and the root
       itself is never a platform key. */
    if (X509_check_ca(leaf) != 0 || (X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) == 0 ||
        (X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE) == 0)
        return LUNA_VERIFY_BAD_CERTIFICATE;
    if (ser == NULL || ASN1_STRING_type(ser) != V_ASN1_INTEGER ||
        ASN1_STRING_length(ser) <= 0 || ASN1_STRING_length(ser) > LUNA_CLAIM_SERIAL_MAX)
        return LUNA_VERIFY_BAD_CERTIFICATE;
    e->serial_len = (size_t)ASN1_STRING_length(ser);
    memcpy(e->serial, ASN1_STRING_get0_data(ser), e->serial_len);
    if (luna_pki_cert_times(leaf, &nb, &na) != LUNA_OK ||
        luna_pki_cert_times(root, &rnb, &rna) != LUNA_OK)
        return LUNA_VERIFY_BAD_CERTIFICATE;
    e->not_before = nb > rnb ? nb : rnb;
    e->not_after = na < rna ? na : rna;
    return leaf_key(leaf, e, why);
}

static luna_verify_reason verify_chain(const uint8_t *der, size_t len, const luna_backend_ctx *ctx,
                                       luna_chain_entry *e, const char **why)
{
    luna_verify_reason r = LUNA_VERIFY_BAD_CERTIFICATE;
    const unsigned char *p = der;
    X509 *leaf = NULL;
    X509_STORE *store = NULL;
    X509_STORE_CTX *sc = NULL;

    *why = "platform certificate is not valid DER";
    leaf = d2i_X509(NULL, &p, (long)len);
    if (leaf == NULL || p != der + len)
        goto out;
    *why = "out of memory";
    r = LUNA_VERIFY_INTERNAL;
    store = X509_STORE_new();
    sc = X509_STORE_CTX_new();
    if (store == NULL || sc == NULL)
        goto out;
    for (size_t i = 0; i < ctx->n_anchors; i++)
        if (X509_STORE_add_cert(store, ctx->anchors[i]) != 1)
            goto out;
    if (X509_STORE_CTX_init(sc, store, leaf, NULL) != 1)
        goto out;
    X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(sc);
    X509_VERIFY_PARAM_set_time(vp, (time_t)ctx->now);
    X509_VERIFY_PARAM_set_flags(vp, X509_V_FLAG_X509_STRICT);
    /* Leaf and root only: the vendor certifies platform keys directly. */
    X509_VERIFY_PARAM_set_depth(vp, 0);
    if (X509_verify_cert(sc) != 1) {
        r = map_x509_error(X509_STORE_CTX_get_error(sc), why);
        goto out;
    }
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(sc);
    if (chain == NULL || sk_X509_num(chain) != 2) {
        *why = "platform certificate must be issued directly by the vendor root";
        r = LUNA_VERIFY_BAD_CERTIFICATE;
        goto out;
    }
    memset(e, 0, sizeof(*e));
    e->type = LUNA_EVIDENCE_SIM;
    r = leaf_facts(leaf, sk_X509_value(chain, 1), e, why);
out:
    X509_STORE_CTX_free(sc);
    X509_STORE_free(store);
    X509_free(leaf);
    return r;
}

/* ---- collateral ---- */

static luna_tcb_status tcb_status_of(const luna_sim_tcb *t, uint32_t level)
{
    if (level < t->revoked_below)
        return LUNA_TCB_REVOKED;
    if (level < t->current_level)
        return LUNA_TCB_OUT_OF_DATE;
    return LUNA_TCB_UP_TO_DATE;
}

static luna_verify_reason check_collateral(const sim_collateral *c,
                                           const luna_chain_entry *e, int64_t now,
                                           const char **why)
{
    if (c == NULL) {
        *why = "no TCB status collateral installed for sim";
        return LUNA_VERIFY_COLLATERAL_MISSING;
    }
    if (now > (int64_t)c->tcb.next_update) {
        *why = "TCB status collateral is past its next update";
        return LUNA_VERIFY_COLLATERAL_STALE;
    }
    if (luna_sim_tcb_is_revoked(&c->tcb, e->serial, e->serial_len)) {
        *why = "platform key is revoked by the vendor";
        return LUNA_VERIFY_REVOKED_PLATFORM_KEY;
    }
    return LUNA_VERIFY_OK;
}

static luna_verify_reason sim_verify(void *state, const luna_backend_ctx *ctx, const char **why)
{
    sim_state *s = state;
    const luna_sim_evidence *ev = &s->ev;
    luna_verify_reason r;
    luna_err err;

    if (!luna_chain_cache_get(ctx->cache, LUNA_EVIDENCE_SIM, ev->cert, ev->cert_len, ctx->now,
                              &s->chain)) {
        r = verify_chain(ev->cert, ev->cert_len, ctx, &s->chain, why);
        if (r != LUNA_VERIFY_OK)
            return r;
        luna_chain_cache_put(ctx->cache, ev->cert, ev->cert_len, &s->chain);
    }
    r = check_collateral(ctx->collateral, &s->chain, ctx->now, why);
    if (r != LUNA_VERIFY_OK)
        return r;
    if (ev->sig_alg == LUNA_SIM_SIG_ED25519 && s->chain.kind == LUNA_CHAIN_KEY_ED25519)
        err = luna_ed25519_verify(s->chain.key, ev->signed_part, ev->signed_len, ev->sig,
                                  LUNA_SIM_SIG_LEN);
    else if (ev->sig_alg == LUNA_SIM_SIG_P256 && s->chain.kind == LUNA_CHAIN_KEY_P256)
        err = luna_ecdsa_verify(LUNA_EC_P256, s->chain.key, s->chain.key_len, LUNA_SIG_P1363,
                                ev->signed_part, ev->signed_len, ev->sig, LUNA_SIM_SIG_LEN);
    else
        err = LUNA_ERR_VERIFY; /* an algorithm the platform key cannot make */
    if (err != LUNA_OK) {
        *why = "evidence signature does not verify with the platform key";
        return LUNA_VERIFY_BAD_SIGNATURE;
    }
    return LUNA_VERIFY_OK;
}

static luna_verify_reason sim_claims(const void *state, const luna_backend_ctx *ctx,
                                     luna_claims *c, const char **why)
{
    const sim_state *s = state;
    const luna_sim_evidence *ev = &s->ev;
    const sim_collateral *col = ctx->collateral;

    if (col == NULL) {
        *why = "no TCB status collateral installed for sim";
        return LUNA_VERIFY_COLLATERAL_MISSING;
    }
    memset(c, 0, sizeof(*c));
    c->type = LUNA_EVIDENCE_SIM;
    c->simulated = true;
    c->version = ev->version;
    memcpy(c->measurement, ev->measurement, LUNA_SIM_FIELD_LEN);
    c->measurement_len = LUNA_SIM_FIELD_LEN;
    memcpy(c->signer, ev->signer, LUNA_SIM_FIELD_LEN);
    c->signer_len = LUNA_SIM_FIELD_LEN;
    memcpy(c->tee_x25519, ev->tee_x25519, LUNA_SIM_FIELD_LEN);
    c->has_tee_x25519 = true;
    if ((ev->flags & LUNA_SIM_FLAG_SIGN_KEY) != 0) {
        memcpy(c->tee_ed25519, ev->tee_ed25519, LUNA_SIM_FIELD_LEN);
        c->has_tee_ed25519 = true;
    }
    memcpy(c->nonce, ev->nonce, LUNA_SIM_FIELD_LEN);
    c->nonce_len = LUNA_SIM_FIELD_LEN;
    memcpy(c->report_data, ev->report_data, LUNA_CLAIM_REPORT_DATA_LEN);
    c->debug = (ev->flags & LUNA_SIM_FLAG_DEBUG) != 0;
    c->tcb_level = ev->tcb_level;
    c->tcb_status = tcb_status_of(&col->tcb, ev->tcb_level);
    /* Reaching here means the platform key chained and is not revoked. */
    c->qe_status = LUNA_QE_VALID;
    memcpy(c->memory_digest, ev->memory_digest, LUNA_SIM_FIELD_LEN);
    c->has_memory_digest = true;
    c->timestamp = (int64_t)ev->timestamp;
    c->has_timestamp = true;
    memcpy(c->platform_serial, s->chain.serial, s->chain.serial_len);
    c->platform_serial_len = s->chain.serial_len;
    return LUNA_VERIFY_OK;
}

static void sim_collateral_free(void *p)
{
    sim_collateral *c = p;
    if (c == NULL)
        return;
    free(c->doc);
    free(c);
}

static bool anchor_signed(X509 *anchor, const luna_sim_tcb *t)
{
    EVP_PKEY *k = X509_get0_pubkey(anchor);
    uint8_t pt[65];
    size_t n = 0;
    char group[32];

    if (k == NULL || !EVP_PKEY_is_a(k, "EC") ||
        EVP_PKEY_get_group_name(k, group, sizeof(group), &n) != 1 ||
        strcmp(group, "prime256v1") != 0 ||
        EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt),
                                        &n) != 1 ||
        n != sizeof(pt))
        return false;
    return luna_ecdsa_verify(LUNA_EC_P256, pt, n, LUNA_SIG_P1363, t->signed_part, t->signed_len,
                             t->sig, 64) == LUNA_OK;
}

static luna_err sim_collateral_load(const uint8_t *doc, size_t len, X509 *const *anchors,
                                    size_t n_anchors, int64_t now, void **out)
{
    luna_err err = LUNA_OK;
    bool signed_ok = false;
    sim_collateral *c = NULL;

    *out = NULL;
    if (len > LUNA_SIM_TCB_MAX)
        return LUNA_ERR_TOO_LARGE;
    c = calloc(1, sizeof(*c));
    LUNA_TRY_ENSURE(c != NULL, LUNA_ERR_NOMEM, fail);
    c->doc = malloc(len);
    LUNA_TRY_ENSURE(c->doc != NULL, LUNA_ERR_NOMEM, fail);
    memcpy(c->doc, doc, len);
    c->len = len;
    LUNA_TRY(luna_sim_tcb_parse(c->doc, c->len, &c->tcb), fail);
    for (size_t i = 0; i < n_anchors && !signed_ok; i++)
        signed_ok = anchor_signed(anchors[i], &c->tcb);
    LUNA_TRY_ENSURE(signed_ok, LUNA_ERR_VERIFY, fail);
    /* Stale, or issued further ahead than any sane clock skew. */
    LUNA_TRY_ENSURE(now <= (int64_t)c->tcb.next_update &&
                        (int64_t)c->tcb.issued_at <= now + 3600,
                    LUNA_ERR_EXPIRED, fail);
    *out = c;
    return LUNA_OK;
fail:
    sim_collateral_free(c);
    return err;
}

static int64_t sim_collateral_issued_at(const void *p)
{
    const sim_collateral *c = p;
    return (int64_t)c->tcb.issued_at;
}

const luna_verifier_backend luna_verifier_backend_sim = {
    .type = LUNA_EVIDENCE_SIM,
    .simulated = true,
    .parse = sim_parse,
    .verify = sim_verify,
    .claims = sim_claims,
    .free_state = sim_free_state,
    .collateral_load = sim_collateral_load,
    .collateral_issued_at = sim_collateral_issued_at,
    .collateral_free = sim_collateral_free,
};
