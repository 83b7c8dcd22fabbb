/*
 * gw_relay.c - the table-driven relay of the gateway's administrative and
 * query routes to IAM, the KMS, the attestation service, the audit log and
 * the audit witness (gw_relay.h; docs/protocol.md "Relayed routes").
 *
 * Owns: the route table (public route -> permission -> internal service,
 * method and path), the body schemas and query allow-lists of those
 * routes, the check of the downstream token, and the shape checks of the
 * answers it relays.
 *
 * Must never: put a tenant or principal the client wrote into a
 * downstream path or body (they come from the verified token; only a
 * principal *target* inside the caller's own tenant may be named), forward
 * a client header other than the one gw_forward_authorization picks, log
 * or re-serialize an answer that carries a secret (new API keys, client
 * key files: relayed as received), or relay a 5xx text of a component.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "gw_relay.h"
#include "luna/audience.h"
#include "luna/bytes.h"
#include "luna/json.h"
#include "luna/log.h"

#define COMPONENT "gateway"
#define RELAY_JSON "application/json"
#define RELAY_UP_PATH_MAX (GW_RELAY_PATH_MAX + GW_QUERY_MAX + 64u)
#define RELAY_TEXT_MAX (64u * 1024u) /* a checkpoint or other text answer */
#define RELAY_DEPLOYMENTS_MAX 256u
#define RELAY_MANIFEST_MAX 8192u /* = LUNA_MANIFEST_MAX_LEN (luna/manifest.h) */

typedef enum relay_up {
    UP_NONE = 0, /* answered by the gateway itself */
    UP_IAM,
    UP_KMS,
    UP_ATT,
    UP_AUDIT,
    UP_WITNESS,
    UP__COUNT
} relay_up;

/* What goes downstream as the body. */
typedef enum relay_body {
    B_NONE = 0,     /* nothing */
    B_EMPTY,        /* "{}" */
    B_COPY,         /* the validated body, re-serialized */
    B_TEE_REGISTER, /* the body plus "tenants": [the caller's tenant] */
    B_APIKEY,       /* "expires_in_sec" only (the target principal is in the path) */
    B_CLIENT,       /* a client principal: id, kind "client", display name */
} relay_body;

/* What comes back and how it is checked. */
typedef enum relay_ans {
    A_JSON = 0,    /* a JSON object, parsed and re-serialized */
    A_SECRET,      /* a JSON object carrying a secret: relayed byte for byte */
    A_TEXT,        /* printable text (a signed checkpoint), relayed as text/plain */
    A_NDJSON,      /* JSON lines (the audit export) */
    A_TENANT_LIST, /* IAM's one tenant, as {"tenants":[...]} */
    A_DEPLOYMENTS, /* the KMS registry folded into deployments */
} relay_ans;

#define R_TOKEN 0x1u        /* the downstream checks the caller's token: required */
#define R_ID_APIKEY 0x2u    /* ids[0] is an IAM API key id: 16 lowercase hex */
#define R_PRINCIPAL 0x4u    /* the IAM path names a principal ({p}) */
#define R_TENANT_QUERY 0x8u /* a "tenant" query filter must be the caller's */
/* Admitted by verify_perm only (a client): the gateway's configured TEEs,
   each read from the KMS with the caller's token (the KMS shows a client
   only TEEs serving its tenant), instead of the registry listing. */
#define R_TEES_FANOUT 0x10u

typedef struct relay_route {
    unsigned method; /* LUNA_HTTP_GET / LUNA_HTTP_POST */
    const char *pattern;
    const char *perm;     /* the IAM permission asked for (NULL only with UP_NONE) */
    const char *alt_perm; /* NULL, or a second permission that also admits */
    const luna_json_schema *schema;
    relay_body body;
    const gw_qspec *query;
    size_t n_query;
    relay_up up;
    const char *up_method;
    const char *up_path; /* {0}: first id, {t}: caller's tenant, {p}: target principal */
    relay_ans ans;
    unsigned flags;
} relay_route;

/* ---- body schemas (the downstream's own, minus what the gateway fills in) ---- */

#define IDENT(n, f)                                                                                \
    {.name = (n), .type = LUNA_JSON_T_STRING, .flags = (f), .min_len = 1, .max_len = GW_ID_MAX,    \
     .pattern = LUNA_JSON_PAT_IDENT}

static const char *const tee_types[] = {"sim", "sev-snp", "tdx", "sgx", "nitro", "tpm", NULL};

static const luna_json_field tee_register_fields[] = {
    IDENT("tee_id", LUNA_JSON_REQUIRED),
    IDENT("deployment_id", LUNA_JSON_REQUIRED),
    {.name = "tee_type", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = 16, .one_of = tee_types},
    {.name = "mr_enclave", .type = LUNA_JSON_T_HEX, .flags = LUNA_JSON_REQUIRED, .min_len = 32,
     .max_len = 64},
    {.name = "mr_signer", .type = LUNA_JSON_T_HEX, .min_len = 32, .max_len = 64},
};
static const luna_json_schema tee_register_schema = {tee_register_fields, 5, NULL};

static const luna_json_field reason_fields[] = {
    {.name = "reason", .type = LUNA_JSON_T_STRING, .min_len = 0, .max_len = 200,
     .pattern = LUNA_JSON_PAT_PRINTABLE},
};
static const luna_json_schema reason_schema = {reason_fields, 1, NULL};

static const luna_json_schema empty_schema = {NULL, 0, NULL};

static const luna_json_field key_create_fields[] = {
    IDENT("key_id", LUNA_JSON_REQUIRED),
    {.name = "rotation_period_sec", .type = LUNA_JSON_T_INT, .min = 0,
     .max = 10LL * 366 * 86400},
};
static const luna_json_schema key_create_schema = {key_create_fields, 2, NULL};

static const luna_json_field tenant_create_fields[] = {
    IDENT("tenant_id", LUNA_JSON_REQUIRED),
    {.name = "display_name", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = 128,
     .pattern = LUNA_JSON_PAT_TEXT},
    IDENT("admin_principal_id", 0),
    {.name = "api_key_ttl_sec", .type = LUNA_JSON_T_INT, .min = 1, .max = INT32_MAX},
};
static const luna_json_schema tenant_create_schema = {tenant_create_fields, 4, NULL};

static const luna_json_field apikey_create_fields[] = {
    IDENT("principal", 0),
    {.name = "expires_in_sec", .type = LUNA_JSON_T_INT, .min = 1, .max = INT32_MAX},
};
static const luna_json_schema apikey_create_schema = {apikey_create_fields, 2, NULL};

static const luna_json_field apikey_revoke_fields[] = {IDENT("principal", 0)};
static const luna_json_schema apikey_revoke_schema = {apikey_revoke_fields, 1, NULL};

static const luna_json_field client_fields[] = {
    IDENT("principal_id", LUNA_JSON_REQUIRED),
    {.name = "display_name", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = 128,
     .pattern = LUNA_JSON_PAT_TEXT},
};
static const luna_json_schema client_schema = {client_fields, 2, NULL};

/* A manifest is a compact JWS: base64url parts and dots only, at most
   LUNA_MANIFEST_MAX_LEN bytes (luna/manifest.h). */
static const luna_json_field deployment_fields[] = {
    {.name = "manifest", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = RELAY_MANIFEST_MAX, .pattern = LUNA_JSON_PAT_IDENT},
};
static const luna_json_schema deployment_schema = {deployment_fields, 1, NULL};

/* ---- query allow-lists (the downstream's parameters) ---- */

static const gw_qspec q_principal[] = {{"principal", GW_Q_IDENT}};
static const gw_qspec q_history[] = {{"deployment_id", GW_Q_IDENT},
                                     {"tee_id", GW_Q_IDENT},
                                     {"after", GW_Q_UINT},
                                     {"limit", GW_Q_UINT}};
static const gw_qspec q_entries[] = {{"tenant", GW_Q_IDENT}, {"tee", GW_Q_IDENT},
                                     {"deployment", GW_Q_IDENT}, {"operation", GW_Q_IDENT},
                                     {"since", GW_Q_UINT},   {"until", GW_Q_UINT},
                                     {"cursor", GW_Q_UINT},  {"limit", GW_Q_UINT}};
static const gw_qspec q_from_to[] = {{"from", GW_Q_UINT}, {"to", GW_Q_UINT}};
static const gw_qspec q_inclusion[] = {{"index", GW_Q_UINT}, {"size", GW_Q_UINT}};

#define Q(a) a, sizeof(a) / sizeof((a)[0])
#define NOQ NULL, 0
#define GET LUNA_HTTP_GET
#define POST LUNA_HTTP_POST
#define PLATFORM "platform.admin"

/* The table.  docs/protocol.md "Relayed routes" repeats it; keep both equal. */
static const relay_route routes[] = {
    {GET, "/v1/tees", "tees.read", PLATFORM, NULL, B_NONE, NOQ, UP_KMS, "GET", "/v1/kms/tees",
     A_JSON, R_TOKEN | R_TEES_FANOUT},
    {POST, "/v1/tees", "tees.manage", PLATFORM, &tee_register_schema, B_TEE_REGISTER, NOQ, UP_KMS,
     "POST", "/v1/kms/tees", A_JSON, R_TOKEN},
    {POST, "/v1/tees/{}/quarantine", "tees.manage", PLATFORM, &reason_schema, B_COPY, NOQ, UP_KMS,
     "POST", "/v1/kms/tees/{0}/quarantine", A_JSON, R_TOKEN},
    {GET, "/v1/keys", "keys.read", NULL, NULL, B_NONE, NOQ, UP_KMS, "GET", "/v1/kms/keys", A_JSON,
     R_TOKEN},
    {POST, "/v1/keys", "keys.manage", NULL, &key_create_schema, B_COPY, NOQ, UP_KMS, "POST",
     "/v1/kms/keys", A_JSON, R_TOKEN},
    {POST, "/v1/keys/{}/rotate", "keys.manage", NULL, &empty_schema, B_EMPTY, NOQ, UP_KMS, "POST",
     "/v1/kms/keys/{0}/rotate", A_JSON, R_TOKEN},
    {POST, "/v1/keys/{}/revoke", "keys.manage", NULL, &empty_schema, B_EMPTY, NOQ, UP_KMS, "POST",
     "/v1/kms/keys/{0}/revoke", A_JSON, R_TOKEN},
    {GET, "/v1/deployments", "deployments.read", PLATFORM, NULL, B_NONE, NOQ, UP_KMS, "GET",
     "/v1/kms/tees", A_DEPLOYMENTS, R_TOKEN},
    {POST, "/v1/deployments", "deployments.register", PLATFORM, &deployment_schema, B_COPY, NOQ,
     UP_ATT, "POST", "/v1/attestation/deployments", A_JSON, R_TOKEN},
    {GET, "/v1/tenants", "iam.read", NULL, NULL, B_NONE, NOQ, UP_IAM, "GET",
     "/v1/iam/tenants/{t}", A_TENANT_LIST, R_TOKEN},
    {POST, "/v1/tenants", PLATFORM, NULL, &tenant_create_schema, B_COPY, NOQ, UP_IAM, "POST",
     "/v1/iam/tenants", A_SECRET, R_TOKEN},
    {GET, "/v1/apikeys", "iam.read", NULL, NULL, B_NONE, Q(q_principal), UP_IAM, "GET",
     "/v1/iam/tenants/{t}/principals/{p}/api-keys", A_JSON, R_TOKEN | R_PRINCIPAL},
    {POST, "/v1/apikeys", "iam.admin", NULL, &apikey_create_schema, B_APIKEY, NOQ, UP_IAM, "POST",
     "/v1/iam/tenants/{t}/principals/{p}/api-keys", A_SECRET, R_TOKEN | R_PRINCIPAL},
    {POST, "/v1/apikeys/{}/revoke", "iam.admin", NULL, &apikey_revoke_schema, B_NONE, NOQ, UP_IAM,
     "DELETE", "/v1/iam/tenants/{t}/principals/{p}/api-keys/{0}", A_JSON,
     R_TOKEN | R_PRINCIPAL | R_ID_APIKEY},
    {POST, "/v1/clients", "iam.admin", NULL, &client_schema, B_CLIENT, NOQ, UP_IAM, "POST",
     "/v1/iam/tenants/{t}/principals", A_SECRET, R_TOKEN},
    {GET, "/v1/attestation/history", "attestation.read", NULL, NULL, B_NONE, Q(q_history), UP_ATT,
     "GET", "/v1/attestation/history", A_JSON, R_TOKEN}, /* tenant-scoped by the token */
    {GET, "/v1/attestation/deployments", "deployments.read", PLATFORM, NULL, B_NONE, NOQ, UP_ATT,
     "GET", "/v1/attestation/deployments", A_JSON, R_TOKEN}, /* tenant-scoped by the token */
    {GET, "/v1/audit/entries", "audit.read", NULL, NULL, B_NONE, Q(q_entries), UP_AUDIT, "GET",
     "/v1/audit/entries", A_JSON, R_TOKEN | R_TENANT_QUERY},
    {GET, "/v1/audit/export", "audit.read", NULL, NULL, B_NONE, Q(q_from_to), UP_AUDIT, "GET",
     "/v1/audit/export", A_NDJSON, R_TOKEN},
    {GET, "/v1/audit/checkpoint", "audit.read", PLATFORM, NULL, B_NONE, NOQ, UP_AUDIT, "GET",
     "/v1/audit/checkpoint", A_TEXT, 0},
    {GET, "/v1/audit/proof/inclusion", "audit.read", PLATFORM, NULL, B_NONE, Q(q_inclusion),
     UP_AUDIT, "GET", "/v1/audit/proof/inclusion", A_JSON, 0},
    {GET, "/v1/audit/proof/consistency", "audit.read", PLATFORM, NULL, B_NONE, Q(q_from_to),
     UP_AUDIT, "GET", "/v1/audit/proof/consistency", A_JSON, 0},
    {GET, "/v1/audit/witness", "audit.read", PLATFORM, NULL, B_NONE, NOQ, UP_WITNESS, "GET",
     "/v1/witness/state", A_JSON, 0},
};

/* The router's registrations: every path of the table, prefixes for ids. */
static const struct {
    unsigned methods;
    const char *path;
} registrations[] = {
    {GET | POST, "/v1/tees"},
    {POST, "/v1/tees/*"},
    {GET | POST, "/v1/keys"},
    {POST, "/v1/keys/*"},
    {GET | POST, "/v1/deployments"},
    {GET | POST, "/v1/tenants"},
    {GET | POST, "/v1/apikeys"},
    {POST, "/v1/apikeys/*"},
    {POST, "/v1/clients"},
    {GET, "/v1/attestation/history"},
    {GET, "/v1/attestation/deployments"},
    {GET, "/v1/audit/*"},
};

/* The audience each downstream verifies the forwarded token for. */
static const char *const up_audience[UP__COUNT] = {
    [UP_IAM] = LUNA_AUD_IAM,     [UP_KMS] = LUNA_AUD_KMS, [UP_ATT] = LUNA_AUD_ATTESTATION,
    [UP_AUDIT] = LUNA_AUD_AUDIT, [UP_WITNESS] = NULL,
};

static const char *const up_name[UP__COUNT] = {
    [UP_NONE] = "gateway", [UP_IAM] = "IAM",         [UP_KMS] = "the KMS",
    [UP_ATT] = "the attestation service", [UP_AUDIT] = "the audit log",
    [UP_WITNESS] = "the audit witness",
};

struct gw_relay {
    gw_service *g;
    const gw_settings *set;
    luna_http_client *up[UP__COUNT];
    bool closing;
};

typedef struct relay_ctx {
    gw_relay *r;
    luna_http_request *req;
    const relay_route *rt;
    gw_caller who;
    json_t *body;
    gw_query q;
    char ids[GW_RELAY_IDS_MAX][GW_ID_MAX + 1];
    size_t n_ids;
    char principal[GW_ID_MAX + 1]; /* target principal of an IAM path */
    const char *auth;              /* the forwarded Authorization value, or NULL */
    bool alt_tried;
    bool fanout_tried; /* R_TEES_FANOUT: asked IAM for FANOUT_PERM */
    bool fanout;       /* ... and admitted by it alone */
    size_t fan_pos;    /* next configured TEE to read */
    json_t *fan_acc;   /* the entries read so far */
} relay_ctx;

#define FANOUT_PERM "attestation.verify"

/* ====================================================================== */
/* replies                                                                 */
/* ====================================================================== */


static void ctx_free(relay_ctx *c)
{
    if (c == NULL)
        return;
    json_decref(c->body);
    json_decref(c->fan_acc);
    free(c);
}

static void ctx_fail(relay_ctx *c, int status, const char *code, const char *message)
{
    gw_reply_error(c->req, status, code, message, NULL);
    ctx_free(c);
}

static void ctx_fail_transport(relay_ctx *c, luna_err err)
{
    if (luna_http_response_header(c->req, "Retry-After", "1") != LUNA_OK) {
        /* the code says retryable either way */
    }
    if (err == LUNA_ERR_TIMEOUT)
        ctx_fail(c, 504, "upstream_timeout", "an internal component did not answer in time");
    else
        ctx_fail(c, 503, "upstream_unavailable", "an internal component is unavailable");
}

/* ====================================================================== */
/* answers                                                                 */
/* ====================================================================== */

/* A JSON answer: an object, no duplicate keys, bounded. */
static json_t *answer_json(const luna_http_response *resp)
{
    if (resp->body == NULL || resp->body_len == 0 || resp->body_len > GW_UPSTREAM_JSON_MAX)
        return NULL;
    json_error_t je;
    json_t *j = json_loadb((const char *)resp->body, resp->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/*
 * The shape of a secret-bearing answer without copying its strings into
 * the heap: one object, printable ASCII or JSON whitespace only.  Enough
 * for a relay that does not read it; the client parses it strictly.
 */
static bool answer_object_text(const luna_http_response *resp)
{
    const uint8_t *b = resp->body;
    size_t n = resp->body_len, i = 0, j;
    if (b == NULL || n == 0 || n > GW_UPSTREAM_JSON_MAX)
        return false;
    for (size_t k = 0; k < n; k++)
        if ((b[k] < 0x20 || b[k] > 0x7e) && b[k] != '\n' && b[k] != '\r' && b[k] != '\t')
            return false;
    while (i < n && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t'))
        i++;
    j = n;
    while (j > i && (b[j - 1] == ' ' || b[j - 1] == '\n' || b[j - 1] == '\r' || b[j - 1] == '\t'))
        j--;
    return j - i >= 2 && b[i] == '{' && b[j - 1] == '}';
}

static bool answer_text(const luna_http_response *resp, size_t cap)
{
    if (resp->body == NULL || resp->body_len == 0 || resp->body_len > cap)
        return false;
    for (size_t k = 0; k < resp->body_len; k++) {
        uint8_t ch = resp->body[k];
        if ((ch < 0x20 || ch == 0x7f) && ch != '\n' && ch != '\t')
            return false;
    }
    return true;
}

/* Every line a JSON object (the audit export), checked line by line. */
static bool answer_ndjson(const luna_http_response *resp, size_t cap)
{
    if (resp->body_len == 0)
        return true; /* an empty range */
    if (!answer_text(resp, cap))
        return false;
    const char *p = (const char *)resp->body;
    size_t left = resp->body_len;
    while (left > 0) {
        const char *nl = memchr(p, '\n', left);
        size_t ln = nl != NULL ? (size_t)(nl - p) : left;
        if (ln > 0) {
            json_error_t je;
            json_t *j = json_loadb(p, ln, JSON_REJECT_DUPLICATES, &je);
            bool ok = json_is_object(j);
            json_decref(j);
            if (!ok)
                return false;
        }
        p += ln + (nl != NULL ? 1 : 0);
        left -= ln + (nl != NULL ? 1 : 0);
    }
    return true;
}

/* The KMS registry's TEEs folded into deployments: id, TEE ids, how many active. */
static json_t *fold_deployments(const json_t *kms)
{
    const json_t *tees = json_object_get(kms, "tees");
    if (!json_is_array(tees))
        return NULL;
    json_t *deps = json_array();
    size_t i;
    const json_t *t;
    json_array_foreach(tees, i, t)
    {
        const char *dep = json_string_value(json_object_get(t, "deployment_id"));
        const char *id = json_string_value(json_object_get(t, "tee_id"));
        const char *status = json_string_value(json_object_get(t, "status"));
        if (deps == NULL || !gw_ident_ok(dep, GW_ID_MAX) || !gw_ident_ok(id, GW_ID_MAX))
            continue;
        json_t *entry = NULL;
        size_t k;
        json_t *d;
        json_array_foreach(deps, k, d)
        {
            if (strcmp(json_string_value(json_object_get(d, "deployment_id")), dep) == 0)
                entry = d;
        }
        if (entry == NULL) {
            if (json_array_size(deps) >= RELAY_DEPLOYMENTS_MAX)
                continue;
            entry = json_pack("{s:s,s:[],s:I}", "deployment_id", dep, "tees", "active_tees",
                              (json_int_t)0);
            if (entry == NULL || json_array_append_new(deps, entry) != 0) {
                json_decref(deps);
                return NULL;
            }
        }
        (void)json_array_append_new(json_object_get(entry, "tees"), json_string(id));
        if (status != NULL && strcmp(status, "active") == 0)
            (void)json_object_set_new(
                entry, "active_tees",
                json_integer(json_integer_value(json_object_get(entry, "active_tees")) + 1));
    }
    if (deps == NULL)
        return NULL;
    json_t *out = json_pack("{s:o,s:s}", "deployments", deps, "source", "kms_registry");
    return out;
}

/* A component refused (4xx): its status and machine code, never its text. */
static void relay_refusal(relay_ctx *c, const luna_http_response *resp)
{
    json_t *j = answer_json(resp);
    const char *code = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    int status = resp->status;
    if (status != 400 && status != 401 && status != 403 && status != 404 && status != 409 &&
        status != 410 && status != 413 && status != 415 && status != 422 && status != 429)
        status = 502;
    if (code == NULL || !gw_ident_ok(code, 64))
        code = status == 502 ? "bad_gateway" : "refused";
    char msg[96];
    (void)snprintf(msg, sizeof(msg), "%s refused the request", up_name[c->rt->up]);
    gw_reply_error(c->req, status, code, msg, NULL);
    json_decref(j);
    ctx_free(c);
}

static void on_answer(const luna_http_response *resp, void *arg)
{
    relay_ctx *c = arg;
    const relay_route *rt = c->rt;
    if (c->r->closing || resp->err != LUNA_OK) {
        ctx_fail_transport(c, c->r->closing ? LUNA_ERR_UNAVAILABLE : resp->err);
        return;
    }
    if (resp->status >= 400 && resp->status < 500) {
        relay_refusal(c, resp);
        return;
    }
    if (resp->status < 200 || resp->status > 299) {
        ctx_fail(c, 502, "bad_gateway", "an internal component failed");
        return;
    }
    json_t *j = NULL, *out = NULL;
    switch (rt->ans) {
    case A_SECRET:
        if (!answer_object_text(resp))
            break;
        luna_http_reply(c->req, resp->status, RELAY_JSON, resp->body, resp->body_len);
        ctx_free(c);
        return;
    case A_TEXT:
        if (!answer_text(resp, RELAY_TEXT_MAX))
            break;
        luna_http_reply(c->req, resp->status, "text/plain; charset=utf-8", resp->body,
                        resp->body_len);
        ctx_free(c);
        return;
    case A_NDJSON:
        if (!answer_ndjson(resp, c->r->set->max_response_bytes))
            break;
        luna_http_reply(c->req, resp->status, "application/x-ndjson", resp->body,
                        resp->body_len);
        ctx_free(c);
        return;
    case A_TENANT_LIST:
        j = answer_json(resp);
        if (j != NULL && gw_ident_ok(json_string_value(json_object_get(j, "tenant_id")),
                                     GW_ID_MAX))
            out = json_pack("{s:[O]}", "tenants", j);
        break;
    case A_DEPLOYMENTS:
        j = answer_json(resp);
        out = j != NULL ? fold_deployments(j) : NULL;
        break;
    case A_JSON:
    default:
        j = answer_json(resp);
        out = j;
        j = NULL;
        break;
    }
    json_decref(j);
    if (out == NULL) {
        ctx_fail(c, 502, "bad_gateway", "an internal component answered something unexpected");
        return;
    }
    luna_http_reply_json(c->req, resp->status, out);
    json_decref(out);
    ctx_free(c);
}

/* ====================================================================== */
/* the downstream request                                                  */
/* ====================================================================== */

/* Expands the route's internal path: {0}, {t}, {p}; every value an identifier. */
static luna_err build_path(const relay_ctx *c, char *out, size_t cap)
{
    const char *t = c->rt->up_path;
    size_t off = 0;
    while (*t != '\0') {
        const char *v = NULL;
        if (t[0] == '{' && t[1] != '\0' && t[2] == '}') {
            if (t[1] == '0' && c->n_ids > 0)
                v = c->ids[0];
            else if (t[1] == 't')
                v = c->who.tenant;
            else if (t[1] == 'p')
                v = c->principal;
            LUNA_ENSURE(v != NULL && gw_ident_ok(v, GW_ID_MAX), LUNA_ERR_INTERNAL);
            size_t n = strlen(v);
            LUNA_ENSURE(n < cap - off, LUNA_ERR_TOO_LARGE);
            memcpy(out + off, v, n);
            off += n;
            t += 3;
            continue;
        }
        LUNA_ENSURE(off + 1 < cap, LUNA_ERR_TOO_LARGE);
        out[off++] = *t++;
    }
    out[off] = '\0';
    if (c->q.n > 0) {
        LUNA_ENSURE(off + 1 < cap, LUNA_ERR_TOO_LARGE);
        out[off++] = '?';
        LUNA_GUARD(gw_query_format(&c->q, out + off, cap - off));
    }
    return LUNA_OK;
}

static char *build_body(const relay_ctx *c)
{
    json_t *b = NULL;
    const char *s;
    switch (c->rt->body) {
    case B_EMPTY:
        b = json_object();
        break;
    case B_COPY:
        b = json_deep_copy(c->body);
        break;
    case B_TEE_REGISTER:
        /* The TEE serves the caller's tenant: never a tenant the client named. */
        b = json_deep_copy(c->body);
        if (b != NULL && json_object_set_new(b, "tenants", json_pack("[s]", c->who.tenant)) != 0) {
            json_decref(b);
            b = NULL;
        }
        break;
    case B_APIKEY:
        b = json_object();
        if (b != NULL && json_object_get(c->body, "expires_in_sec") != NULL)
            (void)json_object_set(b, "expires_in_sec", json_object_get(c->body, "expires_in_sec"));
        break;
    case B_CLIENT:
        s = json_string_value(json_object_get(c->body, "display_name"));
        b = json_pack("{s:s,s:s}", "principal_id",
                      json_string_value(json_object_get(c->body, "principal_id")), "kind",
                      "client");
        if (b != NULL && s != NULL)
            (void)json_object_set_new(b, "display_name", json_string(s));
        break;
    case B_NONE:
    default:
        return NULL;
    }
    char *text = b != NULL ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    return text;
}

static void fanout_next(relay_ctx *c);

/* One configured TEE's registry entry, as the KMS shows it to the caller. */
static void on_fanout(const luna_http_response *resp, void *arg)
{
    relay_ctx *c = arg;
    if (c->r->closing || resp->err != LUNA_OK) {
        ctx_fail_transport(c, c->r->closing ? LUNA_ERR_UNAVAILABLE : resp->err);
        return;
    }
    const char *want = c->r->set->tees[c->fan_pos - 1].id;
    if (resp->status == 200) {
        json_t *j = answer_json(resp);
        const char *id = json_string_value(json_object_get(j, "tee_id"));
        if (j == NULL || id == NULL || strcmp(id, want) != 0) {
            json_decref(j);
            ctx_fail(c, 502, "bad_gateway", "the KMS answered something unexpected");
            return;
        }
        if (json_array_append_new(c->fan_acc, j) != 0) {
            ctx_fail(c, 500, "internal_error", "internal error");
            return;
        }
    } else if (resp->status != 404 && resp->status != 403) {
        /* 404/403: not a TEE of this tenant; anything else is a failure. */
        relay_refusal(c, resp);
        return;
    }
    fanout_next(c);
}

static void fanout_next(relay_ctx *c)
{
    const gw_settings *set = c->r->set;
    if (c->fan_acc == NULL && (c->fan_acc = json_array()) == NULL) {
        ctx_fail(c, 500, "internal_error", "internal error");
        return;
    }
    if (c->fan_pos >= set->n_tees) {
        json_t *out = json_pack("{s:O,s:s}", "tees", c->fan_acc, "source", "gateway_tees");
        if (out == NULL) {
            ctx_fail(c, 500, "internal_error", "internal error");
            return;
        }
        luna_http_reply_json(c->req, 200, out);
        json_decref(out);
        ctx_free(c);
        return;
    }
    const char *id = set->tees[c->fan_pos++].id;
    char path[32 + GW_ID_MAX];
    (void)snprintf(path, sizeof(path), "/v1/kms/tees/%s", id);
    const luna_http_header auth = {"Authorization", c->auth};
    luna_err err = luna_http_client_request_with(c->r->up[UP_KMS], "GET", path, NULL, NULL, 0,
                                                 luna_http_request_id(c->req), &auth, 1,
                                                 on_fanout, c);
    if (err != LUNA_OK)
        ctx_fail_transport(c, err);
}

static void relay_send(relay_ctx *c)
{
    const relay_route *rt = c->rt;
    if (c->fanout) {
        fanout_next(c);
        return;
    }
    luna_http_client *up = c->r->up[rt->up];
    if (up == NULL) {
        ctx_fail(c, 404, "witness_not_configured", "this gateway has no audit witness peer");
        return;
    }
    char path[RELAY_UP_PATH_MAX];
    if (build_path(c, path, sizeof(path)) != LUNA_OK) {
        ctx_fail(c, 500, "internal_error", "internal error");
        return;
    }
    char *text = NULL;
    if (rt->body != B_NONE && (text = build_body(c)) == NULL) {
        ctx_fail(c, 500, "internal_error", "internal error");
        return;
    }
    const luna_http_header auth = {"Authorization", c->auth};
    luna_err err = luna_http_client_request_with(
        up, rt->up_method, path, text != NULL ? RELAY_JSON : NULL, text,
        text != NULL ? strlen(text) : 0, luna_http_request_id(c->req), c->auth != NULL ? &auth : NULL,
        c->auth != NULL ? 1 : 0, on_answer, c);
    free(text);
    if (err != LUNA_OK)
        ctx_fail_transport(c, err);
}

/* ====================================================================== */
/* IAM's decision                                                          */
/* ====================================================================== */

static void authorize(relay_ctx *c, const char *action);
static bool downstream_token(relay_ctx *c);

static void on_authorize(const luna_http_response *resp, void *arg)
{
    relay_ctx *c = arg;
    if (c->r->closing || resp->err != LUNA_OK) {
        ctx_fail_transport(c, c->r->closing ? LUNA_ERR_UNAVAILABLE : resp->err);
        return;
    }
    json_t *j = resp->status == 200 ? answer_json(resp) : NULL;
    json_t *allowed = json_object_get(j, "allowed");
    bool yes = json_is_true(allowed), well_formed = json_is_boolean(allowed);
    json_decref(j);
    if (!well_formed) {
        ctx_fail(c, 503, "upstream_unavailable", "IAM could not decide");
        return;
    }
    if (yes) {
        if (!downstream_token(c)) {
            ctx_free(c);
            return;
        }
        relay_send(c);
        return;
    }
    if (c->rt->alt_perm != NULL && !c->alt_tried) {
        c->alt_tried = true;
        authorize(c, c->rt->alt_perm);
        return;
    }
    if ((c->rt->flags & R_TEES_FANOUT) != 0 && !c->fanout_tried) {
        c->fanout_tried = true;
        c->fanout = true; /* what the relay does if IAM says yes to this one */
        authorize(c, FANOUT_PERM);
        return;
    }
    ctx_fail(c, 403, "permission_denied", "the principal may not do this");
}

/* The gateway's IAM authorization step (POST /v1/iam/authorize, as gw_service.c). */
static void authorize(relay_ctx *c, const char *action)
{
    json_t *b = json_pack("{s:s,s:s,s:s}", "tenant_id", c->who.tenant, "principal_id",
                          c->who.principal, "action", action);
    if (b != NULL && c->n_ids > 0)
        (void)json_object_set_new(b, "resource", json_string(c->ids[0]));
    char *text = b != NULL ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    if (text == NULL) {
        ctx_fail(c, 500, "internal_error", "internal error");
        return;
    }
    luna_err err = luna_http_client_request(c->r->up[UP_IAM], "POST", "/v1/iam/authorize",
                                            RELAY_JSON, text, strlen(text),
                                            luna_http_request_id(c->req), on_authorize, c);
    free(text);
    if (err != LUNA_OK)
        ctx_fail_transport(c, err);
}

/* ====================================================================== */
/* the downstream token                                                    */
/* ====================================================================== */

/*
 * The value gw_forward_authorization picked, checked here as the
 * downstream will: IAM's signature and issuer, the downstream's audience,
 * and the same tenant and principal as the gateway token - so a client
 * cannot pair its own gateway token with someone else's downstream token.
 * Replies and returns false on refusal.
 */
static bool downstream_token(relay_ctx *c)
{
    const char *aud = up_audience[c->rt->up];
    c->auth = gw_forward_authorization(c->req);
    if (c->auth == NULL || aud == NULL) {
        if ((c->rt->flags & R_TOKEN) == 0) {
            c->auth = NULL; /* the downstream checks no token on this route */
            return true;
        }
        gw_reply_error(c->req, 401, "missing_downstream_token",
                    "this route needs the downstream service's token in " LUNA_DOWNSTREAM_AUTH_HEADER,
                    NULL);
        return false;
    }
    luna_err err = gw_downstream_verify(c->r->g, c->auth, aud, &c->who);
    if (err == LUNA_ERR_UNAVAILABLE) {
        gw_reply_error(c->req, 503, "not_ready", "token keys not loaded yet", NULL);
        return false;
    }
    if (err == LUNA_ERR_FORMAT) {
        gw_reply_error(c->req, 401, "invalid_downstream_token", "the downstream token is not valid",
                    NULL);
        return false;
    }
    if (err != LUNA_OK) {
        gw_reply_error(c->req, 401,
                    err == LUNA_ERR_EXPIRED ? "downstream_token_expired"
                                            : "invalid_downstream_token",
                    "the downstream token is not valid for this route and caller", NULL);
        return false;
    }
    return true;
}

/* ====================================================================== */
/* the handler                                                             */
/* ====================================================================== */

static unsigned method_bit(const char *m)
{
    if (m != NULL && strcmp(m, "GET") == 0)
        return LUNA_HTTP_GET;
    if (m != NULL && strcmp(m, "POST") == 0)
        return LUNA_HTTP_POST;
    return 0;
}

static bool apikey_id_ok(const char *s)
{
    if (strlen(s) != 16)
        return false;
    for (size_t i = 0; i < 16; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* Everything checkable before credentials; replies and returns false on a refusal. */
static bool validate(relay_ctx *c)
{
    luna_http_request *req = c->req;
    const char *path = luna_http_request_path(req);
    const char *rid = luna_http_request_header(req, LUNA_HTTP_REQUEST_ID_HEADER);
    if (rid != NULL && !gw_ident_ok(rid, LUNA_HTTP_REQUEST_ID_MAX)) {
        gw_reply_error(req, 400, "invalid_request_id",
                    "X-Request-Id must be 1..64 characters of [A-Za-z0-9._-]", NULL);
        return false;
    }
    luna_err err = gw_relay_path_clean(path);
    if (err != LUNA_OK) {
        gw_reply_error(req, 400, err == LUNA_ERR_TOO_LARGE ? "path_too_long" : "invalid_path",
                    "path segments are 1..64 characters of [A-Za-z0-9._-], no '.' or '..', "
                    "no percent-encoding",
                    NULL);
        return false;
    }
    unsigned m = method_bit(luna_http_request_method(req));
    bool path_known = false;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]) && c->rt == NULL; i++) {
        if (gw_relay_path_match(routes[i].pattern, path, c->ids, &c->n_ids) != LUNA_OK)
            continue;
        path_known = true;
        if (routes[i].method == m)
            c->rt = &routes[i];
    }
    if (c->rt == NULL) {
        gw_reply_error(req, path_known ? 405 : 404, path_known ? "method_not_allowed" : "not_found",
                    path_known ? "this route does not take that method" : "no such route", NULL);
        return false;
    }
    const relay_route *rt = c->rt;
    if ((rt->flags & R_ID_APIKEY) != 0 && !apikey_id_ok(c->ids[0])) {
        gw_reply_error(req, 400, "invalid_path", "an API key id is 16 lowercase hex characters",
                    NULL);
        return false;
    }
    err = gw_query_parse(luna_http_request_query(req), rt->query, rt->n_query, &c->q);
    if (err != LUNA_OK) {
        gw_reply_error(req, 400,
                    err == LUNA_ERR_NOT_FOUND    ? "unknown_query_parameter"
                    : err == LUNA_ERR_TOO_LARGE ? "query_too_long"
                                                : "invalid_query",
                    "only the route's documented parameters, once each, with plain values",
                    NULL);
        return false;
    }
    const uint8_t *data;
    size_t len;
    if (luna_http_request_body(req, &data, &len) != LUNA_OK) {
        gw_reply_error(req, 413, "too_large", "request body too large", NULL);
        return false;
    }
    if (rt->schema == NULL) {
        if (len != 0) {
            gw_reply_error(req, 400, "unexpected_body", "this route takes no body", NULL);
            return false;
        }
        return true;
    }
    if (len == 0) { /* a POST with nothing to say: the empty object */
        data = (const uint8_t *)"{}";
        len = 2;
    }
    luna_json_limits lim = {.max_bytes = GW_JSON_MAX_BYTES, .max_depth = GW_JSON_MAX_DEPTH};
    luna_json_error je;
    err = luna_json_parse((const char *)data, len, rt->schema, &lim, &c->body, &je);
    if (err != LUNA_OK) {
        gw_reply_error(req, err == LUNA_ERR_TOO_LARGE ? 413 : 400,
                    err == LUNA_ERR_TOO_LARGE ? "too_large" : "invalid_request", je.message,
                    je.path);
        return false;
    }
    return true;
}

static void handle_relay(luna_http_request *req, void *arg)
{
    gw_relay *r = arg;
    relay_ctx *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        return;
    }
    c->r = r;
    c->req = req;
    if (!validate(c) || !gw_service_admit(r->g, req, &c->who)) {
        ctx_free(c);
        return;
    }
    const relay_route *rt = c->rt;
    if (rt->up == UP_NONE) {
        /* No route of the table is answered by the gateway itself today. */
        ctx_fail(c, 501, "not_implemented", "this route is not relayed");
        return;
    }
    /* A principal named as the *target* of an IAM route stays inside the
       caller's tenant (the tenant in the path is the token's). */
    const char *target = gw_query_get(&c->q, "principal");
    if (target == NULL)
        target = json_string_value(json_object_get(c->body, "principal"));
    if (target == NULL)
        target = c->who.principal;
    memcpy(c->principal, target, strlen(target) + 1);
    const char *qt = gw_query_get(&c->q, "tenant");
    if ((rt->flags & R_TENANT_QUERY) != 0 && qt != NULL && strcmp(qt, c->who.tenant) != 0) {
        ctx_fail(c, 403, "cross_tenant", "a caller reads its own tenant only");
        return;
    }
    authorize(c, rt->perm);
}

/* ====================================================================== */
/* lifecycle                                                               */
/* ====================================================================== */

static luna_err make_client(struct event_base *base, const gw_settings *set,
                            const gw_endpoint *ep, const char *identity, luna_http_client **out)
{
    luna_http_client_opts o;
    memset(&o, 0, sizeof(o));
    o.tls = set->tls;
    o.host = ep->host;
    o.port = ep->port;
    o.expected_identity = identity;
    o.timeout_sec = set->upstream_timeout_sec;
    o.max_response = set->max_response_bytes;
    if (ep->host[0] == '\0' || ep->port == 0)
        return LUNA_ERR_CONFIG;
    return luna_http_client_new(base, &o, out);
}

luna_err gw_relay_new(struct event_base *base, const gw_settings *set, gw_service *g,
                      gw_relay **out)
{
    luna_err err;
    if (out == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    if (base == NULL || set == NULL || g == NULL)
        return LUNA_ERR_INVALID_ARG;
    gw_relay *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return LUNA_ERR_NOMEM;
    r->g = g;
    r->set = set;
    LUNA_TRY(make_client(base, set, &set->iam, "lunal://svc/iam", &r->up[UP_IAM]), fail);
    LUNA_TRY(make_client(base, set, &set->kms, "lunal://svc/kms", &r->up[UP_KMS]), fail);
    LUNA_TRY(make_client(base, set, &set->attestation, "lunal://svc/attestation", &r->up[UP_ATT]),
             fail);
    LUNA_TRY(make_client(base, set, &set->audit, "lunal://svc/audit", &r->up[UP_AUDIT]), fail);
    if (set->witness.host[0] != '\0' || set->witness.port != 0)
        LUNA_TRY(make_client(base, set, &set->witness, "lunal://svc/witness", &r->up[UP_WITNESS]),
                 fail);
    *out = r;
    return LUNA_OK;
fail:
    gw_relay_free(r);
    return err;
}

luna_err gw_relay_routes(gw_relay *r, luna_http_server *srv)
{
    if (r == NULL || srv == NULL)
        return LUNA_ERR_INVALID_ARG;
    for (size_t i = 0; i < sizeof(registrations) / sizeof(registrations[0]); i++) {
        const luna_http_route route = {registrations[i].methods, registrations[i].path, NULL, 0,
                                       RELAY_JSON, handle_relay, r};
        LUNA_GUARD(luna_http_server_add_route(srv, &route));
    }
    return LUNA_OK;
}

void gw_relay_free(gw_relay *r)
{
    if (r == NULL)
        return;
    r->closing = true;
    /* Each free answers its pending calls (UNAVAILABLE): contexts reply 503. */
    for (size_t i = 0; i < UP__COUNT; i++)
        luna_http_client_free(r->up[i]);
    free(r);
}
