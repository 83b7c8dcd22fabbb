/*
 * Damage to the audit log's store between runs, and what reopening does:
 *  - a row past the recorded head (never acknowledged): removed, logged,
 *    the tree is served as it was acknowledged;
 *  - the acknowledged tail truncated: refused (LUNA_ERR_VERIFY), logged;
 *  - a leaf rewritten (bytes and stored hash): the deep verify refuses;
 *  - an interior node altered: refused at open when on the right edge,
 *    and otherwise the served proof no longer verifies against a
 *    checkpoint root kept from before.
 * Each case starts from a fresh log of 13 canonical entries.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit_log.h"
#include "luna/audit_entry.h"
#include "luna/log.h"
#include "luna/merkle.h"
#include "luna/store.h"
#include "luna_test.h"

#define H LUNA_MERKLE_HASH_LEN
#define N 13

static char db_path[64], db_url[80], log_path[64];

static void remove_db(void)
{
    char side[96];
    unlink(db_path);
    snprintf(side, sizeof(side), "%s-wal", db_path);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", db_path);
    unlink(side);
}

static void make_entry(luna_audit_entry *e, unsigned i)
{
    memset(e, 0, sizeof(*e));
    e->time_ms = 1700000000000 + i;
    assert_luna_ok(luna_audit_set(e->component, sizeof(e->component), "lunal://svc/kms"));
    assert_luna_ok(luna_audit_set(e->actor, sizeof(e->actor), "lunal://tee/t1"));
    assert_luna_ok(luna_audit_set(e->tenant, sizeof(e->tenant), i % 2 ? "acme" : "globex"));
    assert_luna_ok(luna_audit_set(e->operation, sizeof(e->operation), "key.release"));
    snprintf(e->request_id, sizeof(e->request_id), "req-%u", i);
    e->outcome = LUNA_AUDIT_SUCCESS;
}

/* A fresh log of N entries; returns its root in root. */
static void fresh_log(uint8_t root[H])
{
    remove_db();
    audit_log *log = NULL;
    audit_log_open_opts o = {.deep_verify = true, .component = "audit-test"};
    assert_luna_ok(audit_log_open(db_url, &o, &log));
    luna_audit_entry e[N];
    for (unsigned i = 0; i < N; i++)
        make_entry(&e[i], i);
    uint64_t first;
    assert_luna_ok(audit_log_append(log, e, 5, &first, NULL));
    assert_luna_ok(audit_log_append(log, e + 5, N - 5, &first, NULL));
    assert_int_equal(5, first);
    audit_log_root(log, root);
    audit_log_close(log);
}

static void sql(const char *stmt, const luna_store_param *p, size_t n)
{
    luna_store *s = NULL;
    assert_luna_ok(luna_store_open(db_url, NULL, &s));
    assert_luna_ok(luna_store_exec(s, stmt, p, n, NULL));
    luna_store_close(s);
}

static luna_err reopen(bool deep, audit_log **out)
{
    audit_log_open_opts o = {.deep_verify = deep, .component = "audit-test"};
    *out = NULL;
    return audit_log_open(db_url, &o, out);
}

static bool log_says(const char *needle)
{
    size_t len = 0;
    uint8_t *b = luna_test_read_file(log_path, &len);
    bool found = false;
    char *text = malloc(len + 1);
    assert_non_null(text);
    memcpy(text, b, len);
    text[len] = '\0';
    found = strstr(text, needle) != NULL;
    free(text);
    free(b);
    return found;
}

static void test_unacknowledged_tail_is_truncated_and_said(void **state)
{
    (void)state;
    uint8_t root[H];
    fresh_log(root);
    /* A row past the head: what a commit never produced nor acknowledged. */
    static const uint8_t junk[] = "{}";
    uint8_t zero[H] = {0};
    luna_store_param p[] = {luna_store_p_int64(N), luna_store_p_blob(junk, 2),
                            luna_store_p_blob(zero, H)};
    sql("INSERT INTO audit_entries VALUES (?1, 0, '', '', '', 'x', ?2, ?3)", p, 3);
    audit_log *log = NULL;
    assert_luna_ok(reopen(true, &log));
    assert_int_equal(N, audit_log_size(log));
    uint8_t r[H];
    audit_log_root(log, r);
    assert_memory_equal(root, r, H);
    audit_log_close(log);
    assert_true(log_says("truncated an unacknowledged tail"));
}

static void test_acknowledged_tail_truncated_is_refused(void **state)
{
    (void)state;
    uint8_t root[H];
    fresh_log(root);
    luna_store_param p[] = {luna_store_p_int64(N - 2)};
    sql("DELETE FROM audit_entries WHERE idx >= ?1", p, 1);
    audit_log *log = NULL;
    assert_luna_err(LUNA_ERR_VERIFY, reopen(false, &log));
    assert_null(log);
    assert_true(log_says("acknowledged entries are missing"));
}

static void test_head_and_tail_rolled_back_together_is_caught_by_a_kept_root(void **state)
{
    (void)state;
    uint8_t kept[H];
    fresh_log(kept);
    audit_log *log = NULL;
    assert_luna_ok(reopen(false, &log));
    uint8_t r12[H];
    assert_luna_ok(audit_log_root_at(log, N - 1, r12));
    audit_log_close(log);
    /* A careful attacker rolls back the last row and the head with it
     * (13 -> 12 leaves completes no node, so none needs removing). */
    luna_store_param p[] = {luna_store_p_int64(N - 1)};
    sql("DELETE FROM audit_entries WHERE idx >= ?1", p, 1);
    luna_store_param q[] = {luna_store_p_int64(N - 1), luna_store_p_blob(r12, H)};
    sql("UPDATE audit_head SET size = ?1, root = ?2", q, 2);
    /* The store is self-consistent again, so it opens... */
    assert_luna_ok(reopen(true, &log));
    assert_int_equal(N - 1, audit_log_size(log));
    /* ...but a verifier holding the checkpoint of size N sees the rollback:
     * the log can prove nothing from N to its size. */
    luna_merkle_proof pr;
    assert_luna_err(LUNA_ERR_NOT_FOUND, audit_log_prove_consistency(log, N, N, &pr));
    audit_log_close(log);
}

static void test_rewritten_leaf_fails_deep_verify(void **state)
{
    (void)state;
    uint8_t root[H];
    fresh_log(root);
    /* Rewrite entry 3 canonically, with a matching leaf hash. */
    luna_audit_entry e;
    make_entry(&e, 3);
    assert_luna_ok(luna_audit_set(e.tenant, sizeof(e.tenant), "mallory"));
    uint8_t leaf[LUNA_AUDIT_ENTRY_MAX], h[H];
    size_t len;
    assert_luna_ok(luna_audit_entry_encode(&e, leaf, sizeof(leaf), &len));
    assert_luna_ok(luna_merkle_leaf_hash(leaf, len, h));
    luna_store_param p[] = {luna_store_p_blob(leaf, len), luna_store_p_blob(h, H)};
    sql("UPDATE audit_entries SET leaf = ?1, leaf_hash = ?2, tenant = 'mallory' WHERE idx = 3",
        p, 2);
    audit_log *log = NULL;
    assert_luna_err(LUNA_ERR_VERIFY, reopen(true, &log));
    assert_true(log_says("do not reproduce the recorded root"));
    /* Without the deep scan it opens, but the leaf's inclusion proof
     * against the kept root fails. */
    assert_luna_ok(reopen(false, &log));
    luna_merkle_proof pr;
    assert_luna_ok(audit_log_prove_inclusion(log, 3, N, &pr));
    assert_luna_err(LUNA_ERR_VERIFY, luna_merkle_verify_inclusion(3, N, h, H, &pr, root, H));
    audit_log_close(log);
}

static void test_altered_edge_node_is_refused(void **state)
{
    (void)state;
    uint8_t root[H];
    fresh_log(root);
    /* N = 13 = 8 + 4 + 1: node (3, 0) is on the right edge. */
    uint8_t bad[H];
    memset(bad, 0x5a, H);
    luna_store_param p[] = {luna_store_p_blob(bad, H)};
    sql("UPDATE audit_nodes SET hash = ?1 WHERE level = 3 AND idx = 0", p, 1);
    audit_log *log = NULL;
    assert_luna_err(LUNA_ERR_VERIFY, reopen(false, &log));
    assert_true(log_says("do not match the recorded root"));
}

static void test_altered_inner_node_breaks_proofs(void **state)
{
    (void)state;
    uint8_t root[H];
    fresh_log(root);
    uint8_t bad[H];
    memset(bad, 0xa5, H);
    luna_store_param p[] = {luna_store_p_blob(bad, H)};
    sql("UPDATE audit_nodes SET hash = ?1 WHERE level = 1 AND idx = 1", p, 1);
    audit_log *log = NULL;
    assert_luna_ok(reopen(false, &log));
    luna_merkle_proof pr;
    uint8_t leaf[LUNA_AUDIT_ENTRY_MAX], h[H];
    size_t len;
    assert_luna_ok(audit_log_leaf(log, 0, leaf, sizeof(leaf), &len));
    assert_luna_ok(luna_merkle_leaf_hash(leaf, len, h));
    assert_luna_ok(audit_log_prove_inclusion(log, 0, N, &pr));
    assert_luna_err(LUNA_ERR_VERIFY, luna_merkle_verify_inclusion(0, N, h, H, &pr, root, H));
    audit_log_close(log);
}

int main(void)
{
    snprintf(db_path, sizeof(db_path), "/tmp/luna-audit-rec-%ld.db", (long)getpid());
    snprintf(db_url, sizeof(db_url), "sqlite:%s", db_path);
    snprintf(log_path, sizeof(log_path), "/tmp/luna-audit-rec-%ld.log", (long)getpid());
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return 1;
    luna_log_set_fd(fd);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unacknowledged_tail_is_truncated_and_said),
        cmocka_unit_test(test_acknowledged_tail_truncated_is_refused),
        cmocka_unit_test(test_head_and_tail_rolled_back_together_is_caught_by_a_kept_root),
        cmocka_unit_test(test_rewritten_leaf_fails_deep_verify),
        cmocka_unit_test(test_altered_edge_node_is_refused),
        cmocka_unit_test(test_altered_inner_node_breaks_proofs),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    remove_db();
    close(fd);
    unlink(log_path);
    return rc;
}
