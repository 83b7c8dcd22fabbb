/*
 * iam_rbac.c - IAM's names for the platform's role table.  The table
 * itself (which permissions each role grants) lives in core
 * (core/src/rbac.c, luna/rbac.h) so that IAM and the services that read
 * the "roles" claim of its tokens decide with one table; docs/iam.md
 * reproduces it.
 *
 * Must never: grow a table of its own (a second table would drift from
 * the one the services use), or grant anything core's table does not.
 */
#include "luna/rbac.h"

#include "iam.h"

/* IAM's enums are core's values under IAM's names: checked, not assumed. */
_Static_assert((int)IAM_ROLE__COUNT == (int)LUNA_ROLE__COUNT, "role count");
_Static_assert((int)IAM_ROLE_TENANT_ADMIN == (int)LUNA_ROLE_TENANT_ADMIN, "role value");
_Static_assert((int)IAM_ROLE_KEY_ADMIN == (int)LUNA_ROLE_KEY_ADMIN, "role value");
_Static_assert((int)IAM_ROLE_OPERATOR == (int)LUNA_ROLE_OPERATOR, "role value");
_Static_assert((int)IAM_ROLE_AUDITOR == (int)LUNA_ROLE_AUDITOR, "role value");
_Static_assert((int)IAM_ROLE_DEVELOPER == (int)LUNA_ROLE_DEVELOPER, "role value");
_Static_assert((int)IAM_ROLE_CLIENT == (int)LUNA_ROLE_CLIENT, "role value");
_Static_assert((int)IAM_ROLE_PLATFORM_ADMIN == (int)LUNA_ROLE_PLATFORM_ADMIN, "role value");
_Static_assert((int)IAM_PERM__COUNT == (int)LUNA_PERM__COUNT, "perm count");
_Static_assert((int)IAM_PERM_JOBS_RUN == (int)LUNA_PERM_JOBS_RUN, "perm value");
_Static_assert((int)IAM_PERM_JOBS_READ == (int)LUNA_PERM_JOBS_READ, "perm value");
_Static_assert((int)IAM_PERM_TEES_READ == (int)LUNA_PERM_TEES_READ, "perm value");
_Static_assert((int)IAM_PERM_TEES_MANAGE == (int)LUNA_PERM_TEES_MANAGE, "perm value");
_Static_assert((int)IAM_PERM_KEYS_READ == (int)LUNA_PERM_KEYS_READ, "perm value");
_Static_assert((int)IAM_PERM_KEYS_MANAGE == (int)LUNA_PERM_KEYS_MANAGE, "perm value");
_Static_assert((int)IAM_PERM_AUDIT_READ == (int)LUNA_PERM_AUDIT_READ, "perm value");
_Static_assert((int)IAM_PERM_ATTESTATION_READ == (int)LUNA_PERM_ATTESTATION_READ, "perm value");
_Static_assert((int)IAM_PERM_ATTESTATION_VERIFY == (int)LUNA_PERM_ATTESTATION_VERIFY,
               "perm value");
_Static_assert((int)IAM_PERM_DEPLOYMENTS_READ == (int)LUNA_PERM_DEPLOYMENTS_READ, "perm value");
_Static_assert((int)IAM_PERM_DEPLOYMENTS_REGISTER == (int)LUNA_PERM_DEPLOYMENTS_REGISTER,
               "perm value");
_Static_assert((int)IAM_PERM_IAM_READ == (int)LUNA_PERM_IAM_READ, "perm value");
_Static_assert((int)IAM_PERM_IAM_ADMIN == (int)LUNA_PERM_IAM_ADMIN, "perm value");
_Static_assert((int)IAM_PERM_PLATFORM_ADMIN == (int)LUNA_PERM_PLATFORM_ADMIN, "perm value");

const char *iam_role_name(iam_role r)
{
    return luna_role_name((luna_role)r);
}

bool iam_role_from_name(const char *name, iam_role *out)
{
    luna_role r;
    if (out == NULL || !luna_role_from_name(name, &r))
        return false;
    *out = (iam_role)r;
    return true;
}

const char *iam_perm_name(iam_perm p)
{
    return luna_perm_name((luna_perm)p);
}

bool iam_perm_from_name(const char *name, iam_perm *out)
{
    luna_perm p;
    if (out == NULL || !luna_perm_from_name(name, &p))
        return false;
    *out = (iam_perm)p;
    return true;
}

bool iam_roles_allow(iam_roles roles, iam_perm p)
{
    return luna_roles_allow((luna_roles)roles, (luna_perm)p);
}
