/*
 * test_att_deployments.c - the attestation service's registered
 * deployments without peers: version order, the kid of a manifest header,
 * and att_deps_open over a store holding rows written like a registration
 * writes them (a good one is found and listed for its tenant only; one
 * whose manifest was altered, or signed under another developer key, is
 * refused at load and never appraised).
 */
#include "luna_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luna/crypto.h"
#include "luna/manifest.h"
#include "luna/store.h"

#include "att.h"

static void test_version_order(void **state)
{
    (void)state;
    assert_true(att_deps_version_cmp("2", "1") > 0);
    assert_true(att_deps_version_cmp("1", "2") < 0);
    assert_int_equal(0, att_deps_version_cmp("1.2", "1.2"));
    assert_true(att_deps_version_cmp("1.10", "1.9") > 0);
    assert_true(att_deps_version_cmp("1.0.1", "1.0") > 0);
    assert_true(att_deps_version_cmp("1", "1.0") < 0);
    assert_int_equal(0, att_deps_version_cmp("01", "1"));
    assert_true(att_deps_version_cmp("1.b", "1.a") > 0);
    assert_true(att_deps_version_cmp("10", "9") > 0);
    assert_true(att_deps_version_cmp("abc", "abd") < 0);
}

/* A manifest of name/version signed by seed. */
static char *sign(const char *name, const char *version, const uint8_t seed[32])
{
    luna_manifest m;
    char *jws = NULL;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "%s", name);
    snprintf(m.version, sizeof m.version, "%s", version);
    snprintf(m.jobs[0], sizeof m.jobs[0], "sha256");
    m.n_jobs = 1;
    memset(m.build_hash, 0x11, sizeof m.build_hash);
    memset(m.mr_enclave, 0x22, 32);
    m.mr_enclave_len = 32;
    snprintf(m.developer_id, sizeof m.developer_id, "dev1");
    assert_luna_ok(luna_manifest_sign(&m, seed, &jws, NULL));
    return jws;
}

static void test_manifest_kid(void **state)
{
    uint8_t seed[32], pk[32];
    char kid[48], want[48];
    (void)state;
    assert_luna_ok(luna_ed25519_keygen(seed, pk));
    assert_luna_ok(luna_manifest_key_id(pk, want));
    char *jws = sign("d1", "1", seed);
    assert_luna_ok(att_deps_manifest_kid(jws, kid));
    assert_string_equal(want, kid);
    assert_luna_err(LUNA_ERR_FORMAT, att_deps_manifest_kid("no-dot", kid));
    assert_luna_err(LUNA_ERR_FORMAT, att_deps_manifest_kid("e30.e30.e30", kid)); /* "{}" */
    assert_luna_err(LUNA_ERR_FORMAT, att_deps_manifest_kid("!!.a.b", kid));
    free(jws);
}

static void put_row(luna_store *db, const char *id, const char *tenant, const uint8_t pk[32],
                    const char *manifest)
{
    luna_store_param p[9] = {
        luna_store_p_text(id),       luna_store_p_text("1"),
        luna_store_p_text(tenant),   luna_store_p_text("dev1"),
        luna_store_p_text("Dev One"), luna_store_p_blob(pk, 32),
        luna_store_p_text(manifest), luna_store_p_text("t/dev1"),
        luna_store_p_int64(1700000000),
    };
    assert_luna_ok(luna_store_exec(db,
                                   "INSERT INTO att_deployments (deployment_id, version, "
                                   "tenant_id, developer_id, developer_name, public_key, "
                                   "manifest, registered_by, registered_at) VALUES (?1, ?2, ?3, "
                                   "?4, ?5, ?6, ?7, ?8, ?9)",
                                   p, 9, NULL));
}

static size_t count_registered(const json_t *list, const char *id)
{
    const json_t *arr = json_object_get(list, "deployments"), *v;
    size_t i, n = 0;
    json_array_foreach(arr, i, v)
    {
        if (strcmp(json_string_value(json_object_get(v, "source")), "registered") == 0 &&
            (id == NULL || strcmp(json_string_value(json_object_get(v, "deployment_id")), id) == 0))
            n++;
    }
    return n;
}

static void test_load_find_list(void **state)
{
    uint8_t seed[32], pk[32], seed2[32], pk2[32];
    att_settings *s = calloc(1, sizeof *s);
    att_service svc;
    att_deployment d;
    char msg[160];
    (void)state;
    assert_non_null(s);
    memset(&svc, 0, sizeof svc);
    s->allow_sim = true;
    s->max_evidence_age = 300;
    s->n_deployments = 1;
    snprintf(s->deployments[0].id, sizeof s->deployments[0].id, "configured1");
    snprintf(s->deployments[0].version, sizeof s->deployments[0].version, "1");
    snprintf(s->deployments[0].build_hash, sizeof s->deployments[0].build_hash, "sha256:%064d",
             0);
    svc.s = s;
    assert_luna_ok(att_policy_build(s, &svc.verifier, msg, sizeof msg));
    assert_luna_ok(att_db_open("sqlite::memory:", &svc.db));

    assert_luna_ok(luna_ed25519_keygen(seed, pk));
    assert_luna_ok(luna_ed25519_keygen(seed2, pk2));
    char *good = sign("reg1", "1", seed);
    char *other = sign("reg3", "1", seed2);
    char *bad = strdup(good);
    assert_non_null(bad);
    char *last = strrchr(bad, '.') + 5;
    *last = *last == 'A' ? 'B' : 'A'; /* the signature altered */
    put_row(svc.db, "reg1", "t", pk, good);
    put_row(svc.db, "reg2", "t", pk, bad);
    put_row(svc.db, "reg3", "u", pk, other); /* signed by another key than the stored one */

    assert_luna_ok(att_deps_open(&svc, msg, sizeof msg));
    assert_true(att_deps_find(&svc, "reg1", &d));
    assert_string_equal("reg1", d.id);
    assert_string_equal("dev1", d.developer_id);
    assert_string_equal("Dev One", d.developer_name);
    assert_int_equal(0x22, d.mr_enclave[31]);
    assert_false(att_deps_find(&svc, "reg2", &d));
    assert_false(att_deps_find(&svc, "reg3", &d));
    assert_true(att_deps_find(&svc, "configured1", &d));
    assert_false(att_deps_find(&svc, "nothing", &d));

    json_t *l = att_deps_list(&svc, "t");
    assert_non_null(l);
    assert_int_equal(1, count_registered(l, "reg1"));
    assert_int_equal(1, count_registered(l, NULL));
    assert_int_equal(2, json_array_size(json_object_get(l, "deployments"))); /* + configured1 */
    json_decref(l);
    l = att_deps_list(&svc, "u"); /* another tenant: configured ones only */
    assert_non_null(l);
    assert_int_equal(0, count_registered(l, NULL));
    assert_int_equal(1, json_array_size(json_object_get(l, "deployments")));
    json_decref(l);
    l = att_deps_list(&svc, NULL); /* the platform admin */
    assert_int_equal(1, count_registered(l, NULL));
    json_decref(l);

    att_deps_close(&svc);
    luna_store_close(svc.db);
    att_policy_free(svc.verifier);
    free(good);
    free(bad);
    free(other);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_order),
        cmocka_unit_test(test_manifest_kid),
        cmocka_unit_test(test_load_find_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
