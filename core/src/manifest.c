/*
 * manifest.c - signed deployment manifests: the canonical payload, the
 * JWS (EdDSA) around it, signing and pinned-key verification
 * (docs/manifest.md).
 *
 * It must never take a key from the manifest, never accept a second
 * encoding of the same manifest (header and payload are compared
 * byte-for-byte with their canonical re-encoding), and never accept a
 * field it does not know.
 */
#include "luna/manifest.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/json.h"
#include "manifest_internal.h"

#define MANIFEST_TYP "lunal-manifest+v1"
#define BUILD_HASH_PREFIX "sha256:"
/* Longest canonical payload: every field at its cap. */
#define PAYLOAD_MAX 4096u
#define HEADER_MAX 128u
/* 64 signature bytes in base64url without padding. */
#define SIG_B64_LEN 86u

/* ---- key identity ---- */

luna_err luna_manifest_mr_signer(const uint8_t pk[LUNA_ED25519_PUB_LEN],
                                 uint8_t out[LUNA_MANIFEST_HASH_LEN])
{
    if (pk == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    return luna_sha256(pk, LUNA_ED25519_PUB_LEN, out);
}

luna_err luna_manifest_key_id(const uint8_t pk[LUNA_ED25519_PUB_LEN],
                              char out[LUNA_MANIFEST_KEY_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t h[LUNA_SHA256_LEN];

    if (pk == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    LUNA_GUARD(luna_sha256(pk, LUNA_ED25519_PUB_LEN, h));
    for (size_t i = 0; i < 16; i++) {
        out[3 * i] = hex[h[i] >> 4];
        out[3 * i + 1] = hex[h[i] & 0xf];
        out[3 * i + 2] = i == 15 ? '\0' : ':';
    }
    return LUNA_OK;
}

/* ---- canonical payload ---- */

static bool ident_ok(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (n >= max)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

static luna_err check_fields(const luna_manifest *m)
{
    if (!ident_ok(m->name, LUNA_MANIFEST_NAME_MAX) ||
        !ident_ok(m->version, LUNA_MANIFEST_VERSION_MAX) ||
        !ident_ok(m->developer_id, LUNA_MANIFEST_DEV_ID_MAX) || m->n_jobs == 0 ||
        m->n_jobs > LUNA_MANIFEST_MAX_JOBS ||
        (m->mr_enclave_len != 32 && m->mr_enclave_len != 48))
        return LUNA_ERR_INVALID_ARG;
    for (size_t i = 0; i < m->n_jobs; i++) {
        if (!ident_ok(m->jobs[i], LUNA_MANIFEST_JOB_MAX))
            return LUNA_ERR_INVALID_ARG;
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->jobs[i], m->jobs[j]) == 0)
                return LUNA_ERR_INVALID_ARG;
    }
    return LUNA_OK;
}

static luna_err put_str(luna_wbuf *w, const char *s)
{
    return luna_write_bytes(w, s, strlen(s));
}

static luna_err put_hex(luna_wbuf *w, const uint8_t *b, size_t n)
{
    char tmp[2 * LUNA_MANIFEST_MR_ENCLAVE_MAX + 1];
    LUNA_GUARD(luna_hex_encode(b, n, tmp, sizeof(tmp)));
    return put_str(w, tmp);
}

/*
 * The one encoding: keys sorted, no whitespace, strings without escapes
 * (the field rules leave nothing to escape), hex lowercase.
 */
static luna_err write_payload(const luna_manifest *m, luna_wbuf *w)
{
    LUNA_GUARD(put_str(w, "{\"build_hash\":\"" BUILD_HASH_PREFIX));
    LUNA_GUARD(put_hex(w, m->build_hash, LUNA_MANIFEST_HASH_LEN));
    LUNA_GUARD(put_str(w, "\",\"developer_id\":\""));
    LUNA_GUARD(put_str(w, m->developer_id));
    LUNA_GUARD(put_str(w, "\",\"jobs\":["));
    for (size_t i = 0; i < m->n_jobs; i++) {
        LUNA_GUARD(put_str(w, i == 0 ? "\"" : ",\""));
        LUNA_GUARD(put_str(w, m->jobs[i]));
        LUNA_GUARD(put_str(w, "\""));
    }
    LUNA_GUARD(put_str(w, "],\"key_id\":\""));
    LUNA_GUARD(put_str(w, m->key_id));
    LUNA_GUARD(put_str(w, "\",\"mr_enclave\":\""));
    LUNA_GUARD(put_hex(w, m->mr_enclave, m->mr_enclave_len));
    LUNA_GUARD(put_str(w, "\",\"mr_signer\":\""));
    LUNA_GUARD(put_hex(w, m->mr_signer, LUNA_MANIFEST_HASH_LEN));
    LUNA_GUARD(put_str(w, "\",\"name\":\""));
    LUNA_GUARD(put_str(w, m->name));
    LUNA_GUARD(put_str(w, "\",\"v\":1,\"version\":\""));
    LUNA_GUARD(put_str(w, m->version));
    return put_str(w, "\"}");
}

static luna_err write_header(const char *kid, luna_wbuf *w)
{
    LUNA_GUARD(put_str(w, "{\"alg\":\"EdDSA\",\"kid\":\""));
    LUNA_GUARD(put_str(w, kid));
    return put_str(w, "\",\"typ\":\"" MANIFEST_TYP "\"}");
}

static const luna_json_field job_item = {.name = "job", .type = LUNA_JSON_T_STRING,
                                         .min_len = 1, .max_len = LUNA_MANIFEST_JOB_MAX,
                                         .pattern = LUNA_JSON_PAT_IDENT};

static const luna_json_field payload_fields[] = {
    {.name = "build_hash", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 71, .max_len = 71, .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "developer_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = LUNA_MANIFEST_DEV_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "jobs", .type = LUNA_JSON_T_ARRAY, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = LUNA_MANIFEST_MAX_JOBS, .items = &job_item},
    {.name = "key_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = LUNA_MANIFEST_KEY_ID_LEN, .max_len = LUNA_MANIFEST_KEY_ID_LEN,
     .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "mr_enclave", .type = LUNA_JSON_T_HEX, .flags = LUNA_JSON_REQUIRED, .min_len = 32,
     .max_len = LUNA_MANIFEST_MR_ENCLAVE_MAX},
    {.name = "mr_signer", .type = LUNA_JSON_T_HEX, .flags = LUNA_JSON_REQUIRED, .min_len = 32,
     .max_len = 32},
    {.name = "name", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = LUNA_MANIFEST_NAME_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "v", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED,
     .min = LUNA_MANIFEST_FORMAT_VERSION, .max = LUNA_MANIFEST_FORMAT_VERSION},
    {.name = "version", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = LUNA_MANIFEST_VERSION_MAX, .pattern = LUNA_JSON_PAT_IDENT},
};
static const luna_json_schema payload_schema = {payload_fields,
                                                sizeof(payload_fields) / sizeof(payload_fields[0]),
                                                NULL};

static const char *const alg_values[] = {"EdDSA", NULL};
static const char *const typ_values[] = {MANIFEST_TYP, NULL};
static const luna_json_field header_fields[] = {
    {.name = "alg", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = 16, .pattern = LUNA_JSON_PAT_PRINTABLE, .one_of = alg_values},
    {.name = "kid", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = LUNA_MANIFEST_KEY_ID_LEN, .max_len = LUNA_MANIFEST_KEY_ID_LEN,
     .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "typ", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = 32, .pattern = LUNA_JSON_PAT_PRINTABLE, .one_of = typ_values},
};
static const luna_json_schema header_schema = {header_fields,
                                               sizeof(header_fields) / sizeof(header_fields[0]),
                                               NULL};

static void copy_str(char *dst, size_t cap, const char *src, size_t n)
{
    /* Lengths were bounded by the schema; cap is the field's array. */
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

luna_err luna_manifest_parse_payload(const char *payload, size_t len, luna_manifest *out)
{
    luna_err err = LUNA_OK;
    json_t *root = NULL;
    const json_t *jobs = NULL;
    const char *s = NULL;
    size_t n = 0, count = 0;
    luna_manifest m;
    uint8_t canon[PAYLOAD_MAX];
    luna_wbuf w;
    luna_json_limits lim = {.max_bytes = PAYLOAD_MAX, .max_depth = 2};

    if (payload == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    memset(&m, 0, sizeof(m));
    LUNA_TRY(luna_json_parse(payload, len, &payload_schema, &lim, &root, NULL), out);
    LUNA_TRY(luna_json_get_string(root, "name", &s, &n), out);
    copy_str(m.name, sizeof(m.name), s, n);
    LUNA_TRY(luna_json_get_string(root, "version", &s, &n), out);
    copy_str(m.version, sizeof(m.version), s, n);
    LUNA_TRY(luna_json_get_string(root, "developer_id", &s, &n), out);
    copy_str(m.developer_id, sizeof(m.developer_id), s, n);
    LUNA_TRY(luna_json_get_string(root, "key_id", &s, &n), out);
    copy_str(m.key_id, sizeof(m.key_id), s, n);
    LUNA_TRY(luna_json_get_string(root, "build_hash", &s, &n), out);
    LUNA_TRY_ENSURE(n == 71 && memcmp(s, BUILD_HASH_PREFIX, 7) == 0, LUNA_ERR_FORMAT, out);
    LUNA_TRY(luna_hex_decode(s + 7, 64, m.build_hash, sizeof(m.build_hash), &n), out);
    LUNA_TRY(luna_json_get_hex(root, "mr_enclave", m.mr_enclave, sizeof(m.mr_enclave),
                               &m.mr_enclave_len),
             out);
    LUNA_TRY_ENSURE(m.mr_enclave_len == 32 || m.mr_enclave_len == 48, LUNA_ERR_FORMAT, out);
    LUNA_TRY(luna_json_get_hex(root, "mr_signer", m.mr_signer, sizeof(m.mr_signer), &n), out);
    LUNA_TRY(luna_json_get_array(root, "jobs", &jobs, &count), out);
    LUNA_TRY_ENSURE(count >= 1 && count <= LUNA_MANIFEST_MAX_JOBS, LUNA_ERR_FORMAT, out);
    for (size_t i = 0; i < count; i++) {
        const json_t *j = json_array_get(jobs, i);
        LUNA_TRY_ENSURE(json_is_string(j), LUNA_ERR_FORMAT, out);
        copy_str(m.jobs[i], sizeof(m.jobs[i]), json_string_value(j), json_string_length(j));
    }
    m.n_jobs = count;
    /* Field rules (distinct jobs included), then the one encoding. */
    LUNA_TRY_ENSURE(check_fields(&m) == LUNA_OK, LUNA_ERR_FORMAT, out);
    luna_wbuf_init(&w, canon, sizeof(canon));
    LUNA_TRY_ENSURE(write_payload(&m, &w) == LUNA_OK, LUNA_ERR_FORMAT, out);
    LUNA_TRY_ENSURE(w.len == len && memcmp(canon, payload, len) == 0, LUNA_ERR_FORMAT, out);
    *out = m;
out:
    if (err == LUNA_ERR_NOT_FOUND || err == LUNA_ERR_TOO_LARGE)
        err = LUNA_ERR_FORMAT;
    json_decref(root);
    return err;
}

/* ---- sign ---- */

luna_err luna_manifest_sign(const luna_manifest *in, const uint8_t seed[LUNA_ED25519_SEED_LEN],
                            char **out, size_t *out_len)
{
    luna_err err = LUNA_OK;
    luna_manifest m;
    uint8_t pk[LUNA_ED25519_PUB_LEN], sig[LUNA_ED25519_SIG_LEN];
    uint8_t payload[PAYLOAD_MAX], header[HEADER_MAX];
    luna_wbuf pw, hw;
    char *jws = NULL;

    if (in == NULL || seed == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    if (out_len != NULL)
        *out_len = 0;
    m = *in;
    LUNA_GUARD(check_fields(&m));
    LUNA_GUARD(luna_ed25519_public(seed, pk));
    LUNA_GUARD(luna_manifest_key_id(pk, m.key_id));
    LUNA_GUARD(luna_manifest_mr_signer(pk, m.mr_signer));
    luna_wbuf_init(&pw, payload, sizeof(payload));
    luna_wbuf_init(&hw, header, sizeof(header));
    LUNA_GUARD(write_payload(&m, &pw));
    LUNA_GUARD(write_header(m.key_id, &hw));

    size_t hlen = LUNA_B64URL_ENC_LEN(hw.len) - 1, plen = LUNA_B64URL_ENC_LEN(pw.len) - 1;
    size_t total = hlen + 1 + plen + 1 + LUNA_B64URL_ENC_LEN(LUNA_ED25519_SIG_LEN) - 1;
    if (total > LUNA_MANIFEST_MAX_LEN)
        return LUNA_ERR_TOO_LARGE;
    jws = malloc(total + 1);
    if (jws == NULL)
        return LUNA_ERR_NOMEM;
    LUNA_TRY(luna_b64url_encode(hw.data, hw.len, jws, hlen + 1), fail);
    hlen = strlen(jws);
    jws[hlen] = '.';
    LUNA_TRY(luna_b64url_encode(pw.data, pw.len, jws + hlen + 1, total + 1 - hlen - 1), fail);
    size_t signing_len = strlen(jws);
    LUNA_TRY(luna_ed25519_sign(seed, (const uint8_t *)jws, signing_len, sig), fail);
    jws[signing_len] = '.';
    LUNA_TRY(luna_b64url_encode(sig, sizeof(sig), jws + signing_len + 1,
                                total + 1 - signing_len - 1),
             fail);
    *out = jws;
    if (out_len != NULL)
        *out_len = strlen(jws);
    return LUNA_OK;
fail:
    free(jws);
    return err;
}

/* ---- verify ---- */

luna_err luna_manifest_verify(const char *jws, size_t len, const char *developer_id,
                              const uint8_t pk[LUNA_ED25519_PUB_LEN], luna_manifest *out)
{
    luna_err err = LUNA_OK;
    const char *dot1 = NULL, *dot2 = NULL;
    uint8_t header[HEADER_MAX], payload[PAYLOAD_MAX], sig[LUNA_ED25519_SIG_LEN + 2];
    uint8_t canon[HEADER_MAX], mr_signer[LUNA_MANIFEST_HASH_LEN];
    size_t hlen = 0, plen = 0, slen = 0;
    char kid[LUNA_MANIFEST_KEY_ID_LEN + 1];
    json_t *hroot = NULL;
    luna_wbuf w;
    luna_manifest m;
    luna_json_limits hlim = {.max_bytes = HEADER_MAX, .max_depth = 1};

    if (jws == NULL || developer_id == NULL || pk == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (len > LUNA_MANIFEST_MAX_LEN)
        return LUNA_ERR_TOO_LARGE;
    for (size_t i = 0; i < len; i++) {
        if (jws[i] != '.')
            continue;
        if (dot1 == NULL)
            dot1 = jws + i;
        else if (dot2 == NULL)
            dot2 = jws + i;
        else
            return LUNA_ERR_FORMAT;
    }
    if (dot2 == NULL)
        return LUNA_ERR_FORMAT;
    size_t h64 = (size_t)(dot1 - jws), p64 = (size_t)(dot2 - dot1 - 1);
    size_t s64 = len - (size_t)(dot2 - jws) - 1;
    if (h64 > LUNA_B64URL_ENC_LEN(HEADER_MAX) || p64 > LUNA_B64URL_ENC_LEN(PAYLOAD_MAX) ||
        s64 != SIG_B64_LEN)
        return LUNA_ERR_FORMAT;
    if (luna_b64url_decode(jws, h64, header, sizeof(header), &hlen) != LUNA_OK ||
        luna_b64url_decode(dot1 + 1, p64, payload, sizeof(payload), &plen) != LUNA_OK ||
        luna_b64url_decode(dot2 + 1, s64, sig, sizeof(sig), &slen) != LUNA_OK ||
        slen != LUNA_ED25519_SIG_LEN)
        return LUNA_ERR_FORMAT;

    /* Header: only the canonical one, naming the pinned key. */
    if (luna_json_parse((const char *)header, hlen, &header_schema, &hlim, &hroot, NULL) !=
        LUNA_OK)
        return LUNA_ERR_FORMAT;
    const char *s = NULL;
    size_t n = 0;
    LUNA_TRY_ENSURE(luna_json_get_string(hroot, "kid", &s, &n) == LUNA_OK &&
                        n == LUNA_MANIFEST_KEY_ID_LEN,
                    LUNA_ERR_FORMAT, out);
    memcpy(kid, s, n);
    kid[n] = '\0';
    luna_wbuf_init(&w, canon, sizeof(canon));
    LUNA_TRY_ENSURE(write_header(kid, &w) == LUNA_OK && w.len == hlen &&
                        memcmp(canon, header, hlen) == 0,
                    LUNA_ERR_FORMAT, out);
    char pinned[LUNA_MANIFEST_KEY_ID_LEN + 1];
    LUNA_TRY(luna_manifest_key_id(pk, pinned), out);
    LUNA_TRY_ENSURE(strcmp(kid, pinned) == 0, LUNA_ERR_PERMISSION, out);

    LUNA_TRY_ENSURE(luna_ed25519_verify(pk, (const uint8_t *)jws, (size_t)(dot2 - jws), sig,
                                        slen) == LUNA_OK,
                    LUNA_ERR_VERIFY, out);

    LUNA_TRY(luna_manifest_parse_payload((const char *)payload, plen, &m), out);
    LUNA_TRY(luna_manifest_mr_signer(pk, mr_signer), out);
    LUNA_TRY_ENSURE(strcmp(m.key_id, pinned) == 0 &&
                        luna_ct_equal(m.mr_signer, mr_signer, sizeof(mr_signer)) &&
                        strcmp(m.developer_id, developer_id) == 0,
                    LUNA_ERR_PERMISSION, out);
    *out = m;
out:
    json_decref(hroot);
    return err;
}
