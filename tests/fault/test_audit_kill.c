/*
 * kill -9 of the audit service while several writer processes append
 * concurrently.  Each writer records an entry as acknowledged only after
 * the 201 arrived (index and request id, to its own file).  After the
 * kill the service restarts (deep verify on: every leaf re-hashed, the
 * root recomputed) and every acknowledged entry must be at its index with
 * its request id, and the whole log must verify against its checkpoint.
 * Three rounds, each killing at a different moment.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit_test_util.h"
#include "luna/audit_entry.h"
#include "luna_test.h"

#define WRITERS 4
#define MAX_ACKS 20000

typedef struct ack {
    char rid[40];
    uint64_t index;
} ack;

static void writer(atu_env *e, int round, int w, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        _exit(2);
    luna_http_client_opts o;
    char paths[3][HTU_PATH_MAX];
    atu_client(e, "kms", &o, paths);
    o.timeout_sec = 5;
    for (int i = 0; i < 100000; i++) {
        char rid[40], body[1024];
        snprintf(rid, sizeof(rid), "r%d-w%d-%d", round, w, i);
        atu_entry_json(body, sizeof(body), "acme", rid);
        luna_http_result r;
        if (luna_http_fetch(&o, "POST", "/v1/audit/entries", "application/json", body,
                            strlen(body), &r) != LUNA_OK)
            break;
        if (r.status != 201) {
            luna_http_result_free(&r);
            break;
        }
        json_error_t jerr;
        json_t *j = json_loadb((const char *)r.body, r.body_len, 0, &jerr);
        luna_http_result_free(&r);
        if (j == NULL)
            _exit(3);
        char line[96];
        int n = snprintf(line, sizeof(line), "%s %lld\n", rid,
                         (long long)json_integer_value(json_object_get(j, "index")));
        json_decref(j);
        if (write(fd, line, (size_t)n) != n)
            _exit(4);
    }
    close(fd);
    _exit(0);
}

static size_t read_acks(const char *path, ack *acks, size_t n)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long long idx;
    char rid[40];
    while (n < MAX_ACKS && fscanf(f, "%39s %lld", rid, &idx) == 2) {
        memcpy(acks[n].rid, rid, sizeof(rid));
        acks[n].index = (uint64_t)idx;
        n++;
    }
    fclose(f);
    return n;
}

/* The request id of every leaf, through the platform export. */
static char (*all_rids(atu_env *e, uint64_t size))[40]
{
    char(*rids)[40] = calloc(size + 1, 40);
    assert_non_null(rids);
    char *tok = atu_token(e, "ops", ATU_PLATFORM_AUDITOR);
    for (uint64_t at = 0; at < size;) {
        uint64_t to = at + 30 < size ? at + 30 : size;
        char path[96];
        snprintf(path, sizeof(path), "/v1/audit/export?from=%llu&to=%llu", (unsigned long long)at,
                 (unsigned long long)to);
        htu_raw raw;
        assert_int_equal(200, atu_get_bearer(e, "gateway", path, tok, &raw));
        const char *line = htu_raw_body(&raw);
        while (at < to) {
            const char *nl = strchr(line, '\n');
            assert_non_null(nl);
            luna_audit_entry en;
            assert_luna_ok(luna_audit_entry_decode((const uint8_t *)line, (size_t)(nl - line), &en));
            memcpy(rids[at], en.request_id, strlen(en.request_id) + 1);
            at++;
            line = nl + 1;
        }
    }
    free(tok);
    return rids;
}

static void test_kill_during_appends(void **state)
{
    (void)state;
    atu_env e;
    atu_setup(&e, NULL);
    ack *acks = calloc(MAX_ACKS, sizeof(*acks));
    assert_non_null(acks);
    size_t n_acks = 0;
    static const int kill_ms[] = {700, 1300, 450};
    atu_checkpoint kept = {0};
    for (int round = 0; round < 3; round++) {
        atu_start(&e);
        if (round > 0)
            assert_luna_ok(atu_verify_log(&e, &kept, &kept));
        pid_t kids[WRITERS];
        char files[WRITERS][HTU_PATH_MAX];
        for (int w = 0; w < WRITERS; w++) {
            char name[32];
            snprintf(name, sizeof(name), "acks-%d-%d", round, w);
            htu_path(&e.h, name, ".txt", files[w], sizeof(files[w]));
            kids[w] = fork();
            assert_true(kids[w] >= 0);
            if (kids[w] == 0)
                writer(&e, round, w, files[w]);
        }
        struct timespec ts = {kill_ms[round] / 1000, (kill_ms[round] % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        assert_int_equal(-1, atu_stop(&e, SIGKILL));
        for (int w = 0; w < WRITERS; w++) {
            int st;
            assert_int_equal(kids[w], waitpid(kids[w], &st, 0));
            assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
            n_acks = read_acks(files[w], acks, n_acks);
        }
    }
    /* Restart: recovery, deep verify, and every acknowledged entry. */
    atu_start(&e);
    atu_checkpoint now;
    assert_luna_ok(atu_verify_log(&e, &kept, &now));
    print_message("acknowledged %zu entries over 3 kills; log size %llu\n", n_acks,
                  (unsigned long long)now.size);
    assert_true(n_acks > 20);
    assert_true(now.size >= n_acks);
    char(*rids)[40] = all_rids(&e, now.size);
    for (size_t i = 0; i < n_acks; i++) {
        assert_true(acks[i].index < now.size);
        if (strcmp(rids[acks[i].index], acks[i].rid) != 0)
            fail_msg("acknowledged %s at %llu lost (found %s)", acks[i].rid,
                     (unsigned long long)acks[i].index, rids[acks[i].index]);
    }
    free(rids);
    free(acks);
    assert_int_equal(0, atu_stop(&e, SIGTERM));
    atu_teardown(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_during_appends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
