/*
 * The audit log's durable tree (audit/src/audit_log.c) against the shared
 * vectors merkle/rfc6962_ct_8leaves.json: the 8 leaves are appended in
 * uneven batches to a real SQLite file, and after every batch, and again
 * after a close and reopen (recovery rebuilds the right edge from the
 * store), every root, inclusion proof and consistency proof the log
 * produces must equal the vector byte for byte and verify.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit_log.h"
#include "luna/bytes.h"
#include "luna/merkle.h"
#include "luna_test.h"

#define H LUNA_MERKLE_HASH_LEN

static json_t *vec;
static char db_path[64];
static char db_url[80];

static void hex32(const char *hex, uint8_t out[H])
{
    size_t n = 0;
    uint8_t *b = luna_test_unhex(hex, &n);
    assert_int_equal(H, n);
    memcpy(out, b, H);
    free(b);
}

static void expect_proof(const luna_merkle_proof *p, const json_t *arr)
{
    assert_int_equal(json_array_size(arr), p->n);
    for (size_t i = 0; i < p->n; i++) {
        uint8_t h[H];
        hex32(json_string_value(json_array_get(arr, i)), h);
        assert_memory_equal(h, p->hash[i], H);
    }
}

/* Checks everything the vectors say about trees of at most `size` leaves. */
static size_t check_all(audit_log *log, uint64_t size)
{
    size_t checked = 0;
    const json_t *roots = json_object_get(vec, "roots");
    for (size_t i = 0; i < json_array_size(roots); i++) {
        const json_t *r = json_array_get(roots, i);
        uint64_t ts = (uint64_t)json_integer_value(json_object_get(r, "tree_size"));
        if (ts > size)
            continue;
        uint8_t want[H], got[H];
        hex32(json_string_value(json_object_get(r, "root")), want);
        assert_luna_ok(audit_log_root_at(log, ts, got));
        assert_memory_equal(want, got, H);
        checked++;
    }
    const json_t *inc = json_object_get(vec, "inclusion_proofs");
    for (size_t i = 0; i < json_array_size(inc); i++) {
        const json_t *v = json_array_get(inc, i);
        uint64_t idx = (uint64_t)json_integer_value(json_object_get(v, "leaf_index"));
        uint64_t ts = (uint64_t)json_integer_value(json_object_get(v, "tree_size"));
        if (ts > size)
            continue;
        luna_merkle_proof p;
        assert_luna_ok(audit_log_prove_inclusion(log, idx, ts, &p));
        expect_proof(&p, json_object_get(v, "proof"));
        uint8_t leaf[H], root[H];
        hex32(json_string_value(json_object_get(v, "leaf_hash")), leaf);
        hex32(json_string_value(json_object_get(v, "root")), root);
        assert_luna_ok(luna_merkle_verify_inclusion(idx, ts, leaf, H, &p, root, H));
        checked++;
    }
    const json_t *con = json_object_get(vec, "consistency_proofs");
    for (size_t i = 0; i < json_array_size(con); i++) {
        const json_t *v = json_array_get(con, i);
        uint64_t s1 = (uint64_t)json_integer_value(json_object_get(v, "size1"));
        uint64_t s2 = (uint64_t)json_integer_value(json_object_get(v, "size2"));
        if (s2 > size)
            continue;
        luna_merkle_proof p;
        assert_luna_ok(audit_log_prove_consistency(log, s1, s2, &p));
        expect_proof(&p, json_object_get(v, "proof"));
        uint8_t r1[H], r2[H];
        hex32(json_string_value(json_object_get(v, "root1")), r1);
        hex32(json_string_value(json_object_get(v, "root2")), r2);
        assert_luna_ok(luna_merkle_verify_consistency(s1, s2, r1, H, r2, H, &p));
        checked++;
    }
    return checked;
}

static void test_vectors_through_the_store(void **state)
{
    (void)state;
    audit_log *log = NULL;
    audit_log_open_opts o = {.deep_verify = false, .component = "audit-test"};
    assert_luna_ok(audit_log_open(db_url, &o, &log));
    assert_int_equal(0, audit_log_size(log));

    const json_t *inputs = json_object_get(vec, "leaf_inputs");
    assert_int_equal(8, json_array_size(inputs));
    uint8_t *bufs[8];
    size_t lens[8];
    for (size_t i = 0; i < 8; i++)
        bufs[i] = luna_test_unhex(json_string_value(json_array_get(inputs, i)), &lens[i]);
    /* Uneven batches: 1, 2, 4, 1 - nodes completed inside and across batches. */
    static const size_t batches[] = {1, 2, 4, 1};
    size_t at = 0, last_checked = 0;
    for (size_t b = 0; b < 4; b++) {
        uint64_t first = 99;
        assert_luna_ok(audit_log_append_raw(log, (const uint8_t *const *)&bufs[at], &lens[at],
                                            batches[b], &first));
        assert_int_equal(at, first);
        at += batches[b];
        assert_int_equal(at, audit_log_size(log));
        last_checked = check_all(log, at);
    }
    /* 9 roots + 36 inclusion + 36 consistency, as the vectors README says. */
    assert_int_equal(81, last_checked);

    /* Sizes the log has not committed are refused, not guessed. */
    luna_merkle_proof p;
    assert_luna_err(LUNA_ERR_NOT_FOUND, audit_log_prove_inclusion(log, 0, 9, &p));
    assert_luna_err(LUNA_ERR_NOT_FOUND, audit_log_prove_consistency(log, 1, 9, &p));
    assert_luna_err(LUNA_ERR_FORMAT, audit_log_prove_consistency(log, 0, 8, &p));
    assert_luna_err(LUNA_ERR_FORMAT, audit_log_prove_inclusion(log, 8, 8, &p));
    audit_log_close(log);

    /* Recovery rebuilds the edge from the store: same answers. */
    log = NULL;
    assert_luna_ok(audit_log_open(db_url, &o, &log));
    assert_int_equal(8, audit_log_size(log));
    assert_int_equal(81, check_all(log, 8));
    audit_log_close(log);
    for (size_t i = 0; i < 8; i++)
        free(bufs[i]);
}

int main(void)
{
    char *path = luna_test_vector_path("merkle/rfc6962_ct_8leaves.json");
    json_error_t jerr;
    vec = json_load_file(path, 0, &jerr);
    if (vec == NULL) {
        fprintf(stderr, "%s: %s\n", path, jerr.text);
        return 1;
    }
    free(path);
    snprintf(db_path, sizeof(db_path), "/tmp/luna-audit-vec-%ld.db", (long)getpid());
    snprintf(db_url, sizeof(db_url), "sqlite:%s", db_path);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_through_the_store),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char side[96];
    unlink(db_path);
    snprintf(side, sizeof(side), "%s-wal", db_path);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", db_path);
    unlink(side);
    json_decref(vec);
    return rc;
}
