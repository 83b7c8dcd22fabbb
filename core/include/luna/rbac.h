/*
 * luna/rbac.h - the platform's one role -> permission table (docs/iam.md
 * "Roles").  IAM issues tokens carrying role names ("roles" claim); IAM
 * decides its own routes and the services decide theirs with this same
 * table, so a role means the same thing everywhere.
 *
 * The table is the whole policy: an unknown role or permission name grants
 * nothing, and no role but "platform-admin" reaches "platform.admin".
 * Everything here is pure, allocation-free and thread-safe.
 */
#ifndef LUNA_RBAC_H
#define LUNA_RBAC_H

#include <stdbool.h>
#include <stdint.h>

/* Values are stable: IAM's own enums (iam/src/iam.h) equal them. */
typedef enum luna_role {
    LUNA_ROLE_TENANT_ADMIN = 0,
    LUNA_ROLE_KEY_ADMIN = 1,
    LUNA_ROLE_OPERATOR = 2,
    LUNA_ROLE_AUDITOR = 3,
    LUNA_ROLE_DEVELOPER = 4,
    LUNA_ROLE_CLIENT = 5,
    LUNA_ROLE_PLATFORM_ADMIN = 6, /* granted by `luna-iam bootstrap` only */
    LUNA_ROLE__COUNT
} luna_role;

typedef enum luna_perm {
    LUNA_PERM_JOBS_RUN = 0,
    LUNA_PERM_JOBS_READ,
    LUNA_PERM_TEES_READ,
    LUNA_PERM_TEES_MANAGE,
    LUNA_PERM_KEYS_READ,
    LUNA_PERM_KEYS_MANAGE,
    LUNA_PERM_AUDIT_READ,
    LUNA_PERM_ATTESTATION_READ,
    LUNA_PERM_ATTESTATION_VERIFY,
    LUNA_PERM_DEPLOYMENTS_READ,
    LUNA_PERM_DEPLOYMENTS_REGISTER,
    LUNA_PERM_IAM_READ,
    LUNA_PERM_IAM_ADMIN,
    LUNA_PERM_PLATFORM_ADMIN,
    LUNA_PERM__COUNT
} luna_perm;

/* A set of roles: bit (1u << luna_role). */
typedef uint32_t luna_roles;

/* "tenant-admin" etc.; "?" for a value out of range. */
const char *luna_role_name(luna_role r);
/* Exact, case-sensitive match; false (and *out untouched) for an unknown name or NULL. */
bool luna_role_from_name(const char *name, luna_role *out);
/* "tees.manage" etc.; "?" for a value out of range. */
const char *luna_perm_name(luna_perm p);
bool luna_perm_from_name(const char *name, luna_perm *out);

/* True only when one of roles grants p (deny by default, unknown bits ignored). */
bool luna_roles_allow(luna_roles roles, luna_perm p);

/*
 * Adds the role called name to *roles; an unknown name (or NULL) adds
 * nothing and returns false, so a token naming a role this build does not
 * know is simply not granted anything for it.
 */
bool luna_roles_add_name(luna_roles *roles, const char *name);

#endif
