/*
 * e2e.kms_audit_http - kms_audit.c's HTTP backend against the real
 * luna-audit process: an entry written by the KMS is in the log (the
 * signed checkpoint grows by one), the audit service's identity is pinned
 * (a server that is not lunal://svc/audit gets nothing), and with the
 * service down the append reports LUNA_ERR_UNAVAILABLE, which fails every
 * audited KMS operation (fault.kms_fault shows that end to end).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit_test_util.h"
#include "kms.h"
#include "luna_test.h"

static void sink(atu_env *e, const char *identity, kms_audit_sink **out)
{
    char crt[HTU_PATH_MAX], key[HTU_PATH_MAX];
    htu_path(&e->h, "kms", ".crt", crt, sizeof(crt));
    htu_path(&e->h, "kms", ".key", key, sizeof(key));
    assert_luna_ok(kms_audit_open_http("127.0.0.1", e->port, identity, e->h.ca_crt, crt, key,
                                       out));
}

static void test_append_identity_and_down(void **state)
{
    (void)state;
    atu_env e;
    atu_setup(&e, NULL);
    atu_start(&e);
    kms_svc s;
    memset(&s, 0, sizeof(s));
    sink(&e, "lunal://svc/audit", &s.audit);
    atu_checkpoint cp0, cp1;
    atu_checkpoint_get(&e, &cp0);
    kms_caller c = {.identity = "lunal://tee/t1", .request_id = "req-audit-1"};
    strcpy(c.actor, "lunal://tee/t1");
    const char *objs[] = {"otk_test", NULL};
    assert_luna_ok(kms_audit(&s, &c, "otk.release", "acme", "t1", "app", objs,
                             LUNA_AUDIT_SUCCESS, ""));
    cp1 = cp0;
    for (int i = 0; i < 100 && cp1.size == cp0.size; i++) {
        usleep(50 * 1000);
        atu_checkpoint_get(&e, &cp1);
    }
    assert_int_equal(cp0.size + 1, cp1.size);
    kms_audit_free(s.audit);

    /* The sink pins the server identity: the audit service is not the IAM. */
    sink(&e, "lunal://svc/iam", &s.audit);
    assert_luna_err(LUNA_ERR_UNAVAILABLE, kms_audit(&s, &c, "otk.release", "acme", "t1", "app",
                                                    objs, LUNA_AUDIT_SUCCESS, ""));
    kms_audit_free(s.audit);

    /* Service down: the append fails. */
    sink(&e, "lunal://svc/audit", &s.audit);
    assert_int_equal(0, atu_stop(&e, SIGTERM));
    assert_luna_err(LUNA_ERR_UNAVAILABLE, kms_audit(&s, &c, "otk.release", "acme", "t1", "app",
                                                    objs, LUNA_AUDIT_SUCCESS, ""));
    kms_audit_free(s.audit);
    atu_teardown(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_identity_and_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
