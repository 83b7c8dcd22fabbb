/*
 * test_jobs.c - a TEST-ONLY job bundle (liblunal-test-jobs.so) whose jobs
 * try what the sandbox must stop: open a socket, write or delete a file,
 * exec, spin, sleep, allocate without bound, flood the result pipe; plus
 * echo and hold (keeps the input in memory for a while, for the memory
 * scan test).  Never shipped in a deployment.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "job_abi.h"

const luna_tee_bundle_def *luna_tee_bundle_v1(void);

/* The fd the runtime's sandbox gives the child for its result pipe. */
#define RESULT_FD 3

static int say(luna_tee_job_io *io, const char *what, int err)
{
    int n = snprintf((char *)io->out, io->out_cap, "%s errno=%d", what, err);
    if (n < 0 || (size_t)n >= io->out_cap)
        return 2;
    io->out_len = (size_t)n;
    return 0;
}

static int job_socket(luna_tee_job_io *io)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s >= 0)
        return say(io, "socket-opened", 0);
    return say(io, "socket-refused", errno);
}

static int job_write(luna_tee_job_io *io)
{
    /* The path comes from the input so the test can check the file system. */
    char path[256];
    size_t n = io->in_len < sizeof(path) - 1 ? io->in_len : sizeof(path) - 1;
    memcpy(path, io->in, n);
    path[n] = '\0';
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        ssize_t w = write(fd, "escaped", 7);
        close(fd);
        return say(io, "file-written", w == 7 ? 0 : errno);
    }
    return say(io, "file-refused", errno);
}

static int job_unlink(luna_tee_job_io *io)
{
    char path[256];
    size_t n = io->in_len < sizeof(path) - 1 ? io->in_len : sizeof(path) - 1;
    memcpy(path, io->in, n);
    path[n] = '\0';
    if (unlink(path) == 0)
        return say(io, "file-deleted", 0);
    return say(io, "unlink-refused", errno);
}

static int job_exec(luna_tee_job_io *io)
{
    char *const argv[] = {(char *)"/bin/true", NULL};
    char *const envp[] = {NULL};
    execve("/bin/true", argv, envp);
    return say(io, "exec-refused", errno);
}

static int job_spin(luna_tee_job_io *io)
{
    volatile uint64_t x = 0;
    for (;;)
        x++;
    return say(io, "spin-ended", 0);
}

static int job_sleep(luna_tee_job_io *io)
{
    for (;;) {
        struct timespec ts = {60, 0};
        nanosleep(&ts, NULL);
    }
    return say(io, "sleep-ended", 0);
}

static int job_alloc(luna_tee_job_io *io)
{
    size_t total = 0;
    for (int i = 0; i < 64; i++) {
        size_t chunk = 64u * 1024u * 1024u;
        uint8_t *p = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return say(io, "alloc-refused", errno);
        memset(p, 0x5a, chunk);
        total += chunk;
    }
    return say(io, "allocated-4GiB", (int)(total >> 30));
}

static int job_flood(luna_tee_job_io *io)
{
    /* Bypasses io->out and writes straight into the result pipe. */
    memset(io->out, 'F', io->out_cap);
    for (int i = 0; i < 4096; i++) {
        if (write(RESULT_FD, io->out, io->out_cap) < 0)
            break;
    }
    io->out_len = 0;
    return 0;
}

static int job_echo(luna_tee_job_io *io)
{
    if (io->in_len > io->out_cap)
        return 2;
    memcpy(io->out, io->in, io->in_len);
    io->out_len = io->in_len;
    return 0;
}

/* hold: keeps the input (in scratch as well) for 6 seconds, then echoes it. */
static int job_hold(luna_tee_job_io *io)
{
    if (io->in_len > io->scratch_cap)
        return 2;
    memcpy(io->scratch, io->in, io->in_len);
    struct timespec ts = {6, 0};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return job_echo(io);
}

static int job_fail(luna_tee_job_io *io)
{
    return 7;
}

static const luna_tee_job_def test_jobs[] = {
    {"t_socket", job_socket}, {"t_write", job_write}, {"t_unlink", job_unlink},
    {"t_exec", job_exec},     {"t_spin", job_spin},   {"t_sleep", job_sleep},
    {"t_alloc", job_alloc},   {"t_flood", job_flood}, {"t_echo", job_echo},
    {"t_hold", job_hold},     {"t_fail", job_fail},
};

static const luna_tee_bundle_def test_bundle = {
    LUNA_TEE_JOB_ABI_VERSION, sizeof(test_jobs) / sizeof(test_jobs[0]), test_jobs};

__attribute__((visibility("default"))) const luna_tee_bundle_def *luna_tee_bundle_v1(void)
{
    return &test_bundle;
}
