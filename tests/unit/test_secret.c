/*
 * Secret buffers: a freed secret is wiped.  Proved through the free hook,
 * which sees the bytes at free time, never by reading freed memory.
 */
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include "luna/secret.h"
#include "luna_test.h"

static size_t hook_calls;
static size_t hook_nonzero;
static size_t hook_len;

static void record_free(const uint8_t *bytes, size_t len)
{
    hook_calls++;
    hook_len = len;
    for (size_t i = 0; i < len; i++)
        hook_nonzero += bytes[i] != 0;
}

static void freed_secret_is_wiped(void **state)
{
    (void)state;
    luna_secret *s = NULL;
    uint8_t key[48];
    memset(key, 0xA5, sizeof(key));
    assert_luna_ok(luna_secret_from(key, sizeof(key), &s));
    assert_int_equal(48, luna_secret_len(s));
    assert_memory_equal(key, luna_secret_cdata(s), sizeof(key));
    hook_calls = hook_nonzero = hook_len = 0;
    luna_secret_set_free_hook(record_free);
    luna_secret_free(s);
    luna_secret_set_free_hook(NULL);
    assert_int_equal(1, hook_calls);
    assert_int_equal(48, hook_len);
    assert_int_equal(0, hook_nonzero);
}

/* The hook must be able to see non-zero bytes, or the test above proves
 * nothing: a hook run before the wipe would count all 48. */
static void hook_sees_bytes_when_not_wiped(void **state)
{
    (void)state;
    uint8_t bytes[8];
    memset(bytes, 1, sizeof(bytes));
    hook_nonzero = 0;
    record_free(bytes, sizeof(bytes));
    assert_int_equal(8, hook_nonzero);
}

static void bounds_and_null(void **state)
{
    (void)state;
    luna_secret *s = (luna_secret *)1;
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_secret_new(0, &s));
    assert_null(s);
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_secret_new(LUNA_SECRET_MAX + 1, &s));
    luna_secret_free(NULL);
    assert_luna_ok(luna_secret_new(1, &s));
    assert_int_equal(0, luna_secret_data(s)[0]);
    luna_secret_free(s);
}

/* Writes one byte at data[off] in a child; returns the signal that killed
 * it, or 0 when it exited normally. */
static int poke_in_child(size_t len, long off)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL); /* cmocka's handler must not catch the fault */
        luna_secret *s = NULL;
        if (luna_secret_new(len, &s) != LUNA_OK)
            _exit(2);
        volatile uint8_t *p = luna_secret_data(s);
        p[off] = 0x41;
        _exit(0);
    }
    int st = 0;
    assert_int_equal(pid, waitpid(pid, &st, 0));
    return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

static void overrun_and_underrun_fault(void **state)
{
    (void)state;
    /* Controls: the last and first bytes are writable. */
    assert_int_equal(0, poke_in_child(100, 99));
    assert_int_equal(0, poke_in_child(100, 0));
    /* One byte past the end hits the trailing guard page at once (SIGSEGV;
     * under ASan, whose SEGV handler aborts, SIGABRT). */
    int sig = poke_in_child(100, 100);
    assert_true(sig == SIGSEGV || sig == SIGABRT);
    sig = poke_in_child(4096, 4096);
    assert_true(sig == SIGSEGV || sig == SIGABRT);
    /* Before the start of a page-sized secret: the leading guard page. */
    sig = poke_in_child(4096, -1);
    assert_true(sig == SIGSEGV || sig == SIGABRT);
}

static void secret_is_locked(void **state)
{
    (void)state;
    luna_secret *s = NULL;
    assert_luna_ok(luna_secret_new(32, &s));
    /* The test runs with the default RLIMIT_MEMLOCK (or as root): locked. */
    assert_true(luna_secret_is_locked(s));
    luna_secret_free(s);
    assert_false(luna_secret_is_locked(NULL));
}

static void process_harden_disables_dumps(void **state)
{
    (void)state;
    struct rlimit rl;
    assert_int_equal(1, prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
    assert_luna_ok(luna_process_harden());
    assert_int_equal(0, prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
    assert_int_equal(0, getrlimit(RLIMIT_CORE, &rl));
    assert_int_equal(0, rl.rlim_cur);
    assert_int_equal(0, rl.rlim_max);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(freed_secret_is_wiped),
        cmocka_unit_test(hook_sees_bytes_when_not_wiped),
        cmocka_unit_test(bounds_and_null),
        cmocka_unit_test(overrun_and_underrun_fault),
        cmocka_unit_test(secret_is_locked),
        cmocka_unit_test(process_harden_disables_dumps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
