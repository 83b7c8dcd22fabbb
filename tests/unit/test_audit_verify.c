/*
 * test_audit_verify.c - the audit verifier's rules (luna/audit_verify.h)
 * without a network: the O(log n) root accumulator against the reference
 * tree for every size up to 70, JSONL chunks, consistency (first use,
 * rollback, equal sizes, a rewritten tree, a tampered proof), inclusion
 * (a changed leaf, a non-canonical leaf, an index past the size),
 * checkpoints that need both the log's and the witness's signature, and
 * malformed proof answers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "luna/audit_entry.h"
#include "luna/audit_verify.h"
#include "luna/bytes.h"
#include "luna/note.h"
#include "luna_test.h"

#define N_MAX 70
#define H LUNA_MERKLE_HASH_LEN

static uint8_t leaves[N_MAX][LUNA_AUDIT_ENTRY_MAX];
static size_t lens[N_MAX];
static uint8_t hashes[N_MAX][H];

static void make_leaf(unsigned i, const char *tenant, uint8_t *out, size_t *len)
{
    luna_audit_entry e;
    memset(&e, 0, sizeof(e));
    e.time_ms = 1700000000000 + i;
    assert_luna_ok(luna_audit_set(e.component, sizeof(e.component), "lunal://svc/kms"));
    assert_luna_ok(luna_audit_set(e.actor, sizeof(e.actor), "lunal://tee/t1"));
    assert_luna_ok(luna_audit_set(e.tenant, sizeof(e.tenant), tenant));
    assert_luna_ok(luna_audit_set(e.operation, sizeof(e.operation), "key.release"));
    char rid[32];
    snprintf(rid, sizeof(rid), "r-%u", i);
    assert_luna_ok(luna_audit_set(e.request_id, sizeof(e.request_id), rid));
    e.outcome = LUNA_AUDIT_SUCCESS;
    assert_luna_ok(luna_audit_entry_encode(&e, out, LUNA_AUDIT_ENTRY_MAX, len));
}

static int setup(void **state)
{
    (void)state;
    for (unsigned i = 0; i < N_MAX; i++) {
        make_leaf(i, "acme", leaves[i], &lens[i]);
        assert_luna_ok(luna_merkle_leaf_hash(leaves[i], lens[i], hashes[i]));
    }
    return 0;
}

static void ref_root(uint64_t n, uint8_t out[H])
{
    luna_merkle_mem mem;
    luna_merkle_source src;
    luna_merkle_mem_source(&mem, (const uint8_t(*)[H])hashes, n, &src);
    assert_luna_ok(luna_merkle_root(&src, n, out));
}

static void cp_of(uint64_t n, luna_audit_cp *cp)
{
    memset(cp, 0, sizeof(*cp));
    cp->size = n;
    ref_root(n, cp->root);
}

static void test_root_acc_matches_reference(void **state)
{
    (void)state;
    luna_audit_root_acc acc;
    luna_audit_root_acc_init(&acc);
    uint8_t got[H], want[H];
    assert_luna_ok(luna_audit_root_acc_root(&acc, got));
    ref_root(0, want);
    assert_memory_equal(got, want, H);
    for (unsigned n = 1; n <= N_MAX; n++) {
        assert_luna_ok(luna_audit_root_acc_add(&acc, leaves[n - 1], lens[n - 1]));
        assert_luna_ok(luna_audit_root_acc_root(&acc, got));
        ref_root(n, want);
        assert_memory_equal(got, want, H);
    }
    /* A changed leaf changes the root. */
    luna_audit_root_acc_init(&acc);
    uint8_t other[LUNA_AUDIT_ENTRY_MAX];
    size_t ol;
    make_leaf(3, "evil", other, &ol);
    for (unsigned i = 0; i < 7; i++)
        assert_luna_ok(i == 3 ? luna_audit_root_acc_add(&acc, other, ol)
                              : luna_audit_root_acc_add(&acc, leaves[i], lens[i]));
    assert_luna_ok(luna_audit_root_acc_root(&acc, got));
    ref_root(7, want);
    assert_memory_not_equal(got, want, H);
    /* A non-canonical leaf is refused. */
    static const char spaced[] = "{ \"v\":1}";
    assert_int_equal(LUNA_ERR_FORMAT,
                     luna_audit_root_acc_add(&acc, (const uint8_t *)spaced, strlen(spaced)));
}

static void test_jsonl_chunks(void **state)
{
    (void)state;
    uint8_t *buf = malloc(N_MAX * (LUNA_AUDIT_ENTRY_MAX + 1));
    assert_non_null(buf);
    size_t len = 0;
    for (unsigned i = 0; i < 13; i++) {
        memcpy(buf + len, leaves[i], lens[i]);
        len += lens[i];
        buf[len++] = '\n';
    }
    luna_audit_root_acc acc;
    luna_audit_root_acc_init(&acc);
    uint64_t n = 0;
    assert_luna_ok(luna_audit_root_acc_add_jsonl(&acc, buf, len, &n));
    assert_int_equal(13, n);
    uint8_t got[H], want[H];
    assert_luna_ok(luna_audit_root_acc_root(&acc, got));
    ref_root(13, want);
    assert_memory_equal(got, want, H);
    /* No final newline, an empty line: refused. */
    luna_audit_root_acc_init(&acc);
    assert_int_equal(LUNA_ERR_FORMAT, luna_audit_root_acc_add_jsonl(&acc, buf, len - 1, &n));
    static const uint8_t empty_line[] = "\n";
    assert_int_equal(LUNA_ERR_FORMAT, luna_audit_root_acc_add_jsonl(&acc, empty_line, 1, &n));
    free(buf);
}

static void prove_consistency(uint64_t a, uint64_t b, luna_merkle_proof *p)
{
    luna_merkle_mem mem;
    luna_merkle_source src;
    luna_merkle_mem_source(&mem, (const uint8_t(*)[H])hashes, b, &src);
    assert_luna_ok(luna_merkle_prove_consistency(&src, a, b, p));
}

static void test_consistency_rules(void **state)
{
    (void)state;
    luna_audit_cp k, n;
    luna_merkle_proof p;
    luna_merkle_proof_init(&p);
    /* First use: nothing kept, nothing to prove. */
    cp_of(0, &k);
    cp_of(9, &n);
    assert_luna_ok(luna_audit_check_consistency(&k, &n, &p));
    /* Rollback. */
    cp_of(9, &k);
    cp_of(5, &n);
    assert_int_equal(LUNA_ERR_CONFLICT, luna_audit_check_consistency(&k, &n, &p));
    /* Equal sizes: empty proof and equal roots only. */
    cp_of(9, &n);
    assert_luna_ok(luna_audit_check_consistency(&k, &n, &p));
    n.root[0] ^= 1;
    assert_int_equal(LUNA_ERR_VERIFY, luna_audit_check_consistency(&k, &n, &p));
    cp_of(9, &n);
    prove_consistency(5, 9, &p);
    assert_int_equal(LUNA_ERR_VERIFY, luna_audit_check_consistency(&k, &n, &p));
    /* Growth with the right proof; a tampered proof; a rewritten old tree. */
    for (uint64_t a = 1; a < 20; a++)
        for (uint64_t b = a + 1; b <= 21; b++) {
            cp_of(a, &k);
            cp_of(b, &n);
            prove_consistency(a, b, &p);
            assert_luna_ok(luna_audit_check_consistency(&k, &n, &p));
            p.hash[p.n - 1][5] ^= 0x40;
            assert_int_equal(LUNA_ERR_VERIFY, luna_audit_check_consistency(&k, &n, &p));
        }
    cp_of(5, &k);
    cp_of(9, &n);
    prove_consistency(5, 9, &p);
    k.root[31] ^= 1;
    assert_int_equal(LUNA_ERR_VERIFY, luna_audit_check_consistency(&k, &n, &p));
    /* An empty proof between different sizes. */
    cp_of(5, &k);
    luna_merkle_proof_init(&p);
    assert_int_equal(LUNA_ERR_VERIFY, luna_audit_check_consistency(&k, &n, &p));
}

static void test_inclusion_rules(void **state)
{
    (void)state;
    luna_audit_cp cp;
    cp_of(13, &cp);
    luna_merkle_mem mem;
    luna_merkle_source src;
    luna_merkle_mem_source(&mem, (const uint8_t(*)[H])hashes, 13, &src);
    for (uint64_t i = 0; i < 13; i++) {
        luna_merkle_proof p;
        uint8_t h[H];
        assert_luna_ok(luna_merkle_prove_inclusion(&src, i, 13, &p));
        assert_luna_ok(luna_audit_check_inclusion(&cp, i, leaves[i], lens[i], &p, h));
        assert_memory_equal(h, hashes[i], H);
        /* Another entry at this index, or this entry at another index. */
        uint64_t j = (i + 1) % 13;
        assert_int_equal(LUNA_ERR_VERIFY,
                         luna_audit_check_inclusion(&cp, i, leaves[j], lens[j], &p, NULL));
        assert_int_equal(LUNA_ERR_VERIFY,
                         luna_audit_check_inclusion(&cp, j, leaves[i], lens[i], &p, NULL));
    }
    luna_merkle_proof p;
    assert_luna_ok(luna_merkle_prove_inclusion(&src, 2, 13, &p));
    assert_int_equal(LUNA_ERR_VERIFY,
                     luna_audit_check_inclusion(&cp, 13, leaves[2], lens[2], &p, NULL));
    uint8_t bad[LUNA_AUDIT_ENTRY_MAX + 1];
    memcpy(bad, leaves[2], lens[2]);
    bad[lens[2]] = ' ';
    assert_int_equal(LUNA_ERR_FORMAT,
                     luna_audit_check_inclusion(&cp, 2, bad, lens[2] + 1, &p, NULL));
}

static void test_checkpoints_need_both_keys(void **state)
{
    (void)state;
    luna_note_signer *log = NULL, *wit = NULL, *other = NULL;
    static const uint8_t seed1[32] = {1}, seed2[32] = {2}, seed3[32] = {3};
    assert_luna_ok(luna_note_signer_new("lunal.audit/t", 13, seed1, &log));
    assert_luna_ok(luna_note_signer_new("witness/t", 9, seed2, &wit));
    assert_luna_ok(luna_note_signer_new("lunal.audit/t", 13, seed3, &other));
    luna_note_verifier vl, vw, vo;
    luna_note_signer_verifier(log, &vl);
    luna_note_signer_verifier(wit, &vw);
    luna_note_signer_verifier(other, &vo);
    luna_note_checkpoint c = {.origin = "lunal.audit/t", .origin_len = 13, .size = 13};
    ref_root(13, c.root);
    uint8_t text[256], note[2048];
    size_t tl, nl;
    assert_luna_ok(luna_note_checkpoint_format(&c, text, sizeof(text), &tl));
    luna_note_signer *both[2] = {log, wit};
    luna_audit_cp *cp = malloc(sizeof(*cp));
    assert_non_null(cp);
    /* Log only: fine as a log checkpoint, not as a cosigned one. */
    assert_luna_ok(luna_note_sign(text, tl, &log, 1, note, sizeof(note), &nl));
    assert_luna_ok(luna_audit_cp_open(note, nl, &vl, NULL, cp));
    assert_int_equal(13, cp->size);
    assert_memory_equal(cp->root, c.root, H);
    assert_int_equal(LUNA_ERR_VERIFY, luna_audit_cp_open(note, nl, &vl, &vw, cp));
    assert_int_equal(0, cp->size);
    /* Both: cosigned. */
    assert_luna_ok(luna_note_sign(text, tl, both, 2, note, sizeof(note), &nl));
    assert_luna_ok(luna_audit_cp_open(note, nl, &vl, &vw, cp));
    /* Witness only, or another key under the log's name: refused. */
    assert_luna_ok(luna_note_sign(text, tl, &wit, 1, note, sizeof(note), &nl));
    assert_int_equal(LUNA_ERR_VERIFY, luna_audit_cp_open(note, nl, &vl, &vw, cp));
    assert_luna_ok(luna_note_sign(text, tl, &other, 1, note, sizeof(note), &nl));
    assert_int_not_equal(LUNA_OK, luna_audit_cp_open(note, nl, &vl, NULL, cp));
    /* Too large for a kept checkpoint. */
    assert_int_equal(LUNA_ERR_TOO_LARGE, luna_audit_cp_open(note, LUNA_AUDIT_CP_MAX + 1, &vl,
                                                            NULL, cp));
    free(cp);
    luna_note_signer_free(log);
    luna_note_signer_free(wit);
    luna_note_signer_free(other);
    (void)vo;
}

static void test_proof_answers(void **state)
{
    (void)state;
    luna_merkle_proof p;
    static const char ok[] = "{\"index\":1,\"size\":2,\"proof\":[\"000102030405060708090a0b0c0d0e0f"
                             "101112131415161718191a1b1c1d1e1f\"]}";
    assert_luna_ok(luna_audit_proof_parse(ok, strlen(ok), &p));
    assert_int_equal(1, p.n);
    assert_int_equal(0x1f, p.hash[0][31]);
    static const char empty[] = "{\"proof\":[]}";
    assert_luna_ok(luna_audit_proof_parse(empty, strlen(empty), &p));
    assert_int_equal(0, p.n);
    static const char *const bad[] = {
        "", "[]", "{}", "{\"proof\":{}}", "{\"proof\":[1]}", "{\"proof\":[\"00\"]}",
        "{\"proof\":[\"zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"]}",
        "{\"proof\":[],\"proof\":[]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_not_equal(LUNA_OK, luna_audit_proof_parse(bad[i], strlen(bad[i]), &p));
        assert_int_equal(0, p.n);
    }
    /* 66 elements: more than any 64-bit tree needs. */
    json_t *arr = json_array();
    for (int i = 0; i < 66; i++)
        json_array_append_new(arr, json_string("000102030405060708090a0b0c0d0e0f"
                                               "101112131415161718191a1b1c1d1e1f"));
    json_t *o = json_pack("{s:o}", "proof", arr);
    char *s = json_dumps(o, JSON_COMPACT);
    assert_int_not_equal(LUNA_OK, luna_audit_proof_parse(s, strlen(s), &p));
    free(s);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_root_acc_matches_reference),
        cmocka_unit_test(test_jsonl_chunks),
        cmocka_unit_test(test_consistency_rules),
        cmocka_unit_test(test_inclusion_rules),
        cmocka_unit_test(test_checkpoints_need_both_keys),
        cmocka_unit_test(test_proof_answers),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
