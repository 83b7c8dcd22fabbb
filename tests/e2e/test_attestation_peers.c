/*
 * test_attestation_peers.c - luna-att-test-peers: the STUB peers the
 * attestation e2e test runs the real luna-attestation against, in one
 * process: a KMS TEE registry (lunal://svc/kms), an audit log
 * (lunal://svc/audit), an alert webhook receiver (plain HTTP), and sim
 * TEE runtimes (lunal://tee/<id>) whose evidence comes from a simulated
 * platform this process owns (vendor root, a good platform key, a revoked
 * one, and one under another vendor).  Each TEE reads its behaviour from
 * <dir>/mode-<id> at every evidence request, so the test can swap what is
 * "running" mid-run.  Every call it receives is appended to
 * <dir>/{kms,audit,webhook}.log for the test to check.
 *
 * Stubs stand in for kms/ and tee/ until those land; this is test code,
 * never shipped.  It must never be mistaken for the real components.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/pem.h>

#include "luna/audit_entry.h"
#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/evidence_sim.h"
#include "luna/http.h"
#include "luna/json.h"
#include "luna/merkle.h"

#define MAX_TEES 4
#define DEPLOYMENT "demo"

static const char *g_dir;

typedef struct stub_tee {
    char id[65];
    uint8_t kx[32], sign[32];
    uint8_t last[LUNA_SIM_EVIDENCE_MAX];
    size_t last_len;
    luna_http_server *srv;
} stub_tee;

static stub_tee g_tees[MAX_TEES];
static size_t g_n_tees;
static luna_sim_vendor *g_vendor, *g_other_vendor;
static luna_sim_platform *g_platform, *g_revoked, *g_foreign;
static char g_status[16][80];   /* "id status" registry entries */
static size_t g_n_status;

static void die(const char *what)
{
    fprintf(stderr, "att-test-peers: %s\n", what);
    exit(1);
}

static void log_line(const char *file, const char *line)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, file);
    FILE *f = fopen(path, "a");
    if (f == NULL)
        die("log open");
    fprintf(f, "%s\n", line);
    fclose(f);
}

/* ---- registry ---- */

static char *status_of(const char *id)
{
    for (size_t i = 0; i < g_n_status; i++) {
        size_t n = strlen(id);
        if (strncmp(g_status[i], id, n) == 0 && g_status[i][n] == ' ')
            return g_status[i] + n + 1;
    }
    if (g_n_status == 16 || strncmp(id, "tee-", 4) != 0)
        return NULL;
    snprintf(g_status[g_n_status], sizeof g_status[0], "%s pending", id);
    return g_status[g_n_status++] + strlen(id) + 1;
}

static void handle_kms(luna_http_request *req, void *arg)
{
    (void)arg;
    const char *path = luna_http_request_path(req) + strlen("/v1/kms/tees/");
    char id[65], line[256];
    const char *slash = strchr(path, '/');
    size_t n = slash != NULL ? (size_t)(slash - path) : strlen(path);
    if (n == 0 || n > 64) {
        luna_http_reply_error(req, 404, "not_found", "no");
        return;
    }
    memcpy(id, path, n);
    id[n] = '\0';
    char *st = status_of(id);
    if (st == NULL) {
        luna_http_reply_error(req, 404, "not_found", "unregistered");
        return;
    }
    if (slash == NULL) {
        /* Owning tenants as the real registry names them: tee-a is tenant
           acme's, every other TEE tenant beta's (history scoping). */
        json_t *b = json_pack("{s:s,s:s,s:s,s:[s]}", "tee_id", id, "status", st,
                              "deployment_id", DEPLOYMENT, "tenants",
                              strcmp(id, "tee-a") == 0 ? "acme" : "beta");
        luna_http_reply_json(req, 200, b);
        json_decref(b);
        return;
    }
    const uint8_t *body;
    size_t len;
    if (luna_http_request_body(req, &body, &len) != LUNA_OK) {
        luna_http_reply_error(req, 400, "bad", "body");
        return;
    }
    /* The real KMS's body schemas (kms/service/src/kms_http.c): exactly these fields. */
    json_t *jb = json_loadb((const char *)body, len, 0, NULL);
    bool act = strcmp(slash, "/activate") == 0;
    bool shape = jb != NULL &&
                 (act ? json_object_size(jb) ==
                                4u + (json_object_get(jb, "nonce") != NULL ? 1u : 0u) &&
                            json_object_get(jb, "evidence") != NULL &&
                            json_object_get(jb, "evidence_type") != NULL &&
                            json_object_get(jb, "tee_kx_pk") != NULL &&
                            json_object_get(jb, "tee_sign_pk") != NULL
                      : json_object_size(jb) == 1 && json_object_get(jb, "reason") != NULL);
    json_decref(jb);
    if (!shape) {
        log_line("kms.log", "bad body");
        luna_http_reply_error(req, 400, "invalid_body", "the body failed its schema");
        return;
    }
    if (act) {
        if (strcmp(st, "revoked") == 0) {
            luna_http_reply_error(req, 409, "revoked", "final");
            return;
        }
        snprintf(st, 16, "active");
        snprintf(line, sizeof line, "activate %s", id);
    } else if (strcmp(slash, "/quarantine") == 0) {
        json_t *j = json_loadb((const char *)body, len, 0, NULL);
        const char *reason = json_string_value(json_object_get(j, "reason"));
        snprintf(st, 16, "quarantined");
        snprintf(line, sizeof line, "quarantine %s %s revoke-keys", id,
                 reason != NULL ? reason : "?");
        json_decref(j);
    } else {
        luna_http_reply_error(req, 404, "not_found", "no");
        return;
    }
    log_line("kms.log", line);
    luna_http_reply(req, 200, "application/json", "{}", 2);
}

static void read_mode(const char *id, char *mode, size_t cap);

static void handle_audit(luna_http_request *req, void *arg)
{
    const uint8_t *body;
    size_t len;
    char line[4200];
    (void)arg;
    if (luna_http_request_body(req, &body, &len) != LUNA_OK || len >= sizeof line) {
        luna_http_reply_error(req, 400, "bad", "body");
        return;
    }
    memcpy(line, body, len);
    line[len] = '\0';
    /* Answer as the real log does (docs/audit.md section 5): the service's
       fail-closed audit client accepts only a receipt for exactly what it
       sent.  "fail" in mode-audit makes the log unavailable. */
    char amode[16];
    read_mode("audit", amode, sizeof amode);
    if (strcmp(amode, "fail") == 0) {
        luna_http_reply_error(req, 503, "unavailable", "audit stub told to fail");
        return;
    }
    static int64_t index;
    luna_audit_entry e;
    uint8_t canon[LUNA_AUDIT_ENTRY_MAX], leaf[LUNA_MERKLE_HASH_LEN];
    size_t clen = 0;
    char hex[2 * LUNA_MERKLE_HASH_LEN + 1];
    if (luna_audit_entry_parse_request(body, len, &e, NULL) != LUNA_OK) {
        luna_http_reply_error(req, 400, "bad_entry", "entry");
        return;
    }
    memcpy(e.component, "lunal://svc/attestation", sizeof "lunal://svc/attestation");
    e.time_ms = (int64_t)time(NULL) * 1000;
    if (luna_audit_entry_encode(&e, canon, sizeof canon, &clen) != LUNA_OK ||
        luna_merkle_leaf_hash(canon, clen, leaf) != LUNA_OK ||
        luna_hex_encode(leaf, sizeof leaf, hex, sizeof hex) != LUNA_OK) {
        luna_http_reply_error(req, 500, "internal", "encode");
        return;
    }
    json_t *ans = json_pack("{s:I,s:s%,s:s}", "index", (json_int_t)index++, "entry",
                            (const char *)canon, clen, "leaf_hash", hex);
    char *text = ans != NULL ? json_dumps(ans, JSON_COMPACT) : NULL;
    json_decref(ans);
    if (text == NULL) {
        luna_http_reply_error(req, 500, "internal", "json");
        return;
    }
    log_line("audit.log", line);
    luna_http_reply(req, 201, "application/json", text, strlen(text));
    free(text);
}

static void handle_webhook(struct evhttp_request *req, void *arg)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    char line[2048];
    size_t len = evbuffer_get_length(in);
    (void)arg;
    if (len >= sizeof line)
        len = sizeof line - 1;
    evbuffer_remove(in, line, len);
    line[len] = '\0';
    log_line("webhook.log", line);
    evhttp_send_reply(req, 204, "No Content", NULL);
}

/* ---- sim TEE ---- */

static void measurement_of(const char *what, uint8_t out[32])
{
    if (luna_sha256(what, strlen(what), out) != LUNA_OK)
        die("sha256");
}

static void read_mode(const char *id, char *mode, size_t cap)
{
    char path[512];
    snprintf(path, sizeof path, "%s/mode-%s", g_dir, id);
    snprintf(mode, cap, "genuine");
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    if (fgets(mode, (int)cap, f) == NULL)
        snprintf(mode, cap, "genuine");
    mode[strcspn(mode, "\n")] = '\0';
    fclose(f);
}

static void handle_evidence(luna_http_request *req, void *arg)
{
    stub_tee *t = arg;
    const uint8_t *body;
    size_t len, n;
    json_t *j = NULL;
    luna_sim_evidence_params p;
    const luna_sim_platform *plat = g_platform;
    uint8_t ev[LUNA_SIM_EVIDENCE_MAX], rd[64];
    size_t ev_len = 0;
    char mode[64];
    char *b64 = NULL;

    read_mode(t->id, mode, sizeof mode);
    if (strcmp(mode, "hang") == 0)
        return; /* never answered: the caller's timeout is what ends it */
    if (strcmp(mode, "down") == 0) {
        luna_http_reply_error(req, 503, "down", "tee down");
        return;
    }
    if (luna_http_request_body(req, &body, &len) != LUNA_OK ||
        (j = json_loadb((const char *)body, len, 0, NULL)) == NULL ||
        luna_json_get_b64url(j, "nonce", rd, sizeof rd, &n) != LUNA_OK || n != 32) {
        json_decref(j);
        luna_http_reply_error(req, 400, "bad", "nonce");
        return;
    }
    memset(&p, 0, sizeof p);
    memcpy(p.nonce, rd, 32);
    json_decref(j);
    p.tcb_level = 5;
    p.timestamp = (int64_t)time(NULL);
    measurement_of("lunal test runtime v1", p.measurement);
    measurement_of("lunal test developer", p.signer);
    memcpy(p.tee_x25519, t->kx, 32);
    p.has_tee_ed25519 = true;
    memcpy(p.tee_ed25519, t->sign, 32);
    measurement_of("clean memory", p.memory_digest);
    if (strcmp(mode, "modified") == 0)
        measurement_of("a swapped runtime binary", p.measurement);
    else if (strcmp(mode, "unknown_signer") == 0)
        measurement_of("someone else", p.signer);
    else if (strcmp(mode, "debug") == 0)
        p.debug = true;
    else if (strcmp(mode, "tcb_old") == 0)
        p.tcb_level = 3;
    else if (strcmp(mode, "revoked_platform") == 0)
        plat = g_revoked;
    else if (strcmp(mode, "wrong_root") == 0)
        plat = g_foreign;
    else if (strcmp(mode, "stale") == 0)
        p.timestamp -= 3600;
    else if (strcmp(mode, "unbound") == 0) {
        if (luna_random(rd, sizeof rd) != LUNA_OK)
            die("random");
        p.report_data = rd;
    }
    if (strcmp(mode, "replay") == 0 && t->last_len > 0) {
        memcpy(ev, t->last, t->last_len);
        ev_len = t->last_len;
    } else if (luna_sim_evidence_sign(plat, &p, ev, sizeof ev, &ev_len) != LUNA_OK) {
        die("evidence sign");
    }
    if (strcmp(mode, "replay") != 0) {
        memcpy(t->last, ev, ev_len);
        t->last_len = ev_len;
    }
    if (strcmp(mode, "bad_version") == 0) {
        ev[LUNA_SIM_MAGIC_LEN] = 0x00; /* version u16 big-endian after the magic */
        ev[LUNA_SIM_MAGIC_LEN + 1] = 0x02;
    }
    b64 = malloc(LUNA_B64URL_ENC_LEN(ev_len));
    if (b64 == NULL || luna_b64url_encode(ev, ev_len, b64, LUNA_B64URL_ENC_LEN(ev_len)) != LUNA_OK)
        die("b64");
    j = json_pack("{s:s,s:s}", "evidence", b64, "evidence_type", "sim");
    luna_http_reply_json(req, 200, j);
    json_decref(j);
    free(b64);
}

/* ---- set-up ---- */

static luna_http_server *server(struct event_base *base, const char *name, const char *ca,
                                const char *tee_ca)
{
    char crt[512], key[512];
    luna_http_server_opts o;
    luna_http_server *s = NULL;
    snprintf(crt, sizeof crt, "%s/%s.crt", g_dir, name);
    snprintf(key, sizeof key, "%s/%s.key", g_dir, name);
    memset(&o, 0, sizeof o);
    o.component = "att-test-peers";
    o.tls.ca_file = ca;
    o.tls.cert_file = crt;
    o.tls.key_file = key;
    o.tls.tee_ca_file = tee_ca;
    o.handle_signals = true;
    if (luna_http_server_new(base, &o, &s) != LUNA_OK)
        die("server");
    return s;
}

static void write_pem(const char *name, X509 *x)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL || PEM_write_X509(f, x) != 1)
        die("pem");
    fclose(f);
}

static void write_collateral(void)
{
    uint8_t serial[LUNA_CLAIM_SERIAL_MAX], doc[LUNA_SIM_TCB_MAX];
    size_t serial_len, doc_len;
    const uint8_t *revoked[1] = {serial};
    size_t lens[1];
    luna_sim_tcb_params tp;
    char path[512];
    int64_t now = (int64_t)time(NULL);

    if (luna_sim_platform_serial(g_revoked, serial, sizeof serial, &serial_len) != LUNA_OK)
        die("serial");
    lens[0] = serial_len;
    memset(&tp, 0, sizeof tp);
    tp.current_level = 5;
    tp.revoked_below = 2;
    tp.issued_at = now - 60;
    tp.next_update = now + 86400;
    tp.revoked = revoked;
    tp.revoked_lens = lens;
    tp.n_revoked = 1;
    if (luna_sim_tcb_sign(g_vendor, &tp, doc, sizeof doc, &doc_len) != LUNA_OK)
        die("tcb sign");
    snprintf(path, sizeof path, "%s/collateral.bin", g_dir);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(doc, 1, doc_len, f) != doc_len)
        die("collateral");
    fclose(f);
}

int main(int argc, char **argv)
{
    struct event_base *base;
    luna_http_server *kms, *audit;
    struct evhttp *hook;
    struct evhttp_bound_socket *hs;
    char ports[512], path[512];
    int64_t now = (int64_t)time(NULL);

    if (argc < 5)
        die("usage: <dir> <platform ca.crt> <tee ca.crt> <tee-id>...");
    g_dir = argv[1];
    if (luna_sim_vendor_create(now - 3600, now + 86400 * 30, &g_vendor) != LUNA_OK ||
        luna_sim_vendor_create(now - 3600, now + 86400 * 30, &g_other_vendor) != LUNA_OK ||
        luna_sim_platform_create(g_vendor, LUNA_SIM_SIG_ED25519, now - 3600, now + 86400 * 30,
                                 &g_platform) != LUNA_OK ||
        luna_sim_platform_create(g_vendor, LUNA_SIM_SIG_ED25519, now - 3600, now + 86400 * 30,
                                 &g_revoked) != LUNA_OK ||
        luna_sim_platform_create(g_other_vendor, LUNA_SIM_SIG_ED25519, now - 3600,
                                 now + 86400 * 30, &g_foreign) != LUNA_OK)
        die("sim platform");
    write_pem("sim-root.pem", luna_sim_vendor_cert(g_vendor));
    write_collateral();

    base = event_base_new();
    if (base == NULL)
        die("base");
    kms = server(base, "kms", argv[2], argv[3]);
    audit = server(base, "audit", argv[2], argv[3]);
    static const char *const att[] = {"lunal://svc/attestation"};
    static const char *const anyone[] = {"lunal://*"};
    luna_http_route r = {LUNA_HTTP_GET | LUNA_HTTP_POST, "/v1/kms/tees/*", att, 1, NULL,
                         handle_kms, NULL};
    if (luna_http_server_add_route(kms, &r) != LUNA_OK)
        die("route");
    luna_http_route ra = {LUNA_HTTP_POST, "/v1/audit/entries", att, 1, NULL, handle_audit, NULL};
    if (luna_http_server_add_route(audit, &ra) != LUNA_OK)
        die("route");
    hook = evhttp_new(base);
    hs = hook != NULL ? evhttp_bind_socket_with_handle(hook, "127.0.0.1", 0) : NULL;
    if (hs == NULL)
        die("webhook");
    evhttp_set_gencb(hook, handle_webhook, NULL);
    struct sockaddr_in sin;
    socklen_t sl = sizeof sin;
    if (getsockname(evhttp_bound_socket_get_fd(hs), (struct sockaddr *)&sin, &sl) != 0)
        die("getsockname");
    int off = snprintf(ports, sizeof ports, "%u %u %u", luna_http_server_port(kms),
                       luna_http_server_port(audit), (unsigned)ntohs(sin.sin_port));
    for (int i = 4; i < argc && g_n_tees < MAX_TEES; i++) {
        stub_tee *t = &g_tees[g_n_tees++];
        uint8_t sk[32];
        snprintf(t->id, sizeof t->id, "%s", argv[i]);
        if (luna_x25519_keygen(sk, t->kx) != LUNA_OK || luna_ed25519_keygen(sk, t->sign) != LUNA_OK)
            die("keys");
        luna_wipe(sk, sizeof sk);
        t->srv = server(base, t->id, argv[2], argv[3]);
        luna_http_route rt = {LUNA_HTTP_POST, "/v1/tee/evidence", anyone, 1, NULL,
                              handle_evidence, t};
        if (luna_http_server_add_route(t->srv, &rt) != LUNA_OK)
            die("route");
        off += snprintf(ports + off, sizeof ports - (size_t)off, " %u",
                        luna_http_server_port(t->srv));
    }
    snprintf(path, sizeof path, "%s/peers.tmp", g_dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        die("ports");
    fprintf(f, "%s\n", ports);
    fclose(f);
    char final[512];
    snprintf(final, sizeof final, "%s/peers.ready", g_dir);
    if (rename(path, final) != 0)
        die("rename");
    event_base_dispatch(base);
    for (size_t i = 0; i < g_n_tees; i++)
        luna_http_server_free(g_tees[i].srv);
    luna_http_server_free(kms);
    luna_http_server_free(audit);
    evhttp_free(hook);
    event_base_free(base);
    luna_sim_platform_free(g_platform);
    luna_sim_platform_free(g_revoked);
    luna_sim_platform_free(g_foreign);
    luna_sim_vendor_free(g_vendor);
    luna_sim_vendor_free(g_other_vendor);
    return 0;
}
