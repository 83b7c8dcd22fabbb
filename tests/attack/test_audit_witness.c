/*
 * The witness against a lying log.  The real luna-audit and
 * luna-audit-witness processes run; the test carries checkpoints and
 * consistency proofs from the log to the witness, and also forges
 * checkpoints with the log's own key (a compromised log):
 *  - the first checkpoint is cosigned (the reply holds the log's and the
 *    witness's signatures, both verifying);
 *  - a second root for the same size (split view): 409 split_view, logged;
 *  - a bigger checkpoint with a consistency proof that does not verify,
 *    or none: refused; with the log's real proof: cosigned;
 *  - a smaller size (rollback), a stale old_size, another log's key,
 *    another origin: refused;
 *  - a checkpoint size above 2^63-1 (signed by the log's key) is refused
 *    and the witness still restarts afterwards;
 *  - the witness keeps its state across a restart.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit_test_util.h"
#include "luna/bytes.h"
#include "luna/note.h"
#include "luna_test.h"

#define H LUNA_MERKLE_HASH_LEN

typedef struct wit {
    char cfg[HTU_PATH_MAX], key[HTU_PATH_MAX], log[HTU_PATH_MAX], db[HTU_PATH_MAX];
    luna_note_verifier v;
    uint16_t port;
    pid_t pid;
} wit;

static void wit_setup(atu_env *e, wit *w)
{
    memset(w, 0, sizeof(*w));
    htu_path(&e->h, "witness", ".skey", w->key, sizeof(w->key));
    htu_path(&e->h, "witness", ".conf.json", w->cfg, sizeof(w->cfg));
    htu_path(&e->h, "witness", ".log", w->log, sizeof(w->log));
    htu_path(&e->h, "witness", ".db", w->db, sizeof(w->db));
    int p[2];
    assert_int_equal(0, pipe(p));
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        execl(LUNA_AUDIT_WITNESS_BIN, LUNA_AUDIT_WITNESS_BIN, "keygen", "--name",
              "witness.test/1", "--out", w->key, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char vkey[LUNA_NOTE_VKEY_MAX_LEN] = "";
    ssize_t r = read(p[0], vkey, sizeof(vkey) - 1);
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    assert_true(r > 1);
    assert_luna_ok(luna_note_verifier_parse(vkey, (size_t)r - 1, &w->v));
    w->port = atu_free_port();
    char crt[HTU_PATH_MAX], key[HTU_PATH_MAX];
    htu_path(&e->h, "witness", ".crt", crt, sizeof(crt));
    htu_path(&e->h, "witness", ".key", key, sizeof(key));
    FILE *f = fopen(w->cfg, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"profile\":\"development\",\"listen\":{\"port\":%u},"
            "\"tls\":{\"cert\":\"%s\",\"key\":\"%s\",\"ca\":\"%s\"},"
            "\"storage\":{\"url\":\"sqlite:%s\"},"
            "\"witness\":{\"name\":\"witness.test/1\",\"key_file\":\"%s\","
            "\"log_origin\":\"%s\",\"log_vkey\":\"%s\"}}",
            (unsigned)w->port, crt, key, e->h.ca_crt, w->db, w->key, ATU_ORIGIN, e->vkey);
    fclose(f);
}

static void wit_start(wit *w)
{
    int p[2];
    assert_int_equal(0, pipe(p));
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        int fd = open(w->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0)
            dup2(fd, STDERR_FILENO);
        execl(LUNA_AUDIT_WITNESS_BIN, LUNA_AUDIT_WITNESS_BIN, "--config", w->cfg, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char line[64] = "";
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    if (poll(&pfd, 1, 15000) > 0)
        (void)!read(p[0], line, sizeof(line) - 1);
    close(p[0]);
    unsigned port = 0;
    if (sscanf(line, "PORT %u", &port) != 1 || port != w->port) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("witness did not start (see %s)", w->log);
    }
    w->pid = pid;
}

static void wit_stop(wit *w)
{
    kill(w->pid, SIGTERM);
    int st;
    waitpid(w->pid, &st, 0);
    w->pid = 0;
}

/* POSTs add-checkpoint; returns the status, the body in out (malloc'd). */
static int wit_add(atu_env *e, wit *w, uint64_t old_size, const luna_merkle_proof *p,
                   const uint8_t *note, size_t note_len, char **out)
{
    json_t *proof = json_array();
    for (size_t i = 0; p != NULL && i < p->n; i++) {
        char hex[2 * H + 1];
        assert_luna_ok(luna_hex_encode(p->hash[i], H, hex, sizeof(hex)));
        json_array_append_new(proof, json_string(hex));
    }
    json_t *o = json_pack("{s:I,s:o,s:s%}", "old_size", (json_int_t)old_size, "proof", proof,
                          "checkpoint", (const char *)note, note_len);
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    luna_http_client_opts co;
    char paths[3][HTU_PATH_MAX];
    htu_client_opts(&e->h, "kms", w->port, "lunal://svc/witness", &co, paths);
    luna_http_result r;
    assert_luna_ok(luna_http_fetch(&co, "POST", "/v1/witness/add-checkpoint", "application/json",
                                   body, strlen(body), &r));
    free(body);
    *out = calloc(1, r.body_len + 1);
    memcpy(*out, r.body, r.body_len);
    int st = r.status;
    luna_http_result_free(&r);
    return st;
}

static void post(atu_env *e, unsigned from, unsigned to)
{
    for (unsigned i = from; i < to; i++) {
        char rid[32], body[1024];
        snprintf(rid, sizeof(rid), "w-%u", i);
        atu_entry_json(body, sizeof(body), "acme", rid);
        luna_http_result r;
        assert_int_equal(201, atu_fetch(e, "kms", "POST", "/v1/audit/entries", body, &r));
        luna_http_result_free(&r);
    }
}

static void consistency(atu_env *e, uint64_t from, uint64_t to, luna_merkle_proof *p)
{
    char path[96];
    snprintf(path, sizeof(path), "/v1/audit/proof/consistency?from=%llu&to=%llu",
             (unsigned long long)from, (unsigned long long)to);
    luna_http_result r;
    assert_int_equal(200, atu_fetch(e, "kms", "GET", path, NULL, &r));
    json_error_t jerr;
    json_t *o = json_loadb((const char *)r.body, r.body_len, 0, &jerr);
    assert_non_null(o);
    luna_merkle_proof_init(p);
    const json_t *arr = json_object_get(o, "proof");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        uint8_t h[H];
        size_t n;
        const char *s = json_string_value(json_array_get(arr, i));
        assert_luna_ok(luna_hex_decode(s, strlen(s), h, sizeof(h), &n));
        assert_luna_ok(luna_merkle_proof_add(p, h, n));
    }
    json_decref(o);
    luna_http_result_free(&r);
}

/* A checkpoint (size, root) signed with the log's own key. */
static size_t forge(atu_env *e, const char *origin, uint64_t size, const uint8_t root[H],
                    const char *key_path, uint8_t *out, size_t cap)
{
    size_t klen;
    uint8_t *ktext = luna_test_read_file(key_path, &klen);
    while (klen > 0 && ktext[klen - 1] == '\n')
        klen--;
    luna_note_signer *s = NULL;
    assert_luna_ok(luna_note_signer_parse((const char *)ktext, klen, &s));
    luna_wipe(ktext, klen);
    free(ktext);
    luna_note_checkpoint cp = {.origin = origin, .origin_len = strlen(origin), .size = size};
    memcpy(cp.root, root, H);
    uint8_t text[512];
    size_t tl;
    assert_luna_ok(luna_note_checkpoint_format(&cp, text, sizeof(text), &tl));
    size_t len;
    assert_luna_ok(luna_note_sign(text, tl, &s, 1, out, cap, &len));
    luna_note_signer_free(s);
    (void)e;
    return len;
}

static void test_witness_refuses_split_view_and_rollback(void **state)
{
    (void)state;
    atu_env e;
    atu_setup(&e, NULL);
    wit w;
    wit_setup(&e, &w);
    atu_start(&e);
    wit_start(&w);
    char *body = NULL;

    post(&e, 0, 5);
    atu_checkpoint c5;
    atu_checkpoint_get(&e, &c5);
    /* First sight: cosigned; both signatures verify. */
    assert_int_equal(200, wit_add(&e, &w, 0, NULL, c5.note, c5.len, &body));
    luna_note_verifier both[2] = {e.verifier, w.v};
    luna_note n;
    assert_luna_ok(luna_note_open((const uint8_t *)body, strlen(body), both, 2, &n));
    assert_int_equal(2, n.n_verified);
    assert_luna_ok(luna_note_open((const uint8_t *)body, strlen(body), &w.v, 1, &n));
    free(body);
    /* Idempotent for the same checkpoint. */
    assert_int_equal(200, wit_add(&e, &w, 5, NULL, c5.note, c5.len, &body));
    free(body);

    /* Split view: the log's key signs another root for size 5. */
    uint8_t other[H];
    memcpy(other, c5.root, H);
    other[0] ^= 1;
    uint8_t fake[1024];
    size_t fl = forge(&e, ATU_ORIGIN, 5, other, e.key_path, fake, sizeof(fake));
    assert_int_equal(409, wit_add(&e, &w, 5, NULL, fake, fl, &body));
    assert_non_null(strstr(body, "split_view"));
    free(body);
    assert_true(atu_file_contains(w.log, "SPLIT VIEW", 10));

    /* Growth with the log's real proof: cosigned.  Without or with a bad
     * proof, or a forged bigger root: refused. */
    post(&e, 5, 12);
    atu_checkpoint c12;
    atu_checkpoint_get(&e, &c12);
    luna_merkle_proof p;
    consistency(&e, 5, 12, &p);
    assert_int_equal(409, wit_add(&e, &w, 5, NULL, c12.note, c12.len, &body));
    assert_non_null(strstr(body, "inconsistent"));
    free(body);
    luna_merkle_proof badp = p;
    badp.hash[0][3] ^= 0x10;
    assert_int_equal(409, wit_add(&e, &w, 5, &badp, c12.note, c12.len, &body));
    free(body);
    fl = forge(&e, ATU_ORIGIN, 12, other, e.key_path, fake, sizeof(fake));
    assert_int_equal(409, wit_add(&e, &w, 5, &p, fake, fl, &body));
    free(body);
    /* Stale old_size (the witness says where it is). */
    assert_int_equal(409, wit_add(&e, &w, 4, &p, c12.note, c12.len, &body));
    assert_non_null(strstr(body, "\"size\":5"));
    free(body);
    assert_int_equal(200, wit_add(&e, &w, 5, &p, c12.note, c12.len, &body));
    free(body);

    /* Rollback to the old size 5 checkpoint. */
    assert_int_equal(409, wit_add(&e, &w, 12, NULL, c5.note, c5.len, &body));
    assert_non_null(strstr(body, "rollback"));
    free(body);
    /* Another origin, and a key the witness does not know. */
    fl = forge(&e, "lunal.audit/other", 12, c12.root, e.key_path, fake, sizeof(fake));
    assert_int_equal(403, wit_add(&e, &w, 12, NULL, fake, fl, &body));
    free(body);
    char rogue[HTU_PATH_MAX], vk[LUNA_NOTE_VKEY_MAX_LEN];
    htu_path(&e.h, "rogue", ".skey", rogue, sizeof(rogue));
    {
        pid_t pid = fork();
        if (pid == 0) {
            int dn = open("/dev/null", O_WRONLY);
            dup2(dn, STDOUT_FILENO);
            execl(LUNA_AUDIT_BIN, LUNA_AUDIT_BIN, "keygen", "--name", ATU_ORIGIN, "--out", rogue,
                  (char *)NULL);
            _exit(127);
        }
        int st;
        waitpid(pid, &st, 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    (void)vk;
    fl = forge(&e, ATU_ORIGIN, 12, c12.root, rogue, fake, sizeof(fake));
    assert_int_equal(403, wit_add(&e, &w, 12, NULL, fake, fl, &body));
    free(body);

    /* A compromised log key signs sizes the witness cannot store as a
     * signed 64-bit integer (2^63, 2^64-1): refused before anything is
     * saved, so the witness still restarts (below) and still holds 12. */
    static const uint64_t huge[] = {(uint64_t)INT64_MAX + 1u, UINT64_MAX};
    for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
        fl = forge(&e, ATU_ORIGIN, huge[i], c12.root, e.key_path, fake, sizeof(fake));
        assert_int_equal(400, wit_add(&e, &w, 12, &p, fake, fl, &body));
        assert_non_null(strstr(body, "\"size\":12"));
        free(body);
    }

    /* State survives a restart: the split view at 12 is still refused. */
    wit_stop(&w);
    wit_start(&w);
    fl = forge(&e, ATU_ORIGIN, 12, other, e.key_path, fake, sizeof(fake));
    assert_int_equal(409, wit_add(&e, &w, 12, NULL, fake, fl, &body));
    assert_non_null(strstr(body, "split_view"));
    free(body);
    assert_int_equal(200, wit_add(&e, &w, 12, NULL, c12.note, c12.len, &body));
    free(body);

    wit_stop(&w);
    assert_int_equal(0, atu_stop(&e, SIGTERM));
    atu_teardown(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_witness_refuses_split_view_and_rollback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
