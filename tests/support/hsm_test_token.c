/*
 * hsm_test_token.c - throwaway SoftHSM2 tokens for the HSM tests
 * (hsm_test_token.h).  Test support only: it must never touch a token
 * folder it did not create.
 */
#include "hsm_test_token.h"

#include <ftw.h>
#include <pwd.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "luna_test.h"

int hsm_run(char *const argv[])
{
    pid_t pid;
    int st;
    if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0)
        return -1;
    while (waitpid(pid, &st, 0) < 0) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * The HSM user's ids, creating it (system user, no home, no shell) if it
 * does not exist; test cases running in parallel may race to create it,
 * so a failed useradd is retried and re-checked.
 */
static void hsm_user_ids(uid_t *uid, gid_t *gid)
{
    int tries;
    for (tries = 0; tries < 20; tries++) {
        struct passwd *pw = getpwnam(HSM_TEST_USER);
        if (pw != NULL) {
            assert_true(pw->pw_uid != 0 && pw->pw_gid != 0);
            *uid = pw->pw_uid;
            *gid = pw->pw_gid;
            return;
        }
        char *argv[] = {(char *)"useradd", (char *)"--system", (char *)"--user-group",
                        (char *)"--no-create-home", (char *)"--home-dir", (char *)"/nonexistent",
                        (char *)"--shell", (char *)"/usr/sbin/nologin", (char *)HSM_TEST_USER,
                        NULL};
        if (hsm_run(argv) != 0) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            (void)nanosleep(&ts, NULL);
        }
    }
    fail_msg("cannot create user %s", HSM_TEST_USER);
}

static uid_t g_chown_uid;
static gid_t g_chown_gid;

static int chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return lchown(path, g_chown_uid, g_chown_gid);
}

void hsm_token_chown_to(const hsm_token *t, uid_t uid, gid_t gid)
{
    if (geteuid() != 0)
        return;
    g_chown_uid = uid;
    g_chown_gid = gid;
    assert_int_equal(0, nftw(t->dir, chown_one, 16, FTW_PHYS));
}

void hsm_token_chown(const hsm_token *t)
{
    hsm_token_chown_to(t, t->uid, t->gid);
}

void hsm_token_create(hsm_token *t, const char *pin)
{
    char conf[160];
    memset(t, 0, sizeof(*t));
    strcpy(t->dir, "/tmp/luna-hsm-test-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    assert_true(strlen(pin) < sizeof(t->pin));
    strcpy(t->pin, pin);
    {
        char script[512];
        const char *src = getenv("LUNA_SOURCE_DIR");
        if (src == NULL)
            src = LUNA_TEST_SOURCE_DIR;
        snprintf(script, sizeof(script), "%s/tests/support/softhsm_token.sh", src);
        char *argv[] = {(char *)"bash", script,         (char *)"create",
                        t->dir,         (char *)HSM_TEST_LABEL, t->pin,
                        NULL};
        assert_int_equal(0, hsm_run(argv));
    }
    snprintf(t->pin_file, sizeof(t->pin_file), "%s/pin", t->dir);
    snprintf(conf, sizeof(conf), "%s/softhsm2.conf", t->dir);
    assert_int_equal(0, setenv("SOFTHSM2_CONF", conf, 1));
    t->uid = geteuid();
    t->gid = getegid();
    if (geteuid() == 0)
        hsm_user_ids(&t->uid, &t->gid);
    hsm_token_chown(t);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void hsm_token_destroy(hsm_token *t)
{
    if (t->dir[0] != '\0' && strncmp(t->dir, "/tmp/luna-hsm-test-", 19) == 0)
        (void)nftw(t->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    memset(t, 0, sizeof(*t));
}

luna_hsm_config hsm_token_config(const hsm_token *t)
{
    const char *bin = getenv("LUNA_TEST_HSM_BIN");
    luna_hsm_config cfg = {
        .hsm_path = bin != NULL ? bin : LUNA_TEST_HSM_BIN,
        .module_path = HSM_TEST_MODULE,
        .token_label = HSM_TEST_LABEL,
        .pin_file = t->pin_file,
        .request_timeout_ms = 3000,
        .start_timeout_ms = 10000,
        .backoff_min_ms = 20,
        .backoff_max_ms = 160,
    };
    return cfg;
}

void hsm_token_pkcs11_keygen(const hsm_token *t, const char *label, const char *const *flags)
{
    char *argv[24];
    size_t n = 0, i;
    argv[n++] = (char *)"pkcs11-tool";
    argv[n++] = (char *)"--module";
    argv[n++] = (char *)HSM_TEST_MODULE;
    argv[n++] = (char *)"--token-label";
    argv[n++] = (char *)HSM_TEST_LABEL;
    argv[n++] = (char *)"--login";
    argv[n++] = (char *)"--pin";
    argv[n++] = (char *)t->pin;
    argv[n++] = (char *)"--keygen";
    argv[n++] = (char *)"--key-type";
    argv[n++] = (char *)"AES:32";
    argv[n++] = (char *)"--label";
    argv[n++] = (char *)label;
    for (i = 0; flags[i] != NULL && n < 23; i++)
        argv[n++] = (char *)flags[i];
    argv[n] = NULL;
    assert_int_equal(0, hsm_run(argv));
    hsm_token_chown(t); /* pkcs11-tool ran as us: new object files are ours */
}
