/*
 * job_abi.h - the contract between the TEE runtime and a job bundle (a
 * shared object the runtime maps only after its SHA-256 matched the signed
 * manifest's build_hash).  docs/tee.md, "Job bundles".
 *
 * A bundle exports one symbol, LUNA_TEE_BUNDLE_SYMBOL, a function returning
 * its table of jobs.  A job runs in a forked child of the runtime under a
 * seccomp allow-list (no network, no file writes, no exec), with bounded
 * CPU time, wall-clock time and address space.  It reads its input from
 * io->in and writes its result into io->out (at most io->out_cap bytes),
 * and may use io->scratch (io->scratch_cap bytes) as working memory: all
 * three live in locked (mlock'ed) pages the runtime wipes after the job, so
 * a job that keeps plaintext there never lets it reach swap or a heap page
 * the runtime does not wipe.  A job must not keep plaintext in malloc'd
 * memory; it returns 0 on success and a small positive number otherwise
 * (the number is not shown to anyone but the runtime's log).
 *
 * Jobs never see a key: the runtime's key pages are MADV_WIPEONFORK, so
 * they read as zero in the job's child.
 */
#ifndef LUNA_TEE_JOB_ABI_H
#define LUNA_TEE_JOB_ABI_H

#include <stddef.h>
#include <stdint.h>

#define LUNA_TEE_JOB_ABI_VERSION 1u
#define LUNA_TEE_BUNDLE_SYMBOL "luna_tee_bundle_v1"
#define LUNA_TEE_JOB_NAME_MAX 64 /* envelope job id rules: printable, no space */
#define LUNA_TEE_BUNDLE_MAX_JOBS 32

typedef struct luna_tee_job_io {
    const uint8_t *in; /* request plaintext */
    size_t in_len;
    uint8_t *out;      /* result buffer */
    size_t out_cap;
    size_t out_len;    /* set by the job, <= out_cap */
    uint8_t *scratch;  /* locked working memory */
    size_t scratch_cap;
} luna_tee_job_io;

typedef int (*luna_tee_job_fn)(luna_tee_job_io *io);

typedef struct luna_tee_job_def {
    const char *name;
    luna_tee_job_fn run;
} luna_tee_job_def;

typedef struct luna_tee_bundle_def {
    uint32_t abi_version; /* LUNA_TEE_JOB_ABI_VERSION */
    size_t n_jobs;        /* 1..LUNA_TEE_BUNDLE_MAX_JOBS */
    const luna_tee_job_def *jobs;
} luna_tee_bundle_def;

typedef const luna_tee_bundle_def *(*luna_tee_bundle_fn)(void);

#endif
