/*
 * kms_rowmac.c - what the HSM-MAC'd tables (kms_tees in kms_registry.c,
 * kms_deployments in kms_deployments.c) share: bounded column copies out of
 * a result row, and the MAC seal / check of a row's canonical bytes.
 *
 * Must never: copy a column larger than its destination, treat a stored
 * tag of the wrong length as anything but a failed check, or decide what a
 * row's canonical bytes are (each table owns its encoding and its domain
 * label, so a tag of one table never verifies as a row of another).
 */
#include <string.h>

#include "kms.h"

luna_err kms_row_text(const luna_store_rows *r, size_t col, char *dst, size_t cap)
{
    const char *v = NULL;
    size_t n = 0;
    LUNA_GUARD(luna_store_col_text(r, col, &v, &n));
    if (n >= cap)
        return LUNA_ERR_FORMAT;
    memcpy(dst, v, n);
    dst[n] = '\0';
    return LUNA_OK;
}

luna_err kms_row_blob(const luna_store_rows *r, size_t col, uint8_t *dst, size_t cap,
                      size_t *len, bool nullable)
{
    bool is_null = false;
    LUNA_GUARD(luna_store_col_is_null(r, col, &is_null));
    if (is_null) {
        *len = 0;
        return nullable ? LUNA_OK : LUNA_ERR_FORMAT;
    }
    const uint8_t *v = NULL;
    size_t n = 0;
    LUNA_GUARD(luna_store_col_blob(r, col, &v, &n));
    if (n > cap)
        return LUNA_ERR_FORMAT;
    if (n > 0)
        memcpy(dst, v, n);
    *len = n;
    return LUNA_OK;
}

luna_err kms_rowmac_seal(kms_svc *s, const uint8_t *row, size_t len,
                         uint8_t mac[LUNA_HSM_MAC_LEN])
{
    if (s == NULL || row == NULL || mac == NULL || len == 0 || len > LUNA_HSM_MAC_MSG_MAX)
        return LUNA_ERR_INVALID_ARG;
    return luna_hsm_client_mac(s->hsm, row, len, mac);
}

luna_err kms_rowmac_check(kms_svc *s, const uint8_t *row, size_t len, const uint8_t *mac,
                          size_t mac_len)
{
    if (s == NULL || row == NULL || len == 0 || len > LUNA_HSM_MAC_MSG_MAX)
        return LUNA_ERR_INVALID_ARG;
    if (mac == NULL || mac_len != LUNA_HSM_MAC_LEN)
        return LUNA_ERR_VERIFY;
    return luna_hsm_client_mac_verify(s->hsm, row, len, mac);
}
