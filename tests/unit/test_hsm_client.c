/*
 * test_hsm_client.c - the KMS HSM process (kms/src/hsm_*.c) against real
 * SoftHSM2: every case gets its own token.  Attributes are checked both by
 * the HSM process's refusal and independently with pkcs11-tool, and the
 * token's own enforcement (the root's unwrap/wrap templates) is attacked
 * directly over PKCS#11 the way a compromised KMS holding the PIN would.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "hsm_client.h"
#include "hsm_test_token.h"
#include "luna_test.h"

#define TEST_PIN "pin-Q7x9-never-logged"

static hsm_token g_tok;

/* A whole file as a NUL-terminated malloc'd string. */
static char *read_text(const char *path)
{
    size_t len = 0;
    uint8_t *raw = luna_test_read_file(path, &len);
    char *text = malloc(len + 1);
    assert_non_null(text);
    memcpy(text, raw, len);
    text[len] = '\0';
    free(raw);
    return text;
}

static int setup(void **state)
{
    (void)state;
    hsm_token_create(&g_tok, TEST_PIN);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hsm_token_destroy(&g_tok);
    return 0;
}

static luna_hsm_client *start(void)
{
    luna_hsm_config cfg = hsm_token_config(&g_tok);
    luna_hsm_client *c = NULL;
    assert_luna_ok(luna_hsm_client_new(&cfg, &c));
    assert_non_null(c);
    assert_true(luna_hsm_client_pid(c) > 0);
    return c;
}

/* Output of pkcs11-tool --list-objects for the token, in a malloc'd string. */
static char *list_objects(void)
{
    char out_path[160], cmd[512];
    snprintf(out_path, sizeof(out_path), "%s/objects.txt", g_tok.dir);
    snprintf(cmd, sizeof(cmd),
             "pkcs11-tool --module %s --token-label %s --login --pin %s --list-objects "
             "--type secrkey > %s 2>&1",
             HSM_TEST_MODULE, HSM_TEST_LABEL, g_tok.pin, out_path);
    assert_int_equal(0, system(cmd));
    return read_text(out_path);
}

/*
 * The malloc'd block of pkcs11-tool output describing the object labelled
 * label: from its "Secret Key Object" line to the next one.
 */
static char *object_block(const char *text, const char *label)
{
    char needle[128];
    const char *at, *start = NULL, *p, *end;
    snprintf(needle, sizeof(needle), "label:      %s\n", label);
    at = strstr(text, needle);
    assert_non_null(at);
    for (p = strstr(text, "Secret Key Object"); p != NULL && p < at;
         p = strstr(p + 1, "Secret Key Object"))
        start = p;
    assert_non_null(start);
    end = strstr(at, "Secret Key Object");
    return strndup(start, end != NULL ? (size_t)(end - start) : strlen(start));
}

/* Redirects fd 2 (ours and so the HSM child's) into a file until capture_end. */
typedef struct capture {
    char path[160];
    int saved;
    int fd;
} capture;

static void capture_begin(capture *cap)
{
    snprintf(cap->path, sizeof(cap->path), "%s/stderr.log", g_tok.dir);
    cap->fd = open(cap->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(cap->fd >= 0);
    fflush(stderr);
    cap->saved = dup(STDERR_FILENO);
    assert_true(cap->saved >= 0);
    assert_int_equal(STDERR_FILENO, dup2(cap->fd, STDERR_FILENO));
}

/* Restores fd 2 and returns what was written, NUL-terminated, malloc'd. */
static char *capture_end(capture *cap)
{
    fflush(stderr);
    assert_int_equal(STDERR_FILENO, dup2(cap->saved, STDERR_FILENO));
    close(cap->saved);
    close(cap->fd);
    return read_text(cap->path);
}

/* Starting with the root pkcs11-tool made with flags is refused, naming attribute. */
static void expect_root_refused(const char *const *flags, luna_err want, const char *attribute)
{
    luna_hsm_config cfg = hsm_token_config(&g_tok);
    luna_hsm_client *c = NULL;
    capture cap = {.saved = -1, .fd = -1};
    char *text;

    hsm_token_pkcs11_keygen(&g_tok, "luna-kms-root", flags);
    capture_begin(&cap);
    assert_luna_err(want, luna_hsm_client_new(&cfg, &c));
    text = capture_end(&cap);
    assert_null(c);
    if (attribute != NULL) {
        char needle[96];
        snprintf(needle, sizeof(needle), "\"key\":\"root\",\"attribute\":\"%s\"", attribute);
        assert_non_null(strstr(text, needle));
    }
    free(text);
}

static void test_root_created_with_right_attributes(void **state)
{
    (void)state;
    luna_hsm_client *c = start();
    assert_luna_ok(luna_hsm_client_check_root(c));
    assert_luna_ok(luna_hsm_client_ping(c));
    luna_hsm_client_free(c);

    /* Independently of our own check: what does the token say? */
    char *text = list_objects();
    char *blk = object_block(text, "luna-kms-root");
    assert_non_null(strstr(blk, "Secret Key Object; AES length 32\n"));
    assert_non_null(strstr(blk, "Usage:      wrap, unwrap\n"));
    assert_non_null(strstr(blk, "Access:     sensitive, always sensitive, never extractable"));
    assert_null(strstr(blk, "crypt")); /* neither encrypt nor decrypt */
    free(blk);
    blk = object_block(text, "luna-kms-registry-mac");
    assert_non_null(strstr(blk, "Generic secret length 32"));
    assert_non_null(strstr(blk, "never extractable"));
    assert_null(strstr(blk, "crypt"));
    assert_null(strstr(blk, "wrap"));
    free(blk);
    free(text);

    /* A second start finds the same root instead of making another. */
    c = start();
    assert_luna_ok(luna_hsm_client_check_root(c));
    luna_hsm_client_free(c);
    text = list_objects();
    const char *first = strstr(text, "label:      luna-kms-root\n");
    assert_non_null(first);
    assert_null(strstr(first + 1, "label:      luna-kms-root\n"));
    free(text);
}

static void test_bad_root_extractable_refused(void **state)
{
    (void)state;
    /* Sensitive, wrap-capable, but extractable: its value could leave the token. */
    static const char *const flags[] = {"--usage-wrap", "--sensitive", "--extractable",
                                        "--private", NULL};
    expect_root_refused(flags, LUNA_ERR_CONFIG, "CKA_EXTRACTABLE");
}

static void test_bad_root_decrypt_refused(void **state)
{
    (void)state;
    /* Sensitive and not extractable, but a decrypt oracle for anything under it. */
    static const char *const flags[] = {"--usage-wrap", "--usage-decrypt", "--sensitive",
                                        "--private", NULL};
    expect_root_refused(flags, LUNA_ERR_CONFIG, "CKA_DECRYPT");
}

static void test_bad_root_modifiable_refused(void **state)
{
    (void)state;
    /*
     * pkcs11-tool's best effort at a wrap key (it also sets encrypt and
     * decrypt for AES): refused all the same; and a key anyone with the PIN
     * could later flip to decrypt (CKA_MODIFIABLE) is never accepted.
     */
    static const char *const flags[] = {"--usage-wrap", "--sensitive", "--private", NULL};
    expect_root_refused(flags, LUNA_ERR_CONFIG, NULL);
}

static void test_two_roots_refused(void **state)
{
    (void)state;
    static const char *const flags[] = {"--usage-wrap", "--sensitive", NULL};
    hsm_token_pkcs11_keygen(&g_tok, "luna-kms-root", flags);
    expect_root_refused(flags, LUNA_ERR_CONFLICT, NULL);
}

static void test_wrap_seal_round_trip(void **state)
{
    (void)state;
    luna_hsm_client *c = start();
    uint8_t kek[LUNA_HSM_WRAPPED_LEN], kek2[LUNA_HSM_WRAPPED_LEN];
    uint8_t key[LUNA_HSM_KEY_LEN], sealed[LUNA_HSM_SEALED_KEY_LEN];
    uint8_t back[LUNA_HSM_SEAL_MAX], box[LUNA_HSM_SEAL_MAX + LUNA_HSM_SEAL_OVERHEAD];
    static const uint8_t aad[] = "tenant=a;key=k1;v=1";
    static const uint8_t msg[] = "a small payload";
    size_t n = 0, m = 0;

    assert_luna_ok(luna_hsm_client_gen_kek(c, kek));
    assert_luna_ok(luna_hsm_client_gen_kek(c, kek2));
    assert_memory_not_equal(kek, kek2, sizeof(kek));

    /* Data key: its stored form does not contain it. */
    assert_luna_ok(luna_hsm_client_gen_data_key(c, kek, aad, sizeof(aad), key, sealed));
    assert_null(memmem(sealed, sizeof(sealed), key, sizeof(key)));
    assert_null(memmem(sealed, sizeof(sealed), key, 8));
    assert_null(memmem(kek, sizeof(kek), key, 8));
    assert_luna_ok(luna_hsm_client_open(c, kek, aad, sizeof(aad), sealed, sizeof(sealed), back,
                                        sizeof(back), &n));
    assert_int_equal(LUNA_HSM_KEY_LEN, n);
    assert_memory_equal(key, back, LUNA_HSM_KEY_LEN);
    /* The other KEK cannot open it. */
    assert_luna_err(LUNA_ERR_VERIFY, luna_hsm_client_open(c, kek2, aad, sizeof(aad), sealed,
                                                          sizeof(sealed), back, sizeof(back), &n));

    assert_luna_ok(luna_hsm_client_seal(c, kek, NULL, 0, msg, sizeof(msg), box, sizeof(box), &m));
    assert_int_equal(sizeof(msg) + LUNA_HSM_SEAL_OVERHEAD, m);
    assert_null(memmem(box, m, msg, 8));
    assert_luna_ok(luna_hsm_client_open(c, kek, NULL, 0, box, m, back, sizeof(back), &n));
    assert_int_equal(sizeof(msg), n);
    assert_memory_equal(msg, back, n);

    /* Largest payload round trips; one byte more is refused before any IPC. */
    memset(back, 0x5a, LUNA_HSM_SEAL_MAX);
    assert_luna_ok(luna_hsm_client_seal(c, kek, aad, sizeof(aad), back, LUNA_HSM_SEAL_MAX, box,
                                        sizeof(box), &m));
    assert_luna_err(LUNA_ERR_TOO_LARGE,
                    luna_hsm_client_seal(c, kek, aad, sizeof(aad), back, LUNA_HSM_SEAL_MAX + 1,
                                         box, sizeof(box), &m));
    luna_hsm_client_free(c);
}

static void test_tampering_refused(void **state)
{
    (void)state;
    luna_hsm_client *c = start();
    pid_t pid = luna_hsm_client_pid(c);
    uint8_t kek[LUNA_HSM_WRAPPED_LEN], bad_kek[LUNA_HSM_WRAPPED_LEN];
    uint8_t key[LUNA_HSM_KEY_LEN], sealed[LUNA_HSM_SEALED_KEY_LEN], bad[LUNA_HSM_SEALED_KEY_LEN];
    uint8_t back[64];
    static const uint8_t aad[] = "otk:tenant-a:job-1";
    size_t n = 0, i;

    assert_luna_ok(luna_hsm_client_gen_kek(c, kek));
    assert_luna_ok(luna_hsm_client_gen_data_key(c, kek, aad, sizeof(aad), key, sealed));

    /* Every byte of the wrapped KEK is covered by RFC 5649's integrity check. */
    for (i = 0; i < sizeof(kek); i += 7) {
        memcpy(bad_kek, kek, sizeof(kek));
        bad_kek[i] ^= 0x01;
        assert_luna_err(LUNA_ERR_VERIFY,
                        luna_hsm_client_open(c, bad_kek, aad, sizeof(aad), sealed,
                                             sizeof(sealed), back, sizeof(back), &n));
    }
    /* Nonce, ciphertext and tag are all covered by GCM. */
    for (i = 0; i < sizeof(sealed); i += 9) {
        memcpy(bad, sealed, sizeof(sealed));
        bad[i] ^= 0x80;
        assert_luna_err(LUNA_ERR_VERIFY, luna_hsm_client_open(c, kek, aad, sizeof(aad), bad,
                                                              sizeof(bad), back, sizeof(back), &n));
    }
    /* So is the AAD: a key bound to one job does not open for another. */
    assert_luna_err(LUNA_ERR_VERIFY,
                    luna_hsm_client_open(c, kek, (const uint8_t *)"otk:tenant-b:job-1", 19,
                                         sealed, sizeof(sealed), back, sizeof(back), &n));
    /* Refusals are answers, not faults: the same HSM process still serves. */
    assert_int_equal(pid, luna_hsm_client_pid(c));
    assert_luna_ok(luna_hsm_client_open(c, kek, aad, sizeof(aad), sealed, sizeof(sealed), back,
                                        sizeof(back), &n));
    assert_memory_equal(key, back, sizeof(key));
    luna_hsm_client_free(c);
}

static void test_registry_mac(void **state)
{
    (void)state;
    luna_hsm_client *c = start();
    static const uint8_t row[] = "tee-1|tenant-a|active|pk=abcd";
    static const uint8_t edited[] = "tee-1|tenant-a|revok|pk=abcd";
    uint8_t tag[LUNA_HSM_MAC_LEN], tag2[LUNA_HSM_MAC_LEN], big[LUNA_HSM_MAC_MSG_MAX + 1];

    assert_luna_ok(luna_hsm_client_mac(c, row, sizeof(row), tag));
    assert_luna_ok(luna_hsm_client_mac_verify(c, row, sizeof(row), tag));
    assert_luna_err(LUNA_ERR_VERIFY, luna_hsm_client_mac_verify(c, edited, sizeof(edited), tag));
    tag[31] ^= 1;
    assert_luna_err(LUNA_ERR_VERIFY, luna_hsm_client_mac_verify(c, row, sizeof(row), tag));
    tag[31] ^= 1;
    assert_luna_ok(luna_hsm_client_mac(c, NULL, 0, tag2));
    assert_memory_not_equal(tag, tag2, sizeof(tag));
    memset(big, 'r', sizeof(big));
    assert_luna_ok(luna_hsm_client_mac(c, big, LUNA_HSM_MAC_MSG_MAX, tag2));
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_hsm_client_mac(c, big, sizeof(big), tag2));
    luna_hsm_client_free(c);

    /* The MAC key is a token object: a fresh HSM process gives the same tag. */
    c = start();
    assert_luna_ok(luna_hsm_client_mac(c, row, sizeof(row), tag2));
    assert_memory_equal(tag, tag2, sizeof(tag));
    luna_hsm_client_free(c);
}

static void write_pin(const char *pin, mode_t mode)
{
    int fd = open(g_tok.pin_file, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal((ssize_t)strlen(pin), write(fd, pin, strlen(pin)));
    assert_int_equal(0, close(fd));
    assert_int_equal(0, chmod(g_tok.pin_file, mode));
}

static void test_wrong_pin(void **state)
{
    (void)state;
    luna_hsm_config cfg = hsm_token_config(&g_tok);
    luna_hsm_client *c = NULL;

    write_pin("wrong-pin-0000", 0600);
    assert_luna_err(LUNA_ERR_UNAUTHENTICATED, luna_hsm_client_new(&cfg, &c));
    assert_null(c);
    /* A PIN file others can read is refused before the token is touched. */
    write_pin(TEST_PIN, 0644);
    assert_luna_err(LUNA_ERR_PERMISSION, luna_hsm_client_new(&cfg, &c));
    assert_null(c);
    /* The right PIN with a trailing newline (as editors write it) works. */
    write_pin(TEST_PIN "\n", 0600);
    c = start();
    luna_hsm_client_free(c);
    /* A module path that is not absolute is refused (no loader search). */
    cfg.module_path = "libsofthsm2.so";
    assert_luna_err(LUNA_ERR_CONFIG, luna_hsm_client_new(&cfg, &c));
}

static void test_pin_never_logged(void **state)
{
    (void)state;
    static const char *const flags[] = {"--usage-wrap", "--sensitive", "--extractable", NULL};
    luna_hsm_config cfg = hsm_token_config(&g_tok);
    luna_hsm_client *c = NULL;
    uint8_t kek[LUNA_HSM_WRAPPED_LEN];
    capture cap = {.saved = -1, .fd = -1};
    char *text;

    capture_begin(&cap);
    /* Every path that logs: success, crash and restart, wrong PIN, bad root. */
    c = start();
    assert_luna_ok(luna_hsm_client_gen_kek(c, kek));
    assert_int_equal(0, kill(luna_hsm_client_pid(c), SIGKILL));
    assert_luna_err(LUNA_ERR_UNAVAILABLE, luna_hsm_client_ping(c));
    luna_hsm_client_free(c);
    write_pin("not-" TEST_PIN, 0600);
    assert_luna_err(LUNA_ERR_UNAUTHENTICATED, luna_hsm_client_new(&cfg, &c));
    write_pin(TEST_PIN, 0600);
    hsm_token_pkcs11_keygen(&g_tok, "bad-root", flags);
    cfg.root_label = "bad-root";
    assert_luna_err(LUNA_ERR_CONFIG, luna_hsm_client_new(&cfg, &c));
    text = capture_end(&cap);

    /* The capture works: the events are there... */
    assert_non_null(strstr(text, "\"hsm process ready\""));
    assert_non_null(strstr(text, "\"hsm process lost\""));
    assert_non_null(strstr(text, "\"unauthenticated\""));
    assert_non_null(strstr(text, "\"attribute\":\"CKA_EXTRACTABLE\""));
    /* ...and the PIN is not, in any form. */
    assert_null(strstr(text, TEST_PIN));
    assert_null(strstr(text, "Q7x9"));
    free(text);
}

/* ---- direct PKCS#11, as a process holding the PIN but not our code ---- */

typedef struct p11 {
    void *dl;
    CK_FUNCTION_LIST *f;
    CK_SESSION_HANDLE s;
} p11;

static void p11_open(p11 *p)
{
    CK_C_GetFunctionList gl;
    CK_SLOT_ID slots[8];
    CK_ULONG ns = 8;
    void *sym;

    p->dl = dlopen(HSM_TEST_MODULE, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(p->dl);
    sym = dlsym(p->dl, "C_GetFunctionList");
    assert_non_null(sym);
    memcpy(&gl, &sym, sizeof(gl));
    assert_int_equal(CKR_OK, gl(&p->f));
    assert_int_equal(CKR_OK, p->f->C_Initialize(NULL));
    assert_int_equal(CKR_OK, p->f->C_GetSlotList(CK_TRUE, slots, &ns));
    assert_true(ns >= 1);
    assert_int_equal(CKR_OK, p->f->C_OpenSession(slots[0], CKF_SERIAL_SESSION | CKF_RW_SESSION,
                                                 NULL, NULL, &p->s));
    assert_int_equal(CKR_OK, p->f->C_Login(p->s, CKU_USER, (CK_UTF8CHAR *)g_tok.pin,
                                           (CK_ULONG)strlen(g_tok.pin)));
}

static void p11_close(p11 *p)
{
    (void)p->f->C_Logout(p->s);
    (void)p->f->C_CloseSession(p->s);
    (void)p->f->C_Finalize(NULL);
    (void)dlclose(p->dl);
    /* Anything this root process wrote must stay readable by the HSM user. */
    hsm_token_chown(&g_tok);
}

static CK_OBJECT_HANDLE p11_find(p11 *p, const char *label)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_LABEL, (void *)(uintptr_t)label, (CK_ULONG)strlen(label)}};
    CK_OBJECT_HANDLE h[2];
    CK_ULONG n = 0;
    assert_int_equal(CKR_OK, p->f->C_FindObjectsInit(p->s, t, 2));
    assert_int_equal(CKR_OK, p->f->C_FindObjects(p->s, h, 2, &n));
    assert_int_equal(CKR_OK, p->f->C_FindObjectsFinal(p->s));
    assert_int_equal(1, n);
    return h[0];
}

static void test_root_without_unwrap_template_refused(void **state)
{
    (void)state;
    /*
     * Exactly the root this code made before the H2 fix: every boolean
     * right, but no CKA_UNWRAP_TEMPLATE / CKA_WRAP_TEMPLATE, so anyone with
     * the PIN may unwrap a KEK as extractable.  It must be refused.
     */
    CK_BBOOL t = CK_TRUE, f = CK_FALSE;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_ULONG len = 32;
    static const char label[] = "luna-kms-root";
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},     {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_TOKEN, &t, 1},
        {CKA_PRIVATE, &t, 1},               {CKA_SENSITIVE, &t, 1},
        {CKA_EXTRACTABLE, &f, 1},           {CKA_WRAP, &t, 1},
        {CKA_UNWRAP, &t, 1},                {CKA_ENCRYPT, &f, 1},
        {CKA_DECRYPT, &f, 1},               {CKA_SIGN, &f, 1},
        {CKA_VERIFY, &f, 1},                {CKA_DERIVE, &f, 1},
        {CKA_MODIFIABLE, &f, 1},            {CKA_LABEL, (void *)label, sizeof(label) - 1},
    };
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_OBJECT_HANDLE root;
    luna_hsm_config cfg = hsm_token_config(&g_tok);
    luna_hsm_client *c = NULL;
    capture cap = {.saved = -1, .fd = -1};
    char *text;
    p11 p;

    p11_open(&p);
    assert_int_equal(CKR_OK, p.f->C_GenerateKey(p.s, &gen, tmpl, sizeof(tmpl) / sizeof(tmpl[0]),
                                                &root));
    p11_close(&p);
    capture_begin(&cap);
    assert_luna_err(LUNA_ERR_CONFIG, luna_hsm_client_new(&cfg, &c));
    text = capture_end(&cap);
    assert_null(c);
    assert_non_null(strstr(text, "\"key\":\"root\",\"attribute\":\"CKA_UNWRAP_TEMPLATE\""));
    free(text);
}

static void test_token_forces_unwrap_template(void **state)
{
    (void)state;
    luna_hsm_client *c = start();
    uint8_t kek[LUNA_HSM_WRAPPED_LEN], key[LUNA_HSM_KEY_LEN], sealed[LUNA_HSM_SEALED_KEY_LEN];
    CK_BBOOL t = CK_TRUE, f = CK_FALSE;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_MECHANISM kw = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    CK_OBJECT_HANDLE root, k = CK_INVALID_HANDLE;
    uint8_t value[32], out[64];
    CK_ULONG out_len = sizeof(out);
    p11 p;

    assert_luna_ok(luna_hsm_client_gen_kek(c, kek));
    assert_luna_ok(luna_hsm_client_gen_data_key(c, kek, NULL, 0, key, sealed));
    luna_hsm_client_free(c);

    p11_open(&p);
    root = p11_find(&p, "luna-kms-root");
    /* The review's attack, verbatim: its own non-sensitive, extractable template. */
    {
        CK_ATTRIBUTE at[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)},
                             {CKA_TOKEN, &f, 1},            {CKA_SENSITIVE, &f, 1},
                             {CKA_EXTRACTABLE, &t, 1}};
        assert_int_equal(CKR_TEMPLATE_INCONSISTENT,
                         p.f->C_UnwrapKey(p.s, &kw, root, kek, sizeof(kek), at, 5, &k));
    }
    /* Saying nothing about sensitivity does not get a default either. */
    {
        CK_ATTRIBUTE at[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)},
                             {CKA_TOKEN, &f, 1}, {CKA_EXTRACTABLE, &t, 1}};
        assert_int_equal(CKR_TEMPLATE_INCONSISTENT,
                         p.f->C_UnwrapKey(p.s, &kw, root, kek, sizeof(kek), at, 4, &k));
    }
    /* Sensitive but wrap-capable (to re-wrap it under an attacker key): refused. */
    {
        CK_ATTRIBUTE at[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)},
                             {CKA_TOKEN, &f, 1},            {CKA_PRIVATE, &t, 1},
                             {CKA_SENSITIVE, &t, 1},        {CKA_EXTRACTABLE, &t, 1},
                             {CKA_ENCRYPT, &t, 1},          {CKA_DECRYPT, &t, 1},
                             {CKA_WRAP, &f, 1},             {CKA_UNWRAP, &f, 1},
                             {CKA_SIGN, &f, 1},             {CKA_VERIFY, &f, 1},
                             {CKA_DERIVE, &f, 1}};
        assert_int_equal(CKR_TEMPLATE_INCONSISTENT,
                         p.f->C_UnwrapKey(p.s, &kw, root, kek, sizeof(kek), at, 13, &k));
    }
    /*
     * Control: the one template the root allows unwraps, and the key's
     * value still cannot be read.  (Using it to decrypt in the token stays
     * possible for whoever holds the PIN: that is what the uid separation
     * below is for.)
     */
    {
        CK_ATTRIBUTE at[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)},
                             {CKA_TOKEN, &f, 1},            {CKA_PRIVATE, &t, 1},
                             {CKA_SENSITIVE, &t, 1},        {CKA_EXTRACTABLE, &f, 1},
                             {CKA_ENCRYPT, &t, 1},          {CKA_DECRYPT, &t, 1},
                             {CKA_WRAP, &f, 1},             {CKA_UNWRAP, &f, 1},
                             {CKA_SIGN, &f, 1},             {CKA_VERIFY, &f, 1},
                             {CKA_DERIVE, &f, 1}};
        CK_ATTRIBUTE va = {CKA_VALUE, value, sizeof(value)};
        assert_int_equal(CKR_OK, p.f->C_UnwrapKey(p.s, &kw, root, kek, sizeof(kek), at, 13, &k));
        assert_int_equal(CKR_ATTRIBUTE_SENSITIVE, p.f->C_GetAttributeValue(p.s, k, &va, 1));
        out_len = sizeof(out);
        assert_int_not_equal(CKR_OK, p.f->C_WrapKey(p.s, &kw, root, k, out, &out_len));
        (void)p.f->C_DestroyObject(p.s, k);
    }
    /* The wrap template: a key imported with a known value is not wrapped into a "KEK". */
    {
        uint8_t known[32];
        CK_ATTRIBUTE it[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)},
                             {CKA_TOKEN, &f, 1},            {CKA_SENSITIVE, &t, 1},
                             {CKA_EXTRACTABLE, &t, 1},      {CKA_ENCRYPT, &f, 1},
                             {CKA_DECRYPT, &f, 1},          {CKA_WRAP, &f, 1},
                             {CKA_UNWRAP, &f, 1},           {CKA_SIGN, &f, 1},
                             {CKA_VERIFY, &f, 1},           {CKA_DERIVE, &f, 1},
                             {CKA_VALUE, known, sizeof(known)}};
        memset(known, 0x41, sizeof(known));
        assert_int_equal(CKR_OK, p.f->C_CreateObject(p.s, it, 13, &k));
        out_len = sizeof(out);
        assert_int_equal(CKR_KEY_NOT_WRAPPABLE, p.f->C_WrapKey(p.s, &kw, root, k, out, &out_len));
        (void)p.f->C_DestroyObject(p.s, k);
    }
    p11_close(&p);
    luna_wipe(key, sizeof(key));
}

/* /proc/<pid>/<what> of a live process, NUL bytes kept; *len set. */
static char *proc_file(pid_t pid, const char *what, size_t *len)
{
    char path[64];
    size_t n = 0;
    uint8_t *raw;
    char *text;
    snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, what);
    raw = luna_test_read_file(path, &n);
    text = malloc(n + 1);
    assert_non_null(text);
    memcpy(text, raw, n);
    text[n] = '\0';
    free(raw);
    *len = n;
    return text;
}

static void test_child_environment_minimal(void **state)
{
    (void)state;
    static const char *const bad_keep[] = {"SOFTHSM2_CONF", "LD_PRELOAD", NULL};
    static const char *const keep_two[] = {"SOFTHSM2_CONF", "LUNA_TEST_KEEP_ME", NULL};
    luna_hsm_config cfg = hsm_token_config(&g_tok);
    luna_hsm_client *c = NULL;
    char want[256];
    size_t len = 0, wlen;
    char *env;

    /* What the KMS's environment holds must not reach the HSM process. */
    assert_int_equal(0, setenv("LUNA_TEST_CANARY", "kms-only-canary", 1));
    assert_int_equal(0, setenv("LUNA_TEST_KEEP_ME", "kept", 1));
    c = start();
    env = proc_file(luna_hsm_client_pid(c), "environ", &len);
    wlen = (size_t)snprintf(want, sizeof(want), "SOFTHSM2_CONF=%s", getenv("SOFTHSM2_CONF"));
    assert_int_equal(wlen + 1, len); /* that one variable and nothing else */
    assert_memory_equal(want, env, wlen + 1);
    free(env);
    luna_hsm_client_free(c);

    /* An explicit list is exactly what passes. */
    cfg.env_keep = keep_two;
    assert_luna_ok(luna_hsm_client_new(&cfg, &c));
    env = proc_file(luna_hsm_client_pid(c), "environ", &len);
    assert_int_equal(wlen + 1 + strlen("LUNA_TEST_KEEP_ME=kept") + 1, len);
    assert_memory_equal(want, env, wlen + 1);
    assert_string_equal("LUNA_TEST_KEEP_ME=kept", env + wlen + 1);
    assert_null(memmem(env, len, "canary", 6));
    free(env);
    luna_hsm_client_free(c);

    /* The loader's variables are never passed, even when listed. */
    cfg.env_keep = bad_keep;
    assert_luna_err(LUNA_ERR_CONFIG, luna_hsm_client_new(&cfg, &c));
    assert_null(c);
    assert_int_equal(0, unsetenv("LUNA_TEST_CANARY"));
    assert_int_equal(0, unsetenv("LUNA_TEST_KEEP_ME"));
}

/* The "Name:\t..." line of /proc/<pid>/status, from after the tab to the newline. */
static char *status_line(pid_t pid, const char *name)
{
    size_t len = 0;
    char *text = proc_file(pid, "status", &len), *at, *end, *line;
    char needle[32];
    snprintf(needle, sizeof(needle), "\n%s:\t", name);
    at = strstr(text, needle);
    assert_non_null(at);
    at += strlen(needle);
    end = strchr(at, '\n');
    assert_non_null(end);
    line = strndup(at, (size_t)(end - at));
    free(text);
    return line;
}

static void expect_ids(pid_t pid, uid_t uid, gid_t gid)
{
    char want[96], *got;
    snprintf(want, sizeof(want), "%lu\t%lu\t%lu\t%lu", (unsigned long)uid, (unsigned long)uid,
             (unsigned long)uid, (unsigned long)uid);
    got = status_line(pid, "Uid");
    assert_string_equal(want, got);
    free(got);
    snprintf(want, sizeof(want), "%lu\t%lu\t%lu\t%lu", (unsigned long)gid, (unsigned long)gid,
             (unsigned long)gid, (unsigned long)gid);
    got = status_line(pid, "Gid");
    assert_string_equal(want, got);
    free(got);
}

static void test_child_runs_as_hsm_uid(void **state)
{
    (void)state;
    luna_hsm_config cfg = hsm_token_config(&g_tok);
    luna_hsm_client *c = NULL;
    capture cap = {.saved = -1, .fd = -1};
    char *text, *groups;

    if (geteuid() != 0) {
        /* Not root: no switch is possible; the limitation is said out loud. */
        capture_begin(&cap);
        c = start();
        text = capture_end(&cap);
        expect_ids(luna_hsm_client_pid(c), geteuid(), getegid());
        assert_non_null(strstr(text, "no uid separation"));
        free(text);
        luna_hsm_client_free(c);
        cfg.hsm_user = "65534";
        assert_luna_err(LUNA_ERR_CONFIG, luna_hsm_client_new(&cfg, &c));
        return;
    }
    /* Supplementary groups of the (root) KMS, none of which may be inherited. */
    {
        gid_t g[2] = {0, 4};
        assert_int_equal(0, setgroups(2, g));
    }
    /* Default user: lunal-hsm, its primary group, no supplementary groups. */
    c = start();
    expect_ids(luna_hsm_client_pid(c), g_tok.uid, g_tok.gid);
    groups = status_line(luna_hsm_client_pid(c), "Groups");
    assert_int_equal(strlen(groups), strspn(groups, " ")); /* the kernel writes "\t \n" */
    free(groups);
    groups = status_line(getpid(), "Groups");
    assert_string_equal("0 4 ", groups); /* the control: the line does list groups */
    free(groups);
    assert_luna_ok(luna_hsm_client_ping(c));
    luna_hsm_client_free(c);

    /* A numeric uid without a passwd entry: gid = uid. */
    hsm_token_chown_to(&g_tok, 64123, 64123);
    cfg.hsm_user = "64123";
    assert_luna_ok(luna_hsm_client_new(&cfg, &c));
    expect_ids(luna_hsm_client_pid(c), 64123, 64123);
    luna_hsm_client_free(c);

    /* The PIN file must belong to the HSM uid: root's is refused. */
    assert_int_equal(0, chown(g_tok.pin_file, 0, 0));
    assert_luna_err(LUNA_ERR_PERMISSION, luna_hsm_client_new(&cfg, &c));
    hsm_token_chown(&g_tok);

    /* Never root, never an unknown user. */
    cfg.hsm_user = "root";
    assert_luna_err(LUNA_ERR_CONFIG, luna_hsm_client_new(&cfg, &c));
    cfg.hsm_user = "0";
    assert_luna_err(LUNA_ERR_CONFIG, luna_hsm_client_new(&cfg, &c));
    cfg.hsm_user = "no-such-user-lunal";
    assert_luna_err(LUNA_ERR_CONFIG, luna_hsm_client_new(&cfg, &c));
    assert_null(c);
    assert_int_equal(0, setgroups(0, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_root_created_with_right_attributes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_root_extractable_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_root_decrypt_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_root_modifiable_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_roots_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrap_seal_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampering_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry_mac, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_pin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pin_never_logged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_without_unwrap_template_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_token_forces_unwrap_template, setup, teardown),
        cmocka_unit_test_setup_teardown(test_child_environment_minimal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_child_runs_as_hsm_uid, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
