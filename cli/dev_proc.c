/*
 * dev_proc.c - starting, recording, probing and stopping the processes of
 * the dev platform.
 *
 * Owns: fork/exec of detached components, their pidfiles, and signals to
 * them.  Must never signal a pid it cannot tie to the process it started
 * (pid + kernel start time), never leave a descriptor of lunal open in a
 * child, and never wait without a deadline.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "dev.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define PIDFILE_MAX 64
#define ENV_MAX 256

uint64_t dev_now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void dev_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/*
 * Field 3 (state) and field 22 (starttime) of /proc/<pid>/stat.  The comm
 * field may hold spaces and parentheses, so parsing starts after the LAST
 * ')'.  Returns false when the process does not exist.
 */
static bool proc_stat(pid_t pid, char *state, unsigned long long *start)
{
    char path[64], buf[1024];
    (void)snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    (void)close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (p == NULL || p[1] != ' ')
        return false;
    p += 2;
    *state = *p;
    /* After ')' come fields 3..; starttime is field 22, i.e. the 20th here. */
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (p == NULL)
            return false;
        p++;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno != 0 || end == p)
        return false;
    *start = v;
    return true;
}

bool dev_proc_alive(const dev_pidrec *rec)
{
    if (rec == NULL || rec->pid <= 1)
        return false;
    char state = 0;
    unsigned long long start = 0;
    if (!proc_stat(rec->pid, &state, &start))
        return false;
    return start == rec->start && state != 'Z' && state != 'X';
}

/* Writes "<pid> <start>\n" to path atomically, mode 0600. */
static luna_err write_pidfile(const char *path, const dev_pidrec *rec)
{
    char tmp[DEV_PATH_MAX], line[PIDFILE_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
    LUNA_ENSURE(n > 0 && (size_t)n < sizeof tmp, LUNA_ERR_TOO_LARGE);
    int len = snprintf(line, sizeof line, "%ld %llu\n", (long)rec->pid, rec->start);
    LUNA_ENSURE(len > 0 && (size_t)len < sizeof line, LUNA_ERR_INTERNAL);
    (void)unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return LUNA_ERR_IO;
    bool ok = write(fd, line, (size_t)len) == (ssize_t)len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        (void)unlink(tmp);
        return LUNA_ERR_IO;
    }
    return LUNA_OK;
}

luna_err dev_proc_read_pidfile(const char *pid_path, dev_pidrec *out)
{
    LUNA_ENSURE(pid_path != NULL && out != NULL, LUNA_ERR_INVALID_ARG);
    memset(out, 0, sizeof *out);
    int fd = open(pid_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? LUNA_ERR_NOT_FOUND : LUNA_ERR_IO;
    char buf[PIDFILE_MAX];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    (void)close(fd);
    LUNA_ENSURE(n > 0 && buf[n - 1] == '\n', LUNA_ERR_FORMAT);
    buf[n] = '\0';
    long pid = 0;
    unsigned long long start = 0;
    int used = 0;
    if (sscanf(buf, "%ld %llu\n%n", &pid, &start, &used) != 2 || used != (int)n || pid <= 1 ||
        pid > INT_MAX)
        return LUNA_ERR_FORMAT;
    out->pid = (pid_t)pid;
    out->start = start;
    return LUNA_OK;
}

/* Builds the child's environment: the caller's, then env_extra overriding. */
static char **child_env(char *const env_extra[], char **storage, size_t cap)
{
    size_t n = 0;
    for (char **e = environ; e != NULL && *e != NULL && n + 1 < cap; e++) {
        bool overridden = false;
        const char *eq = strchr(*e, '=');
        size_t klen = eq != NULL ? (size_t)(eq - *e) : strlen(*e);
        for (size_t i = 0; env_extra != NULL && env_extra[i] != NULL; i++)
            if (strncmp(env_extra[i], *e, klen) == 0 && env_extra[i][klen] == '=')
                overridden = true;
        if (!overridden)
            storage[n++] = *e;
    }
    for (size_t i = 0; env_extra != NULL && env_extra[i] != NULL && n + 1 < cap; i++)
        storage[n++] = env_extra[i];
    storage[n] = NULL;
    return storage;
}

/* In the child only: async-signal-safe steps, then exec. */
static void child_exec(char *const argv[], char **envp, const char *cwd, int out_fd, int err_fd,
                       int report_fd, bool new_session)
{
    if (new_session)
        (void)setsid();
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
        dup2(err_fd, STDERR_FILENO) < 0)
        _exit(126);
    if (cwd != NULL && chdir(cwd) != 0)
        _exit(126);
    /* Everything else lunal had open stays out of the component. */
    for (int fd = STDERR_FILENO + 1; fd < 1024; fd++)
        if (fd != report_fd)
            (void)close(fd);
    execve(argv[0], argv, envp);
    int e = errno;
    if (report_fd >= 0)
        (void)!write(report_fd, &e, sizeof e);
    _exit(127);
}

luna_err dev_proc_spawn(char *const argv[], char *const env_extra[], const char *cwd,
                        const char *log_path, const char *pid_path, dev_pidrec *out)
{
    LUNA_ENSURE(argv != NULL && argv[0] != NULL && argv[0][0] == '/' && log_path != NULL &&
                    pid_path != NULL && out != NULL,
                LUNA_ERR_INVALID_ARG);
    memset(out, 0, sizeof *out);
    char *envs[ENV_MAX];
    char **envp = child_env(env_extra, envs, ENV_MAX);
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (log_fd < 0)
        return LUNA_ERR_IO;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        (void)close(log_fd);
        return LUNA_ERR_IO;
    }
    pid_t pid = fork();
    if (pid < 0) {
        (void)close(log_fd);
        (void)close(pfd[0]);
        (void)close(pfd[1]);
        return LUNA_ERR_IO;
    }
    if (pid == 0) {
        (void)close(pfd[0]);
        child_exec(argv, envp, cwd, log_fd, log_fd, pfd[1], true);
    }
    (void)close(log_fd);
    (void)close(pfd[1]);
    /* The pipe closes on a successful exec (O_CLOEXEC); an errno means it failed. */
    int child_errno = 0;
    ssize_t r;
    do {
        r = read(pfd[0], &child_errno, sizeof child_errno);
    } while (r < 0 && errno == EINTR);
    (void)close(pfd[0]);
    if (r > 0) {
        (void)waitpid(pid, NULL, 0);
        return child_errno == ENOENT ? LUNA_ERR_NOT_FOUND : LUNA_ERR_IO;
    }
    char state = 0;
    dev_pidrec rec = {.pid = pid, .start = 0};
    if (!proc_stat(pid, &state, &rec.start)) {
        (void)waitpid(pid, NULL, WNOHANG);
        return LUNA_ERR_IO;
    }
    luna_err err = write_pidfile(pid_path, &rec);
    if (err != LUNA_OK) {
        (void)kill(-pid, SIGKILL);
        (void)waitpid(pid, NULL, 0);
        return err;
    }
    *out = rec;
    return LUNA_OK;
}

/* True while any process of the group exists (zombies of our own reaped). */
static bool group_exists(pid_t pgid)
{
    while (waitpid(pgid, NULL, WNOHANG) > 0) {
    }
    if (kill(-pgid, 0) == 0)
        return true;
    return errno == EPERM;
}

static bool wait_group_gone(pid_t pgid, unsigned ms)
{
    uint64_t end = dev_now_ms() + ms;
    for (;;) {
        if (!group_exists(pgid))
            return true;
        if (dev_now_ms() >= end)
            return false;
        dev_sleep_ms(20);
    }
}

luna_err dev_proc_stop(const dev_pidrec *rec, unsigned grace_ms)
{
    LUNA_ENSURE(rec != NULL, LUNA_ERR_INVALID_ARG);
    if (!dev_proc_alive(rec)) {
        if (rec->pid > 1)
            (void)waitpid(rec->pid, NULL, WNOHANG);
        return LUNA_OK;
    }
    /* The component leads its own group (setsid), so the group holds it and
       every helper it forked (the KMS's HSM process, the TEE runtimes). */
    pid_t pgid = getpgid(rec->pid);
    if (pgid != rec->pid) {
        /* Not a group leader any more: signal only the recorded process. */
        (void)kill(rec->pid, SIGTERM);
        uint64_t end = dev_now_ms() + grace_ms;
        while (dev_proc_alive(rec) && dev_now_ms() < end)
            dev_sleep_ms(20);
        if (dev_proc_alive(rec))
            (void)kill(rec->pid, SIGKILL);
        end = dev_now_ms() + 5000;
        while (dev_proc_alive(rec) && dev_now_ms() < end)
            dev_sleep_ms(20);
        (void)waitpid(rec->pid, NULL, WNOHANG);
        return dev_proc_alive(rec) ? LUNA_ERR_TIMEOUT : LUNA_OK;
    }
    (void)kill(-pgid, SIGTERM);
    if (wait_group_gone(pgid, grace_ms))
        return LUNA_OK;
    (void)kill(-pgid, SIGKILL);
    return wait_group_gone(pgid, 5000) ? LUNA_OK : LUNA_ERR_TIMEOUT;
}

luna_err dev_proc_run(char *const argv[], char *const env_extra[], const char *log_path,
                      char *out, size_t cap, unsigned timeout_ms, int *status)
{
    LUNA_ENSURE(argv != NULL && argv[0] != NULL && argv[0][0] == '/' && log_path != NULL &&
                    status != NULL && (out == NULL || cap > 0),
                LUNA_ERR_INVALID_ARG);
    *status = -1;
    if (out != NULL)
        out[0] = '\0';
    char *envs[ENV_MAX];
    char **envp = child_env(env_extra, envs, ENV_MAX);
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (log_fd < 0)
        return LUNA_ERR_IO;
    int cap_fd[2] = {-1, -1};
    if (out != NULL && pipe2(cap_fd, O_CLOEXEC) != 0) {
        (void)close(log_fd);
        return LUNA_ERR_IO;
    }
    pid_t pid = fork();
    if (pid < 0) {
        (void)close(log_fd);
        if (out != NULL) {
            (void)close(cap_fd[0]);
            (void)close(cap_fd[1]);
        }
        return LUNA_ERR_IO;
    }
    if (pid == 0)
        child_exec(argv, envp, NULL, out != NULL ? cap_fd[1] : log_fd, log_fd, -1, true);
    (void)close(log_fd);
    size_t len = 0;
    uint64_t end = dev_now_ms() + timeout_ms;
    bool timed_out = false;
    if (out != NULL) {
        (void)close(cap_fd[1]);
        for (;;) {
            uint64_t now = dev_now_ms();
            if (now >= end) {
                timed_out = true;
                break;
            }
            struct pollfd p = {.fd = cap_fd[0], .events = POLLIN};
            int pr = poll(&p, 1, (int)(end - now));
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr <= 0) {
                timed_out = pr == 0;
                break;
            }
            char chunk[512];
            ssize_t r = read(cap_fd[0], chunk, sizeof chunk);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            size_t take = (size_t)r;
            if (take > cap - 1 - len)
                take = cap - 1 - len;
            memcpy(out + len, chunk, take);
            len += take;
        }
        out[len] = '\0';
        (void)close(cap_fd[0]);
    }
    int st = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR)
            return LUNA_ERR_IO;
        if (timed_out || dev_now_ms() >= end) {
            timed_out = true;
            (void)kill(-pid, SIGKILL);
            (void)kill(pid, SIGKILL);
            (void)waitpid(pid, &st, 0);
            break;
        }
        dev_sleep_ms(10);
    }
    if (timed_out)
        return LUNA_ERR_TIMEOUT;
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return LUNA_OK;
}
