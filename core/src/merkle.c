/*
 * merkle.c - RFC 6962 / RFC 9162 Merkle tree hashing, proof generation and
 * proof verification (see luna/merkle.h for the contract).
 *
 * Owns: the hash domain separation (0x00 leaf, 0x01 node) and the exact
 * RFC 9162 2.1.3.2 / 2.1.4.2 verification loops.
 * Must never: accept a proof whose length is not exactly the RFC path for
 * the claimed sizes, index outside the fixed-size proof array, recurse or
 * loop without a bound that a 64-bit tree size implies, or allocate.
 */
#include "luna/merkle.h"

#include <stdint.h>
#include <string.h>

#include "luna/bytes.h"
#include "luna/crypto.h"

#define LEAF_PREFIX 0x00
#define NODE_PREFIX 0x01

luna_err luna_merkle_leaf_hash(const void *data, size_t len, uint8_t out[LUNA_MERKLE_HASH_LEN])
{
    /* Hash in one call: small leaves are common, so copy when short. */
    uint8_t buf[1 + 256];

    if (out == NULL || (data == NULL && len != 0))
        return LUNA_ERR_INVALID_ARG;
    if (len <= sizeof(buf) - 1) {
        buf[0] = LEAF_PREFIX;
        if (len != 0)
            memcpy(buf + 1, data, len);
        return luna_sha256(buf, len + 1, out);
    }
    /* Long leaf: one heap copy, since the SHA-256 wrapper takes one buffer. */
    if (len > SIZE_MAX - 1)
        return LUNA_ERR_TOO_LARGE;
    luna_wbuf w;
    luna_err err = luna_wbuf_init_alloc(&w, len + 1);
    if (err != LUNA_OK)
        return err;
    err = luna_write_u8(&w, LEAF_PREFIX);
    if (err == LUNA_OK)
        err = luna_write_bytes(&w, data, len);
    if (err == LUNA_OK)
        err = luna_sha256(w.data, w.len, out);
    luna_wbuf_free(&w);
    return err;
}

luna_err luna_merkle_node_hash(const uint8_t left[LUNA_MERKLE_HASH_LEN],
                               const uint8_t right[LUNA_MERKLE_HASH_LEN],
                               uint8_t out[LUNA_MERKLE_HASH_LEN])
{
    uint8_t buf[1 + 2 * LUNA_MERKLE_HASH_LEN];

    if (left == NULL || right == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    buf[0] = NODE_PREFIX;
    memcpy(buf + 1, left, LUNA_MERKLE_HASH_LEN);
    memcpy(buf + 1 + LUNA_MERKLE_HASH_LEN, right, LUNA_MERKLE_HASH_LEN);
    return luna_sha256(buf, sizeof(buf), out);
}

luna_err luna_merkle_empty_root(uint8_t out[LUNA_MERKLE_HASH_LEN])
{
    static const uint8_t nothing[1] = {0};

    if (out == NULL)
        return LUNA_ERR_INVALID_ARG;
    return luna_sha256(nothing, 0, out);
}

/* ---- proof containers ---- */

void luna_merkle_proof_init(luna_merkle_proof *p)
{
    if (p != NULL)
        memset(p, 0, sizeof(*p));
}

luna_err luna_merkle_proof_add(luna_merkle_proof *p, const uint8_t *hash, size_t len)
{
    if (p == NULL || (hash == NULL && len != 0) || p->n > LUNA_MERKLE_MAX_PROOF)
        return LUNA_ERR_INVALID_ARG;
    if (len != LUNA_MERKLE_HASH_LEN)
        return LUNA_ERR_FORMAT;
    if (p->n == LUNA_MERKLE_MAX_PROOF)
        return LUNA_ERR_TOO_LARGE;
    memcpy(p->hash[p->n], hash, LUNA_MERKLE_HASH_LEN);
    p->n++;
    return LUNA_OK;
}

luna_err luna_merkle_proof_decode(const uint8_t *in, size_t len, luna_merkle_proof *out)
{
    luna_reader r;

    if (out == NULL || (in == NULL && len != 0))
        return LUNA_ERR_INVALID_ARG;
    luna_merkle_proof_init(out);
    if (len % LUNA_MERKLE_HASH_LEN != 0)
        return LUNA_ERR_FORMAT;
    if (len / LUNA_MERKLE_HASH_LEN > LUNA_MERKLE_MAX_PROOF)
        return LUNA_ERR_TOO_LARGE;
    luna_reader_init(&r, in, len);
    while (luna_reader_left(&r) != 0) {
        luna_err err = luna_read_bytes(&r, out->hash[out->n], LUNA_MERKLE_HASH_LEN);
        if (err != LUNA_OK) {
            luna_merkle_proof_init(out);
            return err;
        }
        out->n++;
    }
    return luna_read_end(&r);
}

luna_err luna_merkle_proof_encode(const luna_merkle_proof *p, uint8_t *out, size_t out_cap,
                                  size_t *out_len)
{
    luna_wbuf w;

    if (p == NULL || out_len == NULL || p->n > LUNA_MERKLE_MAX_PROOF ||
        (out == NULL && out_cap != 0))
        return LUNA_ERR_INVALID_ARG;
    *out_len = 0;
    luna_wbuf_init(&w, out, out_cap);
    for (size_t i = 0; i < p->n; i++)
        LUNA_GUARD(luna_write_bytes(&w, p->hash[i], LUNA_MERKLE_HASH_LEN));
    *out_len = w.len;
    return LUNA_OK;
}

/* ---- verification ---- */

luna_err luna_merkle_verify_inclusion(uint64_t index, uint64_t size, const uint8_t *leaf_hash,
                                      size_t leaf_hash_len, const luna_merkle_proof *proof,
                                      const uint8_t *root, size_t root_len)
{
    uint8_t r[LUNA_MERKLE_HASH_LEN];
    uint64_t fn, sn;

    if (proof == NULL || (leaf_hash == NULL && leaf_hash_len != 0) ||
        (root == NULL && root_len != 0) || proof->n > LUNA_MERKLE_MAX_PROOF)
        return LUNA_ERR_INVALID_ARG;
    if (index >= size || leaf_hash_len != LUNA_MERKLE_HASH_LEN ||
        root_len != LUNA_MERKLE_HASH_LEN)
        return LUNA_ERR_FORMAT;

    fn = index;
    sn = size - 1;
    memcpy(r, leaf_hash, LUNA_MERKLE_HASH_LEN);
    for (size_t i = 0; i < proof->n; i++) {
        if (sn == 0)
            return LUNA_ERR_VERIFY; /* more elements than the path has */
        if ((fn & 1) != 0 || fn == sn) {
            LUNA_GUARD(luna_merkle_node_hash(proof->hash[i], r, r));
            /* fn is a right edge here: climb past the levels where it has no sibling. */
            while ((fn & 1) == 0 && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            LUNA_GUARD(luna_merkle_node_hash(r, proof->hash[i], r));
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0)
        return LUNA_ERR_VERIFY; /* fewer elements than the path has */
    return luna_ct_equal(r, root, LUNA_MERKLE_HASH_LEN) ? LUNA_OK : LUNA_ERR_VERIFY;
}

static bool is_pow2(uint64_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

luna_err luna_merkle_verify_consistency(uint64_t size1, uint64_t size2, const uint8_t *root1,
                                        size_t root1_len, const uint8_t *root2, size_t root2_len,
                                        const luna_merkle_proof *proof)
{
    uint8_t fr[LUNA_MERKLE_HASH_LEN], sr[LUNA_MERKLE_HASH_LEN];
    uint64_t fn, sn;
    size_t i;

    if (proof == NULL || (root1 == NULL && root1_len != 0) || (root2 == NULL && root2_len != 0) ||
        proof->n > LUNA_MERKLE_MAX_PROOF)
        return LUNA_ERR_INVALID_ARG;
    if (size1 == 0 || size1 > size2)
        return LUNA_ERR_FORMAT;
    if (size1 == size2) {
        if (proof->n != 0)
            return LUNA_ERR_FORMAT;
        if (root1_len != root2_len)
            return LUNA_ERR_VERIFY;
        return root1_len == 0 || luna_ct_equal(root1, root2, root1_len) ? LUNA_OK
                                                                        : LUNA_ERR_VERIFY;
    }
    if (root1_len != LUNA_MERKLE_HASH_LEN || root2_len != LUNA_MERKLE_HASH_LEN ||
        proof->n == 0)
        return LUNA_ERR_FORMAT;

    /*
     * RFC 9162 2.1.4.2.  When size1 is a power of two the old root is itself
     * a node of the new tree and the proof omits it: start from root1.
     */
    if (is_pow2(size1)) {
        memcpy(fr, root1, LUNA_MERKLE_HASH_LEN);
        i = 0;
    } else {
        memcpy(fr, proof->hash[0], LUNA_MERKLE_HASH_LEN);
        i = 1;
    }
    memcpy(sr, fr, LUNA_MERKLE_HASH_LEN);
    fn = size1 - 1;
    sn = size2 - 1;
    while ((fn & 1) != 0) {
        fn >>= 1;
        sn >>= 1;
    }
    for (; i < proof->n; i++) {
        const uint8_t *c = proof->hash[i];
        if (sn == 0)
            return LUNA_ERR_VERIFY;
        if ((fn & 1) != 0 || fn == sn) {
            LUNA_GUARD(luna_merkle_node_hash(c, fr, fr));
            LUNA_GUARD(luna_merkle_node_hash(c, sr, sr));
            while ((fn & 1) == 0 && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            LUNA_GUARD(luna_merkle_node_hash(sr, c, sr));
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0)
        return LUNA_ERR_VERIFY;
    /* Both comparisons always run: no early exit on which root differs. */
    bool ok1 = luna_ct_equal(fr, root1, LUNA_MERKLE_HASH_LEN);
    bool ok2 = luna_ct_equal(sr, root2, LUNA_MERKLE_HASH_LEN);
    return ok1 && ok2 ? LUNA_OK : LUNA_ERR_VERIFY;
}

/* ---- generation ---- */

/* Largest power of two strictly below n (n >= 2); never overflows. */
static uint64_t split_point(uint64_t n)
{
    uint64_t k = 1;
    while (k < n - k)
        k <<= 1;
    return k;
}

static unsigned log2_pow2(uint64_t n)
{
    unsigned level = 0;
    while (n > 1) {
        n >>= 1;
        level++;
    }
    return level;
}

/*
 * MTH(D[start : start + n]), n >= 1.  Recursion depth is bounded by the
 * 64 halvings a 64-bit n allows on each side.
 */
static luna_err subtree_hash(const luna_merkle_source *src, uint64_t start, uint64_t n,
                             uint8_t out[LUNA_MERKLE_HASH_LEN])
{
    uint8_t left[LUNA_MERKLE_HASH_LEN], right[LUNA_MERKLE_HASH_LEN];

    if (n == 1)
        return src->node(src->ctx, 0, start, out);
    if (is_pow2(n) && start % n == 0) {
        unsigned level = log2_pow2(n);
        luna_err err = src->node(src->ctx, level, start >> level, out);
        if (err != LUNA_ERR_NOT_FOUND)
            return err;
    }
    uint64_t k = split_point(n);
    LUNA_GUARD(subtree_hash(src, start, k, left));
    LUNA_GUARD(subtree_hash(src, start + k, n - k, right));
    return luna_merkle_node_hash(left, right, out);
}

static luna_err proof_append_subtree(const luna_merkle_source *src, uint64_t start, uint64_t n,
                                     luna_merkle_proof *out)
{
    if (out->n >= LUNA_MERKLE_MAX_PROOF)
        return LUNA_ERR_INTERNAL; /* cannot happen for 64-bit sizes */
    LUNA_GUARD(subtree_hash(src, start, n, out->hash[out->n]));
    out->n++;
    return LUNA_OK;
}

static bool source_ok(const luna_merkle_source *src)
{
    return src != NULL && src->node != NULL;
}

luna_err luna_merkle_root(const luna_merkle_source *src, uint64_t size,
                          uint8_t out[LUNA_MERKLE_HASH_LEN])
{
    if (!source_ok(src) || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (size == 0)
        return luna_merkle_empty_root(out);
    return subtree_hash(src, 0, size, out);
}

/* RFC 6962 PATH(m, D[start : start + n]), appended bottom-up. */
static luna_err inclusion_path(const luna_merkle_source *src, uint64_t m, uint64_t start,
                               uint64_t n, luna_merkle_proof *out)
{
    if (n == 1)
        return LUNA_OK;
    uint64_t k = split_point(n);
    if (m < k) {
        LUNA_GUARD(inclusion_path(src, m, start, k, out));
        return proof_append_subtree(src, start + k, n - k, out);
    }
    LUNA_GUARD(inclusion_path(src, m - k, start + k, n - k, out));
    return proof_append_subtree(src, start, k, out);
}

luna_err luna_merkle_prove_inclusion(const luna_merkle_source *src, uint64_t index, uint64_t size,
                                     luna_merkle_proof *out)
{
    if (!source_ok(src) || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    luna_merkle_proof_init(out);
    if (index >= size)
        return LUNA_ERR_FORMAT;
    luna_err err = inclusion_path(src, index, 0, size, out);
    if (err != LUNA_OK)
        luna_merkle_proof_init(out);
    return err;
}

/* RFC 6962 SUBPROOF(m, D[start : start + n], b). */
static luna_err subproof(const luna_merkle_source *src, uint64_t m, uint64_t start, uint64_t n,
                         bool complete, luna_merkle_proof *out)
{
    if (m == n)
        return complete ? LUNA_OK : proof_append_subtree(src, start, n, out);
    uint64_t k = split_point(n);
    if (m <= k) {
        LUNA_GUARD(subproof(src, m, start, k, complete, out));
        return proof_append_subtree(src, start + k, n - k, out);
    }
    LUNA_GUARD(subproof(src, m - k, start + k, n - k, false, out));
    return proof_append_subtree(src, start, k, out);
}

luna_err luna_merkle_prove_consistency(const luna_merkle_source *src, uint64_t size1,
                                       uint64_t size2, luna_merkle_proof *out)
{
    if (!source_ok(src) || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    luna_merkle_proof_init(out);
    if (size1 == 0 || size1 > size2)
        return LUNA_ERR_FORMAT;
    luna_err err = subproof(src, size1, 0, size2, true, out);
    if (err != LUNA_OK)
        luna_merkle_proof_init(out);
    return err;
}

/* ---- in-memory source ---- */

static luna_err mem_node(void *ctx, unsigned level, uint64_t index,
                         uint8_t out[LUNA_MERKLE_HASH_LEN])
{
    const luna_merkle_mem *mem = ctx;

    if (level != 0 || index >= mem->n)
        return LUNA_ERR_NOT_FOUND;
    memcpy(out, mem->leaves[index], LUNA_MERKLE_HASH_LEN);
    return LUNA_OK;
}

void luna_merkle_mem_source(luna_merkle_mem *mem, const uint8_t (*leaves)[LUNA_MERKLE_HASH_LEN],
                            uint64_t n, luna_merkle_source *out)
{
    mem->leaves = leaves;
    mem->n = leaves == NULL ? 0 : n;
    out->node = mem_node;
    out->ctx = mem;
}
