/*
 * dev_bootstrap.c - the demo tenant's principals and TEEs for `lunal dev
 * up` (docs/operations.md, "Order of up"), through the components' own
 * APIs as the bootstrap administrator.
 *
 * Owns: registering the demo developer (its Ed25519 key) and the demo
 * client application in IAM, the client's X25519 key file and API key
 * (client/client.key, client/api_key, 0600), and tee-1/tee-2 in the KMS
 * registry for tenant and deployment demo.
 * Must never: print or log a key or token (they go to 0600 files or are
 * wiped), or treat a refusal other than "already exists" as success.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "dev_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "luna/bytes.h"
#include "luna/http.h"
#include "luna/secret.h"

#define TOKEN_MAX 4096u
#define APIKEY_MAX 256u
#define AUTH_MAX (TOKEN_MAX + 16u)

static const dev_comp *comp_by_name(const char *name)
{
    for (size_t i = 0; i < dev_n_comps; i++)
        if (strcmp(dev_comps[i].name, name) == 0)
            return &dev_comps[i];
    return NULL;
}

/* Wipes an answer before freeing it: IAM's answers carry keys and tokens. */
static void result_clear(luna_http_result *r)
{
    if (r->body != NULL)
        luna_wipe(r->body, r->body_len);
    luna_http_result_free(r);
}

/* One JSON call as lunal://svc/dev, optionally with a bearer token. */
static luna_err call(const dev_ctx *c, const char *comp_name, const char *method,
                     const char *path, const char *body, const char *token,
                     luna_http_result *out)
{
    const dev_comp *comp = comp_by_name(comp_name);
    LUNA_ENSURE(comp != NULL, LUNA_ERR_INTERNAL);
    dev_tls_paths tp;
    LUNA_GUARD(dev_tls_paths_get(c, &tp));
    luna_http_client_opts o = {
        .tls = {.ca_file = tp.ca, .cert_file = tp.cert, .key_file = tp.key,
                .tee_ca_file = dev_exists(tp.tee_ca) ? tp.tee_ca : NULL},
        .host = "127.0.0.1",
        .port = (uint16_t)dev_port(c, comp),
        .expected_identity = comp->identity,
        .timeout_sec = 10,
    };
    char auth[AUTH_MAX];
    luna_http_header h = {"Authorization", auth};
    size_t nh = 0;
    if (token != NULL) {
        int n = snprintf(auth, sizeof auth, "Bearer %s", token);
        LUNA_ENSURE(n > 0 && (size_t)n < sizeof auth, LUNA_ERR_TOO_LARGE);
        nh = 1;
    }
    memset(out, 0, sizeof *out);
    luna_err err = luna_http_fetch_with(&o, method, path, body != NULL ? "application/json" : NULL,
                                        body, body != NULL ? strlen(body) : 0, nh ? &h : NULL, nh,
                                        out);
    luna_wipe(auth, sizeof auth);
    return err;
}

/* The string member key of a JSON answer, copied into out (wiped by the caller). */
/* Copies member key of the answer, or of its member in when in is not NULL. */
static luna_err answer_member(const luna_http_result *r, const char *in, const char *key,
                              char *out, size_t cap)
{
    json_t *doc = json_loadb((const char *)r->body, r->body_len, JSON_REJECT_DUPLICATES, NULL);
    LUNA_ENSURE(doc != NULL, LUNA_ERR_FORMAT);
    const json_t *obj = in != NULL ? json_object_get(doc, in) : doc;
    const char *s = json_string_value(json_object_get(obj, key));
    luna_err err = LUNA_OK;
    if (s == NULL || strlen(s) == 0)
        err = LUNA_ERR_FORMAT;
    else if (strlen(s) >= cap)
        err = LUNA_ERR_TOO_LARGE;
    else
        memcpy(out, s, strlen(s) + 1);
    /* jansson keeps its own copy: wipe it too, the value may be a secret. */
    if (s != NULL)
        luna_wipe((void *)(uintptr_t)s, strlen(s));
    json_decref(doc);
    return err;
}

static luna_err answer_string(const luna_http_result *r, const char *key, char *out, size_t cap)
{
    return answer_member(r, NULL, key, out, cap);
}

/* Reads a small file (the admin API key) into out, trailing newline cut. */
static luna_err read_small(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "re");
    LUNA_ENSURE(f != NULL, LUNA_ERR_NOT_FOUND);
    size_t n = fread(out, 1, cap - 1, f);
    (void)fclose(f);
    out[n] = '\0';
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
        out[--n] = '\0';
    return n > 0 ? LUNA_OK : LUNA_ERR_FORMAT;
}

/*
 * The bootstrap administrator's tokens for IAM's admin API and for the
 * KMS registry (IAM POST /v1/iam/authenticate, "downstream"): each is
 * accepted by its own service only (docs/protocol.md, token audiences).
 */
static luna_err admin_token(const dev_ctx *c, char *token, char *kms_token, size_t cap,
                            dev_why *why)
{
    char path[DEV_PATH_MAX], key[APIKEY_MAX], *body = NULL;
    luna_http_result r;
    memset(&r, 0, sizeof r);
    luna_err err;
    LUNA_GUARD(dev_path(c, "client/admin_api_key", path, sizeof path));
    LUNA_TRY(read_small(path, key, sizeof key), out);
    json_t *req = json_pack("{s:s,s:s}", "tenant_id", DEV_TENANT, "api_key", key);
    LUNA_TRY_ENSURE(req != NULL, LUNA_ERR_NOMEM, out);
    body = json_dumps(req, JSON_COMPACT);
    json_t *v = json_object_get(req, "api_key");
    luna_wipe((void *)(uintptr_t)json_string_value(v), strlen(json_string_value(v)));
    json_decref(req);
    LUNA_TRY_ENSURE(body != NULL, LUNA_ERR_NOMEM, out);
    LUNA_TRY(call(c, "iam", "POST", "/v1/iam/authenticate", body, NULL, &r), out);
    LUNA_TRY_ENSURE(r.status == 200, LUNA_ERR_PERMISSION, out);
    err = answer_member(&r, "downstream", "iam", token, cap);
    if (err == LUNA_OK)
        err = answer_member(&r, "downstream", "kms", kms_token, cap);
out:
    if (err != LUNA_OK)
        dev_why_set(why, "iam: the demo administrator cannot authenticate (status %d, %s)",
                    r.status, luna_strerror(err));
    if (body != NULL) {
        luna_wipe(body, strlen(body));
        free(body);
    }
    luna_wipe(key, sizeof key);
    result_clear(&r);
    return err;
}

/* POST body to comp:path; 201/200 is done, 409 (it exists) is too. */
static luna_err create_or_exists(const dev_ctx *c, const char *comp, const char *path,
                                 json_t *req, const char *token, const char *what,
                                 luna_http_result *r, dev_why *why)
{
    char *body = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    LUNA_ENSURE(body != NULL, LUNA_ERR_NOMEM);
    luna_err err = call(c, comp, "POST", path, body, token, r);
    free(body);
    if (err == LUNA_OK && r->status != 200 && r->status != 201 && r->status != 409)
        err = LUNA_ERR_PERMISSION;
    if (err != LUNA_OK)
        dev_why_set(why, "%s: registering %s failed (POST %s: status %d, %s); see logs/%s.log",
                    comp, what, path, r->status, luna_strerror(err), comp);
    return err;
}

static luna_err developer_pk_b64(const dev_ctx *c, char *out, size_t cap, char *mr_enclave,
                                 char *mr_signer, size_t mcap)
{
    char p[DEV_PATH_MAX];
    uint8_t pk[32];
    size_t n = 0;
    LUNA_GUARD(dev_path(c, "demo/deployment.json", p, sizeof p));
    json_t *dep = json_load_file(p, JSON_REJECT_DUPLICATES, NULL);
    LUNA_ENSURE(dep != NULL, LUNA_ERR_NOT_FOUND);
    const char *hex = json_string_value(json_object_get(dep, "developer_key"));
    const char *mre = json_string_value(json_object_get(dep, "mr_enclave"));
    const char *mrs = json_string_value(json_object_get(dep, "mr_signer"));
    luna_err err = LUNA_ERR_FORMAT;
    if (hex != NULL && mre != NULL && mrs != NULL && strlen(mre) < mcap && strlen(mrs) < mcap &&
        luna_hex_decode(hex, strlen(hex), pk, sizeof pk, &n) == LUNA_OK && n == sizeof pk) {
        memcpy(mr_enclave, mre, strlen(mre) + 1);
        memcpy(mr_signer, mrs, strlen(mrs) + 1);
        err = luna_b64url_encode(pk, sizeof pk, out, cap);
    }
    json_decref(dep);
    return err;
}

/* The client application: its X25519 key file and an API key, once. */
static luna_err demo_client(const dev_ctx *c, const char *token, dev_why *why)
{
    char ck[DEV_PATH_MAX], ak[DEV_PATH_MAX], path[256], secret[8192];
    luna_http_result r;
    memset(&r, 0, sizeof r);
    luna_err err = LUNA_OK;
    LUNA_GUARD(dev_path(c, "client/client.key", ck, sizeof ck));
    LUNA_GUARD(dev_path(c, "client/api_key", ak, sizeof ak));
    if (!dev_exists(ck)) {
        LUNA_TRY(create_or_exists(c, "iam", "/v1/iam/tenants/" DEV_TENANT "/principals",
                                  json_pack("{s:s,s:s,s:s}", "principal_id", DEV_CLIENT, "kind",
                                            "client", "display_name", "Demo client"),
                                  token, "the demo client", &r, why),
                 out);
        if (r.status == 409) {
            /* Created by an earlier, interrupted `up`: a new key revokes the old. */
            result_clear(&r);
            LUNA_TRY(create_or_exists(c, "iam",
                                      "/v1/iam/tenants/" DEV_TENANT "/principals/" DEV_CLIENT
                                      "/client-keys",
                                      json_object(), token, "the demo client key", &r, why),
                     out);
        }
        LUNA_TRY(answer_string(&r, "key_file", secret, sizeof secret), out);
        LUNA_TRY(dev_write_file(ck, secret, strlen(secret), 0600), out);
        result_clear(&r);
    }
    if (!dev_exists(ak)) {
        (void)snprintf(path, sizeof path,
                       "/v1/iam/tenants/%s/principals/%s/api-keys", DEV_TENANT, DEV_CLIENT);
        LUNA_TRY(create_or_exists(c, "iam", path, json_object(), token, "the client API key",
                                  &r, why),
                 out);
        LUNA_TRY(answer_string(&r, "api_key", secret, sizeof secret), out);
        size_t n = strlen(secret);
        secret[n] = '\n';
        LUNA_TRY(dev_write_file(ak, secret, n + 1, 0600), out);
    }
out:
    if (err != LUNA_OK && why->msg[0] == '\0')
        dev_why_set(why, "iam: the demo client's keys: %s", luna_strerror(err));
    luna_wipe(secret, sizeof secret);
    result_clear(&r);
    return err;
}

luna_err dev_bootstrap_demo(const dev_ctx *c, dev_why *why)
{
    char token[TOKEN_MAX], kms_token[TOKEN_MAX], pk64[64], mre[160], mrs[160];
    luna_http_result r;
    memset(&r, 0, sizeof r);
    luna_err err;
    LUNA_TRY(developer_pk_b64(c, pk64, sizeof pk64, mre, mrs, sizeof mre), out);
    LUNA_TRY(admin_token(c, token, kms_token, sizeof token, why), out);
    /* The developer whose key signs the demo manifest (its key_id is IAM's). */
    LUNA_TRY(create_or_exists(c, "iam", "/v1/iam/tenants/" DEV_TENANT "/principals",
                              json_pack("{s:s,s:s,s:s,s:s}", "principal_id", DEV_DEVELOPER,
                                        "kind", "developer", "display_name", DEV_DEVELOPER_NAME,
                                        "public_key", pk64),
                              token, "the demo developer", &r, why),
             out);
    result_clear(&r);
    LUNA_TRY(demo_client(c, token, why), out);
    /* The registry must know both TEEs before the TEE host asks to admit them. */
    for (unsigned i = 0; i < DEV_N_TEES; i++) {
        char id[16];
        (void)snprintf(id, sizeof id, "tee-%u", i + 1);
        LUNA_TRY(create_or_exists(c, "kms", "/v1/kms/tees",
                                  json_pack("{s:s,s:[s],s:s,s:s,s:s,s:s}", "tee_id", id,
                                            "tenants", DEV_TENANT, "deployment_id",
                                            DEV_DEPLOYMENT, "tee_type", "sim", "mr_enclave", mre,
                                            "mr_signer", mrs),
                                  kms_token, id, &r, why),
                 out);
        result_clear(&r);
    }
out:
    if (err != LUNA_OK && why->msg[0] == '\0')
        dev_why_set(why, "demo bootstrap: %s", luna_strerror(err));
    luna_wipe(token, sizeof token);
    luna_wipe(kms_token, sizeof kms_token);
    result_clear(&r);
    return err;
}
