/*
 * kms_http.c - the KMS routes (kms_http.h, docs/openapi-kms.yaml).
 *
 * Owns: allow-lists, body schemas, token checks and role rules per route,
 * and the JSON answers.  Must never: echo caller input in an error, answer
 * with key material other than HPKE-sealed to its recipient, or let a
 * token's tenant reach another tenant's keys or TEEs.
 */
#include <string.h>

#include "kms_http.h"
#include "kms_verify.h"
#include "luna/json.h"
#include "luna/log.h"

/* The getters below read fields the schema already checked (or left out). */
static void ign(luna_err e)
{
    (void)e;
}

#define TEE_ALLOW "lunal://tee/*"
#define BODY_MAX (192u * 1024u)
#define STRING_MAX (128u * 1024u)

static const char *const ev_types[] = {"sim", "sev-snp", "tdx", "sgx", "nitro", "tpm", NULL};

#define ID_FIELD(n, req)                                                                           \
    {.name = (n), .type = LUNA_JSON_T_STRING, .flags = (req), .min_len = 1,                        \
     .max_len = KMS_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT}
#define KEY32_FIELD(n, req)                                                                        \
    {.name = (n), .type = LUNA_JSON_T_B64URL, .flags = (req), .min_len = 32, .max_len = 32}

static const luna_json_field otk_fields[] = {
    ID_FIELD("tee_id", LUNA_JSON_REQUIRED),
    ID_FIELD("job", LUNA_JSON_REQUIRED),
    ID_FIELD("request_id", LUNA_JSON_REQUIRED),
    KEY32_FIELD("client_pk", LUNA_JSON_REQUIRED),
};
static const luna_json_schema otk_schema = {otk_fields, 4, NULL};

static const luna_json_field challenge_fields[] = {
    ID_FIELD("tee_id", LUNA_JSON_REQUIRED),
    ID_FIELD("otk_id", LUNA_JSON_REQUIRED),
};
static const luna_json_schema challenge_schema = {challenge_fields, 2, NULL};

static const luna_json_field release_fields[] = {
    ID_FIELD("tee_id", LUNA_JSON_REQUIRED),
    ID_FIELD("otk_id", LUNA_JSON_REQUIRED),
    KEY32_FIELD("nonce", LUNA_JSON_REQUIRED),
    {.name = "evidence", .type = LUNA_JSON_T_B64URL, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = KMS_EVIDENCE_MAX},
    {.name = "evidence_type", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = 16, .one_of = ev_types},
    {.name = "report", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = LUNA_JWS_MAX_TOKEN_LEN, .pattern = LUNA_JSON_PAT_PRINTABLE},
};
static const luna_json_schema release_schema = {release_fields, 6, NULL};

static const luna_json_field tenant_item = ID_FIELD("tenant", 0);
static const luna_json_field register_fields[] = {
    ID_FIELD("tee_id", LUNA_JSON_REQUIRED),
    {.name = "tenants", .type = LUNA_JSON_T_ARRAY, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = KMS_MAX_TENANTS_PER_TEE, .items = &tenant_item},
    ID_FIELD("deployment_id", LUNA_JSON_REQUIRED),
    {.name = "tee_type", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = 16, .one_of = ev_types},
    {.name = "mr_enclave", .type = LUNA_JSON_T_HEX, .flags = LUNA_JSON_REQUIRED, .min_len = 32,
     .max_len = KMS_MEAS_MAX},
    {.name = "mr_signer", .type = LUNA_JSON_T_HEX, .min_len = 32, .max_len = KMS_MEAS_MAX},
};
static const luna_json_schema register_schema = {register_fields, 6, NULL};

static const luna_json_field activate_fields[] = {
    {.name = "evidence", .type = LUNA_JSON_T_B64URL, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = KMS_EVIDENCE_MAX},
    {.name = "evidence_type", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = 16, .one_of = ev_types},
    KEY32_FIELD("tee_kx_pk", LUNA_JSON_REQUIRED),
    KEY32_FIELD("tee_sign_pk", LUNA_JSON_REQUIRED),
    /* The nonce the evidence answered (the attestation service's round):
       TPM quotes bind the keys through it alone. */
    KEY32_FIELD("nonce", 0),
};
static const luna_json_schema activate_schema = {activate_fields, 5, NULL};

static const luna_json_field reason_fields[] = {
    {.name = "reason", .type = LUNA_JSON_T_STRING, .min_len = 0, .max_len = 200,
     .pattern = LUNA_JSON_PAT_PRINTABLE},
};
static const luna_json_schema reason_schema = {reason_fields, 1, NULL};

static const luna_json_field create_fields[] = {
    ID_FIELD("key_id", LUNA_JSON_REQUIRED),
    {.name = "rotation_period_sec", .type = LUNA_JSON_T_INT, .min = 0, .max = 10LL * 366 * 86400},
};
static const luna_json_schema create_schema = {create_fields, 2, NULL};

static const luna_json_field minver_fields[] = {
    {.name = "min_decrypt_version", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED,
     .min = 1, .max = INT32_MAX},
};
static const luna_json_schema minver_schema = {minver_fields, 1, NULL};

static const luna_json_field datakey_fields[] = {
    KEY32_FIELD("recipient_pk", LUNA_JSON_REQUIRED),
};
static const luna_json_schema datakey_schema = {datakey_fields, 1, NULL};

static const luna_json_field unwrap_fields[] = {
    KEY32_FIELD("recipient_pk", LUNA_JSON_REQUIRED),
    {.name = "version", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 1,
     .max = INT32_MAX},
    {.name = "sealed_key", .type = LUNA_JSON_T_B64URL, .flags = LUNA_JSON_REQUIRED,
     .min_len = LUNA_HSM_SEALED_KEY_LEN, .max_len = LUNA_HSM_SEALED_KEY_LEN},
};
static const luna_json_schema unwrap_schema = {unwrap_fields, 3, NULL};

static const luna_json_schema empty_schema = {NULL, 0, NULL};

/* ---- helpers ---- */

static void reply_why(luna_http_request *req, luna_err err, const kms_why *w)
{
    int status = w->status != 0 ? w->status : luna_http_status_for_err(err);
    const char *code = w->code != NULL ? w->code : luna_errname(err);
    const char *msg = w->message != NULL ? w->message : luna_strerror(err);
    luna_http_reply_error(req, status, code, msg);
}

/* Parses the body against schema; replies 400 itself on failure. */
static json_t *parse_body(luna_http_request *req, const luna_json_schema *schema)
{
    const uint8_t *data = NULL;
    size_t len = 0;
    if (luna_http_request_body(req, &data, &len) != LUNA_OK) {
        luna_http_reply_error(req, 400, "invalid_body", "the body could not be read");
        return NULL;
    }
    if (len == 0 && schema == &empty_schema)
        data = (const uint8_t *)"{}", len = 2;
    luna_json_limits lim = {.max_bytes = BODY_MAX, .max_string = STRING_MAX};
    json_t *body = NULL;
    luna_json_error je;
    if (luna_json_parse((const char *)data, len, schema, &lim, &body, &je) != LUNA_OK) {
        json_t *e = json_pack("{s:{s:s,s:s,s:s}}", "error", "code", "invalid_body", "message",
                              je.message, "field", je.path);
        if (e != NULL)
            luna_http_reply_json(req, 400, e);
        else
            luna_http_reply_error(req, 400, "invalid_body", "the body failed its schema");
        json_decref(e);
        return NULL;
    }
    return body;
}

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void caller_init(kms_caller *c, luna_http_request *req)
{
    memset(c, 0, sizeof(*c));
    c->identity = luna_http_request_identity(req);
    c->request_id = luna_http_request_id(req);
}

/* Token required; roles any of `roles`.  Replies itself on failure. */
static bool need_token(kms_http *h, luna_http_request *req, kms_caller *c, unsigned roles)
{
    kms_why w = {0};
    luna_err err = kms_auth_token(h->svc, luna_http_request_header(req, "Authorization"), c, &w);
    if (err != LUNA_OK) {
        reply_why(req, err, &w);
        return false;
    }
    if ((c->roles & roles) == 0) {
        luna_http_reply_error(req, 403, "permission_denied",
                              "the token's roles do not allow this operation");
        return false;
    }
    return true;
}

static void put_b64(json_t *o, const char *k, const uint8_t *b, size_t n)
{
    char buf[LUNA_B64URL_ENC_LEN(128)];
    if (n <= 128 && luna_b64url_encode(b, n, buf, sizeof(buf)) == LUNA_OK)
        json_object_set_new(o, k, json_string(buf));
}

/* ---- one-time keys ---- */

static void h_otk_issue(luna_http_request *req, void *arg)
{
    kms_http *h = arg;
    kms_caller c;
    kms_why w = {0};
    kms_otk_issue_in in;
    kms_otk_issue_out out;
    size_t n = 0;
    caller_init(&c, req);
    json_t *body = parse_body(req, &otk_schema);
    if (body == NULL)
        return;
    if (!need_token(h, req, &c, KMS_ROLE_CLIENT))
        goto done;
    in.tee_id = jstr(body, "tee_id");
    in.job = jstr(body, "job");
    in.request_id = jstr(body, "request_id");
    if (luna_json_get_b64url(body, "client_pk", in.client_pk, 32, &n) != LUNA_OK) {
        luna_http_reply_error(req, 400, "invalid_body", "client_pk");
        goto done;
    }
    luna_err err = kms_otk_issue(h->svc, &c, &in, &out, &w);
    if (err != LUNA_OK) {
        reply_why(req, err, &w);
        goto done;
    }
    json_t *r = json_pack("{s:s,s:I}", "otk_id", out.otk_id, "expires_at",
                          (json_int_t)out.expires_at);
    if (r != NULL)
        put_b64(r, "sealed_otk", out.sealed, sizeof(out.sealed));
    if (r != NULL)
        luna_http_reply_json(req, 200, r);
    else
        luna_http_reply_error(req, 500, "internal", "out of memory");
    json_decref(r);
done:
    kms_caller_clear(&c);
    json_decref(body);
}

static void h_otk_challenge(luna_http_request *req, void *arg)
{
    kms_http *h = arg;
    kms_caller c;
    kms_why w = {0};
    uint8_t nonce[KMS_NONCE_LEN];
    int64_t exp = 0;
    caller_init(&c, req);
    json_t *body = parse_body(req, &challenge_schema);
    if (body == NULL)
        return;
    luna_err err = kms_otk_challenge(h->svc, &c, jstr(body, "tee_id"), jstr(body, "otk_id"),
                                     nonce, &exp, &w);
    if (err != LUNA_OK) {
        reply_why(req, err, &w);
    } else {
        json_t *r = json_pack("{s:I}", "expires_at", (json_int_t)exp);
        if (r != NULL) {
            put_b64(r, "nonce", nonce, sizeof(nonce));
            luna_http_reply_json(req, 200, r);
            json_decref(r);
        } else {
            luna_http_reply_error(req, 500, "internal", "out of memory");
        }
    }
    json_decref(body);
}

static void h_otk_release(luna_http_request *req, void *arg)
{
    kms_http *h = arg;
    kms_caller c;
    kms_why w = {0};
    kms_otk_release_in in;
    kms_otk_release_out out;
    static uint8_t ev[KMS_EVIDENCE_MAX];
    size_t n = 0, ev_len = 0;
    caller_init(&c, req);
    memset(&in, 0, sizeof(in));
    json_t *body = parse_body(req, &release_schema);
    if (body == NULL)
        return;
    if (luna_json_get_b64url(body, "nonce", in.nonce, sizeof(in.nonce), &n) != LUNA_OK ||
        luna_json_get_b64url(body, "evidence", ev, sizeof(ev), &ev_len) != LUNA_OK) {
        luna_http_reply_error(req, 400, "invalid_body", "nonce or evidence");
        json_decref(body);
        return;
    }
    in.tee_id = jstr(body, "tee_id");
    in.otk_id = jstr(body, "otk_id");
    in.evidence_type = jstr(body, "evidence_type");
    in.evidence = ev;
    in.evidence_len = ev_len;
    in.report = jstr(body, "report");
    in.report_len = strlen(in.report);
    luna_err err = kms_otk_release(h->svc, &c, &in, &out, &w);
    if (err != LUNA_OK) {
        reply_why(req, err, &w);
    } else {
        json_t *r = json_pack("{s:s,s:s,s:s}", "tenant", out.tenant, "job", out.job,
                              "request_id", out.request_id);
        if (r != NULL) {
            put_b64(r, "sealed_otk", out.sealed, sizeof(out.sealed));
            put_b64(r, "client_pk", out.client_pk, sizeof(out.client_pk));
            luna_http_reply_json(req, 200, r);
            json_decref(r);
        } else {
            luna_http_reply_error(req, 500, "internal", "out of memory");
        }
        luna_wipe(&out, sizeof(out));
    }
    json_decref(body);
}

/* ---- registry ---- */

/* Service callers named as the attestation identity need no token;
 * everyone else is an operator (own tenant) or platform administrator.
 * extra: roles also admitted (a client reading one TEE of its tenant). */
static bool registry_caller(kms_http *h, luna_http_request *req, kms_caller *c, unsigned extra)
{
    if (h->callers.attestation != NULL && strcmp(c->identity, h->callers.attestation) == 0)
        return true;
    return need_token(h, req, c, KMS_ROLE_OPERATOR | KMS_ROLE_PLATFORM_ADMIN | extra);
}

/* Reading: the TEE lists the operator's tenant.  Changing it: the TEE
 * serves that tenant alone (a shared TEE is the platform's to change). */
static bool may_see(const kms_caller *c, const kms_tee *t)
{
    if (!c->has_token || (c->roles & KMS_ROLE_PLATFORM_ADMIN) != 0)
        return true;
    return kms_tee_has_tenant(t, c->tenant);
}

static bool may_change(const kms_caller *c, const kms_tee *t)
{
    if (!c->has_token || (c->roles & KMS_ROLE_PLATFORM_ADMIN) != 0)
        return true;
    return strcmp(t->tenants, c->tenant) == 0;
}

static void h_tee_register(luna_http_request *req, void *arg)
{
    kms_http *h = arg;
    kms_caller c;
    kms_why w = {0};
    kms_tee t;
    caller_init(&c, req);
    memset(&t, 0, sizeof(t));
    json_t *body = parse_body(req, &register_schema);
    if (body == NULL)
        return;
    if (!registry_caller(h, req, &c, 0))
        goto done;
    const json_t *tenants = json_object_get(body, "tenants");
    size_t off = 0;
    for (size_t i = 0; i < json_array_size(tenants); i++) {
        const char *tn = json_string_value(json_array_get(tenants, i));
        size_t l = strlen(tn);
        if (c.has_token && (c.roles & KMS_ROLE_PLATFORM_ADMIN) == 0 &&
            strcmp(tn, c.tenant) != 0) {
            luna_http_reply_error(req, 403, "permission_denied",
                                  "an operator registers TEEs for its own tenant only");
            goto done;
        }
        if (i > 0)
            t.tenants[off++] = ',';
        memcpy(t.tenants + off, tn, l);
        off += l;
    }
    t.tenants[off] = '\0';
    memcpy(t.tee_id, jstr(body, "tee_id"), strlen(jstr(body, "tee_id")) + 1);
    memcpy(t.deployment, jstr(body, "deployment_id"), strlen(jstr(body, "deployment_id")) + 1);
    memcpy(t.tee_type, jstr(body, "tee_type"), strlen(jstr(body, "tee_type")) + 1);
    if (luna_json_get_hex(body, "mr_enclave", t.mr_enclave, sizeof(t.mr_enclave),
                          &t.mr_enclave_len) != LUNA_OK ||
        (json_object_get(body, "mr_signer") != NULL &&
         luna_json_get_hex(body, "mr_signer", t.mr_signer, sizeof(t.mr_signer),
                           &t.mr_signer_len) != LUNA_OK)) {
        luna_http_reply_error(req, 400, "invalid_body", "mr_enclave or mr_signer");
        goto done;
    }
    if (!kms_verify_type_ok(h->svc->ver, t.tee_type)) {
        luna_http_reply_error(req, 400, "tee_type_not_allowed",
                              "this KMS does not accept evidence of that type");
        goto done;
    }
    luna_err err = kms_tee_register(h->svc, &c, &t, &w);
    if (err != LUNA_OK) {
        reply_why(req, err, &w);
        goto done;
    }
    kms_why ignore;
    if (kms_tee_load(h->svc, t.tee_id, &t, &ignore) == LUNA_OK) {
        json_t *r = kms_tee_view(&t, &c);
        luna_http_reply_json(req, 201, r);
        json_decref(r);
    } else {
        luna_http_reply_error(req, 201, "created", "registered");
    }
done:
    kms_caller_clear(&c);
    json_decref(body);
}

static void h_tee_list(luna_http_request *req, void *arg)
{
    kms_http *h = arg;
    kms_caller c;
    kms_why w = {0};
    json_t *arr = NULL;
    caller_init(&c, req);
    if (!registry_caller(h, req, &c, 0))
        goto done;
    luna_err err = kms_tee_list(h->svc, &c, &arr, &w);
    if (err != LUNA_OK) {
        reply_why(req, err, &w);
        goto done;
    }
    json_t *r = json_pack("{s:o}", "tees", arr);
    luna_http_reply_json(req, 200, r);
    json_decref(r);
done:
    kms_caller_clear(&c);
}

bool kms_http_split_path(const char *path, const char *prefix, char *id, size_t id_cap, char *op,
                       size_t op_cap)
{
    size_t pl = strlen(prefix);
    if (strncmp(path, prefix, pl) != 0)
        return false;
    const char *rest = path + pl;
    const char *slash = strchr(rest, '/');
    size_t il = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
    if (il == 0 || il >= id_cap)
        return false;
    memcpy(id, rest, il);
    id[il] = '\0';
    op[0] = '\0';
    if (slash != NULL) {
        size_t ol = strlen(slash + 1);
        if (ol == 0 || ol >= op_cap || strchr(slash + 1, '/') != NULL)
            return false;
        memcpy(op, slash + 1, ol + 1);
    }
    return kms_id_ok(id, KMS_ID_MAX) && (op[0] == '\0' || kms_id_ok(op, op_cap - 1));
}

static void h_tee_item(luna_http_request *req, void *arg)
{
    kms_http *h = arg;
    kms_caller c;
    kms_why w = {0};
    kms_tee t;
    char id[KMS_ID_MAX + 1], op[32];
    json_t *body = NULL;
    bool get = strcmp(luna_http_request_method(req), "GET") == 0;
    caller_init(&c, req);
    if (!kms_http_split_path(luna_http_request_path(req), "/v1/kms/tees/", id, sizeof(id), op,
                    sizeof(op)) ||
        (get != (op[0] == '\0'))) {
        luna_http_reply_error(req, 404, "not_found", "no such resource");
        return;
    }
    if (!get) {
        bool act = strcmp(op, "activate") == 0;
        if (!act && strcmp(op, "quarantine") != 0 && strcmp(op, "revoke") != 0) {
            luna_http_reply_error(req, 404, "not_found", "no such TEE operation");
            return;
        }
        body = parse_body(req, act ? &activate_schema : &reason_schema);
        if (body == NULL)
            return;
    }
    /* A client (its token relayed by the gateway at TEE selection) may read
       one TEE, and only one that serves its tenant (may_see below); it sees
       its own tenant alone in the entry. */
    if (!registry_caller(h, req, &c, get ? KMS_ROLE_CLIENT : 0))
        goto done;
    luna_err err = kms_tee_load(h->svc, id, &t, &w);
    if (err == LUNA_OK && !may_see(&c, &t))
        err = kms_fail(&w, LUNA_ERR_NOT_FOUND, 404, "tee_not_found", "no such TEE");
    if (err == LUNA_OK && !get && !may_change(&c, &t))
        err = kms_fail(&w, LUNA_ERR_PERMISSION, 403, "permission_denied",
                       "a TEE shared by several tenants is changed by the platform only");
    if (err == LUNA_OK && !get) {
        if (strcmp(op, "activate") == 0) {
            static uint8_t ev[KMS_EVIDENCE_MAX];
            uint8_t kx[32], sg[32], nonce[32];
            size_t n = 0, ev_len = 0, nl = 0;
            bool has_nonce = json_object_get(body, "nonce") != NULL;
            if (luna_json_get_b64url(body, "evidence", ev, sizeof(ev), &ev_len) != LUNA_OK ||
                luna_json_get_b64url(body, "tee_kx_pk", kx, 32, &n) != LUNA_OK ||
                luna_json_get_b64url(body, "tee_sign_pk", sg, 32, &n) != LUNA_OK ||
                (has_nonce && (luna_json_get_b64url(body, "nonce", nonce, 32, &nl) != LUNA_OK ||
                               nl != 32)))
                err = kms_fail(&w, LUNA_ERR_FORMAT, 400, "invalid_body", "evidence or keys");
            else
                err = kms_tee_activate(h->svc, &c, id, jstr(body, "evidence_type"), ev, ev_len,
                                       kx, sg, has_nonce ? nonce : NULL, &w);
        } else {
            const char *reason = jstr(body, "reason");
            err = kms_tee_set_status(h->svc, &c, id,
                                     op[0] == 'r' ? KMS_TEE_REVOKED : KMS_TEE_QUARANTINED,
                                     reason != NULL ? reason : "", &w);
        }
        if (err == LUNA_OK)
            err = kms_tee_load(h->svc, id, &t, &w);
    }
    if (err != LUNA_OK) {
        reply_why(req, err, &w);
        goto done;
    }
    json_t *r = kms_tee_view(&t, &c);
    luna_http_reply_json(req, 200, r);
    json_decref(r);
done:
    kms_caller_clear(&c);
    json_decref(body);
}

/* ---- tenant keys ---- */

#define KEY_MANAGE (KMS_ROLE_KEY_ADMIN)
#define KEY_READ (KMS_ROLE_KEY_ADMIN | KMS_ROLE_TENANT_ADMIN | KMS_ROLE_AUDITOR)
#define KEY_USE (KMS_ROLE_KEY_ADMIN | KMS_ROLE_CLIENT)

static void h_keys(luna_http_request *req, void *arg)
{
    kms_http *h = arg;
    kms_caller c;
    kms_why w = {0};
    kms_key_info k;
    json_t *body = NULL, *r = NULL;
    bool get = strcmp(luna_http_request_method(req), "GET") == 0;
    caller_init(&c, req);
    if (!get && (body = parse_body(req, &create_schema)) == NULL)
        return;
    if (!need_token(h, req, &c, get ? KEY_READ : KEY_MANAGE))
        goto done;
    luna_err err;
    if (get) {
        json_t *arr = NULL;
        err = kms_key_list(h->svc, c.tenant, &arr, &w);
        if (err == LUNA_OK)
            r = json_pack("{s:o}", "keys", arr);
    } else {
        int64_t period = 0;
        ign(luna_json_get_int(body, "rotation_period_sec", &period));
        err = kms_key_create(h->svc, &c, jstr(body, "key_id"), period, &k, &w);
        if (err == LUNA_OK)
            r = kms_key_to_json(&k);
    }
    if (err != LUNA_OK)
        reply_why(req, err, &w);
    else
        luna_http_reply_json(req, get ? 200 : 201, r);
done:
    json_decref(r);
    kms_caller_clear(&c);
    json_decref(body);
}

static void h_key_item(luna_http_request *req, void *arg)
{
    kms_http *h = arg;
    kms_caller c;
    kms_why w = {0};
    kms_key_info k;
    char id[KMS_ID_MAX + 1], op[32];
    json_t *body = NULL, *r = NULL;
    bool get = strcmp(luna_http_request_method(req), "GET") == 0;
    caller_init(&c, req);
    if (!kms_http_split_path(luna_http_request_path(req), "/v1/kms/keys/", id, sizeof(id), op,
                    sizeof(op)) ||
        (get != (op[0] == '\0'))) {
        luna_http_reply_error(req, 404, "not_found", "no such resource");
        return;
    }
    bool datakey = strcmp(op, "datakey") == 0, unwrap = strcmp(op, "decrypt") == 0;
    bool minver = strcmp(op, "min-version") == 0;
    if (!get) {
        body = parse_body(req, datakey  ? &datakey_schema
                               : unwrap ? &unwrap_schema
                               : minver ? &minver_schema
                                        : &empty_schema);
        if (body == NULL)
            return;
    }
    if (!need_token(h, req, &c, get ? KEY_READ : (datakey || unwrap) ? KEY_USE : KEY_MANAGE))
        goto done;
    luna_err err;
    if (get) {
        err = id[0] == '_' ? kms_fail(&w, LUNA_ERR_NOT_FOUND, 404, "key_not_found", "no such key")
                           : kms_key_get(h->svc, c.tenant, id, &k, &w);
        if (err == LUNA_OK)
            r = kms_key_to_json(&k);
    } else if (datakey || unwrap) {
        uint8_t rpk[32], sealed[LUNA_HSM_SEALED_KEY_LEN], out[KMS_SEALED_OTK_LEN];
        size_t n = 0;
        int64_t version = 0;
        ign(luna_json_get_b64url(body, "recipient_pk", rpk, 32, &n));
        if (datakey) {
            err = kms_key_datakey(h->svc, &c, id, rpk, &version, sealed, out, &w);
        } else {
            ign(luna_json_get_int(body, "version", &version));
            ign(luna_json_get_b64url(body, "sealed_key", sealed, sizeof(sealed), &n));
            err = kms_key_unwrap(h->svc, &c, id, version, sealed, rpk, out, &w);
        }
        if (err == LUNA_OK) {
            r = json_pack("{s:s,s:I}", "key_id", id, "version", (json_int_t)version);
            if (r != NULL) {
                put_b64(r, "sealed_to_recipient", out, sizeof(out));
                if (datakey)
                    put_b64(r, "sealed_key", sealed, sizeof(sealed));
            }
        }
    } else {
        static const char *const ops[][2] = {
            {"rotate", "rotate"},   {"disable", "disable"},  {"enable", "enable"},
            {"revoke", "revoke"},   {"destroy", "destroy"},  {"cancel-destroy", "cancel_destroy"},
            {"min-version", "min_version"},
        };
        const char *internal = NULL;
        for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
            if (strcmp(op, ops[i][0]) == 0)
                internal = ops[i][1];
        int64_t value = 0;
        if (minver)
            ign(luna_json_get_int(body, "min_decrypt_version", &value));
        err = internal == NULL
                  ? kms_fail(&w, LUNA_ERR_NOT_FOUND, 404, "unknown_operation", "no such operation")
              : id[0] == '_'
                  ? kms_fail(&w, LUNA_ERR_NOT_FOUND, 404, "key_not_found", "no such key")
                  : kms_key_op(h->svc, &c, id, internal, value, &k, &w);
        if (err == LUNA_OK)
            r = kms_key_to_json(&k);
    }
    if (err != LUNA_OK)
        reply_why(req, err, &w);
    else if (r == NULL)
        luna_http_reply_error(req, 500, "internal", "out of memory");
    else
        luna_http_reply_json(req, 200, r);
done:
    json_decref(r);
    kms_caller_clear(&c);
    json_decref(body);
}

luna_err kms_http_register(kms_http *h, luna_http_server *server)
{
    static const char *const tee_allow[] = {TEE_ALLOW};
    const kms_callers *k = &h->callers;
    const luna_http_route routes[] = {
        {LUNA_HTTP_POST, "/v1/kms/otk", k->otk, k->n_otk, "application/json", h_otk_issue, h},
        {LUNA_HTTP_POST, "/v1/kms/otk/challenge", tee_allow, 1, "application/json",
         h_otk_challenge, h},
        {LUNA_HTTP_POST, "/v1/kms/otk/release", tee_allow, 1, "application/json", h_otk_release,
         h},
        {LUNA_HTTP_POST, "/v1/kms/tees", k->registry, k->n_registry, "application/json",
         h_tee_register, h},
        {LUNA_HTTP_GET, "/v1/kms/tees", k->registry, k->n_registry, NULL, h_tee_list, h},
        {LUNA_HTTP_GET | LUNA_HTTP_POST, "/v1/kms/tees/*", k->registry, k->n_registry,
         "application/json", h_tee_item, h},
        {LUNA_HTTP_GET | LUNA_HTTP_POST, "/v1/kms/keys", k->keys, k->n_keys, "application/json",
         h_keys, h},
        {LUNA_HTTP_GET | LUNA_HTTP_POST, "/v1/kms/keys/*", k->keys, k->n_keys,
         "application/json", h_key_item, h},
        {LUNA_HTTP_POST, "/v1/kms/deployments", k->deployments, k->n_deployments,
         "application/json", kms_deploy_http, h},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        LUNA_GUARD(luna_http_server_add_route(server, &routes[i]));
    return LUNA_OK;
}
