/*
 * test_tee_quarantine.c - e2e.tee_quarantine: a TEE whose binary is
 * swapped while it serves is quarantined and its keys revoked within one
 * re-attestation interval, with every real process of that path:
 * luna-kms (and its luna-kms-hsm on a throwaway SoftHSM2 token), luna-audit,
 * luna-attestation, and luna-tee-host running the real luna-tee runtime
 * with the demo bundle and a signed manifest.  The test plays the gateway
 * (OTK issue), an operator (registry), and the webhook receiver.
 *
 * What "binary swapped while running" can mean for our outside-in
 * measurement (the platform hashes /proc/<pid>/exe and the bundle's
 * map_files entry at every evidence request):
 *   - writing into the running executable is refused by the kernel
 *     (ETXTBSY), and the bundle is mapped from a write-sealed memfd;
 *   - renaming another file over the path changes nothing that runs: the
 *     process keeps mapping the old inode, and e2e.tee_flow shows the
 *     measurement does not move (correctly: the code did not change);
 *   - so the code behind a TEE id changes only with a new process image,
 *     i.e. the platform (re)starts the TEE id from another binary.  That
 *     new image has lost the TEE's in-process keys and certificate, so to
 *     serve it must be admitted again, and the evidence it presents for
 *     the same TEE id carries the new measurement.
 * The test does exactly that: the host is stopped and a host started from
 * a modified copy of luna-tee for the same TEE id, config and port.  The
 * attestation service must treat that evidence as abnormal for an
 * admitted TEE: registry quarantined (asked from the KMS), every OTK of
 * the TEE revoked (a release is refused), the webhook alert received, the
 * audit entry in the real audit log, all within one interval.
 *
 * It also shows review finding L6 fixed against the real audit service:
 * with the log down, an admission is refused with a clear error, before
 * the KMS activates anything (registry stays pending), and succeeds when
 * the log is back.
 *
 * Root only (the platform reads /proc of a non-dumpable runtime).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kms_harness.h"
#include "platform_harness.h"
#include "luna/audience.h"
#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/hpke.h"
#include "luna/manifest.h"
#include "luna_test.h"
#include "measure.h"
#include "tee_config.h"

#define INTERVAL 2 /* re-attestation period, seconds */
#define TENANT "t1"

static kmsh K;
static pid_t g_audit = -1, g_att = -1, g_hook = -1, g_host = -1;
static uint16_t g_audit_port, g_att_port, g_hook_port, g_host_port;
static uint8_t g_dev_seed[32], g_dev_pk[32], g_mr[32];

/* ---- the webhook receiver: plain HTTP, one body per line in webhook.log ---- */

static void hook_serve(int lfd)
{
    char lp[HTU_PATH_MAX];
    plh_path(&K, lp, sizeof(lp), "webhook.log");
    for (;;) {
        int c = accept(lfd, NULL, NULL);
        if (c < 0)
            continue;
        char buf[8192];
        size_t got = 0;
        long want = -1;
        const char *body = NULL;
        struct pollfd pfd = {.fd = c, .events = POLLIN};
        while (got < sizeof(buf) - 1 && poll(&pfd, 1, 5000) > 0) {
            ssize_t r = read(c, buf + got, sizeof(buf) - 1 - got);
            if (r <= 0)
                break;
            got += (size_t)r;
            buf[got] = '\0';
            body = strstr(buf, "\r\n\r\n");
            if (body != NULL && want < 0) {
                const char *cl = strcasestr(buf, "Content-Length:");
                want = cl != NULL ? strtol(cl + 15, NULL, 10) : 0;
            }
            if (body != NULL && (long)(got - (size_t)(body + 4 - buf)) >= want)
                break;
        }
        if (body != NULL) {
            int fd = open(lp, O_WRONLY | O_CREAT | O_APPEND, 0600);
            if (fd >= 0) {
                (void)!write(fd, body + 4, strlen(body + 4));
                (void)!write(fd, "\n", 1);
                close(fd);
            }
        }
        static const char ok[] =
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        (void)!write(c, ok, sizeof(ok) - 1);
        close(c);
    }
}

static void hook_start(void)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(0, bind(lfd, (struct sockaddr *)&sa, sizeof(sa)));
    socklen_t sl = sizeof(sa);
    assert_int_equal(0, getsockname(lfd, (struct sockaddr *)&sa, &sl));
    g_hook_port = ntohs(sa.sin_port);
    assert_int_equal(0, listen(lfd, 16));
    g_hook = fork();
    assert_true(g_hook >= 0);
    if (g_hook == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        hook_serve(lfd);
        _exit(0);
    }
    close(lfd);
}

/* ---- the real services ---- */

static void att_setup(const char *build_hash_hex)
{
    char text[8192], dep[1024];
    plh_att_deployment(g_dev_pk, g_mr, build_hash_hex, dep, sizeof(dep));
    g_att_port = (uint16_t)htu_free_port();
    const char *d = K.env.dir;
    snprintf(text, sizeof(text),
             "{\"profile\":\"development\",\"listen\":{\"address\":\"127.0.0.1\",\"port\":%u},"
             "\"tls\":{\"cert\":\"%s/attestation.crt\",\"key\":\"%s/attestation.key\","
             "\"ca\":\"%s\"},\"storage\":{\"url\":\"sqlite:%s/att.db\"},"
             "\"log\":{\"level\":\"info\"},"
             "\"attestation\":{\"allowed_evidence\":[\"sim\"],"
             "\"trust_anchors\":[\"%s/platform/vendor.crt\"]},"
             "\"attestation_service\":{\"interval_seconds\":%d,\"grace_seconds\":60,"
             "\"max_evidence_age_seconds\":300,\"workers\":2,\"watchdog_seconds\":12,"
             "\"http_timeout_seconds\":5,\"min_tcb_level\":1,"
             "\"sim_collateral\":\"%s/platform/tcb.bin\","
             "\"kms\":{\"host\":\"127.0.0.1\",\"port\":%u},"
             "\"audit\":{\"host\":\"127.0.0.1\",\"port\":%u},"
             "\"webhook_url\":\"http://127.0.0.1:%u/alerts\",\"report_key\":\"%s/report.key\","
             "\"tee_ca_dir\":\"%s/teeca\",\"iam_jwks\":\"%s/iam.jwks\",%s}}",
             (unsigned)g_att_port, d, d, K.env.ca_crt, d, d, INTERVAL, d, (unsigned)K.port,
             (unsigned)g_audit_port, (unsigned)g_hook_port, d, d, d, dep);
    g_att = plh_att_spawn(&K, text, g_att_port);
}

/* The KMS config from the harness, with the real audit service as its
 * sink, the TEE CA, and the platform's vendor root and collateral. */
static void kms_config(void)
{
    char teeca[HTU_PATH_MAX], from[HTU_PATH_MAX], to[HTU_PATH_MAX];
    plh_path(&K, teeca, sizeof(teeca), "teeca/ca.crt");
    snprintf(K.extra, sizeof(K.extra), ",\"tee_ca\":\"%s\"", teeca);
    memcpy(K.mr, g_mr, 32);
    assert_luna_ok(luna_manifest_mr_signer(g_dev_pk, K.signer));
    plh_path(&K, from, sizeof(from), "platform/vendor.crt");
    plh_path(&K, to, sizeof(to), "sim-root.pem");
    plh_copy_file(from, to, NULL, 0644);
    plh_path(&K, from, sizeof(from), "platform/tcb.bin");
    plh_path(&K, to, sizeof(to), "tcb.bin");
    plh_copy_file(from, to, NULL, 0644);
    kmsh_write_config(&K);
    size_t n = 0;
    char *text = (char *)luna_test_read_file(K.config, &n);
    assert_non_null(text);
    char file_sink[HTU_PATH_MAX + 32], host_sink[160];
    snprintf(file_sink, sizeof(file_sink), "\"audit\":{\"file\":\"%s\"}", K.audit);
    snprintf(host_sink, sizeof(host_sink),
             "\"audit\":{\"host\":\"127.0.0.1\",\"port\":%u,\"identity\":\"lunal://svc/audit\"}",
             (unsigned)g_audit_port);
    char *at = memmem(text, n, file_sink, strlen(file_sink));
    assert_non_null(at);
    FILE *f = fopen(K.config, "w");
    assert_non_null(f);
    fprintf(f, "%.*s%s%.*s", (int)(at - text), text, host_sink,
            (int)(n - (size_t)(at - text) - strlen(file_sink)), at + strlen(file_sink));
    assert_int_equal(0, fclose(f));
    free(text);
}

/* ---- the platform ---- */

static char g_bundle[HTU_PATH_MAX];

/* A host running one TEE from runtime; returns its pid. */
static pid_t host_start(const char *name, const char *runtime, const char *tee_id,
                        const char *rt_config)
{
    char text[8192], plat[HTU_PATH_MAX], man[HTU_PATH_MAX], rc[HTU_PATH_MAX];
    plh_path(&K, plat, sizeof(plat), "platform");
    plh_path(&K, man, sizeof(man), "app.jws");
    plh_path(&K, rc, sizeof(rc), rt_config);
    const char *d = K.env.dir;
    snprintf(text, sizeof(text),
             "{\"profile\":\"development\",\"listen\":{\"address\":\"127.0.0.1\",\"port\":%u},"
             "\"tls\":{\"cert\":\"%s/tee-host.crt\",\"key\":\"%s/tee-host.key\",\"ca\":\"%s\"},"
             "\"tee_host\":{\"platform_dir\":\"%s\",\"runtime\":\"%s\",\"tcb_level\":1,"
             "\"attestation\":{\"host\":\"127.0.0.1\",\"port\":%u},"
             "\"tees\":[{\"id\":\"%s\",\"config\":\"%s\",\"manifest\":\"%s\",\"bundle\":\"%s\"}]}}",
             (unsigned)g_host_port, d, d, K.env.ca_crt, plat, runtime, (unsigned)g_att_port,
             tee_id, rc, man, g_bundle);
    return plh_host_spawn(&K, name, text);
}

static int setup(void **state)
{
    (void)state;
    const char *bin = getenv("LUNA_BINARY_DIR");
    assert_non_null(bin);
    kmsh_setup(&K, NULL);
    /* The TEE CA, as the attestation service will load it. */
    plh_teeca_init(&K);
    char teeca[HTU_PATH_MAX];
    plh_path(&K, teeca, sizeof(teeca), "teeca");
    /* A certificate for lunal://tee/tee-q from the TEE CA: the test's
       release attempts present the swapped TEE's identity. */
    assert_int_equal(0, htu_issue(&K.env, teeca, "lunal://tee/tee-q", "probe-tee-q", NULL));

    /* The simulated platform (vendor root, platform key, TCB collateral). */
    char exe[HTU_PATH_MAX], plat[HTU_PATH_MAX];
    snprintf(exe, sizeof(exe), "%s/tee/luna-tee-host", bin);
    plh_path(&K, plat, sizeof(plat), "platform");
    char *pinit[] = {exe, (char *)"init-platform", (char *)"--dir", plat, NULL};
    assert_int_equal(0, htu_run(pinit));

    /* Developer, runtime copy, runtime configs, the expected measurement
       and the signed manifest. */
    assert_luna_ok(luna_ed25519_keygen(g_dev_seed, g_dev_pk));
    char rt[HTU_PATH_MAX];
    plh_runtime_copy(&K, rt, g_bundle);
    plh_runtime_config(&K, "rt-q.json", g_dev_pk, (uint16_t)htu_free_port());
    plh_runtime_config(&K, "rt-r.json", g_dev_pk, (uint16_t)htu_free_port());
    plh_measure(&K, rt, g_bundle, "rt-q.json", g_mr);
    uint8_t other[32];
    plh_measure(&K, rt, g_bundle, "rt-r.json", other);
    assert_memory_equal(g_mr, other, 32); /* the port is not measured */
    char bh[65];
    plh_sign_manifest(&K, g_dev_seed, g_mr, g_bundle, bh);

    /* The services: webhook receiver, audit, attestation, then the KMS
       (it needs the attestation service's key set). */
    hook_start();
    g_audit_port = plh_audit_setup(&K, "lunal.audit/quarantine-test");
    g_audit = plh_audit_start(&K, g_audit_port);
    att_setup(bh);
    plh_att_jwks_to_kms(&K, g_att_port);
    kms_config();
    kmsh_start(&K);
    plh_tee_register(&K, "tee-q", TENANT, "sim", g_mr);
    plh_tee_register(&K, "tee-r", TENANT, "sim", g_mr);
    g_host_port = (uint16_t)htu_free_port();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    plh_stop(&g_host);
    plh_stop(&g_att);
    plh_stop(&g_audit);
    if (g_hook > 0) {
        kill(g_hook, SIGKILL);
        waitpid(g_hook, NULL, 0);
    }
    if (getenv("LUNA_KMS_TEST_KEEP") != NULL)
        fprintf(stderr, "kept %s\n", K.env.dir);
    kmsh_teardown(&K);
    return 0;
}

/* ---- the tests ---- */

static void test_swapped_binary_quarantined(void **state)
{
    (void)state;
    char rt[HTU_PATH_MAX], st[32];
    plh_path(&K, rt, sizeof(rt), "luna-tee");

    /* The genuine runtime is admitted: registry active at the KMS. */
    g_host = host_start("host-a", rt, "tee-q", "rt-q.json");
    assert_true(plh_wait_status(&K, "tee-q", "active", 30000));
    assert_true(plh_att_state_is(&K, g_att_port, "tee-q", "active"));

    /* A client's one-time key for it, and a challenge the TEE could use. */
    uint8_t csk[32], cpk[32], sealed[80], nonce[32];
    char otk_id[64];
    assert_luna_ok(luna_hpke_generate_keypair(csk, cpk));
    char *tok = kmsh_token(&K, TENANT, "client");
    kmsh_resp r;
    assert_int_equal(200, kmsh_issue(&K, tok, "tee-q", "wordstats", "req-swap-1", cpk, otk_id,
                                     sealed, &r));
    kmsh_resp_free(&r);
    free(tok);
    kmsh_tee probe;
    memset(&probe, 0, sizeof(probe));
    snprintf(probe.id, sizeof(probe.id), "tee-q");
    snprintf(probe.cert, sizeof(probe.cert), "probe-tee-q");
    assert_int_equal(200, kmsh_challenge(&K, &probe, "tee-q", otk_id, nonce));
    /* Rounds so far passed: nothing quarantined. */
    sleep(INTERVAL + 1);
    plh_kms_status(&K, "tee-q", st, sizeof(st));
    assert_string_equal("active", st);

    /* The swap: the platform restarts tee-q from a modified runtime. */
    char swapped[HTU_PATH_MAX];
    plh_path(&K, swapped, sizeof(swapped), "luna-tee.swapped");
    plh_copy_file(rt, swapped, "swapped while running", 0755);
    plh_stop(&g_host);
    long t0 = htu_now_ms();
    g_host = host_start("host-b", swapped, "tee-q", "rt-q.json");

    /* Within one interval of the swap (the new host's start included):
       quarantined in the KMS registry. */
    bool quarantined = plh_wait_status(&K, "tee-q", "quarantined", INTERVAL * 1000L);
    long took = htu_now_ms() - t0;
    fprintf(stderr, "quarantined after %ld ms (interval %d s)\n", took, INTERVAL);
    assert_true(quarantined);
    assert_true(took <= INTERVAL * 1000L);
    assert_true(plh_att_state_is(&K, g_att_port, "tee-q", "quarantined"));
    assert_true(plh_log_has(&K, "host-b.log", "measurement differs from the signed manifest"));

    /* Every OTK of the TEE revoked: a release is refused, and so is a
       new challenge. */
    uint8_t ev[64];
    assert_luna_ok(luna_random(ev, sizeof(ev)));
    assert_int_equal(403, kmsh_release(&K, &probe, "tee-q", otk_id, nonce, ev, sizeof(ev),
                                       "x.y.z", &r));
    assert_string_equal("otk_revoked", r.code);
    kmsh_resp_free(&r);
    assert_int_equal(403, kmsh_challenge(&K, &probe, "tee-q", otk_id, nonce));

    /* The alert: webhook received, log line at alert severity. */
    assert_true(plh_wait_for(&K, "webhook.log", "\"event\":\"tee.quarantined\"", 5));
    assert_true(plh_log_has(&K, "webhook.log", "\"tee_id\":\"tee-q\""));
    assert_true(plh_log_has(&K, "webhook.log", "\"reason\":\"measurement_mismatch\""));
    assert_true(plh_log_has(&K, "att.log", "\"severity\":\"alert\""));

    /* The audit entry, in the real audit log's database. */
    char db[HTU_PATH_MAX];
    plh_path(&K, db, sizeof(db), "auditlog.db");
    long end = htu_now_ms() + 5000;
    bool audited = false;
    while (!audited && htu_now_ms() < end) {
        audited = plh_file_has(db, "\"component\":\"lunal://svc/attestation\",\"actor\":"
                               "\"lunal://svc/attestation\",\"tenant\":\"\",\"tee\":\"tee-q\","
                               "\"deployment\":\"app\",\"operation\":\"tee.quarantine\"");
        if (!audited)
            usleep(100000);
    }
    assert_true(audited);
    assert_true(plh_file_has(db, "measurement_mismatch"));
    plh_stop(&g_host);
}

/* Review L6 with the real audit service: log down -> admission refused
   with a clear error and nothing activated; log back -> admitted. */
static void test_audit_down_refuses_admission(void **state)
{
    (void)state;
    char rt[HTU_PATH_MAX], st[32];
    plh_path(&K, rt, sizeof(rt), "luna-tee");
    plh_stop(&g_audit);
    g_host = host_start("host-c", rt, "tee-r", "rt-r.json");
    assert_true(plh_wait_for(&K, "att.log", "admission refused: audit log unavailable", 30));
    assert_true(plh_wait_for(&K, "host-c.log", "admission failed", 10));
    plh_kms_status(&K, "tee-r", st, sizeof(st));
    assert_string_equal("pending", st); /* the KMS activated nothing */
    json_t *ans = NULL;
    assert_int_equal(404, plh_att_call(&K, g_att_port, "gateway", "GET",
                                       "/v1/attestation/tees/tee-r", &ans));
    json_decref(ans);
    plh_stop(&g_host);

    g_audit = plh_audit_start(&K, g_audit_port);
    g_host = host_start("host-d", rt, "tee-r", "rt-r.json");
    assert_true(plh_wait_status(&K, "tee-r", "active", 30000));
    assert_true(plh_att_state_is(&K, g_att_port, "tee-r", "active"));
    plh_stop(&g_host);
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "e2e.tee_quarantine needs root (the platform reads /proc of the "
                        "non-dumpable runtime)\n");
        return LUNA_TEST_SKIP;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swapped_binary_quarantined),
        cmocka_unit_test(test_audit_down_refuses_admission),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
