/*
 * Merkle tree against the shared vectors (vectors README section 3):
 *  - merkle/rfc6962_ct_8leaves.json: roots 0..8, 36 inclusion and 36
 *    consistency proofs, generated and compared byte for byte, verified,
 *    then mutated (bit flips, truncation, extension, index/size changes)
 *    and refused;
 *  - merkle/transparency-dev-probes-hex.json: all 196 probes, accepting
 *    exactly the wantErr == false ones.
 * Every count is printed and checked against the README's, so a probe that
 * did not run fails the suite.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luna/bytes.h"
#include "luna/merkle.h"
#include "luna_test.h"

#define H LUNA_MERKLE_HASH_LEN

static json_t *load_json(const char *rel, size_t flags)
{
    char *path = luna_test_vector_path(rel);
    json_error_t jerr;
    json_t *root = json_load_file(path, flags, &jerr);
    if (root == NULL)
        fail_msg("%s: %s (line %d)", path, jerr.text, jerr.line);
    free(path);
    return root;
}

static const char *str_field(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (s == NULL)
        fail_msg("missing string field %s", key);
    return s;
}

/*
 * The probes file holds 2^64 - 1 (index 0 minus one), which jansson cannot
 * hold as an integer: it is loaded with JSON_DECODE_INT_AS_REAL.  A double
 * is exact below 2^53 and 2^64 - 1 rounds to exactly 2^64; anything else
 * would be ambiguous and fails the test rather than being guessed.
 */
static uint64_t u64_field(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        assert_true(i >= 0);
        return (uint64_t)i;
    }
    if (!json_is_real(v))
        fail_msg("missing number field %s", key);
    double d = json_real_value(v);
    if (d == 18446744073709551616.0)
        return UINT64_MAX;
    if (!(d >= 0 && d < 9007199254740992.0) || (double)(uint64_t)d != d)
        fail_msg("number %s = %f not exactly representable", key, d);
    return (uint64_t)d;
}

/* Decodes a hex field into a malloc'd buffer (any length, may be 0). */
static uint8_t *hex_field(const json_t *o, const char *key, size_t *len)
{
    return luna_test_unhex(str_field(o, key), len);
}

static void hex32(const char *hex, uint8_t out[H])
{
    size_t n = 0;
    uint8_t *b = luna_test_unhex(hex, &n);
    assert_int_equal(H, n);
    memcpy(out, b, H);
    free(b);
}

/* Fills a proof from a JSON array of hex strings (NULL/null = empty). */
static luna_err proof_from_json(const json_t *arr, luna_merkle_proof *p)
{
    size_t i;
    const json_t *e;

    luna_merkle_proof_init(p);
    if (arr == NULL || json_is_null(arr))
        return LUNA_OK;
    if (!json_is_array(arr))
        fail_msg("proof is not an array");
    json_array_foreach(arr, i, e)
    {
        size_t n = 0;
        const char *hex = json_string_value(e);
        if (hex == NULL)
            fail_msg("proof element is not a string");
        uint8_t *b = luna_test_unhex(hex, &n);
        luna_err err = luna_merkle_proof_add(p, b, n);
        free(b);
        if (err != LUNA_OK)
            return err;
    }
    return LUNA_OK;
}

/* ---- rfc6962_ct_8leaves.json ---- */

struct ct_tree {
    json_t *doc;
    uint8_t leaves[8][H];
    uint8_t roots[9][H];
    luna_merkle_mem mem;
    luna_merkle_source src;
};

static void ct_load(struct ct_tree *t)
{
    size_t i;
    const json_t *e;

    t->doc = load_json("merkle/rfc6962_ct_8leaves.json", 0);
    const json_t *inputs = json_object_get(t->doc, "leaf_inputs");
    const json_t *hashes = json_object_get(t->doc, "leaf_hashes");
    assert_int_equal(8, json_array_size(inputs));
    assert_int_equal(8, json_array_size(hashes));
    json_array_foreach(inputs, i, e)
    {
        size_t n = 0;
        uint8_t want[H];
        uint8_t *in = luna_test_unhex(json_string_value(e), &n);
        assert_luna_ok(luna_merkle_leaf_hash(in, n, t->leaves[i]));
        free(in);
        hex32(json_string_value(json_array_get(hashes, i)), want);
        assert_memory_equal(want, t->leaves[i], H);
    }
    luna_merkle_mem_source(&t->mem, (const uint8_t(*)[H])t->leaves, 8, &t->src);
    const json_t *roots = json_object_get(t->doc, "roots");
    assert_int_equal(9, json_array_size(roots));
    json_array_foreach(roots, i, e)
    {
        uint64_t size = u64_field(e, "tree_size");
        uint8_t want[H];
        assert_true(size <= 8);
        hex32(str_field(e, "root"), want);
        assert_luna_ok(luna_merkle_root(&t->src, size, t->roots[size]));
        assert_memory_equal(want, t->roots[size], H);
    }
    printf("merkle vectors: 8 leaf hashes and 9 roots match\n");
}

static void ct_inclusion(void **state)
{
    (void)state;
    struct ct_tree t;
    size_t i, ok = 0, refused = 0;
    const json_t *e;

    ct_load(&t);
    const json_t *list = json_object_get(t.doc, "inclusion_proofs");
    json_array_foreach(list, i, e)
    {
        uint64_t idx = u64_field(e, "leaf_index"), size = u64_field(e, "tree_size");
        uint8_t leaf[H], root[H];
        luna_merkle_proof want, got, bad;
        hex32(str_field(e, "leaf_hash"), leaf);
        hex32(str_field(e, "root"), root);
        assert_true(idx < size && size <= 8);
        assert_memory_equal(leaf, t.leaves[idx], H);
        assert_memory_equal(root, t.roots[size], H);
        assert_luna_ok(proof_from_json(json_object_get(e, "proof"), &want));
        /* Generated byte for byte. */
        assert_luna_ok(luna_merkle_prove_inclusion(&t.src, idx, size, &got));
        assert_int_equal(want.n, got.n);
        if (want.n != 0)
            assert_memory_equal(want.hash, got.hash, want.n * H);
        /* Verified. */
        assert_luna_ok(luna_merkle_verify_inclusion(idx, size, leaf, H, &want, root, H));
        ok++;
        /* Derived negatives. */
        for (size_t k = 0; k < want.n; k++) {
            for (unsigned bit = 0; bit < 8; bit += 3) {
                bad = want;
                bad.hash[k][(k * 11 + bit) % H] ^= (uint8_t)(1u << bit);
                assert_luna_err(LUNA_ERR_VERIFY,
                                luna_merkle_verify_inclusion(idx, size, leaf, H, &bad, root, H));
                refused++;
            }
        }
        if (want.n != 0) {
            bad = want;
            bad.n--;
            assert_luna_err(LUNA_ERR_VERIFY,
                            luna_merkle_verify_inclusion(idx, size, leaf, H, &bad, root, H));
            refused++;
        }
        bad = want;
        assert_luna_ok(luna_merkle_proof_add(&bad, root, H));
        assert_luna_err(LUNA_ERR_VERIFY,
                        luna_merkle_verify_inclusion(idx, size, leaf, H, &bad, root, H));
        refused++;
        for (uint64_t other = 0; other < size; other++) {
            if (other == idx)
                continue;
            assert_int_not_equal(LUNA_OK, luna_merkle_verify_inclusion(other, size, leaf, H, &want,
                                                                        root, H));
            refused++;
        }
        assert_luna_err(LUNA_ERR_FORMAT,
                        luna_merkle_verify_inclusion(size, size, leaf, H, &want, root, H));
        assert_luna_err(LUNA_ERR_FORMAT,
                        luna_merkle_verify_inclusion(idx, size, leaf, H - 1, &want, root, H));
        assert_int_not_equal(LUNA_OK, luna_merkle_verify_inclusion(idx, size * 2, leaf, H, &want,
                                                                    root, H));
        refused += 3;
    }
    printf("merkle vectors: %zu inclusion proofs generated and verified, %zu derived "
           "negatives refused\n",
           ok, refused);
    assert_int_equal(36, ok);
    json_decref(t.doc);
}

static void ct_consistency(void **state)
{
    (void)state;
    struct ct_tree t;
    size_t i, ok = 0, refused = 0;
    const json_t *e;

    ct_load(&t);
    const json_t *list = json_object_get(t.doc, "consistency_proofs");
    json_array_foreach(list, i, e)
    {
        uint64_t m = u64_field(e, "size1"), n = u64_field(e, "size2");
        uint8_t r1[H], r2[H];
        luna_merkle_proof want, got, bad;
        hex32(str_field(e, "root1"), r1);
        hex32(str_field(e, "root2"), r2);
        assert_true(m >= 1 && m <= n && n <= 8);
        assert_memory_equal(r1, t.roots[m], H);
        assert_memory_equal(r2, t.roots[n], H);
        assert_luna_ok(proof_from_json(json_object_get(e, "proof"), &want));
        assert_luna_ok(luna_merkle_prove_consistency(&t.src, m, n, &got));
        assert_int_equal(want.n, got.n);
        if (want.n != 0)
            assert_memory_equal(want.hash, got.hash, want.n * H);
        assert_luna_ok(luna_merkle_verify_consistency(m, n, r1, H, r2, H, &want));
        ok++;
        if (m == n) {
            assert_int_equal(0, want.n);
            bad = want;
            assert_luna_ok(luna_merkle_proof_add(&bad, r1, H));
            assert_luna_err(LUNA_ERR_FORMAT, luna_merkle_verify_consistency(m, n, r1, H, r2, H, &bad));
            if (m > 1)
                assert_luna_err(LUNA_ERR_VERIFY, luna_merkle_verify_consistency(
                                                     m, n, t.roots[m - 1], H, r2, H, &want));
            refused += 1 + (m > 1);
            continue;
        }
        for (size_t k = 0; k < want.n; k++) {
            bad = want;
            bad.hash[k][(k * 13) % H] ^= 0x04;
            assert_luna_err(LUNA_ERR_VERIFY, luna_merkle_verify_consistency(m, n, r1, H, r2, H, &bad));
            refused++;
        }
        bad = want;
        bad.n--;
        assert_int_not_equal(LUNA_OK, luna_merkle_verify_consistency(m, n, r1, H, r2, H, &bad));
        bad = want;
        assert_luna_ok(luna_merkle_proof_add(&bad, r2, H));
        assert_luna_err(LUNA_ERR_VERIFY, luna_merkle_verify_consistency(m, n, r1, H, r2, H, &bad));
        assert_int_not_equal(LUNA_OK, luna_merkle_verify_consistency(m, n, r2, H, r1, H, &want));
        assert_luna_err(LUNA_ERR_FORMAT, luna_merkle_verify_consistency(0, n, r1, H, r2, H, &want));
        assert_luna_err(LUNA_ERR_FORMAT, luna_merkle_verify_consistency(n, m, r1, H, r2, H, &want));
        assert_luna_err(LUNA_ERR_FORMAT,
                        luna_merkle_verify_consistency(m, n, r1, H - 1, r2, H, &want));
        refused += 6;
    }
    printf("merkle vectors: %zu consistency proofs generated and verified, %zu derived "
           "negatives refused\n",
           ok, refused);
    assert_int_equal(36, ok);
    json_decref(t.doc);
}

/* ---- transparency-dev probes ---- */

static void td_probes(void **state)
{
    (void)state;
    json_t *doc = load_json("merkle/transparency-dev-probes-hex.json", JSON_DECODE_INT_AS_REAL);
    size_t i, run[2] = {0, 0}, accepted[2] = {0, 0}, rejected[2] = {0, 0}, wrong = 0;
    const json_t *e;

    json_array_foreach(json_object_get(doc, "inclusion"), i, e)
    {
        size_t leaf_len = 0, root_len = 0;
        uint8_t *leaf = hex_field(e, "leafHash", &leaf_len);
        uint8_t *root = hex_field(e, "root", &root_len);
        luna_merkle_proof p;
        luna_err err = proof_from_json(json_object_get(e, "proof"), &p);
        if (err == LUNA_OK)
            err = luna_merkle_verify_inclusion(u64_field(e, "leafIdx"), u64_field(e, "treeSize"),
                                               leaf, leaf_len, &p, root, root_len);
        int want_err = json_is_true(json_object_get(e, "wantErr"));
        if ((err != LUNA_OK) != want_err) {
            fprintf(stderr, "MISHANDLED inclusion probe %s: got %s, wantErr=%d\n",
                    str_field(e, "file"), luna_errname(err), want_err);
            wrong++;
        }
        run[0]++;
        (err == LUNA_OK ? accepted : rejected)[0]++;
        free(leaf);
        free(root);
    }
    json_array_foreach(json_object_get(doc, "consistency"), i, e)
    {
        size_t r1_len = 0, r2_len = 0;
        uint8_t *r1 = hex_field(e, "root1", &r1_len);
        uint8_t *r2 = hex_field(e, "root2", &r2_len);
        luna_merkle_proof p;
        luna_err err = proof_from_json(json_object_get(e, "proof"), &p);
        if (err == LUNA_OK)
            err = luna_merkle_verify_consistency(u64_field(e, "size1"), u64_field(e, "size2"), r1,
                                                 r1_len, r2, r2_len, &p);
        int want_err = json_is_true(json_object_get(e, "wantErr"));
        if ((err != LUNA_OK) != want_err) {
            fprintf(stderr, "MISHANDLED consistency probe %s: got %s, wantErr=%d\n",
                    str_field(e, "file"), luna_errname(err), want_err);
            wrong++;
        }
        run[1]++;
        (err == LUNA_OK ? accepted : rejected)[1]++;
        free(r1);
        free(r2);
    }
    printf("merkle probes: inclusion %zu run (%zu accepted, %zu rejected); consistency %zu run "
           "(%zu accepted, %zu rejected); %zu mishandled\n",
           run[0], accepted[0], rejected[0], run[1], accepted[1], rejected[1], wrong);
    assert_int_equal(0, wrong);
    assert_int_equal(98, run[0]);
    assert_int_equal(98, run[1]);
    assert_int_equal(6, accepted[0]);
    assert_int_equal(6, accepted[1]);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ct_inclusion),
        cmocka_unit_test(ct_consistency),
        cmocka_unit_test(td_probes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
