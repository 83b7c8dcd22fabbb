/*
 * test_rbac.c - unit.rbac: the platform's one role -> permission table
 * (luna/rbac.h), cell by cell against docs/iam.md "Roles", plus the name
 * parsing every service uses on the "roles" claim of an IAM token.
 */
#include <string.h>

#include "luna/rbac.h"
#include "luna_test.h"

/* docs/iam.md "Roles", written out independently of core/src/rbac.c. */
static const struct {
    const char *role;
    const char *perms[8];
} doc_table[] = {
    {"tenant-admin",
     {"iam.read", "iam.admin", "tees.read", "keys.read", "jobs.read", "deployments.read",
      "attestation.read", NULL}},
    {"key-admin", {"keys.read", "keys.manage", NULL}},
    {"operator",
     {"tees.read", "tees.manage", "jobs.read", "deployments.read", "attestation.read",
      "attestation.verify", NULL}},
    {"auditor",
     {"audit.read", "attestation.read", "attestation.verify", "tees.read", "deployments.read",
      NULL}},
    {"developer",
     {"deployments.read", "deployments.register", "attestation.read", "attestation.verify",
      NULL}},
    {"client", {"jobs.run", "attestation.read", "attestation.verify", NULL}},
    {"platform-admin", {"platform.admin", NULL}},
};

static bool doc_grants(size_t row, const char *perm)
{
    for (size_t k = 0; doc_table[row].perms[k] != NULL; k++)
        if (strcmp(doc_table[row].perms[k], perm) == 0)
            return true;
    return false;
}

static void test_every_cell(void **state)
{
    (void)state;
    assert_int_equal(LUNA_ROLE__COUNT, sizeof doc_table / sizeof doc_table[0]);
    for (size_t i = 0; i < sizeof doc_table / sizeof doc_table[0]; i++) {
        luna_roles one = 0;
        assert_true(luna_roles_add_name(&one, doc_table[i].role));
        for (unsigned p = 0; p < LUNA_PERM__COUNT; p++) {
            const char *name = luna_perm_name((luna_perm)p);
            if (luna_roles_allow(one, (luna_perm)p) != doc_grants(i, name))
                fail_msg("role %s, permission %s: table and docs/iam.md disagree",
                         doc_table[i].role, name);
        }
    }
}

/* The reviewers' case: only the operator (of the tenant roles) reinstates. */
static void test_tees_manage_is_the_operators(void **state)
{
    (void)state;
    for (unsigned r = 0; r < LUNA_ROLE__COUNT; r++) {
        bool want = r == LUNA_ROLE_OPERATOR;
        assert_int_equal(want, luna_roles_allow(1u << r, LUNA_PERM_TEES_MANAGE));
    }
    luna_roles cl = 0;
    assert_true(luna_roles_add_name(&cl, "client"));
    assert_true(luna_roles_add_name(&cl, "auditor"));
    assert_false(luna_roles_allow(cl, LUNA_PERM_TEES_MANAGE));
    assert_true(luna_roles_allow(cl, LUNA_PERM_ATTESTATION_READ));
}

static void test_unknown_grants_nothing(void **state)
{
    (void)state;
    luna_roles r = 0;
    static const char *const bad[] = {"Operator", "operator ", "", "tees.manage", "admin",
                                      "platform_admin", "root"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(luna_roles_add_name(&r, bad[i]));
    assert_false(luna_roles_add_name(&r, NULL));
    assert_false(luna_roles_add_name(NULL, "operator"));
    assert_int_equal(0, r);
    for (unsigned p = 0; p < LUNA_PERM__COUNT; p++)
        assert_false(luna_roles_allow(0, (luna_perm)p));
    /* Bits beyond the known roles grant nothing either. */
    assert_false(luna_roles_allow(~(luna_roles)0 << LUNA_ROLE__COUNT, LUNA_PERM_JOBS_RUN));
    assert_false(luna_roles_allow(~(luna_roles)0, LUNA_PERM__COUNT));
    /* No tenant role reaches platform administration. */
    luna_roles tenant_roles = ((1u << LUNA_ROLE__COUNT) - 1u) & ~(1u << LUNA_ROLE_PLATFORM_ADMIN);
    assert_false(luna_roles_allow(tenant_roles, LUNA_PERM_PLATFORM_ADMIN));
}

static void test_names_round_trip(void **state)
{
    (void)state;
    for (unsigned r = 0; r < LUNA_ROLE__COUNT; r++) {
        luna_role back = LUNA_ROLE__COUNT;
        assert_true(luna_role_from_name(luna_role_name((luna_role)r), &back));
        assert_int_equal(r, back);
    }
    for (unsigned p = 0; p < LUNA_PERM__COUNT; p++) {
        luna_perm back = LUNA_PERM__COUNT;
        assert_true(luna_perm_from_name(luna_perm_name((luna_perm)p), &back));
        assert_int_equal(p, back);
    }
    luna_role untouched = LUNA_ROLE_CLIENT;
    assert_false(luna_role_from_name("nobody", &untouched));
    assert_int_equal(LUNA_ROLE_CLIENT, untouched);
    luna_perm pu = LUNA_PERM_JOBS_RUN;
    assert_false(luna_perm_from_name("perms", &pu));
    assert_false(luna_perm_from_name(NULL, &pu));
    assert_string_equal("?", luna_role_name(LUNA_ROLE__COUNT));
    assert_string_equal("?", luna_perm_name(LUNA_PERM__COUNT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_cell),
        cmocka_unit_test(test_tees_manage_is_the_operators),
        cmocka_unit_test(test_unknown_grants_nothing),
        cmocka_unit_test(test_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
