/*
 * rbac.c - the role -> permission table of the whole platform
 * (luna/rbac.h).  IAM (iam/src/iam_rbac.c) and every service that reads
 * the "roles" claim of an IAM token use this table; docs/iam.md
 * reproduces it.
 *
 * Must never: grant anything not written in the table (unknown roles and
 * permissions grant nothing), or let a tenant role reach platform
 * administration.
 */
#include <string.h>

#include "luna/rbac.h"

#define P(x) (1u << (x))

_Static_assert(LUNA_ROLE__COUNT <= 32, "luna_roles is a 32-bit set");
_Static_assert(LUNA_PERM__COUNT <= 32, "role_perms rows are 32-bit sets");

static const char *const role_names[LUNA_ROLE__COUNT] = {
    [LUNA_ROLE_TENANT_ADMIN] = "tenant-admin", [LUNA_ROLE_KEY_ADMIN] = "key-admin",
    [LUNA_ROLE_OPERATOR] = "operator",         [LUNA_ROLE_AUDITOR] = "auditor",
    [LUNA_ROLE_DEVELOPER] = "developer",       [LUNA_ROLE_CLIENT] = "client",
    [LUNA_ROLE_PLATFORM_ADMIN] = "platform-admin",
};

static const char *const perm_names[LUNA_PERM__COUNT] = {
    [LUNA_PERM_JOBS_RUN] = "jobs.run",
    [LUNA_PERM_JOBS_READ] = "jobs.read",
    [LUNA_PERM_TEES_READ] = "tees.read",
    [LUNA_PERM_TEES_MANAGE] = "tees.manage",
    [LUNA_PERM_KEYS_READ] = "keys.read",
    [LUNA_PERM_KEYS_MANAGE] = "keys.manage",
    [LUNA_PERM_AUDIT_READ] = "audit.read",
    [LUNA_PERM_ATTESTATION_READ] = "attestation.read",
    [LUNA_PERM_ATTESTATION_VERIFY] = "attestation.verify",
    [LUNA_PERM_DEPLOYMENTS_READ] = "deployments.read",
    [LUNA_PERM_DEPLOYMENTS_REGISTER] = "deployments.register",
    [LUNA_PERM_IAM_READ] = "iam.read",
    [LUNA_PERM_IAM_ADMIN] = "iam.admin",
    [LUNA_PERM_PLATFORM_ADMIN] = "platform.admin",
};

/*
 * Separation of duties: the tenant admin manages people and credentials
 * but neither runs jobs nor rotates KMS keys; the key admin manages keys
 * only; the operator runs TEEs; the auditor reads; the client runs jobs.
 */
static const uint32_t role_perms[LUNA_ROLE__COUNT] = {
    [LUNA_ROLE_TENANT_ADMIN] = P(LUNA_PERM_IAM_READ) | P(LUNA_PERM_IAM_ADMIN) |
                               P(LUNA_PERM_TEES_READ) | P(LUNA_PERM_KEYS_READ) |
                               P(LUNA_PERM_JOBS_READ) | P(LUNA_PERM_DEPLOYMENTS_READ) |
                               P(LUNA_PERM_ATTESTATION_READ),
    [LUNA_ROLE_KEY_ADMIN] = P(LUNA_PERM_KEYS_READ) | P(LUNA_PERM_KEYS_MANAGE),
    [LUNA_ROLE_OPERATOR] = P(LUNA_PERM_TEES_READ) | P(LUNA_PERM_TEES_MANAGE) |
                           P(LUNA_PERM_JOBS_READ) | P(LUNA_PERM_DEPLOYMENTS_READ) |
                           P(LUNA_PERM_ATTESTATION_READ) | P(LUNA_PERM_ATTESTATION_VERIFY),
    [LUNA_ROLE_AUDITOR] = P(LUNA_PERM_AUDIT_READ) | P(LUNA_PERM_ATTESTATION_READ) |
                          P(LUNA_PERM_ATTESTATION_VERIFY) | P(LUNA_PERM_TEES_READ) |
                          P(LUNA_PERM_DEPLOYMENTS_READ),
    [LUNA_ROLE_DEVELOPER] = P(LUNA_PERM_DEPLOYMENTS_READ) | P(LUNA_PERM_DEPLOYMENTS_REGISTER) |
                            P(LUNA_PERM_ATTESTATION_READ) | P(LUNA_PERM_ATTESTATION_VERIFY),
    [LUNA_ROLE_CLIENT] = P(LUNA_PERM_JOBS_RUN) | P(LUNA_PERM_ATTESTATION_READ) |
                         P(LUNA_PERM_ATTESTATION_VERIFY),
    [LUNA_ROLE_PLATFORM_ADMIN] = P(LUNA_PERM_PLATFORM_ADMIN),
};

const char *luna_role_name(luna_role r)
{
    return ((unsigned)r < LUNA_ROLE__COUNT) ? role_names[r] : "?";
}

bool luna_role_from_name(const char *name, luna_role *out)
{
    if (name == NULL || out == NULL)
        return false;
    for (unsigned i = 0; i < LUNA_ROLE__COUNT; i++) {
        if (strcmp(name, role_names[i]) == 0) {
            *out = (luna_role)i;
            return true;
        }
    }
    return false;
}

const char *luna_perm_name(luna_perm p)
{
    return ((unsigned)p < LUNA_PERM__COUNT) ? perm_names[p] : "?";
}

bool luna_perm_from_name(const char *name, luna_perm *out)
{
    if (name == NULL || out == NULL)
        return false;
    for (unsigned i = 0; i < LUNA_PERM__COUNT; i++) {
        if (strcmp(name, perm_names[i]) == 0) {
            *out = (luna_perm)i;
            return true;
        }
    }
    return false;
}

bool luna_roles_allow(luna_roles roles, luna_perm p)
{
    if ((unsigned)p >= LUNA_PERM__COUNT)
        return false;
    for (unsigned r = 0; r < LUNA_ROLE__COUNT; r++) {
        if ((roles & (1u << r)) != 0 && (role_perms[r] & P(p)) != 0)
            return true;
    }
    return false;
}

bool luna_roles_add_name(luna_roles *roles, const char *name)
{
    luna_role r;
    if (roles == NULL || !luna_role_from_name(name, &r))
        return false;
    *roles |= 1u << r;
    return true;
}
