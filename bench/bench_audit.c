/*
 * bench_audit - the audit log's durable append path and proof generation,
 * measured directly on audit_log (no HTTP): appends in group-commit
 * batches to a SQLite file (WAL, synchronous=FULL: every batch is fsync'ed
 * before it counts), then inclusion and consistency proof generation at
 * the final size.  Baseline, same run: leaf hashing alone (the floor).
 *
 *   bench_audit [entries (default 100000)] [batch (default 1024)] [dir (default /tmp)]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit_log.h"
#include "luna/audit_entry.h"
#include "luna/merkle.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fill(luna_audit_entry *e, uint64_t i)
{
    memset(e, 0, sizeof(*e));
    e->time_ms = 1700000000000 + (int64_t)i;
    memcpy(e->component, "lunal://svc/kms", 16);
    memcpy(e->actor, "lunal://tee/t1", 15);
    snprintf(e->tenant, sizeof(e->tenant), "tenant-%u", (unsigned)(i % 50));
    memcpy(e->tee, "t1", 3);
    memcpy(e->deployment, "dep-1", 6);
    memcpy(e->operation, "key.release", 12);
    e->n_objects = 1;
    snprintf(e->objects[0], sizeof(e->objects[0]), "otk-%llu", (unsigned long long)i);
    e->outcome = LUNA_AUDIT_SUCCESS;
    snprintf(e->request_id, sizeof(e->request_id), "req-%llu", (unsigned long long)i);
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 100000;
    size_t batch = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 1024;
    const char *dir = argc > 3 ? argv[3] : "/tmp";
    if (n == 0 || batch == 0 || batch > AUDIT_LOG_MAX_BATCH)
        return 2;
    char path[512], url[600], side[600];
    snprintf(path, sizeof(path), "%s/bench-audit-%ld.db", dir, (long)getpid());
    snprintf(url, sizeof(url), "sqlite:%s", path);
    luna_audit_entry *es = calloc(batch, sizeof(*es));
    if (es == NULL)
        return 1;

    /* Baseline: canonical encoding + leaf hash only. */
    double t0 = now_s();
    uint64_t base_n = n < 200000 ? n : 200000;
    for (uint64_t i = 0; i < base_n; i++) {
        uint8_t leaf[LUNA_AUDIT_ENTRY_MAX], h[32];
        size_t len;
        fill(&es[0], i);
        if (luna_audit_entry_encode(&es[0], leaf, sizeof(leaf), &len) != LUNA_OK ||
            luna_merkle_leaf_hash(leaf, len, h) != LUNA_OK)
            return 1;
    }
    double base_rate = (double)base_n / (now_s() - t0);

    audit_log *log = NULL;
    audit_log_open_opts o = {.deep_verify = false, .component = "bench"};
    if (audit_log_open(url, &o, &log) != LUNA_OK)
        return 1;
    t0 = now_s();
    for (uint64_t at = 0; at < n;) {
        size_t k = n - at < batch ? (size_t)(n - at) : batch;
        for (size_t j = 0; j < k; j++)
            fill(&es[j], at + j);
        uint64_t first;
        if (audit_log_append(log, es, k, &first, NULL) != LUNA_OK)
            return 1;
        at += k;
    }
    double append_s = now_s() - t0;

    const int probes = 1000;
    luna_merkle_proof p;
    t0 = now_s();
    for (int i = 0; i < probes; i++) {
        uint64_t idx = ((uint64_t)i * 2654435761u) % n;
        if (audit_log_prove_inclusion(log, idx, n, &p) != LUNA_OK)
            return 1;
    }
    double incl_us = (now_s() - t0) / probes * 1e6;
    t0 = now_s();
    for (int i = 0; i < probes; i++) {
        uint64_t from = 1 + ((uint64_t)i * 40503u) % n;
        if (audit_log_prove_consistency(log, from, n, &p) != LUNA_OK)
            return 1;
    }
    double cons_us = (now_s() - t0) / probes * 1e6;
    audit_log_close(log);
    /* Reopen: recovery with the full deep verify (every leaf re-hashed). */
    o.deep_verify = true;
    t0 = now_s();
    if (audit_log_open(url, &o, &log) != LUNA_OK)
        return 1;
    double reopen_s = now_s() - t0;
    audit_log_close(log);

    printf("audit bench: %llu entries, batches of %zu, SQLite WAL synchronous=FULL (%s)\n",
           (unsigned long long)n, batch, dir);
    printf("  baseline  encode+leaf hash only     %12.0f entries/s\n", base_rate);
    printf("  durable appends (group commit)      %12.0f entries/s  (%.2f s)\n",
           (double)n / append_s, append_s);
    printf("  inclusion proof at size %llu        %12.1f us/proof\n", (unsigned long long)n,
           incl_us);
    printf("  consistency proof to size %llu      %12.1f us/proof\n", (unsigned long long)n,
           cons_us);
    printf("  reopen with deep verify             %12.2f s\n", reopen_s);
    unlink(path);
    snprintf(side, sizeof(side), "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", path);
    unlink(side);
    free(es);
    return 0;
}
