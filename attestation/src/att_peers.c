/*
 * att_peers.c - every call the attestation service makes to another
 * process: the KMS TEE registry (read, activate, quarantine), a TEE's
 * evidence endpoint, the audit log, and the alert (log line + webhook).
 * All over mutual TLS with the exact expected identity, blocking with a
 * bounded timeout (they run on worker threads, never on the event loop).
 *
 * Must never: trust a TEE's answer beyond its strict schema, put evidence
 * or key bytes in a log line, or treat an unreachable registry as "active".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "luna/audit_client.h"
#include "luna/audit_entry.h"
#include "luna/bytes.h"
#include "luna/json.h"
#include "luna/log.h"
#include "luna/manifest.h"

#include "att.h"

#define ATT_PEER_BODY_MAX (256u * 1024u)

static void client_opts(const att_peers *p, const att_endpoint *ep, const char *host,
                        uint16_t port, const char *identity, luna_http_client_opts *o)
{
    memset(o, 0, sizeof *o);
    o->tls.ca_file = p->s->tls_ca;
    o->tls.cert_file = p->s->tls_cert;
    o->tls.key_file = p->s->tls_key;
    o->tls.tee_ca_file = p->tee_ca_file[0] != '\0' ? p->tee_ca_file : NULL;
    o->host = ep != NULL ? ep->host : host;
    o->port = ep != NULL ? ep->port : port;
    o->expected_identity = identity;
    o->timeout_sec = p->s->http_timeout;
    o->max_response = ATT_PEER_BODY_MAX;
}

static luna_err fetch_json(const luna_http_client_opts *o, const char *method, const char *path,
                           const json_t *body, int *status, json_t **answer)
{
    char *text = NULL;
    luna_http_result res;
    luna_err err;
    json_error_t jerr;

    *answer = NULL;
    memset(&res, 0, sizeof res);
    if (body != NULL) {
        text = json_dumps(body, JSON_COMPACT);
        if (text == NULL)
            return LUNA_ERR_NOMEM;
    }
    err = luna_http_fetch(o, method, path, text != NULL ? "application/json" : NULL, text,
                          text != NULL ? strlen(text) : 0, &res);
    free(text);
    if (err != LUNA_OK)
        return err == LUNA_ERR_TLS || err == LUNA_ERR_IO ? LUNA_ERR_UNAVAILABLE : err;
    *status = res.status;
    if (res.body_len > 0) {
        /* An authenticated peer's answer; still size-capped and duplicate-free. */
        *answer = json_loadb((const char *)res.body, res.body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (*answer != NULL && !json_is_object(*answer)) {
            json_decref(*answer);
            *answer = NULL;
        }
    }
    luna_http_result_free(&res);
    return LUNA_OK;
}

static luna_err status_err(int status)
{
    if (status >= 200 && status < 300)
        return LUNA_OK;
    switch (status) {
    case 404: return LUNA_ERR_NOT_FOUND;
    case 409: return LUNA_ERR_CONFLICT;
    case 401:
    case 403: return LUNA_ERR_PERMISSION;
    case 400: return LUNA_ERR_FORMAT;
    default: return LUNA_ERR_UNAVAILABLE;
    }
}

static luna_err copy_field(const json_t *obj, const char *key, char *out, size_t cap,
                           bool required)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        out[0] = '\0';
        return required ? LUNA_ERR_FORMAT : LUNA_OK;
    }
    if (!json_is_string(v) || json_string_length(v) >= cap ||
        strlen(json_string_value(v)) != json_string_length(v))
        return LUNA_ERR_FORMAT;
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return LUNA_OK;
}

static luna_err tee_path(char *out, size_t cap, const char *tee_id, const char *suffix)
{
    if (!att_tee_id_ok(tee_id))
        return LUNA_ERR_INVALID_ARG;
    int n = snprintf(out, cap, "/v1/kms/tees/%s%s", tee_id, suffix);
    return (n < 0 || (size_t)n >= cap) ? LUNA_ERR_TOO_LARGE : LUNA_OK;
}

/*
 * The registry's "tenants" (an array of tenant ids, at most the KMS's cap)
 * as the comma-joined text the history stores.  Absent: no tenant.  Any
 * malformed element refuses the whole answer: a row must never be
 * attributed to a tenant read wrongly.
 */
static luna_err copy_tenants(const json_t *obj, char *out, size_t cap)
{
    const json_t *arr = json_object_get(obj, "tenants");
    const json_t *v;
    size_t i, used = 0;

    out[0] = '\0';
    if (arr == NULL)
        return LUNA_OK;
    if (!json_is_array(arr) || json_array_size(arr) > ATT_TENANTS_MAX)
        return LUNA_ERR_FORMAT;
    json_array_foreach(arr, i, v)
    {
        const char *t = json_string_value(v);
        size_t n = json_string_length(v);
        if (t == NULL || strlen(t) != n || !att_tenant_id_ok(t) || used + n + 2 > cap)
            return LUNA_ERR_FORMAT;
        if (used > 0)
            out[used++] = ',';
        memcpy(out + used, t, n + 1);
        used += n;
    }
    return LUNA_OK;
}

luna_err att_kms_get_tee(const att_peers *p, const char *tee_id, att_registry_entry *out)
{
    luna_http_client_opts o;
    char path[160];
    int status = 0;
    json_t *ans = NULL;
    luna_err err;

    memset(out, 0, sizeof *out);
    LUNA_GUARD(tee_path(path, sizeof path, tee_id, ""));
    client_opts(p, &p->s->kms, NULL, 0, ATT_KMS_IDENTITY, &o);
    LUNA_GUARD(fetch_json(&o, "GET", path, NULL, &status, &ans));
    LUNA_TRY(status_err(status), out);
    LUNA_TRY_ENSURE(ans != NULL, LUNA_ERR_FORMAT, out);
    LUNA_TRY(copy_field(ans, "status", out->status, sizeof out->status, true), out);
    LUNA_TRY(copy_field(ans, "deployment_id", out->deployment_id, sizeof out->deployment_id, true),
             out);
    LUNA_TRY(copy_field(ans, "address", out->address, sizeof out->address, false), out);
    LUNA_TRY(copy_tenants(ans, out->tenants, sizeof out->tenants), out);
    err = LUNA_OK;
out:
    json_decref(ans);
    return err;
}

static luna_err b64(const uint8_t *in, size_t n, json_t *obj, const char *key)
{
    size_t cap = LUNA_B64URL_ENC_LEN(n);
    char *s = malloc(cap);
    luna_err err;
    if (s == NULL)
        return LUNA_ERR_NOMEM;
    err = luna_b64url_encode(in, n, s, cap);
    if (err == LUNA_OK && json_object_set_new(obj, key, json_string(s)) != 0)
        err = LUNA_ERR_NOMEM;
    free(s);
    return err;
}

luna_err att_kms_activate(const att_peers *p, const char *tee_id, const char *evidence_type,
                          const uint8_t *ev, size_t ev_len, const uint8_t tee_kx[ATT_KEY_LEN],
                          const uint8_t tee_sign[ATT_KEY_LEN], const uint8_t *nonce)
{
    luna_http_client_opts o;
    char path[160];
    int status = 0;
    json_t *body = json_object(), *ans = NULL;
    luna_err err;

    LUNA_TRY_ENSURE(body != NULL, LUNA_ERR_NOMEM, out);
    LUNA_TRY(tee_path(path, sizeof path, tee_id, "/activate"), out);
    json_object_set_new(body, "evidence_type", json_string(evidence_type));
    LUNA_TRY(b64(ev, ev_len, body, "evidence"), out);
    /* The KMS's body (docs/openapi-kms.yaml): the evidence it re-verifies and
       the keys it must bind, which it then records as the attested keys. */
    LUNA_TRY(b64(tee_kx, ATT_KEY_LEN, body, "tee_kx_pk"), out);
    LUNA_TRY(b64(tee_sign, ATT_KEY_LEN, body, "tee_sign_pk"), out);
    if (nonce != NULL)
        LUNA_TRY(b64(nonce, ATT_NONCE_LEN, body, "nonce"), out);
    client_opts(p, &p->s->kms, NULL, 0, ATT_KMS_IDENTITY, &o);
    LUNA_TRY(fetch_json(&o, "POST", path, body, &status, &ans), out);
    err = status_err(status);
out:
    json_decref(body);
    json_decref(ans);
    return err;
}

luna_err att_kms_quarantine(const att_peers *p, const char *tee_id, const char *reason,
                            const char *att_id)
{
    luna_http_client_opts o;
    char path[160];
    int status = 0;
    /* The KMS takes {"reason"} only (docs/openapi-kms.yaml); the attestation
       id that decided is in this service's own audit entry and alert. */
    (void)att_id;
    json_t *body = json_pack("{s:s}", "reason", reason);
    json_t *ans = NULL;
    luna_err err;

    LUNA_TRY_ENSURE(body != NULL, LUNA_ERR_NOMEM, out);
    LUNA_TRY(tee_path(path, sizeof path, tee_id, "/quarantine"), out);
    client_opts(p, &p->s->kms, NULL, 0, ATT_KMS_IDENTITY, &o);
    LUNA_TRY(fetch_json(&o, "POST", path, body, &status, &ans), out);
    err = status_err(status);
out:
    json_decref(body);
    json_decref(ans);
    return err;
}

/* What a TEE may answer, and nothing else. */
static const char *const evidence_types[] = {"sim", "sev-snp", "tdx", "sgx", "nitro", "tpm", NULL};
static const luna_json_field evidence_fields[] = {
    {.name = "evidence", .type = LUNA_JSON_T_B64URL, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = ATT_EVIDENCE_MAX},
    {.name = "evidence_type", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = 15, .one_of = evidence_types},
};
static const luna_json_schema evidence_schema = {evidence_fields, 2, NULL};

static luna_err split_address(const char *address, char *host, size_t cap, uint16_t *port)
{
    const char *colon = strrchr(address, ':');
    long v = 0;
    size_t hlen;
    if (colon == NULL || colon == address || colon[1] == '\0' || strlen(colon + 1) > 5)
        return LUNA_ERR_FORMAT;
    hlen = (size_t)(colon - address);
    if (hlen >= cap)
        return LUNA_ERR_FORMAT;
    for (const char *d = colon + 1; *d != '\0'; d++) {
        if (*d < '0' || *d > '9')
            return LUNA_ERR_FORMAT;
        v = v * 10 + (*d - '0');
    }
    if (v < 1 || v > 65535)
        return LUNA_ERR_FORMAT;
    memcpy(host, address, hlen);
    host[hlen] = '\0';
    *port = (uint16_t)v;
    return LUNA_OK;
}

luna_err att_tee_evidence(const att_peers *p, const char *tee_id, const char *address,
                          const uint8_t nonce[ATT_NONCE_LEN], uint8_t **ev, size_t *ev_len,
                          char type[16])
{
    luna_http_client_opts o;
    char host[ATT_HOST_MAX + 1], identity[LUNA_PKI_IDENTITY_MAX], nonce_b64[64];
    uint16_t port;
    luna_http_result res;
    json_t *ans = NULL;
    const char *t;
    uint8_t *buf = NULL;
    size_t n;
    luna_err err;
    char req[128];

    *ev = NULL;
    *ev_len = 0;
    LUNA_GUARD(split_address(address, host, sizeof host, &port));
    if (!att_tee_id_ok(tee_id))
        return LUNA_ERR_INVALID_ARG;
    snprintf(identity, sizeof identity, "lunal://tee/%s", tee_id);
    LUNA_GUARD(luna_b64url_encode(nonce, ATT_NONCE_LEN, nonce_b64, sizeof nonce_b64));
    snprintf(req, sizeof req, "{\"nonce\":\"%s\"}", nonce_b64);
    client_opts(p, NULL, host, port, identity, &o);
    memset(&res, 0, sizeof res);
    err = luna_http_fetch(&o, "POST", "/v1/tee/evidence", "application/json", req, strlen(req),
                          &res);
    if (err != LUNA_OK)
        return LUNA_ERR_UNAVAILABLE;
    LUNA_TRY(status_err(res.status), out);
    LUNA_TRY(luna_json_parse((const char *)res.body, res.body_len, &evidence_schema, NULL, &ans,
                             NULL),
             out);
    LUNA_TRY(luna_json_get_string(ans, "evidence_type", &t, NULL), out);
    snprintf(type, 16, "%s", t);
    buf = malloc(ATT_EVIDENCE_MAX);
    LUNA_TRY_ENSURE(buf != NULL, LUNA_ERR_NOMEM, out);
    LUNA_TRY(luna_json_get_b64url(ans, "evidence", buf, ATT_EVIDENCE_MAX, &n), out);
    *ev = buf;
    *ev_len = n;
    buf = NULL;
    err = LUNA_OK;
out:
    free(buf);
    json_decref(ans);
    luna_http_result_free(&res);
    return err;
}

luna_err att_audit(const att_peers *p, const char *actor, const char *operation,
                   const char *tee_id, const char *deployment_id, const char *object,
                   bool success_or_denied, bool denied, const char *reason,
                   const char *request_id)
{
    luna_audit_entry e;
    luna_http_client_opts o;
    uint64_t index = 0;
    luna_err err;

    memset(&e, 0, sizeof e);
    LUNA_GUARD(luna_audit_set(e.actor, sizeof e.actor, actor));
    LUNA_GUARD(luna_audit_set(e.operation, sizeof e.operation, operation));
    LUNA_GUARD(luna_audit_set(e.tee, sizeof e.tee, tee_id != NULL ? tee_id : ""));
    LUNA_GUARD(luna_audit_set(e.deployment, sizeof e.deployment,
                              deployment_id != NULL ? deployment_id : ""));
    if (object != NULL && object[0] != '\0') {
        LUNA_GUARD(luna_audit_set(e.objects[0], sizeof e.objects[0], object));
        e.n_objects = 1;
    }
    e.outcome = success_or_denied ? (denied ? LUNA_AUDIT_DENIED : LUNA_AUDIT_SUCCESS)
                                  : LUNA_AUDIT_FAILURE;
    LUNA_GUARD(luna_audit_set(e.reason, sizeof e.reason, reason != NULL ? reason : ""));
    LUNA_GUARD(luna_audit_set(e.request_id, sizeof e.request_id,
                              request_id != NULL && request_id[0] != '\0' ? request_id
                                                                          : "internal"));
    client_opts(p, &p->s->audit, NULL, 0, ATT_AUDIT_IDENTITY, &o);
    /* Through the fail-closed client (luna/audit_client.h): LUNA_OK only
       when the log answered 201 with a receipt for exactly this entry.  It
       runs its own short event loop, so it is safe on a worker thread. */
    err = luna_audit_append_sync(&o, &e, &index);
    if (err != LUNA_OK)
        LUNA_LOGF(LUNA_LOG_ERROR, ATT_COMPONENT, "audit append failed",
                  LUNA_LOG_STR("operation", operation), LUNA_LOG_STR("tee_id", tee_id),
                  LUNA_LOG_ERR("error", err));
    return err;
}

void att_alert(const att_peers *p, const char *event, const char *tee_id, const char *reason,
               const char *att_id)
{
    json_t *body;
    char *text;
    luna_err err;

    /* "alert" is a severity above error; the log module's highest level
       carries it as a field so log shippers can route on it. */
    LUNA_LOGF(LUNA_LOG_ERROR, ATT_COMPONENT, "ALERT", LUNA_LOG_STR("severity", "alert"),
              LUNA_LOG_STR("event", event), LUNA_LOG_STR("tee_id", tee_id),
              LUNA_LOG_STR("reason", reason), LUNA_LOG_STR("attestation_id", att_id));
    if (p->s->webhook_url[0] == '\0')
        return;
    body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "severity", "alert", "event", event,
                     "tee_id", tee_id != NULL ? tee_id : "", "reason",
                     reason != NULL ? reason : "", "attestation_id", att_id != NULL ? att_id : "",
                     "time", (json_int_t)time(NULL));
    text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    err = text != NULL ? att_webhook_post(p->s->webhook_url, text, strlen(text),
                                          p->s->http_timeout)
                       : LUNA_ERR_NOMEM;
    if (err != LUNA_OK)
        LUNA_LOGF(LUNA_LOG_ERROR, ATT_COMPONENT, "alert webhook failed",
                  LUNA_LOG_STR("event", event), LUNA_LOG_ERR("error", err));
    free(text);
    json_decref(body);
}

/* ---- deployment registration: IAM's developer keys, the KMS ---- */

/* A key id as luna/manifest.h defines it: 16 lowercase hex pairs joined by ':'. */
static bool key_id_ok(const char *s)
{
    if (strlen(s) != LUNA_MANIFEST_KEY_ID_LEN)
        return false;
    for (size_t i = 0; i < LUNA_MANIFEST_KEY_ID_LEN; i++) {
        char ch = s[i];
        bool colon = i % 3 == 2;
        if (colon ? ch != ':' : !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return false;
    }
    return true;
}

luna_err att_iam_developer_key(const att_peers *p, const char *key_id, att_dev_key *out)
{
    luna_http_client_opts o;
    char path[96], status_text[16], pk_text[64];
    json_t *ans = NULL;
    int status = 0;
    size_t n = 0;
    luna_err err;

    memset(out, 0, sizeof *out);
    if (!key_id_ok(key_id))
        return LUNA_ERR_INVALID_ARG;
    if (p->s->iam.host[0] == '\0' || p->s->iam.port == 0)
        return LUNA_ERR_UNAVAILABLE;
    snprintf(path, sizeof path, "/v1/iam/developer-keys/%s", key_id);
    client_opts(p, &p->s->iam, NULL, 0, "lunal://svc/iam", &o);
    LUNA_GUARD(fetch_json(&o, "GET", path, NULL, &status, &ans));
    if (status == 404) {
        err = LUNA_ERR_NOT_FOUND;
        goto out;
    }
    LUNA_TRY_ENSURE(status == 200 && ans != NULL, LUNA_ERR_UNAVAILABLE, out);
    /* IAM is authenticated, but a key id, tenant or developer id that is
       not the strict grammar never reaches a comparison or a log line. */
    LUNA_TRY(copy_field(ans, "key_id", out->key_id, sizeof out->key_id, true), out);
    LUNA_TRY(copy_field(ans, "tenant_id", out->tenant, sizeof out->tenant, true), out);
    LUNA_TRY(copy_field(ans, "developer_id", out->developer_id, sizeof out->developer_id, true),
             out);
    LUNA_TRY(copy_field(ans, "public_key", pk_text, sizeof pk_text, true), out);
    LUNA_TRY(copy_field(ans, "status", status_text, sizeof status_text, true), out);
    if (copy_field(ans, "display_name", out->display_name, sizeof out->display_name, false) !=
        LUNA_OK)
        out->display_name[0] = '\0'; /* longer than we show: shown as the id only */
    LUNA_TRY_ENSURE(strcmp(out->key_id, key_id) == 0 && att_tenant_id_ok(out->tenant) &&
                        att_deployment_id_ok(out->developer_id),
                    LUNA_ERR_FORMAT, out);
    LUNA_TRY(luna_b64url_decode(pk_text, strlen(pk_text), out->public_key,
                                sizeof out->public_key, &n),
             out);
    LUNA_TRY_ENSURE(n == ATT_KEY_LEN, LUNA_ERR_FORMAT, out);
    if (strcmp(status_text, "active") == 0)
        out->revoked = false;
    else if (strcmp(status_text, "revoked") == 0)
        out->revoked = true;
    else
        LUNA_TRY_ENSURE(false, LUNA_ERR_FORMAT, out);
    err = LUNA_OK;
out:
    json_decref(ans);
    if (err != LUNA_OK && err != LUNA_ERR_NOT_FOUND)
        LUNA_LOGF(LUNA_LOG_WARN, ATT_COMPONENT, "developer key lookup failed",
                  LUNA_LOG_ERR("error", err));
    if (err != LUNA_OK)
        memset(out, 0, sizeof *out);
    return err;
}

luna_err att_kms_register_deployment(const att_peers *p, const char *manifest, int *status,
                                     char code[ATT_REASON_MAX])
{
    luna_http_client_opts o;
    json_t *body, *ans = NULL;
    const char *c;
    luna_err err;

    *status = 0;
    code[0] = '\0';
    body = json_pack("{s:s}", "manifest", manifest);
    if (body == NULL)
        return LUNA_ERR_NOMEM;
    client_opts(p, &p->s->kms, NULL, 0, ATT_KMS_IDENTITY, &o);
    err = fetch_json(&o, "POST", "/v1/kms/deployments", body, status, &ans);
    json_decref(body);
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_WARN, ATT_COMPONENT, "KMS deployment registration unreachable",
                  LUNA_LOG_ERR("error", err));
        return LUNA_ERR_UNAVAILABLE;
    }
    c = json_string_value(json_object_get(json_object_get(ans, "error"), "code"));
    /* Only a code of the error grammar is repeated to our caller. */
    if (*status >= 300 && c != NULL && strlen(c) < ATT_REASON_MAX && att_deployment_id_ok(c))
        memcpy(code, c, strlen(c) + 1);
    json_decref(ans);
    return LUNA_OK;
}
