/*
 * audience.c - the fixed table of token audiences (luna/audience.h).
 *
 * Must never: accept a prefix, a case variant or a list as an audience;
 * the comparison is exact.
 */
#include <stdbool.h>
#include <string.h>

#include "luna/audience.h"

static const struct {
    const char *name;
    const char *aud;
} aud_table[] = {
    {"gateway", LUNA_AUD_GATEWAY}, {"iam", LUNA_AUD_IAM},
    {"kms", LUNA_AUD_KMS},         {"audit", LUNA_AUD_AUDIT},
    {"attestation", LUNA_AUD_ATTESTATION},
};

const char *luna_aud_of(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(aud_table) / sizeof(aud_table[0]); i++)
        if (strcmp(name, aud_table[i].name) == 0)
            return aud_table[i].aud;
    return NULL;
}

luna_err luna_aud_check_config(const char *configured, const char *own)
{
    LUNA_ENSURE(configured != NULL && own != NULL, LUNA_ERR_INVALID_ARG);
    bool known = false;
    for (size_t i = 0; i < sizeof(aud_table) / sizeof(aud_table[0]); i++)
        known = known || strcmp(own, aud_table[i].aud) == 0;
    LUNA_ENSURE(known, LUNA_ERR_INVALID_ARG);
    /* Exact: "lunal", "", another service's URI or a near miss all fail. */
    LUNA_ENSURE(strcmp(configured, own) == 0, LUNA_ERR_CONFIG);
    return LUNA_OK;
}
