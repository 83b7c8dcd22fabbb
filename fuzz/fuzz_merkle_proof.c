/*
 * Fuzz target: the Merkle proof verifiers and the binary proof decoder
 * (luna/merkle.h).  The input is read with luna_reader as
 *   u64 a || u64 b || 32-byte hash x || 32-byte hash y || proof bytes
 * and fed to both verifiers as is (nothing may crash or read out of
 * bounds).  Then a real proof is generated over a small tree chosen by the
 * input, XORed with the input's proof bytes, and must be refused whenever
 * anything changed (accepting would be a SHA-256 second preimage).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "luna/bytes.h"
#include "luna/merkle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define H LUNA_MERKLE_HASH_LEN
#define TREE 40

static uint8_t leaves[TREE][H];
static uint8_t roots[TREE + 1][H];

static void setup(void)
{
    static int done;
    luna_merkle_mem mem;
    luna_merkle_source src;
    if (done)
        return;
    for (size_t i = 0; i < TREE; i++) {
        uint8_t b = (uint8_t)i;
        if (luna_merkle_leaf_hash(&b, 1, leaves[i]) != LUNA_OK)
            abort();
    }
    luna_merkle_mem_source(&mem, (const uint8_t(*)[H])leaves, TREE, &src);
    for (uint64_t n = 0; n <= TREE; n++)
        if (luna_merkle_root(&src, n, roots[n]) != LUNA_OK)
            abort();
    done = 1;
}

/* XORs mask into p; returns whether any bit changed. */
static int mutate(luna_merkle_proof *p, const luna_merkle_proof *mask)
{
    int changed = 0;
    for (size_t k = 0; k < p->n && k < mask->n; k++)
        for (size_t j = 0; j < H; j++) {
            p->hash[k][j] ^= mask->hash[k][j];
            changed |= mask->hash[k][j] != 0;
        }
    return changed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    luna_reader r;
    uint64_t a = 0, b = 0;
    uint8_t x[H], y[H];
    luna_merkle_proof proof, real;
    luna_merkle_mem mem;
    luna_merkle_source src;

    setup();
    luna_reader_init(&r, data, size);
    if (luna_read_u64(&r, &a) != LUNA_OK || luna_read_u64(&r, &b) != LUNA_OK ||
        luna_read_bytes(&r, x, H) != LUNA_OK || luna_read_bytes(&r, y, H) != LUNA_OK)
        return 0;
    const uint8_t *rest = NULL;
    size_t rest_len = luna_reader_left(&r);
    if (luna_read_view(&r, &rest, rest_len) != LUNA_OK)
        abort();
    if (luna_merkle_proof_decode(rest, rest_len, &proof) != LUNA_OK) {
        if (proof.n != 0)
            abort();
        return 0;
    }
    uint8_t enc[LUNA_MERKLE_MAX_PROOF * H];
    size_t enc_len = 0;
    if (luna_merkle_proof_encode(&proof, enc, sizeof(enc), &enc_len) != LUNA_OK ||
        enc_len != rest_len || (rest_len != 0 && memcmp(enc, rest, rest_len) != 0))
        abort();

    /* Arbitrary claims: an acceptance must at least respect the size rules. */
    luna_err e = luna_merkle_verify_inclusion(a, b, x, H, &proof, y, H);
    if (e == LUNA_OK && a >= b)
        abort();
    for (int pass = 0; pass < 2; pass++) {
        uint64_t s1 = pass ? a % 70 : a, s2 = pass ? b % 70 : b;
        e = luna_merkle_verify_consistency(s1, s2, x, H, y, H, &proof);
        if (e == LUNA_OK && (s1 == 0 || s1 > s2 || (s1 == s2) != (proof.n == 0)))
            abort();
        if (e >= LUNA_ERR__COUNT)
            abort();
    }

    /* Real proofs in a small tree, mutated by the input. */
    luna_merkle_mem_source(&mem, (const uint8_t(*)[H])leaves, TREE, &src);
    uint64_t n = b % TREE + 1, i = a % n, m = a % n + 1;
    if (luna_merkle_prove_inclusion(&src, i, n, &real) != LUNA_OK ||
        luna_merkle_verify_inclusion(i, n, leaves[i], H, &real, roots[n], H) != LUNA_OK)
        abort();
    if (mutate(&real, &proof) &&
        luna_merkle_verify_inclusion(i, n, leaves[i], H, &real, roots[n], H) == LUNA_OK)
        abort();
    if (luna_merkle_prove_consistency(&src, m, n, &real) != LUNA_OK ||
        luna_merkle_verify_consistency(m, n, roots[m], H, roots[n], H, &real) != LUNA_OK)
        abort();
    if (mutate(&real, &proof) &&
        luna_merkle_verify_consistency(m, n, roots[m], H, roots[n], H, &real) == LUNA_OK)
        abort();
    return 0;
}
