/*
 * devplat.c - start and stop a real embedded platform for the load tests
 * and the end-to-end benchmark (devplat.h).  Owns only its temporary
 * folder and the `lunal dev` processes it runs; must never stop, signal or
 * remove anything of a platform it did not start.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "devplat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define DEVPLAT_UP_DEADLINE_MS 60000u
/* Only a quick failure (a taken port) is worth another try. */
#define DEVPLAT_RETRY_WITHIN_MS 20000u
#define DEVPLAT_DOWN_DEADLINE_MS 60000u
#define DEVPLAT_ENV_CAP 512u
#define DEVPLAT_UP_TRIES 3
/* Random gateway ports: the platform uses a few ports after its base. */
#define DEVPLAT_PORT_LO 20000u
#define DEVPLAT_PORT_SPAN 20000u

static void why_set(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void why_set(char *why, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(why, LUNA_DEVPLAT_WHY_MAX, fmt, ap);
    va_end(ap);
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static luna_err path_join(char *out, size_t cap, const char *a, const char *b)
{
    int n = snprintf(out, cap, "%s/%s", a, b);

    return n > 0 && (size_t)n < cap ? LUNA_OK : LUNA_ERR_TOO_LARGE;
}

/*
 * Runs argv with the caller's environment plus env_add (which wins over a
 * variable of the same name), output appended to log, and waits at most
 * deadline_ms (then SIGKILL).  *status gets the exit status, -1 if killed.
 */
static luna_err run_cmd(char *const argv[], const char *const *env_add, const char *log,
                        unsigned deadline_ms, int *status)
{
    static char *envp[DEVPLAT_ENV_CAP];
    size_t n = 0;

    for (size_t i = 0; env_add != NULL && env_add[i] != NULL && n + 1 < DEVPLAT_ENV_CAP; i++)
        envp[n++] = (char *)(uintptr_t)env_add[i];
    for (char **e = environ; e != NULL && *e != NULL && n + 1 < DEVPLAT_ENV_CAP; e++) {
        const char *eq = strchr(*e, '=');
        size_t klen = eq != NULL ? (size_t)(eq - *e) + 1 : strlen(*e);
        bool shadowed = false;
        for (size_t i = 0; env_add != NULL && env_add[i] != NULL; i++)
            if (strncmp(env_add[i], *e, klen) == 0)
                shadowed = true;
        if (!shadowed)
            envp[n++] = *e;
    }
    envp[n] = NULL;

    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return LUNA_ERR_IO;
    pid_t pid = fork();
    if (pid < 0) {
        (void)close(fd);
        return LUNA_ERR_IO;
    }
    if (pid == 0) {
        int nul = open("/dev/null", O_RDONLY);
        if (nul < 0 || dup2(nul, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(126);
        execve(argv[0], argv, envp);
        _exit(127);
    }
    (void)close(fd);
    uint64_t end = now_ms() + deadline_ms;
    int st = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR)
            return LUNA_ERR_IO;
        if (now_ms() >= end) {
            (void)kill(pid, SIGKILL);
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
            *status = -1;
            return LUNA_ERR_TIMEOUT;
        }
        sleep_ms(50);
    }
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return LUNA_OK;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP || flag == FTW_D)
        (void)rmdir(path);
    else
        (void)unlink(path);
    return 0;
}

static void rm_tree(const char *path)
{
    if (path[0] == '/' && strlen(path) > 5) /* never "/" or a short system path */
        (void)nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static luna_err dev_cmd(const luna_devplat *p, const char *sub, const char *port_env,
                        const char *const *extra_env, unsigned deadline_ms, int *status)
{
    char envdir[LUNA_DEVPLAT_PATH_MAX + 16], log[LUNA_DEVPLAT_PATH_MAX + 16];
    const char *env[LUNA_DEVPLAT_MAX_ENV + 3];
    size_t k = 0;
    char *argv[] = {(char *)(uintptr_t)p->lunal, (char *)"dev", (char *)(uintptr_t)sub, NULL};

    if ((size_t)snprintf(envdir, sizeof envdir, "LUNAL_DEV_DIR=%s", p->state) >= sizeof envdir)
        return LUNA_ERR_TOO_LARGE;
    LUNA_GUARD(path_join(log, sizeof log, p->root, "devup.log"));
    env[k++] = envdir;
    if (port_env != NULL)
        env[k++] = port_env;
    for (size_t i = 0; extra_env != NULL && extra_env[i] != NULL && i < LUNA_DEVPLAT_MAX_ENV; i++)
        env[k++] = extra_env[i];
    env[k] = NULL;
    return run_cmd(argv, env, log, deadline_ms, status);
}

const char *luna_devplat_default_lunal(const char *fallback)
{
    static char path[LUNA_DEVPLAT_PATH_MAX];
    const char *b = getenv("LUNA_BINARY_DIR");

    if (b != NULL && b[0] == '/' && path_join(path, sizeof path, b, "cli/lunal") == LUNA_OK)
        return path;
    return fallback;
}

luna_err luna_devplat_up(luna_devplat *p, const char *lunal_bin, const char *reuse_state,
                         const char *const *extra_env, char *why)
{
    const char *tmp = getenv("TMPDIR");
    int st = 0;
    luna_err err = LUNA_ERR_UNAVAILABLE;

    if (p == NULL || (lunal_bin == NULL && reuse_state == NULL))
        return LUNA_ERR_INVALID_ARG;
    memset(p, 0, sizeof *p);
    if (why != NULL)
        why[0] = 0;
    if (reuse_state != NULL) {
        struct stat sb;
        if ((size_t)snprintf(p->state, sizeof p->state, "%s", reuse_state) >= sizeof p->state)
            return LUNA_ERR_TOO_LARGE;
        LUNA_GUARD(path_join(p->config, sizeof p->config, p->state, "client/client.json"));
        if (stat(p->config, &sb) != 0) {
            why_set(why, "no client config at %s (is the platform up?)", p->config);
            return LUNA_ERR_NOT_FOUND;
        }
        return LUNA_OK;
    }
    if ((size_t)snprintf(p->lunal, sizeof p->lunal, "%s", lunal_bin) >= sizeof p->lunal ||
        (size_t)snprintf(p->root, sizeof p->root, "%s/luna-devplat-XXXXXX",
                         tmp != NULL && tmp[0] == '/' ? tmp : "/tmp") >= sizeof p->root)
        return LUNA_ERR_TOO_LARGE;
    if (access(p->lunal, X_OK) != 0) {
        why_set(why, "%s is not an executable (build the cli first)", p->lunal);
        return LUNA_ERR_NOT_FOUND;
    }
    if (mkdtemp(p->root) == NULL) {
        why_set(why, "mkdtemp: %s", strerror(errno));
        p->root[0] = 0;
        return LUNA_ERR_IO;
    }
    /* As root the KMS's HSM user must pass through to the state's hsm/. */
    if (chmod(p->root, 0711) != 0) {
        err = LUNA_ERR_IO;
        goto fail;
    }
    p->owned = true;
    for (int attempt = 0; attempt < DEVPLAT_UP_TRIES; attempt++) {
        char sub[32], port_env[48];
        uint32_t r = 0;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) {
            err = LUNA_ERR_IO;
            goto fail;
        }
        (void)snprintf(sub, sizeof sub, "state%d", attempt);
        (void)snprintf(port_env, sizeof port_env, "LUNAL_DEV_PORT_BASE=%u",
                       DEVPLAT_PORT_LO + (r % (DEVPLAT_PORT_SPAN / 16u)) * 16u);
        LUNA_TRY(path_join(p->state, sizeof p->state, p->root, sub), fail);
        uint64_t t0 = now_ms();
        err = dev_cmd(p, "up", port_env, extra_env, DEVPLAT_UP_DEADLINE_MS, &st);
        if (err == LUNA_OK && st == 0)
            break;
        /* Whatever half came up is stopped by `dev up` itself; make sure. */
        (void)dev_cmd(p, "down", NULL, NULL, DEVPLAT_DOWN_DEADLINE_MS, &st);
        err = err != LUNA_OK ? err : LUNA_ERR_UNAVAILABLE;
        if (now_ms() - t0 > DEVPLAT_RETRY_WITHIN_MS)
            break;
    }
    if (err != LUNA_OK) {
        why_set(why, "`lunal dev up` failed (%s); see %s/devup.log", luna_strerror(err),
                p->root);
        p->owned = false; /* stopped above; keep the folder for the log */
        return err;
    }
    LUNA_TRY(path_join(p->config, sizeof p->config, p->state, "client/client.json"), fail);
    return LUNA_OK;
fail:
    why_set(why, "cannot prepare %s: %s", p->root, luna_strerror(err));
    luna_devplat_down(p);
    return err;
}

void luna_devplat_down(luna_devplat *p)
{
    int st = 0;

    if (p == NULL || !p->owned)
        return;
    if (p->state[0] != 0)
        (void)dev_cmd(p, "down", NULL, NULL, DEVPLAT_DOWN_DEADLINE_MS, &st);
    if (p->root[0] != 0 && getenv("LUNA_DEVPLAT_KEEP") == NULL)
        rm_tree(p->root);
    p->owned = false;
}

luna_err luna_devplat_component_pid(const luna_devplat *p, const char *component, pid_t *pid)
{
    char rel[96], path[LUNA_DEVPLAT_PATH_MAX + 96], buf[64];
    long v = 0;
    ssize_t n;
    int fd;

    if (p == NULL || component == NULL || pid == NULL ||
        (size_t)snprintf(rel, sizeof rel, "run/%s.pid", component) >= sizeof rel)
        return LUNA_ERR_INVALID_ARG;
    LUNA_GUARD(path_join(path, sizeof path, p->state, rel));
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return LUNA_ERR_NOT_FOUND;
    n = read(fd, buf, sizeof buf - 1);
    (void)close(fd);
    if (n <= 0)
        return LUNA_ERR_FORMAT;
    buf[n] = 0;
    if (sscanf(buf, "%ld", &v) != 1 || v <= 1 || v > 4194304)
        return LUNA_ERR_FORMAT;
    *pid = (pid_t)v;
    return LUNA_OK;
}

/* /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces and ')'. */
static bool proc_parent(pid_t pid, pid_t *ppid, char *comm, size_t cap)
{
    char path[64], buf[512];
    const char *open_p, *close_p;
    long pp = 0;
    char state = 0;
    ssize_t n;
    int fd;

    (void)snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    n = read(fd, buf, sizeof buf - 1);
    (void)close(fd);
    if (n <= 0)
        return false;
    buf[n] = 0;
    open_p = strchr(buf, '(');
    close_p = strrchr(buf, ')');
    if (open_p == NULL || close_p == NULL || close_p < open_p ||
        (size_t)(close_p - open_p - 1) >= cap ||
        sscanf(close_p + 1, " %c %ld", &state, &pp) != 2)
        return false;
    memcpy(comm, open_p + 1, (size_t)(close_p - open_p - 1));
    comm[close_p - open_p - 1] = 0;
    *ppid = (pid_t)pp;
    return state != 'Z' && state != 'X';
}

size_t luna_devplat_children(pid_t parent, const char *comm, pid_t *out, size_t cap)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    size_t n = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL && n < cap) {
        char name[64], *end = NULL;
        pid_t ppid = 0;
        long v = strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end != 0 || v <= 1)
            continue;
        if (proc_parent((pid_t)v, &ppid, name, sizeof name) && ppid == parent &&
            strcmp(name, comm) == 0)
            out[n++] = (pid_t)v;
    }
    (void)closedir(d);
    return n;
}

/* The inode of the IPv4 socket listening on port, from /proc/net/tcp. */
static bool listen_inode(uint16_t port, unsigned long *inode)
{
    FILE *f = fopen("/proc/net/tcp", "re");
    char line[512];
    bool found = false;

    if (f == NULL)
        return false;
    while (!found && fgets(line, sizeof line, f) != NULL) {
        unsigned lport = 0, st = 0;
        unsigned long ino = 0;
        /* sl local:port remote:port st tx:rx tr:when retrnsmt uid timeout inode */
        if (sscanf(line, " %*u: %*x:%x %*x:%*x %x %*x:%*x %*x:%*x %*x %*u %*u %lu", &lport, &st,
                   &ino) == 3 &&
            lport == port && st == 0x0a && ino != 0) {
            *inode = ino;
            found = true;
        }
    }
    (void)fclose(f);
    return found;
}

static bool holds_inode(pid_t pid, unsigned long inode)
{
    char dir[64], want[48];
    DIR *d;
    struct dirent *e;
    bool hit = false;

    (void)snprintf(dir, sizeof dir, "/proc/%ld/fd", (long)pid);
    (void)snprintf(want, sizeof want, "socket:[%lu]", inode);
    d = opendir(dir);
    if (d == NULL)
        return false;
    while (!hit && (e = readdir(d)) != NULL) {
        char link[96], target[64];
        ssize_t n;
        if (e->d_name[0] == '.' ||
            (size_t)snprintf(link, sizeof link, "%s/%s", dir, e->d_name) >= sizeof link)
            continue;
        n = readlink(link, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = 0;
        hit = strcmp(target, want) == 0;
    }
    (void)closedir(d);
    return hit;
}

luna_err luna_devplat_listener(uint16_t port, const pid_t *cands, size_t n, pid_t *out)
{
    unsigned long inode = 0;

    if (cands == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (!listen_inode(port, &inode))
        return LUNA_ERR_NOT_FOUND;
    for (size_t i = 0; i < n; i++)
        if (holds_inode(cands[i], inode)) {
            *out = cands[i];
            return LUNA_OK;
        }
    return LUNA_ERR_NOT_FOUND;
}
