/*
 * colfile_detect.c - recognizes a collateral file by its content (PEM
 * blocks, an Intel PCS JSON document, or one DER object) and assembles a
 * TPM quote's files into the LTQ1 container (luna/verifier_offline.h).
 *
 * Every byte here is untrusted (a folder the user points at): it must
 * stay bounded (size caps checked first, no recursion, jansson only after
 * a depth pre-scan), never trust a file name, and never accept a private
 * key or anything it cannot name.
 */
#include "luna/verifier_offline.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "luna/evidence_hw.h"
#include "luna/json.h"

#define PEM_BEGIN "-----BEGIN "
#define PEM_END "-----END "
#define PEM_DASHES "-----"
#define JSON_DEPTH_MAX 32
#define PEM_LABEL_MAX 32

const char *luna_colfile_kind_name(luna_colfile_kind kind)
{
    switch (kind) {
    case LUNA_COLFILE_CERT: return "certificate";
    case LUNA_COLFILE_CRL: return "crl";
    case LUNA_COLFILE_TCB_INFO: return "tcb_info";
    case LUNA_COLFILE_QE_IDENTITY: return "qe_identity";
    case LUNA_COLFILE_PUBKEY: return "public_key";
    }
    return "unknown";
}

static bool is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static size_t skip_space(const uint8_t *d, size_t len, size_t i)
{
    while (i < len && is_space(d[i]))
        i++;
    return i;
}

static bool starts(const uint8_t *d, size_t len, size_t i, const char *s)
{
    size_t n = strlen(s);
    return len - i >= n && memcmp(d + i, s, n) == 0;
}

/* The DER object must be exactly one of kind, with nothing after it. */
static bool der_is(luna_colfile_kind kind, const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    bool ok = false;

    if (len == 0 || len > LUNA_HWCOL_ITEM_MAX)
        return false;
    if (kind == LUNA_COLFILE_CERT) {
        X509 *x = d2i_X509(NULL, &p, (long)len);
        ok = x != NULL && p == der + len;
        X509_free(x);
    } else if (kind == LUNA_COLFILE_CRL) {
        X509_CRL *x = d2i_X509_CRL(NULL, &p, (long)len);
        ok = x != NULL && p == der + len;
        X509_CRL_free(x);
    } else if (kind == LUNA_COLFILE_PUBKEY) {
        EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)len);
        ok = k != NULL && p == der + len;
        EVP_PKEY_free(k);
    }
    return ok;
}

static int b64_value(uint8_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strict base64 (RFC 4648 section 4) with line breaks; '=' only at the end. */
static bool b64_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    uint32_t acc = 0;
    size_t bits = 0, o = 0, pad = 0, chars = 0;

    for (size_t i = 0; i < n; i++) {
        uint8_t c = in[i];
        if (is_space(c))
            continue;
        if (c == '=') {
            pad++;
            chars++;
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || pad > 0)
            return false;
        chars++;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return false;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1u;
        }
    }
    /* Whole quanta, at most two pad characters, no stray bits. */
    if (chars % 4 != 0 || pad > 2 || acc != 0)
        return false;
    *out_len = o;
    return true;
}

static luna_err detect_pem(const uint8_t *d, size_t len, size_t i, luna_colfile_sink sink,
                           void *arg, const char **why)
{
    uint8_t *der = malloc(LUNA_HWCOL_ITEM_MAX);
    size_t items = 0;
    luna_err err = LUNA_OK;

    if (der == NULL)
        return LUNA_ERR_NOMEM;
    while (i < len) {
        char label[PEM_LABEL_MAX + 1];
        size_t l = 0, der_len = 0;
        luna_colfile_kind kind;

        if (!starts(d, len, i, PEM_BEGIN)) {
            *why = "text outside PEM blocks";
            err = LUNA_ERR_FORMAT;
            break;
        }
        i += strlen(PEM_BEGIN);
        while (i < len && l < PEM_LABEL_MAX && d[i] != '-' && d[i] >= 0x20 && d[i] < 0x7f)
            label[l++] = (char)d[i++];
        label[l] = '\0';
        if (!starts(d, len, i, PEM_DASHES) || l == 0) {
            *why = "malformed PEM header line";
            err = LUNA_ERR_FORMAT;
            break;
        }
        i += strlen(PEM_DASHES);
        if (strcmp(label, "CERTIFICATE") == 0) {
            kind = LUNA_COLFILE_CERT;
        } else if (strcmp(label, "X509 CRL") == 0) {
            kind = LUNA_COLFILE_CRL;
        } else if (strcmp(label, "PUBLIC KEY") == 0) {
            kind = LUNA_COLFILE_PUBKEY;
        } else {
            *why = strstr(label, "PRIVATE") != NULL
                       ? "a private key has no place among collateral: remove it"
                       : "PEM block is not a CERTIFICATE, X509 CRL or PUBLIC KEY";
            err = LUNA_ERR_FORMAT;
            break;
        }
        /* The body runs to "-----END <label>-----". */
        size_t body = i, end = i;
        while (end < len && !starts(d, len, end, PEM_END))
            end++;
        if (end >= len) {
            *why = "PEM block has no END line";
            err = LUNA_ERR_FORMAT;
            break;
        }
        i = end + strlen(PEM_END);
        if (!starts(d, len, i, label) || !starts(d, len, i + l, PEM_DASHES)) {
            *why = "PEM END line does not match its BEGIN line";
            err = LUNA_ERR_FORMAT;
            break;
        }
        i += l + strlen(PEM_DASHES);
        if (!b64_decode(d + body, end - body, der, LUNA_HWCOL_ITEM_MAX, &der_len) ||
            !der_is(kind, der, der_len)) {
            *why = "PEM block does not decode to the DER object its label names";
            err = LUNA_ERR_FORMAT;
            break;
        }
        if (++items > LUNA_COLFILE_MAX_ITEMS) {
            *why = "too many PEM blocks in one file";
            err = LUNA_ERR_TOO_LARGE;
            break;
        }
        err = sink(arg, kind, der, der_len);
        if (err != LUNA_OK)
            break;
        i = skip_space(d, len, i);
    }
    luna_wipe(der, LUNA_HWCOL_ITEM_MAX);
    free(der);
    return err;
}

/* Bracket depth outside strings, before jansson sees the text. */
static bool json_depth_ok(const uint8_t *d, size_t len)
{
    size_t depth = 0;
    bool in_str = false, esc = false;

    for (size_t i = 0; i < len; i++) {
        uint8_t c = d[i];
        if (c == 0)
            return false;
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > JSON_DEPTH_MAX)
                return false;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return false;
            depth--;
        }
    }
    return true;
}

static luna_err detect_json(const uint8_t *d, size_t len, luna_colfile_sink sink, void *arg,
                            const char **why)
{
    json_error_t je;
    json_t *root;
    luna_colfile_kind kind;

    if (len > LUNA_HWCOL_ITEM_MAX) {
        *why = "JSON document over the collateral item cap";
        return LUNA_ERR_TOO_LARGE;
    }
    if (!json_depth_ok(d, len)) {
        *why = "JSON nested too deep or malformed";
        return LUNA_ERR_FORMAT;
    }
    root = json_loadb((const char *)d, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL || !json_is_object(root) || json_object_size(root) != 2 ||
        !json_is_string(json_object_get(root, "signature"))) {
        json_decref(root);
        *why = "JSON is not an Intel TCB Info or QE Identity document";
        return LUNA_ERR_FORMAT;
    }
    if (json_is_object(json_object_get(root, "tcbInfo"))) {
        kind = LUNA_COLFILE_TCB_INFO;
    } else if (json_is_object(json_object_get(root, "enclaveIdentity"))) {
        kind = LUNA_COLFILE_QE_IDENTITY;
    } else {
        json_decref(root);
        *why = "JSON is not an Intel TCB Info or QE Identity document";
        return LUNA_ERR_FORMAT;
    }
    json_decref(root);
    /* The bytes as given: Intel's signature covers the exact text. */
    return sink(arg, kind, d, len);
}

luna_err luna_colfile_detect(const uint8_t *data, size_t len, luna_colfile_sink sink, void *arg,
                             const char **why)
{
    static const char *unknown = "not a certificate, CRL, public key, TCB Info or QE Identity";
    const char *w = unknown;
    luna_err err;

    if (why == NULL)
        return LUNA_ERR_INVALID_ARG;
    *why = unknown;
    if (data == NULL || sink == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (len > LUNA_COLFILE_MAX) {
        *why = "file over the per-file collateral cap";
        return LUNA_ERR_TOO_LARGE;
    }
    size_t i = skip_space(data, len, 0);
    if (i == len) {
        *why = "empty file";
        return LUNA_ERR_FORMAT;
    }
    if (starts(data, len, i, PEM_BEGIN)) {
        err = detect_pem(data, len, i, sink, arg, &w);
    } else if (data[i] == '{') {
        err = detect_json(data, len, sink, arg, &w);
    } else if (data[0] == 0x30) {
        static const luna_colfile_kind kinds[] = {LUNA_COLFILE_CERT, LUNA_COLFILE_CRL,
                                                  LUNA_COLFILE_PUBKEY};
        err = LUNA_ERR_FORMAT;
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
            if (der_is(kinds[k], data, len)) {
                err = sink(arg, kinds[k], data, len);
                break;
            }
        }
    } else {
        err = LUNA_ERR_FORMAT;
    }
    *why = w;
    return err;
}

/* ---- TPM quote files ---- */

#define PCR_FIELD(n)                                                                          \
    {                                                                                         \
        .name = n, .type = LUNA_JSON_T_HEX, .min_len = 20, .max_len = 64                      \
    }
static const luna_json_field pcr_fields[] = {
    PCR_FIELD("0"),  PCR_FIELD("1"),  PCR_FIELD("2"),  PCR_FIELD("3"),  PCR_FIELD("4"),
    PCR_FIELD("5"),  PCR_FIELD("6"),  PCR_FIELD("7"),  PCR_FIELD("8"),  PCR_FIELD("9"),
    PCR_FIELD("10"), PCR_FIELD("11"), PCR_FIELD("12"), PCR_FIELD("13"), PCR_FIELD("14"),
    PCR_FIELD("15"), PCR_FIELD("16"), PCR_FIELD("17"), PCR_FIELD("18"), PCR_FIELD("19"),
    PCR_FIELD("20"), PCR_FIELD("21"), PCR_FIELD("22"), PCR_FIELD("23"),
};
#define N_PCR_FIELDS (sizeof(pcr_fields) / sizeof(pcr_fields[0]))
static const luna_json_schema pcr_map = {pcr_fields, N_PCR_FIELDS, NULL};
static const char *const hash_names[] = {"sha1", "sha256", "sha384", "sha512", NULL};
static const luna_json_field pcrs_file_fields[] = {
    {.name = "hash", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 4,
     .max_len = 6, .one_of = hash_names},
    {.name = "pcrs", .type = LUNA_JSON_T_OBJECT, .flags = LUNA_JSON_REQUIRED,
     .object = &pcr_map},
};
static const luna_json_schema pcrs_file = {pcrs_file_fields, 2, NULL};

luna_err luna_tpm_evidence_from_files(luna_wbuf *w, const uint8_t *attest, size_t attest_len,
                                      const uint8_t *sig, size_t sig_len, const uint8_t *pcrs_json,
                                      size_t pcrs_len, const char **why)
{
    static const struct {
        const char *name;
        uint16_t alg;
        size_t len;
    } banks[] = {{"sha1", LUNA_TPM_ALG_SHA1, 20},
                 {"sha256", LUNA_TPM_ALG_SHA256, 32},
                 {"sha384", LUNA_TPM_ALG_SHA384, 48},
                 {"sha512", LUNA_TPM_ALG_SHA512, 64}};
    const luna_json_limits lim = {.max_bytes = 16u * 1024u, .max_depth = 4};
    uint8_t values[N_PCR_FIELDS][64];
    luna_tpm_pcr pcrs[N_PCR_FIELDS];
    size_t n = 0, bank = SIZE_MAX;
    const char *hash = NULL;
    json_t *root = NULL;
    const json_t *map = NULL;
    luna_json_error je;
    luna_err err;

    if (why == NULL)
        return LUNA_ERR_INVALID_ARG;
    *why = "PCR values file is not {\"hash\":...,\"pcrs\":{\"<index>\":\"<hex>\"}}";
    if (w == NULL || attest == NULL || sig == NULL || pcrs_json == NULL)
        return LUNA_ERR_INVALID_ARG;
    LUNA_GUARD(luna_json_parse((const char *)pcrs_json, pcrs_len, &pcrs_file, &lim, &root, &je));
    LUNA_TRY(luna_json_get_string(root, "hash", &hash, NULL), out);
    for (size_t b = 0; b < sizeof(banks) / sizeof(banks[0]); b++)
        if (strcmp(hash, banks[b].name) == 0)
            bank = b;
    LUNA_TRY_ENSURE(bank != SIZE_MAX, LUNA_ERR_FORMAT, out);
    LUNA_TRY(luna_json_get_object(root, "pcrs", &map), out);
    for (size_t i = 0; i < N_PCR_FIELDS; i++) {
        size_t got = 0;
        err = luna_json_get_hex(map, pcr_fields[i].name, values[n], sizeof(values[n]), &got);
        if (err == LUNA_ERR_NOT_FOUND)
            continue;
        if (err != LUNA_OK)
            goto out;
        if (got != banks[bank].len) {
            *why = "a PCR value is not the length of its bank's digest";
            err = LUNA_ERR_FORMAT;
            goto out;
        }
        pcrs[n] = (luna_tpm_pcr){
            .bank = banks[bank].alg, .index = (uint8_t)i, .value = values[n], .len = got};
        n++;
    }
    if (n == 0) {
        *why = "PCR values file lists no PCR";
        err = LUNA_ERR_FORMAT;
        goto out;
    }
    err = luna_tpm_evidence_build(w, attest, attest_len, sig, sig_len, pcrs, n);
    if (err == LUNA_ERR_INVALID_ARG) {
        *why = "quote or signature over the TPM evidence caps";
        err = LUNA_ERR_TOO_LARGE;
    }
out:
    json_decref(root);
    return err;
}
