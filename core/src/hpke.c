/*
 * hpke.c - RFC 9180 HPKE over the luna/crypto.h wrappers: DHKEM(X25519,
 * HKDF-SHA256), the key schedule for HKDF-SHA256/512, the AEADs and the
 * secret exporter.  Owns the context's key material (in a luna_secret).
 * Must never call OpenSSL directly, never reuse a nonce (the sequence
 * number refuses to wrap), never release plaintext for a bad tag, and
 * never leave a secret intermediate on the stack unwiped.
 */
#include "hpke_internal.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/secret.h"

#define HPKE_V1 "HPKE-v1"
#define HPKE_V1_LEN 7
#define KEM_SUITE_ID_LEN 5   /* "KEM" || I2OSP(kem_id, 2) */
#define HPKE_SUITE_ID_LEN 10 /* "HPKE" || kem_id || kdf_id || aead_id */
#define SUITE_ID_MAX 10
#define LABEL_MAX 16
/* Room for a labeled ikm/info: I2OSP(L,2) || "HPKE-v1" || suite_id || label || data. */
#define LABELED_MAX (2 + HPKE_V1_LEN + SUITE_ID_MAX + LABEL_MAX + LUNA_HPKE_MAX_INPUT_LEN)
#define NSECRET 32

/* Offsets of the context's secrets inside its luna_secret. */
#define CTX_KEY_OFF 0
#define CTX_NONCE_OFF 32
#define CTX_EXP_OFF (CTX_NONCE_OFF + LUNA_HPKE_NONCE_LEN)
#define CTX_SECRET_LEN (CTX_EXP_OFF + LUNA_HPKE_MAX_NH)

enum ctx_role { ROLE_SENDER = 1, ROLE_RECEIVER = 2 };

struct luna_hpke_ctx {
    luna_hpke_suite suite;
    enum ctx_role role;
    luna_hash kdf;
    size_t nh;
    size_t nk; /* 0: export-only */
    uint64_t seq;
    luna_secret *keys; /* key || base_nonce || exporter_secret */
};

typedef struct suite_id {
    uint8_t b[SUITE_ID_MAX];
    size_t len;
} suite_id;

static void kem_suite_id(suite_id *s)
{
    s->b[0] = 'K';
    s->b[1] = 'E';
    s->b[2] = 'M';
    s->b[3] = (uint8_t)(LUNA_HPKE_KEM_X25519_SHA256 >> 8);
    s->b[4] = (uint8_t)(LUNA_HPKE_KEM_X25519_SHA256 & 0xff);
    s->len = KEM_SUITE_ID_LEN;
}

static void hpke_suite_id(const luna_hpke_suite *suite, suite_id *s)
{
    s->b[0] = 'H';
    s->b[1] = 'P';
    s->b[2] = 'K';
    s->b[3] = 'E';
    s->b[4] = (uint8_t)(suite->kem_id >> 8);
    s->b[5] = (uint8_t)(suite->kem_id & 0xff);
    s->b[6] = (uint8_t)(suite->kdf_id >> 8);
    s->b[7] = (uint8_t)(suite->kdf_id & 0xff);
    s->b[8] = (uint8_t)(suite->aead_id >> 8);
    s->b[9] = (uint8_t)(suite->aead_id & 0xff);
    s->len = HPKE_SUITE_ID_LEN;
}

static luna_err kdf_of(uint16_t kdf_id, luna_hash *h)
{
    switch (kdf_id) {
    case LUNA_HPKE_KDF_HKDF_SHA256:
        *h = LUNA_HASH_SHA256;
        return LUNA_OK;
    case LUNA_HPKE_KDF_HKDF_SHA512:
        *h = LUNA_HASH_SHA512;
        return LUNA_OK;
    default:
        return LUNA_ERR_UNSUPPORTED;
    }
}

/* Nk of an AEAD id; 0 for export-only. */
static luna_err aead_nk(uint16_t aead_id, size_t *nk)
{
    switch (aead_id) {
    case LUNA_HPKE_AEAD_AES128GCM:
        *nk = 16;
        return LUNA_OK;
    case LUNA_HPKE_AEAD_AES256GCM:
    case LUNA_HPKE_AEAD_CHACHA20POLY1305:
        *nk = 32;
        return LUNA_OK;
    case LUNA_HPKE_AEAD_EXPORT_ONLY:
        *nk = 0;
        return LUNA_OK;
    default:
        return LUNA_ERR_UNSUPPORTED;
    }
}

luna_err luna_hpke_suite_check(const luna_hpke_suite *suite)
{
    luna_hash h;
    size_t nk;
    LUNA_ENSURE(suite != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(suite->kem_id == LUNA_HPKE_KEM_X25519_SHA256, LUNA_ERR_UNSUPPORTED);
    LUNA_GUARD(kdf_of(suite->kdf_id, &h));
    LUNA_GUARD(aead_nk(suite->aead_id, &nk));
    return LUNA_OK;
}

/* A (pointer, length) pair must be both empty or both present. */
static bool span_ok(const uint8_t *p, size_t n)
{
    return (p != NULL || n == 0) && n <= LUNA_HPKE_MAX_INPUT_LEN;
}

/*
 * LabeledExtract(salt, label, ikm) = Extract(salt, "HPKE-v1" || suite_id ||
 * label || ikm).  The labeled buffer may hold a PSK or a DH output, so it
 * is wiped.
 */
static luna_err labeled_extract(luna_hash h, const suite_id *sid, const uint8_t *salt,
                                size_t salt_len, const char *label, const uint8_t *ikm,
                                size_t ikm_len, uint8_t *prk)
{
    uint8_t buf[LABELED_MAX];
    size_t label_len = strlen(label);
    luna_wbuf w;
    luna_err err;

    LUNA_ENSURE(label_len <= LABEL_MAX && ikm_len <= LUNA_HPKE_MAX_INPUT_LEN,
                LUNA_ERR_INVALID_ARG);
    luna_wbuf_init(&w, buf, sizeof(buf));
    LUNA_TRY(luna_write_bytes(&w, HPKE_V1, HPKE_V1_LEN), out);
    LUNA_TRY(luna_write_bytes(&w, sid->b, sid->len), out);
    LUNA_TRY(luna_write_bytes(&w, label, label_len), out);
    LUNA_TRY(luna_write_bytes(&w, ikm, ikm_len), out);
    LUNA_TRY(luna_hkdf_extract(h, salt, salt_len, w.data, w.len, prk), out);
out:
    luna_wipe(buf, sizeof(buf));
    return err;
}

/*
 * LabeledExpand(prk, label, info, L) = Expand(prk, I2OSP(L, 2) ||
 * "HPKE-v1" || suite_id || label || info, L).
 */
static luna_err labeled_expand(luna_hash h, const suite_id *sid, const uint8_t *prk,
                               size_t prk_len, const char *label, const uint8_t *info,
                               size_t info_len, uint8_t *out, size_t out_len)
{
    uint8_t buf[LABELED_MAX];
    size_t label_len = strlen(label);
    luna_wbuf w;
    luna_err err;

    LUNA_ENSURE(label_len <= LABEL_MAX && info_len <= LUNA_HPKE_MAX_INPUT_LEN,
                LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(out_len <= 0xffff, LUNA_ERR_INVALID_ARG);
    luna_wbuf_init(&w, buf, sizeof(buf));
    LUNA_TRY(luna_write_u16(&w, (uint16_t)out_len), out);
    LUNA_TRY(luna_write_bytes(&w, HPKE_V1, HPKE_V1_LEN), out);
    LUNA_TRY(luna_write_bytes(&w, sid->b, sid->len), out);
    LUNA_TRY(luna_write_bytes(&w, label, label_len), out);
    LUNA_TRY(luna_write_bytes(&w, info, info_len), out);
    LUNA_TRY(luna_hkdf_expand(h, prk, prk_len, w.data, w.len, out, out_len), out);
out:
    luna_wipe(buf, sizeof(buf));
    return err;
}

luna_err luna_hpke_derive_keypair(const uint8_t *ikm, size_t ikm_len, uint8_t sk[LUNA_HPKE_SK_LEN],
                                  uint8_t pk[LUNA_HPKE_PK_LEN])
{
    uint8_t prk[LUNA_SHA256_LEN];
    suite_id sid;
    luna_err err;

    LUNA_ENSURE(ikm != NULL && sk != NULL && pk != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(ikm_len >= LUNA_HPKE_MIN_IKM_LEN && ikm_len <= LUNA_HPKE_MAX_INPUT_LEN,
                LUNA_ERR_INVALID_ARG);
    kem_suite_id(&sid);
    LUNA_TRY(labeled_extract(LUNA_HASH_SHA256, &sid, NULL, 0, "dkp_prk", ikm, ikm_len, prk), out);
    LUNA_TRY(labeled_expand(LUNA_HASH_SHA256, &sid, prk, sizeof(prk), "sk", NULL, 0, sk,
                            LUNA_HPKE_SK_LEN),
             out);
    LUNA_TRY(luna_x25519_public(sk, pk), out);
out:
    luna_wipe(prk, sizeof(prk));
    if (err != LUNA_OK)
        luna_wipe(sk, LUNA_HPKE_SK_LEN);
    return err;
}

luna_err luna_hpke_generate_keypair(uint8_t sk[LUNA_HPKE_SK_LEN], uint8_t pk[LUNA_HPKE_PK_LEN])
{
    LUNA_ENSURE(sk != NULL && pk != NULL, LUNA_ERR_INVALID_ARG);
    return luna_x25519_keygen(sk, pk);
}

/* ExtractAndExpand(dh, kem_context) of DHKEM. */
static luna_err extract_and_expand(const uint8_t *dh, size_t dh_len, const uint8_t *kem_context,
                                   size_t kem_context_len, uint8_t shared_secret[NSECRET])
{
    uint8_t prk[LUNA_SHA256_LEN];
    suite_id sid;
    luna_err err;

    kem_suite_id(&sid);
    LUNA_TRY(labeled_extract(LUNA_HASH_SHA256, &sid, NULL, 0, "eae_prk", dh, dh_len, prk), out);
    LUNA_TRY(labeled_expand(LUNA_HASH_SHA256, &sid, prk, sizeof(prk), "shared_secret",
                            kem_context, kem_context_len, shared_secret, NSECRET),
             out);
out:
    luna_wipe(prk, sizeof(prk));
    return err;
}

luna_err luna_hpke_encap_internal(const uint8_t pk_r[LUNA_HPKE_PK_LEN], const uint8_t *sk_s,
                                  const uint8_t sk_e[LUNA_HPKE_SK_LEN], uint8_t shared_secret[32],
                                  uint8_t enc[LUNA_HPKE_ENC_LEN])
{
    uint8_t dh[2 * LUNA_X25519_LEN];
    uint8_t kem_context[3 * LUNA_HPKE_PK_LEN];
    size_t dh_len = LUNA_X25519_LEN, ctx_len = 2 * LUNA_HPKE_PK_LEN;
    luna_err err;

    LUNA_ENSURE(pk_r != NULL && sk_e != NULL && shared_secret != NULL && enc != NULL,
                LUNA_ERR_INVALID_ARG);
    LUNA_TRY(luna_x25519_public(sk_e, enc), out);
    /* An all-zero output (low-order pk_r) comes back as LUNA_ERR_VERIFY. */
    LUNA_TRY(luna_x25519(sk_e, pk_r, dh), out);
    memcpy(kem_context, enc, LUNA_HPKE_ENC_LEN);
    memcpy(kem_context + LUNA_HPKE_ENC_LEN, pk_r, LUNA_HPKE_PK_LEN);
    if (sk_s != NULL) {
        LUNA_TRY(luna_x25519(sk_s, pk_r, dh + LUNA_X25519_LEN), out);
        LUNA_TRY(luna_x25519_public(sk_s, kem_context + 2 * LUNA_HPKE_PK_LEN), out);
        dh_len += LUNA_X25519_LEN;
        ctx_len += LUNA_HPKE_PK_LEN;
    }
    LUNA_TRY(extract_and_expand(dh, dh_len, kem_context, ctx_len, shared_secret), out);
out:
    luna_wipe(dh, sizeof(dh));
    if (err != LUNA_OK)
        luna_wipe(shared_secret, NSECRET);
    return err;
}

luna_err luna_hpke_decap_internal(const uint8_t enc[LUNA_HPKE_ENC_LEN],
                                  const uint8_t sk_r[LUNA_HPKE_SK_LEN], const uint8_t *pk_s,
                                  uint8_t shared_secret[32])
{
    uint8_t dh[2 * LUNA_X25519_LEN];
    uint8_t kem_context[3 * LUNA_HPKE_PK_LEN];
    size_t dh_len = LUNA_X25519_LEN, ctx_len = 2 * LUNA_HPKE_PK_LEN;
    luna_err err;

    LUNA_ENSURE(enc != NULL && sk_r != NULL && shared_secret != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_TRY(luna_x25519(sk_r, enc, dh), out);
    memcpy(kem_context, enc, LUNA_HPKE_ENC_LEN);
    LUNA_TRY(luna_x25519_public(sk_r, kem_context + LUNA_HPKE_ENC_LEN), out);
    if (pk_s != NULL) {
        LUNA_TRY(luna_x25519(sk_r, pk_s, dh + LUNA_X25519_LEN), out);
        memcpy(kem_context + 2 * LUNA_HPKE_PK_LEN, pk_s, LUNA_HPKE_PK_LEN);
        dh_len += LUNA_X25519_LEN;
        ctx_len += LUNA_HPKE_PK_LEN;
    }
    LUNA_TRY(extract_and_expand(dh, dh_len, kem_context, ctx_len, shared_secret), out);
out:
    luna_wipe(dh, sizeof(dh));
    if (err != LUNA_OK)
        luna_wipe(shared_secret, NSECRET);
    return err;
}

/* VerifyPSKInputs (RFC 9180 5.1) plus our length rules. */
static luna_err verify_psk_inputs(const luna_hpke_params *p)
{
    bool got_psk = p->psk_len > 0;
    bool got_psk_id = p->psk_id_len > 0;
    bool psk_mode = p->mode == LUNA_HPKE_MODE_PSK || p->mode == LUNA_HPKE_MODE_AUTH_PSK;

    LUNA_ENSURE(span_ok(p->psk, p->psk_len) && span_ok(p->psk_id, p->psk_id_len),
                LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(got_psk == got_psk_id, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(got_psk == psk_mode, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(!got_psk || p->psk_len >= LUNA_HPKE_MIN_PSK_LEN, LUNA_ERR_INVALID_ARG);
    return LUNA_OK;
}

static luna_err check_params(const luna_hpke_params *p)
{
    LUNA_ENSURE(p != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_GUARD(luna_hpke_suite_check(&p->suite));
    LUNA_ENSURE(p->mode == LUNA_HPKE_MODE_BASE || p->mode == LUNA_HPKE_MODE_PSK ||
                    p->mode == LUNA_HPKE_MODE_AUTH || p->mode == LUNA_HPKE_MODE_AUTH_PSK,
                LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(span_ok(p->info, p->info_len), LUNA_ERR_INVALID_ARG);
    return verify_psk_inputs(p);
}

static bool mode_is_auth(luna_hpke_mode m)
{
    return m == LUNA_HPKE_MODE_AUTH || m == LUNA_HPKE_MODE_AUTH_PSK;
}

luna_err luna_hpke_key_schedule_internal(const luna_hpke_params *p,
                                         const uint8_t shared_secret[32], luna_hpke_schedule *out)
{
    suite_id sid;
    luna_hash h;
    size_t nh, nk;
    luna_err err;

    LUNA_ENSURE(shared_secret != NULL && out != NULL, LUNA_ERR_INVALID_ARG);
    memset(out, 0, sizeof(*out));
    LUNA_GUARD(check_params(p));
    LUNA_GUARD(kdf_of(p->suite.kdf_id, &h));
    LUNA_GUARD(aead_nk(p->suite.aead_id, &nk));
    nh = luna_hash_len(h);
    hpke_suite_id(&p->suite, &sid);

    out->nh = nh;
    out->key_len = nk;
    out->nonce_len = nk > 0 ? LUNA_HPKE_NONCE_LEN : 0;
    out->key_schedule_context[0] = (uint8_t)p->mode;
    out->key_schedule_context_len = 1 + 2 * nh;
    LUNA_TRY(labeled_extract(h, &sid, NULL, 0, "psk_id_hash", p->psk_id, p->psk_id_len,
                             out->key_schedule_context + 1),
             fail);
    LUNA_TRY(labeled_extract(h, &sid, NULL, 0, "info_hash", p->info, p->info_len,
                             out->key_schedule_context + 1 + nh),
             fail);
    LUNA_TRY(labeled_extract(h, &sid, shared_secret, NSECRET, "secret", p->psk, p->psk_len,
                             out->secret),
             fail);
    if (nk > 0) {
        LUNA_TRY(labeled_expand(h, &sid, out->secret, nh, "key", out->key_schedule_context,
                                out->key_schedule_context_len, out->key, nk),
                 fail);
        LUNA_TRY(labeled_expand(h, &sid, out->secret, nh, "base_nonce",
                                out->key_schedule_context, out->key_schedule_context_len,
                                out->base_nonce, LUNA_HPKE_NONCE_LEN),
                 fail);
    }
    LUNA_TRY(labeled_expand(h, &sid, out->secret, nh, "exp", out->key_schedule_context,
                            out->key_schedule_context_len, out->exporter_secret, nh),
             fail);
    return LUNA_OK;
fail:
    luna_wipe(out, sizeof(*out));
    return err;
}

static luna_err ctx_from_schedule(const luna_hpke_params *p, enum ctx_role role,
                                  const luna_hpke_schedule *ks, luna_hpke_ctx **out)
{
    luna_hpke_ctx *ctx;
    uint8_t *k;
    luna_err err;

    ctx = calloc(1, sizeof(*ctx));
    LUNA_ENSURE(ctx != NULL, LUNA_ERR_NOMEM);
    ctx->suite = p->suite;
    ctx->role = role;
    ctx->nh = ks->nh;
    ctx->nk = ks->key_len;
    ctx->seq = 0;
    LUNA_TRY(kdf_of(p->suite.kdf_id, &ctx->kdf), fail);
    LUNA_TRY(luna_secret_new(CTX_SECRET_LEN, &ctx->keys), fail);
    k = luna_secret_data(ctx->keys);
    memcpy(k + CTX_KEY_OFF, ks->key, ks->key_len);
    memcpy(k + CTX_NONCE_OFF, ks->base_nonce, ks->nonce_len);
    memcpy(k + CTX_EXP_OFF, ks->exporter_secret, ks->nh);
    *out = ctx;
    return LUNA_OK;
fail:
    luna_hpke_ctx_free(ctx);
    return err;
}

static luna_err setup_sender(const luna_hpke_params *p, const uint8_t *pk_r, const uint8_t *sk_s,
                             const uint8_t *sk_e, uint8_t *enc, luna_hpke_ctx **out)
{
    uint8_t shared[NSECRET];
    luna_hpke_schedule ks;
    luna_err err;

    LUNA_ENSURE(out != NULL, LUNA_ERR_INVALID_ARG);
    *out = NULL;
    LUNA_GUARD(check_params(p));
    LUNA_ENSURE(pk_r != NULL && sk_e != NULL && enc != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(mode_is_auth(p->mode) == (sk_s != NULL), LUNA_ERR_INVALID_ARG);
    memset(&ks, 0, sizeof(ks));
    LUNA_TRY(luna_hpke_encap_internal(pk_r, sk_s, sk_e, shared, enc), out);
    LUNA_TRY(luna_hpke_key_schedule_internal(p, shared, &ks), out);
    LUNA_TRY(ctx_from_schedule(p, ROLE_SENDER, &ks, out), out);
out:
    luna_wipe(shared, sizeof(shared));
    luna_wipe(&ks, sizeof(ks));
    return err;
}

luna_err luna_hpke_setup_sender_with_ephemeral(const luna_hpke_params *p,
                                               const uint8_t pk_r[LUNA_HPKE_PK_LEN],
                                               const uint8_t *sk_s,
                                               const uint8_t sk_e[LUNA_HPKE_SK_LEN],
                                               uint8_t enc[LUNA_HPKE_ENC_LEN],
                                               luna_hpke_ctx **out)
{
    return setup_sender(p, pk_r, sk_s, sk_e, enc, out);
}

luna_err luna_hpke_setup_sender(const luna_hpke_params *p, const uint8_t pk_r[LUNA_HPKE_PK_LEN],
                                const uint8_t *sk_s, uint8_t enc[LUNA_HPKE_ENC_LEN],
                                luna_hpke_ctx **out)
{
    uint8_t sk_e[LUNA_HPKE_SK_LEN], pk_e[LUNA_HPKE_PK_LEN];
    luna_err err;

    LUNA_ENSURE(out != NULL, LUNA_ERR_INVALID_ARG);
    *out = NULL;
    LUNA_TRY(luna_x25519_keygen(sk_e, pk_e), out);
    LUNA_TRY(setup_sender(p, pk_r, sk_s, sk_e, enc, out), out);
out:
    luna_wipe(sk_e, sizeof(sk_e));
    return err;
}

luna_err luna_hpke_setup_receiver(const luna_hpke_params *p, const uint8_t sk_r[LUNA_HPKE_SK_LEN],
                                  const uint8_t enc[LUNA_HPKE_ENC_LEN], const uint8_t *pk_s,
                                  luna_hpke_ctx **out)
{
    uint8_t shared[NSECRET];
    luna_hpke_schedule ks;
    luna_err err;

    LUNA_ENSURE(out != NULL, LUNA_ERR_INVALID_ARG);
    *out = NULL;
    LUNA_GUARD(check_params(p));
    LUNA_ENSURE(sk_r != NULL && enc != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(mode_is_auth(p->mode) == (pk_s != NULL), LUNA_ERR_INVALID_ARG);
    memset(&ks, 0, sizeof(ks));
    LUNA_TRY(luna_hpke_decap_internal(enc, sk_r, pk_s, shared), out);
    LUNA_TRY(luna_hpke_key_schedule_internal(p, shared, &ks), out);
    LUNA_TRY(ctx_from_schedule(p, ROLE_RECEIVER, &ks, out), out);
out:
    luna_wipe(shared, sizeof(shared));
    luna_wipe(&ks, sizeof(ks));
    return err;
}

/* ComputeNonce(seq) = base_nonce XOR I2OSP(seq, Nn). */
static void compute_nonce(const luna_hpke_ctx *ctx, uint8_t nonce[LUNA_HPKE_NONCE_LEN])
{
    const uint8_t *base = luna_secret_cdata(ctx->keys) + CTX_NONCE_OFF;
    memcpy(nonce, base, LUNA_HPKE_NONCE_LEN);
    for (size_t i = 0; i < 8; i++)
        nonce[LUNA_HPKE_NONCE_LEN - 1 - i] ^= (uint8_t)(ctx->seq >> (8 * i));
}

/*
 * Checks shared by seal and open.  The sequence number is 64 bits, far
 * below RFC 9180's 2^96 - 1; the last value is never used so that the
 * increment can never wrap into a reused nonce.
 */
static luna_err aead_precheck(const luna_hpke_ctx *ctx, enum ctx_role role, const uint8_t *aad,
                              size_t aad_len, const uint8_t *in, size_t in_len,
                              const uint8_t *out)
{
    LUNA_ENSURE(ctx != NULL && ctx->keys != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(ctx->nk > 0, LUNA_ERR_UNSUPPORTED);
    LUNA_ENSURE(ctx->role == role, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(aad != NULL || aad_len == 0, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(in != NULL || in_len == 0, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(out != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(ctx->seq != UINT64_MAX, LUNA_ERR_CONFLICT);
    return LUNA_OK;
}

luna_err luna_hpke_seal(luna_hpke_ctx *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                        size_t pt_len, uint8_t *out)
{
    uint8_t nonce[LUNA_HPKE_NONCE_LEN];
    luna_err err;

    LUNA_GUARD(aead_precheck(ctx, ROLE_SENDER, aad, aad_len, pt, pt_len, out));
    LUNA_ENSURE(pt_len <= SIZE_MAX - LUNA_HPKE_TAG_LEN, LUNA_ERR_TOO_LARGE);
    compute_nonce(ctx, nonce);
    err = luna_aead_seal((luna_aead)ctx->suite.aead_id, luna_secret_cdata(ctx->keys) + CTX_KEY_OFF,
                         ctx->nk, nonce, sizeof(nonce), aad, aad_len, pt, pt_len, out);
    if (err == LUNA_OK)
        ctx->seq++;
    luna_wipe(nonce, sizeof(nonce));
    return err;
}

luna_err luna_hpke_open(luna_hpke_ctx *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *ct,
                        size_t ct_len, uint8_t *out)
{
    uint8_t nonce[LUNA_HPKE_NONCE_LEN];
    luna_err err;

    LUNA_GUARD(aead_precheck(ctx, ROLE_RECEIVER, aad, aad_len, ct, ct_len, out));
    LUNA_ENSURE(ct_len >= LUNA_HPKE_TAG_LEN, LUNA_ERR_VERIFY);
    compute_nonce(ctx, nonce);
    err = luna_aead_open((luna_aead)ctx->suite.aead_id, luna_secret_cdata(ctx->keys) + CTX_KEY_OFF,
                         ctx->nk, nonce, sizeof(nonce), aad, aad_len, ct, ct_len, out);
    if (err == LUNA_OK)
        ctx->seq++;
    luna_wipe(nonce, sizeof(nonce));
    return err;
}

luna_err luna_hpke_export(const luna_hpke_ctx *ctx, const uint8_t *exporter_context,
                          size_t exporter_context_len, uint8_t *out, size_t out_len)
{
    suite_id sid;

    LUNA_ENSURE(ctx != NULL && ctx->keys != NULL && out != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(span_ok(exporter_context, exporter_context_len), LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(out_len >= 1 && out_len <= 255 * ctx->nh, LUNA_ERR_INVALID_ARG);
    hpke_suite_id(&ctx->suite, &sid);
    return labeled_expand(ctx->kdf, &sid, luna_secret_cdata(ctx->keys) + CTX_EXP_OFF, ctx->nh,
                          "sec", exporter_context, exporter_context_len, out, out_len);
}

void luna_hpke_ctx_free(luna_hpke_ctx *ctx)
{
    if (ctx == NULL)
        return;
    luna_secret_free(ctx->keys);
    luna_wipe(ctx, sizeof(*ctx));
    free(ctx);
}

#ifdef LUNA_TESTING
void luna_hpke_ctx_set_seq_for_testing(luna_hpke_ctx *ctx, uint64_t seq)
{
    if (ctx != NULL)
        ctx->seq = seq;
}
#endif
