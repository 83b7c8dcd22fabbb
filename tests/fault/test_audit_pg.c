/*
 * fault.audit_pg: the audit log's append path on PostgreSQL (a throwaway
 * server from tests/support/pg_server.sh, LUNA_TEST_PG_URL).  The real
 * luna-audit with storage.url on PostgreSQL: group-committed appends,
 * checkpoints, inclusion and consistency proofs checked by the shared
 * verifier, a clean restart (recovery with deep verify), kill -9 during
 * concurrent appends losing no acknowledged entry (twice), and an entry
 * rewritten in the database refused at the next start.  Without the URL
 * the test FAILS: never skipped.
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
#include "luna/audit_verify.h"
#include "luna/store.h"
#include "luna_test.h"

#define WRITERS 3
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
        snprintf(rid, sizeof(rid), "pg%d-w%d-%d", round, w, i);
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

/* The request id of leaf index, read back through the export. */
static void rid_at(atu_env *e, const char *tok, uint64_t index, char out[40])
{
    char path[96];
    snprintf(path, sizeof(path), "/v1/audit/export?from=%llu&to=%llu",
             (unsigned long long)index, (unsigned long long)index + 1);
    htu_raw raw;
    assert_int_equal(200, atu_get_bearer(e, "gateway", path, tok, &raw));
    const char *line = htu_raw_body(&raw);
    const char *nl = strchr(line, '\n');
    assert_non_null(nl);
    luna_audit_entry en;
    assert_luna_ok(luna_audit_entry_decode((const uint8_t *)line, (size_t)(nl - line), &en));
    assert_true(strlen(en.request_id) < 40);
    memcpy(out, en.request_id, strlen(en.request_id) + 1);
}

static void post(atu_env *e, const char *tenant, unsigned from, unsigned to)
{
    for (unsigned i = from; i < to; i++) {
        char rid[32], body[1024];
        snprintf(rid, sizeof(rid), "pgs-%u", i);
        atu_entry_json(body, sizeof(body), tenant, rid);
        luna_http_result r;
        assert_int_equal(201, atu_fetch(e, "kms", "POST", "/v1/audit/entries", body, &r));
        luna_http_result_free(&r);
    }
}

/* An inclusion proof served by the log, checked against the checkpoint. */
static void check_inclusion(atu_env *e, const atu_checkpoint *cp, uint64_t index)
{
    luna_audit_cp *c = malloc(sizeof(*c));
    assert_non_null(c);
    assert_luna_ok(luna_audit_cp_open(cp->note, cp->len, &e->verifier, NULL, c));
    char path[128];
    snprintf(path, sizeof(path), "/v1/audit/proof/inclusion?index=%llu&size=%llu",
             (unsigned long long)index, (unsigned long long)cp->size);
    luna_http_result r;
    assert_int_equal(200, atu_fetch(e, "kms", "GET", path, NULL, &r));
    luna_merkle_proof p;
    assert_luna_ok(luna_audit_proof_parse(r.body, r.body_len, &p));
    luna_http_result_free(&r);
    char *tok = atu_token(e, "ops", ATU_PLATFORM_AUDITOR);
    snprintf(path, sizeof(path), "/v1/audit/export?from=%llu&to=%llu", (unsigned long long)index,
             (unsigned long long)index + 1);
    htu_raw raw;
    assert_int_equal(200, atu_get_bearer(e, "gateway", path, tok, &raw));
    free(tok);
    const char *line = htu_raw_body(&raw);
    const char *nl = strchr(line, '\n');
    assert_non_null(nl);
    assert_luna_ok(luna_audit_check_inclusion(c, index, (const uint8_t *)line,
                                              (size_t)(nl - line), &p, NULL));
    free(c);
}

static void test_pg_append_path(void **state)
{
    (void)state;
    const char *url = getenv("LUNA_TEST_PG_URL");
    if (url == NULL || url[0] == '\0')
        fail_msg("LUNA_TEST_PG_URL is not set: run through tests/support/pg_server.sh");
    atu_env e;
    atu_setup(&e, NULL);
    snprintf(e.storage_url, sizeof(e.storage_url), "%s", url);
    atu_rewrite_config(&e, NULL);

    /* Appends, a checkpoint, proofs. */
    atu_start(&e);
    post(&e, "acme", 0, 40);
    atu_checkpoint kept = {0}, now;
    assert_luna_ok(atu_verify_log(&e, NULL, &kept));
    assert_int_equal(40, kept.size);
    for (uint64_t i = 0; i < 40; i += 7)
        check_inclusion(&e, &kept, i);

    /* A clean restart: recovery with deep verify, consistent history. */
    assert_int_equal(0, atu_stop(&e, SIGTERM));
    atu_start(&e);
    post(&e, "beta", 40, 45);
    assert_luna_ok(atu_verify_log(&e, &kept, &now));
    assert_int_equal(45, now.size);
    kept = now;

    /* kill -9 during concurrent appends, twice: no acknowledged entry lost. */
    ack *acks = calloc(MAX_ACKS, sizeof(*acks));
    assert_non_null(acks);
    size_t n_acks = 0;
    static const int kill_ms[] = {900, 500};
    for (int round = 0; round < 2; round++) {
        if (round > 0)
            atu_start(&e);
        pid_t kids[WRITERS];
        char files[WRITERS][HTU_PATH_MAX];
        for (int w = 0; w < WRITERS; w++) {
            char name[32];
            snprintf(name, sizeof(name), "pgacks-%d-%d", round, w);
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
    atu_start(&e);
    assert_luna_ok(atu_verify_log(&e, &kept, &now));
    print_message("PostgreSQL: acknowledged %zu entries over 2 kills; log size %llu\n", n_acks,
                  (unsigned long long)now.size);
    assert_true(n_acks > 10);
    assert_true(now.size >= 45 + n_acks);
    char *tok = atu_token(&e, "ops", ATU_PLATFORM_AUDITOR);
    for (size_t i = 0; i < n_acks; i++) {
        char rid[40];
        assert_true(acks[i].index < now.size);
        rid_at(&e, tok, acks[i].index, rid);
        if (strcmp(rid, acks[i].rid) != 0)
            fail_msg("acknowledged %s at %llu lost (found %s)", acks[i].rid,
                     (unsigned long long)acks[i].index, rid);
    }
    free(tok);
    free(acks);
    check_inclusion(&e, &now, now.size - 1);

    /* An entry rewritten in the database: the next start refuses. */
    assert_int_equal(0, atu_stop(&e, SIGTERM));
    luna_store *db = NULL;
    assert_luna_ok(luna_store_open(url, NULL, &db));
    uint8_t leaf[LUNA_AUDIT_ENTRY_MAX];
    size_t len = 0;
    {
        luna_store_param p = luna_store_p_int64(3);
        luna_store_rows *rows = NULL;
        bool has = false;
        const uint8_t *b;
        assert_luna_ok(luna_store_query(db, "SELECT leaf FROM audit_entries WHERE idx = ?1", &p,
                                        1, &rows));
        assert_luna_ok(luna_store_rows_next(rows, &has));
        assert_true(has);
        assert_luna_ok(luna_store_col_blob(rows, 0, &b, &len));
        assert_true(len < sizeof(leaf));
        memcpy(leaf, b, len);
        luna_store_rows_free(rows);
    }
    char *acme = memmem(leaf, len, "\"acme\"", 6);
    assert_non_null(acme);
    memcpy(acme + 1, "evil", 4);
    luna_store_param up[] = {luna_store_p_blob(leaf, len), luna_store_p_int64(3)};
    uint64_t changed = 0;
    assert_luna_ok(luna_store_exec(db, "UPDATE audit_entries SET leaf = ?1 WHERE idx = ?2", up,
                                   2, &changed));
    assert_int_equal(1, changed);
    luna_store_close(db);
    assert_false(atu_try_start(&e));
    assert_true(atu_file_contains(e.log_path, "index", 5));
    atu_teardown(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pg_append_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
