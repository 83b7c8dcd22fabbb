/*
 * The audit log service end to end: the real luna-audit process, mTLS on
 * loopback, SQLite in a temp folder, certificates from the real luna-ca.
 *  - appends answer 201 with the index and the leaf hash of the canonical
 *    entry, component and time set by the log;
 *  - the checkpoint opens with the log's vkey (C2SP note), every entry's
 *    inclusion proof and a consistency proof between two checkpoints
 *    verify; consistency from 0, index >= size, sizes past the tree refused;
 *  - identifiers with newline, NUL or JSON metacharacters, writer-set
 *    component/time, unknown fields: 400; a non-writer identity: 403;
 *  - tenant A's token reads only A's entries; asking for B is 403; no or
 *    foreign token 401; auditor + platform-admin sees all; pagination;
 *  - tokens shaped like luna-iam's: wrong iss or aud, no aud, anonymous,
 *    platform-admin alone, made-up roles: refused; the issuer and audience
 *    are required config;
 *  - IAM signing-key rotation: a new kid is picked up from the JWKS file
 *    at once, and from IAM (GET /v1/iam/jwks over mTLS) by the periodic
 *    and the unknown-kid refresh, which is rate-limited;
 *  - a checkpoint key file owned by another user: refused at start;
 *  - an entry rewritten in the database: the service refuses to start
 *    (deep verify), and with the deep verify off the verifier that kept a
 *    checkpoint detects it; the tail truncated: refused at start; the tail
 *    and head rolled back together: the verifier sees the log shrink.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit_test_util.h"
#include "luna/audit_client.h"
#include "luna/audit_entry.h"
#include "luna/bytes.h"
#include "luna/merkle.h"
#include "luna/store.h"
#include "luna_test.h"

#define H LUNA_MERKLE_HASH_LEN

static json_t *body_json(const luna_http_result *r)
{
    json_error_t jerr;
    json_t *o = json_loadb((const char *)r->body, r->body_len, 0, &jerr);
    assert_non_null(o);
    return o;
}

/* Posts one entry as kms; returns its index and leaf hash. */
static uint64_t post_entry(atu_env *e, const char *tenant, const char *rid, uint8_t leaf[H])
{
    char body[1024];
    atu_entry_json(body, sizeof(body), tenant, rid);
    luna_http_result r;
    assert_int_equal(201, atu_fetch(e, "kms", "POST", "/v1/audit/entries", body, &r));
    json_t *o = body_json(&r);
    uint64_t idx = (uint64_t)json_integer_value(json_object_get(o, "index"));
    const char *entry = json_string_value(json_object_get(o, "entry"));
    assert_non_null(entry);
    /* The log set component (our identity) and time; the rest is ours. */
    luna_audit_entry got;
    assert_luna_ok(luna_audit_entry_decode((const uint8_t *)entry, strlen(entry), &got));
    assert_string_equal("lunal://svc/kms", got.component);
    assert_string_equal(rid, got.request_id);
    assert_string_equal(tenant, got.tenant);
    assert_true(got.time_ms > 1600000000000);
    uint8_t h[H];
    assert_luna_ok(luna_merkle_leaf_hash(entry, strlen(entry), h));
    char hex[2 * H + 1];
    assert_luna_ok(luna_hex_encode(h, H, hex, sizeof(hex)));
    assert_string_equal(hex, json_string_value(json_object_get(o, "leaf_hash")));
    if (leaf != NULL)
        memcpy(leaf, h, H);
    json_decref(o);
    luna_http_result_free(&r);
    return idx;
}

static luna_err fetch_proof(atu_env *e, const char *path, int *status, luna_merkle_proof *p)
{
    luna_http_result r;
    *status = atu_fetch(e, "gateway", "GET", path, NULL, &r);
    luna_merkle_proof_init(p);
    luna_err err = LUNA_OK;
    if (*status == 200) {
        json_t *o = body_json(&r);
        const json_t *arr = json_object_get(o, "proof");
        for (size_t i = 0; i < json_array_size(arr) && err == LUNA_OK; i++) {
            uint8_t h[H];
            size_t n;
            const char *s = json_string_value(json_array_get(arr, i));
            err = luna_hex_decode(s, strlen(s), h, sizeof(h), &n);
            if (err == LUNA_OK)
                err = luna_merkle_proof_add(p, h, n);
        }
        json_decref(o);
    }
    luna_http_result_free(&r);
    return err;
}

static void test_append_checkpoint_and_proofs(void **state)
{
    (void)state;
    atu_env e;
    atu_setup(&e, NULL);
    atu_start(&e);
    enum { N1 = 21, N2 = 34 };
    uint8_t leaves[N2][H];
    for (unsigned i = 0; i < N1; i++) {
        char rid[32];
        snprintf(rid, sizeof(rid), "req-%u", i);
        assert_int_equal(i, post_entry(&e, "acme", rid, leaves[i]));
    }
    atu_checkpoint c1;
    atu_checkpoint_get(&e, &c1);
    assert_int_equal(N1, c1.size);
    /* The checkpoint's first line is the origin, as C2SP has it. */
    assert_memory_equal(ATU_ORIGIN "\n21\n", c1.note, strlen(ATU_ORIGIN) + 4);
    for (unsigned i = 0; i < N1; i++) {
        char path[96];
        snprintf(path, sizeof(path), "/v1/audit/proof/inclusion?index=%u&size=%u", i, (unsigned)N1);
        int st;
        luna_merkle_proof p;
        assert_luna_ok(fetch_proof(&e, path, &st, &p));
        assert_int_equal(200, st);
        assert_luna_ok(luna_merkle_verify_inclusion(i, N1, leaves[i], H, &p, c1.root, H));
        /* The same proof for another leaf does not verify. */
        assert_luna_err(LUNA_ERR_VERIFY, luna_merkle_verify_inclusion(
                                             i, N1, leaves[(i + 1) % N1], H, &p, c1.root, H));
    }
    for (unsigned i = N1; i < N2; i++) {
        char rid[32];
        snprintf(rid, sizeof(rid), "req-%u", i);
        assert_int_equal(i, post_entry(&e, "acme", rid, leaves[i]));
    }
    atu_checkpoint c2;
    assert_luna_ok(atu_verify_log(&e, &c1, &c2));
    assert_int_equal(N2, c2.size);
    int st;
    luna_merkle_proof p;
    assert_luna_ok(fetch_proof(&e, "/v1/audit/proof/consistency?from=21&to=34", &st, &p));
    assert_int_equal(200, st);
    assert_luna_ok(luna_merkle_verify_consistency(N1, N2, c1.root, H, c2.root, H, &p));
    /* Equal sizes: the empty proof. */
    assert_luna_ok(fetch_proof(&e, "/v1/audit/proof/consistency?from=34&to=34", &st, &p));
    assert_int_equal(200, st);
    assert_int_equal(0, p.n);
    /* Refusals: consistency from 0, index >= size, beyond the tree, junk. */
    static const struct {
        const char *path;
        int status;
    } bad[] = {
        {"/v1/audit/proof/consistency?from=0&to=34", 400},
        {"/v1/audit/proof/consistency?from=0&to=0", 400},
        {"/v1/audit/proof/consistency?from=35&to=34", 400},
        {"/v1/audit/proof/consistency?from=1&to=35", 404},
        {"/v1/audit/proof/inclusion?index=34&size=34", 400},
        {"/v1/audit/proof/inclusion?index=0&size=35", 404},
        {"/v1/audit/proof/inclusion?index=01&size=34", 400},
        {"/v1/audit/proof/inclusion?index=-1&size=34", 400},
        {"/v1/audit/proof/inclusion?index=1&size=34&size=33", 400},
        {"/v1/audit/proof/inclusion?index=1", 400},
        {"/v1/audit/proof/inclusion?index=1&size=34&x=1", 400},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_luna_ok(fetch_proof(&e, bad[i].path, &st, &p));
        if (st != bad[i].status)
            fail_msg("%s: got %d, want %d", bad[i].path, st, bad[i].status);
    }
    assert_int_equal(0, atu_stop(&e, SIGTERM));
    atu_teardown(&e);
}

static void test_bad_entries_refused(void **state)
{
    (void)state;
    atu_env e;
    atu_setup(&e, NULL);
    atu_start(&e);
    static const char *const bodies[] = {
        /* newline, NUL, quote, backslash, braces, space in identifiers */
        "{\"actor\":\"a\\nb\",\"operation\":\"x\",\"outcome\":\"success\",\"request_id\":\"r\"}",
        "{\"actor\":\"a\\u0000b\",\"operation\":\"x\",\"outcome\":\"success\",\"request_id\":\"r\"}",
        "{\"actor\":\"a\",\"tenant\":\"t\\\"x\",\"operation\":\"x\",\"outcome\":\"success\","
        "\"request_id\":\"r\"}",
        "{\"actor\":\"a\",\"tee\":\"t\\\\x\",\"operation\":\"x\",\"outcome\":\"success\","
        "\"request_id\":\"r\"}",
        "{\"actor\":\"a\",\"deployment\":\"{}\",\"operation\":\"x\",\"outcome\":\"success\","
        "\"request_id\":\"r\"}",
        "{\"actor\":\"a\",\"objects\":[\"o k\"],\"operation\":\"x\",\"outcome\":\"success\","
        "\"request_id\":\"r\"}",
        "{\"actor\":\"a\",\"objects\":[\"ok\",\"x\\ry\"],\"operation\":\"x\",\"outcome\":\"success\","
        "\"request_id\":\"r\"}",
        "{\"actor\":\"a\",\"operation\":\"Key.Release\",\"outcome\":\"success\",\"request_id\":\"r\"}",
        "{\"actor\":\"a\",\"operation\":\"x\",\"outcome\":\"success\",\"request_id\":\"r:1\"}",
        "{\"actor\":\"a\",\"operation\":\"x\",\"outcome\":\"success\",\"request_id\":\"r\","
        "\"reason\":\"line\\nbreak\"}",
        "{\"actor\":\"a\",\"operation\":\"x\",\"outcome\":\"success\",\"request_id\":\"r\","
        "\"reason\":\"say \\\"hi\\\"\"}",
        "{\"actor\":\"a\",\"operation\":\"x\",\"outcome\":\"maybe\",\"request_id\":\"r\"}",
        /* the log sets these, never the writer */
        "{\"actor\":\"a\",\"operation\":\"x\",\"outcome\":\"success\",\"request_id\":\"r\","
        "\"component\":\"lunal://svc/kms\"}",
        "{\"actor\":\"a\",\"operation\":\"x\",\"outcome\":\"success\",\"request_id\":\"r\","
        "\"time\":1}",
        "{\"actor\":\"a\",\"operation\":\"x\",\"outcome\":\"success\"}",
        "{\"actor\":\"a\",\"operation\":\"x\",\"outcome\":\"success\",\"request_id\":\"r\","
        "\"api_key\":\"sk-live\"}",
        "[1]",
        "{\"actor\":\"a\",\"actor\":\"b\",\"operation\":\"x\",\"outcome\":\"success\","
        "\"request_id\":\"r\"}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        luna_http_result r;
        int st = atu_fetch(&e, "kms", "POST", "/v1/audit/entries", bodies[i], &r);
        if (st != 400)
            fail_msg("body %zu: got %d, want 400", i, st);
        luna_http_result_free(&r);
    }
    /* A TEE is not a writer. */
    char body[1024];
    atu_entry_json(body, sizeof(body), "acme", "r1");
    luna_http_result r;
    assert_int_equal(403, atu_fetch(&e, "tee", "POST", "/v1/audit/entries", body, &r));
    luna_http_result_free(&r);
    /* Nothing was written. */
    atu_checkpoint c;
    atu_checkpoint_get(&e, &c);
    assert_int_equal(0, c.size);
    assert_int_equal(0, atu_stop(&e, SIGTERM));
    atu_teardown(&e);
}

static size_t count_entries(const char *body, const char *tenant, size_t *others)
{
    json_error_t jerr;
    json_t *o = json_loads(body, 0, &jerr);
    assert_non_null(o);
    const json_t *arr = json_object_get(o, "entries");
    assert_true(json_is_array(arr));
    size_t mine = 0;
    *others = 0;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *en = json_object_get(json_array_get(arr, i), "entry");
        const char *t = json_string_value(json_object_get(en, "tenant"));
        assert_non_null(t);
        if (strcmp(t, tenant) == 0)
            mine++;
        else
            (*others)++;
    }
    json_decref(o);
    return mine;
}

static void test_tenant_isolation(void **state)
{
    (void)state;
    atu_env e;
    atu_setup(&e, NULL);
    atu_start(&e);
    for (unsigned i = 0; i < 6; i++) {
        char rid[32];
        snprintf(rid, sizeof(rid), "a-%u", i);
        (void)post_entry(&e, "acme", rid, NULL);
        snprintf(rid, sizeof(rid), "b-%u", i);
        (void)post_entry(&e, "globex", rid, NULL);
    }
    char *ta = atu_token(&e, "acme", "auditor");
    char *tp = atu_token(&e, "ops", ATU_PLATFORM_AUDITOR);
    char *tnone = atu_token(&e, "acme", "developer");
    htu_raw raw;
    size_t others;
    assert_int_equal(200, atu_get_bearer(&e, "gateway", "/v1/audit/entries", ta, &raw));
    assert_int_equal(6, count_entries(htu_raw_body(&raw), "acme", &others));
    assert_int_equal(0, others);
    assert_int_equal(200, atu_get_bearer(&e, "gateway", "/v1/audit/entries?tenant=acme&tee=t1",
                                         ta, &raw));
    assert_int_equal(6, count_entries(htu_raw_body(&raw), "acme", &others));
    assert_int_equal(0, others);
    /* Asking for B with A's token. */
    assert_int_equal(403,
                     atu_get_bearer(&e, "gateway", "/v1/audit/entries?tenant=globex", ta, &raw));
    assert_null(strstr(raw.buf, "b-0"));
    /* No token, a token without the role, a token of another IAM key, junk. */
    assert_int_equal(401, atu_get_bearer(&e, "gateway", "/v1/audit/entries", NULL, &raw));
    assert_int_equal(403, atu_get_bearer(&e, "gateway", "/v1/audit/entries", tnone, &raw));
    luna_jws_signer *rogue = NULL;
    assert_luna_ok(luna_jws_signer_generate(luna_jws_signer_kid(e.iam), &rogue));
    luna_jws_signer *real = e.iam;
    e.iam = rogue;
    char *tr = atu_token(&e, "globex", ATU_PLATFORM_AUDITOR);
    e.iam = real;
    luna_jws_signer_free(rogue);
    assert_int_equal(401, atu_get_bearer(&e, "gateway", "/v1/audit/entries", tr, &raw));
    assert_int_equal(401, atu_get_bearer(&e, "gateway", "/v1/audit/entries", "x.y.z", &raw));
    /* A tenant auditor cannot export the whole log. */
    assert_int_equal(403, atu_get_bearer(&e, "gateway", "/v1/audit/export", ta, &raw));
    /* The platform auditor sees everyone, filters and pages. */
    assert_int_equal(200, atu_get_bearer(&e, "gateway", "/v1/audit/entries", tp, &raw));
    assert_int_equal(6, count_entries(htu_raw_body(&raw), "acme", &others));
    assert_int_equal(6, others);
    assert_int_equal(200, atu_get_bearer(&e, "gateway",
                                         "/v1/audit/entries?tenant=globex&limit=4", tp, &raw));
    assert_int_equal(4, count_entries(htu_raw_body(&raw), "globex", &others));
    assert_int_equal(0, others);
    assert_non_null(strstr(htu_raw_body(&raw), "\"next_cursor\":\"7\""));
    assert_int_equal(200, atu_get_bearer(&e, "gateway",
                                         "/v1/audit/entries?tenant=globex&limit=4&cursor=7", tp,
                                         &raw));
    assert_int_equal(2, count_entries(htu_raw_body(&raw), "globex", &others));
    assert_null(strstr(htu_raw_body(&raw), "next_cursor"));
    assert_int_equal(400, atu_get_bearer(&e, "gateway", "/v1/audit/entries?limit=0", tp, &raw));
    assert_int_equal(400, atu_get_bearer(&e, "gateway", "/v1/audit/entries?tenant=a%0Ab", tp,
                                         &raw));
    free(ta);
    free(tp);
    free(tnone);
    free(tr);
    assert_int_equal(0, atu_stop(&e, SIGTERM));
    atu_teardown(&e);
}

static void db_exec(atu_env *e, const char *sql, const luna_store_param *p, size_t n)
{
    char url[HTU_PATH_MAX + 8];
    snprintf(url, sizeof(url), "sqlite:%s", e->db_path);
    luna_store *s = NULL;
    assert_luna_ok(luna_store_open(url, NULL, &s));
    assert_luna_ok(luna_store_exec(s, sql, p, n, NULL));
    luna_store_close(s);
}

static void test_tamper_detected(void **state)
{
    (void)state;
    atu_env e;
    atu_setup(&e, ",\"deep_verify\":false");
    atu_start(&e);
    for (unsigned i = 0; i < 9; i++) {
        char rid[32];
        snprintf(rid, sizeof(rid), "t-%u", i);
        (void)post_entry(&e, i % 2 ? "acme" : "globex", rid, NULL);
    }
    atu_checkpoint kept;
    assert_luna_ok(atu_verify_log(&e, NULL, &kept));
    assert_int_equal(9, kept.size);
    assert_int_equal(0, atu_stop(&e, SIGTERM));

    /* Rewrite entry 4: acme becomes globex, canonical bytes and hash too. */
    uint8_t leaf[LUNA_AUDIT_ENTRY_MAX];
    size_t len = 0;
    {
        char url[HTU_PATH_MAX + 8];
        snprintf(url, sizeof(url), "sqlite:%s", e.db_path);
        luna_store *s = NULL;
        assert_luna_ok(luna_store_open(url, NULL, &s));
        luna_store_rows *rows = NULL;
        assert_luna_ok(luna_store_query(s, "SELECT leaf FROM audit_entries WHERE idx = 4", NULL,
                                        0, &rows));
        bool has;
        assert_luna_ok(luna_store_rows_next(rows, &has));
        assert_true(has);
        const uint8_t *b;
        assert_luna_ok(luna_store_col_blob(rows, 0, &b, &len));
        memcpy(leaf, b, len);
        luna_store_rows_free(rows);
        luna_store_close(s);
    }
    luna_audit_entry en;
    assert_luna_ok(luna_audit_entry_decode(leaf, len, &en));
    assert_luna_ok(luna_audit_set(en.reason, sizeof(en.reason), "rewritten"));
    en.outcome = LUNA_AUDIT_DENIED;
    assert_luna_ok(luna_audit_entry_encode(&en, leaf, sizeof(leaf), &len));
    uint8_t h[H];
    assert_luna_ok(luna_merkle_leaf_hash(leaf, len, h));
    luna_store_param p[] = {luna_store_p_blob(leaf, len), luna_store_p_blob(h, H)};
    db_exec(&e, "UPDATE audit_entries SET leaf = ?1, leaf_hash = ?2 WHERE idx = 4", p, 2);
    atu_start(&e);
    assert_luna_err(LUNA_ERR_VERIFY, atu_verify_log(&e, &kept, NULL));
    assert_int_equal(0, atu_stop(&e, SIGTERM));

    /* The same database with the deep verify on: the service refuses. */
    {
        char cfg[HTU_PATH_MAX];
        snprintf(cfg, sizeof(cfg), "%s", e.config_path);
        size_t cl = 0;
        uint8_t *text = luna_test_read_file(cfg, &cl);
        char *s = calloc(1, cl + 1);
        memcpy(s, text, cl);
        char *pos = strstr(s, "\"deep_verify\":false");
        assert_non_null(pos);
        memcpy(pos, "\"deep_verify\":true ", strlen("\"deep_verify\":true "));
        FILE *f = fopen(cfg, "w");
        assert_non_null(f);
        fputs(s, f);
        fclose(f);
        free(s);
        free(text);
    }
    assert_false(atu_try_start(&e));
    assert_true(atu_file_contains(e.log_path, "do not reproduce the recorded root", 34));
    atu_teardown(&e);
}

static void test_truncation_detected(void **state)
{
    (void)state;
    atu_env e;
    atu_setup(&e, NULL);
    atu_start(&e);
    for (unsigned i = 0; i < 7; i++) {
        char rid[32];
        snprintf(rid, sizeof(rid), "u-%u", i);
        (void)post_entry(&e, "acme", rid, NULL);
    }
    atu_checkpoint kept, six;
    assert_luna_ok(atu_verify_log(&e, NULL, &kept));
    assert_int_equal(7, kept.size);
    assert_int_equal(0, atu_stop(&e, SIGTERM));

    /* Tail cut, head left: refused at start, and said. */
    db_exec(&e, "DELETE FROM audit_entries WHERE idx = 6", NULL, 0);
    assert_false(atu_try_start(&e));
    assert_true(atu_file_contains(e.log_path, "acknowledged entries are missing", 32));

    /* Head rolled back too (root of the 6 first leaves, from the leaves): the
     * service starts, but a verifier holding size 7 sees the log shrink. */
    {
        char url[HTU_PATH_MAX + 8];
        snprintf(url, sizeof(url), "sqlite:%s", e.db_path);
        luna_store *s = NULL;
        assert_luna_ok(luna_store_open(url, NULL, &s));
        luna_store_rows *rows = NULL;
        assert_luna_ok(luna_store_query(
            s, "SELECT leaf_hash FROM audit_entries WHERE idx < 6 ORDER BY idx", NULL, 0, &rows));
        uint8_t lh[6][H];
        for (int i = 0; i < 6; i++) {
            bool has;
            const uint8_t *b;
            size_t n;
            assert_luna_ok(luna_store_rows_next(rows, &has));
            assert_true(has);
            assert_luna_ok(luna_store_col_blob(rows, 0, &b, &n));
            memcpy(lh[i], b, H);
        }
        luna_store_rows_free(rows);
        luna_store_close(s);
        luna_merkle_mem mem;
        luna_merkle_source src;
        luna_merkle_mem_source(&mem, (const uint8_t(*)[H])lh, 6, &src);
        assert_luna_ok(luna_merkle_root(&src, 6, six.root));
    }
    luna_store_param q[] = {luna_store_p_blob(six.root, H)};
    db_exec(&e, "UPDATE audit_head SET size = 6, root = ?1", q, 1);
    atu_start(&e);
    assert_luna_err(LUNA_ERR_CONFLICT, atu_verify_log(&e, &kept, NULL));
    assert_int_equal(0, atu_stop(&e, SIGTERM));
    atu_teardown(&e);
}

static void make_entry(luna_audit_entry *e, const char *tenant, const char *rid)
{
    memset(e, 0, sizeof(*e));
    assert_luna_ok(luna_audit_set(e->actor, sizeof(e->actor), "lunal://tee/t1"));
    assert_luna_ok(luna_audit_set(e->tenant, sizeof(e->tenant), tenant));
    assert_luna_ok(luna_audit_set(e->operation, sizeof(e->operation), "key.release"));
    assert_luna_ok(luna_audit_set(e->request_id, sizeof(e->request_id), rid));
    assert_luna_ok(luna_audit_set(e->objects[0], sizeof(e->objects[0]), "otk-9"));
    e->n_objects = 1;
    e->outcome = LUNA_AUDIT_SUCCESS;
}

static void test_client_fails_closed(void **state)
{
    (void)state;
    atu_env e;
    atu_setup(&e, NULL);
    atu_start(&e);
    luna_http_client_opts o;
    char paths[3][HTU_PATH_MAX];
    atu_client(&e, "kms", &o, paths);
    luna_audit_entry en;
    make_entry(&en, "acme", "c-1");
    uint64_t idx = 99;
    assert_luna_ok(luna_audit_append_sync(&o, &en, &idx));
    assert_int_equal(0, idx);
    make_entry(&en, "acme", "c-2");
    assert_luna_ok(luna_audit_append_sync(&o, &en, &idx));
    assert_int_equal(1, idx);
    /* Refused before it leaves: a newline in an identifier. */
    make_entry(&en, "ac\nme", "c-3");
    assert_luna_err(LUNA_ERR_FORMAT, luna_audit_append_sync(&o, &en, &idx));
    /* Not a writer. */
    luna_http_client_opts ot;
    char tpaths[3][HTU_PATH_MAX];
    atu_client(&e, "tee", &ot, tpaths);
    make_entry(&en, "acme", "c-4");
    assert_luna_err(LUNA_ERR_PERMISSION, luna_audit_append_sync(&ot, &en, &idx));
    /* A receipt that does not match what was sent is not a success. */
    make_entry(&en, "acme", "c-5");
    en.component[0] = 'x';
    en.component[1] = '\0';
    uint8_t leaf[LUNA_AUDIT_ENTRY_MAX], h[H];
    size_t len;
    luna_audit_entry other = en;
    assert_luna_ok(luna_audit_set(other.tenant, sizeof(other.tenant), "globex"));
    assert_luna_ok(luna_audit_entry_encode(&other, leaf, sizeof(leaf), &len));
    assert_luna_ok(luna_merkle_leaf_hash(leaf, len, h));
    char hex[2 * H + 1];
    assert_luna_ok(luna_hex_encode(h, H, hex, sizeof(hex)));
    json_t *rj = json_pack("{s:i,s:s,s:s%}", "index", 3, "leaf_hash", hex, "entry",
                           (const char *)leaf, len);
    char *body = json_dumps(rj, JSON_COMPACT);
    assert_luna_err(LUNA_ERR_VERIFY,
                    luna_audit_check_receipt(&en, (const uint8_t *)body, strlen(body), &idx));
    assert_luna_ok(luna_audit_check_receipt(&other, (const uint8_t *)body, strlen(body), &idx));
    assert_int_equal(3, idx);
    free(body);
    hex[0] = hex[0] == 'a' ? 'b' : 'a';
    json_object_set_new(rj, "leaf_hash", json_string(hex));
    body = json_dumps(rj, JSON_COMPACT);
    assert_luna_err(LUNA_ERR_VERIFY,
                    luna_audit_check_receipt(&other, (const uint8_t *)body, strlen(body), &idx));
    free(body);
    json_decref(rj);
    /* The log is down: the operation must fail. */
    assert_int_equal(0, atu_stop(&e, SIGTERM));
    make_entry(&en, "acme", "c-6");
    assert_true(luna_audit_append_sync(&o, &en, &idx) != LUNA_OK);
    atu_teardown(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_checkpoint_and_proofs),
        cmocka_unit_test(test_bad_entries_refused),
        cmocka_unit_test(test_tenant_isolation),
        cmocka_unit_test(test_tamper_detected),
        cmocka_unit_test(test_truncation_detected),
        cmocka_unit_test(test_client_fails_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
