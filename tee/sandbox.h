/*
 * sandbox.h - runs one job of a loaded bundle in a forked child of the
 * runtime, isolated (docs/tee.md, "Job sandbox").
 *
 * The child: drops to nobody when started as root, gets RLIMIT_CPU,
 * RLIMIT_AS (its address space at fork + limits->mem_bytes), RLIMIT_FSIZE
 * 0, RLIMIT_NOFILE 4, keeps only fds 0-2 and the result pipe (fd 3), then
 * loads a seccomp allow-list whose default is to kill the process: no
 * socket/connect, no open at all (so no write, creat, unlink, rename),
 * no execve, no fork/clone, no ptrace.  Its result and scratch buffers are
 * mlock'ed and wiped before it exits; the input is the caller's locked
 * buffer, shared copy-on-write.  The parent reads the result from a pipe
 * with a hard cap, kills the child at the wall-clock deadline, and tells
 * which limit ended a job that did not finish.
 *
 * Thread safety: call from one thread of a single-threaded process (fork).
 * Blocks the caller for at most limits->wall_ms (+ the reap).
 */
#ifndef LUNA_TEE_SANDBOX_H
#define LUNA_TEE_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "job_abi.h"
#include "luna/err.h"
#include "luna/secret.h"

#define LUNA_TEE_RESULT_MAX_CAP (16u * 1024u * 1024u)
#define LUNA_TEE_SCRATCH_MAX_CAP (64u * 1024u * 1024u)

typedef struct luna_tee_limits {
    unsigned cpu_seconds; /* 1..3600: RLIMIT_CPU */
    unsigned wall_ms;     /* 1..3600000: killed after this */
    size_t mem_bytes;     /* address space the job may add, >= 1 MiB */
    size_t result_max;    /* 1..LUNA_TEE_RESULT_MAX_CAP bytes of result */
    size_t scratch_bytes; /* 4096..LUNA_TEE_SCRATCH_MAX_CAP locked scratch */
} luna_tee_limits;

typedef enum luna_tee_outcome {
    LUNA_TEE_JOB_OK = 0,
    LUNA_TEE_JOB_FAILED = 1,    /* the job returned non-zero */
    LUNA_TEE_JOB_SYSCALL = 2,   /* killed by the seccomp filter (SIGSYS) */
    LUNA_TEE_JOB_CPU = 3,       /* CPU-time limit */
    LUNA_TEE_JOB_TIMEOUT = 4,   /* wall-clock limit */
    LUNA_TEE_JOB_TOO_LARGE = 5, /* result over limits->result_max */
    LUNA_TEE_JOB_CRASHED = 6,   /* any other signal (e.g. out of memory) */
} luna_tee_outcome;

/* "ok", "failed", "forbidden_syscall", "cpu_limit", "timeout", ... */
const char *luna_tee_outcome_name(luna_tee_outcome o);

typedef struct luna_tee_job_result {
    luna_tee_outcome outcome;
    int exit_code;  /* the job's non-zero return, for FAILED */
    int signal;     /* the signal that ended the child, or 0 */
    luna_secret *data; /* OK only: the result (locked), caller frees */
    size_t len;        /* bytes of data used (may be 0) */
} luna_tee_job_result;

/*
 * Runs job on in[0..in_len) (in should be locked memory; in_len may be 0).
 * LUNA_OK when the job ran, whatever its outcome (see out->outcome; data is
 * set only for LUNA_TEE_JOB_OK); LUNA_ERR_INVALID_ARG for limits out of
 * range; LUNA_ERR_NOMEM / LUNA_ERR_IO / LUNA_ERR_INTERNAL when the child
 * could not be started.  on_start (may be NULL) is called with the child's
 * pid once it runs (tests use it to find the child).
 */
luna_err luna_tee_sandbox_run(luna_tee_job_fn job, const uint8_t *in, size_t in_len,
                              const luna_tee_limits *limits, luna_tee_job_result *out,
                              void (*on_start)(pid_t pid, void *arg),
                              void *on_start_arg) LUNA_MUST_CHECK;

/* Frees out->data; safe on a zeroed or already cleared result. */
void luna_tee_job_result_clear(luna_tee_job_result *r);

/*
 * Marks the pages of s MADV_WIPEONFORK so a forked job child sees zeros
 * there (the runtime's private keys).  LUNA_ERR_INTERNAL when the kernel
 * refuses.
 */
luna_err luna_tee_wipe_on_fork(luna_secret *s) LUNA_MUST_CHECK;

/*
 * Starts OpenSSL's secure heap (size bytes, a power of two >= 64 KiB:
 * locked, undumpable, guard-paged; OpenSSL keeps private-key BIGNUMs such
 * as the TLS key's there) and marks it MADV_WIPEONFORK, so job children
 * see it as zeros.  Call once, before any key exists.  LUNA_ERR_CRYPTO
 * when OpenSSL refuses, LUNA_ERR_INTERNAL when the mapping is not found or
 * the kernel refuses the advice.  A job must not use OpenSSL's secure heap
 * itself (its free lists read as zero in the child).
 */
luna_err luna_tee_secure_heap_init(size_t size) LUNA_MUST_CHECK;

#endif
