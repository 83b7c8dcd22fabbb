/*
 * sandbox.c - the job child: fork, limits, privilege drop, seccomp
 * allow-list, locked buffers, capped result pipe, wall-clock kill.  Owns
 * the isolation of customer plaintext from the network, the file system
 * and the runtime's keys.  Must never let a job's child outlive its
 * deadline, never read more than the result cap, never hand back a
 * result of a job that did not exit cleanly.
 */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "luna/bytes.h"
#include "luna/crypto.h"

#define RESULT_FD 3
#define NOBODY_ID 65534
/* Child exit codes the parent reads (a job's own codes are 1..99). */
#define CHILD_EXIT_SETUP 120
#define CHILD_EXIT_WRITE 121
#define CHILD_EXIT_BADLEN 122

const char *luna_tee_outcome_name(luna_tee_outcome o)
{
    switch (o) {
    case LUNA_TEE_JOB_OK: return "ok";
    case LUNA_TEE_JOB_FAILED: return "failed";
    case LUNA_TEE_JOB_SYSCALL: return "forbidden_syscall";
    case LUNA_TEE_JOB_CPU: return "cpu_limit";
    case LUNA_TEE_JOB_TIMEOUT: return "timeout";
    case LUNA_TEE_JOB_TOO_LARGE: return "result_too_large";
    case LUNA_TEE_JOB_CRASHED: return "crashed";
    }
    return "unknown";
}

static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096u;
}

luna_err luna_tee_wipe_on_fork(luna_secret *s)
{
    if (s == NULL)
        return LUNA_ERR_INVALID_ARG;
    size_t pg = page_size();
    uintptr_t start = (uintptr_t)luna_secret_data(s) & ~(uintptr_t)(pg - 1);
    uintptr_t end = ((uintptr_t)luna_secret_data(s) + luna_secret_len(s) + pg - 1) &
                    ~(uintptr_t)(pg - 1);
    if (madvise((void *)start, end - start, MADV_WIPEONFORK) != 0)
        return LUNA_ERR_INTERNAL;
    return LUNA_OK;
}

luna_err luna_tee_secure_heap_init(size_t size)
{
    if (size < 65536 || (size & (size - 1)) != 0)
        return LUNA_ERR_INVALID_ARG;
    /* 1: locked; 2: mapped but not locked (refused: keys must not swap). */
    if (CRYPTO_secure_malloc_initialized() || CRYPTO_secure_malloc_init(size, 32) != 1)
        return LUNA_ERR_CRYPTO;
    /* OpenSSL does not say where its arena is: find the mapping that holds
       a probe allocation, then advise the whole of it. */
    void *probe = OPENSSL_secure_malloc(32);
    if (probe == NULL || !CRYPTO_secure_allocated(probe))
        return LUNA_ERR_INTERNAL;
    uintptr_t at = (uintptr_t)probe;
    OPENSSL_secure_free(probe);
    FILE *maps = fopen("/proc/self/maps", "re");
    if (maps == NULL)
        return LUNA_ERR_INTERNAL;
    char line[512];
    uintptr_t lo = 0, hi = 0;
    while (fgets(line, sizeof(line), maps) != NULL) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx", &a, &b) == 2 && at >= a && at < b) {
            lo = a;
            hi = b;
            break;
        }
    }
    fclose(maps);
    if (lo == 0 || hi - lo < size || madvise((void *)lo, hi - lo, MADV_WIPEONFORK) != 0)
        return LUNA_ERR_INTERNAL;
    return LUNA_OK;
}

static bool limits_ok(const luna_tee_limits *l)
{
    return l->cpu_seconds >= 1 && l->cpu_seconds <= 3600 && l->wall_ms >= 1 &&
           l->wall_ms <= 3600000u && l->mem_bytes >= (1u << 20) && l->result_max >= 1 &&
           l->result_max <= LUNA_TEE_RESULT_MAX_CAP && l->scratch_bytes >= 4096 &&
           l->scratch_bytes <= LUNA_TEE_SCRATCH_MAX_CAP;
}

/* ---- child side: everything here runs between fork and _exit ---- */

static size_t child_vm_bytes(void)
{
    /* /proc/self/statm: the first field is the whole address space in pages. */
    char buf[64];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *end = NULL;
    unsigned long long pages = strtoull(buf, &end, 10);
    if (end == buf)
        return 0;
    return (size_t)pages * page_size();
}

static int add_rule(scmp_filter_ctx ctx, const char *name)
{
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        return 0; /* not a syscall on this architecture */
    return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
}

static int load_filter(void)
{
    /* What a job may do: compute on memory it has, grow it within
       RLIMIT_AS, sleep, read the clock and randomness, write its result
       (fd 3) or a diagnostic (fd 2), and exit.  Everything else kills. */
    static const char *const allowed[] = {
        "read",          "close",        "fstat",       "newfstatat",   "lseek",
        "brk",           "mmap",         "munmap",      "mremap",       "mprotect",
        "madvise",       "futex",        "rt_sigreturn", "rt_sigprocmask", "clock_gettime",
        "clock_nanosleep", "nanosleep",  "gettimeofday", "getrandom",   "exit",
        "exit_group",    "getpid",       "gettid",      "sched_yield",  "sigaltstack",
    };
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (ctx == NULL)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]) && rc == 0; i++)
        rc = add_rule(ctx, allowed[i]);
    const struct scmp_arg_cmp to_result = {.arg = 0, .op = SCMP_CMP_EQ, .datum_a = RESULT_FD,
                                           .datum_b = 0};
    const struct scmp_arg_cmp to_stderr = {.arg = 0, .op = SCMP_CMP_EQ,
                                           .datum_a = STDERR_FILENO, .datum_b = 0};
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1, to_result);
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1, to_stderr);
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    return rc;
}

static void *locked_map(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    (void)madvise(p, len, MADV_DONTDUMP);
    if (mlock(p, len) != 0) {
        munmap(p, len);
        return NULL;
    }
    return p;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static __attribute__((noreturn)) void child_main(luna_tee_job_fn job, const uint8_t *in,
                                                 size_t in_len, const luna_tee_limits *lim,
                                                 int wfd, pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != parent)
        _exit(CHILD_EXIT_SETUP);
    if (wfd != RESULT_FD) {
        if (dup2(wfd, RESULT_FD) != RESULT_FD)
            _exit(CHILD_EXIT_SETUP);
    }
    if (syscall(SYS_close_range, RESULT_FD + 1, ~0U, 0) != 0)
        _exit(CHILD_EXIT_SETUP);
    signal(SIGPIPE, SIG_DFL);

    uint8_t *out = locked_map(lim->result_max);
    uint8_t *scratch = locked_map(lim->scratch_bytes);
    if (out == NULL || scratch == NULL)
        _exit(CHILD_EXIT_SETUP);

    size_t vm = child_vm_bytes();
    struct rlimit cpu = {lim->cpu_seconds, (rlim_t)lim->cpu_seconds + 1};
    struct rlimit as = {vm + lim->mem_bytes, vm + lim->mem_bytes};
    struct rlimit zero = {0, 0};
    struct rlimit nofile = {RESULT_FD + 1, RESULT_FD + 1};
    if (vm == 0 || setrlimit(RLIMIT_CPU, &cpu) != 0 || setrlimit(RLIMIT_AS, &as) != 0 ||
        setrlimit(RLIMIT_FSIZE, &zero) != 0 || setrlimit(RLIMIT_CORE, &zero) != 0 ||
        setrlimit(RLIMIT_NOFILE, &nofile) != 0)
        _exit(CHILD_EXIT_SETUP);
    if (geteuid() == 0 || getuid() == 0) {
        if (setgroups(0, NULL) != 0 || setresgid(NOBODY_ID, NOBODY_ID, NOBODY_ID) != 0 ||
            setresuid(NOBODY_ID, NOBODY_ID, NOBODY_ID) != 0)
            _exit(CHILD_EXIT_SETUP);
    }
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || load_filter() != 0)
        _exit(CHILD_EXIT_SETUP);

    luna_tee_job_io io = {in, in_len, out, lim->result_max, 0, scratch, lim->scratch_bytes};
    int rc = job(&io);
    int code = 0;
    if (rc != 0)
        code = rc > 0 && rc < 100 ? rc : 99;
    else if (io.out_len > lim->result_max)
        code = CHILD_EXIT_BADLEN;
    else if (write_all(RESULT_FD, out, io.out_len) != 0)
        code = CHILD_EXIT_WRITE;
    luna_wipe(out, lim->result_max);
    luna_wipe(scratch, lim->scratch_bytes);
    _exit(code);
}

/* ---- parent side ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void classify(int status, bool killed_by_us, bool too_large, luna_tee_job_result *out)
{
    if (too_large) {
        out->outcome = LUNA_TEE_JOB_TOO_LARGE;
    } else if (killed_by_us) {
        out->outcome = LUNA_TEE_JOB_TIMEOUT;
    } else if (WIFSIGNALED(status)) {
        out->signal = WTERMSIG(status);
        if (out->signal == SIGSYS)
            out->outcome = LUNA_TEE_JOB_SYSCALL;
        else if (out->signal == SIGXCPU || out->signal == SIGKILL)
            out->outcome = LUNA_TEE_JOB_CPU; /* RLIMIT_CPU soft, then hard */
        else
            out->outcome = LUNA_TEE_JOB_CRASHED;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        out->outcome = LUNA_TEE_JOB_OK;
    } else {
        out->outcome = LUNA_TEE_JOB_FAILED;
        out->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
}

luna_err luna_tee_sandbox_run(luna_tee_job_fn job, const uint8_t *in, size_t in_len,
                              const luna_tee_limits *limits, luna_tee_job_result *out,
                              void (*on_start)(pid_t pid, void *arg), void *on_start_arg)
{
    if (job == NULL || limits == NULL || out == NULL || (in == NULL && in_len > 0))
        return LUNA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if (!limits_ok(limits))
        return LUNA_ERR_INVALID_ARG;
    static const uint8_t empty[1];
    if (in == NULL)
        in = empty;
    /* Jobs may hash with libcrypto and parse with jansson; their lazy
       first-use setup reads openssl.cnf and /dev/urandom, which the filter
       forbids, so do it here, before fork. */
    json_object_seed(0);
    uint8_t warm[LUNA_SHA256_LEN];
    if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1)
        return LUNA_ERR_CRYPTO;
    LUNA_GUARD(luna_sha256(empty, 0, warm));

    luna_err err;
    luna_secret *res = NULL;
    int pfd[2] = {-1, -1};
    int pidfd = -1;
    pid_t pid = -1;
    bool killed = false, too_large = false, eof = false, exited = false;
    size_t got = 0;
    int status = 0;

    LUNA_TRY(luna_secret_new(limits->result_max, &res), out_err);
    LUNA_TRY_ENSURE(pipe2(pfd, O_CLOEXEC) == 0, LUNA_ERR_IO, out_err);
    pid_t parent = getpid();
    pid = fork();
    LUNA_TRY_ENSURE(pid >= 0, LUNA_ERR_IO, out_err);
    if (pid == 0) {
        close(pfd[0]);
        child_main(job, in, in_len, limits, pfd[1], parent);
    }
    close(pfd[1]);
    pfd[1] = -1;
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        kill(pid, SIGKILL);
        (void)waitpid(pid, NULL, 0);
        pid = -1;
        err = LUNA_ERR_INTERNAL;
        goto out_err;
    }
    if (on_start != NULL)
        on_start(pid, on_start_arg);

    int64_t deadline = now_ms() + limits->wall_ms;
    while (!eof || !exited) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            killed = true;
            break;
        }
        struct pollfd p[2] = {{eof ? -1 : pfd[0], POLLIN, 0}, {exited ? -1 : pidfd, POLLIN, 0}};
        int n = poll(p, 2, (int)(left > 1000 ? 1000 : left));
        if (n < 0 && errno != EINTR) {
            killed = true;
            break;
        }
        if (n <= 0)
            continue;
        if (p[1].revents != 0)
            exited = true;
        if (p[0].revents != 0) {
            uint8_t spill[1];
            ssize_t r;
            if (got < limits->result_max)
                r = read(pfd[0], luna_secret_data(res) + got, limits->result_max - got);
            else
                r = read(pfd[0], spill, sizeof(spill));
            if (r < 0 && errno != EINTR && errno != EAGAIN) {
                killed = true;
                break;
            }
            if (r == 0)
                eof = true;
            else if (r > 0 && got >= limits->result_max) {
                too_large = true;
                luna_wipe(spill, sizeof(spill));
                break;
            } else if (r > 0) {
                got += (size_t)r;
            }
        }
    }
    if (killed || too_large)
        kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    pid = -1;
    classify(status, killed, too_large, out);
    if (out->outcome == LUNA_TEE_JOB_OK) {
        out->data = res;
        out->len = got;
        res = NULL;
    }
    err = LUNA_OK;
    goto out;

out_err:
    memset(out, 0, sizeof(*out));
out:
    luna_secret_free(res);
    if (pfd[0] >= 0)
        close(pfd[0]);
    if (pfd[1] >= 0)
        close(pfd[1]);
    if (pidfd >= 0)
        close(pidfd);
    return err;
}

void luna_tee_job_result_clear(luna_tee_job_result *r)
{
    if (r == NULL)
        return;
    luna_secret_free(r->data);
    memset(r, 0, sizeof(*r));
}
