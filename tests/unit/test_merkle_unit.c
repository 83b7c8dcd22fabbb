/*
 * Unit tests for luna/merkle.h that need no shared folder: the classic
 * RFC 6962 / CT 8-leaf tree (roots and a few proofs, facts of SHA-256 and
 * the RFC algorithm), exhaustive generate-then-verify over small trees
 * with every single-element mutation refused, a store that keeps interior
 * nodes, and 64-bit edge sizes through a tree whose leaves are all equal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/merkle.h"
#include "luna_test.h"

#define H LUNA_MERKLE_HASH_LEN

static const char *const ct_inputs[8] = {"",         "00",       "10",
                                         "2021",     "3031",     "40414243",
                                         "5051525354555657",
                                         "606162636465666768696a6b6c6d6e6f"};
static const char *const ct_roots[9] = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

struct known_proof {
    uint64_t a, b; /* (index, size) or (size1, size2) */
    const char *elems[4];
};

static const struct known_proof ct_inclusion[] = {
    {5, 8,
     {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7", NULL}},
    {2, 3, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125", NULL}},
    {0, 1, {NULL}},
};

static const struct known_proof ct_consistency[] = {
    {6, 8,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7", NULL}},
    {2, 5,
     {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b", NULL}},
    {1, 8,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {8, 8, {NULL}},
};

static void unhex32(const char *hex, uint8_t out[H])
{
    size_t n = 0;
    assert_luna_ok(luna_hex_decode(hex, strlen(hex), out, H, &n));
    assert_int_equal(H, n);
}

static void ct_leaves(uint8_t leaves[8][H])
{
    for (size_t i = 0; i < 8; i++) {
        size_t n = 0;
        uint8_t *in = luna_test_unhex(ct_inputs[i], &n);
        assert_luna_ok(luna_merkle_leaf_hash(in, n, leaves[i]));
        free(in);
    }
}

static void known_proof_to(const struct known_proof *k, luna_merkle_proof *p)
{
    luna_merkle_proof_init(p);
    for (size_t i = 0; i < 4 && k->elems[i] != NULL; i++) {
        uint8_t h[H];
        unhex32(k->elems[i], h);
        assert_luna_ok(luna_merkle_proof_add(p, h, H));
    }
}

static void ct_roots_match(void **state)
{
    (void)state;
    uint8_t leaves[8][H], root[H], want[H];
    luna_merkle_mem mem;
    luna_merkle_source src;

    ct_leaves(leaves);
    luna_merkle_mem_source(&mem, (const uint8_t(*)[H])leaves, 8, &src);
    for (uint64_t n = 0; n <= 8; n++) {
        assert_luna_ok(luna_merkle_root(&src, n, root));
        unhex32(ct_roots[n], want);
        assert_memory_equal(want, root, H);
    }
    assert_luna_ok(luna_merkle_empty_root(root));
    unhex32(ct_roots[0], want);
    assert_memory_equal(want, root, H);
    /* A leaf is never a node: 0x00 vs 0x01 prefix. */
    uint8_t node[H];
    assert_luna_ok(luna_merkle_node_hash(leaves[0], leaves[1], node));
    unhex32(ct_roots[2], want);
    assert_memory_equal(want, node, H);
    /* Long leaf (heap path) equals SHA-256(0x00 || data). */
    uint8_t big[1000], buf[1001], a[H], b[H];
    memset(big, 0x5a, sizeof(big));
    buf[0] = 0;
    memcpy(buf + 1, big, sizeof(big));
    assert_luna_ok(luna_merkle_leaf_hash(big, sizeof(big), a));
    assert_luna_ok(luna_sha256(buf, sizeof(buf), b));
    assert_memory_equal(a, b, H);
}

static void ct_known_proofs(void **state)
{
    (void)state;
    uint8_t leaves[8][H], root1[H], root2[H];
    luna_merkle_mem mem;
    luna_merkle_source src;
    luna_merkle_proof want, got;

    ct_leaves(leaves);
    luna_merkle_mem_source(&mem, (const uint8_t(*)[H])leaves, 8, &src);
    for (size_t i = 0; i < sizeof(ct_inclusion) / sizeof(ct_inclusion[0]); i++) {
        const struct known_proof *k = &ct_inclusion[i];
        known_proof_to(k, &want);
        assert_luna_ok(luna_merkle_prove_inclusion(&src, k->a, k->b, &got));
        assert_int_equal(want.n, got.n);
        if (want.n != 0)
            assert_memory_equal(want.hash, got.hash, want.n * H);
        unhex32(ct_roots[k->b], root2);
        assert_luna_ok(luna_merkle_verify_inclusion(k->a, k->b, leaves[k->a], H, &want, root2, H));
    }
    for (size_t i = 0; i < sizeof(ct_consistency) / sizeof(ct_consistency[0]); i++) {
        const struct known_proof *k = &ct_consistency[i];
        known_proof_to(k, &want);
        assert_luna_ok(luna_merkle_prove_consistency(&src, k->a, k->b, &got));
        assert_int_equal(want.n, got.n);
        if (want.n != 0)
            assert_memory_equal(want.hash, got.hash, want.n * H);
        unhex32(ct_roots[k->a], root1);
        unhex32(ct_roots[k->b], root2);
        assert_luna_ok(luna_merkle_verify_consistency(k->a, k->b, root1, H, root2, H, &want));
    }
}

/* Deterministic leaves for the exhaustive tests. */
static void make_leaves(uint8_t (*leaves)[H], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t data[8];
        for (size_t j = 0; j < 8; j++)
            data[j] = (uint8_t)(i >> (8 * j));
        assert_luna_ok(luna_merkle_leaf_hash(data, sizeof(data), leaves[i]));
    }
}

#define MAXN 33

static void exhaustive_inclusion(void **state)
{
    (void)state;
    static uint8_t leaves[MAXN][H];
    uint8_t roots[MAXN + 1][H];
    luna_merkle_mem mem;
    luna_merkle_source src;
    luna_merkle_proof p, q;
    size_t checked = 0, refused = 0;

    make_leaves(leaves, MAXN);
    luna_merkle_mem_source(&mem, (const uint8_t(*)[H])leaves, MAXN, &src);
    for (uint64_t n = 0; n <= MAXN; n++)
        assert_luna_ok(luna_merkle_root(&src, n, roots[n]));
    for (uint64_t n = 1; n <= MAXN; n++) {
        for (uint64_t i = 0; i < n; i++) {
            assert_luna_ok(luna_merkle_prove_inclusion(&src, i, n, &p));
            assert_luna_ok(luna_merkle_verify_inclusion(i, n, leaves[i], H, &p, roots[n], H));
            checked++;
            /*
             * In a tree of a given size the path shape pins the index, so
             * the proof is refused at every other index.  (Other sizes are
             * not tested: a root does not commit to its size, so e.g. the
             * path of (1, 2) is also the path of (2, 3) - RFC 6962 relies
             * on the signed tree head binding size and root together.)
             */
            for (uint64_t i2 = 0; i2 < n; i2++) {
                if (i2 == i)
                    continue;
                if (luna_merkle_verify_inclusion(i2, n, leaves[i], H, &p, roots[n], H) == LUNA_OK)
                    fail_msg("inclusion (%llu,%llu) accepted at index %llu",
                             (unsigned long long)i, (unsigned long long)n,
                             (unsigned long long)i2);
                refused++;
            }
            /* Flip one bit in each element: refused. */
            for (size_t k = 0; k < p.n; k++) {
                q = p;
                q.hash[k][k % H] ^= 0x01;
                assert_luna_err(LUNA_ERR_VERIFY,
                                luna_merkle_verify_inclusion(i, n, leaves[i], H, &q, roots[n], H));
                refused++;
            }
            /* Truncated and extended proofs: refused. */
            if (p.n > 0) {
                q = p;
                q.n--;
                assert_luna_err(LUNA_ERR_VERIFY,
                                luna_merkle_verify_inclusion(i, n, leaves[i], H, &q, roots[n], H));
            }
            q = p;
            assert_luna_ok(luna_merkle_proof_add(&q, leaves[0], H));
            assert_luna_err(LUNA_ERR_VERIFY,
                            luna_merkle_verify_inclusion(i, n, leaves[i], H, &q, roots[n], H));
            /* Wrong leaf, wrong root: refused. */
            uint8_t bad[H];
            memcpy(bad, leaves[i], H);
            bad[31] ^= 0x80;
            assert_luna_err(LUNA_ERR_VERIFY,
                            luna_merkle_verify_inclusion(i, n, bad, H, &p, roots[n], H));
            assert_luna_err(LUNA_ERR_VERIFY,
                            luna_merkle_verify_inclusion(i, n, leaves[i], H, &p, roots[n - 1], H));
            refused += 4;
        }
    }
    printf("merkle unit: %zu inclusion proofs verified, %zu mutations refused\n", checked, refused);
}

static void exhaustive_consistency(void **state)
{
    (void)state;
    static uint8_t leaves[MAXN][H];
    uint8_t roots[MAXN + 1][H];
    luna_merkle_mem mem;
    luna_merkle_source src;
    luna_merkle_proof p, q;
    size_t checked = 0, refused = 0;

    make_leaves(leaves, MAXN);
    luna_merkle_mem_source(&mem, (const uint8_t(*)[H])leaves, MAXN, &src);
    for (uint64_t n = 0; n <= MAXN; n++)
        assert_luna_ok(luna_merkle_root(&src, n, roots[n]));
    for (uint64_t n = 1; n <= MAXN; n++) {
        for (uint64_t m = 1; m <= n; m++) {
            assert_luna_ok(luna_merkle_prove_consistency(&src, m, n, &p));
            assert_luna_ok(luna_merkle_verify_consistency(m, n, roots[m], H, roots[n], H, &p));
            checked++;
            if (m == n) {
                assert_int_equal(0, p.n);
                continue;
            }
            assert_true(p.n > 0);
            /* The same proof against any other old tree of this log: refused. */
            for (uint64_t m2 = 1; m2 < n; m2++) {
                if (m2 == m)
                    continue;
                if (luna_merkle_verify_consistency(m2, n, roots[m2], H, roots[n], H, &p) ==
                    LUNA_OK)
                    fail_msg("consistency (%llu,%llu) accepted for old size %llu",
                             (unsigned long long)m, (unsigned long long)n,
                             (unsigned long long)m2);
                refused++;
            }
            for (size_t k = 0; k < p.n; k++) {
                q = p;
                q.hash[k][(k * 7) % H] ^= 0x40;
                assert_luna_err(LUNA_ERR_VERIFY,
                                luna_merkle_verify_consistency(m, n, roots[m], H, roots[n], H, &q));
                refused++;
            }
            q = p;
            q.n--;
            assert_int_not_equal(LUNA_OK,
                                 luna_merkle_verify_consistency(m, n, roots[m], H, roots[n], H, &q));
            q = p;
            assert_luna_ok(luna_merkle_proof_add(&q, roots[0], H));
            assert_luna_err(LUNA_ERR_VERIFY,
                            luna_merkle_verify_consistency(m, n, roots[m], H, roots[n], H, &q));
            /* Swapped roots and a wrong old root: refused. */
            assert_int_not_equal(LUNA_OK,
                                 luna_merkle_verify_consistency(m, n, roots[n], H, roots[m], H, &p));
            assert_int_not_equal(
                LUNA_OK, luna_merkle_verify_consistency(m, n, roots[m - 1], H, roots[n], H, &p));
            refused += 4;
        }
    }
    printf("merkle unit: %zu consistency proofs verified, %zu mutations refused\n", checked,
           refused);
}

/* A store that keeps every perfect interior node and counts what it is asked. */
struct node_store {
    const uint8_t (*leaves)[H];
    uint64_t n;
    size_t leaf_calls, node_calls;
    luna_err fail_with; /* returned for leaf 3 when set */
};

static luna_err store_subtree(const struct node_store *s, unsigned level, uint64_t index,
                              uint8_t out[H])
{
    if (level == 0) {
        memcpy(out, s->leaves[index], H);
        return LUNA_OK;
    }
    uint8_t l[H], r[H];
    LUNA_GUARD(store_subtree(s, level - 1, index * 2, l));
    LUNA_GUARD(store_subtree(s, level - 1, index * 2 + 1, r));
    return luna_merkle_node_hash(l, r, out);
}

static luna_err store_node(void *ctx, unsigned level, uint64_t index, uint8_t out[H])
{
    struct node_store *s = ctx;
    /* The generator must stay inside the tree. */
    if (level >= 64 || ((index + 1) << level) > s->n)
        fail_msg("node (%u,%llu) outside the tree", level, (unsigned long long)index);
    if (level == 0) {
        s->leaf_calls++;
        if (s->fail_with != LUNA_OK && index == 3)
            return s->fail_with;
    } else {
        s->node_calls++;
    }
    return store_subtree(s, level, index, out);
}

static void stored_nodes_same_answers(void **state)
{
    (void)state;
    static uint8_t leaves[MAXN][H];
    luna_merkle_mem mem;
    luna_merkle_source msrc, ssrc;
    struct node_store store = {0};
    luna_merkle_proof a, b;
    uint8_t ra[H], rb[H];

    make_leaves(leaves, MAXN);
    luna_merkle_mem_source(&mem, (const uint8_t(*)[H])leaves, MAXN, &msrc);
    store.leaves = (const uint8_t(*)[H])leaves;
    store.n = MAXN;
    ssrc.node = store_node;
    ssrc.ctx = &store;
    for (uint64_t n = 1; n <= MAXN; n++) {
        assert_luna_ok(luna_merkle_root(&msrc, n, ra));
        assert_luna_ok(luna_merkle_root(&ssrc, n, rb));
        assert_memory_equal(ra, rb, H);
        for (uint64_t i = 0; i < n; i++) {
            assert_luna_ok(luna_merkle_prove_inclusion(&msrc, i, n, &a));
            assert_luna_ok(luna_merkle_prove_inclusion(&ssrc, i, n, &b));
            assert_int_equal(a.n, b.n);
            assert_memory_equal(&a, &b, sizeof(a));
            assert_luna_ok(luna_merkle_prove_consistency(&msrc, i + 1, n, &a));
            assert_luna_ok(luna_merkle_prove_consistency(&ssrc, i + 1, n, &b));
            assert_memory_equal(&a, &b, sizeof(a));
        }
    }
    /* Interior nodes were used, so fewer leaves were read. */
    assert_true(store.node_calls > 0);
    store.leaf_calls = 0;
    assert_luna_ok(luna_merkle_root(&ssrc, 32, rb));
    assert_int_equal(0, store.leaf_calls);

    /* A store error aborts generation, is returned as is, and empties the proof. */
    store.fail_with = LUNA_ERR_STORAGE;
    store.n = 8;
    assert_luna_err(LUNA_ERR_STORAGE, luna_merkle_prove_inclusion(&ssrc, 2, 5, &b));
    assert_int_equal(0, b.n);
    assert_luna_err(LUNA_ERR_STORAGE, luna_merkle_prove_consistency(&ssrc, 3, 5, &b));
    assert_int_equal(0, b.n);
    /* The memory source refuses leaves it does not have. */
    assert_luna_err(LUNA_ERR_NOT_FOUND, luna_merkle_root(&msrc, MAXN + 1, ra));
}

/* A tree of 2^64 - 1 equal leaves: perfect subtree hashes are known per level. */
static uint8_t level_hash[64][H];

static luna_err equal_node(void *ctx, unsigned level, uint64_t index, uint8_t out[H])
{
    (void)ctx;
    (void)index;
    if (level >= 64)
        return LUNA_ERR_INTERNAL;
    memcpy(out, level_hash[level], H);
    return LUNA_OK;
}

static void huge_sizes(void **state)
{
    (void)state;
    luna_merkle_source src = {equal_node, NULL};
    luna_merkle_proof p;
    uint8_t r1[H], r2[H];
    const uint64_t max = UINT64_MAX;
    const uint64_t cases[][2] = {{max - 1, max}, {0, max}, {(1ull << 63), max},
                                 {(1ull << 63) - 1, 1ull << 63}, {12345678901ull, max - 7}};

    assert_luna_ok(luna_merkle_leaf_hash("x", 1, level_hash[0]));
    for (unsigned l = 1; l < 64; l++)
        assert_luna_ok(luna_merkle_node_hash(level_hash[l - 1], level_hash[l - 1], level_hash[l]));
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        uint64_t i = cases[c][0], n = cases[c][1];
        assert_luna_ok(luna_merkle_root(&src, n, r2));
        assert_luna_ok(luna_merkle_prove_inclusion(&src, i, n, &p));
        assert_true(p.n <= 64);
        assert_luna_ok(luna_merkle_verify_inclusion(i, n, level_hash[0], H, &p, r2, H));
        /* All leaves are equal, so only element changes are sure to fail here. */
        p.hash[p.n - 1][0] ^= 1;
        assert_luna_err(LUNA_ERR_VERIFY,
                        luna_merkle_verify_inclusion(i, n, level_hash[0], H, &p, r2, H));
        p.hash[p.n - 1][0] ^= 1;
        p.n--;
        assert_luna_err(LUNA_ERR_VERIFY,
                        luna_merkle_verify_inclusion(i, n, level_hash[0], H, &p, r2, H));
        /* Consistency from i + 1 leaves to n. */
        assert_luna_ok(luna_merkle_root(&src, i + 1, r1));
        assert_luna_ok(luna_merkle_prove_consistency(&src, i + 1, n, &p));
        assert_true(p.n <= LUNA_MERKLE_MAX_PROOF);
        assert_luna_ok(luna_merkle_verify_consistency(i + 1, n, r1, H, r2, H, &p));
        if (i + 1 < n) {
            p.hash[0][5] ^= 0x10;
            assert_luna_err(LUNA_ERR_VERIFY,
                            luna_merkle_verify_consistency(i + 1, n, r1, H, r2, H, &p));
        }
    }
    /* Near the 64-bit limit: (2^64 - 2, 2^64 - 1) and (2^63 + 1, 2^64 - 1). */
    const uint64_t pairs[][2] = {{max - 1, max}, {(1ull << 63) + 1, max}, {3, max}};
    size_t longest = 0;
    for (size_t c = 0; c < sizeof(pairs) / sizeof(pairs[0]); c++) {
        assert_luna_ok(luna_merkle_root(&src, pairs[c][0], r1));
        assert_luna_ok(luna_merkle_root(&src, pairs[c][1], r2));
        assert_luna_ok(luna_merkle_prove_consistency(&src, pairs[c][0], pairs[c][1], &p));
        assert_luna_ok(luna_merkle_verify_consistency(pairs[c][0], pairs[c][1], r1, H, r2, H, &p));
        longest = p.n > longest ? p.n : longest;
    }
    printf("merkle unit: longest proof near 2^64 has %zu elements\n", longest);
}

static void edge_rules(void **state)
{
    (void)state;
    uint8_t h[H] = {1}, r[H] = {2};
    luna_merkle_proof p, full;
    uint8_t enc[LUNA_MERKLE_MAX_PROOF * H + H];
    size_t n = 0;

    luna_merkle_proof_init(&p);
    /* Inclusion. */
    assert_luna_err(LUNA_ERR_FORMAT, luna_merkle_verify_inclusion(0, 0, h, H, &p, h, H));
    assert_luna_err(LUNA_ERR_FORMAT, luna_merkle_verify_inclusion(1, 1, h, H, &p, h, H));
    assert_luna_err(LUNA_ERR_FORMAT,
                    luna_merkle_verify_inclusion(UINT64_MAX, 1, h, H, &p, h, H));
    assert_luna_err(LUNA_ERR_FORMAT, luna_merkle_verify_inclusion(0, 1, h, H - 1, &p, h, H - 1));
    assert_luna_err(LUNA_ERR_FORMAT, luna_merkle_verify_inclusion(0, 1, NULL, 0, &p, NULL, 0));
    assert_luna_err(LUNA_ERR_FORMAT, luna_merkle_verify_inclusion(0, 1, h, H, &p, h, 0));
    assert_luna_ok(luna_merkle_verify_inclusion(0, 1, h, H, &p, h, H));
    assert_luna_err(LUNA_ERR_VERIFY, luna_merkle_verify_inclusion(0, 1, h, H, &p, r, H));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_merkle_verify_inclusion(0, 1, h, H, NULL, h, H));
    /* Consistency. */
    assert_luna_err(LUNA_ERR_FORMAT, luna_merkle_verify_consistency(0, 0, h, H, h, H, &p));
    assert_luna_err(LUNA_ERR_FORMAT, luna_merkle_verify_consistency(0, 5, h, H, r, H, &p));
    assert_luna_err(LUNA_ERR_FORMAT, luna_merkle_verify_consistency(2, 1, h, H, r, H, &p));
    assert_luna_ok(luna_merkle_verify_consistency(3, 3, h, H, h, H, &p));
    assert_luna_err(LUNA_ERR_VERIFY, luna_merkle_verify_consistency(3, 3, h, H, r, H, &p));
    assert_luna_err(LUNA_ERR_VERIFY, luna_merkle_verify_consistency(3, 3, h, H, h, H - 1, &p));
    assert_luna_err(LUNA_ERR_FORMAT, luna_merkle_verify_consistency(3, 4, h, H, r, H, &p));
    assert_luna_ok(luna_merkle_proof_add(&p, h, H));
    assert_luna_err(LUNA_ERR_FORMAT, luna_merkle_verify_consistency(3, 3, h, H, h, H, &p));
    assert_luna_err(LUNA_ERR_FORMAT, luna_merkle_verify_consistency(3, 4, h, H - 1, r, H, &p));
    assert_luna_err(LUNA_ERR_FORMAT, luna_merkle_verify_consistency(3, 4, h, H, r, 0, &p));
    /* Generation arguments. */
    luna_merkle_mem mem;
    luna_merkle_source src;
    luna_merkle_mem_source(&mem, NULL, 0, &src);
    assert_luna_err(LUNA_ERR_FORMAT, luna_merkle_prove_inclusion(&src, 0, 0, &p));
    assert_luna_err(LUNA_ERR_FORMAT, luna_merkle_prove_consistency(&src, 0, 0, &p));
    assert_luna_err(LUNA_ERR_FORMAT, luna_merkle_prove_consistency(&src, 2, 1, &p));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_merkle_root(NULL, 1, h));
    /* Containers: element length, capacity, binary form. */
    luna_merkle_proof_init(&full);
    assert_luna_err(LUNA_ERR_FORMAT, luna_merkle_proof_add(&full, h, H - 1));
    assert_luna_err(LUNA_ERR_FORMAT, luna_merkle_proof_add(&full, h, 0));
    for (size_t i = 0; i < LUNA_MERKLE_MAX_PROOF; i++) {
        h[0] = (uint8_t)i;
        assert_luna_ok(luna_merkle_proof_add(&full, h, H));
    }
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_merkle_proof_add(&full, h, H));
    assert_luna_ok(luna_merkle_proof_encode(&full, enc, sizeof(enc), &n));
    assert_int_equal(LUNA_MERKLE_MAX_PROOF * H, n);
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_merkle_proof_encode(&full, enc, n - 1, &n));
    assert_luna_ok(luna_merkle_proof_decode(enc, LUNA_MERKLE_MAX_PROOF * H, &p));
    assert_memory_equal(&full, &p, sizeof(p));
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_merkle_proof_decode(enc, sizeof(enc), &p));
    assert_int_equal(0, p.n);
    assert_luna_err(LUNA_ERR_FORMAT, luna_merkle_proof_decode(enc, H + 1, &p));
    assert_luna_ok(luna_merkle_proof_decode(NULL, 0, &p));
    assert_int_equal(0, p.n);
    /* A corrupted count is caught, never used as an index. */
    full.n = LUNA_MERKLE_MAX_PROOF + 1;
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_merkle_verify_inclusion(0, 2, h, H, &full, h, H));
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_merkle_verify_consistency(1, 2, h, H, h, H, &full));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ct_roots_match),
        cmocka_unit_test(ct_known_proofs),
        cmocka_unit_test(exhaustive_inclusion),
        cmocka_unit_test(exhaustive_consistency),
        cmocka_unit_test(stored_nodes_same_answers),
        cmocka_unit_test(huge_sizes),
        cmocka_unit_test(edge_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
