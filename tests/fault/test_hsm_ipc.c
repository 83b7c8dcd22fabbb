/*
 * test_hsm_ipc.c - the HSM privilege-separation boundary under faults:
 * malformed messages are fatal for the HSM process and reported to the
 * client, kill -9 and a hung HSM give LUNA_ERR_UNAVAILABLE, and the
 * automatic restart (bounded exponential backoff) brings service back.
 * The parent check: a KMS that is PID 1 (a container's init) can run its
 * HSM process, and an HSM process whose parent is not the pid it was given
 * refuses to start.
 */
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hsm_client.h"
#include "hsm_test_token.h"
#include "luna_test.h"

static hsm_token g_tok;

static int setup(void **state)
{
    (void)state;
    hsm_token_create(&g_tok, "fault-pin-1234");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hsm_token_destroy(&g_tok);
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static luna_hsm_client *start(void)
{
    luna_hsm_config cfg = hsm_token_config(&g_tok);
    luna_hsm_client *c = NULL;
    assert_luna_ok(luna_hsm_client_new(&cfg, &c));
    return c;
}

static void test_kill9_then_recover(void **state)
{
    (void)state;
    /* A backoff long enough that a loaded machine cannot outrun it. */
    luna_hsm_config cfg = hsm_token_config(&g_tok);
    luna_hsm_client *c = NULL;
    uint8_t kek[LUNA_HSM_WRAPPED_LEN], key[LUNA_HSM_KEY_LEN], sealed[LUNA_HSM_SEALED_KEY_LEN];
    uint8_t back[LUNA_HSM_KEY_LEN];
    size_t n = 0;
    pid_t pid, pid2;

    cfg.backoff_min_ms = 1000;
    cfg.backoff_max_ms = 4000;
    assert_luna_ok(luna_hsm_client_new(&cfg, &c));
    pid = luna_hsm_client_pid(c);

    assert_luna_ok(luna_hsm_client_gen_kek(c, kek));
    assert_luna_ok(luna_hsm_client_gen_data_key(c, kek, NULL, 0, key, sealed));
    assert_int_equal(0, kill(pid, SIGKILL));
    sleep_ms(50);
    /* The HSM is gone: a clear, retryable error, never a software answer. */
    assert_luna_err(LUNA_ERR_UNAVAILABLE,
                    luna_hsm_client_open(c, kek, NULL, 0, sealed, sizeof(sealed), back,
                                         sizeof(back), &n));
    assert_int_equal(0, luna_hsm_client_pid(c));
    /* Inside the backoff window calls fail fast without a restart. */
    assert_luna_err(LUNA_ERR_UNAVAILABLE, luna_hsm_client_ping(c));
    assert_int_equal(0, luna_hsm_client_pid(c));
    sleep_ms(1300);
    /* Restarted: a new process, the same root (the old blobs still open). */
    assert_luna_ok(luna_hsm_client_open(c, kek, NULL, 0, sealed, sizeof(sealed), back,
                                        sizeof(back), &n));
    assert_memory_equal(key, back, sizeof(key));
    pid2 = luna_hsm_client_pid(c);
    assert_true(pid2 > 0);
    assert_int_not_equal(pid, pid2);
    luna_hsm_client_free(c);
}

static void test_hung_hsm_times_out(void **state)
{
    (void)state;
    luna_hsm_config cfg = hsm_token_config(&g_tok);
    luna_hsm_client *c = NULL;
    pid_t pid;

    cfg.request_timeout_ms = 300;
    assert_luna_ok(luna_hsm_client_new(&cfg, &c));
    pid = luna_hsm_client_pid(c);
    assert_int_equal(0, kill(pid, SIGSTOP));
    assert_luna_err(LUNA_ERR_UNAVAILABLE, luna_hsm_client_ping(c));
    /* The client killed and reaped the hung process. */
    assert_int_equal(-1, kill(pid, 0));
    sleep_ms(200);
    assert_luna_ok(luna_hsm_client_ping(c));
    luna_hsm_client_free(c);
}

/* A header: type, reserved, id, payload length (big-endian). */
static size_t hdr(uint8_t *p, uint16_t type, uint16_t reserved, uint32_t id, uint32_t len)
{
    p[0] = (uint8_t)(type >> 8);
    p[1] = (uint8_t)type;
    p[2] = (uint8_t)(reserved >> 8);
    p[3] = (uint8_t)reserved;
    p[4] = (uint8_t)(id >> 24);
    p[5] = (uint8_t)(id >> 16);
    p[6] = (uint8_t)(id >> 8);
    p[7] = (uint8_t)id;
    p[8] = (uint8_t)(len >> 24);
    p[9] = (uint8_t)(len >> 16);
    p[10] = (uint8_t)(len >> 8);
    p[11] = (uint8_t)len;
    return 12;
}

static void test_malformed_is_fatal_for_hsm(void **state)
{
    (void)state;
    luna_hsm_client *c = start();
    static uint8_t m[LUNA_HSM_MSG_MAX];
    struct {
        const char *what;
        size_t len;
    } cases[16];
    size_t n_cases = 0, i;
    int st = 0;

    /* Each case is built into m by the switch below, by index. */
    for (i = 0; i < 12; i++) {
        size_t len = 0;
        memset(m, 0, sizeof(m));
        switch (i) {
        case 0: /* shorter than a header */
            len = 5;
            cases[i].what = "short header";
            break;
        case 1: /* length field one more than the payload */
            len = hdr(m, LUNA_HSM_MSG_PING, 0, 7, 1);
            cases[i].what = "length field too long";
            break;
        case 2: /* one trailing byte on an empty-payload type */
            len = hdr(m, LUNA_HSM_MSG_PING, 0, 7, 1) + 1;
            cases[i].what = "ping with a payload";
            break;
        case 3:
            len = hdr(m, 99, 0, 7, 0);
            cases[i].what = "unknown type";
            break;
        case 4:
            len = hdr(m, LUNA_HSM_MSG_PING, 1, 7, 0);
            cases[i].what = "reserved not zero";
            break;
        case 5: /* a reply type sent as a request */
            len = hdr(m, LUNA_HSM_MSG_READY, 0, 7, 8) + 8;
            cases[i].what = "reply type as request";
            break;
        case 6: /* MAC tag one byte short */
            len = hdr(m, LUNA_HSM_MSG_MAC_VERIFY, 0, 7, 33) + 33;
            cases[i].what = "mac verify short";
            break;
        case 7: /* SEAL whose aad_len runs past the end */
            len = hdr(m, LUNA_HSM_MSG_SEAL, 0, 7, 40 + 2 + 2 + 1);
            m[len + 40] = 0x00;
            m[len + 41] = 0x10;
            len += 45;
            cases[i].what = "seal aad overrun";
            break;
        case 8: /* SEAL with a byte after its plaintext */
            len = hdr(m, LUNA_HSM_MSG_SEAL, 0, 7, 40 + 2 + 2 + 1 + 1);
            m[len + 43] = 1; /* aad_len 0, pt_len 1 */
            len += 46;
            cases[i].what = "seal trailing byte";
            break;
        case 9: /* SEAL with an empty plaintext */
            len = hdr(m, LUNA_HSM_MSG_SEAL, 0, 7, 44) + 44;
            cases[i].what = "seal empty plaintext";
            break;
        case 10: /* MAC_SIGN over its cap, exactly self-consistent */
            len = hdr(m, LUNA_HSM_MSG_MAC_SIGN, 0, 7, 2 + LUNA_HSM_MAC_MSG_MAX + 1);
            m[len] = (uint8_t)((LUNA_HSM_MAC_MSG_MAX + 1) >> 8);
            m[len + 1] = (uint8_t)(LUNA_HSM_MAC_MSG_MAX + 1);
            len += 2 + LUNA_HSM_MAC_MSG_MAX + 1;
            cases[i].what = "mac message over cap";
            break;
        default: /* GEN_KEK with a 4-byte payload: long */
            len = hdr(m, LUNA_HSM_MSG_GEN_KEK, 0, 7, 4) + 4;
            cases[i].what = "gen kek long";
            break;
        }
        cases[i].len = len;
        n_cases++;
        print_message("case: %s\n", cases[i].what);
        /* Between cases the restart backoff must have passed. */
        sleep_ms(200);
        assert_luna_err(LUNA_ERR_UNAVAILABLE, luna_hsm_client_test_send_raw(c, m, len, &st));
        assert_true(WIFEXITED(st));
        assert_int_equal(3, WEXITSTATUS(st)); /* EXIT_PROTOCOL in hsm_main.c */
    }
    assert_int_equal(12, n_cases);
    /* And it still recovers afterwards. */
    sleep_ms(200);
    assert_luna_ok(luna_hsm_client_ping(c));
    luna_hsm_client_free(c);
}

static void test_well_formed_raw_is_served(void **state)
{
    (void)state;
    /* Control for the case above: the same path with a valid PING answers. */
    luna_hsm_client *c = start();
    uint8_t m[12];
    int st = 0;
    size_t len = hdr(m, LUNA_HSM_MSG_PING, 0, 0, 0);
    /* The hook waits for id 0 PONG; the HSM echoes id 0 with PONG. */
    assert_luna_ok(luna_hsm_client_test_send_raw(c, m, len, &st));
    assert_int_equal(-1, st);
    assert_true(luna_hsm_client_pid(c) > 0);
    luna_hsm_client_free(c);
}

static void test_kms_as_pid1(void **state)
{
    (void)state;
    /*
     * The KMS as PID 1 of a new PID namespace (a container's entrypoint):
     * its HSM process sees getppid() == 1, which is its live parent, not a
     * dead one.  Plain exit codes below: no cmocka in the forked processes.
     */
    pid_t outer = fork();
    int st = 0;

    assert_true(outer >= 0);
    if (outer == 0) {
        pid_t init;
        int ist = 0;
        if (unshare(CLONE_NEWPID) != 0)
            _exit(20);
        init = fork();
        if (init < 0)
            _exit(21);
        if (init == 0) {
            luna_hsm_config cfg = hsm_token_config(&g_tok);
            luna_hsm_client *c = NULL;
            luna_err e;
            if (getpid() != 1)
                _exit(22);
            if (luna_hsm_client_new(&cfg, &c) != LUNA_OK)
                _exit(23);
            e = luna_hsm_client_ping(c);
            luna_hsm_client_free(c);
            _exit(e == LUNA_OK ? 0 : 24);
        }
        while (waitpid(init, &ist, 0) < 0) {
        }
        _exit(WIFEXITED(ist) ? WEXITSTATUS(ist) : 25);
    }
    while (waitpid(outer, &st, 0) < 0) {
    }
    assert_true(WIFEXITED(st));
    assert_int_equal(0, WEXITSTATUS(st));
}

/*
 * Runs luna-kms-hsm by hand (as the HSM user when we are root) claiming
 * `claimed` as its parent, stderr into log; returns its pid, *chan our end.
 */
static pid_t exec_hsm(pid_t claimed, const char *log, int *chan)
{
    const char *bin = getenv("LUNA_TEST_HSM_BIN");
    char ppid[24], conf[200];
    int sv[2];
    pid_t pid;

    if (bin == NULL)
        bin = LUNA_TEST_HSM_BIN;
    snprintf(ppid, sizeof(ppid), "%ld", (long)claimed);
    snprintf(conf, sizeof(conf), "SOFTHSM2_CONF=%s", getenv("SOFTHSM2_CONF"));
    assert_int_equal(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
    assert_true(sv[1] != 3);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *argv[] = {(char *)bin,      (char *)"--module",   (char *)HSM_TEST_MODULE,
                        (char *)"--token", (char *)HSM_TEST_LABEL, (char *)"--pin-file",
                        g_tok.pin_file,   (char *)"--parent-pid", ppid,
                        NULL};
        char *envp[] = {conf, NULL};
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || dup2(fd, 2) != 2 || dup2(sv[1], 3) != 3)
            _exit(120);
        if (geteuid() == 0 &&
            (setgroups(0, NULL) != 0 || setresgid(g_tok.gid, g_tok.gid, g_tok.gid) != 0 ||
             setresuid(g_tok.uid, g_tok.uid, g_tok.uid) != 0))
            _exit(121);
        execve(bin, argv, envp);
        _exit(122);
    }
    close(sv[1]);
    *chan = sv[0];
    return pid;
}

static void test_wrong_parent_pid_refused(void **state)
{
    (void)state;
    char log[160];
    uint8_t buf[64];
    struct pollfd pfd;
    int chan = -1, st = 0;
    ssize_t n;
    pid_t pid;
    size_t len = 0;
    uint8_t *text;

    snprintf(log, sizeof(log), "%s/hsm.log", g_tok.dir);
    /* Control: told the truth (we are its parent), it serves: READY, err 0. */
    pid = exec_hsm(getpid(), log, &chan);
    pfd = (struct pollfd){.fd = chan, .events = POLLIN};
    assert_int_equal(1, poll(&pfd, 1, 10000));
    n = recv(chan, buf, sizeof(buf), 0);
    assert_int_equal(12 + 8, n);
    assert_int_equal(LUNA_HSM_MSG_READY, (buf[0] << 8) | buf[1]);
    assert_int_equal(0, buf[12] | buf[13] | buf[14] | buf[15]);
    close(chan);
    assert_int_equal(pid, waitpid(pid, &st, 0));
    assert_true(WIFEXITED(st));
    assert_int_equal(0, WEXITSTATUS(st));

    /* Told a pid that is not its parent (ours, the test runner's): it refuses. */
    pid = exec_hsm(getppid(), log, &chan);
    pfd = (struct pollfd){.fd = chan, .events = POLLIN};
    assert_int_equal(1, poll(&pfd, 1, 10000));
    assert_int_equal(0, recv(chan, buf, sizeof(buf), 0)); /* EOF, never READY */
    close(chan);
    assert_int_equal(pid, waitpid(pid, &st, 0));
    assert_true(WIFEXITED(st));
    assert_int_equal(2, WEXITSTATUS(st));
    text = luna_test_read_file(log, &len);
    assert_non_null(memmem(text, len, "\"dropping rights failed\",\"errno\":3", 34)); /* ESRCH */
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill9_then_recover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hung_hsm_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_is_fatal_for_hsm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_well_formed_raw_is_served, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kms_as_pid1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_parent_pid_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
