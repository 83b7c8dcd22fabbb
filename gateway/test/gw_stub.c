/*
 * gw_stub.c - TEST-ONLY stand-ins for the gateway's neighbours that are
 * not finished yet: the KMS registry and OTK call, the attestation
 * service's report and verify calls, the audit log, and a TEE runtime.
 * Each run serves one role over the real luna_http mTLS server and prints
 * "PORT <n>".  Never shipped; never a template for a real component (it
 * checks nothing a real one must check).
 *
 *   luna-gw-stub --role kms|attestation|audit|tee --ca F --cert F --key F
 *                [--id TEE] [--state FILE] [--audit-log FILE]
 *
 * State file (kms, attestation): {"tees":{"<id>":{"status":"active",
 * "tenants":["acme"],"deployment_id":"d1","report_age":0}}}; a report_age
 * of -1 means "no report".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "luna/audit_entry.h"
#include "luna/bytes.h"
#include "luna/envelope.h"
#include "luna/http.h"
#include "luna/merkle.h"

static const char *arg(int argc, char **argv, const char *name)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

typedef struct stub {
    struct event_base *base;
    const char *state;
    const char *audit_log;
    const char *tee_id;
    uint64_t index;
} stub;

static json_t *state_tee(const stub *s, const char *id)
{
    json_error_t je;
    json_t *root = json_load_file(s->state, 0, &je);
    json_t *t = json_incref(json_object_get(json_object_get(root, "tees"), id));
    json_decref(root);
    return t;
}

/* "/v1/kms/tees/<id>" or "/v1/attestation/tees/<id>/report" -> id */
static void path_id(const char *path, const char *prefix, char *out, size_t cap)
{
    out[0] = '\0';
    size_t n = strlen(prefix);
    if (strncmp(path, prefix, n) != 0)
        return;
    const char *p = path + n;
    size_t i = 0;
    while (p[i] != '\0' && p[i] != '/' && i + 1 < cap) {
        out[i] = p[i];
        i++;
    }
    out[i] = '\0';
}

static void kms_tee(luna_http_request *req, void *arg)
{
    stub *s = arg;
    char id[80];
    path_id(luna_http_request_path(req), "/v1/kms/tees/", id, sizeof(id));
    /* The real KMS wants a token here (the gateway relays the client's). */
    const char *auth = luna_http_request_header(req, "Authorization");
    if (auth == NULL || strncmp(auth, "Bearer ", 7) != 0) {
        luna_http_reply_error(req, 401, "missing_token", "a Bearer token from IAM is required");
        return;
    }
    json_t *t = state_tee(s, id);
    if (t == NULL) {
        luna_http_reply_error(req, 404, "not_found", "no such TEE");
        return;
    }
    json_t *o = json_pack("{s:s,s:O,s:O,s:O}", "tee_id", id, "status",
                          json_object_get(t, "status"), "tenants", json_object_get(t, "tenants"),
                          "deployment_id", json_object_get(t, "deployment_id"));
    luna_http_reply_json(req, 200, o);
    json_decref(o);
    json_decref(t);
}

static void kms_otk(luna_http_request *req, void *arg)
{
    (void)arg;
    const uint8_t *b;
    size_t n;
    json_error_t je;
    if (luna_http_request_body(req, &b, &n) != LUNA_OK) {
        luna_http_reply_err(req, LUNA_ERR_FORMAT);
        return;
    }
    json_t *in = json_loadb((const char *)b, n, 0, &je);
    const char *rid = json_string_value(json_object_get(in, "request_id"));
    const char *auth = luna_http_request_header(req, "Authorization");
    /* The real KMS's schema: exactly these four fields, and the client's
       token (tenant and principal come from it, never from the gateway). */
    if (rid == NULL || json_object_size(in) != 4 || json_object_get(in, "tee_id") == NULL ||
        json_object_get(in, "job") == NULL || json_object_get(in, "client_pk") == NULL ||
        auth == NULL || strncmp(auth, "Bearer ", 7) != 0) {
        json_decref(in);
        luna_http_reply_error(req, 400, "bad_request", "missing fields");
        return;
    }
    const char *tenant = "from-token";
    char id[128];
    snprintf(id, sizeof(id), "otk-%s", rid);
    json_t *o = json_pack("{s:s,s:s,s:I,s:s}", "otk_id", id, "sealed_otk", "c2VhbGVk",
                          "expires_at", (json_int_t)time(NULL) + 60, "tenant_seen", tenant);
    luna_http_reply_json(req, 200, o);
    json_decref(o);
    json_decref(in);
}

static void att_report(luna_http_request *req, void *arg)
{
    stub *s = arg;
    char id[80];
    path_id(luna_http_request_path(req), "/v1/attestation/tees/", id, sizeof(id));
    json_t *t = state_tee(s, id);
    json_int_t age = t != NULL ? json_integer_value(json_object_get(t, "report_age")) : -1;
    if (t == NULL || age < 0) {
        json_decref(t);
        luna_http_reply_error(req, 404, "not_found", "no report");
        return;
    }
    static const char key[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    json_int_t now = (json_int_t)time(NULL);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:O}", "tee_id", id, "report",
                          "eyJhbGciOiJFZERTQSJ9.e30.c2ln", "evidence", "ZXZpZGVuY2U",
                          "evidence_type", "sim", "manifest", "bWFu.aWZl.c3Q", "tee_kx_pk", key,
                          "tee_sign_pk", key, "issued_at", now - age, "expires_at",
                          now - age + 300, "deployment_id", json_object_get(t, "deployment_id"));
    luna_http_reply_json(req, 200, o);
    json_decref(o);
    json_decref(t);
}

static void att_verify(luna_http_request *req, void *arg)
{
    (void)arg;
    json_t *o = json_pack("{s:b,s:s}", "verified", 1, "deployment_id", "d1");
    luna_http_reply_json(req, 200, o);
    json_decref(o);
}

static void audit_append(luna_http_request *req, void *arg)
{
    stub *s = arg;
    const uint8_t *b;
    size_t n;
    luna_audit_entry e;
    if (luna_http_request_body(req, &b, &n) != LUNA_OK ||
        luna_audit_entry_parse_request(b, n, &e, NULL) != LUNA_OK) {
        luna_http_reply_error(req, 400, "bad_request", "bad entry");
        return;
    }
    e.time_ms = (int64_t)time(NULL) * 1000;
    if (luna_audit_set(e.component, sizeof(e.component), luna_http_request_identity(req)) !=
        LUNA_OK) {
        luna_http_reply_error(req, 400, "bad_request", "bad identity");
        return;
    }
    uint8_t enc[LUNA_AUDIT_ENTRY_MAX + 1];
    size_t len = 0;
    uint8_t h[LUNA_MERKLE_HASH_LEN];
    char hex[2 * LUNA_MERKLE_HASH_LEN + 1];
    if (luna_audit_entry_encode(&e, enc, sizeof(enc) - 1, &len) != LUNA_OK ||
        luna_merkle_leaf_hash(enc, len, h) != LUNA_OK ||
        luna_hex_encode(h, sizeof(h), hex, sizeof(hex)) != LUNA_OK) {
        luna_http_reply_error(req, 500, "internal_error", "encode");
        return;
    }
    enc[len] = '\0';
    FILE *f = fopen(s->audit_log, "a");
    if (f != NULL) {
        fprintf(f, "%s\n", (const char *)enc);
        fclose(f);
    }
    json_t *o = json_pack("{s:I,s:s,s:s}", "index", (json_int_t)s->index++, "leaf_hash", hex,
                          "entry", (const char *)enc);
    luna_http_reply_json(req, 201, o);
    json_decref(o);
}

static void tee_info(luna_http_request *req, void *arg)
{
    stub *s = arg;
    json_t *o = json_pack("{s:s}", "tee_id", s->tee_id);
    luna_http_reply_json(req, 200, o);
    json_decref(o);
}

typedef struct pending {
    luna_http_request *req;
    uint8_t *data;
    size_t len;
    struct event *ev;
} pending;

static void send_result(luna_http_request *req, const luna_envelope_header *h, uint8_t **data,
                        size_t *len)
{
    luna_wbuf w;
    *data = NULL;
    *len = 0;
    if (luna_wbuf_init_alloc(&w, 1024) != LUNA_OK)
        return;
    static const uint8_t fixed[] = {'L', 'U', 'N', 'E', 1, 2, 0, 0x20, 0, 1, 0, 2, 0, 2};
    const char *ids[] = {h->tenant, h->job, h->tee_id, h->request_id};
    uint8_t zero[32] = {0};
    luna_err err = luna_write_bytes(&w, fixed, sizeof(fixed));
    for (size_t i = 0; i < 4 && err == LUNA_OK; i++) {
        err = luna_write_u8(&w, (uint8_t)strlen(ids[i]));
        if (err == LUNA_OK)
            err = luna_write_bytes(&w, ids[i], strlen(ids[i]));
    }
    if (err == LUNA_OK)
        err = luna_write_bytes(&w, h->client_pk, 32);
    if (err == LUNA_OK)
        err = luna_write_bytes(&w, zero, 32);
    if (err == LUNA_OK)
        err = luna_write_bytes(&w, zero, 12);
    if (err == LUNA_OK)
        err = luna_write_u32(&w, 32);
    if (err == LUNA_OK)
        err = luna_write_bytes(&w, zero, 32);
    (void)req;
    if (err == LUNA_OK) {
        *data = malloc(w.len);
        if (*data != NULL) {
            memcpy(*data, w.data, w.len);
            *len = w.len;
        }
    }
    luna_wbuf_free(&w);
}

static void on_slow(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pending *p = arg;
    luna_http_reply(p->req, 200, "application/octet-stream", p->data, p->len);
    event_free(p->ev);
    free(p->data);
    free(p);
}

static void tee_run(luna_http_request *req, void *arg)
{
    stub *s = arg;
    const uint8_t *b;
    size_t n;
    luna_envelope_header h;
    const char *otk = luna_http_request_header(req, "X-Lunal-Otk-Id");
    if (luna_http_request_body(req, &b, &n) != LUNA_OK ||
        luna_envelope_parse_header(b, n, &h) != LUNA_OK || strcmp(h.tee_id, s->tee_id) != 0 ||
        otk == NULL || otk[0] == '\0' || luna_http_request_query(req) != NULL) {
        luna_http_reply_error(req, 400, "bad_envelope", "bad envelope");
        return;
    }
    pending *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        return;
    }
    p->req = req;
    send_result(req, &h, &p->data, &p->len);
    if (strcmp(h.job, "slow") == 0) {
        p->ev = evtimer_new(s->base, on_slow, p);
        struct timeval tv = {3, 0};
        evtimer_add(p->ev, &tv);
        return;
    }
    luna_http_reply(req, 200, "application/octet-stream", p->data, p->len);
    free(p->data);
    free(p);
}

int main(int argc, char **argv)
{
    const char *role = arg(argc, argv, "--role");
    stub s = {0};
    s.state = arg(argc, argv, "--state");
    s.audit_log = arg(argc, argv, "--audit-log");
    s.tee_id = arg(argc, argv, "--id");
    if (role == NULL)
        return 2;
    s.base = event_base_new();
    luna_http_server_opts o = {
        .component = "gw-stub",
        .tls = {.ca_file = arg(argc, argv, "--ca"), .cert_file = arg(argc, argv, "--cert"),
                .key_file = arg(argc, argv, "--key")},
        .handle_signals = true,
        .max_body = 16u * 1024u * 1024u,
    };
    luna_http_server *srv = NULL;
    if (s.base == NULL || luna_http_server_new(s.base, &o, &srv) != LUNA_OK)
        return 1;
    static const char *const gw[] = {"lunal://svc/gateway"};
    static const char *const any[] = {LUNA_HTTP_ALLOW_ANY_PLATFORM};
    luna_err err = LUNA_OK;
    if (strcmp(role, "kms") == 0) {
        luna_http_route r1 = {LUNA_HTTP_GET, "/v1/kms/tees/*", any, 1, NULL, kms_tee, &s};
        luna_http_route r2 = {LUNA_HTTP_POST, "/v1/kms/otk", gw, 1, "application/json", kms_otk,
                              &s};
        err = luna_http_server_add_route(srv, &r1);
        if (err == LUNA_OK)
            err = luna_http_server_add_route(srv, &r2);
    } else if (strcmp(role, "attestation") == 0) {
        luna_http_route r1 = {LUNA_HTTP_GET, "/v1/attestation/tees/*", gw, 1, NULL, att_report,
                              &s};
        luna_http_route r2 = {LUNA_HTTP_POST, "/v1/attestation/verify", gw, 1, "application/json",
                              att_verify, &s};
        err = luna_http_server_add_route(srv, &r1);
        if (err == LUNA_OK)
            err = luna_http_server_add_route(srv, &r2);
    } else if (strcmp(role, "audit") == 0) {
        luna_http_route r1 = {LUNA_HTTP_POST, "/v1/audit/entries", any, 1, "application/json",
                              audit_append, &s};
        err = luna_http_server_add_route(srv, &r1);
    } else if (strcmp(role, "tee") == 0 && s.tee_id != NULL) {
        luna_http_route r1 = {LUNA_HTTP_GET, "/v1/tee/info", gw, 1, NULL, tee_info, &s};
        luna_http_route r2 = {LUNA_HTTP_POST, "/v1/tee/run", gw, 1, "application/octet-stream",
                              tee_run, &s};
        err = luna_http_server_add_route(srv, &r1);
        if (err == LUNA_OK)
            err = luna_http_server_add_route(srv, &r2);
    } else {
        err = LUNA_ERR_INVALID_ARG;
    }
    if (err != LUNA_OK)
        return 1;
    printf("PORT %u\n", (unsigned)luna_http_server_port(srv));
    fflush(stdout);
    event_base_dispatch(s.base);
    luna_http_server_free(srv);
    event_base_free(s.base);
    return 0;
}
