/*
 * envelope.c - the double envelope (docs/envelope.md): header codec,
 * request seal/open, result seal/open with the signed receipt.  Owns no
 * long-lived state.  Must never parse except through luna_reader, never
 * release plaintext before both layers authenticated, never trust a key
 * from the wire that the caller could supply, and never leave a derived
 * key or a private key copy unwiped.
 */
#include "luna/envelope.h"

#include <stdbool.h>
#include <string.h>

#include "luna/crypto.h"
#include "luna/hpke.h"

static const uint8_t ENVELOPE_MAGIC[4] = {'L', 'U', 'N', 'E'};
static const uint8_t RECEIPT_MAGIC[4] = {'L', 'U', 'R', 'C'};
#define RECEIPT_VERSION 1
#define INNER_INFO_LABEL "lunal envelope v1 inner"
#define OUTER_KEY_LABEL "lunal envelope v1 outer key"
#define RECEIPT_SIG_LABEL "lunal result receipt v1"
#define LABEL_MAX_LEN 32
/* magic, version, 4 ids with lengths, measurement, client key, hash, signature */
#define RECEIPT_MAX_LEN                                                                            \
    (4 + 1 + 4 * (1 + LUNA_ENVELOPE_MAX_ID_LEN) + 1 + LUNA_RECEIPT_MAX_MEASUREMENT_LEN + 32 + 32 + \
     64)
#define RECEIPT_SIGNED_MAX (LABEL_MAX_LEN + RECEIPT_MAX_LEN)
#define INFO_MAX_LEN (LABEL_MAX_LEN + LUNA_ENVELOPE_MAX_HEADER_LEN)

static const luna_hpke_suite INNER_SUITE = {LUNA_HPKE_KEM_X25519_SHA256, LUNA_HPKE_KDF_HKDF_SHA256,
                                            LUNA_HPKE_AEAD_AES256GCM};

/* ---- ids ---- */

static luna_err id_check(const uint8_t *s, size_t n)
{
    LUNA_ENSURE(n >= 1 && n <= LUNA_ENVELOPE_MAX_ID_LEN, LUNA_ERR_FORMAT);
    for (size_t i = 0; i < n; i++)
        LUNA_ENSURE(s[i] >= 0x21 && s[i] <= 0x7e, LUNA_ERR_FORMAT);
    return LUNA_OK;
}

static luna_err cstr_id(const char *s, size_t *len)
{
    LUNA_ENSURE(s != NULL, LUNA_ERR_INVALID_ARG);
    *len = strnlen(s, LUNA_ENVELOPE_MAX_ID_LEN + 1);
    LUNA_ENSURE(id_check((const uint8_t *)s, *len) == LUNA_OK, LUNA_ERR_INVALID_ARG);
    return LUNA_OK;
}

static luna_err ids_len(const luna_envelope_ids *ids, size_t *total)
{
    size_t a, b, c, d;
    LUNA_ENSURE(ids != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_GUARD(cstr_id(ids->tenant, &a));
    LUNA_GUARD(cstr_id(ids->job, &b));
    LUNA_GUARD(cstr_id(ids->tee_id, &c));
    LUNA_GUARD(cstr_id(ids->request_id, &d));
    *total = a + b + c + d;
    return LUNA_OK;
}

static bool id_equal(const char *a, const char *b)
{
    size_t la = strnlen(a, LUNA_ENVELOPE_MAX_ID_LEN + 1);
    size_t lb = strnlen(b, LUNA_ENVELOPE_MAX_ID_LEN + 1);
    return la == lb && memcmp(a, b, la) == 0;
}

static luna_err write_id(luna_wbuf *w, const char *s)
{
    size_t n = strnlen(s, LUNA_ENVELOPE_MAX_ID_LEN + 1);
    LUNA_ENSURE(n >= 1 && n <= LUNA_ENVELOPE_MAX_ID_LEN, LUNA_ERR_INVALID_ARG);
    LUNA_GUARD(luna_write_u8(w, (uint8_t)n));
    return luna_write_bytes(w, s, n);
}

static luna_err read_id(luna_reader *r, char out[LUNA_ENVELOPE_MAX_ID_LEN + 1])
{
    uint8_t n;
    const uint8_t *p;
    LUNA_GUARD(luna_read_u8(r, &n));
    LUNA_GUARD(luna_read_view(r, &p, n));
    LUNA_GUARD(id_check(p, n));
    memcpy(out, p, n);
    out[n] = '\0';
    return LUNA_OK;
}

/* ---- header ---- */

/* Writes the header up to and including request_id (the HPKE info part). */
static luna_err write_header_prefix(luna_wbuf *w, uint8_t type, const luna_envelope_ids *ids)
{
    LUNA_GUARD(luna_write_bytes(w, ENVELOPE_MAGIC, sizeof(ENVELOPE_MAGIC)));
    LUNA_GUARD(luna_write_u8(w, LUNA_ENVELOPE_VERSION));
    LUNA_GUARD(luna_write_u8(w, type));
    LUNA_GUARD(luna_write_u16(w, INNER_SUITE.kem_id));
    LUNA_GUARD(luna_write_u16(w, INNER_SUITE.kdf_id));
    LUNA_GUARD(luna_write_u16(w, INNER_SUITE.aead_id));
    LUNA_GUARD(luna_write_u16(w, LUNA_AEAD_AES256GCM));
    LUNA_GUARD(write_id(w, ids->tenant));
    LUNA_GUARD(write_id(w, ids->job));
    LUNA_GUARD(write_id(w, ids->tee_id));
    return write_id(w, ids->request_id);
}

static luna_err write_header_rest(luna_wbuf *w, const uint8_t *client_pk, const uint8_t *enc,
                                  const uint8_t *nonce, uint32_t body_len)
{
    LUNA_GUARD(luna_write_bytes(w, client_pk, LUNA_ENVELOPE_KEY_LEN));
    LUNA_GUARD(luna_write_bytes(w, enc, LUNA_ENVELOPE_KEY_LEN));
    LUNA_GUARD(luna_write_bytes(w, nonce, LUNA_ENVELOPE_NONCE_LEN));
    return luna_write_u32(w, body_len);
}

/* Re-encodes a parsed header; parsing is strict, so this is byte-exact. */
static luna_err encode_header(const luna_envelope_header *h, uint8_t *buf, size_t cap,
                              size_t *prefix_len, size_t *len)
{
    luna_envelope_ids ids = {h->tenant, h->job, h->tee_id, h->request_id};
    luna_wbuf w;
    luna_wbuf_init(&w, buf, cap);
    LUNA_GUARD(write_header_prefix(&w, h->type, &ids));
    *prefix_len = w.len;
    LUNA_GUARD(write_header_rest(&w, h->client_pk, h->enc, h->outer_nonce, h->body_len));
    *len = w.len;
    return LUNA_OK;
}

luna_err luna_envelope_parse_header(const uint8_t *env, size_t env_len, luna_envelope_header *h)
{
    luna_reader r;
    uint8_t magic[4];
    uint32_t body_len;

    LUNA_ENSURE(env != NULL && h != NULL, LUNA_ERR_INVALID_ARG);
    memset(h, 0, sizeof(*h));
    luna_reader_init(&r, env, env_len);
    LUNA_GUARD(luna_read_bytes(&r, magic, sizeof(magic)));
    LUNA_ENSURE(memcmp(magic, ENVELOPE_MAGIC, sizeof(magic)) == 0, LUNA_ERR_FORMAT);
    LUNA_GUARD(luna_read_u8(&r, &h->version));
    LUNA_ENSURE(h->version == LUNA_ENVELOPE_VERSION, LUNA_ERR_UNSUPPORTED);
    LUNA_GUARD(luna_read_u8(&r, &h->type));
    LUNA_ENSURE(h->type == LUNA_ENVELOPE_TYPE_REQUEST || h->type == LUNA_ENVELOPE_TYPE_RESULT,
                LUNA_ERR_UNSUPPORTED);
    LUNA_GUARD(luna_read_u16(&r, &h->kem_id));
    LUNA_GUARD(luna_read_u16(&r, &h->kdf_id));
    LUNA_GUARD(luna_read_u16(&r, &h->aead_id));
    LUNA_GUARD(luna_read_u16(&r, &h->outer_aead_id));
    LUNA_ENSURE(h->kem_id == INNER_SUITE.kem_id && h->kdf_id == INNER_SUITE.kdf_id &&
                    h->aead_id == INNER_SUITE.aead_id && h->outer_aead_id == LUNA_AEAD_AES256GCM,
                LUNA_ERR_UNSUPPORTED);
    LUNA_GUARD(read_id(&r, h->tenant));
    LUNA_GUARD(read_id(&r, h->job));
    LUNA_GUARD(read_id(&r, h->tee_id));
    LUNA_GUARD(read_id(&r, h->request_id));
    LUNA_GUARD(luna_read_bytes(&r, h->client_pk, sizeof(h->client_pk)));
    LUNA_GUARD(luna_read_bytes(&r, h->enc, sizeof(h->enc)));
    LUNA_GUARD(luna_read_bytes(&r, h->outer_nonce, sizeof(h->outer_nonce)));
    LUNA_GUARD(luna_read_u32(&r, &body_len));
    LUNA_ENSURE(body_len <= LUNA_ENVELOPE_MAX_BODY, LUNA_ERR_TOO_LARGE);
    LUNA_ENSURE(body_len >= 2 * LUNA_ENVELOPE_TAG_LEN, LUNA_ERR_FORMAT);
    h->body_len = body_len;
    h->header_len = r.off;
    LUNA_GUARD(luna_read_skip(&r, body_len));
    return luna_read_end(&r);
}

/* ---- keys ---- */

/* outer_key = HKDF-SHA256(salt = "", ikm = OTK, info = label || type || client_pk, 32). */
static luna_err outer_key(const uint8_t *otk, uint8_t type, const uint8_t *client_pk,
                          uint8_t key[32])
{
    uint8_t info[LABEL_MAX_LEN + 1 + LUNA_ENVELOPE_KEY_LEN];
    luna_wbuf w;
    luna_wbuf_init(&w, info, sizeof(info));
    LUNA_GUARD(luna_write_bytes(&w, OUTER_KEY_LABEL, strlen(OUTER_KEY_LABEL)));
    LUNA_GUARD(luna_write_u8(&w, type));
    LUNA_GUARD(luna_write_bytes(&w, client_pk, LUNA_ENVELOPE_KEY_LEN));
    return luna_hkdf(LUNA_HASH_SHA256, NULL, 0, otk, LUNA_ENVELOPE_KEY_LEN, w.data, w.len, key, 32);
}

/* info = label || header[0 .. end of request_id]. */
static luna_err inner_params(const uint8_t *prefix, size_t prefix_len, uint8_t *info_buf,
                             luna_hpke_params *hp)
{
    luna_wbuf w;
    luna_wbuf_init(&w, info_buf, INFO_MAX_LEN);
    LUNA_GUARD(luna_write_bytes(&w, INNER_INFO_LABEL, strlen(INNER_INFO_LABEL)));
    LUNA_GUARD(luna_write_bytes(&w, prefix, prefix_len));
    memset(hp, 0, sizeof(*hp));
    hp->suite = INNER_SUITE;
    hp->mode = LUNA_HPKE_MODE_AUTH;
    hp->info = info_buf;
    hp->info_len = w.len;
    return LUNA_OK;
}

/* ---- sealing, shared by requests and results ---- */

typedef struct seal_job {
    uint8_t type;
    const luna_envelope_ids *ids;
    const uint8_t *sender_sk;
    const uint8_t *recipient_pk;
    const uint8_t *client_pk;
    const uint8_t *otk;
    const uint8_t *fixed_ephemeral_sk;
    const uint8_t *fixed_outer_nonce;
    /* inner plaintext = head || data */
    const uint8_t *head;
    size_t head_len;
    const uint8_t *data;
    size_t data_len;
} seal_job;

static luna_err seal_common(const seal_job *j, luna_wbuf *out)
{
    uint8_t info[INFO_MAX_LEN], enc[LUNA_ENVELOPE_KEY_LEN], nonce[LUNA_ENVELOPE_NONCE_LEN];
    uint8_t okey[32];
    luna_hpke_params hp;
    luna_hpke_ctx *ctx = NULL;
    luna_wbuf w;
    size_t ids_total, total, prefix_len, inner_pt_len, body_len;
    uint8_t *start, *body;
    luna_err err;

    LUNA_ENSURE(out != NULL && j->sender_sk != NULL && j->recipient_pk != NULL &&
                    j->client_pk != NULL && j->otk != NULL,
                LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(j->data != NULL || j->data_len == 0, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(j->data_len <= LUNA_ENVELOPE_MAX_PAYLOAD, LUNA_ERR_TOO_LARGE);
    LUNA_GUARD(ids_len(j->ids, &ids_total));
    inner_pt_len = j->head_len + j->data_len;
    body_len = inner_pt_len + 2 * LUNA_ENVELOPE_TAG_LEN;
    LUNA_ENSURE(body_len <= LUNA_ENVELOPE_MAX_BODY, LUNA_ERR_TOO_LARGE);
    total = LUNA_ENVELOPE_FIXED_HEADER_LEN + ids_total + body_len;
    LUNA_ENSURE(out->data != NULL && out->cap - out->len >= total, LUNA_ERR_TOO_LARGE);

    start = out->data + out->len;
    luna_wbuf_init(&w, start, total);
    LUNA_TRY(write_header_prefix(&w, j->type, j->ids), fail);
    prefix_len = w.len;
    LUNA_TRY(inner_params(start, prefix_len, info, &hp), fail);
    if (j->fixed_ephemeral_sk != NULL)
        LUNA_TRY(luna_hpke_setup_sender_with_ephemeral(&hp, j->recipient_pk, j->sender_sk,
                                                       j->fixed_ephemeral_sk, enc, &ctx),
                 fail);
    else
        LUNA_TRY(luna_hpke_setup_sender(&hp, j->recipient_pk, j->sender_sk, enc, &ctx), fail);
    if (j->fixed_outer_nonce != NULL)
        memcpy(nonce, j->fixed_outer_nonce, sizeof(nonce));
    else
        LUNA_TRY(luna_random(nonce, sizeof(nonce)), fail);
    LUNA_TRY(write_header_rest(&w, j->client_pk, enc, nonce, (uint32_t)body_len), fail);

    /*
     * A request's plaintext is encrypted straight from the caller's buffer
     * into the body (no copy); a result's receipt and data are first
     * gathered there.  The outer layer then encrypts in place.
     */
    body = start + w.len;
    if (j->head_len == 0) {
        LUNA_TRY(luna_hpke_seal(ctx, start, w.len, j->data, j->data_len, body), fail);
    } else {
        memcpy(body, j->head, j->head_len);
        if (j->data_len > 0)
            memcpy(body + j->head_len, j->data, j->data_len);
        LUNA_TRY(luna_hpke_seal(ctx, start, w.len, body, inner_pt_len, body), fail);
    }
    LUNA_TRY(outer_key(j->otk, j->type, j->client_pk, okey), fail);
    LUNA_TRY(luna_aead_seal(LUNA_AEAD_AES256GCM, okey, sizeof(okey), nonce, sizeof(nonce), start,
                            w.len, body, inner_pt_len + LUNA_ENVELOPE_TAG_LEN, body),
             fail);
    out->len += total;
    err = LUNA_OK;
    goto done;
fail:
    luna_wipe(start, total); /* no half-sealed plaintext left behind */
done:
    luna_hpke_ctx_free(ctx);
    luna_wipe(okey, sizeof(okey));
    return err;
}

luna_err luna_envelope_sealed_len(const luna_envelope_ids *ids, size_t pt_len, size_t *out_len)
{
    size_t ids_total;
    LUNA_ENSURE(out_len != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_GUARD(ids_len(ids, &ids_total));
    LUNA_ENSURE(pt_len <= LUNA_ENVELOPE_MAX_PAYLOAD, LUNA_ERR_TOO_LARGE);
    *out_len = LUNA_ENVELOPE_FIXED_HEADER_LEN + ids_total + pt_len + 2 * LUNA_ENVELOPE_TAG_LEN;
    return LUNA_OK;
}

luna_err luna_envelope_seal(const luna_envelope_seal_params *p, const uint8_t *pt, size_t pt_len,
                            luna_wbuf *out)
{
    uint8_t client_pk[LUNA_ENVELOPE_KEY_LEN];
    seal_job j;

    LUNA_ENSURE(p != NULL && p->client_sk != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_GUARD(luna_x25519_public(p->client_sk, client_pk));
    memset(&j, 0, sizeof(j));
    j.type = LUNA_ENVELOPE_TYPE_REQUEST;
    j.ids = &p->ids;
    j.sender_sk = p->client_sk;
    j.recipient_pk = p->tee_pk;
    j.client_pk = client_pk;
    j.otk = p->otk;
    j.fixed_ephemeral_sk = p->fixed_ephemeral_sk;
    j.fixed_outer_nonce = p->fixed_outer_nonce;
    j.data = pt;
    j.data_len = pt_len;
    return seal_common(&j, out);
}

/* ---- opening ---- */

luna_err luna_envelope_open_outer(uint8_t *env, size_t env_len, uint8_t type,
                                  const uint8_t otk[LUNA_ENVELOPE_KEY_LEN],
                                  const uint8_t client_pk[LUNA_ENVELOPE_KEY_LEN],
                                  luna_envelope_header *h, uint8_t **inner, size_t *inner_len)
{
    uint8_t okey[32];
    uint8_t *body;
    luna_err err;

    LUNA_ENSURE(otk != NULL && client_pk != NULL && inner != NULL && inner_len != NULL,
                LUNA_ERR_INVALID_ARG);
    *inner = NULL;
    *inner_len = 0;
    LUNA_GUARD(luna_envelope_parse_header(env, env_len, h));
    LUNA_ENSURE(h->type == type, LUNA_ERR_VERIFY);
    /* The OTK belongs to one client key; an envelope naming another is not ours to open. */
    LUNA_ENSURE(luna_ct_equal(h->client_pk, client_pk, LUNA_ENVELOPE_KEY_LEN), LUNA_ERR_VERIFY);
    body = env + h->header_len;
    LUNA_TRY(outer_key(otk, h->type, client_pk, okey), out);
    LUNA_TRY(luna_aead_open(LUNA_AEAD_AES256GCM, okey, sizeof(okey), h->outer_nonce,
                            sizeof(h->outer_nonce), env, h->header_len, body, h->body_len, body),
             out);
    *inner = body;
    *inner_len = h->body_len - LUNA_ENVELOPE_TAG_LEN;
out:
    luna_wipe(okey, sizeof(okey));
    return err;
}

luna_err luna_envelope_open_inner(const luna_envelope_header *h, uint8_t *inner, size_t inner_len,
                                  const uint8_t recipient_sk[LUNA_ENVELOPE_KEY_LEN],
                                  const uint8_t sender_pk[LUNA_ENVELOPE_KEY_LEN], uint8_t **pt,
                                  size_t *pt_len)
{
    uint8_t hdr[LUNA_ENVELOPE_MAX_HEADER_LEN], info[INFO_MAX_LEN];
    size_t prefix_len, hdr_len;
    luna_hpke_params hp;
    luna_hpke_ctx *ctx = NULL;
    luna_err err;

    LUNA_ENSURE(h != NULL && inner != NULL && recipient_sk != NULL && sender_pk != NULL &&
                    pt != NULL && pt_len != NULL,
                LUNA_ERR_INVALID_ARG);
    *pt = NULL;
    *pt_len = 0;
    LUNA_ENSURE(inner_len == (size_t)h->body_len - LUNA_ENVELOPE_TAG_LEN, LUNA_ERR_INVALID_ARG);
    LUNA_GUARD(encode_header(h, hdr, sizeof(hdr), &prefix_len, &hdr_len));
    LUNA_ENSURE(hdr_len == h->header_len, LUNA_ERR_INVALID_ARG);
    LUNA_GUARD(inner_params(hdr, prefix_len, info, &hp));
    LUNA_TRY(luna_hpke_setup_receiver(&hp, recipient_sk, h->enc, sender_pk, &ctx), out);
    LUNA_TRY(luna_hpke_open(ctx, hdr, hdr_len, inner, inner_len, inner), out);
    *pt = inner;
    *pt_len = inner_len - LUNA_ENVELOPE_TAG_LEN;
out:
    luna_hpke_ctx_free(ctx);
    return err;
}

luna_err luna_envelope_open(uint8_t *env, size_t env_len, const luna_envelope_open_params *p,
                            luna_envelope_header *h, uint8_t **pt, size_t *pt_len)
{
    uint8_t *inner;
    size_t inner_len;
    luna_err err;

    LUNA_ENSURE(p != NULL && p->tee_id != NULL && p->tenant != NULL && p->job != NULL &&
                    p->request_id != NULL && p->tee_sk != NULL && p->otk != NULL &&
                    p->client_pk != NULL && h != NULL && pt != NULL && pt_len != NULL,
                LUNA_ERR_INVALID_ARG);
    *pt = NULL;
    *pt_len = 0;
    /* Refuse an envelope for another TEE, or for anything other than what
     * the KMS released this key for, before spending any crypto on it. */
    LUNA_GUARD(luna_envelope_parse_header(env, env_len, h));
    LUNA_ENSURE(id_equal(h->tee_id, p->tee_id) && id_equal(h->tenant, p->tenant) &&
                    id_equal(h->job, p->job) && id_equal(h->request_id, p->request_id),
                LUNA_ERR_VERIFY);
    LUNA_GUARD(luna_envelope_open_outer(env, env_len, LUNA_ENVELOPE_TYPE_REQUEST, p->otk,
                                        p->client_pk, h, &inner, &inner_len));
    err = luna_envelope_open_inner(h, inner, inner_len, p->tee_sk, p->client_pk, pt, pt_len);
    if (err != LUNA_OK) {
        luna_wipe(inner, inner_len); /* outer plaintext is not to be handed out */
        return err;
    }
    if (*pt_len > LUNA_ENVELOPE_MAX_PAYLOAD) {
        luna_wipe(inner, inner_len);
        *pt = NULL;
        *pt_len = 0;
        return LUNA_ERR_TOO_LARGE;
    }
    return LUNA_OK;
}

/* ---- results ---- */

static luna_err write_receipt_body(luna_wbuf *w, const luna_envelope_ids *ids,
                                   const uint8_t *measurement, size_t measurement_len,
                                   const uint8_t *client_pk, const uint8_t *hash)
{
    LUNA_GUARD(luna_write_bytes(w, RECEIPT_MAGIC, sizeof(RECEIPT_MAGIC)));
    LUNA_GUARD(luna_write_u8(w, RECEIPT_VERSION));
    LUNA_GUARD(write_id(w, ids->tenant));
    LUNA_GUARD(write_id(w, ids->job));
    LUNA_GUARD(write_id(w, ids->tee_id));
    LUNA_GUARD(write_id(w, ids->request_id));
    LUNA_GUARD(luna_write_u8(w, (uint8_t)measurement_len));
    LUNA_GUARD(luna_write_bytes(w, measurement, measurement_len));
    LUNA_GUARD(luna_write_bytes(w, client_pk, LUNA_ENVELOPE_KEY_LEN));
    return luna_write_bytes(w, hash, 32);
}

/* The signed message: label || receipt without its signature. */
static luna_err receipt_signed_msg(const uint8_t *body, size_t body_len, uint8_t *msg,
                                   size_t *msg_len)
{
    luna_wbuf w;
    luna_wbuf_init(&w, msg, RECEIPT_SIGNED_MAX);
    LUNA_GUARD(luna_write_bytes(&w, RECEIPT_SIG_LABEL, strlen(RECEIPT_SIG_LABEL)));
    LUNA_GUARD(luna_write_bytes(&w, body, body_len));
    *msg_len = w.len;
    return LUNA_OK;
}

luna_err luna_result_sealed_len(const luna_envelope_ids *ids, size_t measurement_len,
                                size_t result_len, size_t *out_len)
{
    size_t ids_total;
    LUNA_ENSURE(out_len != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_GUARD(ids_len(ids, &ids_total));
    LUNA_ENSURE(measurement_len >= 1 && measurement_len <= LUNA_RECEIPT_MAX_MEASUREMENT_LEN,
                LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(result_len <= LUNA_ENVELOPE_MAX_PAYLOAD, LUNA_ERR_TOO_LARGE);
    /* header + u16 receipt length + receipt + data + two tags */
    *out_len = LUNA_ENVELOPE_FIXED_HEADER_LEN + ids_total + 2 +
               (4 + 1 + 4 + ids_total + 1 + measurement_len + 32 + 32 + 64) + result_len +
               2 * LUNA_ENVELOPE_TAG_LEN;
    return LUNA_OK;
}

luna_err luna_result_seal(const luna_result_seal_params *p, const uint8_t *result,
                          size_t result_len, luna_wbuf *out)
{
    uint8_t head[2 + RECEIPT_MAX_LEN], msg[RECEIPT_SIGNED_MAX], hash[32];
    size_t ids_total, msg_len, receipt_len;
    luna_wbuf w;
    seal_job j;
    luna_err err;

    LUNA_ENSURE(p != NULL && p->tee_sk != NULL && p->client_pk != NULL && p->sign_seed != NULL &&
                    p->measurement != NULL,
                LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(p->measurement_len >= 1 &&
                    p->measurement_len <= LUNA_RECEIPT_MAX_MEASUREMENT_LEN,
                LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(result != NULL || result_len == 0, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(result_len <= LUNA_ENVELOPE_MAX_PAYLOAD, LUNA_ERR_TOO_LARGE);
    LUNA_GUARD(ids_len(&p->ids, &ids_total));
    LUNA_GUARD(luna_sha256(result, result_len, hash));

    /* head = u16 receipt_len || receipt body || signature */
    luna_wbuf_init(&w, head, sizeof(head));
    LUNA_GUARD(luna_write_u16(&w, 0)); /* patched below */
    LUNA_GUARD(write_receipt_body(&w, &p->ids, p->measurement, p->measurement_len, p->client_pk,
                                  hash));
    LUNA_GUARD(receipt_signed_msg(head + 2, w.len - 2, msg, &msg_len));
    LUNA_ENSURE(w.cap - w.len >= LUNA_ED25519_SIG_LEN, LUNA_ERR_INTERNAL);
    LUNA_GUARD(luna_ed25519_sign(p->sign_seed, msg, msg_len, head + w.len));
    w.len += LUNA_ED25519_SIG_LEN;
    receipt_len = w.len - 2;
    head[0] = (uint8_t)(receipt_len >> 8);
    head[1] = (uint8_t)(receipt_len & 0xff);

    memset(&j, 0, sizeof(j));
    j.type = LUNA_ENVELOPE_TYPE_RESULT;
    j.ids = &p->ids;
    j.sender_sk = p->tee_sk;
    j.recipient_pk = p->client_pk;
    j.client_pk = p->client_pk;
    j.otk = p->otk;
    j.fixed_ephemeral_sk = p->fixed_ephemeral_sk;
    j.fixed_outer_nonce = p->fixed_outer_nonce;
    j.head = head;
    j.head_len = w.len;
    j.data = result;
    j.data_len = result_len;
    err = seal_common(&j, out);
    luna_wipe(head, sizeof(head));
    return err;
}

/* Parses and checks the receipt at the start of the inner plaintext. */
static luna_err check_receipt(const uint8_t *pt, size_t pt_len, const luna_result_open_params *p,
                              const luna_envelope_header *h, luna_receipt *rc, size_t *data_off)
{
    luna_reader r, rr;
    uint16_t receipt_len;
    const uint8_t *receipt, *signed_part, *data;
    uint8_t magic[4], version, mlen, msg[RECEIPT_SIGNED_MAX], hash[32];
    size_t msg_len, signed_len, data_len;

    luna_reader_init(&r, pt, pt_len);
    LUNA_GUARD(luna_read_u16(&r, &receipt_len));
    LUNA_ENSURE(receipt_len <= RECEIPT_MAX_LEN && receipt_len > LUNA_ED25519_SIG_LEN,
                LUNA_ERR_FORMAT);
    LUNA_GUARD(luna_read_view(&r, &receipt, receipt_len));
    *data_off = r.off;
    data_len = luna_reader_left(&r);
    LUNA_GUARD(luna_read_view(&r, &data, data_len));
    LUNA_ENSURE(data_len <= LUNA_ENVELOPE_MAX_PAYLOAD, LUNA_ERR_TOO_LARGE);

    luna_reader_init(&rr, receipt, receipt_len);
    LUNA_GUARD(luna_read_bytes(&rr, magic, sizeof(magic)));
    LUNA_ENSURE(memcmp(magic, RECEIPT_MAGIC, sizeof(magic)) == 0, LUNA_ERR_FORMAT);
    LUNA_GUARD(luna_read_u8(&rr, &version));
    LUNA_ENSURE(version == RECEIPT_VERSION, LUNA_ERR_UNSUPPORTED);
    LUNA_GUARD(read_id(&rr, rc->tenant));
    LUNA_GUARD(read_id(&rr, rc->job));
    LUNA_GUARD(read_id(&rr, rc->tee_id));
    LUNA_GUARD(read_id(&rr, rc->request_id));
    LUNA_GUARD(luna_read_u8(&rr, &mlen));
    LUNA_ENSURE(mlen >= 1 && mlen <= LUNA_RECEIPT_MAX_MEASUREMENT_LEN, LUNA_ERR_FORMAT);
    LUNA_GUARD(luna_read_bytes(&rr, rc->measurement, mlen));
    rc->measurement_len = mlen;
    LUNA_GUARD(luna_read_bytes(&rr, rc->client_pk, sizeof(rc->client_pk)));
    LUNA_GUARD(luna_read_bytes(&rr, rc->result_hash, sizeof(rc->result_hash)));
    signed_len = rr.off;
    signed_part = receipt;
    LUNA_GUARD(luna_read_bytes(&rr, rc->signature, sizeof(rc->signature)));
    LUNA_GUARD(luna_read_end(&rr));

    LUNA_GUARD(receipt_signed_msg(signed_part, signed_len, msg, &msg_len));
    LUNA_ENSURE(luna_ed25519_verify(p->tee_sign_pk, msg, msg_len, rc->signature,
                                    sizeof(rc->signature)) == LUNA_OK,
                LUNA_ERR_VERIFY);
    /* Receipt, header and the request the client sent must all agree. */
    LUNA_ENSURE(id_equal(rc->tenant, p->expected.tenant) && id_equal(rc->job, p->expected.job) &&
                    id_equal(rc->tee_id, p->expected.tee_id) &&
                    id_equal(rc->request_id, p->expected.request_id),
                LUNA_ERR_VERIFY);
    LUNA_ENSURE(id_equal(h->tenant, rc->tenant) && id_equal(h->job, rc->job) &&
                    id_equal(h->tee_id, rc->tee_id) && id_equal(h->request_id, rc->request_id),
                LUNA_ERR_VERIFY);
    LUNA_ENSURE(memcmp(rc->client_pk, h->client_pk, LUNA_ENVELOPE_KEY_LEN) == 0, LUNA_ERR_VERIFY);
    if (p->expected_measurement != NULL)
        LUNA_ENSURE(p->expected_measurement_len == rc->measurement_len &&
                        memcmp(p->expected_measurement, rc->measurement, rc->measurement_len) ==
                            0,
                    LUNA_ERR_VERIFY);
    LUNA_GUARD(luna_sha256(data, data_len, hash));
    LUNA_ENSURE(luna_ct_equal(hash, rc->result_hash, sizeof(hash)), LUNA_ERR_VERIFY);
    return LUNA_OK;
}

luna_err luna_result_open(uint8_t *env, size_t env_len, const luna_result_open_params *p,
                          luna_receipt *receipt, uint8_t **result, size_t *result_len)
{
    uint8_t my_pk[LUNA_ENVELOPE_KEY_LEN];
    luna_envelope_header h;
    uint8_t *inner, *pt;
    size_t inner_len, pt_len, data_off;
    size_t unused;
    luna_err err;

    LUNA_ENSURE(p != NULL && p->client_sk != NULL && p->tee_pk != NULL &&
                    p->tee_sign_pk != NULL && p->otk != NULL && receipt != NULL &&
                    result != NULL && result_len != NULL,
                LUNA_ERR_INVALID_ARG);
    LUNA_GUARD(ids_len(&p->expected, &unused));
    *result = NULL;
    *result_len = 0;
    memset(receipt, 0, sizeof(*receipt));
    LUNA_GUARD(luna_x25519_public(p->client_sk, my_pk));
    LUNA_GUARD(luna_envelope_open_outer(env, env_len, LUNA_ENVELOPE_TYPE_RESULT, p->otk, my_pk,
                                        &h, &inner, &inner_len));
    LUNA_TRY(luna_envelope_open_inner(&h, inner, inner_len, p->client_sk, p->tee_pk, &pt, &pt_len),
             fail);
    err = check_receipt(pt, pt_len, p, &h, receipt, &data_off);
    /* Inside authenticated layers, any receipt defect is a failed
     * verification of the result (docs/envelope.md), whatever its shape. */
    LUNA_TRY_ENSURE(err == LUNA_OK, LUNA_ERR_VERIFY, fail);
    *result = pt + data_off;
    *result_len = pt_len - data_off;
    return LUNA_OK;
fail:
    luna_wipe(inner, inner_len);
    memset(receipt, 0, sizeof(*receipt));
    return err;
}
