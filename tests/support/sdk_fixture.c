/*
 * sdk_fixture.c - the simulated platform, developer and TEE the SDK and
 * CLI tests verify against (sdk_fixture.h).  Test-only: keys here are
 * throwaway.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna_test.h"
#include "sdk_fixture.h"

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(len, fwrite(data, 1, len, f));
    assert_int_equal(0, fclose(f));
    assert_int_equal(0, chmod(path, mode));
}

void sdk_fx_sign_evidence(sdk_fx *fx, uint32_t tcb_level, const uint8_t *measurement)
{
    luna_sim_evidence_params p;

    memset(&p, 0, sizeof p);
    p.tcb_level = tcb_level;
    memcpy(p.measurement, measurement != NULL ? measurement : fx->m.mr_enclave, 32);
    memcpy(p.signer, fx->m.mr_signer, 32);
    memcpy(p.tee_x25519, fx->kx_pk, 32);
    p.has_tee_ed25519 = true;
    memcpy(p.tee_ed25519, fx->sg_pk, 32);
    assert_luna_ok(luna_random(p.nonce, sizeof p.nonce));
    p.timestamp = (int64_t)time(NULL);
    assert_luna_ok(luna_sim_evidence_sign(fx->platform, &p, fx->evidence, sizeof fx->evidence,
                                          &fx->ev_len));
}

void sdk_fx_init(sdk_fx *fx, uint32_t tcb_level)
{
    int64_t now = (int64_t)time(NULL);
    luna_sim_tcb_params tp;
    FILE *f;

    memset(fx, 0, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/luna-sdk-test-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    assert_luna_ok(luna_sim_vendor_create(now - 3600, now + 86400, &fx->vendor));
    assert_luna_ok(luna_sim_platform_create(fx->vendor, LUNA_SIM_SIG_P256, now - 3600,
                                            now + 86400, &fx->platform));
    assert_luna_ok(luna_ed25519_keygen(fx->dev_seed, fx->dev_pk));
    assert_luna_ok(luna_x25519_keygen(fx->kx_sk, fx->kx_pk));
    assert_luna_ok(luna_ed25519_keygen(fx->sg_seed, fx->sg_pk));

    snprintf(fx->m.name, sizeof fx->m.name, "demo");
    snprintf(fx->m.version, sizeof fx->m.version, "1.0.0");
    snprintf(fx->m.jobs[0], sizeof fx->m.jobs[0], "upper");
    snprintf(fx->m.jobs[1], sizeof fx->m.jobs[1], "sha256");
    fx->m.n_jobs = 2;
    assert_luna_ok(luna_random(fx->m.build_hash, sizeof fx->m.build_hash));
    assert_luna_ok(luna_random(fx->m.mr_enclave, 32));
    fx->m.mr_enclave_len = 32;
    snprintf(fx->m.developer_id, sizeof fx->m.developer_id, "dev_demo");
    assert_luna_ok(luna_manifest_sign(&fx->m, fx->dev_seed, &fx->manifest, NULL));
    /* The signed form fixes key_id and mr_signer: read them back. */
    assert_luna_ok(luna_manifest_verify(fx->manifest, strlen(fx->manifest), "dev_demo",
                                        fx->dev_pk, &fx->m));
    sdk_fx_sign_evidence(fx, tcb_level, NULL);

    memset(&tp, 0, sizeof tp);
    tp.current_level = FX_TCB_CURRENT;
    tp.revoked_below = 0;
    tp.issued_at = now - 60;
    tp.next_update = now + 3600;
    assert_luna_ok(luna_sim_tcb_sign(fx->vendor, &tp, fx->tcb, sizeof fx->tcb, &fx->tcb_len));

    snprintf(fx->root_pem, sizeof fx->root_pem, "%s/sim-root.pem", fx->dir);
    f = fopen(fx->root_pem, "w");
    assert_non_null(f);
    assert_int_equal(1, PEM_write_X509(f, luna_sim_vendor_cert(fx->vendor)));
    fclose(f);
    snprintf(fx->tcb_file, sizeof fx->tcb_file, "%s/sim-tcb.bin", fx->dir);
    write_file(fx->tcb_file, fx->tcb, fx->tcb_len, 0644);
    snprintf(fx->manifest_file, sizeof fx->manifest_file, "%s/demo.manifest", fx->dir);
    write_file(fx->manifest_file, fx->manifest, strlen(fx->manifest), 0644);
    snprintf(fx->config, sizeof fx->config, "%s/client.json", fx->dir);
}

void sdk_fx_write_config(sdk_fx *fx, const char *gateway_url, const char *ca_file)
{
    char hex[65];
    json_t *dep, *cfg;
    char *text;

    assert_luna_ok(luna_hex_encode(fx->dev_pk, 32, hex, sizeof hex));
    dep = json_pack("{s:s,s:s,s:s,s:s}", "deployment_id", "demo", "developer_id", "dev_demo",
                    "developer_key", hex, "manifest_file", "demo.manifest");
    cfg = json_pack("{s:s,s:s,s:b,s:s,s:s,s:s,s:[o]}", "tenant_id", "acme", "gateway_url",
                    gateway_url, "development", 1, "sim_root_file", "sim-root.pem",
                    "sim_tcb_file", "sim-tcb.bin", "default_deployment", "demo", "deployments",
                    dep);
    assert_non_null(cfg);
    if (ca_file != NULL)
        json_object_set_new(cfg, "ca_file", json_string(ca_file));
    text = json_dumps(cfg, JSON_INDENT(2));
    assert_non_null(text);
    write_file(fx->config, text, strlen(text), 0644);
    free(text);
    json_decref(cfg);
}

json_t *sdk_fx_answer(const sdk_fx *fx)
{
    char enc[129], sig[65], bh[80], ev[LUNA_B64URL_ENC_LEN(LUNA_SIM_EVIDENCE_MAX)];
    char kx[LUNA_B64URL_ENC_LEN(32)], sg[LUNA_B64URL_ENC_LEN(32)];
    char hex[65];
    json_t *a;

    assert_luna_ok(luna_hex_encode(fx->m.mr_enclave, 32, enc, sizeof enc));
    assert_luna_ok(luna_hex_encode(fx->m.mr_signer, 32, sig, sizeof sig));
    assert_luna_ok(luna_hex_encode(fx->m.build_hash, 32, hex, sizeof hex));
    snprintf(bh, sizeof bh, "sha256:%s", hex);
    assert_luna_ok(luna_b64url_encode(fx->evidence, fx->ev_len, ev, sizeof ev));
    assert_luna_ok(luna_b64url_encode(fx->kx_pk, 32, kx, sizeof kx));
    assert_luna_ok(luna_b64url_encode(fx->sg_pk, 32, sg, sizeof sg));
    a = json_pack("{s:s, s:{s:s,s:s,s:s,s:s,s:s,s:s,s:s, s:{s:s,s:s}, s:{s:s,s:b,s:s},"
                  " s:{s:s,s:s,s:b}, s:{s:s,s:s}}, s:s, s:s}",
                  "status", "verified", "attestation", "id", "att_0001", "timestamp",
                  "2026-01-01T00:00:00Z", "tee_id", "tee-1", "deployment_id", "demo",
                  "build_hash", bh, "evidence_type", "sim", "registry_status", "active",
                  "measurements", "mr_enclave", enc, "mr_signer", sig,
                  "signature_verification", "developer_id", "dev_demo", "signature_valid", 1,
                  "key_id", fx->m.key_id, "platform_verification", "tcb_status", "up_to_date",
                  "qe_identity_status", "valid", "simulated", 1, "tee_keys",
                  "tee_kx_pk", kx, "tee_sign_pk", sg, "evidence", ev, "evidence_type", "sim");
    assert_non_null(a);
    return a;
}

void sdk_fx_free(sdk_fx *fx)
{
    char cmd[300];

    luna_sim_platform_free(fx->platform);
    luna_sim_vendor_free(fx->vendor);
    free(fx->manifest);
    luna_wipe(fx->dev_seed, sizeof fx->dev_seed);
    luna_wipe(fx->kx_sk, sizeof fx->kx_sk);
    luna_wipe(fx->sg_seed, sizeof fx->sg_seed);
    if (strncmp(fx->dir, "/tmp/luna-sdk-test-", 19) == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", fx->dir);
    }
}
