/*
 * e2e.kms_deployments - runtime deployment registration (DESIGN.md 3a)
 * against the real luna-iam and the real luna-kms: IAM's developer-key
 * lookup (allow-list, answer, 404, revoked), and the KMS's
 * POST /v1/kms/deployments, which fetches the developer key from IAM over
 * its own mTLS client and verifies the manifest itself: registration,
 * idempotence, versions, a TEE of the registered deployment activated
 * with the registered references (and refused with another measurement),
 * and every refusal (tampered, forged kid, unknown key, revoked key,
 * wrong caller, configured name, audit down); and a database insider's
 * edit of a stored row (HSM row MAC): refused for every TEE, logged and
 * audited as deployment_row_tampered, not repaired by re-registration.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "iam_harness.h"
#include "kms_harness.h"
#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/manifest.h"
#include "luna/store.h"
#include "luna_test.h"

#define DEP "regapp"

typedef struct dev {
    uint8_t seed[32], pk[32];
    char key_id[LUNA_MANIFEST_KEY_ID_LEN + 1];
} dev;

typedef struct world {
    iamh iam;
    kmsh kms;
    char *admin_token;
    dev d1;  /* enrolled as acme/dev1 */
    dev d2;  /* enrolled as acme/dev2, disabled later */
    dev out; /* never enrolled */
} world;

static void dev_new(dev *d)
{
    assert_luna_ok(luna_ed25519_keygen(d->seed, d->pk));
    assert_luna_ok(luna_manifest_key_id(d->pk, d->key_id));
}

static void enroll(world *w, const char *principal, const dev *d)
{
    char b64[64], body[512];
    iamh_resp r;
    assert_luna_ok(luna_b64url_encode(d->pk, 32, b64, sizeof(b64)));
    snprintf(body, sizeof(body),
             "{\"principal_id\":\"%s\",\"kind\":\"developer\",\"display_name\":\"Dev %s\","
             "\"public_key\":\"%s\"}",
             principal, principal, b64);
    iamh_call(&w->iam, "gateway", "POST", "/v1/iam/tenants/acme/principals", w->admin_token,
              body, &r);
    assert_int_equal(201, r.status);
    iamh_resp_free(&r);
}

static int setup(void **state)
{
    world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    iamh_start(&w->iam, 300, 0);
    w->admin_token = iamh_token(&w->iam, "acme", w->iam.admin_key);
    assert_non_null(w->admin_token);
    dev_new(&w->d1);
    dev_new(&w->d2);
    dev_new(&w->out);
    enroll(w, "dev1", &w->d1);
    enroll(w, "dev2", &w->d2);
    /* The KMS lives in its own CA folder; it reaches IAM with a KMS
       certificate of IAM's platform CA (kms.iam.ca/cert/key). */
    char extra[2048], crt[HTU_PATH_MAX], key[HTU_PATH_MAX];
    htu_path(&w->iam.env, "kms", ".crt", crt, sizeof(crt));
    htu_path(&w->iam.env, "kms", ".key", key, sizeof(key));
    snprintf(extra, sizeof(extra),
             ",\"iam\":{\"host\":\"127.0.0.1\",\"port\":%u,\"identity\":\"lunal://svc/iam\","
             "\"ca\":\"%s\",\"cert\":\"%s\",\"key\":\"%s\"}",
             (unsigned)w->iam.srv.port, w->iam.env.ca_crt, crt, key);
    kmsh_setup(&w->kms, extra);
    kmsh_start(&w->kms);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    int rc = kmsh_stop(&w->kms, SIGTERM);
    kmsh_teardown(&w->kms);
    int irc = iamh_stop(&w->iam);
    free(w->admin_token);
    free(w);
    assert_int_equal(0, rc);
    assert_int_equal(0, irc);
    return 0;
}

static void manifest_init(luna_manifest *m, const char *name, const char *version, uint8_t mr)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "%s", name);
    snprintf(m->version, sizeof(m->version), "%s", version);
    snprintf(m->jobs[0], sizeof(m->jobs[0]), "summarize");
    m->n_jobs = 1;
    memset(m->build_hash, 0xb1, sizeof(m->build_hash));
    memset(m->mr_enclave, mr, 32);
    m->mr_enclave_len = 32;
    snprintf(m->developer_id, sizeof(m->developer_id), "dev1");
}

static char *sign(const luna_manifest *m, const dev *d)
{
    char *jws = NULL;
    assert_luna_ok(luna_manifest_sign(m, d->seed, &jws, NULL));
    return jws;
}

/* POST /v1/kms/deployments as cert; returns the status. */
static int post(world *w, const char *cert, const char *jws, kmsh_resp *r)
{
    char *body = NULL;
    assert_true(asprintf(&body, "{\"manifest\":\"%s\"}", jws) > 0);
    assert_int_equal(0, kmsh_call(&w->kms, cert, "POST", "/v1/kms/deployments", NULL, body, r));
    free(body);
    return r->status;
}

static void expect(world *w, const char *jws, int status, const char *code)
{
    kmsh_resp r;
    int st = post(w, "attestation", jws, &r);
    if (st != status || (code != NULL && strcmp(code, r.code) != 0))
        fail_msg("expected %d %s, got %d %s", status, code != NULL ? code : "", st, r.code);
    kmsh_resp_free(&r);
}

/* ---- helpers to build forged JWS strings ---- */

static char *b64s(const void *p, size_t n)
{
    size_t cap = LUNA_B64URL_ENC_LEN(n);
    char *o = malloc(cap);
    assert_non_null(o);
    assert_luna_ok(luna_b64url_encode(p, n, o, cap));
    return o;
}

/* Decodes part i (0..2) of jws into a NUL-terminated malloc'd buffer. */
static char *part(const char *jws, int i, size_t *len)
{
    const char *s = jws;
    for (int k = 0; k < i; k++)
        s = strchr(s, '.') + 1;
    const char *e = strchr(s, '.');
    size_t n = e != NULL ? (size_t)(e - s) : strlen(s);
    char *o = malloc(n + 1);
    assert_non_null(o);
    assert_luna_ok(luna_b64url_decode(s, n, (uint8_t *)o, n, len));
    o[*len] = '\0';
    return o;
}

/* Replaces every occurrence of from by to (same length) in s. */
static void replace(char *s, const char *from, const char *to)
{
    size_t n = strlen(from);
    assert_int_equal(n, strlen(to));
    for (char *p = strstr(s, from); p != NULL; p = strstr(p + n, from))
        memcpy(p, to, n);
}

static char *assemble(const char *hdr, const char *payload, const uint8_t seed[32],
                      const uint8_t *sig_in)
{
    char *h = b64s(hdr, strlen(hdr)), *p = b64s(payload, strlen(payload));
    char *input = NULL;
    assert_true(asprintf(&input, "%s.%s", h, p) > 0);
    uint8_t sig[64];
    if (sig_in != NULL)
        memcpy(sig, sig_in, 64);
    else
        assert_luna_ok(luna_ed25519_sign(seed, (const uint8_t *)input, strlen(input), sig));
    char *s = b64s(sig, 64), *out = NULL;
    assert_true(asprintf(&out, "%s.%s", input, s) > 0);
    free(h);
    free(p);
    free(s);
    free(input);
    return out;
}

static void hex32(const uint8_t *b, char out[65])
{
    assert_luna_ok(luna_hex_encode(b, 32, out, 65));
}

/* ---- IAM: GET /v1/iam/developer-keys/{key_id} ---- */

static void test_iam_route(void **state)
{
    world *w = *state;
    char path[128], b64[64];
    iamh_resp r;
    snprintf(path, sizeof(path), "/v1/iam/developer-keys/%s", w->d1.key_id);
    iamh_call(&w->iam, "kms", "GET", path, NULL, NULL, &r);
    assert_int_equal(200, r.status);
    assert_luna_ok(luna_b64url_encode(w->d1.pk, 32, b64, sizeof(b64)));
    assert_string_equal(w->d1.key_id, json_string_value(json_object_get(r.body, "key_id")));
    assert_string_equal("acme", json_string_value(json_object_get(r.body, "tenant_id")));
    assert_string_equal("dev1", json_string_value(json_object_get(r.body, "developer_id")));
    assert_string_equal("Dev dev1", json_string_value(json_object_get(r.body, "display_name")));
    assert_string_equal(b64, json_string_value(json_object_get(r.body, "public_key")));
    assert_string_equal("active", json_string_value(json_object_get(r.body, "status")));
    assert_int_equal(6, json_object_size(r.body));
    iamh_resp_free(&r);

    /* Only the attestation service and the KMS may ask. */
    iamh_call(&w->iam, "gateway", "GET", path, NULL, NULL, &r);
    assert_int_equal(403, r.status);
    iamh_resp_free(&r);
    iamh_call(&w->iam, "tee", "GET", path, NULL, NULL, &r);
    assert_int_equal(403, r.status);
    iamh_resp_free(&r);

    snprintf(path, sizeof(path), "/v1/iam/developer-keys/%s", w->out.key_id);
    iamh_call(&w->iam, "kms", "GET", path, NULL, NULL, &r);
    assert_int_equal(404, r.status);
    assert_string_equal("unknown_developer_key", iamh_err_code(&r));
    iamh_resp_free(&r);

    /* Strict ids: upper case, short, trailing junk, another separator. */
    static const char *const bad[] = {
        "AA:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99",
        "aa:bb",
        "aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:",
        "aa-bb-cc-dd-ee-ff-00-11-22-33-44-55-66-77-88-99",
        "aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99/x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(path, sizeof(path), "/v1/iam/developer-keys/%s", bad[i]);
        iamh_call(&w->iam, "kms", "GET", path, NULL, NULL, &r);
        assert_int_equal(400, r.status);
        assert_string_equal("invalid_key_id", iamh_err_code(&r));
        iamh_resp_free(&r);
    }
}

/* ---- KMS: registration and its use ---- */

static void activate_dep(world *w, const char *dep, const char *tee_id,
                         const uint8_t mr_reg[32], const uint8_t mr_ev[32], int want)
{
    kmsh_tee t;
    kmsh_resp r;
    char mr[65], body[1024], path[128];
    kmsh_tee_new(&w->kms, tee_id, &t);
    hex32(mr_reg, mr);
    snprintf(body, sizeof(body),
             "{\"tee_id\":\"%s\",\"tenants\":[\"acme\"],\"deployment_id\":\"%s\","
             "\"tee_type\":\"sim\",\"mr_enclave\":\"%s\"}",
             t.id, dep, mr);
    assert_int_equal(0, kmsh_call(&w->kms, "attestation", "POST", "/v1/kms/tees", NULL, body,
                                  &r));
    assert_int_equal(201, r.status);
    kmsh_resp_free(&r);
    uint8_t nonce[32], ev[LUNA_SIM_EVIDENCE_MAX];
    assert_luna_ok(luna_random(nonce, 32));
    size_t len = kmsh_evidence(&w->kms, &t, nonce, (int64_t)time(NULL), mr_ev, ev, sizeof(ev));
    char *e = b64s(ev, len), *kx = b64s(t.kx_pk, 32), *sg = b64s(t.sign_pk, 32), *big = NULL;
    assert_true(asprintf(&big,
                         "{\"evidence\":\"%s\",\"evidence_type\":\"sim\",\"tee_kx_pk\":\"%s\","
                         "\"tee_sign_pk\":\"%s\"}",
                         e, kx, sg) > 0);
    snprintf(path, sizeof(path), "/v1/kms/tees/%s/activate", t.id);
    assert_int_equal(0, kmsh_call(&w->kms, "attestation", "POST", path, NULL, big, &r));
    if (r.status != want)
        fail_msg("activate %s: %d %s (wanted %d)", tee_id, r.status, r.code, want);
    if (want == 200)
        assert_string_equal("active", json_string_value(json_object_get(r.body, "status")));
    kmsh_resp_free(&r);
    free(big);
    free(e);
    free(kx);
    free(sg);
}

static void activate(world *w, const char *tee_id, const uint8_t mr_reg[32],
                     const uint8_t mr_ev[32], int want)
{
    activate_dep(w, DEP, tee_id, mr_reg, mr_ev, want);
}

static void test_register_and_use(void **state)
{
    world *w = *state;
    luna_manifest m;
    kmsh_resp r;
    uint8_t mr[32], mrs[32];
    char mr_hex[65], mrs_hex[65];
    manifest_init(&m, DEP, "1.2.0", 0x6d);
    memset(mr, 0x6d, 32);
    char *jws = sign(&m, &w->d1);

    /* A TEE of a deployment nobody registered is refused first. */
    assert_luna_ok(luna_manifest_mr_signer(w->d1.pk, mrs));
    memcpy(w->kms.signer, mrs, 32); /* the sim TEE's evidence names this signer */
    activate(w, "tee-early", mr, mr, 403);

    assert_int_equal(201, post(w, "attestation", jws, &r));
    hex32(mr, mr_hex);
    hex32(mrs, mrs_hex);
    assert_string_equal(DEP, json_string_value(json_object_get(r.body, "deployment_id")));
    assert_string_equal("1.2.0", json_string_value(json_object_get(r.body, "version")));
    assert_string_equal(mr_hex, json_string_value(json_object_get(r.body, "mr_enclave")));
    assert_string_equal(mrs_hex, json_string_value(json_object_get(r.body, "mr_signer")));
    assert_string_equal(w->d1.key_id, json_string_value(json_object_get(r.body, "key_id")));
    kmsh_resp_free(&r);
    assert_int_equal(1, kmsh_audit_count(&w->kms, "registered version=1.2.0"));

    /* The same manifest again: idempotent, nothing replaced. */
    assert_int_equal(200, post(w, "attestation", jws, &r));
    kmsh_resp_free(&r);

    /* The KMS's own appraisal uses the registered references. */
    activate(w, "tee-reg", mr, mr, 200);
    uint8_t other[32];
    memset(other, 0x6e, 32);
    activate(w, "tee-wrong", other, other, 403);

    /* Another manifest, equal or lower version: conflict. */
    luna_manifest m2;
    manifest_init(&m2, DEP, "1.2.0", 0x6e);
    char *j2 = sign(&m2, &w->d1);
    expect(w, j2, 409, "deployment_conflict");
    free(j2);
    manifest_init(&m2, DEP, "1.1.9", 0x6e);
    j2 = sign(&m2, &w->d1);
    expect(w, j2, 409, "deployment_conflict");
    free(j2);

    /* A higher version replaces it (audited), and the new reference holds. */
    manifest_init(&m2, DEP, "1.10.0", 0x6e);
    j2 = sign(&m2, &w->d1);
    expect(w, j2, 201, NULL);
    free(j2);
    assert_int_equal(1, kmsh_audit_count(&w->kms, "replaced version=1.10.0"));
    activate(w, "tee-new", other, other, 200);
    activate(w, "tee-old", mr, mr, 403);

    /* A name configured in kms.references cannot be registered. */
    manifest_init(&m2, KMSH_DEPLOYMENT, "9", 0x6d);
    j2 = sign(&m2, &w->d1);
    expect(w, j2, 409, "deployment_conflict");
    free(j2);

    /* Only the attestation service may register. */
    manifest_init(&m2, "other-app", "1", 0x6d);
    j2 = sign(&m2, &w->d1);
    assert_int_equal(403, post(w, "gateway", j2, &r));
    kmsh_resp_free(&r);
    assert_int_equal(403, post(w, "operator", j2, &r));
    kmsh_resp_free(&r);
    free(j2);
    free(jws);
}

static void test_refusals(void **state)
{
    world *w = *state;
    luna_manifest m;
    size_t hl = 0, pl = 0, sl = 0;
    manifest_init(&m, "refused-app", "1", 0x6d);
    char *good = sign(&m, &w->d1);

    /* Tampered payload, signature kept. */
    char *hdr = part(good, 0, &hl), *pay = part(good, 1, &pl), *sig = part(good, 2, &sl);
    assert_int_equal(64, sl);
    char *tp = strdup(pay);
    replace(tp, "\"version\":\"1\"", "\"version\":\"7\"");
    char *tampered = assemble(hdr, tp, NULL, (const uint8_t *)sig);
    expect(w, tampered, 422, "bad_signature");

    /* Signed by a key never enrolled: IAM does not know it. */
    char *unknown = sign(&m, &w->out);
    expect(w, unknown, 404, "unknown_developer_key");

    /* Signed by the unknown key while claiming dev1's key id and signer. */
    size_t oh = 0, op = 0;
    char *oh_s = part(unknown, 0, &oh), *op_s = part(unknown, 1, &op);
    uint8_t s_out[32], s_d1[32];
    char x_out[65], x_d1[65];
    assert_luna_ok(luna_manifest_mr_signer(w->out.pk, s_out));
    assert_luna_ok(luna_manifest_mr_signer(w->d1.pk, s_d1));
    hex32(s_out, x_out);
    hex32(s_d1, x_d1);
    replace(oh_s, w->out.key_id, w->d1.key_id);
    replace(op_s, w->out.key_id, w->d1.key_id);
    replace(op_s, x_out, x_d1);
    char *forged = assemble(oh_s, op_s, w->out.seed, NULL);
    expect(w, forged, 422, "bad_signature");

    /* Not a manifest at all. */
    expect(w, "abc.def.ghi", 400, "bad_manifest");

    /* A revoked developer (principal disabled in IAM). */
    luna_manifest m2;
    manifest_init(&m2, "revoked-app", "1", 0x6d);
    snprintf(m2.developer_id, sizeof(m2.developer_id), "dev2");
    char *j2 = sign(&m2, &w->d2);
    iamh_resp ir;
    iamh_call(&w->iam, "gateway", "DELETE", "/v1/iam/tenants/acme/principals/dev2",
              w->admin_token, NULL, &ir);
    assert_int_equal(200, ir.status);
    iamh_resp_free(&ir);
    char path[128];
    snprintf(path, sizeof(path), "/v1/iam/developer-keys/%s", w->d2.key_id);
    iamh_call(&w->iam, "kms", "GET", path, NULL, NULL, &ir);
    assert_int_equal(200, ir.status);
    assert_string_equal("revoked", json_string_value(json_object_get(ir.body, "status")));
    iamh_resp_free(&ir);
    expect(w, j2, 403, "developer_key_revoked");

    /* None of them was stored: the valid one registers as new (201). */
    expect(w, good, 201, NULL);

    free(j2);
    free(forged);
    free(oh_s);
    free(op_s);
    free(unknown);
    free(tampered);
    free(tp);
    free(hdr);
    free(pay);
    free(sig);
    free(good);
}

static void test_audit_down(void **state)
{
    world *w = *state;
    luna_manifest m;
    char moved[HTU_PATH_MAX + 8];
    manifest_init(&m, "audited-app", "1", 0x6d);
    char *jws = sign(&m, &w->d1);
    /* The audit file becomes a folder: every append fails. */
    snprintf(moved, sizeof(moved), "%s.moved", w->kms.audit);
    assert_int_equal(0, rename(w->kms.audit, moved));
    assert_int_equal(0, mkdir(w->kms.audit, 0700));
    expect(w, jws, 503, "audit_unavailable");
    assert_int_equal(0, rmdir(w->kms.audit));
    assert_int_equal(0, rename(moved, w->kms.audit));
    /* Nothing was stored: the same manifest is new now (201, not 200). */
    expect(w, jws, 201, NULL);
    free(jws);
}

/* ---- a database insider edits a registered deployment's row ---- */

#define TDEP "tamper-app"

/* Runs one statement on the KMS's own database, as an insider would. */
static uint64_t db_exec(world *w, const char *sql, const luna_store_param *p, size_t n)
{
    luna_store *db = NULL;
    uint64_t changed = 0;
    assert_luna_ok(luna_store_open(w->kms.storage_url, NULL, &db));
    assert_luna_ok(luna_store_exec(db, sql, p, n, &changed));
    luna_store_close(db);
    return changed;
}

/* The stored mr_enclave of TDEP (32 bytes expected). */
static void db_mr(world *w, uint8_t out[32])
{
    luna_store *db = NULL;
    luna_store_rows *rows = NULL;
    const luna_store_param p[] = {luna_store_p_text(TDEP)};
    const uint8_t *v = NULL;
    size_t n = 0;
    bool has = false;
    assert_luna_ok(luna_store_open(w->kms.storage_url, NULL, &db));
    assert_luna_ok(luna_store_query(
        db, "SELECT mr_enclave FROM kms_deployments WHERE deployment_id = ?1", p, 1, &rows));
    assert_luna_ok(luna_store_rows_next(rows, &has));
    assert_true(has);
    assert_luna_ok(luna_store_col_blob(rows, 0, &v, &n));
    assert_int_equal(32, n);
    memcpy(out, v, 32);
    luna_store_rows_free(rows);
    luna_store_close(db);
}

static int file_count(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strstr(line, needle) != NULL)
            n++;
    fclose(f);
    return n;
}

static void test_row_tampered(void **state)
{
    world *w = *state;
    luna_manifest m;
    uint8_t mr[32], evil[32], mrs[32], got[32];
    memset(mr, 0x71, 32);
    memset(evil, 0x72, 32);
    assert_luna_ok(luna_manifest_mr_signer(w->d1.pk, mrs));
    memcpy(w->kms.signer, mrs, 32);
    manifest_init(&m, TDEP, "1", 0x71);
    char *jws = sign(&m, &w->d1);
    expect(w, jws, 201, NULL);
    activate_dep(w, TDEP, "tam-ok", mr, mr, 200);
    int logged = file_count(w->kms.log, "deployment_row_tampered");
    int audited = kmsh_audit_count(&w->kms, "deployment.integrity");

    /* The insider points the deployment at a rogue measurement. */
    const luna_store_param ed[] = {luna_store_p_blob(evil, 32), luna_store_p_text(TDEP)};
    assert_int_equal(1, db_exec(w,
                                "UPDATE kms_deployments SET mr_enclave = ?1 "
                                "WHERE deployment_id = ?2",
                                ed, 2));
    /* A TEE measuring the rogue value is refused, and so is the genuine
       one: the row is refused as a whole, not compared column by column. */
    activate_dep(w, TDEP, "tam-evil", evil, evil, 403);
    activate_dep(w, TDEP, "tam-orig", mr, mr, 403);
    assert_true(file_count(w->kms.log, "deployment_row_tampered") >= logged + 2);
    assert_true(kmsh_audit_count(&w->kms, "deployment.integrity") >= audited + 2);
    assert_true(kmsh_audit_count(&w->kms, "\"reason\":\"deployment_row_tampered\"") >= 2);

    /* Re-registering the genuine manifest does not repair the row: its
       tenant and version cannot be believed, and the edit stays as
       evidence until an operator removes it. */
    expect(w, jws, 500, "deployment_row_tampered");
    db_mr(w, got);
    assert_memory_equal(evil, got, 32);
    /* Nor does a higher version of the same developer replace it. */
    luna_manifest m2;
    manifest_init(&m2, TDEP, "2", 0x71);
    char *j2 = sign(&m2, &w->d1);
    expect(w, j2, 500, "deployment_row_tampered");
    activate_dep(w, TDEP, "tam-orig2", mr, mr, 403);

    /* Any other column is covered too: the tenant, put back the measurement. */
    const luna_store_param back[] = {luna_store_p_blob(mr, 32), luna_store_p_text(TDEP)};
    assert_int_equal(1, db_exec(w,
                                "UPDATE kms_deployments SET mr_enclave = ?1, tenant = 'evil' "
                                "WHERE deployment_id = ?2",
                                back, 2));
    activate_dep(w, TDEP, "tam-tenant", mr, mr, 403);
    assert_int_equal(1, db_exec(w,
                                "UPDATE kms_deployments SET tenant = 'acme' "
                                "WHERE deployment_id = ?1",
                                back + 1, 1));
    /* Restored byte for byte, the MAC verifies again. */
    activate_dep(w, TDEP, "tam-restored", mr, mr, 200);

    /* The operator's remedy: remove the row; the manifest registers anew. */
    assert_int_equal(1, db_exec(w, "UPDATE kms_deployments SET version = '9' "
                                   "WHERE deployment_id = ?1", back + 1, 1));
    expect(w, jws, 500, "deployment_row_tampered");
    assert_int_equal(1, db_exec(w, "DELETE FROM kms_deployments WHERE deployment_id = ?1",
                                back + 1, 1));
    expect(w, jws, 201, NULL);
    activate_dep(w, TDEP, "tam-again", mr, mr, 200);

    /* A row without a MAC (as migration 2 left them) is refused until the
       deployment is registered again, which seals it (200, resealed). */
    assert_int_equal(1, db_exec(w, "UPDATE kms_deployments SET mac = NULL "
                                   "WHERE deployment_id = ?1", back + 1, 1));
    activate_dep(w, TDEP, "tam-legacy", mr, mr, 403);
    assert_true(file_count(w->kms.log, "mac_missing") >= 1);
    expect(w, jws, 200, NULL);
    assert_int_equal(1, kmsh_audit_count(&w->kms, "resealed version=1"));
    activate_dep(w, TDEP, "tam-sealed", mr, mr, 200);
    /* And a higher version then replaces it as usual. */
    expect(w, j2, 201, NULL);
    free(j2);
    free(jws);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iam_route),
        cmocka_unit_test(test_register_and_use),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_audit_down),
        cmocka_unit_test(test_row_tampered),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
