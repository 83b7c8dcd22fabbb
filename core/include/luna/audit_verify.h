/*
 * luna/audit_verify.h - what a verifier of the audit log checks, with no
 * transport: `lunal audit verify|proof` (SDK), the audit tests and any
 * monitor feed it the bytes they fetched (docs/audit.md section 4).
 *
 * Owns: opening checkpoints with pinned keys, the consistency and
 * inclusion rules, the witness comparison, recomputing a root from an
 * export.  Must never: trust a size, root or leaf hash the server states
 * outside a signed checkpoint; accept a proof it did not check; keep
 * state (the caller keeps the checkpoint it accepted).
 *
 * Every input here is untrusted (it came over the network or from a
 * state file anyone could have edited).  Errors are stable:
 *   LUNA_ERR_FORMAT    malformed note, proof body, export line
 *   LUNA_ERR_VERIFY    a signature, proof, root or leaf does not verify
 *   LUNA_ERR_CONFLICT  the log went backwards (new size < kept size), or
 *                      the witness holds a larger tree than the log shows
 *   LUNA_ERR_TOO_LARGE a note or body over its cap
 * Thread safety: no shared state; each object belongs to one caller.
 */
#ifndef LUNA_AUDIT_VERIFY_H
#define LUNA_AUDIT_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "luna/err.h"
#include "luna/merkle.h"
#include "luna/note.h"

/* A checkpoint with a handful of signatures stays far below this. */
#define LUNA_AUDIT_CP_MAX 4096u
/* Largest proof answer accepted ({"proof":[65 x 64 hex]} plus a little). */
#define LUNA_AUDIT_PROOF_BODY_MAX 8192u

/* A checkpoint a verifier accepted: the signed note and what it says. */
typedef struct luna_audit_cp {
    uint8_t note[LUNA_AUDIT_CP_MAX];
    size_t len;
    uint64_t size;
    uint8_t root[LUNA_MERKLE_HASH_LEN];
} luna_audit_cp;

/*
 * Opens a signed checkpoint of the log whose key is log_key (its name is
 * the origin).  When witness_key is not NULL the witness must have signed
 * it too (a cosigned checkpoint).  The bytes are copied into *out;
 * *out is zeroed on error.
 */
luna_err luna_audit_cp_open(const void *note, size_t len, const luna_note_verifier *log_key,
                            const luna_note_verifier *witness_key,
                            luna_audit_cp *out) LUNA_MUST_CHECK;

/*
 * Reads the "proof" member (array of 64-hex strings) of a proof answer
 * of the log ({"index","size","proof"} or {"from","to","proof"}).
 * Other members are ignored: the sizes come from the caller, never from
 * this body.
 */
luna_err luna_audit_proof_parse(const void *body, size_t len,
                                luna_merkle_proof *out) LUNA_MUST_CHECK;

/*
 * The step from a kept checkpoint to a new one.  kept->size == 0: nothing
 * to prove, LUNA_OK (first use).  now->size < kept->size:
 * LUNA_ERR_CONFLICT.  Equal sizes: the proof must be empty and the roots
 * equal.  Otherwise the RFC 9162 consistency proof must verify.
 */
luna_err luna_audit_check_consistency(const luna_audit_cp *kept, const luna_audit_cp *now,
                                      const luna_merkle_proof *proof) LUNA_MUST_CHECK;

/*
 * Proves that the entry whose canonical bytes are leaf[0..len) sits at
 * index in the tree of cp: the bytes must decode as a canonical entry
 * (luna/audit_entry.h), index < cp->size, and the proof must lead from
 * their leaf hash to cp->root.  leaf_hash (may be NULL) receives the hash.
 */
luna_err luna_audit_check_inclusion(const luna_audit_cp *cp, uint64_t index, const uint8_t *leaf,
                                    size_t len, const luna_merkle_proof *proof,
                                    uint8_t leaf_hash[LUNA_MERKLE_HASH_LEN]) LUNA_MUST_CHECK;

/*
 * A root recomputed leaf by leaf in O(log n) memory (RFC 6962 MTH): the
 * right edge of complete subtrees, merged as leaves arrive.
 */
typedef struct luna_audit_root_acc {
    uint64_t count;
    unsigned depth;
    uint8_t stack[64][LUNA_MERKLE_HASH_LEN];
    uint8_t height[64];
} luna_audit_root_acc;

void luna_audit_root_acc_init(luna_audit_root_acc *a);
/* Adds one leaf given by its canonical entry bytes (checked canonical). */
luna_err luna_audit_root_acc_add(luna_audit_root_acc *a, const uint8_t *leaf,
                                 size_t len) LUNA_MUST_CHECK;
/*
 * Adds the lines of one JSONL export chunk (every line ends in "\n", no
 * empty line).  *n_lines (may be NULL) gets how many were added.  A chunk
 * that does not end in "\n" is LUNA_ERR_FORMAT.
 */
luna_err luna_audit_root_acc_add_jsonl(luna_audit_root_acc *a, const uint8_t *body, size_t len,
                                       uint64_t *n_lines) LUNA_MUST_CHECK;
/* The root of the leaves added so far (SHA-256("") when none). */
luna_err luna_audit_root_acc_root(const luna_audit_root_acc *a,
                                  uint8_t out[LUNA_MERKLE_HASH_LEN]) LUNA_MUST_CHECK;

#endif
