/*
 * kms_util.c - small helpers shared by the KMS service modules: error
 * reasons, identifier rules, length-prefixed encodings for MACs and AADs,
 * HPKE sealing of a key to its recipient, and the clock.
 *
 * Must never: put caller data in an error message, or encode a field
 * ambiguously (every variable field is length-prefixed).
 */
#include <string.h>
#include <time.h>

#include "kms.h"
#include "luna/crypto.h"
#include "luna/hpke.h"

luna_err kms_fail(kms_why *w, luna_err err, int status, const char *code, const char *message)
{
    if (w != NULL) {
        w->status = status;
        w->code = code;
        w->message = message;
    }
    return err;
}

int64_t kms_now(const kms_svc *s)
{
    return (int64_t)time(NULL) + (s != NULL ? s->clock_offset : 0);
}

bool kms_id_ok(const char *s, size_t max)
{
    if (s == NULL)
        return false;
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

luna_err kms_put_lp(luna_wbuf *w, const void *p, size_t n)
{
    if (n > UINT16_MAX)
        return LUNA_ERR_TOO_LARGE;
    LUNA_GUARD(luna_write_u16(w, (uint16_t)n));
    return n == 0 ? LUNA_OK : luna_write_bytes(w, p, n);
}

luna_err kms_put_str(luna_wbuf *w, const char *s)
{
    return kms_put_lp(w, s, s != NULL ? strlen(s) : 0);
}

luna_err kms_fail_store(kms_why *w, luna_err err)
{
    if (err == LUNA_ERR_UNAVAILABLE || err == LUNA_ERR_STORAGE || err == LUNA_ERR_TIMEOUT)
        return kms_fail(w, LUNA_ERR_UNAVAILABLE, 503, "storage_unavailable",
                        "the key database is unavailable");
    return kms_fail(w, err, 0, NULL, "storage error");
}

luna_err kms_fail_hsm(kms_why *w, luna_err err)
{
    switch (err) {
    case LUNA_ERR_UNAVAILABLE:
    case LUNA_ERR_TIMEOUT:
    case LUNA_ERR_UNAUTHENTICATED:
    case LUNA_ERR_CONFIG:
    case LUNA_ERR_PERMISSION:
    case LUNA_ERR_CONFLICT:
        return kms_fail(w, LUNA_ERR_UNAVAILABLE, 503, "hsm_unavailable",
                        "the HSM is unavailable; retry later");
    case LUNA_ERR_VERIFY:
        return kms_fail(w, LUNA_ERR_VERIFY, 500, "key_integrity",
                        "stored key material failed its integrity check");
    default:
        return kms_fail(w, err, 500, "hsm_error", "the HSM refused the operation");
    }
}

luna_err kms_new_id(const char *prefix, char *out, size_t cap)
{
    uint8_t raw[16];
    char enc[LUNA_B64URL_ENC_LEN(16)];
    size_t pl = strlen(prefix);
    LUNA_GUARD(luna_random(raw, sizeof(raw)));
    LUNA_GUARD(luna_b64url_encode(raw, sizeof(raw), enc, sizeof(enc)));
    if (pl + strlen(enc) + 1 > cap)
        return LUNA_ERR_TOO_LARGE;
    memcpy(out, prefix, pl);
    memcpy(out + pl, enc, strlen(enc) + 1);
    return LUNA_OK;
}

luna_err kms_hpke_seal(const uint8_t pk[32], const uint8_t *info, size_t info_len,
                       const uint8_t key[KMS_KEY_LEN], uint8_t out[KMS_SEALED_OTK_LEN])
{
    luna_hpke_params p = {
        .suite = {LUNA_HPKE_KEM_X25519_SHA256, LUNA_HPKE_KDF_HKDF_SHA256,
                  LUNA_HPKE_AEAD_AES256GCM},
        .mode = LUNA_HPKE_MODE_BASE,
        .info = info,
        .info_len = info_len,
    };
    luna_hpke_ctx *ctx = NULL;
    luna_err err = luna_hpke_setup_sender(&p, pk, NULL, out, &ctx);
    if (err == LUNA_OK)
        err = luna_hpke_seal(ctx, NULL, 0, key, KMS_KEY_LEN, out + LUNA_HPKE_ENC_LEN);
    luna_hpke_ctx_free(ctx);
    if (err != LUNA_OK)
        luna_wipe(out, KMS_SEALED_OTK_LEN);
    return err;
}
