/*
 * iam_rbac.c - the role table: which permissions each role grants.  This
 * table is the whole policy; docs/iam.md reproduces it.
 *
 * Must never: grant anything not written in the table (unknown roles and
 * permissions grant nothing), or let a tenant role reach platform
 * administration.
 */
#include <string.h>

#include "iam.h"

#define P(x) (1u << (x))

static const char *const role_names[IAM_ROLE__COUNT] = {
    [IAM_ROLE_TENANT_ADMIN] = "tenant-admin", [IAM_ROLE_KEY_ADMIN] = "key-admin",
    [IAM_ROLE_OPERATOR] = "operator",         [IAM_ROLE_AUDITOR] = "auditor",
    [IAM_ROLE_DEVELOPER] = "developer",       [IAM_ROLE_CLIENT] = "client",
    [IAM_ROLE_PLATFORM_ADMIN] = "platform-admin",
};

static const char *const perm_names[IAM_PERM__COUNT] = {
    [IAM_PERM_JOBS_RUN] = "jobs.run",
    [IAM_PERM_JOBS_READ] = "jobs.read",
    [IAM_PERM_TEES_READ] = "tees.read",
    [IAM_PERM_TEES_MANAGE] = "tees.manage",
    [IAM_PERM_KEYS_READ] = "keys.read",
    [IAM_PERM_KEYS_MANAGE] = "keys.manage",
    [IAM_PERM_AUDIT_READ] = "audit.read",
    [IAM_PERM_ATTESTATION_READ] = "attestation.read",
    [IAM_PERM_ATTESTATION_VERIFY] = "attestation.verify",
    [IAM_PERM_DEPLOYMENTS_READ] = "deployments.read",
    [IAM_PERM_DEPLOYMENTS_REGISTER] = "deployments.register",
    [IAM_PERM_IAM_READ] = "iam.read",
    [IAM_PERM_IAM_ADMIN] = "iam.admin",
    [IAM_PERM_PLATFORM_ADMIN] = "platform.admin",
};

/*
 * Separation of duties: the tenant admin manages people and credentials
 * but neither runs jobs nor rotates KMS keys; the key admin manages keys
 * only; the auditor reads; the client runs jobs.
 */
static const uint32_t role_perms[IAM_ROLE__COUNT] = {
    [IAM_ROLE_TENANT_ADMIN] = P(IAM_PERM_IAM_READ) | P(IAM_PERM_IAM_ADMIN) |
                              P(IAM_PERM_TEES_READ) | P(IAM_PERM_KEYS_READ) |
                              P(IAM_PERM_JOBS_READ) | P(IAM_PERM_DEPLOYMENTS_READ) |
                              P(IAM_PERM_ATTESTATION_READ),
    [IAM_ROLE_KEY_ADMIN] = P(IAM_PERM_KEYS_READ) | P(IAM_PERM_KEYS_MANAGE),
    [IAM_ROLE_OPERATOR] = P(IAM_PERM_TEES_READ) | P(IAM_PERM_TEES_MANAGE) |
                          P(IAM_PERM_JOBS_READ) | P(IAM_PERM_DEPLOYMENTS_READ) |
                          P(IAM_PERM_ATTESTATION_READ) | P(IAM_PERM_ATTESTATION_VERIFY),
    [IAM_ROLE_AUDITOR] = P(IAM_PERM_AUDIT_READ) | P(IAM_PERM_ATTESTATION_READ) |
                         P(IAM_PERM_ATTESTATION_VERIFY) | P(IAM_PERM_TEES_READ) |
                         P(IAM_PERM_DEPLOYMENTS_READ),
    [IAM_ROLE_DEVELOPER] = P(IAM_PERM_DEPLOYMENTS_READ) | P(IAM_PERM_DEPLOYMENTS_REGISTER) |
                           P(IAM_PERM_ATTESTATION_READ) | P(IAM_PERM_ATTESTATION_VERIFY),
    [IAM_ROLE_CLIENT] = P(IAM_PERM_JOBS_RUN) | P(IAM_PERM_ATTESTATION_READ) |
                        P(IAM_PERM_ATTESTATION_VERIFY),
    [IAM_ROLE_PLATFORM_ADMIN] = P(IAM_PERM_PLATFORM_ADMIN),
};

const char *iam_role_name(iam_role r)
{
    return ((unsigned)r < IAM_ROLE__COUNT) ? role_names[r] : "?";
}

bool iam_role_from_name(const char *name, iam_role *out)
{
    if (name == NULL || out == NULL)
        return false;
    for (unsigned i = 0; i < IAM_ROLE__COUNT; i++) {
        if (strcmp(name, role_names[i]) == 0) {
            *out = (iam_role)i;
            return true;
        }
    }
    return false;
}

const char *iam_perm_name(iam_perm p)
{
    return ((unsigned)p < IAM_PERM__COUNT) ? perm_names[p] : "?";
}

bool iam_perm_from_name(const char *name, iam_perm *out)
{
    if (name == NULL || out == NULL)
        return false;
    for (unsigned i = 0; i < IAM_PERM__COUNT; i++) {
        if (strcmp(name, perm_names[i]) == 0) {
            *out = (iam_perm)i;
            return true;
        }
    }
    return false;
}

bool iam_roles_allow(iam_roles roles, iam_perm p)
{
    if ((unsigned)p >= IAM_PERM__COUNT)
        return false;
    for (unsigned r = 0; r < IAM_ROLE__COUNT; r++) {
        if ((roles & (1u << r)) != 0 && (role_perms[r] & P(p)) != 0)
            return true;
    }
    return false;
}
