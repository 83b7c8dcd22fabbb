/*
 * kms_auth.c - the caller's IAM token, verified locally against IAM's key
 * set (luna/jws.h): issuer, audience, expiry, tenant and roles.
 *
 * Must never: accept a token without a tenant claim, trust a role that is
 * not in the signed claims, or log the token.
 */
#include <string.h>

#include "kms.h"

static const struct {
    const char *name;
    unsigned bit;
} role_table[] = {
    {"client", KMS_ROLE_CLIENT},           {"key-admin", KMS_ROLE_KEY_ADMIN},
    {"operator", KMS_ROLE_OPERATOR},       {"tenant-admin", KMS_ROLE_TENANT_ADMIN},
    {"platform-admin", KMS_ROLE_PLATFORM_ADMIN}, {"auditor", KMS_ROLE_AUDITOR},
    {"developer", KMS_ROLE_DEVELOPER},
};

void kms_caller_clear(kms_caller *c)
{
    if (c == NULL)
        return;
    json_decref(c->claims);
    c->claims = NULL;
    c->has_token = false;
    c->roles = 0;
    c->tenant[0] = '\0';
    c->actor[0] = '\0';
}

luna_err kms_auth_token(kms_svc *s, const char *authorization, kms_caller *c, kms_why *w)
{
    static const char bearer[] = "Bearer ";
    if (authorization == NULL || strncmp(authorization, bearer, sizeof(bearer) - 1) != 0)
        return kms_fail(w, LUNA_ERR_UNAUTHENTICATED, 401, "token_missing",
                        "a Bearer token from IAM is required");
    const char *tok = authorization + sizeof(bearer) - 1;
    luna_jws_verify_opts o;
    luna_jws_verify_opts_init(&o);
    o.issuer = s->set.iam_issuer;
    o.audience = s->set.iam_audience;
    o.skew = (uint32_t)s->set.token_skew_sec;
    o.now = kms_now(s);
    json_t *claims = NULL;
    luna_err err = luna_jws_verify(s->iam_keys, tok, strlen(tok), &o, &claims, NULL);
    if (err == LUNA_ERR_EXPIRED)
        return kms_fail(w, LUNA_ERR_UNAUTHENTICATED, 401, "token_expired", "the token expired");
    if (err != LUNA_OK)
        return kms_fail(w, LUNA_ERR_UNAUTHENTICATED, 401, "token_invalid",
                        "the token did not verify");
    const json_t *tenant = json_object_get(claims, "tenant");
    const json_t *sub = json_object_get(claims, "sub");
    const json_t *roles = json_object_get(claims, "roles");
    if (!json_is_string(tenant) || !kms_id_ok(json_string_value(tenant), KMS_ID_MAX) ||
        !json_is_string(sub) || !luna_audit_id_ok(json_string_value(sub), true) ||
        !json_is_array(roles)) {
        json_decref(claims);
        return kms_fail(w, LUNA_ERR_UNAUTHENTICATED, 401, "token_invalid",
                        "the token lacks tenant, sub or roles");
    }
    memcpy(c->tenant, json_string_value(tenant), strlen(json_string_value(tenant)) + 1);
    memcpy(c->actor, json_string_value(sub), strlen(json_string_value(sub)) + 1);
    c->roles = 0;
    for (size_t i = 0; i < json_array_size(roles); i++) {
        const json_t *r = json_array_get(roles, i);
        if (!json_is_string(r))
            continue;
        for (size_t k = 0; k < sizeof(role_table) / sizeof(role_table[0]); k++)
            if (strcmp(json_string_value(r), role_table[k].name) == 0)
                c->roles |= role_table[k].bit;
    }
    json_decref(c->claims);
    c->claims = claims;
    c->has_token = true;
    return LUNA_OK;
}

bool kms_caller_job_ok(const kms_caller *c, const char *job)
{
    const json_t *jobs = c->claims != NULL ? json_object_get(c->claims, "jobs") : NULL;
    if (jobs == NULL)
        return true;
    if (!json_is_array(jobs))
        return false;
    for (size_t i = 0; i < json_array_size(jobs); i++) {
        const json_t *j = json_array_get(jobs, i);
        if (json_is_string(j) && (strcmp(json_string_value(j), job) == 0 ||
                                  strcmp(json_string_value(j), "*") == 0))
            return true;
    }
    return false;
}
