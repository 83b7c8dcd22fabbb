/*
 * luna/merkle.h - the RFC 6962 / RFC 9162 (section 2.1) Merkle tree: leaf
 * and node hashing, tree heads, and inclusion and consistency proofs, both
 * generated (from a caller's leaf/node store) and verified.
 *
 * This is the arithmetic the audit log and `lunal audit verify` stand on.
 * It holds no state, does no I/O and never allocates: proofs live in a
 * fixed-size luna_merkle_proof.  Everything a verifier is given (sizes,
 * hashes, proof elements) is treated as attacker-controlled.
 *
 * Hashing (SHA-256 only):
 *   leaf hash  = SHA-256(0x00 || leaf data)
 *   node hash  = SHA-256(0x01 || left || right)
 *   MTH({})    = SHA-256("")          (the empty tree)
 *   MTH(D[n])  = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of
 *                two smaller than n.
 *
 * Errors used by every function here:
 *   LUNA_ERR_INVALID_ARG  a NULL pointer where data was required;
 *   LUNA_ERR_FORMAT       the inputs cannot describe a valid proof: a hash
 *                         that is not 32 bytes, index >= size, size1 == 0,
 *                         size1 > size2, too many proof elements;
 *   LUNA_ERR_VERIFY       well-formed inputs that do not prove the claim
 *                         (wrong root, wrong path length, wrong elements);
 *   LUNA_ERR_CRYPTO       SHA-256 failed inside OpenSSL;
 *   anything the node callback returns (generation only).
 * Callers that only need "proven or not" test for LUNA_OK.
 *
 * Thread safety: every function is reentrant; the callback decides its own.
 */
#ifndef LUNA_MERKLE_H
#define LUNA_MERKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "luna/err.h"

#define LUNA_MERKLE_HASH_LEN 32
/*
 * The longest proof a 64-bit tree size allows: an inclusion path has at
 * most 64 elements, a consistency proof at most 64 + 1 (the seed element
 * when size1 is not a power of two).  A proof with more is refused.
 */
#define LUNA_MERKLE_MAX_PROOF 65

/* A proof: n hashes, bottom-up as RFC 9162 orders them. */
typedef struct luna_merkle_proof {
    size_t n;
    uint8_t hash[LUNA_MERKLE_MAX_PROOF][LUNA_MERKLE_HASH_LEN];
} luna_merkle_proof;

/* ---- hashing ---- */

/* out = SHA-256(0x00 || data).  data may be NULL when len is 0. */
luna_err luna_merkle_leaf_hash(const void *data, size_t len,
                               uint8_t out[LUNA_MERKLE_HASH_LEN]) LUNA_MUST_CHECK;
/* out = SHA-256(0x01 || left || right); out may alias left or right. */
luna_err luna_merkle_node_hash(const uint8_t left[LUNA_MERKLE_HASH_LEN],
                               const uint8_t right[LUNA_MERKLE_HASH_LEN],
                               uint8_t out[LUNA_MERKLE_HASH_LEN]) LUNA_MUST_CHECK;
/* out = SHA-256(""), the root of the empty tree. */
luna_err luna_merkle_empty_root(uint8_t out[LUNA_MERKLE_HASH_LEN]) LUNA_MUST_CHECK;

/* ---- proof containers ---- */

/* Empties a proof. */
void luna_merkle_proof_init(luna_merkle_proof *p);
/*
 * Appends one element received from outside (JSON, wire).  LUNA_ERR_FORMAT
 * when len is not 32, LUNA_ERR_TOO_LARGE when the proof is already full.
 */
luna_err luna_merkle_proof_add(luna_merkle_proof *p, const uint8_t *hash,
                               size_t len) LUNA_MUST_CHECK;
/*
 * Binary form: the elements concatenated (n * 32 bytes, 0 <= n <= 65).
 * Decode refuses a length that is not a multiple of 32 (LUNA_ERR_FORMAT)
 * or more than LUNA_MERKLE_MAX_PROOF elements (LUNA_ERR_TOO_LARGE).
 * Encode writes p->n * 32 bytes to out (out_cap at least that).
 */
luna_err luna_merkle_proof_decode(const uint8_t *in, size_t len,
                                  luna_merkle_proof *out) LUNA_MUST_CHECK;
luna_err luna_merkle_proof_encode(const luna_merkle_proof *p, uint8_t *out, size_t out_cap,
                                  size_t *out_len) LUNA_MUST_CHECK;

/* ---- verification (RFC 9162 2.1.3.2 and 2.1.4.2) ---- */

/*
 * Proves that leaf_hash (the leaf HASH, not the data) sits at index in the
 * tree of `size` leaves whose root is `root`.  Requires index < size and
 * leaf_hash and root of exactly 32 bytes (LUNA_ERR_FORMAT otherwise).
 * LUNA_OK only when the proof is exactly the RFC path and reproduces root.
 */
luna_err luna_merkle_verify_inclusion(uint64_t index, uint64_t size, const uint8_t *leaf_hash,
                                      size_t leaf_hash_len, const luna_merkle_proof *proof,
                                      const uint8_t *root, size_t root_len) LUNA_MUST_CHECK;

/*
 * Proves that the tree (size1, root1) is a prefix of the tree (size2,
 * root2).  Edge rules (those of the RFC 9162 reference verifier):
 *  - size1 == 0 is always LUNA_ERR_FORMAT, even with size2 == 0: an empty
 *    tree is trivially a prefix and a "proof" of it proves nothing;
 *  - size1 > size2 is LUNA_ERR_FORMAT;
 *  - size1 == size2: LUNA_OK if and only if the proof is empty and root1
 *    and root2 are the same bytes (nothing is hashed, so no length rule
 *    applies: equal bytes are equal whatever they are); a non-empty proof
 *    is LUNA_ERR_FORMAT, different roots LUNA_ERR_VERIFY;
 *  - size1 < size2: both roots must be 32 bytes (LUNA_ERR_FORMAT), the
 *    proof non-empty, and it must reproduce both roots.
 */
luna_err luna_merkle_verify_consistency(uint64_t size1, uint64_t size2, const uint8_t *root1,
                                        size_t root1_len, const uint8_t *root2, size_t root2_len,
                                        const luna_merkle_proof *proof) LUNA_MUST_CHECK;

/* ---- generation from a leaf/node store ---- */

/*
 * The store callback.  Asked for the hash of the perfect subtree at
 * (level, index), covering leaves [index * 2^level, (index + 1) * 2^level):
 * level 0 is the leaf hash of leaf `index`.  It writes 32 bytes to out and
 * returns LUNA_OK, or returns LUNA_ERR_NOT_FOUND for level > 0 when it does
 * not keep that node (the generator then asks for both children).  Level 0
 * must always be answered; any other error aborts the generation and is
 * returned as is.  The generator only asks for nodes inside the tree size
 * it was given.
 */
typedef luna_err (*luna_merkle_node_fn)(void *ctx, unsigned level, uint64_t index,
                                        uint8_t out[LUNA_MERKLE_HASH_LEN]);

typedef struct luna_merkle_source {
    luna_merkle_node_fn node;
    void *ctx;
} luna_merkle_source;

/* Root of the first `size` leaves (size 0: SHA-256("")). */
luna_err luna_merkle_root(const luna_merkle_source *src, uint64_t size,
                          uint8_t out[LUNA_MERKLE_HASH_LEN]) LUNA_MUST_CHECK;
/* RFC 6962 PATH(index, D[size]); index < size, else LUNA_ERR_FORMAT. */
luna_err luna_merkle_prove_inclusion(const luna_merkle_source *src, uint64_t index, uint64_t size,
                                     luna_merkle_proof *out) LUNA_MUST_CHECK;
/*
 * RFC 6962 PROOF(size1, D[size2]); 0 < size1 <= size2, else
 * LUNA_ERR_FORMAT.  size1 == size2 gives the empty proof.
 */
luna_err luna_merkle_prove_consistency(const luna_merkle_source *src, uint64_t size1,
                                       uint64_t size2, luna_merkle_proof *out) LUNA_MUST_CHECK;

/*
 * A source over an in-memory array of leaf hashes (n * 32 bytes, owned by
 * the caller and alive while the source is used).  It stores no interior
 * node, so every proof costs O(size) hashes: for tests and small trees.
 * Asking for a leaf at or past n returns LUNA_ERR_NOT_FOUND.
 */
typedef struct luna_merkle_mem {
    const uint8_t (*leaves)[LUNA_MERKLE_HASH_LEN];
    uint64_t n;
} luna_merkle_mem;
void luna_merkle_mem_source(luna_merkle_mem *mem, const uint8_t (*leaves)[LUNA_MERKLE_HASH_LEN],
                            uint64_t n, luna_merkle_source *out);

#endif
