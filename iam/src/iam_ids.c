/*
 * iam_ids.c - the grammars of IAM identifiers: tenant and principal ids,
 * job names, the admin path below /v1/iam/tenants/, and the developer key
 * fingerprint (key_id, defined by luna/manifest.h).
 *
 * Must never: accept an identifier that could not also appear in a
 * lunal://client/<tenant>/<principal> identity, or read past the string
 * it was given.
 */
#include <string.h>

#include "iam.h"
#include "luna/bytes.h"

static bool id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static bool job_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '.';
}

bool iam_id_valid(const char *s)
{
    if (s == NULL)
        return false;
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        if (n >= IAM_ID_MAX || !id_char(s[n]))
            return false;
    }
    return n >= 1;
}

bool iam_job_valid(const char *s)
{
    if (s == NULL)
        return false;
    if (strcmp(s, "*") == 0)
        return true;
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        if (n >= IAM_JOB_MAX || !job_char(s[n]))
            return false;
    }
    return n >= 1;
}

luna_err iam_path_parse(const char *s, iam_path *out)
{
    if (s == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    size_t i = 0;
    for (;;) {
        if (out->n >= IAM_PATH_MAX_SEGS) {
            memset(out, 0, sizeof(*out));
            return LUNA_ERR_FORMAT;
        }
        char *seg = out->seg[out->n];
        size_t len = 0;
        while (s[i] != '\0' && s[i] != '/') {
            if (len >= IAM_ID_MAX || !id_char(s[i])) {
                memset(out, 0, sizeof(*out));
                return LUNA_ERR_FORMAT;
            }
            seg[len++] = s[i++];
        }
        if (len == 0) {
            memset(out, 0, sizeof(*out));
            return LUNA_ERR_FORMAT; /* empty segment, "//" or trailing '/' */
        }
        seg[len] = '\0';
        out->n++;
        if (s[i] == '\0')
            return LUNA_OK;
        i++; /* the '/' */
    }
}

luna_err iam_developer_key_id(const uint8_t pk[LUNA_ED25519_PUB_LEN],
                              char out[IAM_DEV_KEY_ID_LEN + 1])
{
    if (pk == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    return luna_manifest_key_id(pk, out);
}
