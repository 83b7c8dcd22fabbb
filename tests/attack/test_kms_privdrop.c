/*
 * test_kms_privdrop.c - attack.kms_privdrop: the real luna-kms started as
 * root sheds root once its HSM process runs (kms.user): every uid and gid
 * of the serving process is kms.user's, no supplementary group is left,
 * the HSM process runs as its own user, the KMS still serves and writes
 * its database; when the HSM process dies the KMS (which can no longer
 * start it) exits for the service manager; kms.user naming the HSM user
 * or root is refused; production refuses to run as root without kms.user.
 * Root only (it starts processes as root and reads their /proc status).
 */
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kms_harness.h"
#include "luna_test.h"

#define KMS_USER "nobody"

static uid_t g_uid;
static gid_t g_gid;
/* The KMS under test: the per-test teardown stops it even after a failed
   assertion (a process that changed uid loses PR_SET_PDEATHSIG). */
static kmsh H;

/* "Uid:\t<r>\t<e>\t<s>\t<fs>" of pid into ids[4] (same for Gid). */
static bool proc_ids(pid_t pid, const char *key, unsigned long ids[4], char *groups, size_t cap)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    bool found = false;
    size_t klen = strlen(key);
    if (groups != NULL && cap > 0)
        groups[0] = '\0';
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':')
            found = sscanf(line + klen + 1, "%lu %lu %lu %lu", &ids[0], &ids[1], &ids[2],
                           &ids[3]) == 4;
        if (groups != NULL && strncmp(line, "Groups:", 7) == 0) {
            const char *g = line + 7;
            g += strspn(g, " \t");
            snprintf(groups, cap, "%.*s", (int)strcspn(g, "\n"), g);
        }
    }
    fclose(f);
    return found;
}

/* The KMS's data (database) in a folder kms.user owns; the harness folder
 * is made traversable so the dropped process reaches its files. */
static void give_data_to_user(kmsh *h)
{
    char dir[HTU_PATH_MAX];
    htu_path(&h->env, "kmsdata", "", dir, sizeof(dir));
    assert_int_equal(0, mkdir(dir, 0700));
    assert_int_equal(0, chown(dir, g_uid, g_gid));
    assert_int_equal(0, chmod(h->env.dir, 0711));
    int n = snprintf(h->db, sizeof(h->db), "%.480s/kms.db", dir);
    assert_true(n > 0 && (size_t)n < sizeof(h->db));
    n = snprintf(h->storage_url, sizeof(h->storage_url), "sqlite:%s", h->db);
    assert_true(n > 0 && (size_t)n < sizeof(h->storage_url));
    n = snprintf(h->audit, sizeof(h->audit), "%.480s/audit.log", dir);
    assert_true(n > 0 && (size_t)n < sizeof(h->audit));
    /* Its TLS key and the CA certificate, readable by kms.user only as a
       deployment would set them up. */
    char p[HTU_PATH_MAX];
    htu_path(&h->env, "kms", ".key", p, sizeof(p));
    assert_int_equal(0, chown(p, g_uid, g_gid));
    assert_int_equal(0, chmod(h->env.ca_dir, 0711));
    assert_int_equal(0, chmod(h->env.ca_crt, 0644));
    /* The JWKS and collateral files are re-read on every tick. */
    static const char *const pub[] = {"iam.jwks", "att.jwks", "tcb.bin", "sim-root.pem"};
    for (size_t i = 0; i < sizeof(pub) / sizeof(pub[0]); i++) {
        char fp[HTU_PATH_MAX + 16];
        snprintf(fp, sizeof(fp), "%s/%s", h->env.dir, pub[i]);
        assert_int_equal(0, chmod(fp, 0644));
    }
    kmsh_write_config(h);
}

static void wait_log(const kmsh *h, const char *needle, int seconds)
{
    long end = htu_now_ms() + seconds * 1000L;
    while (htu_now_ms() < end) {
        FILE *f = fopen(h->log, "r");
        char line[4096];
        bool found = false;
        while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL)
            found = strstr(line, needle) != NULL;
        if (f != NULL)
            fclose(f);
        if (found)
            return;
        usleep(50000);
    }
    fail_msg("'%s' not in %s within %d s", needle, h->log, seconds);
}

/* text with the first needle replaced (malloc'd); the needle must be there. */
static char *replace(const char *text, const char *needle, const char *with)
{
    const char *p = strstr(text, needle);
    assert_non_null(p);
    size_t cap = strlen(text) + strlen(with) + 1;
    char *out = malloc(cap);
    assert_non_null(out);
    snprintf(out, cap, "%.*s%s%s", (int)(p - text), text, with, p + strlen(needle));
    return out;
}

static pid_t child_of(pid_t parent)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)parent, (int)parent);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long pid = 0;
    int n = fscanf(f, "%ld", &pid);
    fclose(f);
    assert_int_equal(1, n);
    return (pid_t)pid;
}

static void test_drops_root_and_serves(void **state)
{
    (void)state;
    kmsh_setup(&H, ",\"user\":\"" KMS_USER "\"");
    give_data_to_user(&H);
    kmsh_start(&H);
    wait_log(&H, "privileges dropped", 10);

    unsigned long u[4], g[4];
    char groups[128];
    assert_true(proc_ids(H.pid, "Uid", u, groups, sizeof(groups)));
    assert_true(proc_ids(H.pid, "Gid", g, NULL, 0));
    for (int i = 0; i < 4; i++) {
        assert_int_equal(g_uid, u[i]); /* real, effective, saved, fs */
        assert_int_equal(g_gid, g[i]);
    }
    assert_string_equal("", groups);
    /* The HSM process: its own user, neither root nor kms.user. */
    pid_t hsm = child_of(H.pid);
    struct passwd *hp = getpwnam(HSM_TEST_USER);
    assert_non_null(hp);
    assert_true(proc_ids(hsm, "Uid", u, NULL, 0));
    assert_int_equal(hp->pw_uid, u[1]);

    /* It still serves and writes: a key is created, listed, rotated. */
    char *tok = kmsh_token(&H, "t1", "key-admin");
    kmsh_resp r;
    assert_int_equal(0, kmsh_call(&H, "gateway", "POST", "/v1/kms/keys", tok,
                                  "{\"key_id\":\"k1\"}", &r));
    assert_true(r.status == 200 || r.status == 201);
    kmsh_resp_free(&r);
    assert_int_equal(0, kmsh_call(&H, "gateway", "POST", "/v1/kms/keys/k1/rotate", tok, "{}",
                                  &r));
    assert_int_equal(200, r.status);
    kmsh_resp_free(&r);
    free(tok);
    /* The database it created is kms.user's, not root's. */
    struct stat st;
    assert_int_equal(0, stat(H.db, &st));
    assert_int_equal(g_uid, st.st_uid);

    /* The HSM process dies: a dropped KMS cannot start it under its own
       user again, so it says so and exits for the service manager. */
    assert_int_equal(0, kill(hsm, SIGKILL));
    long end = htu_now_ms() + 10000;
    int status = 0;
    pid_t got = 0;
    while (htu_now_ms() < end && (got = waitpid(H.pid, &status, WNOHANG)) == 0)
        usleep(50000);
    assert_int_equal(H.pid, got);
    H.pid = 0;
    assert_true(WIFEXITED(status));
    assert_int_equal(3, WEXITSTATUS(status));
    wait_log(&H, "hsm process lost and cannot be restarted without root", 1);
}

static void test_refusals(void **state)
{
    (void)state;
    int code = 0;
    /* The HSM process's user: the separation would be gone. */
    kmsh_setup(&H, ",\"user\":\"" HSM_TEST_USER "\"");
    give_data_to_user(&H);
    assert_false(kmsh_try_start(&H, &code));
    assert_int_equal(4, code);
    wait_log(&H, "kms.user must not be the hsm process's user", 1);
    /* Root by number is no drop. */
    snprintf(H.extra, sizeof(H.extra), ",\"user\":\"0\"");
    kmsh_write_config(&H);
    assert_false(kmsh_try_start(&H, &code));
    assert_int_equal(4, code);
    wait_log(&H, "kms.user unknown or root", 1);
    /* Production as root without kms.user: refused before anything starts. */
    H.extra[0] = '\0';
    kmsh_write_config(&H);
    char *text = NULL;
    {
        FILE *f = fopen(H.config, "r");
        assert_non_null(f);
        text = calloc(1, 65536);
        assert_non_null(text);
        size_t n = fread(text, 1, 65535, f);
        fclose(f);
        assert_true(n > 0);
    }
    /* Production: profile, and no insecure sim evidence (refused first). */
    char *prod = replace(text, "\"profile\":\"development\"", "\"profile\":\"production\"");
    char *prod2 = replace(prod, "\"allowed_evidence\":[\"sim\"]",
                          "\"allowed_evidence\":[\"sev-snp\"]");
    free(prod);
    prod = prod2;
    FILE *f = fopen(H.config, "w");
    assert_non_null(f);
    fputs(prod, f);
    fclose(f);
    free(prod);
    free(text);
    assert_false(kmsh_try_start(&H, &code));
    assert_int_not_equal(0, code);
    FILE *lf = fopen(H.log, "r");
    assert_non_null(lf);
    char line[4096];
    bool refused = false, config_error = false;
    while (fgets(line, sizeof(line), lf) != NULL) {
        refused = refused || strstr(line, "refusing to run as root in production") != NULL;
        config_error = config_error || strstr(line, "luna-kms:") != NULL;
    }
    fclose(lf);
    if (!refused)
        fprintf(stderr, "production start refused for another reason first (exit %d)\n", code);
    assert_true(refused);
    (void)config_error;
}

static int stop_kms(void **state)
{
    (void)state;
    if (H.env.dir[0] != '\0')
        kmsh_teardown(&H);
    memset(&H, 0, sizeof(H));
    return 0;
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "attack.kms_privdrop needs root (it checks the drop from root)\n");
        return LUNA_TEST_SKIP;
    }
    struct passwd *pw = getpwnam(KMS_USER);
    if (pw == NULL) {
        fprintf(stderr, "no user %s\n", KMS_USER);
        return 1;
    }
    g_uid = pw->pw_uid;
    g_gid = pw->pw_gid;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_drops_root_and_serves, stop_kms),
        cmocka_unit_test_teardown(test_refusals, stop_kms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
