/*
 * test_envelope_vectors.c - the project's shipped envelope vectors
 * (tests/data/envelope/{requests,results}.json): deterministic sealing
 * with fixed keys, ephemeral key and outer nonce must reproduce the stored
 * bytes exactly, and the stored bytes must open to the stored plaintext.
 * LUNA_REGEN_VECTORS=1 rewrites the files from the inputs below instead
 * (then review the diff: a change means the wire format changed).
 */
#include "luna_test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/envelope.h"

/* Inputs used when regenerating; the files carry them too. */
typedef struct req_input {
    const char *name, *tenant, *job, *tee_id, *request_id;
    uint8_t client_seed, tee_seed, otk_seed, eph_seed, nonce_seed;
    const char *plaintext;
} req_input;

static const req_input REQS[] = {
    {"basic", "acme", "summarize", "tee-sim-01", "req-7f3a9c", 0x11, 0x22, 0x33, 0x44, 0x55,
     "Summarize: the quarterly numbers are confidential."},
    {"empty-payload", "t", "j", "x", "r", 0x61, 0x62, 0x63, 0x64, 0x65, ""},
    {"max-ids", "tenant-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "job.with:punctuation_and-dashes", "tee-0123456789abcdef", "~!req#$%&'()*+,-./0123456789",
     0x71, 0x72, 0x73, 0x74, 0x75, "{\"prompt\":\"hello\"}"},
};

static void fill(uint8_t *b, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(seed + i * 7);
}

static char *hex(const uint8_t *b, size_t n)
{
    char *s = malloc(2 * n + 1);
    assert_non_null(s);
    assert_luna_ok(luna_hex_encode(b, n, s, 2 * n + 1));
    return s;
}

static void set_hex(json_t *o, const char *k, const uint8_t *b, size_t n)
{
    char *s = hex(b, n);
    json_object_set_new(o, k, json_string(s));
    free(s);
}

static uint8_t *get_hex(json_t *o, const char *k, size_t *n)
{
    json_t *v = json_object_get(o, k);
    assert_true(json_is_string(v));
    return luna_test_unhex(json_string_value(v), n);
}

static const char *get_str(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static char *data_path(const char *file)
{
    const char *src = getenv("LUNA_SOURCE_DIR");
    char *p;
    if (src == NULL || src[0] == '\0')
        src = ".";
    p = malloc(strlen(src) + strlen(file) + 32);
    assert_non_null(p);
    sprintf(p, "%s/tests/data/envelope/%s", src, file);
    return p;
}

static bool regen(void)
{
    const char *r = getenv("LUNA_REGEN_VECTORS");
    return r != NULL && strcmp(r, "1") == 0;
}

/* Seals a request from a vector object (inputs only) into a malloc'd buffer. */
static uint8_t *seal_request_from(json_t *v, size_t *len)
{
    size_t n;
    uint8_t *client_sk = get_hex(v, "client_sk", &n);
    uint8_t *tee_pk = get_hex(v, "tee_pk", &n);
    uint8_t *otk = get_hex(v, "otk", &n);
    uint8_t *eph = get_hex(v, "ephemeral_sk", &n);
    uint8_t *nonce = get_hex(v, "outer_nonce", &n);
    size_t pt_len;
    uint8_t *pt = get_hex(v, "plaintext", &pt_len);
    luna_envelope_seal_params p = {
        .ids = {get_str(v, "tenant"), get_str(v, "job"), get_str(v, "tee_id"),
                get_str(v, "request_id")},
        .client_sk = client_sk, .tee_pk = tee_pk, .otk = otk, .fixed_ephemeral_sk = eph,
        .fixed_outer_nonce = nonce};
    luna_wbuf w;
    assert_luna_ok(luna_envelope_sealed_len(&p.ids, pt_len, len));
    uint8_t *out = malloc(*len);
    assert_non_null(out);
    luna_wbuf_init(&w, out, *len);
    assert_luna_ok(luna_envelope_seal(&p, pt, pt_len, &w));
    assert_int_equal(w.len, *len);
    free(client_sk);
    free(tee_pk);
    free(otk);
    free(eph);
    free(nonce);
    free(pt);
    return out;
}

static json_t *build_request_inputs(const req_input *in)
{
    uint8_t client_sk[32], client_pk[32], tee_sk[32], tee_pk[32], otk[32], eph[32], nonce[12];
    json_t *v = json_object();
    fill(client_sk, 32, in->client_seed);
    fill(tee_sk, 32, in->tee_seed);
    fill(otk, 32, in->otk_seed);
    fill(eph, 32, in->eph_seed);
    fill(nonce, 12, in->nonce_seed);
    assert_luna_ok(luna_x25519_public(client_sk, client_pk));
    assert_luna_ok(luna_x25519_public(tee_sk, tee_pk));
    json_object_set_new(v, "name", json_string(in->name));
    json_object_set_new(v, "tenant", json_string(in->tenant));
    json_object_set_new(v, "job", json_string(in->job));
    json_object_set_new(v, "tee_id", json_string(in->tee_id));
    json_object_set_new(v, "request_id", json_string(in->request_id));
    set_hex(v, "client_sk", client_sk, 32);
    set_hex(v, "client_pk", client_pk, 32);
    set_hex(v, "tee_sk", tee_sk, 32);
    set_hex(v, "tee_pk", tee_pk, 32);
    set_hex(v, "otk", otk, 32);
    set_hex(v, "ephemeral_sk", eph, 32);
    set_hex(v, "outer_nonce", nonce, 12);
    set_hex(v, "plaintext", (const uint8_t *)in->plaintext, strlen(in->plaintext));
    return v;
}

static void test_request_vectors(void **state)
{
    (void)state;
    char *path = data_path("requests.json");
    json_t *root;
    int checked = 0;

    if (regen()) {
        root = json_object();
        json_t *arr = json_array();
        json_object_set_new(root, "format", json_string("lunal double envelope v1 (docs/envelope.md)"));
        for (size_t i = 0; i < sizeof(REQS) / sizeof(REQS[0]); i++) {
            json_t *v = build_request_inputs(&REQS[i]);
            size_t len;
            uint8_t *env = seal_request_from(v, &len);
            set_hex(v, "envelope", env, len);
            free(env);
            json_array_append_new(arr, v);
        }
        json_object_set_new(root, "vectors", arr);
        assert_int_equal(0, json_dump_file(root, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER));
        json_decref(root);
        printf("regenerated %s\n", path);
    }
    json_error_t jerr;
    root = json_load_file(path, 0, &jerr);
    if (root == NULL)
        fail_msg("cannot load %s: %s", path, jerr.text);
    json_t *arr = json_object_get(root, "vectors");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *v = json_array_get(arr, i);
        size_t len, want_len, n, pt_len;
        uint8_t *env = seal_request_from(v, &len);
        uint8_t *want = get_hex(v, "envelope", &want_len);
        assert_int_equal(len, want_len);
        assert_memory_equal(env, want, len);
        /* And the stored bytes open with the TEE's side of the keys. */
        uint8_t *tee_sk = get_hex(v, "tee_sk", &n);
        uint8_t *otk = get_hex(v, "otk", &n);
        uint8_t *client_pk = get_hex(v, "client_pk", &n);
        uint8_t *pt_want = get_hex(v, "plaintext", &pt_len);
        luna_envelope_open_params op = {.tee_id = get_str(v, "tee_id"),
                                        .tenant = get_str(v, "tenant"), .job = get_str(v, "job"),
                                        .request_id = get_str(v, "request_id"), .tee_sk = tee_sk,
                                        .otk = otk, .client_pk = client_pk};
        luna_envelope_header h;
        uint8_t *pt;
        size_t got_len;
        assert_luna_ok(luna_envelope_open(want, want_len, &op, &h, &pt, &got_len));
        assert_int_equal(got_len, pt_len);
        if (pt_len > 0)
            assert_memory_equal(pt, pt_want, pt_len);
        assert_string_equal(h.request_id, get_str(v, "request_id"));
        printf("request vector %-14s: %zu bytes, identical and opens\n", get_str(v, "name"), len);
        checked++;
        free(env);
        free(want);
        free(tee_sk);
        free(otk);
        free(client_pk);
        free(pt_want);
    }
    assert_int_equal(checked, (int)(sizeof(REQS) / sizeof(REQS[0])));
    json_decref(root);
    free(path);
}

static uint8_t *seal_result_from(json_t *v, size_t *len)
{
    size_t n, mlen, dlen;
    uint8_t *tee_sk = get_hex(v, "tee_sk", &n);
    uint8_t *client_pk = get_hex(v, "client_pk", &n);
    uint8_t *otk = get_hex(v, "otk", &n);
    uint8_t *seed = get_hex(v, "sign_seed", &n);
    uint8_t *meas = get_hex(v, "measurement", &mlen);
    uint8_t *eph = get_hex(v, "ephemeral_sk", &n);
    uint8_t *nonce = get_hex(v, "outer_nonce", &n);
    uint8_t *data = get_hex(v, "result", &dlen);
    luna_result_seal_params p = {
        .ids = {get_str(v, "tenant"), get_str(v, "job"), get_str(v, "tee_id"),
                get_str(v, "request_id")},
        .tee_sk = tee_sk, .client_pk = client_pk, .otk = otk, .sign_seed = seed,
        .measurement = meas, .measurement_len = mlen, .fixed_ephemeral_sk = eph,
        .fixed_outer_nonce = nonce};
    luna_wbuf w;
    assert_luna_ok(luna_result_sealed_len(&p.ids, mlen, dlen, len));
    uint8_t *out = malloc(*len);
    assert_non_null(out);
    luna_wbuf_init(&w, out, *len);
    assert_luna_ok(luna_result_seal(&p, data, dlen, &w));
    assert_int_equal(w.len, *len);
    free(tee_sk);
    free(client_pk);
    free(otk);
    free(seed);
    free(meas);
    free(eph);
    free(nonce);
    free(data);
    return out;
}

static void test_result_vectors(void **state)
{
    (void)state;
    char *path = data_path("results.json");
    json_t *root;
    int checked = 0;

    if (regen()) {
        /* Answers the "basic" request above. */
        json_t *v = build_request_inputs(&REQS[0]);
        uint8_t seed[32], spk[32], meas[48], eph[32], nonce[12];
        const char *res = "Summary: revenue up, costs flat.";
        fill(seed, 32, 0x81);
        fill(meas, 48, 0x91);
        fill(eph, 32, 0xa1);
        fill(nonce, 12, 0xb1);
        assert_luna_ok(luna_ed25519_public(seed, spk));
        json_object_del(v, "plaintext");
        json_object_set_new(v, "name", json_string("basic-result"));
        set_hex(v, "sign_seed", seed, 32);
        set_hex(v, "sign_pk", spk, 32);
        set_hex(v, "measurement", meas, sizeof(meas));
        set_hex(v, "ephemeral_sk", eph, 32);
        set_hex(v, "outer_nonce", nonce, 12);
        set_hex(v, "result", (const uint8_t *)res, strlen(res));
        size_t len;
        uint8_t *env = seal_result_from(v, &len);
        set_hex(v, "envelope", env, len);
        free(env);
        root = json_object();
        json_object_set_new(root, "format", json_string("lunal result envelope v1 (docs/envelope.md)"));
        json_t *arr = json_array();
        json_array_append_new(arr, v);
        json_object_set_new(root, "vectors", arr);
        assert_int_equal(0, json_dump_file(root, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER));
        json_decref(root);
    }
    json_error_t jerr;
    root = json_load_file(path, 0, &jerr);
    if (root == NULL)
        fail_msg("cannot load %s: %s", path, jerr.text);
    json_t *arr = json_object_get(root, "vectors");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *v = json_array_get(arr, i);
        size_t len, want_len, n, dlen, mlen;
        uint8_t *env = seal_result_from(v, &len);
        uint8_t *want = get_hex(v, "envelope", &want_len);
        assert_int_equal(len, want_len);
        assert_memory_equal(env, want, len);
        uint8_t *client_sk = get_hex(v, "client_sk", &n);
        uint8_t *tee_pk = get_hex(v, "tee_pk", &n);
        uint8_t *spk = get_hex(v, "sign_pk", &n);
        uint8_t *otk = get_hex(v, "otk", &n);
        uint8_t *meas = get_hex(v, "measurement", &mlen);
        uint8_t *data_want = get_hex(v, "result", &dlen);
        luna_result_open_params p = {
            .expected = {get_str(v, "tenant"), get_str(v, "job"), get_str(v, "tee_id"),
                         get_str(v, "request_id")},
            .client_sk = client_sk, .tee_pk = tee_pk, .tee_sign_pk = spk, .otk = otk,
            .expected_measurement = meas, .expected_measurement_len = mlen};
        luna_receipt rc;
        uint8_t *data;
        size_t got;
        assert_luna_ok(luna_result_open(want, want_len, &p, &rc, &data, &got));
        assert_int_equal(got, dlen);
        assert_memory_equal(data, data_want, dlen);
        printf("result vector %-14s: %zu bytes, identical and opens\n", get_str(v, "name"), len);
        checked++;
        free(env);
        free(want);
        free(client_sk);
        free(tee_pk);
        free(spk);
        free(otk);
        free(meas);
        free(data_want);
    }
    assert_int_equal(checked, 1);
    json_decref(root);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_vectors),
        cmocka_unit_test(test_result_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
