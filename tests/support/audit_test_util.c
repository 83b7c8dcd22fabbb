/*
 * audit_test_util.c - helpers of the audit service tests (see
 * audit_test_util.h).  Test-only code; every wait is bounded.
 */
#include "audit_test_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "luna/audience.h"
#include "luna/audit_entry.h"
#include "luna/audit_verify.h"
#include "luna/bytes.h"
#include "luna_test.h"

#ifndef LUNA_AUDIT_BIN
#error "LUNA_AUDIT_BIN must name the luna-audit binary"
#endif

static long ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint16_t atu_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(0, bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
    socklen_t sl = sizeof(sa);
    assert_int_equal(0, getsockname(fd, (struct sockaddr *)&sa, &sl));
    close(fd);
    return ntohs(sa.sin_port);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal((ssize_t)n, write(fd, text, n));
    close(fd);
}

/* The temp folder, CA and certificates; once per env (the IAM stub may
 * have needed them before the config exists). */
static void base_setup(atu_env *e)
{
    if (e->h.dir[0] != '\0')
        return;
    htu_setup(&e->h);
    static const char *const certs[][2] = {{"lunal://svc/audit", "audit"},
                                           {"lunal://svc/kms", "kms"},
                                           {"lunal://svc/gateway", "gateway"},
                                           {"lunal://svc/witness", "witness"},
                                           {"lunal://svc/iam", "iam"},
                                           {"lunal://tee/t1", "tee"}};
    for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++)
        assert_int_equal(0, htu_issue(&e->h, NULL, certs[i][0], certs[i][1], NULL));
    htu_path(&e->h, "iam", ".jwks", e->jwks_path, sizeof(e->jwks_path));
}

void atu_write_jwks(atu_env *e, luna_jws_signer *const *signers, size_t n)
{
    luna_jws_keyset *ks = NULL;
    assert_luna_ok(luna_jws_keyset_new(&ks));
    for (size_t i = 0; i < n; i++)
        assert_luna_ok(luna_jws_signer_publish(signers[i], ks));
    char *jwks = NULL;
    assert_luna_ok(luna_jws_keyset_export(ks, &jwks, NULL));
    /* Replaced by rename, as a careful publisher does. */
    char tmp[HTU_PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.new", e->jwks_path);
    write_file(tmp, jwks, 0644);
    assert_int_equal(0, rename(tmp, e->jwks_path));
    free(jwks);
    luna_jws_keyset_free(ks);
}

/* The service's config file (the port and paths already chosen). */
static void write_config(atu_env *e, const char *extra_audit_json, const char *jwks_source)
{
    char crt[HTU_PATH_MAX], key[HTU_PATH_MAX];
    htu_path(&e->h, "audit", ".crt", crt, sizeof(crt));
    htu_path(&e->h, "audit", ".key", key, sizeof(key));
    char src[HTU_PATH_MAX + 32];
    if (jwks_source == NULL)
        snprintf(src, sizeof(src), ",\"iam_jwks\":\"%s\"", e->jwks_path);
    else
        snprintf(src, sizeof(src), "%s", jwks_source);
    char cfg[8192], storage[HTU_PATH_MAX + 1100];
    if (e->storage_url[0] != '\0')
        snprintf(storage, sizeof(storage), "%s", e->storage_url);
    else
        snprintf(storage, sizeof(storage), "sqlite:%s", e->db_path);
    int n = snprintf(cfg, sizeof(cfg),
                     "{\"profile\":\"development\","
                     "\"listen\":{\"address\":\"127.0.0.1\",\"port\":%u},"
                     "\"tls\":{\"cert\":\"%s\",\"key\":\"%s\",\"ca\":\"%s\"},"
                     "\"storage\":{\"url\":\"%s\"},"
                     "\"log\":{\"level\":\"info\"},"
                     "\"audit\":{\"origin\":\"%s\",\"key_file\":\"%s\"%s,"
                     "\"token_issuer\":\"%s\",\"token_audience\":\"%s\"%s}}",
                     (unsigned)e->port, crt, key, e->h.ca_crt, storage, ATU_ORIGIN,
                     e->key_path, src, ATU_ISSUER, ATU_AUDIENCE,
                     extra_audit_json != NULL ? extra_audit_json : "");
    assert_true(n > 0 && (size_t)n < sizeof(cfg));
    write_file(e->config_path, cfg, 0600);
}

void atu_setup(atu_env *e, const char *extra_audit_json)
{
    memset(e, 0, sizeof(*e));
    atu_setup_src(e, extra_audit_json, NULL);
}

void atu_setup_src(atu_env *e, const char *extra_audit_json, const char *jwks_source)
{
    base_setup(e);
    htu_path(&e->h, "audit", ".db", e->db_path, sizeof(e->db_path));
    htu_path(&e->h, "checkpoint", ".skey", e->key_path, sizeof(e->key_path));
    htu_path(&e->h, "audit", ".json", e->config_path, sizeof(e->config_path));
    htu_path(&e->h, "audit", ".log", e->log_path, sizeof(e->log_path));

    /* The checkpoint key through the real keygen; its vkey from stdout. */
    int p[2];
    assert_int_equal(0, pipe(p));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        close(p[0]);
        execl(LUNA_AUDIT_BIN, LUNA_AUDIT_BIN, "keygen", "--name", ATU_ORIGIN, "--out",
              e->key_path, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0;
    for (;;) {
        ssize_t r = read(p[0], e->vkey + len, sizeof(e->vkey) - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(p[0]);
    int st;
    assert_int_equal(pid, waitpid(pid, &st, 0));
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    while (len > 0 && e->vkey[len - 1] == '\n')
        len--;
    e->vkey[len] = '\0';
    assert_luna_ok(luna_note_verifier_parse(e->vkey, len, &e->verifier));
    struct stat sb;
    assert_int_equal(0, stat(e->key_path, &sb));
    assert_int_equal(0600, sb.st_mode & 0777);

    /* kid shaped like IAM's: "iam-" || 16 hex. */
    assert_luna_ok(luna_jws_signer_generate("iam-00000000000000a1", &e->iam));
    atu_write_jwks(e, &e->iam, 1);

    e->port = atu_free_port();
    write_config(e, extra_audit_json, jwks_source);
}

void atu_rewrite_config(atu_env *e, const char *extra_audit_json)
{
    write_config(e, extra_audit_json, NULL);
}

static void iam_stub_stop(atu_env *e);

void atu_teardown(atu_env *e)
{
    if (e->pid > 0)
        (void)atu_stop(e, SIGKILL);
    iam_stub_stop(e);
    luna_jws_signer_free(e->iam);
    e->iam = NULL;
    htu_teardown(&e->h);
}

static int wait_exit(pid_t pid, int timeout_ms)
{
    long end = ms_now() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (r < 0 && errno != EINTR)
            return -1;
        if (ms_now() >= end) {
            kill(pid, SIGKILL);
            (void)waitpid(pid, &st, 0);
            return -1;
        }
        usleep(5000);
    }
}

bool atu_try_start(atu_env *e)
{
    int p[2];
    assert_int_equal(0, pipe(p));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], STDOUT_FILENO);
        int fd = open(e->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0)
            dup2(fd, STDERR_FILENO);
        execl(LUNA_AUDIT_BIN, LUNA_AUDIT_BIN, "--config", e->config_path, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char line[64];
    size_t len = 0;
    memset(line, 0, sizeof(line));
    long end = ms_now() + 20000;
    while (len + 1 < sizeof(line) && strchr(line, '\n') == NULL) {
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        long left = end - ms_now();
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            break;
        ssize_t r = read(p[0], line + len, sizeof(line) - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(p[0]);
    unsigned port = 0;
    if (sscanf(line, "PORT %u", &port) != 1 || port != e->port) {
        kill(pid, SIGKILL);
        (void)wait_exit(pid, 5000);
        return false;
    }
    e->pid = pid;
    return true;
}

void atu_start(atu_env *e)
{
    if (!atu_try_start(e))
        fail_msg("luna-audit did not start (see %s)", e->log_path);
}

int atu_stop(atu_env *e, int sig)
{
    if (e->pid <= 0)
        return -1;
    kill(e->pid, sig);
    int rc = wait_exit(e->pid, 5000);
    e->pid = 0;
    return rc;
}

void atu_client(atu_env *e, const char *name, luna_http_client_opts *o,
                char paths[3][HTU_PATH_MAX])
{
    htu_client_opts(&e->h, name, e->port, "lunal://svc/audit", o, paths);
}

int atu_fetch(atu_env *e, const char *name, const char *method, const char *path,
              const char *json_body, luna_http_result *out)
{
    luna_http_client_opts o;
    char paths[3][HTU_PATH_MAX];
    atu_client(e, name, &o, paths);
    luna_err err = luna_http_fetch(&o, method, path, json_body != NULL ? "application/json" : NULL,
                                   json_body, json_body != NULL ? strlen(json_body) : 0, out);
    if (err != LUNA_OK)
        fail_msg("fetch %s %s: %s", method, path, luna_errname(err));
    return out->status;
}

int atu_get_bearer(atu_env *e, const char *name, const char *path, const char *token,
                   htu_raw *out)
{
    SSL_CTX *ctx = htu_client_ctx(&e->h, name, NULL, TLS1_3_VERSION, TLS1_3_VERSION);
    char req[8192];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: localhost\r\n%s%s%sConnection: close\r\n\r\n",
                     path, token != NULL ? "Authorization: Bearer " : "",
                     token != NULL ? token : "", token != NULL ? "\r\n" : "");
    assert_true(n > 0 && (size_t)n < sizeof(req));
    htu_raw_exchange(e->port, ctx, req, (size_t)n, 10000, out);
    SSL_CTX_free(ctx);
    int status = 0;
    if (!htu_raw_status(out, &status))
        fail_msg("no HTTP response for %s", path);
    return status;
}

json_t *atu_token_claims(const char *tenant, const char *roles)
{
    json_t *arr = json_array();
    assert_non_null(arr);
    const char *p = roles;
    while (p != NULL && *p != '\0') {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        json_array_append_new(arr, json_stringn(p, n));
        p = comma != NULL ? comma + 1 : NULL;
    }
    char sub[200];
    snprintf(sub, sizeof(sub), "%s/%s", tenant, "alice");
    json_int_t now = (json_int_t)time(NULL);
    json_t *claims = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:I,s:I,s:I,s:s,s:s}", "iss", ATU_ISSUER, "aud",
        ATU_AUDIENCE, "sub", sub, "tenant", tenant, "principal", "alice", "kind", "user", "roles",
        arr, "auth", "api_key", "iat", now, "nbf", now, "exp", now + 600, "jti",
        "AAECAwQFBgcICQoLDA0ODw", "api_key_id", "ak_0123456789abcdef");
    assert_non_null(claims);
    return claims;
}

char *atu_sign(luna_jws_signer *signer, const json_t *claims)
{
    char *tok = NULL;
    assert_luna_ok(luna_jws_sign(signer, claims, &tok, NULL));
    return tok;
}

char *atu_token(atu_env *e, const char *tenant, const char *roles)
{
    json_t *claims = atu_token_claims(tenant, roles);
    char *tok = atu_sign(e->iam, claims);
    json_decref(claims);
    return tok;
}

/* ---- the IAM JWKS stand-in ---- */

typedef struct iam_stub {
    atu_env *e;
    struct event_base *base;
    luna_http_server *srv;
    struct event *stop_ev;
    int stop_pipe[2];
    pthread_t thread;
    pthread_mutex_t lock;
    unsigned hits;
} iam_stub;

static void stub_jwks(luna_http_request *req, void *arg)
{
    iam_stub *st = arg;
    size_t len = 0;
    uint8_t *b = luna_test_read_file(st->e->jwks_path, &len);
    pthread_mutex_lock(&st->lock);
    st->hits++;
    pthread_mutex_unlock(&st->lock);
    if (b == NULL) {
        luna_http_reply_error(req, 503, "unavailable", "no key set");
        return;
    }
    luna_http_reply(req, 200, "application/json", b, len);
    free(b);
}

static void stub_stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static void *stub_main(void *arg)
{
    iam_stub *st = arg;
    (void)event_base_dispatch(st->base);
    return NULL;
}

uint16_t atu_iam_stub_start(atu_env *e)
{
    base_setup(e);
    iam_stub *st = calloc(1, sizeof(*st));
    assert_non_null(st);
    st->e = e;
    pthread_mutex_init(&st->lock, NULL);
    st->base = event_base_new();
    assert_non_null(st->base);
    char crt[HTU_PATH_MAX], key[HTU_PATH_MAX];
    htu_path(&e->h, "iam", ".crt", crt, sizeof(crt));
    htu_path(&e->h, "iam", ".key", key, sizeof(key));
    luna_http_server_opts o = {.component = "iam-stub",
                               .bind_addr = "127.0.0.1",
                               .tls = {.ca_file = e->h.ca_crt, .cert_file = crt, .key_file = key}};
    assert_luna_ok(luna_http_server_new(st->base, &o, &st->srv));
    static const char *const any[] = {LUNA_HTTP_ALLOW_ANY_PLATFORM};
    const luna_http_route r = {LUNA_HTTP_GET, "/v1/iam/jwks", any, 1, NULL, stub_jwks, st};
    assert_luna_ok(luna_http_server_add_route(st->srv, &r));
    assert_int_equal(0, pipe(st->stop_pipe));
    st->stop_ev = event_new(st->base, st->stop_pipe[0], EV_READ, stub_stop_cb, st->base);
    assert_non_null(st->stop_ev);
    assert_int_equal(0, event_add(st->stop_ev, NULL));
    uint16_t port = luna_http_server_port(st->srv);
    assert_int_equal(0, pthread_create(&st->thread, NULL, stub_main, st));
    e->iam_stub = st;
    return port;
}

unsigned atu_iam_stub_hits(atu_env *e)
{
    iam_stub *st = e->iam_stub;
    assert_non_null(st);
    pthread_mutex_lock(&st->lock);
    unsigned n = st->hits;
    pthread_mutex_unlock(&st->lock);
    return n;
}

static void iam_stub_stop(atu_env *e)
{
    iam_stub *st = e->iam_stub;
    if (st == NULL)
        return;
    assert_int_equal(1, write(st->stop_pipe[1], "x", 1));
    pthread_join(st->thread, NULL);
    luna_http_server_free(st->srv);
    event_free(st->stop_ev);
    event_base_free(st->base);
    close(st->stop_pipe[0]);
    close(st->stop_pipe[1]);
    pthread_mutex_destroy(&st->lock);
    free(st);
    e->iam_stub = NULL;
}

void atu_entry_json(char *out, size_t cap, const char *tenant, const char *rid)
{
    int n = snprintf(out, cap,
                     "{\"actor\":\"lunal://tee/t1\",\"tenant\":\"%s\",\"tee\":\"t1\","
                     "\"deployment\":\"dep-1\",\"operation\":\"key.release\","
                     "\"objects\":[\"otk-1\"],\"outcome\":\"success\",\"request_id\":\"%s\"}",
                     tenant, rid);
    assert_true(n > 0 && (size_t)n < cap);
}

bool atu_file_contains(const char *path, const void *needle, size_t n)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return false;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size <= 0) {
        close(fd);
        return false;
    }
    size_t len = (size_t)st.st_size;
    uint8_t *b = malloc(len);
    assert_non_null(b);
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, b + got, len - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    bool found = false;
    for (size_t i = 0; n > 0 && i + n <= got && !found; i++)
        found = memcmp(b + i, needle, n) == 0;
    free(b);
    return found;
}

void atu_checkpoint_get(atu_env *e, atu_checkpoint *out)
{
    memset(out, 0, sizeof(*out));
    luna_http_result r;
    assert_int_equal(200, atu_fetch(e, "kms", "GET", "/v1/audit/checkpoint", NULL, &r));
    assert_true(r.body_len <= sizeof(out->note));
    memcpy(out->note, r.body, r.body_len);
    out->len = r.body_len;
    luna_http_result_free(&r);
    luna_note n;
    luna_note_checkpoint cp;
    assert_luna_ok(luna_note_checkpoint_open(out->note, out->len, ATU_ORIGIN, strlen(ATU_ORIGIN),
                                             &e->verifier, 1, &n, &cp));
    out->size = cp.size;
    memcpy(out->root, cp.root, LUNA_MERKLE_HASH_LEN);
}

luna_err atu_verify_log(atu_env *e, const atu_checkpoint *kept, atu_checkpoint *now)
{
    /* The checks are the shared verifier's (luna/audit_verify.h), the
     * same code `lunal audit verify` runs; only the transport is here. */
    atu_checkpoint cur;
    atu_checkpoint_get(e, &cur);
    luna_audit_cp *k = calloc(1, sizeof(*k)), *n = calloc(1, sizeof(*n));
    assert_non_null(k);
    assert_non_null(n);
    assert_luna_ok(luna_audit_cp_open(cur.note, cur.len, &e->verifier, NULL, n));
    if (kept != NULL && kept->size > 0)
        assert_luna_ok(luna_audit_cp_open(kept->note, kept->len, &e->verifier, NULL, k));
    luna_err err = LUNA_OK;
    luna_merkle_proof p;
    luna_merkle_proof_init(&p);
    if (k->size > 0 && n->size < k->size) {
        err = LUNA_ERR_CONFLICT;
    } else if (k->size > 0 && n->size > k->size) {
        char path[128];
        snprintf(path, sizeof(path), "/v1/audit/proof/consistency?from=%llu&to=%llu",
                 (unsigned long long)k->size, (unsigned long long)n->size);
        luna_http_result r;
        int st = atu_fetch(e, "kms", "GET", path, NULL, &r);
        err = st == 200 ? luna_audit_proof_parse(r.body, r.body_len, &p) : LUNA_ERR_VERIFY;
        luna_http_result_free(&r);
    }
    if (err == LUNA_OK && luna_audit_check_consistency(k, n, &p) != LUNA_OK)
        err = LUNA_ERR_VERIFY;
    /* Recompute the whole tree from the exported leaves. */
    luna_audit_root_acc acc;
    luna_audit_root_acc_init(&acc);
    char *tok = atu_token(e, "ops", ATU_PLATFORM_AUDITOR);
    while (err == LUNA_OK && acc.count < n->size) {
        uint64_t to = acc.count + 30 < n->size ? acc.count + 30 : n->size;
        char path[128];
        snprintf(path, sizeof(path), "/v1/audit/export?from=%llu&to=%llu",
                 (unsigned long long)acc.count, (unsigned long long)to);
        htu_raw raw;
        int st = atu_get_bearer(e, "gateway", path, tok, &raw);
        const char *body = htu_raw_body(&raw);
        uint64_t got = 0;
        if (st != 200 || body == NULL ||
            luna_audit_root_acc_add_jsonl(&acc, (const uint8_t *)body, strlen(body), &got) !=
                LUNA_OK ||
            got == 0 || acc.count > n->size)
            err = LUNA_ERR_VERIFY;
    }
    free(tok);
    if (err == LUNA_OK) {
        uint8_t root[LUNA_MERKLE_HASH_LEN];
        err = luna_audit_root_acc_root(&acc, root);
        if (err == LUNA_OK && memcmp(root, n->root, LUNA_MERKLE_HASH_LEN) != 0)
            err = LUNA_ERR_VERIFY;
    }
    free(k);
    free(n);
    if (err == LUNA_OK && now != NULL)
        *now = cur;
    return err;
}

/* ---- the witness process ---- */

void atu_witness_setup(atu_env *e, atu_witness *w)
{
    memset(w, 0, sizeof(*w));
    htu_path(&e->h, "witness", ".skey", w->key, sizeof(w->key));
    htu_path(&e->h, "witness", ".conf.json", w->cfg, sizeof(w->cfg));
    htu_path(&e->h, "witness", ".log", w->log, sizeof(w->log));
    htu_path(&e->h, "witness", ".db", w->db, sizeof(w->db));
    int p[2];
    assert_int_equal(0, pipe(p));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        close(p[0]);
        execl(LUNA_AUDIT_WITNESS_BIN, LUNA_AUDIT_WITNESS_BIN, "keygen", "--name",
              ATU_WITNESS_NAME, "--out", w->key, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0;
    for (;;) {
        ssize_t r = read(p[0], w->vkey + len, sizeof(w->vkey) - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(p[0]);
    int st;
    assert_int_equal(pid, waitpid(pid, &st, 0));
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    while (len > 0 && w->vkey[len - 1] == '\n')
        len--;
    w->vkey[len] = '\0';
    assert_luna_ok(luna_note_verifier_parse(w->vkey, len, &w->v));
    w->port = atu_free_port();
    char crt[HTU_PATH_MAX], key[HTU_PATH_MAX], cfg[4096];
    htu_path(&e->h, "witness", ".crt", crt, sizeof(crt));
    htu_path(&e->h, "witness", ".key", key, sizeof(key));
    int n = snprintf(cfg, sizeof(cfg),
                     "{\"profile\":\"development\",\"listen\":{\"address\":\"127.0.0.1\","
                     "\"port\":%u},\"tls\":{\"cert\":\"%s\",\"key\":\"%s\",\"ca\":\"%s\"},"
                     "\"storage\":{\"url\":\"sqlite:%s\"},"
                     "\"witness\":{\"name\":\"%s\",\"key_file\":\"%s\","
                     "\"log_origin\":\"%s\",\"log_vkey\":\"%s\"}}",
                     (unsigned)w->port, crt, key, e->h.ca_crt, w->db, ATU_WITNESS_NAME, w->key,
                     ATU_ORIGIN, e->vkey);
    assert_true(n > 0 && (size_t)n < sizeof(cfg));
    write_file(w->cfg, cfg, 0600);
}

void atu_witness_start(atu_witness *w)
{
    int p[2];
    assert_int_equal(0, pipe(p));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
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
        (void)wait_exit(pid, 5000);
        fail_msg("witness did not start (see %s)", w->log);
    }
    w->pid = pid;
}

void atu_witness_stop(atu_witness *w)
{
    if (w->pid <= 0)
        return;
    kill(w->pid, SIGTERM);
    (void)wait_exit(w->pid, 5000);
    w->pid = 0;
}

uint64_t atu_witness_size(atu_env *e, atu_witness *w)
{
    luna_http_client_opts co;
    char paths[3][HTU_PATH_MAX];
    htu_client_opts(&e->h, "kms", w->port, "lunal://svc/witness", &co, paths);
    luna_http_result r;
    assert_luna_ok(luna_http_fetch(&co, "GET", "/v1/witness/state", NULL, NULL, 0, &r));
    assert_int_equal(200, r.status);
    json_error_t jerr;
    json_t *o = json_loadb((const char *)r.body, r.body_len, 0, &jerr);
    luna_http_result_free(&r);
    assert_non_null(o);
    json_int_t n = json_integer_value(json_object_get(o, "size"));
    json_decref(o);
    return (uint64_t)n;
}

bool atu_witness_wait(atu_env *e, atu_witness *w, uint64_t n, int timeout_ms)
{
    long end = ms_now() + timeout_ms;
    while (ms_now() < end) {
        if (atu_witness_size(e, w) == n)
            return true;
        usleep(20000);
    }
    return atu_witness_size(e, w) == n;
}

void atu_witness_peer_json(const atu_witness *w, char *out, size_t cap)
{
    int n = snprintf(out, cap, ",\"witness\":{\"host\":\"127.0.0.1\",\"port\":%u}",
                     (unsigned)w->port);
    assert_true(n > 0 && (size_t)n < cap);
}

/* ---- the gateway stand-in ---- */

typedef struct relay_priv {
    atu_env *e;
    atu_witness *w;
    struct event_base *base;
    luna_http_server *srv;
    struct event *stop_ev;
    int stop_pipe[2];
    pthread_t thread;
    pthread_mutex_t lock;
    char *token;
} relay_priv;

static void relay_forward(luna_http_request *req, relay_priv *p, uint16_t port,
                          const char *identity, const char *path, const char *auth)
{
    luna_http_client_opts co;
    char paths[3][HTU_PATH_MAX];
    htu_client_opts(&p->e->h, "gateway", port, identity, &co, paths);
    luna_http_header h = {"Authorization", auth};
    luna_http_result r;
    if (luna_http_fetch_with(&co, "GET", path, NULL, NULL, 0, &h, auth != NULL ? 1 : 0, &r) !=
        LUNA_OK) {
        luna_http_reply_error(req, 502, "bad_gateway", "upstream unreachable");
        return;
    }
    luna_http_reply(req, r.status, r.status == 200 && strstr(path, "/checkpoint") != NULL
                                       ? "text/plain; charset=utf-8"
                                       : "application/json",
                    r.body, r.body_len);
    luna_http_result_free(&r);
}

static void relay_audit(luna_http_request *req, void *arg)
{
    relay_priv *p = arg;
    const char *q = luna_http_request_query(req);
    const char *path = luna_http_request_path(req);
    char full[1024];
    int n = snprintf(full, sizeof(full), "%s%s%s", path, q != NULL && q[0] != '\0' ? "?" : "",
                     q != NULL ? q : "");
    if (n <= 0 || (size_t)n >= sizeof(full)) {
        luna_http_reply_error(req, 414, "too_long", "path");
        return;
    }
    relay_forward(req, p, p->e->port, "lunal://svc/audit", full,
                  luna_http_request_header(req, LUNA_DOWNSTREAM_AUTH_HEADER));
}

static void relay_witness(luna_http_request *req, void *arg)
{
    relay_priv *p = arg;
    if (p->w == NULL) {
        luna_http_reply_error(req, 404, "not_found", "no witness");
        return;
    }
    relay_forward(req, p, p->w->port, "lunal://svc/witness", "/v1/witness/state", NULL);
}

static void relay_token(luna_http_request *req, void *arg)
{
    relay_priv *p = arg;
    pthread_mutex_lock(&p->lock);
    json_t *o = json_pack("{s:s,s:I,s:{s:s}}", "token", "gw-token-unused-by-audit",
                          "expires_at", (json_int_t)time(NULL) + 300, "downstream", "audit",
                          p->token != NULL ? p->token : "none");
    pthread_mutex_unlock(&p->lock);
    luna_http_reply_json(req, 200, o);
    json_decref(o);
}

static void *relay_main(void *arg)
{
    relay_priv *p = arg;
    (void)event_base_dispatch(p->base);
    return NULL;
}

void atu_relay_start(atu_env *e, atu_witness *w, atu_relay *r)
{
    memset(r, 0, sizeof(*r));
    relay_priv *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->e = e;
    p->w = w;
    pthread_mutex_init(&p->lock, NULL);
    p->base = event_base_new();
    assert_non_null(p->base);
    char crt[HTU_PATH_MAX], key[HTU_PATH_MAX];
    htu_path(&e->h, "gateway", ".crt", crt, sizeof(crt));
    htu_path(&e->h, "gateway", ".key", key, sizeof(key));
    luna_http_server_opts o = {.component = "relay-stub",
                               .bind_addr = "127.0.0.1",
                               .tls = {.ca_file = e->h.ca_crt, .cert_file = crt, .key_file = key},
                               .public_listener = true};
    assert_luna_ok(luna_http_server_new(p->base, &o, &p->srv));
    static const char *const paths[] = {"/v1/audit/entries", "/v1/audit/export",
                                        "/v1/audit/checkpoint", "/v1/audit/proof/inclusion",
                                        "/v1/audit/proof/consistency"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        const luna_http_route rt = {LUNA_HTTP_GET, paths[i], NULL, 0, NULL, relay_audit, p};
        assert_luna_ok(luna_http_server_add_route(p->srv, &rt));
    }
    const luna_http_route rw = {LUNA_HTTP_GET, "/v1/audit/witness", NULL, 0, NULL, relay_witness,
                                p};
    const luna_http_route rtok = {LUNA_HTTP_POST, "/v1/auth/token", NULL, 0, "application/json",
                                  relay_token, p};
    assert_luna_ok(luna_http_server_add_route(p->srv, &rw));
    assert_luna_ok(luna_http_server_add_route(p->srv, &rtok));
    assert_int_equal(0, pipe(p->stop_pipe));
    p->stop_ev = event_new(p->base, p->stop_pipe[0], EV_READ, stub_stop_cb, p->base);
    assert_non_null(p->stop_ev);
    assert_int_equal(0, event_add(p->stop_ev, NULL));
    r->port = luna_http_server_port(p->srv);
    snprintf(r->url, sizeof(r->url), "https://127.0.0.1:%u", (unsigned)r->port);
    r->priv = p;
    assert_int_equal(0, pthread_create(&p->thread, NULL, relay_main, p));
}

void atu_relay_set_token(atu_relay *r, const char *token)
{
    relay_priv *p = r->priv;
    pthread_mutex_lock(&p->lock);
    free(p->token);
    p->token = token != NULL ? strdup(token) : NULL;
    pthread_mutex_unlock(&p->lock);
}

void atu_relay_stop(atu_relay *r)
{
    relay_priv *p = r->priv;
    if (p == NULL)
        return;
    assert_int_equal(1, write(p->stop_pipe[1], "x", 1));
    pthread_join(p->thread, NULL);
    luna_http_server_free(p->srv);
    event_free(p->stop_ev);
    event_base_free(p->base);
    close(p->stop_pipe[0]);
    close(p->stop_pipe[1]);
    pthread_mutex_destroy(&p->lock);
    free(p->token);
    free(p);
    r->priv = NULL;
}
