/*
 * hsm_main.c - luna-kms-hsm, the KMS's privilege-separated HSM process.
 *
 * The only process that loads the PKCS#11 module, holds the session and
 * key handles, and reads the PIN.  It serves typed requests from its
 * parent (the KMS) on the socketpair at descriptor LUNA_HSM_IPC_FD, one at
 * a time, and exits on EOF.  It must never parse anything but those
 * messages, never answer a malformed one (a sibling that sends one is
 * broken or compromised: exit at once, relayd's fatalx), never log the PIN
 * or a key byte, and never keep running with a root key whose attributes
 * are wrong.
 *
 *   luna-kms-hsm --module PATH --token LABEL --pin-file PATH --parent-pid PID
 *                [--root-label LABEL] [--mac-label LABEL]
 *
 * It refuses to run as root (any of real, effective, saved uid 0): the KMS
 * client starts it under its own unprivileged uid when the KMS is root.
 * --parent-pid is the pid of the KMS that spawned it, as that KMS sees
 * itself (getpid()): "is my parent still the KMS" is getppid() == that pid,
 * which also holds when the KMS is PID 1 of a container.
 *
 * Exit codes: 0 parent closed the channel; 2 usage, PIN file refused, or
 * rights not dropped (running as root, parent is not --parent-pid);
 * 3 protocol violation by the parent; 4 token or keys refused at start;
 * 5 token unavailable mid-run (the KMS restarts us).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "hsm_ipc.h"
#include "hsm_p11.h"
#include "luna/bytes.h"
#include "luna/log.h"
#include "luna/secret.h"

#define COMPONENT "kms-hsm"
#define PIN_MAX 256

enum {
    EXIT_EOF = 0,
    EXIT_USAGE = 2,
    EXIT_PROTOCOL = 3,
    EXIT_REFUSED = 4,
    EXIT_UNAVAILABLE = 5,
};

typedef struct hsm_args {
    const char *module;
    const char *token;
    const char *pin_file;
    const char *root_label;
    const char *mac_label;
    pid_t parent;
} hsm_args;

/* One process-wide state, as relayd keeps one struct per process. */
typedef struct hsm_state {
    luna_p11 *p11;
    uint8_t in[LUNA_HSM_MSG_MAX + 1];
    uint8_t out[LUNA_HSM_MSG_MAX];
    uint8_t work[LUNA_HSM_SEAL_MAX + LUNA_HSM_SEAL_OVERHEAD + LUNA_HSM_KEY_LEN];
} hsm_state;

static hsm_state g_state;

static void wipe_buffers(hsm_state *s)
{
    luna_wipe(s->in, sizeof(s->in));
    luna_wipe(s->out, sizeof(s->out));
    luna_wipe(s->work, sizeof(s->work));
}

/* Fatal exit: buffers wiped, no atexit handlers, nothing flushed. */
static void die(hsm_state *s, int code)
{
    wipe_buffers(s);
    _exit(code);
}

/* A pid in decimal, 1..INT32_MAX, no sign, no leading zero, nothing after. */
static int parse_pid(const char *s, pid_t *out)
{
    long v = 0;
    size_t i, n = strlen(s);
    if (n == 0 || n > 10 || s[0] == '0')
        return -1;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v > 0x7fffffffL)
        return -1;
    *out = (pid_t)v;
    return 0;
}

static int parse_args(int argc, char **argv, hsm_args *a)
{
    const char *parent = NULL;
    int i;
    *a = (hsm_args){.root_label = "luna-kms-root", .mac_label = "luna-kms-registry-mac"};
    for (i = 1; i < argc; i += 2) {
        const char **slot = NULL;
        if (i + 1 >= argc)
            return -1;
        if (strcmp(argv[i], "--parent-pid") == 0)
            slot = &parent;
        else if (strcmp(argv[i], "--module") == 0)
            slot = &a->module;
        else if (strcmp(argv[i], "--token") == 0)
            slot = &a->token;
        else if (strcmp(argv[i], "--pin-file") == 0)
            slot = &a->pin_file;
        else if (strcmp(argv[i], "--root-label") == 0)
            slot = &a->root_label;
        else if (strcmp(argv[i], "--mac-label") == 0)
            slot = &a->mac_label;
        else
            return -1;
        *slot = argv[i + 1];
    }
    if (parent == NULL || parse_pid(parent, &a->parent) != 0)
        return -1;
    return a->module != NULL && a->token != NULL && a->pin_file != NULL ? 0 : -1;
}

/*
 * Reads the PIN: a regular file owned by us (one we may not open, e.g.
 * root's while we run as the HSM user, is LUNA_ERR_PERMISSION), no
 * group/other access, at
 * most PIN_MAX bytes, one trailing newline dropped.  The bytes go straight
 * into a luna_secret; the stack buffer is wiped on every path.
 */
static luna_err read_pin(const char *path, luna_secret **out)
{
    uint8_t buf[PIN_MAX + 1];
    struct stat st;
    size_t n = 0;
    luna_err err = LUNA_OK;
    int fd;

    *out = NULL;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return errno == EACCES || errno == EPERM ? LUNA_ERR_PERMISSION : LUNA_ERR_CONFIG;
    LUNA_TRY_ENSURE(fstat(fd, &st) == 0 && S_ISREG(st.st_mode), LUNA_ERR_CONFIG, out);
    LUNA_TRY_ENSURE((st.st_mode & 077) == 0, LUNA_ERR_PERMISSION, out);
    LUNA_TRY_ENSURE(st.st_uid == geteuid(), LUNA_ERR_PERMISSION, out);
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - n);
        if (r < 0 && errno == EINTR)
            continue;
        LUNA_TRY_ENSURE(r >= 0, LUNA_ERR_IO, out);
        if (r == 0)
            break;
        n += (size_t)r;
        LUNA_TRY_ENSURE(n <= PIN_MAX, LUNA_ERR_TOO_LARGE, out);
    }
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    LUNA_TRY_ENSURE(n > 0, LUNA_ERR_CONFIG, out);
    LUNA_TRY(luna_secret_from(buf, n, out), out);
out:
    luna_wipe(buf, sizeof(buf));
    (void)close(fd);
    return err;
}

/*
 * Drops what this process can drop before it touches the token: no core
 * dumps or ptrace (luna_process_harden), no privilege gain through exec,
 * die with the parent, default signal dispositions, stdin on /dev/null,
 * no descriptor but 0-2 and the channel.  The module still needs the token
 * folder, so no filesystem confinement yet (docs/kms-hsm.md).
 *
 * PDEATHSIG fires when the THREAD that forked us exits, not the process:
 * the KMS must spawn (luna_hsm_client_new and every call that may restart
 * us) from long-lived threads only (hsm_client.h).
 */
static int drop_rights(pid_t parent)
{
    uid_t ru, eu, su;
    int sig, fd;

    if (getresuid(&ru, &eu, &su) != 0 || ru == 0 || eu == 0 || su == 0) {
        errno = EPERM;
        return -1; /* root holds every PIN file: never serve as root */
    }
    if (luna_process_harden() != LUNA_OK)
        return -1;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
        return -1;
    /*
     * Checked after PDEATHSIG is armed, so a KMS that dies in between is
     * seen here and one that dies later kills us.  Reparenting (to 1 or a
     * subreaper) changes getppid(); a KMS that is itself PID 1 does not.
     */
    if (getppid() != parent) {
        errno = ESRCH;
        return -1;
    }
    for (sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)signal(sig, SIG_DFL);
    }
    /* EPIPE from send is handled; the signal would only kill us silently. */
    (void)signal(SIGPIPE, SIG_IGN);
    if (close_range(LUNA_HSM_IPC_FD + 1, ~0U, 0) != 0)
        return -1;
    fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fd != STDIN_FILENO) {
        if (dup2(fd, STDIN_FILENO) < 0)
            return -1;
        (void)close(fd);
    }
    return 0;
}

static luna_err send_msg(hsm_state *s, luna_hsm_msg_type type, uint32_t id,
                         const luna_hsm_body *b)
{
    luna_wbuf w;
    ssize_t r;

    luna_wbuf_init(&w, s->out, sizeof(s->out));
    LUNA_GUARD(luna_hsm_msg_build(&w, type, id, b));
    do {
        r = send(LUNA_HSM_IPC_FD, w.data, w.len, MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    luna_wipe(s->out, w.len);
    LUNA_ENSURE(r == (ssize_t)w.len, LUNA_ERR_IO);
    return LUNA_OK;
}

static void send_error(hsm_state *s, uint32_t id, luna_err e)
{
    luna_hsm_body b = {.err = (uint32_t)e, .rv = (uint32_t)luna_p11_last_rv(s->p11)};
    if (send_msg(s, LUNA_HSM_MSG_ERROR, id, &b) != LUNA_OK)
        die(s, EXIT_EOF);
}

/* Serves one well-formed request; the reply is either its type or ERROR. */
static luna_err serve(hsm_state *s, const luna_hsm_msg *m, const luna_hsm_body *b)
{
    luna_hsm_body r = {0};
    luna_hsm_msg_type rt;

    switch (m->type) {
    case LUNA_HSM_MSG_PING:
        rt = LUNA_HSM_MSG_PONG;
        break;
    case LUNA_HSM_MSG_CHECK_ROOT:
        LUNA_GUARD(luna_p11_check_root(s->p11));
        LUNA_GUARD(luna_p11_check_mac(s->p11));
        rt = LUNA_HSM_MSG_ROOT_OK;
        break;
    case LUNA_HSM_MSG_GEN_KEK:
        LUNA_GUARD(luna_p11_gen_kek(s->p11, s->work));
        r.wrapped = s->work;
        rt = LUNA_HSM_MSG_KEK;
        break;
    case LUNA_HSM_MSG_SEAL:
        LUNA_GUARD(luna_p11_seal(s->p11, b->wrapped, b->aad, b->aad_len, b->data, b->data_len,
                                 s->work));
        r.data = s->work;
        r.data_len = b->data_len + LUNA_HSM_SEAL_OVERHEAD;
        rt = LUNA_HSM_MSG_SEALED;
        break;
    case LUNA_HSM_MSG_OPEN:
        LUNA_GUARD(luna_p11_open_sealed(s->p11, b->wrapped, b->aad, b->aad_len, b->data,
                                        b->data_len, s->work));
        r.data = s->work;
        r.data_len = b->data_len - LUNA_HSM_SEAL_OVERHEAD;
        rt = LUNA_HSM_MSG_OPENED;
        break;
    case LUNA_HSM_MSG_GEN_DATA_KEY:
        /* key || seal(key): the caller gets the key to use and its stored form. */
        LUNA_GUARD(luna_p11_random(s->p11, s->work, LUNA_HSM_KEY_LEN));
        LUNA_GUARD(luna_p11_seal(s->p11, b->wrapped, b->aad, b->aad_len, s->work,
                                 LUNA_HSM_KEY_LEN, s->work + LUNA_HSM_KEY_LEN));
        r.data = s->work;
        r.data_len = LUNA_HSM_KEY_LEN + LUNA_HSM_SEALED_KEY_LEN;
        rt = LUNA_HSM_MSG_DATA_KEY;
        break;
    case LUNA_HSM_MSG_MAC_SIGN:
        LUNA_GUARD(luna_p11_mac(s->p11, b->data, b->data_len, s->work));
        r.tag = s->work;
        rt = LUNA_HSM_MSG_MAC;
        break;
    case LUNA_HSM_MSG_MAC_VERIFY:
        LUNA_GUARD(luna_p11_mac_verify(s->p11, b->data, b->data_len, b->tag));
        rt = LUNA_HSM_MSG_MAC_OK;
        break;
    default:
        return LUNA_ERR_INTERNAL; /* unreachable: the caller checked the type */
    }
    if (send_msg(s, rt, m->id, &r) != LUNA_OK)
        die(s, EXIT_EOF);
    return LUNA_OK;
}

static void serve_loop(hsm_state *s)
{
    for (;;) {
        luna_hsm_msg m;
        luna_hsm_body b;
        luna_err err;
        ssize_t n;

        n = recv(LUNA_HSM_IPC_FD, s->in, sizeof(s->in), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* the KMS closed the channel or it broke: done */
        if (luna_hsm_msg_parse(s->in, (size_t)n, &m) != LUNA_OK ||
            !luna_hsm_msg_is_request(m.type) || luna_hsm_body_parse(&m, &b) != LUNA_OK) {
            LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "malformed message from kms, exiting",
                      LUNA_LOG_UINT("len", (uint64_t)n));
            die(s, EXIT_PROTOCOL);
        }
        err = serve(s, &m, &b);
        luna_wipe(s->in, (size_t)n);
        luna_wipe(s->work, sizeof(s->work));
        if (err != LUNA_OK) {
            LUNA_LOGF(LUNA_LOG_WARN, COMPONENT, "request failed", LUNA_LOG_UINT("type", m.type),
                      LUNA_LOG_ERR("err", err),
                      LUNA_LOG_UINT("ck_rv", luna_p11_last_rv(s->p11)));
            send_error(s, m.id, err);
            /* A lost session or device cannot heal here; a fresh process can. */
            if (err == LUNA_ERR_UNAVAILABLE)
                die(s, EXIT_UNAVAILABLE);
        }
    }
}

/* Opens the token and the keys; returns the READY status to report. */
static luna_err start_token(hsm_state *s, const hsm_args *a, unsigned long *rv)
{
    luna_secret *pin = NULL;
    luna_err err;

    *rv = 0;
    err = read_pin(a->pin_file, &pin);
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "pin file refused", LUNA_LOG_ERR("err", err));
        return err;
    }
    err = luna_p11_open(a->module, a->token, pin, &s->p11, rv);
    luna_secret_free(pin);
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "token open failed", LUNA_LOG_ERR("err", err),
                  LUNA_LOG_UINT("ck_rv", *rv), LUNA_LOG_STR("token", a->token));
        return err;
    }
    err = luna_p11_ensure_root(s->p11, a->root_label);
    if (err == LUNA_OK)
        err = luna_p11_ensure_mac(s->p11, a->mac_label);
    if (err != LUNA_OK) {
        *rv = luna_p11_last_rv(s->p11);
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "keys refused, not serving",
                  LUNA_LOG_ERR("err", err), LUNA_LOG_UINT("ck_rv", *rv));
    }
    return err;
}

int main(int argc, char **argv)
{
    hsm_state *s = &g_state;
    luna_hsm_body ready = {0};
    unsigned long rv = 0;
    hsm_args a;
    luna_err err;
    int sotype = 0;
    socklen_t sl = sizeof(sotype);

    if (parse_args(argc, argv, &a) != 0) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "usage: luna-kms-hsm --module PATH --token LABEL "
                                             "--pin-file PATH --parent-pid PID [--root-label L] "
                                             "[--mac-label L]",
                  LUNA_LOG_INT("argc", argc));
        return EXIT_USAGE;
    }
    /* The channel must be the SOCK_SEQPACKET end the KMS handed us. */
    if (getsockopt(LUNA_HSM_IPC_FD, SOL_SOCKET, SO_TYPE, &sotype, &sl) != 0 ||
        sotype != SOCK_SEQPACKET) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "no seqpacket channel on fd",
                  LUNA_LOG_INT("fd", LUNA_HSM_IPC_FD));
        return EXIT_USAGE;
    }
    if (drop_rights(a.parent) != 0) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "dropping rights failed", LUNA_LOG_INT("errno", errno));
        return EXIT_USAGE;
    }
    err = start_token(s, &a, &rv);
    ready.err = (uint32_t)err;
    ready.rv = (uint32_t)rv;
    if (send_msg(s, LUNA_HSM_MSG_READY, 0, &ready) != LUNA_OK || err != LUNA_OK) {
        luna_p11_close(s->p11);
        die(s, err == LUNA_OK ? EXIT_EOF : (err == LUNA_ERR_PERMISSION ? EXIT_USAGE : EXIT_REFUSED));
    }
    LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "serving", LUNA_LOG_STR("token", a.token),
              LUNA_LOG_STR("root_label", a.root_label));
    serve_loop(s);
    luna_p11_close(s->p11);
    wipe_buffers(s);
    return EXIT_EOF;
}
