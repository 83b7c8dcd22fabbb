/*
 * audit_log.h - the audit log's durable tree (private to audit/): entries
 * and perfect-subtree hashes in a luna_store, the right edge of the tree
 * in memory, proofs read back through luna/merkle.h.
 *
 * Durability: audit_log_append commits the entries, their tree nodes and
 * the new tree head in ONE store transaction before it returns LUNA_OK;
 * only then may the caller acknowledge.  The head row is updated with a
 * compare-and-set on the old size, so a second writer on the same database
 * cannot fork the tree (LUNA_ERR_CONFLICT).
 *
 * Thread safety: one thread at a time (the store handle's rule).
 */
#ifndef LUNA_AUDIT_LOG_H
#define LUNA_AUDIT_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "luna/audit_entry.h"
#include "luna/err.h"
#include "luna/merkle.h"
#include "luna/store.h"

/* Most entries one append (one transaction) takes. */
#define AUDIT_LOG_MAX_BATCH 4096u
/* Most rows one query or export returns. */
#define AUDIT_LOG_MAX_PAGE 1000u

typedef struct audit_log audit_log;

typedef struct audit_log_open_opts {
    /* Recompute every leaf hash and the root from the leaves at start-up
     * (O(n)); otherwise only the right edge is checked against the head. */
    bool deep_verify;
    const char *component; /* log component name for recovery messages */
} audit_log_open_opts;

/*
 * Opens url, migrates, then recovers: rows past the recorded head (a tail
 * that was never acknowledged) are deleted and logged; a missing row below
 * the head, a node or leaf hash that does not reproduce the recorded root,
 * or (deep) a leaf that is not canonical or does not hash to its stored
 * leaf hash refuses to open with LUNA_ERR_VERIFY, logged.
 */
luna_err audit_log_open(const char *url, const audit_log_open_opts *opts,
                        audit_log **out) LUNA_MUST_CHECK;
void audit_log_close(audit_log *log);

uint64_t audit_log_size(const audit_log *log);
void audit_log_root(const audit_log *log, uint8_t root[LUNA_MERKLE_HASH_LEN]);

/*
 * Appends n (1..AUDIT_LOG_MAX_BATCH) checked entries as leaves
 * size..size+n-1, durably.  *first gets the first index; leaf_hashes (may
 * be NULL) gets n hashes.  On error nothing was appended and the in-memory
 * state is unchanged.  Errors: the entry checks (FORMAT), store errors.
 */
luna_err audit_log_append(audit_log *log, const luna_audit_entry *entries, size_t n,
                          uint64_t *first,
                          uint8_t (*leaf_hashes)[LUNA_MERKLE_HASH_LEN]) LUNA_MUST_CHECK;

#ifdef LUNA_TESTING
/* Test hook: appends raw leaf bytes (the shared vectors' leaves), which
 * the deep verify at open would refuse as non-canonical. */
luna_err audit_log_append_raw(audit_log *log, const uint8_t *const *leaves, const size_t *lens,
                              size_t n, uint64_t *first) LUNA_MUST_CHECK;
#endif

/* Proofs against the tree of `size` leaves (size <= audit_log_size, else
 * LUNA_ERR_NOT_FOUND); merkle.h's rules for the rest. */
luna_err audit_log_prove_inclusion(audit_log *log, uint64_t index, uint64_t size,
                                   luna_merkle_proof *out) LUNA_MUST_CHECK;
luna_err audit_log_prove_consistency(audit_log *log, uint64_t from, uint64_t to,
                                     luna_merkle_proof *out) LUNA_MUST_CHECK;
/* Root of the first size leaves (size <= audit_log_size). */
luna_err audit_log_root_at(audit_log *log, uint64_t size,
                           uint8_t out[LUNA_MERKLE_HASH_LEN]) LUNA_MUST_CHECK;

/* Leaf bytes (canonical entry) of index into out (cap >= LUNA_AUDIT_ENTRY_MAX). */
luna_err audit_log_leaf(audit_log *log, uint64_t index, uint8_t *out, size_t cap,
                        size_t *len) LUNA_MUST_CHECK;

/* A query: NULL/absent fields are not filtered on. */
typedef struct audit_log_filter {
    const char *tenant;
    const char *tee;
    const char *deployment;
    const char *operation;
    bool has_since, has_until;
    int64_t since_ms; /* time >= since */
    int64_t until_ms; /* time < until */
    bool has_after;
    uint64_t after; /* index > after (the cursor) */
    uint64_t below; /* index < below (the tree size the query is pinned to) */
    size_t limit;   /* 1..AUDIT_LOG_MAX_PAGE */
} audit_log_filter;

/* Called once per row, in index order; a non-OK return stops the scan. */
typedef luna_err (*audit_log_row_fn)(void *ctx, uint64_t index, const uint8_t *leaf,
                                     size_t leaf_len);

/* Runs the filter; *n_rows (may be NULL) gets the rows delivered. */
luna_err audit_log_query(audit_log *log, const audit_log_filter *f, audit_log_row_fn fn,
                         void *ctx, size_t *n_rows) LUNA_MUST_CHECK;

#endif
