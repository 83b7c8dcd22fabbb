/*
 * test_kms_db_down.c - fault.kms_db_down / fault.kms_db_down_pg: the real
 * luna-kms with its database gone mid-run.
 *
 *   SQLite (fault.kms_db_down): the database lives on its own small tmpfs
 *   which is then filled to the last byte, so every write the KMS tries
 *   fails in the file system (SQLITE_FULL) - the file is there but cannot
 *   take a write, as on a full or failing disk.  (A held lock is
 *   fault.kms_fault's test_database_unavailable.)
 *   PostgreSQL (fault.kms_db_down_pg, through tests/support/pg_server.sh):
 *   the server is stopped under the running KMS and started again.
 *
 * Both: while down, an OTK issue, a release (with a challenge nonce taken
 * before the outage) and a key creation each answer 503 with the JSON
 * error code storage_unavailable and release nothing; once the database
 * is back the KMS serves again without a restart, the OTK issued before
 * the outage is released exactly once, and the key created before it is
 * still there (nothing already stored was lost, nothing half-done was
 * kept).  Root only for SQLite (mount).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kms_harness.h"
#include "luna/crypto.h"
#include "luna/hpke.h"
#include "luna_test.h"

static kmsh H;
static char g_mnt[HTU_PATH_MAX];   /* SQLite: the tmpfs holding the database */
static char g_fill[HTU_PATH_MAX + 8];

/* ---- SQLite: a full file system under the database ---- */

static bool sqlite_prepare(void)
{
    htu_path(&H.env, "dbfs", "", g_mnt, sizeof(g_mnt));
    assert_int_equal(0, mkdir(g_mnt, 0700));
    if (mount("tmpfs", g_mnt, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=8m,mode=0700") !=
        0) {
        fprintf(stderr, "cannot mount a tmpfs (%s): this test needs CAP_SYS_ADMIN\n",
                strerror(errno));
        g_mnt[0] = '\0';
        return false;
    }
    int n = snprintf(H.db, sizeof(H.db), "%.480s/kms.db", g_mnt);
    assert_true(n > 0 && (size_t)n < sizeof(H.db));
    n = snprintf(H.storage_url, sizeof(H.storage_url), "sqlite:%s", H.db);
    assert_true(n > 0 && (size_t)n < sizeof(H.storage_url));
    snprintf(g_fill, sizeof(g_fill), "%s/fill", g_mnt);
    kmsh_write_config(&H);
    return true;
}

static void sqlite_down(void)
{
    static uint8_t block[64 * 1024];
    int fd = open(g_fill, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    memset(block, 0x5a, sizeof(block));
    size_t chunk = sizeof(block);
    for (;;) {
        ssize_t w = write(fd, block, chunk);
        if (w < 0 && errno == ENOSPC) {
            if (chunk == 1)
                break;
            chunk /= 2; /* fill to the last byte */
            continue;
        }
        assert_true(w > 0);
    }
    assert_int_equal(0, close(fd));
}

static void sqlite_up(void)
{
    assert_int_equal(0, unlink(g_fill));
}

/* ---- PostgreSQL: the server stopped and started ---- */

static void pg_ctl(const char *action)
{
    const char *dir = getenv("LUNA_TEST_PG_DIR");
    assert_non_null(dir);
    glob_t g;
    assert_int_equal(0, glob("/usr/lib/postgresql/*/bin/pg_ctl", 0, NULL, &g));
    assert_true(g.gl_pathc >= 1);
    char data[HTU_PATH_MAX], log[HTU_PATH_MAX], opts[HTU_PATH_MAX + 96];
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(log, sizeof(log), "%s/server.log", dir);
    /* The options pg_server.sh starts it with. */
    snprintf(opts, sizeof(opts), "-c listen_addresses='' -k %s -c fsync=off -c max_connections=30",
             dir);
    char *ctl = g.gl_pathv[g.gl_pathc - 1];
    char *stop_argv[] = {(char *)"/usr/sbin/runuser", (char *)"-u", (char *)"nobody", (char *)"--",
                         ctl, (char *)"-D", data, (char *)"-m", (char *)"fast", (char *)"-w",
                         (char *)"-t", (char *)"30", (char *)"stop", NULL};
    char *start_argv[] = {(char *)"/usr/sbin/runuser", (char *)"-u", (char *)"nobody", (char *)"--",
                          ctl, (char *)"-D", data, (char *)"-l", log, (char *)"-w", (char *)"-t",
                          (char *)"60", (char *)"-o", opts, (char *)"start", NULL};
    char **argv = strcmp(action, "stop") == 0 ? stop_argv : start_argv;
    /* Not root: pg_server.sh ran the server as ourselves. */
    if (geteuid() != 0)
        argv += 4;
    assert_int_equal(0, htu_run(argv));
    globfree(&g);
}

static void pg_down(void)
{
    pg_ctl("stop");
}

static void pg_up(void)
{
    pg_ctl("start");
}

/* ---- the scenario ---- */

static void expect_503(int status, const kmsh_resp *r, const char *what)
{
    if (status != 503 || strcmp(r->code, "storage_unavailable") != 0)
        fail_msg("%s while the database is down: %d %s", what, status, r->code);
    /* A JSON error body with a message a human can act on. */
    assert_non_null(r->body);
    const json_t *e = json_object_get(r->body, "error");
    assert_non_null(json_string_value(json_object_get(e, "message")));
}

static void scenario(void (*down)(void), void (*up)(void))
{
    kmsh_start(&H);
    kmsh_tee t;
    kmsh_tee_new(&H, "dbd-tee", &t);
    kmsh_admit(&H, &t, "[\"acme\"]");
    char *tok = kmsh_token(&H, "acme", "client,key-admin");
    uint8_t csk[32], cpk[32], sealed[80], nonce[32];
    char otk[64], otk2[64];
    kmsh_resp r;
    assert_luna_ok(luna_hpke_generate_keypair(csk, cpk));
    assert_int_equal(200, kmsh_issue(&H, tok, t.id, "j", "dbd-1", cpk, otk, sealed, NULL));
    assert_int_equal(200, kmsh_challenge(&H, &t, t.id, otk, nonce));
    assert_int_equal(0, kmsh_call(&H, "gateway", "POST", "/v1/kms/keys", tok,
                                  "{\"key_id\":\"before\"}", &r));
    assert_int_equal(201, r.status);
    kmsh_resp_free(&r);
    int64_t now = (int64_t)time(NULL);
    uint8_t ev[LUNA_SIM_EVIDENCE_MAX];
    size_t len = kmsh_evidence(&H, &t, nonce, now, NULL, ev, sizeof(ev));
    char *rep = kmsh_report(&H, &t, KMSH_DEPLOYMENT, now, NULL);

    down();
    int st = kmsh_issue(&H, tok, t.id, "j", "dbd-2", cpk, otk2, sealed, &r);
    expect_503(st, &r, "OTK issue");
    kmsh_resp_free(&r);
    st = kmsh_release(&H, &t, t.id, otk, nonce, ev, len, rep, &r);
    expect_503(st, &r, "OTK release");
    assert_null(json_object_get(r.body, "sealed_otk"));
    kmsh_resp_free(&r);
    assert_int_equal(0, kmsh_call(&H, "gateway", "POST", "/v1/kms/keys", tok,
                                  "{\"key_id\":\"during\"}", &r));
    expect_503(r.status, &r, "key create");
    kmsh_resp_free(&r);
    assert_true(H.pid > 0 && kill(H.pid, 0) == 0); /* still running: no crash, no exit */

    up();
    /* Back without a restart (PostgreSQL: the KMS reconnects within a
       second or two). */
    long end = htu_now_ms() + 15000;
    st = 0;
    while (htu_now_ms() < end) {
        assert_int_equal(0, kmsh_call(&H, "gateway", "POST", "/v1/kms/keys", tok,
                                      "{\"key_id\":\"after\"}", &r));
        st = r.status;
        kmsh_resp_free(&r);
        if (st == 201)
            break;
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(201, st);
    /* Nothing lost: the OTK issued before is released once (the failed
       attempt did not even spend the nonce), the key created before is
       there, and what failed left no trace. */
    assert_int_equal(200, kmsh_release(&H, &t, t.id, otk, nonce, ev, len, rep, &r));
    uint8_t key_c[32], key_t[32];
    assert_true(kmsh_open_client(csk, otk, t.id, "dbd-1", sealed, key_c));
    uint8_t tsealed[80];
    size_t tn = 0;
    assert_true(kmsh_b64(r.body, "sealed_otk", tsealed, sizeof(tsealed), &tn));
    assert_int_equal(80, tn);
    assert_true(kmsh_open_tee(&t, otk, tsealed, key_t));
    assert_memory_equal(key_c, key_t, 32);
    kmsh_resp_free(&r);
    uint8_t nonce2[32];
    assert_int_equal(409, kmsh_challenge(&H, &t, t.id, otk, nonce2));
    assert_int_equal(0, kmsh_call(&H, "gateway", "POST", "/v1/kms/keys/before/rotate", tok, "{}",
                                  &r));
    assert_int_equal(200, r.status);
    kmsh_resp_free(&r);
    assert_int_equal(200, kmsh_issue(&H, tok, t.id, "j", "dbd-2", cpk, otk2, sealed, NULL));
    assert_int_equal(0, kmsh_call(&H, "gateway", "POST", "/v1/kms/keys", tok,
                                  "{\"key_id\":\"during\"}", &r));
    assert_int_equal(201, r.status);
    kmsh_resp_free(&r);
    free(rep);
    free(tok);
}

static void test_sqlite_file_system_full(void **state)
{
    (void)state;
    kmsh_setup(&H, ",\"db_busy_timeout_ms\":300");
    if (!sqlite_prepare())
        skip();
    scenario(sqlite_down, sqlite_up);
}

static void test_postgres_server_stopped(void **state)
{
    (void)state;
    kmsh_setup(&H, ",\"db_busy_timeout_ms\":1000");
    scenario(pg_down, pg_up);
}

static int cleanup(void **state)
{
    (void)state;
    if (H.pid > 0)
        (void)kmsh_stop(&H, SIGTERM);
    if (g_mnt[0] != '\0') {
        (void)umount2(g_mnt, MNT_DETACH);
        g_mnt[0] = '\0';
    }
    if (H.env.dir[0] != '\0')
        kmsh_teardown(&H);
    memset(&H, 0, sizeof(H));
    return 0;
}

int main(void)
{
    const char *pg = getenv("LUNA_TEST_PG_URL");
    if (pg != NULL && pg[0] != '\0') {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_teardown(test_postgres_server_stopped, cleanup),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
    }
    if (geteuid() != 0) {
        fprintf(stderr, "fault.kms_db_down needs root (it mounts the database's tmpfs)\n");
        return LUNA_TEST_SKIP;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_sqlite_file_system_full, cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
