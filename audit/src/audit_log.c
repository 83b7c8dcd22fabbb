/*
 * audit_log.c - the durable RFC 6962 tree of the audit log (audit_log.h).
 *
 * Owns: the database schema, the one-transaction append (entries, new
 * perfect-subtree nodes, head compare-and-set), the in-memory right edge
 * of the tree, recovery at open, and the node source proofs are read from.
 * Must never: change the in-memory tree before the store committed, touch
 * a row below the recorded head (acknowledged entries are immutable), put
 * a value into SQL text, or serve a proof for a size it has not committed.
 */
#include "audit_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luna/bytes.h"
#include "luna/log.h"

#define HLEN LUNA_MERKLE_HASH_LEN
/* Rows per multi-row INSERT.  Small on purpose: the SQLite store checks
 * each ?N by name (sqlite3_bind_parameter_name, a linear search), so a
 * statement's cost grows with the square of its parameters; at 100/300
 * rows that check alone was a third of the append time, at 16/48 the
 * durable append rate doubled (bench_audit). */
#define ENTRY_ROWS_PER_STMT 16u
#define NODE_ROWS_PER_STMT 48u
#define VERIFY_PAGE 10000u

struct audit_log {
    luna_store *db;
    uint64_t size;
    uint8_t root[HLEN];
    /* edge[l]: the latest complete perfect subtree at level l whose index
     * is even; for every set bit l of size it is node (l, (size>>l)-1). */
    uint8_t edge[64][HLEN];
    const char *component;
};

static const luna_store_migration migrations[] = {
    {1,
     "CREATE TABLE audit_entries ("
     " idx INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, tenant TEXT NOT NULL,"
     " tee TEXT NOT NULL, deployment TEXT NOT NULL, operation TEXT NOT NULL,"
     " leaf BLOB NOT NULL, leaf_hash BLOB NOT NULL);"
     "CREATE INDEX audit_entries_tenant ON audit_entries(tenant, idx);"
     "CREATE INDEX audit_entries_tee ON audit_entries(tee, idx);"
     "CREATE TABLE audit_nodes (level INTEGER NOT NULL, idx INTEGER NOT NULL,"
     " hash BLOB NOT NULL, PRIMARY KEY (level, idx));"
     "CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 1),"
     " size INTEGER NOT NULL, root BLOB NOT NULL);"
     "INSERT INTO audit_head (id, size, root) VALUES (1, 0,"
     " X'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');",
     "CREATE TABLE audit_entries ("
     " idx BIGINT PRIMARY KEY, time_ms BIGINT NOT NULL, tenant TEXT NOT NULL,"
     " tee TEXT NOT NULL, deployment TEXT NOT NULL, operation TEXT NOT NULL,"
     " leaf BYTEA NOT NULL, leaf_hash BYTEA NOT NULL);"
     "CREATE INDEX audit_entries_tenant ON audit_entries(tenant, idx);"
     "CREATE INDEX audit_entries_tee ON audit_entries(tee, idx);"
     "CREATE TABLE audit_nodes (level INTEGER NOT NULL, idx BIGINT NOT NULL,"
     " hash BYTEA NOT NULL, PRIMARY KEY (level, idx));"
     "CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 1),"
     " size BIGINT NOT NULL, root BYTEA NOT NULL);"
     "INSERT INTO audit_head (id, size, root) VALUES (1, 0,"
     " '\\xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'::bytea);"},
};

uint64_t audit_log_size(const audit_log *log)
{
    return log->size;
}

void audit_log_root(const audit_log *log, uint8_t root[HLEN])
{
    memcpy(root, log->root, HLEN);
}

/* Root of a tree of n leaves from its right edge. */
static luna_err edge_root(const uint8_t (*edge)[HLEN], uint64_t n, uint8_t out[HLEN])
{
    if (n == 0)
        return luna_merkle_empty_root(out);
    bool have = false;
    uint8_t r[HLEN];
    for (unsigned l = 0; l < 64; l++) {
        if ((n >> l & 1u) == 0)
            continue;
        if (!have) {
            memcpy(r, edge[l], HLEN);
            have = true;
        } else {
            LUNA_GUARD(luna_merkle_node_hash(edge[l], r, r));
        }
    }
    memcpy(out, r, HLEN);
    return LUNA_OK;
}

typedef struct new_node {
    unsigned level;
    uint64_t index;
    uint8_t hash[HLEN];
} new_node;

/*
 * Adds leaf `index` (== current size) to edge; completed subtrees at
 * level >= 1 go to nodes[*n_nodes++] when nodes is not NULL.
 */
static luna_err edge_push(uint8_t (*edge)[HLEN], uint64_t index, const uint8_t leaf[HLEN],
                          new_node *nodes, size_t *n_nodes, size_t cap)
{
    uint8_t cur[HLEN];
    memcpy(cur, leaf, HLEN);
    uint64_t idx = index;
    unsigned l = 0;
    while ((idx & 1u) != 0) {
        LUNA_GUARD(luna_merkle_node_hash(edge[l], cur, cur));
        idx >>= 1;
        l++;
        if (nodes != NULL) {
            if (*n_nodes >= cap)
                return LUNA_ERR_INTERNAL;
            nodes[*n_nodes].level = l;
            nodes[*n_nodes].index = idx;
            memcpy(nodes[*n_nodes].hash, cur, HLEN);
            (*n_nodes)++;
        }
    }
    memcpy(edge[l], cur, HLEN);
    return LUNA_OK;
}

/* ---- node source over the store ---- */

static luna_err read_hash(luna_store_rows *rows, uint8_t out[HLEN])
{
    bool has = false;
    LUNA_GUARD(luna_store_rows_next(rows, &has));
    if (!has)
        return LUNA_ERR_NOT_FOUND;
    const uint8_t *b;
    size_t n;
    LUNA_GUARD(luna_store_col_blob(rows, 0, &b, &n));
    if (n != HLEN)
        return LUNA_ERR_VERIFY;
    memcpy(out, b, HLEN);
    return LUNA_OK;
}

static luna_err load_node(luna_store *db, unsigned level, uint64_t index, uint8_t out[HLEN])
{
    if (index > INT64_MAX)
        return LUNA_ERR_INVALID_ARG;
    luna_store_rows *rows = NULL;
    luna_err err;
    if (level == 0) {
        luna_store_param p[] = {luna_store_p_int64((int64_t)index)};
        err = luna_store_query(db, "SELECT leaf_hash FROM audit_entries WHERE idx = ?1", p, 1,
                               &rows);
    } else {
        luna_store_param p[] = {luna_store_p_int64(level), luna_store_p_int64((int64_t)index)};
        err = luna_store_query(db, "SELECT hash FROM audit_nodes WHERE level = ?1 AND idx = ?2",
                               p, 2, &rows);
    }
    if (err == LUNA_OK)
        err = read_hash(rows, out);
    luna_store_rows_free(rows);
    return err;
}

typedef struct source_ctx {
    audit_log *log;
    uint64_t size; /* the generator never asks outside this size */
} source_ctx;

static luna_err source_node(void *vctx, unsigned level, uint64_t index, uint8_t out[HLEN])
{
    source_ctx *c = vctx;
    if (level >= 64 || index >= (c->size >> level))
        return LUNA_ERR_INTERNAL;
    luna_err err = load_node(c->log->db, level, index, out);
    /* Every perfect subtree inside a committed size is stored, so a hole is
     * damage, not "ask my children". */
    return err == LUNA_ERR_NOT_FOUND ? LUNA_ERR_VERIFY : err;
}

luna_err audit_log_prove_inclusion(audit_log *log, uint64_t index, uint64_t size,
                                   luna_merkle_proof *out)
{
    if (log == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (size > log->size)
        return LUNA_ERR_NOT_FOUND;
    source_ctx c = {log, size};
    luna_merkle_source src = {source_node, &c};
    return luna_merkle_prove_inclusion(&src, index, size, out);
}

luna_err audit_log_prove_consistency(audit_log *log, uint64_t from, uint64_t to,
                                     luna_merkle_proof *out)
{
    if (log == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (to > log->size)
        return LUNA_ERR_NOT_FOUND;
    source_ctx c = {log, to};
    luna_merkle_source src = {source_node, &c};
    return luna_merkle_prove_consistency(&src, from, to, out);
}

luna_err audit_log_root_at(audit_log *log, uint64_t size, uint8_t out[HLEN])
{
    if (log == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (size > log->size)
        return LUNA_ERR_NOT_FOUND;
    if (size == log->size) {
        memcpy(out, log->root, HLEN);
        return LUNA_OK;
    }
    source_ctx c = {log, size};
    luna_merkle_source src = {source_node, &c};
    return luna_merkle_root(&src, size, out);
}

luna_err audit_log_leaf(audit_log *log, uint64_t index, uint8_t *out, size_t cap, size_t *len)
{
    if (log == NULL || out == NULL || len == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (index >= log->size)
        return LUNA_ERR_NOT_FOUND;
    luna_store_param p[] = {luna_store_p_int64((int64_t)index)};
    luna_store_rows *rows = NULL;
    luna_err err;
    LUNA_TRY(luna_store_query(log->db, "SELECT leaf FROM audit_entries WHERE idx = ?1", p, 1,
                              &rows),
             out);
    bool has = false;
    LUNA_TRY(luna_store_rows_next(rows, &has), out);
    LUNA_TRY_ENSURE(has, LUNA_ERR_VERIFY, out);
    const uint8_t *b;
    size_t n;
    LUNA_TRY(luna_store_col_blob(rows, 0, &b, &n), out);
    LUNA_TRY_ENSURE(n <= cap, LUNA_ERR_TOO_LARGE, out);
    memcpy(out, b, n);
    *len = n;
out:
    luna_store_rows_free(rows);
    return err;
}

/* ---- append ---- */

typedef struct append_ctx {
    uint64_t old_size, new_size;
    const luna_audit_entry *entries;
    size_t n;
    const uint8_t *leaves; /* n * LUNA_AUDIT_ENTRY_MAX */
    const size_t *leaf_len;
    const uint8_t (*leaf_hash)[HLEN];
    const new_node *nodes;
    size_t n_nodes;
    const uint8_t *root;
} append_ctx;

/* Column values of raw test leaves (no entry behind them). */
static const luna_audit_entry blank_entry;

static luna_err insert_entries(luna_store *db, const append_ctx *a, size_t from, size_t count)
{
    char sql[64 + ENTRY_ROWS_PER_STMT * 48];
    luna_store_param p[ENTRY_ROWS_PER_STMT * 8];
    size_t off = (size_t)snprintf(sql, sizeof(sql),
                                  "INSERT INTO audit_entries (idx, time_ms, tenant, tee, "
                                  "deployment, operation, leaf, leaf_hash) VALUES ");
    for (size_t i = 0; i < count; i++) {
        size_t k = from + i, b = i * 8;
        const luna_audit_entry *e = a->entries != NULL ? &a->entries[k] : &blank_entry;
        int w = snprintf(sql + off, sizeof(sql) - off, "%s(?%zu,?%zu,?%zu,?%zu,?%zu,?%zu,?%zu,?%zu)",
                         i == 0 ? "" : ",", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7,
                         b + 8);
        if (w < 0 || (size_t)w >= sizeof(sql) - off)
            return LUNA_ERR_INTERNAL;
        off += (size_t)w;
        p[b] = luna_store_p_int64((int64_t)(a->old_size + k));
        p[b + 1] = luna_store_p_int64(e->time_ms);
        p[b + 2] = luna_store_p_text(e->tenant);
        p[b + 3] = luna_store_p_text(e->tee);
        p[b + 4] = luna_store_p_text(e->deployment);
        p[b + 5] = luna_store_p_text(e->operation);
        p[b + 6] = luna_store_p_blob(a->leaves + k * LUNA_AUDIT_ENTRY_MAX, a->leaf_len[k]);
        p[b + 7] = luna_store_p_blob(a->leaf_hash[k], HLEN);
    }
    return luna_store_exec(db, sql, p, count * 8, NULL);
}

static luna_err insert_nodes(luna_store *db, const new_node *nodes, size_t count)
{
    char sql[64 + NODE_ROWS_PER_STMT * 24];
    luna_store_param p[NODE_ROWS_PER_STMT * 3];
    size_t off = (size_t)snprintf(sql, sizeof(sql),
                                  "INSERT INTO audit_nodes (level, idx, hash) VALUES ");
    for (size_t i = 0; i < count; i++) {
        size_t b = i * 3;
        int w = snprintf(sql + off, sizeof(sql) - off, "%s(?%zu,?%zu,?%zu)", i == 0 ? "" : ",",
                         b + 1, b + 2, b + 3);
        if (w < 0 || (size_t)w >= sizeof(sql) - off)
            return LUNA_ERR_INTERNAL;
        off += (size_t)w;
        p[b] = luna_store_p_int64(nodes[i].level);
        p[b + 1] = luna_store_p_int64((int64_t)nodes[i].index);
        p[b + 2] = luna_store_p_blob(nodes[i].hash, HLEN);
    }
    return luna_store_exec(db, sql, p, count * 3, NULL);
}

static luna_err append_tx(luna_store *db, void *vctx)
{
    const append_ctx *a = vctx;
    for (size_t i = 0; i < a->n; i += ENTRY_ROWS_PER_STMT) {
        size_t c = a->n - i < ENTRY_ROWS_PER_STMT ? a->n - i : ENTRY_ROWS_PER_STMT;
        LUNA_GUARD(insert_entries(db, a, i, c));
    }
    for (size_t i = 0; i < a->n_nodes; i += NODE_ROWS_PER_STMT) {
        size_t c = a->n_nodes - i < NODE_ROWS_PER_STMT ? a->n_nodes - i : NODE_ROWS_PER_STMT;
        LUNA_GUARD(insert_nodes(db, a->nodes + i, c));
    }
    luna_store_param p[] = {luna_store_p_int64((int64_t)a->new_size),
                            luna_store_p_blob(a->root, HLEN),
                            luna_store_p_int64((int64_t)a->old_size)};
    uint64_t changed = 0;
    LUNA_GUARD(luna_store_exec(db, "UPDATE audit_head SET size = ?1, root = ?2 WHERE id = 1 AND "
                                   "size = ?3",
                               p, 3, &changed));
    /* Someone else moved the head: never write a fork. */
    return changed == 1 ? LUNA_OK : LUNA_ERR_CONFLICT;
}

/*
 * Appends n leaves.  With entries, leaf i is the encoding of entries[i];
 * without (test hook), raw[i]/raw_len[i] are the leaf bytes.
 */
static luna_err append_leaves(audit_log *log, const luna_audit_entry *entries,
                              const uint8_t *const *raw, const size_t *raw_len, size_t n,
                              uint64_t *first, uint8_t (*leaf_hashes)[HLEN])
{
    if (log == NULL || first == NULL || n == 0 || n > AUDIT_LOG_MAX_BATCH)
        return LUNA_ERR_INVALID_ARG;
    if (log->size > (uint64_t)INT64_MAX - n)
        return LUNA_ERR_TOO_LARGE;
    luna_err err;
    uint8_t *leaves = malloc(n * LUNA_AUDIT_ENTRY_MAX);
    size_t *lens = calloc(n, sizeof(*lens));
    uint8_t(*hashes)[HLEN] = calloc(n, HLEN);
    /* Each leaf completes at most 64 subtrees; in total at most n + 64. */
    new_node *nodes = calloc(n + 64, sizeof(*nodes));
    uint8_t(*edge)[HLEN] = malloc(sizeof(log->edge));
    LUNA_TRY_ENSURE(leaves != NULL && lens != NULL && hashes != NULL && nodes != NULL &&
                        edge != NULL,
                    LUNA_ERR_NOMEM, out);
    memcpy(edge, log->edge, sizeof(log->edge));
    size_t n_nodes = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t *leaf = leaves + i * LUNA_AUDIT_ENTRY_MAX;
        if (entries != NULL) {
            LUNA_TRY(luna_audit_entry_encode(&entries[i], leaf, LUNA_AUDIT_ENTRY_MAX, &lens[i]),
                     out);
        } else {
            LUNA_TRY_ENSURE(raw_len[i] <= LUNA_AUDIT_ENTRY_MAX, LUNA_ERR_TOO_LARGE, out);
            if (raw_len[i] > 0)
                memcpy(leaf, raw[i], raw_len[i]);
            lens[i] = raw_len[i];
        }
        LUNA_TRY(luna_merkle_leaf_hash(leaf, lens[i], hashes[i]), out);
        LUNA_TRY(edge_push(edge, log->size + i, hashes[i], nodes, &n_nodes, n + 64), out);
    }
    uint8_t root[HLEN];
    LUNA_TRY(edge_root((const uint8_t(*)[HLEN])edge, log->size + n, root), out);
    append_ctx a = {.old_size = log->size, .new_size = log->size + n, .entries = entries,
                    .n = n, .leaves = leaves, .leaf_len = lens,
                    .leaf_hash = (const uint8_t(*)[HLEN])hashes, .nodes = nodes,
                    .n_nodes = n_nodes, .root = root};
    LUNA_TRY(luna_store_tx(log->db, append_tx, &a), out);
    /* Committed: only now does the served tree move. */
    memcpy(log->edge, edge, sizeof(log->edge));
    memcpy(log->root, root, HLEN);
    *first = log->size;
    log->size += n;
    if (leaf_hashes != NULL)
        memcpy(leaf_hashes, hashes, n * HLEN);
out:
    free(edge);
    free(nodes);
    free(hashes);
    free(lens);
    free(leaves);
    return err;
}

luna_err audit_log_append(audit_log *log, const luna_audit_entry *entries, size_t n,
                          uint64_t *first, uint8_t (*leaf_hashes)[HLEN])
{
    if (entries == NULL)
        return LUNA_ERR_INVALID_ARG;
    return append_leaves(log, entries, NULL, NULL, n, first, leaf_hashes);
}

#ifdef LUNA_TESTING
luna_err audit_log_append_raw(audit_log *log, const uint8_t *const *leaves, const size_t *lens,
                              size_t n, uint64_t *first)
{
    if (leaves == NULL || lens == NULL)
        return LUNA_ERR_INVALID_ARG;
    return append_leaves(log, NULL, leaves, lens, n, first, NULL);
}
#endif

/* ---- open and recovery ---- */

static luna_err read_head(luna_store *db, uint64_t *size, uint8_t root[HLEN])
{
    luna_store_rows *rows = NULL;
    luna_err err;
    LUNA_TRY(luna_store_query(db, "SELECT size, root FROM audit_head WHERE id = 1", NULL, 0,
                              &rows),
             out);
    bool has = false;
    LUNA_TRY(luna_store_rows_next(rows, &has), out);
    LUNA_TRY_ENSURE(has, LUNA_ERR_VERIFY, out);
    int64_t s;
    const uint8_t *b;
    size_t n;
    LUNA_TRY(luna_store_col_int64(rows, 0, &s), out);
    LUNA_TRY(luna_store_col_blob(rows, 1, &b, &n), out);
    LUNA_TRY_ENSURE(s >= 0 && n == HLEN, LUNA_ERR_VERIFY, out);
    *size = (uint64_t)s;
    memcpy(root, b, HLEN);
out:
    luna_store_rows_free(rows);
    return err;
}

static luna_err count_rows(luna_store *db, const char *sql, uint64_t bound, uint64_t *out)
{
    luna_store_param p[] = {luna_store_p_int64((int64_t)bound)};
    luna_store_rows *rows = NULL;
    luna_err err;
    LUNA_TRY(luna_store_query(db, sql, p, 1, &rows), out);
    bool has = false;
    LUNA_TRY(luna_store_rows_next(rows, &has), out);
    LUNA_TRY_ENSURE(has, LUNA_ERR_STORAGE, out);
    int64_t c;
    LUNA_TRY(luna_store_col_int64(rows, 0, &c), out);
    LUNA_TRY_ENSURE(c >= 0, LUNA_ERR_STORAGE, out);
    *out = (uint64_t)c;
out:
    luna_store_rows_free(rows);
    return err;
}

static luna_err truncate_tail_tx(luna_store *db, void *vctx)
{
    const uint64_t *size = vctx;
    luna_store_param p[] = {luna_store_p_int64((int64_t)*size)};
    LUNA_GUARD(luna_store_exec(db, "DELETE FROM audit_entries WHERE idx >= ?1", p, 1, NULL));
    /* Nodes of a subtree that reaches past the head: (idx+1) << level > size. */
    for (int64_t level = 1; level < 64; level++) {
        luna_store_param q[] = {luna_store_p_int64(level),
                                luna_store_p_int64((int64_t)(*size >> level))};
        LUNA_GUARD(luna_store_exec(db, "DELETE FROM audit_nodes WHERE level = ?1 AND idx >= ?2",
                                   q, 2, NULL));
    }
    return LUNA_OK;
}

/* Recomputes every leaf hash and the whole tree from the stored leaves. */
static luna_err deep_verify(audit_log *log)
{
    uint8_t(*edge)[HLEN] = calloc(64, HLEN);
    if (edge == NULL)
        return LUNA_ERR_NOMEM;
    luna_err err = LUNA_OK;
    uint64_t next = 0;
    while (next < log->size && err == LUNA_OK) {
        luna_store_param p[] = {luna_store_p_int64((int64_t)next),
                                luna_store_p_int64((int64_t)log->size),
                                luna_store_p_int64(VERIFY_PAGE)};
        luna_store_rows *rows = NULL;
        err = luna_store_query(log->db,
                               "SELECT idx, leaf, leaf_hash FROM audit_entries WHERE idx >= ?1 "
                               "AND idx < ?2 ORDER BY idx LIMIT ?3",
                               p, 3, &rows);
        uint64_t got = 0;
        while (err == LUNA_OK) {
            bool has = false;
            err = luna_store_rows_next(rows, &has);
            if (err != LUNA_OK || !has)
                break;
            int64_t idx = -1;
            const uint8_t *leaf = NULL, *stored = NULL;
            size_t leaf_len = 0, stored_len = 0;
            uint8_t h[HLEN];
            luna_audit_entry e;
            err = luna_store_col_int64(rows, 0, &idx);
            if (err == LUNA_OK)
                err = luna_store_col_blob(rows, 1, &leaf, &leaf_len);
            if (err == LUNA_OK)
                err = luna_store_col_blob(rows, 2, &stored, &stored_len);
            if (err == LUNA_OK && (idx < 0 || (uint64_t)idx != next))
                err = LUNA_ERR_VERIFY;
            if (err == LUNA_OK)
                err = luna_audit_entry_decode(leaf, leaf_len, &e);
            if (err == LUNA_OK)
                err = luna_merkle_leaf_hash(leaf, leaf_len, h);
            if (err == LUNA_OK && (stored_len != HLEN || !luna_ct_equal(h, stored, HLEN)))
                err = LUNA_ERR_VERIFY;
            if (err == LUNA_OK)
                err = edge_push(edge, next, h, NULL, NULL, 0);
            if (err != LUNA_OK) {
                LUNA_LOGF(LUNA_LOG_ERROR, log->component, "audit log: stored leaf is damaged",
                          LUNA_LOG_UINT("index", next), LUNA_LOG_ERR("error", err));
                err = LUNA_ERR_VERIFY;
            }
            next++;
            got++;
        }
        luna_store_rows_free(rows);
        if (err == LUNA_OK && got == 0)
            err = LUNA_ERR_VERIFY;
    }
    uint8_t root[HLEN];
    if (err == LUNA_OK)
        err = edge_root((const uint8_t(*)[HLEN])edge, log->size, root);
    if (err == LUNA_OK && !luna_ct_equal(root, log->root, HLEN)) {
        LUNA_LOGF(LUNA_LOG_ERROR, log->component,
                  "audit log: the leaves do not reproduce the recorded root",
                  LUNA_LOG_UINT("size", log->size));
        err = LUNA_ERR_VERIFY;
    }
    free(edge);
    return err;
}

static luna_err recover(audit_log *log, bool deep)
{
    uint8_t head_root[HLEN];
    LUNA_GUARD(read_head(log->db, &log->size, head_root));
    LUNA_ENSURE(log->size <= (uint64_t)INT64_MAX, LUNA_ERR_VERIFY);
    memcpy(log->root, head_root, HLEN);

    uint64_t tail = 0, below = 0;
    LUNA_GUARD(count_rows(log->db, "SELECT COUNT(*) FROM audit_entries WHERE idx >= ?1",
                          log->size, &tail));
    if (tail > 0) {
        /* Cannot come from a commit (the head moves in the same
         * transaction) but is never acknowledged either: drop it, loudly. */
        LUNA_GUARD(luna_store_tx(log->db, truncate_tail_tx, &log->size));
        LUNA_LOGF(LUNA_LOG_WARN, log->component,
                  "audit log recovery: truncated an unacknowledged tail past the head",
                  LUNA_LOG_UINT("head_size", log->size), LUNA_LOG_UINT("rows_removed", tail));
    }
    LUNA_GUARD(count_rows(log->db, "SELECT COUNT(*) FROM audit_entries WHERE idx < ?1",
                          log->size, &below));
    if (below != log->size) {
        LUNA_LOGF(LUNA_LOG_ERROR, log->component,
                  "audit log recovery: acknowledged entries are missing; refusing to serve",
                  LUNA_LOG_UINT("head_size", log->size), LUNA_LOG_UINT("rows", below));
        return LUNA_ERR_VERIFY;
    }
    for (unsigned l = 0; l < 64; l++) {
        if ((log->size >> l & 1u) == 0)
            continue;
        luna_err err = load_node(log->db, l, (log->size >> l) - 1, log->edge[l]);
        if (err != LUNA_OK) {
            LUNA_LOGF(LUNA_LOG_ERROR, log->component,
                      "audit log recovery: a tree node is missing or damaged",
                      LUNA_LOG_UINT("level", l), LUNA_LOG_ERR("error", err));
            return LUNA_ERR_VERIFY;
        }
    }
    uint8_t root[HLEN];
    LUNA_GUARD(edge_root((const uint8_t(*)[HLEN])log->edge, log->size, root));
    if (!luna_ct_equal(root, head_root, HLEN)) {
        LUNA_LOGF(LUNA_LOG_ERROR, log->component,
                  "audit log recovery: tree nodes do not match the recorded root",
                  LUNA_LOG_UINT("head_size", log->size));
        return LUNA_ERR_VERIFY;
    }
    if (deep)
        LUNA_GUARD(deep_verify(log));
    LUNA_LOGF(LUNA_LOG_INFO, log->component, "audit log opened", LUNA_LOG_UINT("size", log->size),
              LUNA_LOG_BOOL("deep_verify", deep));
    return LUNA_OK;
}

luna_err audit_log_open(const char *url, const audit_log_open_opts *opts, audit_log **out)
{
    if (url == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    luna_err err;
    audit_log *log = calloc(1, sizeof(*log));
    if (log == NULL)
        return LUNA_ERR_NOMEM;
    log->component = (opts != NULL && opts->component != NULL) ? opts->component : "audit";
    LUNA_TRY(luna_store_open(url, NULL, &log->db), fail);
    LUNA_TRY(luna_store_migrate(log->db, migrations, sizeof(migrations) / sizeof(migrations[0]),
                                NULL),
             fail);
    LUNA_TRY(recover(log, opts != NULL && opts->deep_verify), fail);
    *out = log;
    return LUNA_OK;
fail:
    audit_log_close(log);
    return err;
}

void audit_log_close(audit_log *log)
{
    if (log == NULL)
        return;
    luna_store_close(log->db);
    free(log);
}

/* ---- queries ---- */

luna_err audit_log_query(audit_log *log, const audit_log_filter *f, audit_log_row_fn fn,
                         void *ctx, size_t *n_rows)
{
    if (log == NULL || f == NULL || fn == NULL || f->limit == 0 || f->limit > AUDIT_LOG_MAX_PAGE)
        return LUNA_ERR_INVALID_ARG;
    if (n_rows != NULL)
        *n_rows = 0;
    /* Fixed SQL fragments only; every value is a bound parameter. */
    char sql[512];
    luna_store_param p[10];
    size_t np = 0;
    uint64_t below = f->below < log->size ? f->below : log->size;
    size_t off = (size_t)snprintf(sql, sizeof(sql),
                                  "SELECT idx, leaf FROM audit_entries WHERE idx < ?1");
    p[np++] = luna_store_p_int64((int64_t)below);
#define ADD_COND(frag, param)                                                                      \
    do {                                                                                           \
        int w_ = snprintf(sql + off, sizeof(sql) - off, " AND " frag " ?%zu", np + 1);             \
        if (w_ < 0 || (size_t)w_ >= sizeof(sql) - off)                                             \
            return LUNA_ERR_INTERNAL;                                                              \
        off += (size_t)w_;                                                                         \
        p[np++] = (param);                                                                         \
    } while (0)
    if (f->tenant != NULL)
        ADD_COND("tenant =", luna_store_p_text(f->tenant));
    if (f->tee != NULL)
        ADD_COND("tee =", luna_store_p_text(f->tee));
    if (f->deployment != NULL)
        ADD_COND("deployment =", luna_store_p_text(f->deployment));
    if (f->operation != NULL)
        ADD_COND("operation =", luna_store_p_text(f->operation));
    if (f->has_since)
        ADD_COND("time_ms >=", luna_store_p_int64(f->since_ms));
    if (f->has_until)
        ADD_COND("time_ms <", luna_store_p_int64(f->until_ms));
    if (f->has_after) {
        if (f->after >= (uint64_t)INT64_MAX)
            return LUNA_OK;
        ADD_COND("idx >", luna_store_p_int64((int64_t)f->after));
    }
#undef ADD_COND
    int w = snprintf(sql + off, sizeof(sql) - off, " ORDER BY idx LIMIT ?%zu", np + 1);
    if (w < 0 || (size_t)w >= sizeof(sql) - off)
        return LUNA_ERR_INTERNAL;
    p[np++] = luna_store_p_int64((int64_t)f->limit);

    luna_store_rows *rows = NULL;
    luna_err err;
    size_t delivered = 0;
    LUNA_TRY(luna_store_query(log->db, sql, p, np, &rows), out);
    for (;;) {
        bool has = false;
        LUNA_TRY(luna_store_rows_next(rows, &has), out);
        if (!has)
            break;
        int64_t idx;
        const uint8_t *leaf;
        size_t leaf_len;
        LUNA_TRY(luna_store_col_int64(rows, 0, &idx), out);
        LUNA_TRY(luna_store_col_blob(rows, 1, &leaf, &leaf_len), out);
        LUNA_TRY_ENSURE(idx >= 0, LUNA_ERR_VERIFY, out);
        LUNA_TRY(fn(ctx, (uint64_t)idx, leaf, leaf_len), out);
        delivered++;
    }
    if (n_rows != NULL)
        *n_rows = delivered;
out:
    luna_store_rows_free(rows);
    return err;
}
