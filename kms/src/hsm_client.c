/*
 * hsm_client.c - the KMS side of the HSM privilege separation
 * (hsm_client.h).
 *
 * Owns the HSM child process, its channel and the restart policy.  It must
 * never load a PKCS#11 module or read the PIN (it passes only the PIN
 * file's path), never accept a reply that is not exactly the one it
 * expects (same id, the matching type, exact size), never retry a request
 * on the caller's behalf, and never substitute software crypto when the
 * HSM is down.  Buffers that carried key material are wiped after every
 * request.  The HSM child gets only the environment listed in the config
 * and, when the KMS is root, never runs as root: the uid switch happens
 * between fork and exec, where only async-signal-safe calls are made.
 */
#include "hsm_client.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "luna/bytes.h"
#include "luna/log.h"

#ifndef LUNA_KMS_HSM_DEFAULT_PATH
#define LUNA_KMS_HSM_DEFAULT_PATH "/usr/local/libexec/luna-kms-hsm"
#endif

#define COMPONENT "kms"
#define PATH_MAX_LEN 4096
#define EXIT_WAIT_MS 2000
#define DEFAULT_HSM_USER "lunal-hsm"
#define ENV_NAMES_MAX 16
#define ENV_NAME_MAX 64
#define ENV_VALUE_MAX 4096
#define PWBUF_MAX 65536

struct luna_hsm_client {
    pthread_mutex_t mu;
    char *hsm_path;
    char *module_path;
    char *token_label;
    char *pin_file;
    char *root_label;
    char *mac_label;
    uint32_t request_timeout_ms;
    uint32_t start_timeout_ms;
    uint32_t backoff_min_ms;
    uint32_t backoff_max_ms;
    bool switch_uid; /* KMS is root: the child runs as uid/gid, no groups */
    uid_t uid;
    gid_t gid;
    char **envp; /* the child's whole environment, NULL-terminated */

    int fd;    /* our end of the channel, -1 while down */
    pid_t pid; /* the HSM process, 0 while down */
    uint32_t next_id;
    uint32_t backoff_ms;
    uint64_t next_start_ms; /* no restart before this (monotonic) */
    int last_status;        /* wait status of the last reaped HSM, -1 if none */

    uint8_t out[LUNA_HSM_MSG_MAX];
    uint8_t in[LUNA_HSM_MSG_MAX + 1]; /* one spare byte detects an overlong datagram */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static luna_err dup_str(const char *s, size_t max, bool absolute, char **out)
{
    size_t n;
    LUNA_ENSURE(s != NULL, LUNA_ERR_INVALID_ARG);
    n = strlen(s);
    LUNA_ENSURE(n >= 1 && n <= max, LUNA_ERR_CONFIG);
    LUNA_ENSURE(!absolute || s[0] == '/', LUNA_ERR_CONFIG);
    *out = strdup(s);
    LUNA_ENSURE(*out != NULL, LUNA_ERR_NOMEM);
    return LUNA_OK;
}

static void wipe_io(luna_hsm_client *c)
{
    luna_wipe(c->out, sizeof(c->out));
    luna_wipe(c->in, sizeof(c->in));
}

/* Waits for pid up to wait_ms, then kills it; always reaps. */
static int reap(pid_t pid, uint32_t wait_ms)
{
    uint64_t deadline = now_ms() + wait_ms;
    int st = -1;

    for (;;) {
        pid_t r = waitpid(pid, &st, wait_ms == 0 ? 0 : WNOHANG);
        if (r == pid)
            return st;
        if (r < 0 && errno != EINTR)
            return -1;
        if (r == 0 && now_ms() >= deadline) {
            (void)kill(pid, SIGKILL);
            wait_ms = 0;
            continue;
        }
        if (r == 0) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            (void)nanosleep(&ts, NULL);
        }
    }
}

/*
 * The channel is no longer trustworthy: kill the HSM process (it may be
 * hung or compromised, so no grace period), reap it, and schedule the next
 * start after the current backoff.
 */
static void teardown(luna_hsm_client *c, const char *why)
{
    if (c->pid > 0) {
        (void)kill(c->pid, SIGKILL);
        c->last_status = reap(c->pid, 0);
    }
    if (c->fd >= 0)
        (void)close(c->fd);
    c->fd = -1;
    c->pid = 0;
    c->next_start_ms = now_ms() + c->backoff_ms;
    LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "hsm process lost", LUNA_LOG_STR("reason", why),
              LUNA_LOG_INT("wait_status", c->last_status),
              LUNA_LOG_UINT("retry_in_ms", c->backoff_ms));
    c->backoff_ms = c->backoff_ms >= c->backoff_max_ms / 2 ? c->backoff_max_ms
                                                           : c->backoff_ms * 2;
}

/* One datagram within timeout_ms; LUNA_ERR_UNAVAILABLE on EOF, error or timeout. */
static luna_err recv_msg(luna_hsm_client *c, uint32_t timeout_ms, size_t *n, const char **why)
{
    uint64_t deadline = now_ms() + timeout_ms;
    ssize_t r;

    for (;;) {
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        uint64_t now = now_ms();
        int pr;
        if (now >= deadline) {
            *why = "timeout";
            return LUNA_ERR_UNAVAILABLE;
        }
        pr = poll(&pfd, 1, (int)(deadline - now));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0) {
            *why = "poll failed";
            return LUNA_ERR_UNAVAILABLE;
        }
        if (pr > 0)
            break;
    }
    do {
        r = recv(c->fd, c->in, sizeof(c->in), MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    if (r <= 0) {
        *why = r == 0 ? "eof" : "recv failed";
        return LUNA_ERR_UNAVAILABLE;
    }
    *n = (size_t)r;
    return LUNA_OK;
}

static luna_err send_raw(luna_hsm_client *c, const uint8_t *p, size_t n, const char **why)
{
    ssize_t r;
    do {
        r = send(c->fd, p, n, MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    if (r != (ssize_t)n) {
        *why = "send failed";
        return LUNA_ERR_UNAVAILABLE;
    }
    return LUNA_OK;
}

/*
 * The forked child: default signal dispositions, the channel on fd 3 and
 * nothing else inheritable, the HSM identity when the KMS is root, then
 * exec with the minimal environment.  Async-signal-safe calls only (the
 * KMS may be multi-threaded); any failure is an exit the parent sees as
 * EOF before READY.
 */
static void child_exec(const luna_hsm_client *c, int chan, char *const argv[])
{
    struct sigaction dfl;
    sigset_t none;
    int sig;

    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    (void)sigemptyset(&dfl.sa_mask);
    for (sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)sigaction(sig, &dfl, NULL);
    }
    if (dup2(chan, LUNA_HSM_IPC_FD) != LUNA_HSM_IPC_FD)
        _exit(127);
    /* Whatever the KMS opened without O_CLOEXEC does not cross exec. */
    (void)close_range(LUNA_HSM_IPC_FD + 1, ~0U, CLOSE_RANGE_CLOEXEC);
    if (c->switch_uid) {
        uid_t ru, eu, su;
        gid_t rg, eg, sg;
        /* Groups first: once the uid is gone we could not drop them. */
        if (setgroups(0, NULL) != 0 || setresgid(c->gid, c->gid, c->gid) != 0 ||
            setresuid(c->uid, c->uid, c->uid) != 0)
            _exit(126);
        if (getresuid(&ru, &eu, &su) != 0 || ru != c->uid || eu != c->uid || su != c->uid ||
            getresgid(&rg, &eg, &sg) != 0 || rg != c->gid || eg != c->gid || sg != c->gid ||
            getgroups(0, NULL) != 0)
            _exit(126);
    }
    (void)sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    (void)execve(c->hsm_path, argv, c->envp);
    _exit(127);
}

/* Starts the HSM process and waits for its READY. */
static luna_err spawn_hsm(luna_hsm_client *c)
{
    char parent[24];
    char *argv[] = {c->hsm_path,     (char *)"--module",     c->module_path,
                    (char *)"--token", c->token_label,       (char *)"--pin-file",
                    c->pin_file,     (char *)"--parent-pid", parent,
                    (char *)"--root-label", c->root_label,   (char *)"--mac-label",
                    c->mac_label,    NULL};
    sigset_t all, old;
    int sv[2] = {-1, -1};
    pid_t pid = 0;
    luna_hsm_msg m;
    luna_hsm_body b;
    const char *why = "spawn";
    size_t n = 0;
    luna_err err;
    int fork_errno;

    /* Our own pid as the child's getppid() will report it (PID 1 included). */
    (void)snprintf(parent, sizeof(parent), "%ld", (long)getpid());
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return LUNA_ERR_UNAVAILABLE;
    /* dup2 onto itself would keep close-on-exec: keep the child end off fd 3. */
    if (sv[1] == LUNA_HSM_IPC_FD) {
        int moved = fcntl(sv[1], F_DUPFD_CLOEXEC, LUNA_HSM_IPC_FD + 1);
        (void)close(sv[1]);
        sv[1] = moved;
        if (moved < 0) {
            (void)close(sv[0]);
            return LUNA_ERR_UNAVAILABLE;
        }
    }
    /* No KMS signal handler may run in the child before it resets them. */
    (void)sigfillset(&all);
    (void)pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = fork();
    if (pid == 0)
        child_exec(c, sv[1], argv);
    fork_errno = errno;
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    (void)close(sv[1]);
    if (pid < 0) {
        (void)close(sv[0]);
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "hsm process spawn failed",
                  LUNA_LOG_INT("errno", fork_errno), LUNA_LOG_STR("path", c->hsm_path));
        return LUNA_ERR_UNAVAILABLE;
    }
    c->fd = sv[0];
    c->pid = pid;

    LUNA_TRY(recv_msg(c, c->start_timeout_ms, &n, &why), fail);
    why = "malformed ready";
    LUNA_TRY_ENSURE(luna_hsm_msg_parse(c->in, n, &m) == LUNA_OK &&
                        m.type == LUNA_HSM_MSG_READY && m.id == 0 &&
                        luna_hsm_body_parse(&m, &b) == LUNA_OK,
                    LUNA_ERR_UNAVAILABLE, fail);
    if (b.err != 0) {
        err = (luna_err)b.err;
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "hsm process refused to start",
                  LUNA_LOG_ERR("err", err), LUNA_LOG_UINT("ck_rv", b.rv));
        /* It exits on its own after a refused start. */
        (void)close(c->fd);
        c->last_status = reap(c->pid, EXIT_WAIT_MS);
        c->fd = -1;
        c->pid = 0;
        return err;
    }
    c->next_id = 1;
    LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "hsm process ready", LUNA_LOG_INT("pid", (int64_t)pid));
    return LUNA_OK;
fail:
    teardown(c, why);
    return err;
}

/* Brings the HSM process up if it is down and its backoff has passed. */
static luna_err ensure_up(luna_hsm_client *c)
{
    luna_err err;

    if (c->pid > 0)
        return LUNA_OK;
    if (now_ms() < c->next_start_ms)
        return LUNA_ERR_UNAVAILABLE;
    err = spawn_hsm(c);
    if (err == LUNA_OK) {
        c->backoff_ms = c->backoff_min_ms;
        return LUNA_OK;
    }
    if (c->pid == 0 && c->fd < 0 && c->next_start_ms <= now_ms()) {
        /* A refused start is also rate-limited (teardown did it otherwise). */
        c->next_start_ms = now_ms() + c->backoff_ms;
        c->backoff_ms = c->backoff_ms >= c->backoff_max_ms / 2 ? c->backoff_max_ms
                                                               : c->backoff_ms * 2;
    }
    return err;
}

/*
 * Sends what is in c->out[0..len) as request id, waits for the reply and
 * checks it: same id, and either want_type or ERROR, body exact.  *reply
 * points into c->in.  The caller holds the mutex and wipes the buffers.
 */
static luna_err exchange(luna_hsm_client *c, size_t len, uint32_t id, uint16_t want_type,
                         luna_hsm_body *reply)
{
    luna_hsm_msg m;
    const char *why = NULL;
    size_t n = 0;
    luna_err err;

    LUNA_TRY(send_raw(c, c->out, len, &why), lost);
    LUNA_TRY(recv_msg(c, c->request_timeout_ms, &n, &why), lost);
    why = "malformed reply";
    LUNA_TRY_ENSURE(luna_hsm_msg_parse(c->in, n, &m) == LUNA_OK && m.id == id &&
                        (m.type == want_type || m.type == LUNA_HSM_MSG_ERROR) &&
                        luna_hsm_body_parse(&m, reply) == LUNA_OK,
                    LUNA_ERR_UNAVAILABLE, lost);
    if (m.type == LUNA_HSM_MSG_ERROR) {
        err = (luna_err)reply->err;
        LUNA_LOGF(LUNA_LOG_WARN, COMPONENT, "hsm request failed", LUNA_LOG_ERR("err", err),
                  LUNA_LOG_UINT("reply_to", want_type - 1u), LUNA_LOG_UINT("ck_rv", reply->rv));
        /* The HSM process exits after a device or session error. */
        if (err == LUNA_ERR_UNAVAILABLE)
            teardown(c, "token unavailable");
        return err;
    }
    return LUNA_OK;
lost:
    teardown(c, why);
    return err;
}

static luna_err request(luna_hsm_client *c, luna_hsm_msg_type type, const luna_hsm_body *body,
                        uint16_t want_type, luna_hsm_body *reply)
{
    luna_wbuf w;
    uint32_t id;

    LUNA_GUARD(ensure_up(c));
    id = c->next_id++;
    if (c->next_id == 0)
        c->next_id = 1; /* id 0 is READY's */
    luna_wbuf_init(&w, c->out, sizeof(c->out));
    LUNA_GUARD(luna_hsm_msg_build(&w, type, id, body));
    return exchange(c, w.len, id, want_type, reply);
}

/*
 * hsm_user as a passwd name, else as a decimal uid (its passwd gid if it
 * has an entry, else gid = uid).  Never uid 0 or gid 0.
 */
static luna_err resolve_user(const char *name, uid_t *uid, gid_t *gid)
{
    struct passwd pw, *res = NULL;
    char *buf;
    long sz = sysconf(_SC_GETPW_R_SIZE_MAX);
    unsigned long v = 0;
    size_t i, n = strlen(name);
    bool numeric = n >= 1 && n <= 9;
    luna_err err = LUNA_OK;

    for (i = 0; i < n && numeric; i++)
        numeric = name[i] >= '0' && name[i] <= '9';
    if (numeric) {
        for (i = 0; i < n; i++)
            v = v * 10 + (unsigned long)(name[i] - '0');
    }
    if (sz <= 0 || sz > PWBUF_MAX)
        sz = 16384;
    buf = malloc((size_t)sz);
    LUNA_ENSURE(buf != NULL, LUNA_ERR_NOMEM);
    if (numeric)
        (void)getpwuid_r((uid_t)v, &pw, buf, (size_t)sz, &res);
    else
        (void)getpwnam_r(name, &pw, buf, (size_t)sz, &res);
    if (res != NULL) {
        *uid = res->pw_uid;
        *gid = res->pw_gid;
    } else if (numeric) {
        *uid = (uid_t)v;
        *gid = (gid_t)v;
    } else {
        err = LUNA_ERR_CONFIG;
    }
    free(buf);
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "hsm user not found", LUNA_LOG_STR("user", name));
        return err;
    }
    if (*uid == 0 || *gid == 0) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "hsm user must not be root",
                  LUNA_LOG_STR("user", name));
        return LUNA_ERR_CONFIG;
    }
    return LUNA_OK;
}

/* Decides the child's identity (hsm_client.h, "Process identity"). */
static luna_err choose_identity(luna_hsm_client *c, const char *hsm_user)
{
    if (geteuid() == 0) {
        LUNA_GUARD(resolve_user(hsm_user != NULL ? hsm_user : DEFAULT_HSM_USER, &c->uid,
                                &c->gid));
        c->switch_uid = true;
        LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "hsm process uid", LUNA_LOG_UINT("uid", c->uid),
                  LUNA_LOG_UINT("gid", c->gid));
        return LUNA_OK;
    }
    if (hsm_user != NULL) {
        uid_t uid = 0;
        gid_t gid = 0;
        LUNA_GUARD(resolve_user(hsm_user, &uid, &gid));
        if (uid != geteuid()) {
            LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "hsm user needs a root kms to switch to",
                      LUNA_LOG_STR("user", hsm_user));
            return LUNA_ERR_CONFIG;
        }
    }
    LUNA_LOGF(LUNA_LOG_WARN, COMPONENT,
              "kms not root: hsm process shares the kms uid, which can read the pin and use "
              "the token (no uid separation)",
              LUNA_LOG_UINT("uid", geteuid()));
    return LUNA_OK;
}

static bool env_name_ok(const char *name)
{
    size_t i, n = strlen(name);
    if (n == 0 || n > ENV_NAME_MAX || strncmp(name, "LD_", 3) == 0 ||
        (name[0] >= '0' && name[0] <= '9'))
        return false;
    for (i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_'))
            return false;
    }
    return true;
}

/* Captures NAME=value for the listed names that are set now; nothing else. */
static luna_err build_env(luna_hsm_client *c, const char *const *keep)
{
    static const char *const default_keep[] = {"SOFTHSM2_CONF", NULL};
    size_t n = 0, i;

    if (keep == NULL)
        keep = default_keep;
    for (i = 0; keep[i] != NULL; i++) {
        LUNA_ENSURE(i < ENV_NAMES_MAX, LUNA_ERR_CONFIG);
        LUNA_ENSURE(env_name_ok(keep[i]), LUNA_ERR_CONFIG);
    }
    c->envp = calloc(i + 1, sizeof(*c->envp));
    LUNA_ENSURE(c->envp != NULL, LUNA_ERR_NOMEM);
    for (i = 0; keep[i] != NULL; i++) {
        const char *v = getenv(keep[i]);
        size_t len;
        if (v == NULL)
            continue;
        LUNA_ENSURE(strlen(v) <= ENV_VALUE_MAX, LUNA_ERR_CONFIG);
        len = strlen(keep[i]) + 1 + strlen(v) + 1;
        c->envp[n] = malloc(len);
        LUNA_ENSURE(c->envp[n] != NULL, LUNA_ERR_NOMEM);
        (void)snprintf(c->envp[n], len, "%s=%s", keep[i], v);
        n++;
    }
    return LUNA_OK;
}

luna_err luna_hsm_client_new(const luna_hsm_config *cfg, luna_hsm_client **out)
{
    luna_hsm_client *c;
    luna_err err;

    LUNA_ENSURE(out != NULL, LUNA_ERR_INVALID_ARG);
    *out = NULL;
    LUNA_ENSURE(cfg != NULL, LUNA_ERR_INVALID_ARG);
    c = calloc(1, sizeof(*c));
    LUNA_ENSURE(c != NULL, LUNA_ERR_NOMEM);
    c->fd = -1;
    c->last_status = -1;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return LUNA_ERR_INTERNAL;
    }
    LUNA_TRY(dup_str(cfg->hsm_path != NULL ? cfg->hsm_path : LUNA_KMS_HSM_DEFAULT_PATH,
                     PATH_MAX_LEN, true, &c->hsm_path),
             fail);
    LUNA_TRY(dup_str(cfg->module_path, PATH_MAX_LEN, true, &c->module_path), fail);
    LUNA_TRY(dup_str(cfg->token_label, 32, false, &c->token_label), fail);
    LUNA_TRY(dup_str(cfg->pin_file, PATH_MAX_LEN, true, &c->pin_file), fail);
    LUNA_TRY(dup_str(cfg->root_label != NULL ? cfg->root_label : "luna-kms-root", 64, false,
                     &c->root_label),
             fail);
    LUNA_TRY(dup_str(cfg->mac_label != NULL ? cfg->mac_label : "luna-kms-registry-mac", 64, false,
                     &c->mac_label),
             fail);
    c->request_timeout_ms = cfg->request_timeout_ms != 0 ? cfg->request_timeout_ms : 5000;
    c->start_timeout_ms = cfg->start_timeout_ms != 0 ? cfg->start_timeout_ms : 10000;
    c->backoff_min_ms = cfg->backoff_min_ms != 0 ? cfg->backoff_min_ms : 100;
    c->backoff_max_ms = cfg->backoff_max_ms != 0 ? cfg->backoff_max_ms : 10000;
    if (c->backoff_max_ms < c->backoff_min_ms)
        c->backoff_max_ms = c->backoff_min_ms;
    c->backoff_ms = c->backoff_min_ms;
    LUNA_TRY(build_env(c, cfg->env_keep), fail);
    LUNA_TRY(choose_identity(c, cfg->hsm_user), fail);
    LUNA_TRY(spawn_hsm(c), fail);
    *out = c;
    return LUNA_OK;
fail:
    luna_hsm_client_free(c);
    return err;
}

void luna_hsm_client_free(luna_hsm_client *c)
{
    if (c == NULL)
        return;
    if (c->fd >= 0)
        (void)close(c->fd); /* EOF: the HSM process logs out and exits */
    if (c->pid > 0)
        (void)reap(c->pid, EXIT_WAIT_MS);
    wipe_io(c);
    free(c->hsm_path);
    free(c->module_path);
    free(c->token_label);
    free(c->pin_file);
    free(c->root_label);
    free(c->mac_label);
    if (c->envp != NULL) {
        size_t i;
        for (i = 0; c->envp[i] != NULL; i++)
            free(c->envp[i]);
        free(c->envp);
    }
    (void)pthread_mutex_destroy(&c->mu);
    free(c);
}

pid_t luna_hsm_client_pid(luna_hsm_client *c)
{
    pid_t pid;
    if (c == NULL)
        return 0;
    (void)pthread_mutex_lock(&c->mu);
    pid = c->pid;
    (void)pthread_mutex_unlock(&c->mu);
    return pid;
}

/* Runs one request whose reply carries nothing to copy out. */
static luna_err simple(luna_hsm_client *c, luna_hsm_msg_type type, const luna_hsm_body *body,
                       uint16_t want)
{
    luna_hsm_body r;
    luna_err err;

    LUNA_ENSURE(c != NULL, LUNA_ERR_INVALID_ARG);
    (void)pthread_mutex_lock(&c->mu);
    err = request(c, type, body, want, &r);
    wipe_io(c);
    (void)pthread_mutex_unlock(&c->mu);
    return err;
}

luna_err luna_hsm_client_ping(luna_hsm_client *c)
{
    return simple(c, LUNA_HSM_MSG_PING, NULL, LUNA_HSM_MSG_PONG);
}

luna_err luna_hsm_client_check_root(luna_hsm_client *c)
{
    return simple(c, LUNA_HSM_MSG_CHECK_ROOT, NULL, LUNA_HSM_MSG_ROOT_OK);
}

luna_err luna_hsm_client_gen_kek(luna_hsm_client *c, uint8_t wrapped[LUNA_HSM_WRAPPED_LEN])
{
    luna_hsm_body r;
    luna_err err;

    LUNA_ENSURE(c != NULL && wrapped != NULL, LUNA_ERR_INVALID_ARG);
    (void)pthread_mutex_lock(&c->mu);
    err = request(c, LUNA_HSM_MSG_GEN_KEK, NULL, LUNA_HSM_MSG_KEK, &r);
    if (err == LUNA_OK)
        memcpy(wrapped, r.wrapped, LUNA_HSM_WRAPPED_LEN);
    wipe_io(c);
    (void)pthread_mutex_unlock(&c->mu);
    return err;
}

/* SEAL and OPEN: the reply size is fixed by the request, checked exactly. */
static luna_err seal_or_open(luna_hsm_client *c, bool seal, const uint8_t *wrapped, const uint8_t *aad,
                      size_t aad_len, const uint8_t *in, size_t in_len, uint8_t *out,
                      size_t out_cap, size_t *out_len)
{
    luna_hsm_body b = {.wrapped = wrapped, .aad = aad, .aad_len = aad_len, .data = in,
                       .data_len = in_len};
    luna_hsm_body r;
    size_t want;
    luna_err err;

    LUNA_ENSURE(c != NULL && wrapped != NULL && in != NULL && out != NULL && out_len != NULL,
                LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(aad != NULL || aad_len == 0, LUNA_ERR_INVALID_ARG);
    *out_len = 0;
    if (seal) {
        LUNA_ENSURE(in_len >= 1, LUNA_ERR_INVALID_ARG);
        LUNA_ENSURE(in_len <= LUNA_HSM_SEAL_MAX, LUNA_ERR_TOO_LARGE);
        want = in_len + LUNA_HSM_SEAL_OVERHEAD;
    } else {
        LUNA_ENSURE(in_len > LUNA_HSM_SEAL_OVERHEAD, LUNA_ERR_FORMAT);
        LUNA_ENSURE(in_len <= LUNA_HSM_SEAL_MAX + LUNA_HSM_SEAL_OVERHEAD, LUNA_ERR_TOO_LARGE);
        want = in_len - LUNA_HSM_SEAL_OVERHEAD;
    }
    LUNA_ENSURE(aad_len <= LUNA_HSM_AAD_MAX, LUNA_ERR_TOO_LARGE);
    LUNA_ENSURE(out_cap >= want, LUNA_ERR_INVALID_ARG);
    (void)pthread_mutex_lock(&c->mu);
    err = request(c, seal ? LUNA_HSM_MSG_SEAL : LUNA_HSM_MSG_OPEN, &b,
                  seal ? LUNA_HSM_MSG_SEALED : LUNA_HSM_MSG_OPENED, &r);
    if (err == LUNA_OK && r.data_len != want) {
        teardown(c, "reply of the wrong size");
        err = LUNA_ERR_UNAVAILABLE;
    }
    if (err == LUNA_OK) {
        memcpy(out, r.data, want);
        *out_len = want;
    }
    wipe_io(c);
    (void)pthread_mutex_unlock(&c->mu);
    return err;
}

luna_err luna_hsm_client_seal(luna_hsm_client *c, const uint8_t wrapped[LUNA_HSM_WRAPPED_LEN],
                              const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                              size_t pt_len, uint8_t *out, size_t out_cap, size_t *out_len)
{
    return seal_or_open(c, true, wrapped, aad, aad_len, pt, pt_len, out, out_cap, out_len);
}

luna_err luna_hsm_client_open(luna_hsm_client *c, const uint8_t wrapped[LUNA_HSM_WRAPPED_LEN],
                              const uint8_t *aad, size_t aad_len, const uint8_t *sealed,
                              size_t sealed_len, uint8_t *out, size_t out_cap, size_t *out_len)
{
    return seal_or_open(c, false, wrapped, aad, aad_len, sealed, sealed_len, out, out_cap, out_len);
}

luna_err luna_hsm_client_gen_data_key(luna_hsm_client *c,
                                      const uint8_t wrapped[LUNA_HSM_WRAPPED_LEN],
                                      const uint8_t *aad, size_t aad_len,
                                      uint8_t key[LUNA_HSM_KEY_LEN],
                                      uint8_t sealed[LUNA_HSM_SEALED_KEY_LEN])
{
    luna_hsm_body b = {.wrapped = wrapped, .aad = aad, .aad_len = aad_len};
    luna_hsm_body r;
    luna_err err;

    LUNA_ENSURE(c != NULL && wrapped != NULL && key != NULL && sealed != NULL,
                LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(aad != NULL || aad_len == 0, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(aad_len <= LUNA_HSM_AAD_MAX, LUNA_ERR_TOO_LARGE);
    (void)pthread_mutex_lock(&c->mu);
    err = request(c, LUNA_HSM_MSG_GEN_DATA_KEY, &b, LUNA_HSM_MSG_DATA_KEY, &r);
    if (err == LUNA_OK) {
        memcpy(key, r.data, LUNA_HSM_KEY_LEN);
        memcpy(sealed, r.data + LUNA_HSM_KEY_LEN, LUNA_HSM_SEALED_KEY_LEN);
    }
    wipe_io(c);
    (void)pthread_mutex_unlock(&c->mu);
    return err;
}

luna_err luna_hsm_client_mac(luna_hsm_client *c, const uint8_t *msg, size_t len,
                             uint8_t tag[LUNA_HSM_MAC_LEN])
{
    luna_hsm_body b = {.data = msg, .data_len = len};
    luna_hsm_body r;
    luna_err err;

    LUNA_ENSURE(c != NULL && tag != NULL && (msg != NULL || len == 0), LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(len <= LUNA_HSM_MAC_MSG_MAX, LUNA_ERR_TOO_LARGE);
    (void)pthread_mutex_lock(&c->mu);
    err = request(c, LUNA_HSM_MSG_MAC_SIGN, &b, LUNA_HSM_MSG_MAC, &r);
    if (err == LUNA_OK)
        memcpy(tag, r.tag, LUNA_HSM_MAC_LEN);
    wipe_io(c);
    (void)pthread_mutex_unlock(&c->mu);
    return err;
}

luna_err luna_hsm_client_mac_verify(luna_hsm_client *c, const uint8_t *msg, size_t len,
                                    const uint8_t tag[LUNA_HSM_MAC_LEN])
{
    luna_hsm_body b = {.data = msg, .data_len = len, .tag = tag};

    LUNA_ENSURE(tag != NULL && (msg != NULL || len == 0), LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(len <= LUNA_HSM_MAC_MSG_MAX, LUNA_ERR_TOO_LARGE);
    return simple(c, LUNA_HSM_MSG_MAC_VERIFY, &b, LUNA_HSM_MSG_MAC_OK);
}

#ifdef LUNA_TESTING
luna_err luna_hsm_client_test_send_raw(luna_hsm_client *c, const uint8_t *msg, size_t len,
                                       int *exit_status)
{
    luna_hsm_body r;
    luna_err err;

    LUNA_ENSURE(c != NULL && msg != NULL && exit_status != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(len <= sizeof(c->out), LUNA_ERR_TOO_LARGE);
    *exit_status = -1;
    (void)pthread_mutex_lock(&c->mu);
    c->last_status = -1;
    err = ensure_up(c);
    if (err == LUNA_OK) {
        memcpy(c->out, msg, len);
        /* Any reply id/type is "wrong" here: id 0 is never a request's. */
        err = exchange(c, len, 0, LUNA_HSM_MSG_PONG, &r);
    }
    *exit_status = c->last_status;
    wipe_io(c);
    (void)pthread_mutex_unlock(&c->mu);
    return err;
}
#endif
