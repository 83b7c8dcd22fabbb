/*
 * iam_apikey.c - API key text form, generation and the salted, peppered
 * hash that is all the store ever holds of a key.
 *
 * Must never: keep, log or return a key's secret part beyond the one
 * response that shows it; compare secrets or hashes with anything but
 * luna_ct_equal; let the check's running time depend on key bytes.
 */
#include <string.h>

#include "iam.h"
#include "luna/bytes.h"

/* Domain separation: this HMAC input means "an IAM API key, format v1". */
static const char APIKEY_DOMAIN[] = "luna-iam/api-key/v1";

static bool lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

luna_err iam_apikey_parse(const char *key, size_t len, char key_id[IAM_APIKEY_ID_BUF],
                          const char **secret)
{
    if (key == NULL || key_id == NULL || secret == NULL)
        return LUNA_ERR_INVALID_ARG;
    key_id[0] = '\0';
    *secret = NULL;
    if (len != IAM_APIKEY_LEN)
        return LUNA_ERR_FORMAT;
    if (memcmp(key, IAM_APIKEY_PREFIX, 4) != 0)
        return LUNA_ERR_FORMAT;
    for (size_t i = 0; i < IAM_APIKEY_ID_HEX; i++) {
        if (!lower_hex(key[4 + i]))
            return LUNA_ERR_FORMAT;
    }
    if (key[4 + IAM_APIKEY_ID_HEX] != '_')
        return LUNA_ERR_FORMAT;
    const char *s = key + 4 + IAM_APIKEY_ID_HEX + 1;
    for (size_t i = 0; i < IAM_APIKEY_SECRET_B64; i++) {
        if (!b64url_char(s[i]))
            return LUNA_ERR_FORMAT;
    }
    memcpy(key_id, key + 4, IAM_APIKEY_ID_HEX);
    key_id[IAM_APIKEY_ID_HEX] = '\0';
    *secret = s;
    return LUNA_OK;
}

luna_err iam_apikey_generate(char out[IAM_APIKEY_BUF], char key_id[IAM_APIKEY_ID_BUF])
{
    if (out == NULL || key_id == NULL)
        return LUNA_ERR_INVALID_ARG;
    uint8_t id[IAM_APIKEY_ID_HEX / 2];
    uint8_t sec[32];
    char sec_b64[LUNA_B64URL_ENC_LEN(32)];
    luna_err err;
    LUNA_TRY(luna_random(id, sizeof(id)), done);
    LUNA_TRY(luna_random(sec, sizeof(sec)), done);
    LUNA_TRY(luna_hex_encode(id, sizeof(id), key_id, IAM_APIKEY_ID_BUF), done);
    LUNA_TRY(luna_b64url_encode(sec, sizeof(sec), sec_b64, sizeof(sec_b64)), done);
    LUNA_TRY_ENSURE(strlen(sec_b64) == IAM_APIKEY_SECRET_B64, LUNA_ERR_INTERNAL, done);
    memcpy(out, IAM_APIKEY_PREFIX, 4);
    memcpy(out + 4, key_id, IAM_APIKEY_ID_HEX);
    out[4 + IAM_APIKEY_ID_HEX] = '_';
    memcpy(out + 4 + IAM_APIKEY_ID_HEX + 1, sec_b64, IAM_APIKEY_SECRET_B64);
    out[IAM_APIKEY_LEN] = '\0';
done:
    luna_wipe(sec, sizeof(sec));
    luna_wipe(sec_b64, sizeof(sec_b64));
    if (err != LUNA_OK) {
        luna_wipe(out, IAM_APIKEY_BUF);
        key_id[0] = '\0';
    }
    return err;
}

luna_err iam_apikey_hash(const uint8_t pepper[IAM_PEPPER_LEN],
                         const uint8_t salt[IAM_APIKEY_SALT_LEN], const char *key_id,
                         const char *secret, uint8_t out[IAM_APIKEY_HASH_LEN])
{
    if (pepper == NULL || salt == NULL || key_id == NULL || secret == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (strnlen(key_id, IAM_APIKEY_ID_BUF) != IAM_APIKEY_ID_HEX)
        return LUNA_ERR_INVALID_ARG;
    /* Fixed-length fields only, so the concatenation is unambiguous. */
    uint8_t msg[sizeof(APIKEY_DOMAIN) + IAM_APIKEY_SALT_LEN + IAM_APIKEY_ID_HEX +
                IAM_APIKEY_SECRET_B64];
    size_t o = 0;
    memcpy(msg, APIKEY_DOMAIN, sizeof(APIKEY_DOMAIN)); /* with its NUL */
    o += sizeof(APIKEY_DOMAIN);
    memcpy(msg + o, salt, IAM_APIKEY_SALT_LEN);
    o += IAM_APIKEY_SALT_LEN;
    memcpy(msg + o, key_id, IAM_APIKEY_ID_HEX);
    o += IAM_APIKEY_ID_HEX;
    memcpy(msg + o, secret, IAM_APIKEY_SECRET_B64);
    o += IAM_APIKEY_SECRET_B64;
    luna_err err = luna_hmac(LUNA_HASH_SHA256, pepper, IAM_PEPPER_LEN, msg, o, out);
    luna_wipe(msg, sizeof(msg));
    return err;
}

luna_err iam_apikey_check(const uint8_t pepper[IAM_PEPPER_LEN],
                          const uint8_t salt[IAM_APIKEY_SALT_LEN], const char *key_id,
                          const char *secret, const uint8_t stored[IAM_APIKEY_HASH_LEN])
{
    if (stored == NULL)
        return LUNA_ERR_INVALID_ARG;
    uint8_t h[IAM_APIKEY_HASH_LEN];
    LUNA_GUARD(iam_apikey_hash(pepper, salt, key_id, secret, h));
    bool eq = luna_ct_equal(h, stored, sizeof(h));
    luna_wipe(h, sizeof(h));
    return eq ? LUNA_OK : LUNA_ERR_VERIFY;
}
