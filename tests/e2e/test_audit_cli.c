/*
 * test_audit_cli.c - `lunal audit verify|proof|tail` end to end: the real
 * luna-audit pushing its checkpoints to the real luna-audit-witness, a
 * gateway stand-in relaying /v1/audit/... (the relay contract of
 * docs/audit.md section 4), and the real `lunal` binary with a client
 * config pinning the log and witness keys and a state file.
 *
 * Shown: the log pushes every new head to the witness by itself (and
 * after a witness outage); the witness serves a cosigned note rebuilt
 * from what it verified (a submitter's bogus line named like the witness
 * is dropped); verify keeps the checkpoint and proves the
 * next one consistent; proof prints an inclusion proof; a rewritten
 * history is "the log rewrote history between size X and Y" (exit 1);
 * a fresh auditor without a kept checkpoint is still saved by the
 * witness ("witness and log disagree at size N", exit 1) and would have
 * been fooled with --no-witness; a rollback is refused; a tenant auditor
 * proves only its own entries; a tampered state file is refused; usage
 * and configuration errors exit 2.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "audit_test_util.h"
#include "luna/audit_verify.h"
#include "luna_test.h"

#ifndef LUNAL_BIN
#error "LUNAL_BIN must name the lunal binary"
#endif

/* The argument list end (a typed null pointer: a bare NULL may be int 0). */
#define END ((const char *)NULL)

static atu_env env;
static atu_witness wit;
static atu_relay relay;
static char cfg_path[HTU_PATH_MAX], state_path[HTU_PATH_MAX];
static char out_buf[65536], err_buf[16384];

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void write_config(const char *state)
{
    char cfg[8192];
    int n = snprintf(cfg, sizeof(cfg),
                     "{\"tenant_id\":\"ops\",\"gateway_url\":\"%s\",\"ca_file\":\"%s\","
                     "\"audit_log_key\":\"%s\",\"audit_witness_key\":\"%s\","
                     "\"audit_state_file\":\"%s\"}",
                     relay.url, env.h.ca_crt, env.vkey, wit.vkey, state);
    assert_true(n > 0 && (size_t)n < sizeof(cfg));
    write_text(cfg_path, cfg);
}

/* Runs lunal with args (NULL-terminated); stdout/stderr captured; 60 s max. */
static int lunal(const char *first, ...)
{
    const char *argv[32];
    size_t n = 0;
    va_list ap;
    argv[n++] = LUNAL_BIN;
    argv[n++] = first;
    va_start(ap, first);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 31)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    int po[2], pe[2];
    assert_int_equal(0, pipe(po));
    assert_int_equal(0, pipe(pe));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(po[1], STDOUT_FILENO);
        dup2(pe[1], STDERR_FILENO);
        close(po[0]);
        close(pe[0]);
        setenv("LUNAL_CONFIG", cfg_path, 1);
        setenv("LUNAL_API_KEY", "lk_test_audit_cli", 1);
        execv(LUNAL_BIN, (char *const *)argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    size_t lo = 0, le = 0;
    bool open_o = true, open_e = true;
    time_t end = time(NULL) + 60;
    while ((open_o || open_e) && time(NULL) < end) {
        struct pollfd p[2] = {{.fd = open_o ? po[0] : -1, .events = POLLIN},
                              {.fd = open_e ? pe[0] : -1, .events = POLLIN}};
        if (poll(p, 2, 1000) <= 0)
            continue;
        if (open_o && (p[0].revents & (POLLIN | POLLHUP))) {
            ssize_t r = read(po[0], out_buf + lo, sizeof(out_buf) - 1 - lo);
            if (r <= 0)
                open_o = false;
            else
                lo += (size_t)r;
        }
        if (open_e && (p[1].revents & (POLLIN | POLLHUP))) {
            ssize_t r = read(pe[0], err_buf + le, sizeof(err_buf) - 1 - le);
            if (r <= 0)
                open_e = false;
            else
                le += (size_t)r;
        }
    }
    out_buf[lo] = 0;
    err_buf[le] = 0;
    close(po[0]);
    close(pe[0]);
    if (open_o || open_e)
        kill(pid, SIGKILL);
    int st = 0;
    assert_int_equal(pid, waitpid(pid, &st, 0));
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void post(const char *tenant, unsigned from, unsigned to)
{
    for (unsigned i = from; i < to; i++) {
        char rid[32], body[1024];
        snprintf(rid, sizeof(rid), "c-%s-%u", tenant, i);
        atu_entry_json(body, sizeof(body), tenant, rid);
        luna_http_result r;
        assert_int_equal(201, atu_fetch(&env, "kms", "POST", "/v1/audit/entries", body, &r));
        luna_http_result_free(&r);
    }
}

static void set_token(const char *tenant, const char *roles)
{
    char *tok = atu_token(&env, tenant, roles);
    atu_relay_set_token(&relay, tok);
    free(tok);
}

static int setup(void **state)
{
    (void)state;
    /* The log's key first (the witness pins it), then the witness (its
     * port goes into the log's config). */
    atu_setup(&env, NULL);
    atu_witness_setup(&env, &wit);
    char peer[256];
    atu_witness_peer_json(&wit, peer, sizeof(peer));
    atu_rewrite_config(&env, peer);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    atu_relay_stop(&relay);
    atu_witness_stop(&wit);
    atu_teardown(&env);
    return 0;
}

static void test_audit_cli(void **state)
{
    (void)state;
    atu_witness_start(&wit);
    atu_start(&env);
    atu_relay_start(&env, &wit, &relay);
    htu_path(&env.h, "lunal", ".json", cfg_path, sizeof(cfg_path));
    htu_path(&env.h, "audit", ".checkpoint", state_path, sizeof(state_path));
    write_config(state_path);
    set_token("ops", ATU_PLATFORM_AUDITOR);

    /* The log pushes its heads to the witness by itself. */
    post("acme", 0, 5);
    assert_true(atu_witness_wait(&env, &wit, 5, 10000));

    /* First verify: trusted on first use, kept. */
    assert_int_equal(0, lunal("audit", "verify", END));
    assert_non_null(strstr(out_buf, "Audit log: verified"));
    assert_non_null(strstr(out_buf, "first checkpoint kept"));
    assert_non_null(strstr(out_buf, "Witness:    agrees (cosigned size 5)"));
    assert_non_null(strstr(out_buf, "included"));
    struct stat sb;
    assert_int_equal(0, stat(state_path, &sb));
    assert_int_equal(0600, sb.st_mode & 0777);

    /* A submitter's extra signature line named like the witness is not
     * kept: the served note still opens with both keys. */
    {
        atu_checkpoint cp;
        atu_checkpoint_get(&env, &cp);
        assert_int_equal(5, cp.size);
        uint8_t raw[68] = {(uint8_t)(wit.v.key_id >> 24), (uint8_t)(wit.v.key_id >> 16),
                           (uint8_t)(wit.v.key_id >> 8), (uint8_t)wit.v.key_id};
        char b64[128], note[4096];
        assert_int_equal(92, EVP_EncodeBlock((unsigned char *)b64, raw, sizeof(raw)));
        int nl = snprintf(note, sizeof(note), "%.*s\xE2\x80\x94 %s %s\n", (int)cp.len,
                          (const char *)cp.note, ATU_WITNESS_NAME, b64);
        assert_true(nl > 0 && (size_t)nl < sizeof(note));
        json_t *req = json_pack("{s:I,s:[],s:s}", "old_size", (json_int_t)5, "proof",
                                "checkpoint", note);
        char *body = json_dumps(req, JSON_COMPACT);
        json_decref(req);
        luna_http_client_opts co;
        char paths[3][HTU_PATH_MAX];
        htu_client_opts(&env.h, "kms", wit.port, "lunal://svc/witness", &co, paths);
        luna_http_result r;
        assert_luna_ok(luna_http_fetch(&co, "POST", "/v1/witness/add-checkpoint",
                                       "application/json", body, strlen(body), &r));
        free(body);
        assert_int_equal(200, r.status);
        luna_http_result_free(&r);
        assert_luna_ok(luna_http_fetch(&co, "GET", "/v1/witness/state", NULL, NULL, 0, &r));
        json_error_t jerr;
        json_t *st = json_loadb((const char *)r.body, r.body_len, 0, &jerr);
        luna_http_result_free(&r);
        const char *served = json_string_value(json_object_get(st, "checkpoint"));
        assert_non_null(served);
        assert_null(strstr(served, b64));
        luna_audit_cp *both = malloc(sizeof(*both));
        assert_non_null(both);
        assert_luna_ok(luna_audit_cp_open(served, strlen(served), &env.verifier, &wit.v, both));
        assert_int_equal(5, both->size);
        free(both);
        json_decref(st);
    }

    /* A witness outage: the log retries and catches up when it is back. */
    atu_witness_stop(&wit);
    post("acme", 5, 7);
    post("other", 0, 1);
    atu_witness_start(&wit);
    assert_true(atu_witness_wait(&env, &wit, 8, 15000));

    /* Second verify: consistent with the kept checkpoint; --full; an entry. */
    assert_int_equal(0, lunal("audit", "verify", "--entry", "6", "--full", END));
    print_message("%s", out_buf);
    assert_non_null(strstr(out_buf, "consistent with the kept checkpoint of size 5"));
    assert_non_null(strstr(out_buf, "Entry 6"));
    assert_non_null(strstr(out_buf, "Full check"));
    assert_non_null(strstr(out_buf, "Tree size:  8"));

    /* Review M2: the witness answer crosses the gateway too.  A witness
       that suddenly holds nothing (here: restarted on an empty database,
       as a suppressed or replayed answer would look) after this auditor
       saw it cosign size 8 is a failure, not "nothing to compare".  Its
       database is then put back: it holds 8 again and verify passes. */
    {
        static const char *const sfx[] = {"", "-wal", "-shm"};
        char from[HTU_PATH_MAX + 8], to[HTU_PATH_MAX + 16];
        atu_witness_stop(&wit);
        for (size_t i = 0; i < 3; i++) {
            snprintf(from, sizeof(from), "%s%s", wit.db, sfx[i]);
            snprintf(to, sizeof(to), "%s%s.aside", wit.db, sfx[i]);
            (void)rename(from, to);
        }
        atu_witness_start(&wit);
        assert_int_equal(0, atu_witness_size(&env, &wit));
        assert_int_equal(1, lunal("audit", "verify", END));
        assert_non_null(strstr(out_buf, "suppressed or replayed"));
        atu_witness_stop(&wit);
        for (size_t i = 0; i < 3; i++) {
            snprintf(from, sizeof(from), "%s%s.aside", wit.db, sfx[i]);
            snprintf(to, sizeof(to), "%s%s", wit.db, sfx[i]);
            (void)unlink(to);
            (void)rename(from, to);
        }
        atu_witness_start(&wit);
        assert_int_equal(8, atu_witness_size(&env, &wit));
        assert_int_equal(0, lunal("audit", "verify", END));
    }

    /* proof: the inclusion proof printed, --json parses. */
    assert_int_equal(0, lunal("audit", "proof", "--entry", "2", END));
    assert_non_null(strstr(out_buf, "proof: [\""));
    assert_int_equal(0, lunal("--json", "audit", "proof", "--entry", "2", END));
    json_error_t jerr;
    json_t *o = json_loads(out_buf, 0, &jerr);
    assert_non_null(o);
    assert_true(json_is_true(json_object_get(o, "verified")));
    assert_int_equal(8, json_integer_value(json_object_get(o, "size")));
    const json_t *e0 = json_array_get(json_object_get(o, "entries"), 0);
    assert_int_equal(2, json_integer_value(json_object_get(e0, "index")));
    assert_true(json_array_size(json_object_get(e0, "proof")) > 0);
    json_decref(o);

    /* tail shows entries. */
    assert_int_equal(0, lunal("audit", "tail", "--limit", "2", END));
    assert_non_null(strstr(out_buf, "key.release"));
    assert_non_null(strstr(out_buf, "other"));

    /* A tenant auditor: its own entries only. */
    set_token("acme", "auditor");
    assert_int_equal(0, lunal("audit", "verify", "--entry", "1", "--state", state_path, END));
    assert_int_equal(2, lunal("audit", "verify", "--entry", "7", END));
    assert_non_null(strstr(err_buf, "not visible"));
    assert_int_equal(2, lunal("audit", "verify", "--full", END));
    set_token("ops", ATU_PLATFORM_AUDITOR);

    /* Usage and configuration errors: 2. */
    assert_int_equal(2, lunal("audit", "verify", "--entry", "x", END));
    assert_int_equal(2, lunal("audit", "proof", END));
    assert_int_equal(2, lunal("audit", "nosuch", END));

    /* A state file edited by hand (not signed by the log) is refused. */
    {
        char bad[HTU_PATH_MAX];
        htu_path(&env.h, "bad", ".checkpoint", bad, sizeof(bad));
        write_text(bad, "lunal.audit/test\n99\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n");
        assert_int_equal(1, lunal("audit", "verify", "--state", bad, END));
        assert_non_null(strstr(err_buf, "does not verify"));
    }

    /* The log host rewrites history: a fresh database with other entries
     * under the same key, grown past the kept size. */
    assert_int_equal(0, atu_stop(&env, SIGTERM));
    char moved[HTU_PATH_MAX + 16];
    snprintf(moved, sizeof(moved), "%s.orig", env.db_path);
    assert_int_equal(0, rename(env.db_path, moved));
    {
        char side[HTU_PATH_MAX + 16];
        snprintf(side, sizeof(side), "%s-wal", env.db_path);
        (void)unlink(side);
        snprintf(side, sizeof(side), "%s-shm", env.db_path);
        (void)unlink(side);
    }
    atu_start(&env);
    post("evil", 0, 9);
    /* The witness refuses the forked history: it still holds 8. */
    usleep(300000);
    assert_int_equal(8, atu_witness_size(&env, &wit));
    assert_int_equal(1, lunal("audit", "verify", END));
    assert_non_null(strstr(err_buf, "the log rewrote history between size 8 and 9"));
    /* Nothing was kept from the failed run: the state still says 8. */
    {
        size_t len = 0;
        uint8_t *kept = luna_test_read_file(state_path, &len);
        assert_non_null(kept);
        char text[4096];
        assert_true(len < sizeof(text));
        memcpy(text, kept, len);
        text[len] = 0;
        assert_non_null(strstr(text, "\n8\n"));
        free(kept);
    }

    /* A fresh auditor (no kept checkpoint) is saved by the witness... */
    char fresh[HTU_PATH_MAX];
    htu_path(&env.h, "fresh", ".checkpoint", fresh, sizeof(fresh));
    assert_int_equal(1, lunal("audit", "verify", "--state", fresh, END));
    print_message("%s%s", out_buf, err_buf);
    assert_non_null(strstr(err_buf, "witness and log disagree at size 8"));
    assert_int_equal(-1, access(fresh, F_OK));
    /* ... and would have been fooled without it. */
    assert_int_equal(0, lunal("audit", "verify", "--no-witness", "--state", fresh, END));

    /* Rollback: the kept checkpoint (size 9 now in fresh) against a log
     * that shows fewer entries. */
    assert_int_equal(0, atu_stop(&env, SIGTERM));
    {
        char side[HTU_PATH_MAX + 16];
        snprintf(side, sizeof(side), "%s-wal", env.db_path);
        (void)unlink(side);
        snprintf(side, sizeof(side), "%s-shm", env.db_path);
        (void)unlink(side);
    }
    assert_int_equal(0, rename(moved, env.db_path));
    atu_start(&env);
    assert_int_equal(1, lunal("audit", "verify", "--no-witness", "--state", fresh, END));
    assert_non_null(strstr(err_buf, "rolled back from size 9 to 8"));
    /* The original history still verifies against the first state file. */
    assert_int_equal(0, lunal("audit", "verify", END));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_audit_cli, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
