/*
 * iam_service.c - the IAM HTTP API: authenticate (API key or anonymous ->
 * signed token), authorize (may P do A on R in T), the published key set,
 * and the admin API for tenants, principals, roles, API keys and client
 * keys, each call authorized by an admin token.
 *
 * Every request body goes through luna_json_parse with a schema; every
 * decision is a positive grant from the role table or a refusal; the
 * tenant of an admin call comes from the verified token and is the one
 * bound in every statement (a path naming another tenant is refused before
 * any query).
 *
 * Must never: log or echo an API key, token, seed or client private key;
 * answer differently for an unknown key id and a wrong secret; trust a
 * tenant or principal named anywhere but in a verified token or an
 * authenticated key.
 */
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "iam.h"
#include "luna/audience.h"
#include "luna/bytes.h"
#include "luna/http.h"
#include "luna/json.h"
#include "luna/log.h"

#define COMPONENT "iam"
#define MAX_ROLE_ROWS 16u
#define LIST_MAX 1000 /* rows one list call returns */

struct iam_service {
    struct event_base *base;
    luna_store *db;
    luna_secret *master;
    luna_secret *pepper;
    iam_keyring ring;
    iam_settings set;
    struct event *refresh_ev;
};

static int64_t now_sec(void)
{
    return (int64_t)time(NULL);
}

/* ====================================================================== */
/* replies                                                                 */
/* ====================================================================== */

static void reply_json_error(luna_http_request *req, int status, const char *code,
                             const char *message, const char *field)
{
    json_t *b = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
    if (b != NULL && field != NULL && field[0] != '\0')
        (void)json_object_set_new(json_object_get(b, "error"), "field", json_string(field));
    if (b == NULL) {
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        return;
    }
    luna_http_reply_json(req, status, b);
    json_decref(b);
}

/* Wipes a secret string member of obj in place before the tree is freed. */
static void wipe_member(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_string(v))
        luna_wipe((void *)(uintptr_t)json_string_value(v), json_string_length(v));
}

/*
 * Parses the body against schema; on failure replies (400 with the field,
 * 413 when too large) and returns false.  An empty body is read as {}.
 */
static bool parse_body(luna_http_request *req, const luna_json_schema *schema, json_t **out)
{
    const uint8_t *body = NULL;
    size_t len = 0;
    *out = NULL;
    if (luna_http_request_body(req, &body, &len) != LUNA_OK) {
        luna_http_reply_err(req, LUNA_ERR_TOO_LARGE);
        return false;
    }
    if (len == 0) {
        body = (const uint8_t *)"{}";
        len = 2;
    }
    luna_json_error je;
    luna_err err = luna_json_parse((const char *)body, len, schema, NULL, out, &je);
    if (err == LUNA_OK)
        return true;
    if (err == LUNA_ERR_TOO_LARGE)
        reply_json_error(req, 413, "too_large", je.message, je.path);
    else if (err == LUNA_ERR_NOMEM)
        luna_http_reply_err(req, err);
    else
        reply_json_error(req, 400, "invalid_request", je.message, je.path);
    return false;
}

static const char *jstr(const json_t *o, const char *name)
{
    const char *s = NULL;
    size_t n = 0;
    if (luna_json_get_string(o, name, &s, &n) != LUNA_OK)
        return NULL;
    return s;
}

/* ====================================================================== */
/* store reads                                                             */
/* ====================================================================== */

typedef struct principal_info {
    bool found;
    bool disabled;
    char kind[16];
    char display[IAM_DISPLAY_NAME_MAX + 1];
    int64_t created_at;
    iam_roles roles;
} principal_info;

static luna_err load_roles(luna_store *db, const char *tenant, const char *principal,
                           iam_roles *out)
{
    luna_store_rows *rows = NULL;
    luna_err err;
    *out = 0;
    const luna_store_param p[] = {luna_store_p_text(tenant), luna_store_p_text(principal)};
    LUNA_TRY(luna_store_query(db,
                              "SELECT role FROM iam_roles WHERE tenant_id = ?1 AND "
                              "principal_id = ?2 ORDER BY role",
                              p, 2, &rows),
             done);
    for (size_t i = 0;; i++) {
        bool has = false;
        LUNA_TRY(luna_store_rows_next(rows, &has), done);
        if (!has)
            break;
        LUNA_TRY_ENSURE(i < MAX_ROLE_ROWS, LUNA_ERR_TOO_LARGE, done);
        const char *name;
        size_t n;
        iam_role r;
        LUNA_TRY(luna_store_col_text(rows, 0, &name, &n), done);
        if (iam_role_from_name(name, &r)) /* an unknown stored name grants nothing */
            *out |= 1u << r;
    }
done:
    luna_store_rows_free(rows);
    return err;
}

static luna_err load_principal(luna_store *db, const char *tenant, const char *principal,
                               principal_info *out)
{
    luna_store_rows *rows = NULL;
    luna_err err;
    memset(out, 0, sizeof(*out));
    const luna_store_param p[] = {luna_store_p_text(tenant), luna_store_p_text(principal)};
    LUNA_TRY(luna_store_query(db,
                              "SELECT kind, display_name, created_at, disabled_at FROM "
                              "iam_principals WHERE tenant_id = ?1 AND principal_id = ?2",
                              p, 2, &rows),
             done);
    bool has = false;
    LUNA_TRY(luna_store_rows_next(rows, &has), done);
    if (!has)
        goto done;
    const char *s;
    size_t n;
    bool null = true;
    LUNA_TRY(luna_store_col_text(rows, 0, &s, &n), done);
    LUNA_TRY_ENSURE(n < sizeof(out->kind), LUNA_ERR_FORMAT, done);
    memcpy(out->kind, s, n + 1);
    LUNA_TRY(luna_store_col_text(rows, 1, &s, &n), done);
    LUNA_TRY_ENSURE(n < sizeof(out->display), LUNA_ERR_FORMAT, done);
    memcpy(out->display, s, n + 1);
    LUNA_TRY(luna_store_col_int64(rows, 2, &out->created_at), done);
    LUNA_TRY(luna_store_col_is_null(rows, 3, &null), done);
    out->disabled = !null;
    luna_store_rows_free(rows);
    rows = NULL;
    LUNA_TRY(load_roles(db, tenant, principal, &out->roles), done);
    out->found = true;
done:
    luna_store_rows_free(rows);
    return err;
}

typedef struct tenant_info {
    bool found;
    bool anonymous;
    char display[IAM_DISPLAY_NAME_MAX + 1];
    json_t *jobs; /* owned array of job names */
} tenant_info;

static luna_err load_tenant(luna_store *db, const char *tenant, tenant_info *out)
{
    luna_store_rows *rows = NULL;
    luna_err err;
    memset(out, 0, sizeof(*out));
    const luna_store_param p[] = {luna_store_p_text(tenant)};
    LUNA_TRY(luna_store_query(db,
                              "SELECT display_name, anonymous_allowed FROM iam_tenants "
                              "WHERE tenant_id = ?1",
                              p, 1, &rows),
             done);
    bool has = false;
    LUNA_TRY(luna_store_rows_next(rows, &has), done);
    if (!has)
        goto done;
    const char *s;
    size_t n;
    int64_t anon = 0;
    LUNA_TRY(luna_store_col_text(rows, 0, &s, &n), done);
    LUNA_TRY_ENSURE(n < sizeof(out->display), LUNA_ERR_FORMAT, done);
    memcpy(out->display, s, n + 1);
    LUNA_TRY(luna_store_col_int64(rows, 1, &anon), done);
    out->anonymous = anon == 1;
    luna_store_rows_free(rows);
    rows = NULL;
    out->jobs = json_array();
    LUNA_TRY_ENSURE(out->jobs != NULL, LUNA_ERR_NOMEM, done);
    LUNA_TRY(luna_store_query(db,
                              "SELECT job FROM iam_anonymous_jobs WHERE tenant_id = ?1 "
                              "ORDER BY job",
                              p, 1, &rows),
             done);
    for (size_t i = 0;; i++) {
        LUNA_TRY(luna_store_rows_next(rows, &has), done);
        if (!has)
            break;
        LUNA_TRY_ENSURE(i < IAM_MAX_ANON_JOBS, LUNA_ERR_TOO_LARGE, done);
        LUNA_TRY(luna_store_col_text(rows, 0, &s, &n), done);
        LUNA_TRY_ENSURE(json_array_append_new(out->jobs, json_string(s)) == 0, LUNA_ERR_NOMEM,
                        done);
    }
    out->found = true;
done:
    luna_store_rows_free(rows);
    if (err != LUNA_OK || !out->found) {
        json_decref(out->jobs);
        out->jobs = NULL;
    }
    return err;
}

static bool jobs_contain(const json_t *jobs, const char *job)
{
    size_t i;
    const json_t *v;
    json_array_foreach(jobs, i, v)
    {
        const char *s = json_string_value(v);
        if (s != NULL && (strcmp(s, "*") == 0 || (job != NULL && strcmp(s, job) == 0)))
            return true;
    }
    return false;
}

static json_t *roles_json(iam_roles roles)
{
    json_t *a = json_array();
    for (unsigned r = 0; a != NULL && r < IAM_ROLE__COUNT; r++) {
        if ((roles & (1u << r)) != 0 &&
            json_array_append_new(a, json_string(iam_role_name((iam_role)r))) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* ====================================================================== */
/* tokens                                                                  */
/* ====================================================================== */

/*
 * Which downstream tokens a principal gets (docs/iam.md "Token audiences"):
 * a service's token only when some role of the principal holds a
 * permission that service serves.  Anonymous callers run jobs only: they
 * get the KMS (one-time keys, TEE lookup) and the attestation service.
 */
static const struct {
    const char *name;
    iam_perm perms[6];
    size_t n;
} downstream_table[] = {
    /* The KMS also answers GET /v1/deployments (its registry). */
    {"kms",
     {IAM_PERM_JOBS_RUN, IAM_PERM_KEYS_READ, IAM_PERM_KEYS_MANAGE, IAM_PERM_TEES_READ,
      IAM_PERM_TEES_MANAGE, IAM_PERM_DEPLOYMENTS_READ},
     6},
    {"attestation",
     {IAM_PERM_ATTESTATION_READ, IAM_PERM_ATTESTATION_VERIFY, IAM_PERM_TEES_MANAGE,
      IAM_PERM_DEPLOYMENTS_REGISTER},
     4},
    {"audit", {IAM_PERM_AUDIT_READ}, 1},
    {"iam", {IAM_PERM_IAM_READ, IAM_PERM_IAM_ADMIN, IAM_PERM_PLATFORM_ADMIN}, 3},
};

static bool downstream_wanted(size_t i, iam_roles roles, bool anonymous)
{
    if (anonymous)
        return strcmp(downstream_table[i].name, "kms") == 0 ||
               strcmp(downstream_table[i].name, "attestation") == 0;
    for (size_t k = 0; k < downstream_table[i].n; k++)
        if (iam_roles_allow(roles, downstream_table[i].perms[k]))
            return true;
    return false;
}

/* Wipes every string member of obj (NULL: nothing). */
static void wipe_strings(json_t *obj)
{
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v)
    {
        if (json_is_string(v))
            luna_wipe((void *)(uintptr_t)json_string_value(v), json_string_length(v));
    }
}

/* Frees a token text after wiping it. */
static void token_free(char *token)
{
    if (token != NULL) {
        luna_wipe(token, strlen(token));
        free(token);
    }
}

/*
 * Signs claims for one audience with a fresh jti.  claims is the shared
 * body; its "aud" and "jti" are replaced here, so every token names
 * exactly one audience and no two tokens share an id.
 */
static luna_err mint_for(const iam_signkey *k, json_t *claims, const char *aud, char **token,
                         size_t *token_len)
{
    uint8_t jti_raw[16];
    char jti[LUNA_B64URL_ENC_LEN(16)];
    LUNA_GUARD(luna_random(jti_raw, sizeof(jti_raw)));
    LUNA_GUARD(luna_b64url_encode(jti_raw, sizeof(jti_raw), jti, sizeof(jti)));
    LUNA_ENSURE(json_object_set_new(claims, "aud", json_string(aud)) == 0 &&
                    json_object_set_new(claims, "jti", json_string(jti)) == 0,
                LUNA_ERR_NOMEM);
    return luna_jws_sign(k->signer, claims, token, token_len);
}

/*
 * Fills resp with the gateway token ("token") and, in "downstream", one
 * token per service the principal may use, each bound to that service's
 * audience alone.  All share iat and exp.  roles is 0 for anonymous.
 */
static luna_err issue_token(iam_service *s, const char *tenant, const char *principal,
                            const char *kind, iam_roles roles, const char *api_key_id,
                            const json_t *jobs, json_t *resp)
{
    int64_t now = now_sec();
    const iam_signkey *k = iam_keyring_current(&s->ring, now);
    if (k == NULL)
        return LUNA_ERR_UNAVAILABLE;
    char sub[2 * IAM_ID_BUF];
    char *token = NULL;
    json_t *claims = NULL, *down = NULL;
    luna_err err;
    bool anonymous = api_key_id == NULL;
    (void)snprintf(sub, sizeof(sub), "%s/%s", tenant, principal);
    int64_t exp = now + s->set.token_ttl;
    claims = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:I,s:I,s:I}", "iss", s->set.issuer, "sub",
                       sub, "tenant", tenant, "principal", principal, "kind", kind, "roles",
                       roles_json(roles), "auth", anonymous ? "anonymous" : "api_key", "iat",
                       (json_int_t)now, "nbf", (json_int_t)now, "exp", (json_int_t)exp);
    LUNA_TRY_ENSURE(claims != NULL, LUNA_ERR_NOMEM, done);
    if (api_key_id != NULL)
        LUNA_TRY_ENSURE(json_object_set_new(claims, "api_key_id", json_string(api_key_id)) == 0,
                        LUNA_ERR_NOMEM, done);
    if (jobs != NULL)
        LUNA_TRY_ENSURE(json_object_set_new(claims, "jobs", json_deep_copy(jobs)) == 0,
                        LUNA_ERR_NOMEM, done);
    down = json_object();
    LUNA_TRY_ENSURE(down != NULL, LUNA_ERR_NOMEM, done);
    for (size_t i = 0; i < sizeof(downstream_table) / sizeof(downstream_table[0]); i++) {
        if (!downstream_wanted(i, roles, anonymous))
            continue;
        size_t n = 0;
        LUNA_TRY(mint_for(k, claims, luna_aud_of(downstream_table[i].name), &token, &n), done);
        LUNA_TRY_ENSURE(json_object_set_new(down, downstream_table[i].name,
                                            json_stringn(token, n)) == 0,
                        LUNA_ERR_NOMEM, done);
        token_free(token);
        token = NULL;
    }
    size_t token_len = 0;
    /* The token the client shows the gateway: good at the gateway only. */
    LUNA_TRY(mint_for(k, claims, LUNA_AUD_GATEWAY, &token, &token_len), done);
    LUNA_TRY_ENSURE(json_object_set_new(resp, "token", json_stringn(token, token_len)) == 0 &&
                        json_object_set_new(resp, "token_type", json_string("Bearer")) == 0 &&
                        json_object_set_new(resp, "expires_at", json_integer(exp)) == 0 &&
                        json_object_set_new(resp, "expires_in",
                                            json_integer(s->set.token_ttl)) == 0 &&
                        json_object_set_new(resp, "kid", json_string(k->kid)) == 0 &&
                        json_object_set_new(resp, "tenant_id", json_string(tenant)) == 0 &&
                        json_object_set_new(resp, "principal_id", json_string(principal)) ==
                            0 &&
                        json_object_set_new(resp, "roles", roles_json(roles)) == 0 &&
                        json_object_set(resp, "downstream", down) == 0,
                    LUNA_ERR_NOMEM, done);
done:
    if (err != LUNA_OK)
        wipe_strings(down);
    json_decref(claims);
    json_decref(down);
    token_free(token);
    return err;
}

/* Wipes the token texts of an answer before it is freed. */
static void wipe_tokens(json_t *resp)
{
    wipe_member(resp, "token");
    wipe_strings(json_object_get(resp, "downstream"));
}

/* ====================================================================== */
/* POST /v1/iam/authenticate                                               */
/* ====================================================================== */

static const luna_json_field authn_fields[] = {
    {.name = "tenant_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = IAM_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "api_key", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = 256,
     .pattern = LUNA_JSON_PAT_PRINTABLE},
};
static const luna_json_schema authn_schema = {authn_fields, 2, NULL};

typedef struct key_row {
    bool found;
    char principal[IAM_ID_BUF];
    uint8_t salt[IAM_APIKEY_SALT_LEN];
    uint8_t hash[IAM_APIKEY_HASH_LEN];
    int64_t expires_at;
    bool revoked;
} key_row;

static luna_err load_key(luna_store *db, const char *tenant, const char *key_id, key_row *out)
{
    luna_store_rows *rows = NULL;
    luna_err err;
    memset(out, 0, sizeof(*out));
    const luna_store_param p[] = {luna_store_p_text(tenant), luna_store_p_text(key_id)};
    LUNA_TRY(luna_store_query(db,
                              "SELECT principal_id, salt, hash, expires_at, revoked_at FROM "
                              "iam_api_keys WHERE tenant_id = ?1 AND key_id = ?2",
                              p, 2, &rows),
             done);
    bool has = false;
    LUNA_TRY(luna_store_rows_next(rows, &has), done);
    if (!has)
        goto done;
    const char *s;
    const uint8_t *b;
    size_t n;
    bool null = true;
    LUNA_TRY(luna_store_col_text(rows, 0, &s, &n), done);
    LUNA_TRY_ENSURE(n <= IAM_ID_MAX, LUNA_ERR_FORMAT, done);
    memcpy(out->principal, s, n + 1);
    LUNA_TRY(luna_store_col_blob(rows, 1, &b, &n), done);
    LUNA_TRY_ENSURE(n == IAM_APIKEY_SALT_LEN, LUNA_ERR_FORMAT, done);
    memcpy(out->salt, b, n);
    LUNA_TRY(luna_store_col_blob(rows, 2, &b, &n), done);
    LUNA_TRY_ENSURE(n == IAM_APIKEY_HASH_LEN, LUNA_ERR_FORMAT, done);
    memcpy(out->hash, b, n);
    LUNA_TRY(luna_store_col_int64(rows, 3, &out->expires_at), done);
    LUNA_TRY(luna_store_col_is_null(rows, 4, &null), done);
    out->revoked = !null;
    out->found = true;
done:
    luna_store_rows_free(rows);
    return err;
}

/*
 * Checks a presented key for tenant.  Replies and returns false on any
 * failure.  The secret is checked first and an unknown key id costs the
 * same HMAC, so revoked/expired are only told to a caller who holds the
 * key.
 */
static bool check_api_key(iam_service *s, luna_http_request *req, const char *tenant,
                          const char *key, size_t key_len, char key_id[IAM_APIKEY_ID_BUF],
                          key_row *row)
{
    const char *secret = NULL;
    if (iam_apikey_parse(key, key_len, key_id, &secret) != LUNA_OK) {
        reply_json_error(req, 401, "invalid_api_key", "the API key is not valid", NULL);
        return false;
    }
    luna_err err = load_key(s->db, tenant, key_id, row);
    if (err != LUNA_OK) {
        luna_http_reply_err(req, err == LUNA_ERR_UNAVAILABLE ? err : LUNA_ERR_STORAGE);
        return false;
    }
    /* An unknown id runs the same HMAC over a zero salt and hash. */
    luna_err chk = iam_apikey_check(luna_secret_cdata(s->pepper), row->salt, key_id, secret,
                                    row->hash);
    if (!row->found || chk != LUNA_OK) {
        reply_json_error(req, 401, "invalid_api_key", "the API key is not valid", NULL);
        return false;
    }
    if (row->revoked) {
        reply_json_error(req, 401, "api_key_revoked", "the API key was revoked", NULL);
        return false;
    }
    if (now_sec() >= row->expires_at) {
        reply_json_error(req, 401, "api_key_expired", "the API key has expired", NULL);
        return false;
    }
    return true;
}

static void handle_authenticate(luna_http_request *req, void *arg)
{
    iam_service *s = arg;
    json_t *body = NULL, *resp = NULL;
    tenant_info t = {0};
    if (!parse_body(req, &authn_schema, &body))
        return;
    const char *tenant = jstr(body, "tenant_id");
    const char *key = NULL;
    size_t key_len = 0;
    bool with_key = luna_json_get_string(body, "api_key", &key, &key_len) == LUNA_OK;
    if (!iam_id_valid(tenant)) {
        reply_json_error(req, 400, "invalid_request", "tenant_id: not a tenant id", "tenant_id");
        goto done;
    }
    resp = json_object();
    if (resp == NULL) {
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        goto done;
    }
    luna_err err;
    if (!with_key) {
        err = load_tenant(s->db, tenant, &t);
        if (err != LUNA_OK) {
            luna_http_reply_err(req, LUNA_ERR_STORAGE);
            goto done;
        }
        /* An unknown tenant and a closed one look the same. */
        if (!t.found || !t.anonymous) {
            reply_json_error(req, 401, "anonymous_not_allowed",
                             "this tenant does not accept anonymous requests", NULL);
            goto done;
        }
        err = issue_token(s, tenant, IAM_ANONYMOUS, "anonymous", 0, NULL, t.jobs, resp);
    } else {
        char key_id[IAM_APIKEY_ID_BUF];
        key_row row;
        principal_info p;
        bool ok = check_api_key(s, req, tenant, key, key_len, key_id, &row);
        luna_wipe(&row.hash, sizeof(row.hash));
        if (!ok)
            goto done;
        err = load_principal(s->db, tenant, row.principal, &p);
        if (err != LUNA_OK) {
            luna_http_reply_err(req, LUNA_ERR_STORAGE);
            goto done;
        }
        if (!p.found || p.disabled) {
            reply_json_error(req, 401, "principal_disabled", "the principal is disabled", NULL);
            goto done;
        }
        const luna_store_param up[] = {luna_store_p_int64(now_sec()), luna_store_p_text(tenant),
                                       luna_store_p_text(key_id)};
        err = luna_store_exec(s->db,
                              "UPDATE iam_api_keys SET last_used_at = ?1 WHERE tenant_id = ?2 "
                              "AND key_id = ?3",
                              up, 3, NULL);
        if (err != LUNA_OK) {
            luna_http_reply_err(req, LUNA_ERR_STORAGE);
            goto done;
        }
        err = issue_token(s, tenant, row.principal, p.kind, p.roles, key_id, NULL, resp);
    }
    if (err != LUNA_OK) {
        luna_http_reply_err(req, err);
        goto done;
    }
    luna_http_reply_json(req, 200, resp);
done:
    wipe_tokens(resp);
    json_decref(t.jobs);
    json_decref(resp);
    json_decref(body);
}

/* ====================================================================== */
/* POST /v1/iam/authorize                                                  */
/* ====================================================================== */

static const luna_json_field authz_fields[] = {
    {.name = "tenant_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = IAM_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "principal_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = IAM_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "action", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = 64, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "resource", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = 256,
     .pattern = LUNA_JSON_PAT_PRINTABLE},
};
static const luna_json_schema authz_schema = {authz_fields, 4, NULL};

static void reply_decision(luna_http_request *req, bool allowed, const char *reason)
{
    json_t *b = json_pack("{s:b,s:s}", "allowed", allowed, "reason", reason);
    if (b == NULL) {
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        return;
    }
    luna_http_reply_json(req, 200, b);
    json_decref(b);
}

static void handle_authorize(luna_http_request *req, void *arg)
{
    iam_service *s = arg;
    json_t *body = NULL;
    tenant_info t = {0};
    if (!parse_body(req, &authz_schema, &body))
        return;
    const char *tenant = jstr(body, "tenant_id");
    const char *principal = jstr(body, "principal_id");
    const char *action = jstr(body, "action");
    const char *resource = jstr(body, "resource");
    iam_perm perm;
    if (!iam_id_valid(tenant) || !iam_id_valid(principal)) {
        reply_json_error(req, 400, "invalid_request", "not a tenant or principal id", NULL);
        goto done;
    }
    if (!iam_perm_from_name(action, &perm)) {
        reply_json_error(req, 400, "unknown_action", "action: not a known permission", "action");
        goto done;
    }
    if (strcmp(principal, IAM_ANONYMOUS) == 0) {
        if (load_tenant(s->db, tenant, &t) != LUNA_OK) {
            luna_http_reply_err(req, LUNA_ERR_STORAGE);
            goto done;
        }
        if (!t.found || !t.anonymous)
            reply_decision(req, false, "anonymous_not_allowed");
        else if (perm != IAM_PERM_JOBS_RUN)
            reply_decision(req, false, "no_permission");
        else if (resource == NULL || !jobs_contain(t.jobs, resource))
            reply_decision(req, false, "job_not_allowed");
        else
            reply_decision(req, true, "anonymous_policy");
        goto done;
    }
    principal_info p;
    if (load_principal(s->db, tenant, principal, &p) != LUNA_OK) {
        luna_http_reply_err(req, LUNA_ERR_STORAGE);
        goto done;
    }
    if (!p.found)
        reply_decision(req, false, "unknown_principal");
    else if (p.disabled)
        reply_decision(req, false, "principal_disabled");
    else if (!iam_roles_allow(p.roles, perm))
        reply_decision(req, false, "no_permission");
    else
        reply_decision(req, true, "role");
done:
    json_decref(t.jobs);
    json_decref(body);
}

/* ====================================================================== */
/* GET /v1/iam/jwks                                                        */
/* ====================================================================== */

static void handle_jwks(luna_http_request *req, void *arg)
{
    iam_service *s = arg;
    char *doc = NULL;
    size_t len = 0;
    if (s->ring.published == NULL ||
        luna_jws_keyset_export(s->ring.published, &doc, &len) != LUNA_OK) {
        luna_http_reply_err(req, LUNA_ERR_UNAVAILABLE);
        return;
    }
    luna_http_reply(req, 200, "application/json", doc, len);
    free(doc);
}

/* ====================================================================== */
/* admin authentication                                                    */
/* ====================================================================== */

typedef struct admin_ctx {
    char tenant[IAM_ID_BUF];
    char principal[IAM_ID_BUF];
    iam_roles roles;
} admin_ctx;

/* Copies a string claim that must be a well-formed id. */
static bool claim_id(const json_t *claims, const char *name, char out[IAM_ID_BUF])
{
    const char *v = json_string_value(json_object_get(claims, name));
    if (!iam_id_valid(v))
        return false;
    memcpy(out, v, strlen(v) + 1);
    return true;
}

/* True when kid names a key of the ring that is not retired at now. */
static bool key_unretired(const iam_keyring *ring, const char *kid, int64_t now)
{
    for (size_t i = 0; i < ring->n; i++) {
        const iam_signkey *k = &ring->keys[i];
        if (strcmp(k->kid, kid) == 0)
            return k->retire_at == 0 || k->retire_at > now;
    }
    return false;
}

/*
 * Verifies the bearer token and re-reads the principal, its key and its
 * roles from the store, so a revoked key, a disabled principal or a
 * removed role takes effect on the very next admin call.
 */
static bool admin_auth(iam_service *s, luna_http_request *req, admin_ctx *a)
{
    memset(a, 0, sizeof(*a));
    const char *h = luna_http_request_header(req, "Authorization");
    if (h == NULL || strncmp(h, "Bearer ", 7) != 0) {
        reply_json_error(req, 401, "missing_token", "an admin bearer token is required", NULL);
        return false;
    }
    const char *tok = h + 7;
    size_t tok_len = strnlen(tok, LUNA_JWS_MAX_TOKEN_LEN + 1);
    luna_jws_verify_opts o;
    luna_jws_verify_opts_init(&o);
    o.skew = (uint32_t)s->set.skew;
    o.issuer = s->set.issuer;
    o.audience = s->set.audience; /* IAM's own: a token for another service is refused */
    json_t *claims = NULL;
    char vkid[LUNA_JWS_MAX_KID_LEN + 1];
    int64_t now = now_sec();
    luna_err err = luna_jws_verify(s->ring.published, tok, tok_len, &o, &claims, vkid);
    /* The published set is rebuilt only every refresh_sec: a key retired
       since then verifies nothing here. */
    if (err == LUNA_OK && !key_unretired(&s->ring, vkid, now)) {
        json_decref(claims);
        claims = NULL;
        err = LUNA_ERR_VERIFY;
    }
    if (err == LUNA_ERR_EXPIRED) {
        reply_json_error(req, 401, "token_expired", "the token has expired", NULL);
        return false;
    }
    if (err != LUNA_OK) {
        reply_json_error(req, 401, "invalid_token", "the token is not valid", NULL);
        return false;
    }
    bool ok = false;
    char key_id[IAM_APIKEY_ID_BUF];
    const char *kid = json_string_value(json_object_get(claims, "api_key_id"));
    const char *auth = json_string_value(json_object_get(claims, "auth"));
    if (!claim_id(claims, "tenant", a->tenant) || !claim_id(claims, "principal", a->principal) ||
        auth == NULL || strcmp(auth, "api_key") != 0 || kid == NULL ||
        strlen(kid) != IAM_APIKEY_ID_HEX) {
        reply_json_error(req, 401, "invalid_token", "the token is not valid", NULL);
        goto done;
    }
    memcpy(key_id, kid, IAM_APIKEY_ID_BUF);
    key_row row;
    principal_info p;
    if (load_key(s->db, a->tenant, key_id, &row) != LUNA_OK ||
        load_principal(s->db, a->tenant, a->principal, &p) != LUNA_OK) {
        luna_http_reply_err(req, LUNA_ERR_STORAGE);
        goto done;
    }
    if (!row.found || strcmp(row.principal, a->principal) != 0 || !p.found) {
        reply_json_error(req, 401, "invalid_token", "the token is not valid", NULL);
        goto done;
    }
    if (row.revoked) {
        reply_json_error(req, 401, "api_key_revoked", "the API key was revoked", NULL);
        goto done;
    }
    if (now >= row.expires_at) {
        reply_json_error(req, 401, "api_key_expired", "the API key has expired", NULL);
        goto done;
    }
    if (p.disabled) {
        reply_json_error(req, 401, "principal_disabled", "the principal is disabled", NULL);
        goto done;
    }
    a->roles = p.roles;
    ok = true;
done:
    json_decref(claims);
    return ok;
}

static bool require(luna_http_request *req, const admin_ctx *a, iam_perm p)
{
    if (iam_roles_allow(a->roles, p))
        return true;
    reply_json_error(req, 403, "forbidden", "the principal's roles do not allow this", NULL);
    return false;
}

/* ====================================================================== */
/* who may act on whom (docs/iam.md, "Delegation")                         */
/* ====================================================================== */

#define PLATFORM_ROLE (1u << IAM_ROLE_PLATFORM_ADMIN)

/*
 * iam.admin lets a principal manage others, never outrank itself: acting
 * on a principal (its API keys, client keys, disabling it, its roles)
 * needs every role the target holds; a platform admin is acted on only by
 * a platform admin, and a platform admin covers every tenant role.
 */
static bool roles_cover(iam_roles caller, iam_roles target)
{
    if ((caller & PLATFORM_ROLE) != 0)
        return true;
    if ((target & PLATFORM_ROLE) != 0)
        return false;
    return (target & ~caller) == 0;
}

/* A role is handed out only by a holder of it or by a platform admin. */
static bool may_grant(iam_roles caller, iam_roles granted)
{
    return (caller & PLATFORM_ROLE) != 0 || (granted & ~caller) == 0;
}

/*
 * Inside a transaction: the caller's roles as stored now (admin_auth read
 * them before the transaction; another process may have changed them).
 * LUNA_ERR_PERMISSION when the caller is gone or disabled.
 */
static luna_err caller_roles(luna_store *db, const char *tenant, const char *caller,
                             iam_roles *out)
{
    principal_info p;
    *out = 0;
    LUNA_GUARD(load_principal(db, tenant, caller, &p));
    LUNA_ENSURE(p.found && !p.disabled, LUNA_ERR_PERMISSION);
    *out = p.roles;
    return LUNA_OK;
}

/*
 * Inside a transaction: may caller act on target?  Loads the target into
 * *tp.  allow_self: a principal may act on itself (its own keys).
 * LUNA_ERR_NOT_FOUND (no such target), LUNA_ERR_PERMISSION.
 */
static luna_err may_act_on(luna_store *db, const char *tenant, const char *caller,
                           const char *target, bool allow_self, principal_info *tp)
{
    iam_roles cr;
    LUNA_GUARD(load_principal(db, tenant, target, tp));
    LUNA_ENSURE(tp->found, LUNA_ERR_NOT_FOUND);
    LUNA_GUARD(caller_roles(db, tenant, caller, &cr));
    if (strcmp(caller, target) == 0)
        return allow_self ? LUNA_OK : LUNA_ERR_PERMISSION;
    LUNA_ENSURE(roles_cover(cr, tp->roles), LUNA_ERR_PERMISSION);
    return LUNA_OK;
}

/* Enabled principals holding platform-admin, in every tenant. */
static luna_err count_platform_admins(luna_store *db, int64_t *out)
{
    luna_store_rows *rows = NULL;
    luna_err err;
    bool has = false;
    *out = 0;
    const luna_store_param q[] = {luna_store_p_text(iam_role_name(IAM_ROLE_PLATFORM_ADMIN))};
    LUNA_TRY(luna_store_query(db,
                              "SELECT COUNT(*) FROM iam_roles r JOIN iam_principals p ON "
                              "p.tenant_id = r.tenant_id AND p.principal_id = r.principal_id "
                              "WHERE r.role = ?1 AND p.disabled_at IS NULL",
                              q, 1, &rows),
             done);
    LUNA_TRY(luna_store_rows_next(rows, &has), done);
    LUNA_TRY_ENSURE(has, LUNA_ERR_STORAGE, done);
    LUNA_TRY(luna_store_col_int64(rows, 0, out), done);
done:
    luna_store_rows_free(rows);
    return err;
}

/* The reply for a refusal of the rules above; false when err is not one. */
static bool reply_authority(luna_http_request *req, luna_err err)
{
    if (err == LUNA_ERR_NOT_FOUND) {
        reply_json_error(req, 404, "not_found", "no such principal", NULL);
        return true;
    }
    if (err == LUNA_ERR_PERMISSION) {
        reply_json_error(req, 403, "insufficient_roles",
                         "the caller does not hold every role of the target or grant", NULL);
        return true;
    }
    return false;
}

/* ====================================================================== */
/* admin: tenants                                                          */
/* ====================================================================== */

static const luna_json_field tenant_fields[] = {
    {.name = "tenant_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = IAM_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "display_name", .type = LUNA_JSON_T_STRING, .min_len = 1,
     .max_len = IAM_DISPLAY_NAME_MAX, .pattern = LUNA_JSON_PAT_TEXT},
    {.name = "admin_principal_id", .type = LUNA_JSON_T_STRING, .min_len = 1,
     .max_len = IAM_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "api_key_ttl_sec", .type = LUNA_JSON_T_INT, .min = 1, .max = INT32_MAX},
};
static const luna_json_schema tenant_schema = {tenant_fields, 4, NULL};

static int64_t key_ttl(const iam_service *s, const json_t *body, const char *name, bool *ok)
{
    int64_t ttl = s->set.api_key_default_ttl;
    *ok = true;
    if (luna_json_get_int(body, name, &ttl) == LUNA_OK && ttl > s->set.api_key_max_ttl)
        *ok = false;
    return ttl;
}

static void reply_new_key(luna_http_request *req, int status, json_t *resp, char *key,
                          const char *key_id, int64_t expires)
{
    if (json_object_set_new(resp, "api_key", json_string(key)) != 0 ||
        json_object_set_new(resp, "key_id", json_string(key_id)) != 0 ||
        json_object_set_new(resp, "expires_at", json_integer(expires)) != 0)
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
    else
        luna_http_reply_json(req, status, resp);
    wipe_member(resp, "api_key");
    luna_wipe(key, IAM_APIKEY_BUF);
}

static void handle_tenant_create(luna_http_request *req, void *arg)
{
    iam_service *s = arg;
    admin_ctx a;
    json_t *body = NULL, *resp = NULL;
    if (!admin_auth(s, req, &a) || !require(req, &a, IAM_PERM_PLATFORM_ADMIN))
        return;
    if (!parse_body(req, &tenant_schema, &body))
        return;
    const char *tenant = jstr(body, "tenant_id");
    const char *display = jstr(body, "display_name");
    const char *admin = jstr(body, "admin_principal_id");
    if (admin == NULL)
        admin = "admin";
    bool ttl_ok;
    int64_t ttl = key_ttl(s, body, "api_key_ttl_sec", &ttl_ok);
    if (!iam_id_valid(tenant) || !iam_id_valid(admin) || strcmp(admin, IAM_ANONYMOUS) == 0 ||
        !ttl_ok) {
        reply_json_error(req, 400, "invalid_request", "bad tenant, principal id or key ttl",
                         NULL);
        goto done;
    }
    char key[IAM_APIKEY_BUF], key_id[IAM_APIKEY_ID_BUF];
    int64_t now = now_sec();
    luna_err err = iam_tenant_create(s->db, s->master, tenant, display, admin, false, now, ttl,
                                     key, key_id);
    if (err == LUNA_ERR_CONFLICT) {
        reply_json_error(req, 409, "tenant_exists", "the tenant exists already", NULL);
        goto done;
    }
    if (err != LUNA_OK) {
        luna_http_reply_err(req, err == LUNA_ERR_UNAVAILABLE ? err : LUNA_ERR_STORAGE);
        goto done;
    }
    LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "tenant created", LUNA_LOG_STR("tenant", tenant),
              LUNA_LOG_STR("by_tenant", a.tenant), LUNA_LOG_STR("by", a.principal));
    resp = json_pack("{s:s,s:s}", "tenant_id", tenant, "principal_id", admin);
    if (resp == NULL) {
        luna_wipe(key, sizeof(key));
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        goto done;
    }
    reply_new_key(req, 201, resp, key, key_id, now + ttl);
done:
    json_decref(resp);
    json_decref(body);
}

static void handle_tenant_get(luna_http_request *req, iam_service *s, const admin_ctx *a)
{
    tenant_info t;
    if (!require(req, a, IAM_PERM_IAM_READ))
        return;
    if (load_tenant(s->db, a->tenant, &t) != LUNA_OK || !t.found) {
        luna_http_reply_err(req, LUNA_ERR_STORAGE);
        return;
    }
    json_t *b = json_pack("{s:s,s:s,s:{s:b,s:O}}", "tenant_id", a->tenant, "display_name",
                          t.display, "anonymous", "allowed", t.anonymous, "jobs", t.jobs);
    json_decref(t.jobs);
    if (b == NULL) {
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        return;
    }
    luna_http_reply_json(req, 200, b);
    json_decref(b);
}

static const luna_json_field job_item = {.name = "job", .type = LUNA_JSON_T_STRING,
                                         .min_len = 1, .max_len = IAM_JOB_MAX,
                                         .pattern = LUNA_JSON_PAT_PRINTABLE};
static const luna_json_field anon_fields[] = {
    {.name = "allowed", .type = LUNA_JSON_T_BOOL, .flags = LUNA_JSON_REQUIRED},
    {.name = "jobs", .type = LUNA_JSON_T_ARRAY, .max_len = IAM_MAX_ANON_JOBS,
     .items = &job_item},
};
static const luna_json_schema anon_schema = {anon_fields, 2, NULL};

typedef struct anon_ctx {
    const char *tenant;
    bool allowed;
    const json_t *jobs;
} anon_ctx;

static luna_err anon_tx(luna_store *db, void *arg)
{
    const anon_ctx *c = arg;
    const luna_store_param t[] = {luna_store_p_text(c->tenant)};
    const luna_store_param u[] = {luna_store_p_int64(c->allowed ? 1 : 0),
                                  luna_store_p_text(c->tenant)};
    uint64_t changed = 0;
    LUNA_GUARD(luna_store_exec(db,
                               "UPDATE iam_tenants SET anonymous_allowed = ?1 WHERE "
                               "tenant_id = ?2",
                               u, 2, &changed));
    LUNA_ENSURE(changed == 1, LUNA_ERR_NOT_FOUND);
    LUNA_GUARD(luna_store_exec(db, "DELETE FROM iam_anonymous_jobs WHERE tenant_id = ?1", t, 1,
                               NULL));
    size_t i;
    const json_t *v;
    json_array_foreach(c->jobs, i, v)
    {
        const luna_store_param j[] = {luna_store_p_text(c->tenant),
                                      luna_store_p_text(json_string_value(v))};
        LUNA_GUARD(luna_store_exec(db,
                                   "INSERT INTO iam_anonymous_jobs (tenant_id, job) "
                                   "VALUES (?1, ?2)",
                                   j, 2, NULL));
    }
    return LUNA_OK;
}

static void handle_anonymous_set(luna_http_request *req, iam_service *s, const admin_ctx *a)
{
    json_t *body = NULL, *empty = NULL;
    if (!require(req, a, IAM_PERM_IAM_ADMIN) || !parse_body(req, &anon_schema, &body))
        return;
    bool allowed = false;
    const json_t *jobs = NULL;
    size_t n = 0;
    if (luna_json_get_bool(body, "allowed", &allowed) != LUNA_OK)
        allowed = false; /* required by the schema: unreachable */
    if (luna_json_get_array(body, "jobs", &jobs, &n) != LUNA_OK) {
        empty = json_array();
        jobs = empty;
    }
    size_t i;
    const json_t *v;
    json_array_foreach(jobs, i, v)
    {
        if (!iam_job_valid(json_string_value(v))) {
            reply_json_error(req, 400, "invalid_request", "jobs: not a job name", "jobs");
            goto done;
        }
    }
    anon_ctx c = {a->tenant, allowed, jobs};
    luna_err err = luna_store_tx(s->db, anon_tx, &c);
    if (err == LUNA_ERR_CONFLICT) {
        reply_json_error(req, 400, "invalid_request", "jobs: a job is listed twice", "jobs");
        goto done;
    }
    if (err != LUNA_OK) {
        luna_http_reply_err(req, err == LUNA_ERR_UNAVAILABLE ? err : LUNA_ERR_STORAGE);
        goto done;
    }
    handle_tenant_get(req, s, a);
done:
    json_decref(empty);
    json_decref(body);
}

/* ====================================================================== */
/* admin: principals                                                       */
/* ====================================================================== */

static const char *const kind_names[] = {"user", "service", "client", "developer", NULL};
static const char *const assignable_roles[] = {"tenant-admin", "key-admin", "operator",
                                               "auditor",      "developer", "client",
                                               NULL};
static const luna_json_field role_item = {.name = "role", .type = LUNA_JSON_T_STRING,
                                          .one_of = assignable_roles};
static const luna_json_field principal_fields[] = {
    {.name = "principal_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = IAM_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "kind", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .one_of = kind_names},
    {.name = "display_name", .type = LUNA_JSON_T_STRING, .min_len = 1,
     .max_len = IAM_DISPLAY_NAME_MAX, .pattern = LUNA_JSON_PAT_TEXT},
    {.name = "roles", .type = LUNA_JSON_T_ARRAY, .max_len = IAM_ROLE__COUNT,
     .items = &role_item},
    {.name = "public_key", .type = LUNA_JSON_T_B64URL, .min_len = LUNA_ED25519_PUB_LEN,
     .max_len = LUNA_ED25519_PUB_LEN},
};
static const luna_json_schema principal_schema = {principal_fields, 5, NULL};

static const luna_json_field roles_fields[] = {
    {.name = "roles", .type = LUNA_JSON_T_ARRAY, .flags = LUNA_JSON_REQUIRED,
     .max_len = IAM_ROLE__COUNT, .items = &role_item},
};
static const luna_json_schema roles_schema = {roles_fields, 1, NULL};

/* Reads a validated role array into a mask; false on a repeated role. */
static bool roles_from_json(const json_t *arr, iam_roles *out)
{
    *out = 0;
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v)
    {
        iam_role r;
        if (!iam_role_from_name(json_string_value(v), &r) || r == IAM_ROLE_PLATFORM_ADMIN ||
            (*out & (1u << r)) != 0)
            return false;
        *out |= 1u << r;
    }
    return true;
}

static luna_err store_roles(luna_store *db, const char *tenant, const char *principal,
                            iam_roles roles)
{
    /* platform-admin is never set or cleared through the tenant API. */
    const luna_store_param d[] = {luna_store_p_text(tenant), luna_store_p_text(principal),
                                  luna_store_p_text(iam_role_name(IAM_ROLE_PLATFORM_ADMIN))};
    LUNA_GUARD(luna_store_exec(db,
                               "DELETE FROM iam_roles WHERE tenant_id = ?1 AND "
                               "principal_id = ?2 AND role <> ?3",
                               d, 3, NULL));
    for (unsigned r = 0; r < IAM_ROLE__COUNT; r++) {
        if ((roles & (1u << r)) == 0 || r == IAM_ROLE_PLATFORM_ADMIN)
            continue;
        const luna_store_param i[] = {luna_store_p_text(tenant), luna_store_p_text(principal),
                                      luna_store_p_text(iam_role_name((iam_role)r))};
        LUNA_GUARD(luna_store_exec(db,
                                   "INSERT INTO iam_roles (tenant_id, principal_id, role) "
                                   "VALUES (?1, ?2, ?3)",
                                   i, 3, NULL));
    }
    return LUNA_OK;
}

#define CLIENT_KEY_ID_BUF 20u /* "ck_" + 16 hex + NUL */

typedef struct principal_ctx {
    const char *tenant, *caller, *principal, *kind, *display;
    iam_roles roles;
    int64_t now;
    const uint8_t *dev_pk;      /* developer: Ed25519 public key */
    const char *dev_key_id;
    const uint8_t *client_pk;   /* client: X25519 public key */
    const char *client_key_id;
} principal_ctx;

static luna_err insert_client_key(luna_store *db, const char *tenant, const char *principal,
                                  const char *key_id, const uint8_t *pk, int64_t now)
{
    const luna_store_param p[] = {luna_store_p_text(tenant), luna_store_p_text(key_id),
                                  luna_store_p_text(principal),
                                  luna_store_p_blob(pk, LUNA_X25519_LEN), luna_store_p_int64(now)};
    return luna_store_exec(db,
                           "INSERT INTO iam_client_keys (tenant_id, key_id, principal_id, "
                           "public_key, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                           p, 5, NULL);
}

static luna_err principal_tx(luna_store *db, void *arg)
{
    const principal_ctx *c = arg;
    iam_roles cr;
    LUNA_GUARD(caller_roles(db, c->tenant, c->caller, &cr));
    LUNA_ENSURE(may_grant(cr, c->roles), LUNA_ERR_PERMISSION);
    const luna_store_param p[] = {luna_store_p_text(c->tenant), luna_store_p_text(c->principal),
                                  luna_store_p_text(c->kind), luna_store_p_text(c->display),
                                  luna_store_p_int64(c->now)};
    LUNA_GUARD(luna_store_exec(db,
                               "INSERT INTO iam_principals (tenant_id, principal_id, kind, "
                               "display_name, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                               p, 5, NULL));
    LUNA_GUARD(store_roles(db, c->tenant, c->principal, c->roles));
    if (c->dev_pk != NULL) {
        const luna_store_param d[] = {luna_store_p_text(c->tenant),
                                      luna_store_p_text(c->dev_key_id),
                                      luna_store_p_text(c->principal),
                                      luna_store_p_blob(c->dev_pk, LUNA_ED25519_PUB_LEN),
                                      luna_store_p_int64(c->now)};
        LUNA_GUARD(luna_store_exec(db,
                                   "INSERT INTO iam_developer_keys (tenant_id, key_id, "
                                   "principal_id, public_key, created_at) "
                                   "VALUES (?1, ?2, ?3, ?4, ?5)",
                                   d, 5, NULL));
    }
    if (c->client_pk != NULL)
        LUNA_GUARD(insert_client_key(db, c->tenant, c->principal, c->client_key_id,
                                     c->client_pk, c->now));
    return LUNA_OK;
}

static luna_err new_client_key_id(char out[CLIENT_KEY_ID_BUF])
{
    uint8_t r[8];
    LUNA_GUARD(luna_random(r, sizeof(r)));
    memcpy(out, "ck_", 3);
    return luna_hex_encode(r, sizeof(r), out + 3, CLIENT_KEY_ID_BUF - 3);
}

/*
 * The key file handed to a client application once: a JSON document the
 * SDK loads (docs/iam.md, "Client key file").  Built into a caller buffer
 * so it can be wiped.
 */
static luna_err client_key_file(const char *tenant, const char *principal, const char *key_id,
                                const uint8_t sk[LUNA_X25519_LEN],
                                const uint8_t pk[LUNA_X25519_LEN], char *out, size_t cap)
{
    char skb[LUNA_B64URL_ENC_LEN(LUNA_X25519_LEN)], pkb[LUNA_B64URL_ENC_LEN(LUNA_X25519_LEN)];
    luna_err err;
    LUNA_TRY(luna_b64url_encode(sk, LUNA_X25519_LEN, skb, sizeof(skb)), done);
    LUNA_TRY(luna_b64url_encode(pk, LUNA_X25519_LEN, pkb, sizeof(pkb)), done);
    int n = snprintf(out, cap,
                     "{\"type\":\"lunal-client-key\",\"version\":1,\"tenant_id\":\"%s\","
                     "\"principal_id\":\"%s\",\"key_id\":\"%s\",\"public_key\":\"%s\","
                     "\"private_key\":\"%s\"}\n",
                     tenant, principal, key_id, pkb, skb);
    LUNA_TRY_ENSURE(n > 0 && (size_t)n < cap, LUNA_ERR_TOO_LARGE, done);
done:
    luna_wipe(skb, sizeof(skb));
    return err;
}

#define KEY_FILE_MAX 512u

static json_t *principal_json(const char *tenant, const char *principal,
                              const principal_info *p)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:o,s:I,s:b}", "tenant_id", tenant, "principal_id",
                     principal, "kind", p->kind, "display_name", p->display, "roles",
                     roles_json(p->roles), "created_at", (json_int_t)p->created_at, "disabled",
                     p->disabled);
}

static void handle_principal_create(luna_http_request *req, iam_service *s, const admin_ctx *a)
{
    json_t *body = NULL, *resp = NULL;
    uint8_t sk[LUNA_X25519_LEN], cpk[LUNA_X25519_LEN], dpk[LUNA_ED25519_PUB_LEN];
    char dev_key_id[IAM_DEV_KEY_ID_LEN + 1], ck_id[CLIENT_KEY_ID_BUF];
    char key_file[KEY_FILE_MAX];
    bool have_sk = false;
    if (!require(req, a, IAM_PERM_IAM_ADMIN) || !parse_body(req, &principal_schema, &body))
        return;
    const char *principal = jstr(body, "principal_id");
    const char *kind = jstr(body, "kind");
    const char *display = jstr(body, "display_name");
    const json_t *roles_arr = NULL;
    size_t nroles = 0;
    iam_roles roles = 0;
    bool has_pk = false;
    size_t pk_len = 0;
    if (!iam_id_valid(principal) || strcmp(principal, IAM_ANONYMOUS) == 0) {
        reply_json_error(req, 400, "invalid_request", "principal_id: not a usable id",
                         "principal_id");
        goto done;
    }
    if (luna_json_get_array(body, "roles", &roles_arr, &nroles) == LUNA_OK) {
        if (!roles_from_json(roles_arr, &roles)) {
            reply_json_error(req, 400, "invalid_request", "roles: a role is listed twice",
                             "roles");
            goto done;
        }
    } else if (strcmp(kind, "developer") == 0) {
        roles = 1u << IAM_ROLE_DEVELOPER;
    } else if (strcmp(kind, "client") == 0) {
        roles = 1u << IAM_ROLE_CLIENT;
    }
    has_pk = luna_json_get_b64url(body, "public_key", dpk, sizeof(dpk), &pk_len) == LUNA_OK;
    bool developer = strcmp(kind, "developer") == 0;
    if (developer != has_pk || (developer && display == NULL)) {
        reply_json_error(req, 400, "invalid_request",
                         "a developer needs public_key and display_name; others have no key",
                         "public_key");
        goto done;
    }
    principal_ctx c = {a->tenant, a->principal, principal, kind,
                       display != NULL ? display : principal, roles, now_sec(), NULL, NULL, NULL,
                       NULL};
    if (developer) {
        if (iam_developer_key_id(dpk, dev_key_id) != LUNA_OK) {
            luna_http_reply_err(req, LUNA_ERR_INTERNAL);
            goto done;
        }
        c.dev_pk = dpk;
        c.dev_key_id = dev_key_id;
    }
    if (strcmp(kind, "client") == 0) {
        if (luna_x25519_keygen(sk, cpk) != LUNA_OK || new_client_key_id(ck_id) != LUNA_OK) {
            luna_http_reply_err(req, LUNA_ERR_CRYPTO);
            goto done;
        }
        have_sk = true;
        c.client_pk = cpk;
        c.client_key_id = ck_id;
    }
    luna_err err = luna_store_tx(s->db, principal_tx, &c);
    if (err == LUNA_ERR_PERMISSION) {
        reply_authority(req, err);
        goto done;
    }
    if (err == LUNA_ERR_CONFLICT) {
        reply_json_error(req, 409, "principal_exists",
                         "the principal or its developer key exists already", NULL);
        goto done;
    }
    if (err != LUNA_OK) {
        luna_http_reply_err(req, err == LUNA_ERR_UNAVAILABLE ? err : LUNA_ERR_STORAGE);
        goto done;
    }
    principal_info p = {.found = true, .roles = roles, .created_at = c.now};
    (void)snprintf(p.kind, sizeof(p.kind), "%s", kind);
    (void)snprintf(p.display, sizeof(p.display), "%s", c.display);
    resp = principal_json(a->tenant, principal, &p);
    if (resp == NULL) {
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        goto done;
    }
    if (developer)
        (void)json_object_set_new(resp, "developer_key_id", json_string(dev_key_id));
    if (have_sk) {
        if (client_key_file(a->tenant, principal, ck_id, sk, cpk, key_file, sizeof(key_file)) !=
                LUNA_OK ||
            json_object_set_new(resp, "client_key_id", json_string(ck_id)) != 0 ||
            json_object_set_new(resp, "key_file", json_string(key_file)) != 0) {
            luna_http_reply_err(req, LUNA_ERR_INTERNAL);
            goto done;
        }
    }
    LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "principal created", LUNA_LOG_STR("tenant", a->tenant),
              LUNA_LOG_STR("principal", principal), LUNA_LOG_STR("kind", kind),
              LUNA_LOG_STR("by", a->principal));
    luna_http_reply_json(req, 201, resp);
done:
    if (resp != NULL)
        wipe_member(resp, "key_file");
    luna_wipe(sk, sizeof(sk));
    luna_wipe(key_file, sizeof(key_file));
    json_decref(resp);
    json_decref(body);
}

static void handle_principal_get(luna_http_request *req, iam_service *s, const admin_ctx *a,
                                 const char *principal)
{
    principal_info p;
    if (!require(req, a, IAM_PERM_IAM_READ))
        return;
    if (load_principal(s->db, a->tenant, principal, &p) != LUNA_OK) {
        luna_http_reply_err(req, LUNA_ERR_STORAGE);
        return;
    }
    if (!p.found) {
        reply_json_error(req, 404, "not_found", "no such principal", NULL);
        return;
    }
    json_t *b = principal_json(a->tenant, principal, &p);
    if (b == NULL) {
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        return;
    }
    luna_http_reply_json(req, 200, b);
    json_decref(b);
}

static void handle_principal_list(luna_http_request *req, iam_service *s, const admin_ctx *a)
{
    if (!require(req, a, IAM_PERM_IAM_READ))
        return;
    luna_store_rows *rows = NULL;
    json_t *arr = json_array(), *b = NULL;
    luna_err err = LUNA_ERR_NOMEM;
    const luna_store_param p[] = {luna_store_p_text(a->tenant)};
    LUNA_TRY_ENSURE(arr != NULL, LUNA_ERR_NOMEM, done);
    LUNA_TRY(luna_store_query(s->db,
                              "SELECT principal_id, kind, display_name, disabled_at FROM "
                              "iam_principals WHERE tenant_id = ?1 ORDER BY principal_id "
                              "LIMIT 1000",
                              p, 1, &rows),
             done);
    for (;;) {
        bool has = false, null = true;
        const char *id, *kind, *display;
        size_t n;
        LUNA_TRY(luna_store_rows_next(rows, &has), done);
        if (!has)
            break;
        LUNA_TRY(luna_store_col_text(rows, 0, &id, &n), done);
        LUNA_TRY(luna_store_col_text(rows, 1, &kind, &n), done);
        LUNA_TRY(luna_store_col_text(rows, 2, &display, &n), done);
        LUNA_TRY(luna_store_col_is_null(rows, 3, &null), done);
        json_t *o = json_pack("{s:s,s:s,s:s,s:b}", "principal_id", id, "kind", kind,
                              "display_name", display, "disabled", !null);
        LUNA_TRY_ENSURE(o != NULL && json_array_append_new(arr, o) == 0, LUNA_ERR_NOMEM, done);
    }
    b = json_pack("{s:s,s:O}", "tenant_id", a->tenant, "principals", arr);
    LUNA_TRY_ENSURE(b != NULL, LUNA_ERR_NOMEM, done);
    luna_http_reply_json(req, 200, b);
done:
    luna_store_rows_free(rows);
    if (err != LUNA_OK)
        luna_http_reply_err(req, err == LUNA_ERR_NOMEM ? err : LUNA_ERR_STORAGE);
    json_decref(b);
    json_decref(arr);
}

typedef struct disable_ctx {
    const char *tenant, *caller, *principal;
    int64_t now;
} disable_ctx;

static luna_err disable_tx(luna_store *db, void *arg)
{
    const disable_ctx *c = arg;
    principal_info p;
    LUNA_GUARD(may_act_on(db, c->tenant, c->caller, c->principal, true, &p));
    LUNA_ENSURE(!p.disabled, LUNA_ERR_NOT_FOUND);
    if ((p.roles & PLATFORM_ROLE) != 0) {
        /* Nothing can make a new platform admin once bootstrap ran. */
        int64_t n = 0;
        LUNA_GUARD(count_platform_admins(db, &n));
        LUNA_ENSURE(n > 1, LUNA_ERR_CONFLICT);
    }
    uint64_t changed = 0;
    const luna_store_param u[] = {luna_store_p_int64(c->now), luna_store_p_text(c->tenant),
                                  luna_store_p_text(c->principal)};
    LUNA_GUARD(luna_store_exec(db,
                               "UPDATE iam_principals SET disabled_at = ?1 WHERE tenant_id = ?2 "
                               "AND principal_id = ?3 AND disabled_at IS NULL",
                               u, 3, &changed));
    LUNA_ENSURE(changed == 1, LUNA_ERR_NOT_FOUND);
    return LUNA_OK;
}

static void handle_principal_disable(luna_http_request *req, iam_service *s, const admin_ctx *a,
                                     const char *principal)
{
    if (!require(req, a, IAM_PERM_IAM_ADMIN))
        return;
    disable_ctx c = {a->tenant, a->principal, principal, now_sec()};
    luna_err err = luna_store_tx(s->db, disable_tx, &c);
    if (err == LUNA_ERR_NOT_FOUND) {
        reply_json_error(req, 404, "not_found", "no such enabled principal", NULL);
        return;
    }
    if (err == LUNA_ERR_CONFLICT) {
        reply_json_error(req, 409, "last_platform_admin",
                         "the last enabled platform admin cannot be disabled", NULL);
        return;
    }
    if (reply_authority(req, err))
        return;
    if (err != LUNA_OK) {
        luna_http_reply_err(req, err == LUNA_ERR_UNAVAILABLE ? err : LUNA_ERR_STORAGE);
        return;
    }
    LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "principal disabled", LUNA_LOG_STR("tenant", a->tenant),
              LUNA_LOG_STR("principal", principal), LUNA_LOG_STR("by", a->principal));
    handle_principal_get(req, s, a, principal);
}

typedef struct roles_ctx {
    const char *tenant, *caller, *principal;
    iam_roles roles;
} roles_ctx;

/*
 * Never on the caller itself; the caller must cover the target's present
 * roles (it may strip only what it could hold) and hold every role it
 * sets.  platform-admin is kept by store_roles, so it is never stripped.
 */
static luna_err roles_tx(luna_store *db, void *arg)
{
    const roles_ctx *c = arg;
    principal_info p;
    iam_roles cr;
    LUNA_GUARD(may_act_on(db, c->tenant, c->caller, c->principal, false, &p));
    LUNA_GUARD(caller_roles(db, c->tenant, c->caller, &cr));
    LUNA_ENSURE(may_grant(cr, c->roles), LUNA_ERR_PERMISSION);
    return store_roles(db, c->tenant, c->principal, c->roles);
}

static void handle_roles_set(luna_http_request *req, iam_service *s, const admin_ctx *a,
                             const char *principal)
{
    json_t *body = NULL;
    if (!require(req, a, IAM_PERM_IAM_ADMIN) || !parse_body(req, &roles_schema, &body))
        return;
    const json_t *arr = NULL;
    size_t n = 0;
    roles_ctx c = {a->tenant, a->principal, principal, 0};
    if (luna_json_get_array(body, "roles", &arr, &n) != LUNA_OK ||
        !roles_from_json(arr, &c.roles)) {
        reply_json_error(req, 400, "invalid_request", "roles: a role is listed twice", "roles");
        goto done;
    }
    /* Separation of duties: nobody sets its own roles. */
    if (strcmp(principal, a->principal) == 0) {
        reply_json_error(req, 403, "self_role_change",
                         "a principal cannot change its own roles", NULL);
        goto done;
    }
    luna_err err = luna_store_tx(s->db, roles_tx, &c);
    if (reply_authority(req, err))
        goto done;
    if (err != LUNA_OK) {
        luna_http_reply_err(req, err == LUNA_ERR_UNAVAILABLE ? err : LUNA_ERR_STORAGE);
        goto done;
    }
    LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "roles set", LUNA_LOG_STR("tenant", a->tenant),
              LUNA_LOG_STR("principal", principal), LUNA_LOG_UINT("roles", c.roles),
              LUNA_LOG_STR("by", a->principal));
    handle_principal_get(req, s, a, principal);
done:
    json_decref(body);
}

/* ====================================================================== */
/* admin: API keys                                                         */
/* ====================================================================== */

static const luna_json_field apikey_fields[] = {
    {.name = "expires_in_sec", .type = LUNA_JSON_T_INT, .min = 1, .max = INT32_MAX},
};
static const luna_json_schema apikey_schema = {apikey_fields, 1, NULL};

typedef struct apikey_ctx {
    const char *tenant, *caller, *principal, *key;
    const uint8_t *pepper;
    int64_t now, ttl;
} apikey_ctx;

static luna_err apikey_tx(luna_store *db, void *arg)
{
    const apikey_ctx *c = arg;
    principal_info p;
    /* A key is the principal's whole authority: minted only for a target
       the caller covers (or itself). */
    LUNA_GUARD(may_act_on(db, c->tenant, c->caller, c->principal, true, &p));
    LUNA_ENSURE(!p.disabled, LUNA_ERR_NOT_FOUND);
    return iam_apikey_store(db, c->pepper, c->tenant, c->principal, c->key, c->now, c->ttl);
}

static void handle_apikey_create(luna_http_request *req, iam_service *s, const admin_ctx *a,
                                 const char *principal)
{
    json_t *body = NULL, *resp = NULL;
    char key[IAM_APIKEY_BUF], key_id[IAM_APIKEY_ID_BUF];
    if (!require(req, a, IAM_PERM_IAM_ADMIN) || !parse_body(req, &apikey_schema, &body))
        return;
    bool ok;
    int64_t ttl = key_ttl(s, body, "expires_in_sec", &ok);
    if (!ok) {
        reply_json_error(req, 400, "invalid_request", "expires_in_sec: over the maximum",
                         "expires_in_sec");
        goto done;
    }
    if (iam_apikey_generate(key, key_id) != LUNA_OK) {
        luna_http_reply_err(req, LUNA_ERR_CRYPTO);
        goto done;
    }
    apikey_ctx c = {a->tenant, a->principal, principal, key, luna_secret_cdata(s->pepper),
                    now_sec(), ttl};
    luna_err err = luna_store_tx(s->db, apikey_tx, &c);
    if (err != LUNA_OK) {
        luna_wipe(key, sizeof(key));
        if (err == LUNA_ERR_PERMISSION)
            reply_authority(req, err);
        else if (err == LUNA_ERR_NOT_FOUND)
            reply_json_error(req, 404, "not_found", "no such enabled principal", NULL);
        else
            luna_http_reply_err(req, err == LUNA_ERR_UNAVAILABLE ? err : LUNA_ERR_STORAGE);
        goto done;
    }
    LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "api key created", LUNA_LOG_STR("tenant", a->tenant),
              LUNA_LOG_STR("principal", principal), LUNA_LOG_STR("key_id", key_id),
              LUNA_LOG_STR("by", a->principal));
    resp = json_pack("{s:s,s:s}", "tenant_id", a->tenant, "principal_id", principal);
    if (resp == NULL) {
        luna_wipe(key, sizeof(key));
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        goto done;
    }
    reply_new_key(req, 201, resp, key, key_id, c.now + ttl);
done:
    json_decref(resp);
    json_decref(body);
}

static json_t *opt_int(const luna_store_rows *rows, size_t col)
{
    bool null = true;
    int64_t v = 0;
    if (luna_store_col_is_null(rows, col, &null) != LUNA_OK || null ||
        luna_store_col_int64(rows, col, &v) != LUNA_OK)
        return json_null();
    return json_integer(v);
}

static void handle_apikey_list(luna_http_request *req, iam_service *s, const admin_ctx *a,
                               const char *principal)
{
    if (!require(req, a, IAM_PERM_IAM_READ))
        return;
    luna_store_rows *rows = NULL;
    json_t *arr = json_array(), *b = NULL;
    luna_err err = LUNA_ERR_NOMEM;
    const luna_store_param p[] = {luna_store_p_text(a->tenant), luna_store_p_text(principal)};
    LUNA_TRY_ENSURE(arr != NULL, LUNA_ERR_NOMEM, done);
    LUNA_TRY(luna_store_query(s->db,
                              "SELECT key_id, created_at, expires_at, last_used_at, revoked_at "
                              "FROM iam_api_keys WHERE tenant_id = ?1 AND principal_id = ?2 "
                              "ORDER BY created_at, key_id LIMIT 1000",
                              p, 2, &rows),
             done);
    for (;;) {
        bool has = false;
        const char *id;
        size_t n;
        int64_t created = 0, expires = 0;
        LUNA_TRY(luna_store_rows_next(rows, &has), done);
        if (!has)
            break;
        LUNA_TRY(luna_store_col_text(rows, 0, &id, &n), done);
        LUNA_TRY(luna_store_col_int64(rows, 1, &created), done);
        LUNA_TRY(luna_store_col_int64(rows, 2, &expires), done);
        json_t *o = json_pack("{s:s,s:I,s:I,s:o,s:o}", "key_id", id, "created_at",
                              (json_int_t)created, "expires_at", (json_int_t)expires,
                              "last_used_at", opt_int(rows, 3), "revoked_at", opt_int(rows, 4));
        LUNA_TRY_ENSURE(o != NULL && json_array_append_new(arr, o) == 0, LUNA_ERR_NOMEM, done);
    }
    b = json_pack("{s:s,s:s,s:O}", "tenant_id", a->tenant, "principal_id", principal,
                  "api_keys", arr);
    LUNA_TRY_ENSURE(b != NULL, LUNA_ERR_NOMEM, done);
    luna_http_reply_json(req, 200, b);
done:
    luna_store_rows_free(rows);
    if (err != LUNA_OK)
        luna_http_reply_err(req, err == LUNA_ERR_NOMEM ? err : LUNA_ERR_STORAGE);
    json_decref(b);
    json_decref(arr);
}

typedef struct revoke_ctx {
    const char *tenant, *caller, *principal, *key_id;
    bool client_key;
    int64_t now;
} revoke_ctx;

static luna_err revoke_tx(luna_store *db, void *arg)
{
    const revoke_ctx *c = arg;
    principal_info p;
    /* Revoking locks a principal out: the same rule as minting. */
    LUNA_GUARD(may_act_on(db, c->tenant, c->caller, c->principal, true, &p));
    uint64_t changed = 0;
    const luna_store_param u[] = {luna_store_p_int64(c->now), luna_store_p_text(c->tenant),
                                  luna_store_p_text(c->principal), luna_store_p_text(c->key_id)};
    const char *sql = c->client_key
                          ? "UPDATE iam_client_keys SET revoked_at = ?1 WHERE tenant_id = ?2 "
                            "AND principal_id = ?3 AND key_id = ?4 AND revoked_at IS NULL"
                          : "UPDATE iam_api_keys SET revoked_at = ?1 WHERE tenant_id = ?2 "
                            "AND principal_id = ?3 AND key_id = ?4 AND revoked_at IS NULL";
    LUNA_GUARD(luna_store_exec(db, sql, u, 4, &changed));
    LUNA_ENSURE(changed == 1, LUNA_ERR_NOT_FOUND);
    return LUNA_OK;
}

/* Revokes an API key or a client key of (tenant, principal). */
static void revoke(luna_http_request *req, iam_service *s, const admin_ctx *a,
                   const char *principal, const char *key_id, bool client_key)
{
    if (!require(req, a, IAM_PERM_IAM_ADMIN))
        return;
    revoke_ctx c = {a->tenant, a->principal, principal, key_id, client_key, now_sec()};
    luna_err err = luna_store_tx(s->db, revoke_tx, &c);
    if (err == LUNA_ERR_NOT_FOUND) {
        reply_json_error(req, 404, "not_found", "no such unrevoked key", NULL);
        return;
    }
    if (reply_authority(req, err))
        return;
    if (err != LUNA_OK) {
        luna_http_reply_err(req, err == LUNA_ERR_UNAVAILABLE ? err : LUNA_ERR_STORAGE);
        return;
    }
    LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, client_key ? "client key revoked" : "api key revoked",
              LUNA_LOG_STR("tenant", a->tenant), LUNA_LOG_STR("principal", principal),
              LUNA_LOG_STR("key_id", key_id), LUNA_LOG_STR("by", a->principal));
    json_t *b = json_pack("{s:s,s:I}", "key_id", key_id, "revoked_at", (json_int_t)c.now);
    if (b == NULL) {
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        return;
    }
    luna_http_reply_json(req, 200, b);
    json_decref(b);
}

/* ====================================================================== */
/* admin: client keys                                                      */
/* ====================================================================== */

static const luna_json_field ckey_fields[] = {
    {.name = "revoke_previous", .type = LUNA_JSON_T_BOOL},
};
static const luna_json_schema ckey_schema = {ckey_fields, 1, NULL};

typedef struct ckey_ctx {
    const char *tenant, *caller, *principal, *key_id;
    const uint8_t *pk;
    bool revoke_previous;
    int64_t now;
} ckey_ctx;

static luna_err ckey_tx(luna_store *db, void *arg)
{
    const ckey_ctx *c = arg;
    principal_info p;
    /* The caller receives the private key: it must cover the client. */
    LUNA_GUARD(may_act_on(db, c->tenant, c->caller, c->principal, true, &p));
    LUNA_ENSURE(!p.disabled && strcmp(p.kind, "client") == 0, LUNA_ERR_NOT_FOUND);
    if (c->revoke_previous) {
        const luna_store_param r[] = {luna_store_p_int64(c->now), luna_store_p_text(c->tenant),
                                      luna_store_p_text(c->principal)};
        LUNA_GUARD(luna_store_exec(db,
                                   "UPDATE iam_client_keys SET revoked_at = ?1 WHERE "
                                   "tenant_id = ?2 AND principal_id = ?3 AND revoked_at IS NULL",
                                   r, 3, NULL));
    }
    return insert_client_key(db, c->tenant, c->principal, c->key_id, c->pk, c->now);
}

static void handle_client_key_create(luna_http_request *req, iam_service *s, const admin_ctx *a,
                                     const char *principal)
{
    json_t *body = NULL, *resp = NULL;
    uint8_t sk[LUNA_X25519_LEN], pk[LUNA_X25519_LEN];
    char key_id[CLIENT_KEY_ID_BUF], key_file[KEY_FILE_MAX];
    memset(key_file, 0, sizeof(key_file));
    memset(sk, 0, sizeof(sk));
    if (!require(req, a, IAM_PERM_IAM_ADMIN) || !parse_body(req, &ckey_schema, &body))
        return;
    bool revoke_previous = true; /* the default is a rotation */
    if (luna_json_get_bool(body, "revoke_previous", &revoke_previous) != LUNA_OK)
        revoke_previous = true;
    if (luna_x25519_keygen(sk, pk) != LUNA_OK || new_client_key_id(key_id) != LUNA_OK) {
        luna_http_reply_err(req, LUNA_ERR_CRYPTO);
        goto done;
    }
    ckey_ctx c = {a->tenant, a->principal, principal, key_id, pk, revoke_previous, now_sec()};
    luna_err err = luna_store_tx(s->db, ckey_tx, &c);
    if (err == LUNA_ERR_NOT_FOUND) {
        reply_json_error(req, 404, "not_found", "no such enabled client principal", NULL);
        goto done;
    }
    if (reply_authority(req, err))
        goto done;
    if (err != LUNA_OK) {
        luna_http_reply_err(req, err == LUNA_ERR_UNAVAILABLE ? err : LUNA_ERR_STORAGE);
        goto done;
    }
    if (client_key_file(a->tenant, principal, key_id, sk, pk, key_file, sizeof(key_file)) !=
            LUNA_OK ||
        (resp = json_pack("{s:s,s:s,s:s,s:s}", "tenant_id", a->tenant, "principal_id",
                          principal, "client_key_id", key_id, "key_file", key_file)) == NULL) {
        luna_http_reply_err(req, LUNA_ERR_INTERNAL);
        goto done;
    }
    LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "client key created", LUNA_LOG_STR("tenant", a->tenant),
              LUNA_LOG_STR("principal", principal), LUNA_LOG_STR("key_id", key_id),
              LUNA_LOG_BOOL("revoked_previous", revoke_previous),
              LUNA_LOG_STR("by", a->principal));
    luna_http_reply_json(req, 201, resp);
    wipe_member(resp, "key_file");
done:
    luna_wipe(sk, sizeof(sk));
    luna_wipe(key_file, sizeof(key_file));
    json_decref(resp);
    json_decref(body);
}

static void handle_client_key_list(luna_http_request *req, iam_service *s, const admin_ctx *a,
                                   const char *principal)
{
    if (!require(req, a, IAM_PERM_IAM_READ))
        return;
    luna_store_rows *rows = NULL;
    json_t *arr = json_array(), *b = NULL;
    luna_err err = LUNA_ERR_NOMEM;
    const luna_store_param p[] = {luna_store_p_text(a->tenant), luna_store_p_text(principal)};
    LUNA_TRY_ENSURE(arr != NULL, LUNA_ERR_NOMEM, done);
    LUNA_TRY(luna_store_query(s->db,
                              "SELECT key_id, public_key, created_at, revoked_at FROM "
                              "iam_client_keys WHERE tenant_id = ?1 AND principal_id = ?2 "
                              "ORDER BY created_at, key_id LIMIT 1000",
                              p, 2, &rows),
             done);
    for (;;) {
        bool has = false;
        const char *id;
        const uint8_t *pk;
        size_t n, pk_len;
        int64_t created = 0;
        char pkb[LUNA_B64URL_ENC_LEN(LUNA_X25519_LEN)];
        LUNA_TRY(luna_store_rows_next(rows, &has), done);
        if (!has)
            break;
        LUNA_TRY(luna_store_col_text(rows, 0, &id, &n), done);
        LUNA_TRY(luna_store_col_blob(rows, 1, &pk, &pk_len), done);
        LUNA_TRY_ENSURE(pk_len == LUNA_X25519_LEN, LUNA_ERR_FORMAT, done);
        LUNA_TRY(luna_b64url_encode(pk, pk_len, pkb, sizeof(pkb)), done);
        LUNA_TRY(luna_store_col_int64(rows, 2, &created), done);
        json_t *o = json_pack("{s:s,s:s,s:I,s:o}", "key_id", id, "public_key", pkb,
                              "created_at", (json_int_t)created, "revoked_at", opt_int(rows, 3));
        LUNA_TRY_ENSURE(o != NULL && json_array_append_new(arr, o) == 0, LUNA_ERR_NOMEM, done);
    }
    b = json_pack("{s:s,s:s,s:O}", "tenant_id", a->tenant, "principal_id", principal,
                  "client_keys", arr);
    LUNA_TRY_ENSURE(b != NULL, LUNA_ERR_NOMEM, done);
    luna_http_reply_json(req, 200, b);
done:
    luna_store_rows_free(rows);
    if (err != LUNA_OK)
        luna_http_reply_err(req, err == LUNA_ERR_NOMEM ? err : LUNA_ERR_STORAGE);
    json_decref(b);
    json_decref(arr);
}

/* ====================================================================== */
/* admin: dispatch of /v1/iam/tenants/<tenant>/...                         */
/* ====================================================================== */

#define TENANTS_PREFIX "/v1/iam/tenants/"

static bool is(const char *method, const char *m)
{
    return strcmp(method, m) == 0;
}

static void handle_tenant_tree(luna_http_request *req, void *arg)
{
    iam_service *s = arg;
    const char *path = luna_http_request_path(req);
    const char *method = luna_http_request_method(req);
    iam_path ps;
    admin_ctx a;
    if (strncmp(path, TENANTS_PREFIX, strlen(TENANTS_PREFIX)) != 0 ||
        iam_path_parse(path + strlen(TENANTS_PREFIX), &ps) != LUNA_OK) {
        reply_json_error(req, 404, "not_found", "no such resource", NULL);
        return;
    }
    if (!admin_auth(s, req, &a))
        return;
    /* The tenant is the token's; a path naming another one stops here. */
    if (strcmp(ps.seg[0], a.tenant) != 0) {
        LUNA_LOGF(LUNA_LOG_WARN, COMPONENT, "cross-tenant request refused",
                  LUNA_LOG_STR("tenant", a.tenant), LUNA_LOG_STR("principal", a.principal),
                  LUNA_LOG_STR("request_id", luna_http_request_id(req)));
        reply_json_error(req, 403, "cross_tenant", "a principal acts only in its own tenant",
                         NULL);
        return;
    }
    const char *p = ps.n >= 3 ? ps.seg[2] : NULL;
    bool principals = ps.n >= 2 && strcmp(ps.seg[1], "principals") == 0;
    if (ps.n == 1 && is(method, "GET")) {
        handle_tenant_get(req, s, &a);
    } else if (ps.n == 2 && strcmp(ps.seg[1], "anonymous") == 0 && is(method, "PUT")) {
        handle_anonymous_set(req, s, &a);
    } else if (ps.n == 2 && principals && is(method, "GET")) {
        handle_principal_list(req, s, &a);
    } else if (ps.n == 2 && principals && is(method, "POST")) {
        handle_principal_create(req, s, &a);
    } else if (ps.n == 3 && principals && is(method, "GET")) {
        handle_principal_get(req, s, &a, p);
    } else if (ps.n == 3 && principals && is(method, "DELETE")) {
        handle_principal_disable(req, s, &a, p);
    } else if (ps.n == 4 && principals && strcmp(ps.seg[3], "roles") == 0 && is(method, "PUT")) {
        handle_roles_set(req, s, &a, p);
    } else if (ps.n == 4 && principals && strcmp(ps.seg[3], "api-keys") == 0 &&
               is(method, "POST")) {
        handle_apikey_create(req, s, &a, p);
    } else if (ps.n == 4 && principals && strcmp(ps.seg[3], "api-keys") == 0 &&
               is(method, "GET")) {
        handle_apikey_list(req, s, &a, p);
    } else if (ps.n == 5 && principals && strcmp(ps.seg[3], "api-keys") == 0 &&
               is(method, "DELETE")) {
        revoke(req, s, &a, p, ps.seg[4], false);
    } else if (ps.n == 4 && principals && strcmp(ps.seg[3], "client-keys") == 0 &&
               is(method, "POST")) {
        handle_client_key_create(req, s, &a, p);
    } else if (ps.n == 4 && principals && strcmp(ps.seg[3], "client-keys") == 0 &&
               is(method, "GET")) {
        handle_client_key_list(req, s, &a, p);
    } else if (ps.n == 5 && principals && strcmp(ps.seg[3], "client-keys") == 0 &&
               is(method, "DELETE")) {
        revoke(req, s, &a, p, ps.seg[4], true);
    } else {
        reply_json_error(req, 404, "not_found", "no such resource or method", NULL);
    }
}

/* ====================================================================== */
/* admin: signing key rotation                                             */
/* ====================================================================== */

static void handle_rotate(luna_http_request *req, void *arg)
{
    iam_service *s = arg;
    admin_ctx a;
    if (!admin_auth(s, req, &a) || !require(req, &a, IAM_PERM_PLATFORM_ADMIN))
        return;
    char kid[IAM_KID_MAX + 1];
    int64_t now = now_sec();
    luna_err err = iam_signing_rotate(s->db, s->master, now, s->set.publish_delay,
                                      s->set.token_ttl, s->set.skew, kid);
    if (err == LUNA_OK)
        err = iam_keyring_refresh(&s->ring, s->db, s->master, now);
    if (err == LUNA_ERR_CONFLICT) {
        reply_json_error(req, 409, "too_many_keys", "too many signing keys are live", NULL);
        return;
    }
    if (err != LUNA_OK) {
        luna_http_reply_err(req, err == LUNA_ERR_UNAVAILABLE ? err : LUNA_ERR_STORAGE);
        return;
    }
    LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "signing key rotated", LUNA_LOG_STR("kid", kid),
              LUNA_LOG_STR("by", a.principal));
    json_t *b = json_pack("{s:s,s:I}", "kid", kid, "activate_at",
                          (json_int_t)(now + s->set.publish_delay));
    if (b == NULL) {
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        return;
    }
    luna_http_reply_json(req, 201, b);
    json_decref(b);
}

/* ====================================================================== */
/* life cycle                                                              */
/* ====================================================================== */

static void on_refresh(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    iam_service *s = arg;
    luna_err err = iam_keyring_refresh(&s->ring, s->db, s->master, now_sec());
    if (err != LUNA_OK)
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "signing key refresh failed",
                  LUNA_LOG_ERR("err", err));
}

luna_err iam_service_new(struct event_base *base, luna_store *db, luna_secret *master,
                         const iam_settings *set, iam_service **out)
{
    if (out != NULL)
        *out = NULL;
    if (base == NULL || db == NULL || master == NULL || set == NULL || out == NULL ||
        set->token_ttl <= 0 || set->skew < 0 || set->publish_delay < 0 ||
        set->refresh_sec <= 0 || set->issuer == NULL || set->audience == NULL) {
        luna_store_close(db);
        luna_secret_free(master);
        return LUNA_ERR_INVALID_ARG;
    }
    luna_err err = LUNA_OK;
    iam_service *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        luna_store_close(db);
        luna_secret_free(master);
        return LUNA_ERR_NOMEM;
    }
    s->base = base;
    s->db = db;
    s->master = master;
    s->set = *set;
    LUNA_TRY(luna_secret_new(IAM_PEPPER_LEN, &s->pepper), fail);
    LUNA_TRY(iam_master_derive(master, IAM_PEPPER_INFO, luna_secret_data(s->pepper),
                               IAM_PEPPER_LEN),
             fail);
    int64_t now = now_sec();
    LUNA_TRY(iam_keyring_refresh(&s->ring, db, master, now), fail);
    if (iam_keyring_current(&s->ring, now) == NULL && s->ring.n == 0) {
        LUNA_TRY(iam_signing_rotate(db, master, now, set->publish_delay, set->token_ttl,
                                    set->skew, NULL),
                 fail);
        LUNA_TRY(iam_keyring_refresh(&s->ring, db, master, now), fail);
    }
    s->refresh_ev = event_new(base, -1, EV_PERSIST, on_refresh, s);
    LUNA_TRY_ENSURE(s->refresh_ev != NULL, LUNA_ERR_NOMEM, fail);
    struct timeval tv = {(time_t)set->refresh_sec, 0};
    LUNA_TRY_ENSURE(event_add(s->refresh_ev, &tv) == 0, LUNA_ERR_INTERNAL, fail);
    *out = s;
    return LUNA_OK;
fail:
    iam_service_free(s);
    return err;
}

bool iam_service_ready(void *arg)
{
    iam_service *s = arg;
    return s != NULL && iam_keyring_current(&s->ring, now_sec()) != NULL;
}

void iam_service_free(iam_service *s)
{
    if (s == NULL)
        return;
    if (s->refresh_ev != NULL)
        event_free(s->refresh_ev);
    iam_keyring_clear(&s->ring);
    luna_secret_free(s->pepper);
    luna_secret_free(s->master);
    luna_store_close(s->db);
    free(s);
}

luna_err iam_service_routes(iam_service *s, struct luna_http_server *srv,
                            const iam_route_callers *c)
{
    if (s == NULL || srv == NULL || c == NULL)
        return LUNA_ERR_INVALID_ARG;
    const luna_http_route routes[] = {
        {LUNA_HTTP_POST, "/v1/iam/authenticate", c->authenticate.list, c->authenticate.n,
         "application/json", handle_authenticate, s},
        {LUNA_HTTP_POST, "/v1/iam/authorize", c->authorize.list, c->authorize.n,
         "application/json", handle_authorize, s},
        {LUNA_HTTP_GET, "/v1/iam/jwks", c->jwks.list, c->jwks.n, NULL, handle_jwks, s},
        {LUNA_HTTP_POST, "/v1/iam/tenants", c->admin.list, c->admin.n, "application/json",
         handle_tenant_create, s},
        {LUNA_HTTP_GET | LUNA_HTTP_POST | LUNA_HTTP_PUT | LUNA_HTTP_DELETE, TENANTS_PREFIX "*",
         c->admin.list, c->admin.n, "application/json", handle_tenant_tree, s},
        {LUNA_HTTP_POST, "/v1/iam/signing-keys/rotate", c->admin.list, c->admin.n,
         "application/json", handle_rotate, s},
        {LUNA_HTTP_GET, IAM_DEVKEYS_PREFIX "*", c->devkeys.list, c->devkeys.n, NULL,
         iam_devkeys_handle, s->db},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        LUNA_GUARD(luna_http_server_add_route(srv, &routes[i]));
    return LUNA_OK;
}
