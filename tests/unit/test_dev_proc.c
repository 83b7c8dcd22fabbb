/*
 * test_dev_proc.c - the process supervision behind `lunal dev`: a started
 * component is detached (own group), logged and recorded; a pidfile whose
 * start time does not match is never acted on; stop escalates to SIGKILL
 * and takes the helpers of the group with it; runs are bounded.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "luna_test.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dev.h"

static char g_dir[] = "/tmp/luna-devproc-XXXXXX";

static void path_of(const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", g_dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(g_dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    (void)snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_spawn_log_pidfile_stop(void **state)
{
    (void)state;
    char log[256], pid[256];
    path_of("a.log", log, sizeof log);
    path_of("a.pid", pid, sizeof pid);
    char *argv[] = {(char *)"/bin/sh", (char *)"-c",
                    (char *)"echo started $LUNA_DEV_TEST; exec sleep 60", NULL};
    char *env[] = {(char *)"LUNA_DEV_TEST=xyz", NULL};
    dev_pidrec rec;
    assert_luna_ok(dev_proc_spawn(argv, env, g_dir, log, pid, &rec));
    assert_true(dev_proc_alive(&rec));
    /* Detached: its own session and process group. */
    assert_int_equal(rec.pid, getpgid(rec.pid));
    assert_int_equal(rec.pid, getsid(rec.pid));
    dev_pidrec back;
    assert_luna_ok(dev_proc_read_pidfile(pid, &back));
    assert_int_equal(rec.pid, back.pid);
    assert_true(rec.start == back.start);
    struct stat st;
    assert_int_equal(0, stat(pid, &st));
    assert_int_equal(0600, st.st_mode & 0777);
    assert_int_equal(0, stat(log, &st));
    assert_int_equal(0600, st.st_mode & 0777);
    for (int i = 0; i < 100 && st.st_size == 0; i++) {
        dev_sleep_ms(20);
        assert_int_equal(0, stat(log, &st));
    }
    size_t len = 0;
    uint8_t *text = luna_test_read_file(log, &len);
    assert_non_null(strstr((char *)text, "started xyz"));
    free(text);
    assert_luna_ok(dev_proc_stop(&rec, 5000));
    assert_false(dev_proc_alive(&rec));
    assert_int_equal(-1, kill(rec.pid, 0));
}

/* A process that ignores SIGTERM, with a helper child in its group. */
static void test_stop_escalates_and_takes_the_group(void **state)
{
    (void)state;
    char log[256], pid[256], helper[256];
    path_of("b.log", log, sizeof log);
    path_of("b.pid", pid, sizeof pid);
    path_of("helper.pid", helper, sizeof helper);
    char script[512];
    (void)snprintf(script, sizeof script,
                   "trap '' TERM; (trap '' TERM; sleep 60) & echo $! > '%s'; "
                   "while :; do sleep 1; done",
                   helper);
    char *argv[] = {(char *)"/bin/sh", (char *)"-c", script, NULL};
    dev_pidrec rec;
    assert_luna_ok(dev_proc_spawn(argv, NULL, NULL, log, pid, &rec));
    long hp = 0;
    for (int i = 0; i < 200 && hp == 0; i++) {
        FILE *f = fopen(helper, "r");
        if (f != NULL) {
            if (fscanf(f, "%ld", &hp) != 1)
                hp = 0;
            fclose(f);
        }
        if (hp == 0)
            dev_sleep_ms(20);
    }
    assert_true(hp > 1);
    assert_int_equal(0, kill((pid_t)hp, 0));
    uint64_t t0 = dev_now_ms();
    assert_luna_ok(dev_proc_stop(&rec, 300));
    assert_true(dev_now_ms() - t0 >= 300); /* SIGTERM was ignored: the grace ran out */
    assert_false(dev_proc_alive(&rec));
    /* The helper was in the group: gone too (possibly a zombie of init for a moment). */
    for (int i = 0; i < 100 && kill((pid_t)hp, 0) == 0; i++)
        dev_sleep_ms(20);
    assert_int_equal(-1, kill((pid_t)hp, 0));
}

/* A pidfile naming a live pid with another start time is not ours. */
static void test_recycled_pid_left_alone(void **state)
{
    (void)state;
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        pause();
        _exit(0);
    }
    dev_pidrec fake = {.pid = child, .start = 1};
    assert_false(dev_proc_alive(&fake));
    assert_luna_ok(dev_proc_stop(&fake, 100));
    assert_int_equal(0, kill(child, 0)); /* untouched */
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
}

static void test_pidfile_format(void **state)
{
    (void)state;
    char p[256];
    path_of("bad.pid", p, sizeof p);
    dev_pidrec rec;
    assert_luna_err(LUNA_ERR_NOT_FOUND, dev_proc_read_pidfile(p, &rec));
    static const char *const bad[] = {"", "abc\n", "1 2\n", "123\n", "123 45", "-5 3\n",
                                      "123 45\nextra", "99999999999 1\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FILE *f = fopen(p, "w");
        assert_non_null(f);
        fputs(bad[i], f);
        fclose(f);
        assert_luna_err(LUNA_ERR_FORMAT, dev_proc_read_pidfile(p, &rec));
    }
}

static void test_run_bounded(void **state)
{
    (void)state;
    char log[256], out[64];
    path_of("run.log", log, sizeof log);
    int st = 0;
    char *ok[] = {(char *)"/bin/sh", (char *)"-c", (char *)"echo hello; exit 3", NULL};
    assert_luna_ok(dev_proc_run(ok, NULL, log, out, sizeof out, 5000, &st));
    assert_int_equal(3, st);
    assert_string_equal("hello\n", out);
    char *slow[] = {(char *)"/bin/sleep", (char *)"30", NULL};
    uint64_t t0 = dev_now_ms();
    assert_luna_err(LUNA_ERR_TIMEOUT, dev_proc_run(slow, NULL, log, NULL, 0, 300, &st));
    assert_true(dev_now_ms() - t0 < 5000);
    char *missing[] = {(char *)"/nonexistent/binary", NULL};
    char pid[256];
    path_of("m.pid", pid, sizeof pid);
    dev_pidrec rec;
    assert_luna_err(LUNA_ERR_NOT_FOUND, dev_proc_spawn(missing, NULL, NULL, log, pid, &rec));
    char *relative[] = {(char *)"sleep", (char *)"1", NULL};
    assert_luna_err(LUNA_ERR_INVALID_ARG, dev_proc_spawn(relative, NULL, NULL, log, pid, &rec));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spawn_log_pidfile_stop),
        cmocka_unit_test(test_stop_escalates_and_takes_the_group),
        cmocka_unit_test(test_recycled_pid_left_alone),
        cmocka_unit_test(test_pidfile_format),
        cmocka_unit_test(test_run_bounded),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
