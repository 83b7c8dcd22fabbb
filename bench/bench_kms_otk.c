/*
 * bench_kms_otk - one-time key issue + challenge + release per second with
 * everything production does, called directly on the KMS service code (no
 * HTTP/TLS): IAM token verification, registry rows MAC-checked by the HSM
 * process across the privilege-separation boundary (SoftHSM2), the OTK
 * generated and sealed in the HSM, SQLite commits (WAL, synchronous=FULL),
 * an fsync'ed audit entry per step, the attestation report's signature and
 * the KMS's own verification of fresh sim evidence, HPKE to both sides.
 * The TEE's own work (signing evidence) is measured apart and excluded.
 *
 * Then a breakdown: each building block timed alone in the same run, with
 * how many times one OTK uses it.  Baseline, same run: an HSM round trip
 * (PING) and a one-row SQLite commit, the floors everything else sits on.
 *
 *   bench_kms_otk [otks (default 500)] [dir (default /tmp)]
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "kms.h"
#include "kms_verify.h"
#include "luna/audience.h"
#include "luna/crypto.h"
#include "luna/evidence_sim.h"
#include "luna/hpke.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        luna_err e_ = (x);                                                                         \
        if (e_ != LUNA_OK) {                                                                       \
            fprintf(stderr, "bench_kms_otk: %s failed: %s (line %d)\n", #x, luna_errname(e_),     \
                    __LINE__);                                                                     \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static char g_dir[256];

static void make_token(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "bash '%s/tests/support/softhsm_token.sh' create '%s' bench 1234",
             LUNA_BENCH_SOURCE_DIR, g_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench_kms_otk: cannot create a SoftHSM2 token\n");
        exit(1);
    }
    snprintf(cmd, sizeof(cmd), "%s/softhsm2.conf", g_dir);
    setenv("SOFTHSM2_CONF", cmd, 1);
    if (geteuid() != 0)
        return;
    /* As root, the HSM client runs the HSM process as lunal-hsm
     * (docs/kms-hsm.md): that user must own the token, conf and PIN. */
    if (getpwnam("lunal-hsm") == NULL &&
        system("useradd --system --no-create-home --shell /usr/sbin/nologin lunal-hsm") != 0) {
        fprintf(stderr, "bench_kms_otk: cannot create the lunal-hsm user\n");
        exit(1);
    }
    snprintf(cmd, sizeof(cmd), "chown -R lunal-hsm: '%s'", g_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench_kms_otk: cannot give the token to lunal-hsm\n");
        exit(1);
    }
}

typedef struct fixture {
    kms_svc s;
    luna_sim_vendor *vendor;
    luna_sim_platform *platform;
    luna_jws_signer *iam, *att;
    uint8_t kx_sk[32], kx_pk[32], sg_seed[32], sg_pk[32], mr[32], signer[32];
    json_t *cfg;
} fixture;

static void evidence(fixture *f, const uint8_t nonce[32], uint8_t *out, size_t *len)
{
    luna_sim_evidence_params p;
    memset(&p, 0, sizeof(p));
    p.tcb_level = 5;
    memcpy(p.measurement, f->mr, 32);
    memcpy(p.signer, f->signer, 32);
    memcpy(p.tee_x25519, f->kx_pk, 32);
    p.has_tee_ed25519 = true;
    memcpy(p.tee_ed25519, f->sg_pk, 32);
    memcpy(p.nonce, nonce, 32);
    p.timestamp = (int64_t)time(NULL);
    CHECK(luna_sim_evidence_sign(f->platform, &p, out, LUNA_SIM_EVIDENCE_MAX, len));
}

static void setup(fixture *f)
{
    memset(f, 0, sizeof(*f));
    make_token();
    char path[512], url[600];
    int64_t now = (int64_t)time(NULL);
    luna_hsm_config hc = {.hsm_path = LUNA_BENCH_HSM_BIN,
                          .module_path = "/usr/lib/softhsm/libsofthsm2.so",
                          .token_label = "bench"};
    snprintf(path, sizeof(path), "%s/pin", g_dir);
    hc.pin_file = path;
    CHECK(luna_hsm_client_new(&hc, &f->s.hsm));
    snprintf(url, sizeof(url), "sqlite:%s/kms.db", g_dir);
    CHECK(luna_store_open(url, NULL, &f->s.db));
    CHECK(kms_db_migrate(f->s.db));
    snprintf(path, sizeof(path), "%s/audit.log", g_dir);
    CHECK(kms_audit_open_file(path, &f->s.audit));

    CHECK(luna_sim_vendor_create(now - 3600, now + 86400, &f->vendor));
    CHECK(luna_sim_platform_create(f->vendor, LUNA_SIM_SIG_ED25519, now - 3600, now + 86400,
                                   &f->platform));
    snprintf(path, sizeof(path), "%s/root.pem", g_dir);
    FILE *fp = fopen(path, "w");
    if (fp == NULL || PEM_write_X509(fp, luna_sim_vendor_cert(f->vendor)) != 1)
        exit(1);
    fclose(fp);
    uint8_t tcb[LUNA_SIM_TCB_MAX];
    size_t tcb_len = 0;
    luna_sim_tcb_params tp = {.current_level = 3, .revoked_below = 1, .issued_at = now - 60,
                              .next_update = now + 86400};
    CHECK(luna_sim_tcb_sign(f->vendor, &tp, tcb, sizeof(tcb), &tcb_len));
    char tcb_path[512];
    snprintf(tcb_path, sizeof(tcb_path), "%s/tcb.bin", g_dir);
    fp = fopen(tcb_path, "wb");
    if (fp == NULL || fwrite(tcb, 1, tcb_len, fp) != tcb_len)
        exit(1);
    fclose(fp);
    memset(f->mr, 0x4d, 32);
    memset(f->signer, 0x53, 32);
    char mr[65], sg[65];
    CHECK(luna_hex_encode(f->mr, 32, mr, sizeof(mr)));
    CHECK(luna_hex_encode(f->signer, 32, sg, sizeof(sg)));
    f->cfg = json_pack("{s:{s:[{s:s,s:s,s:s,s:s}],s:[{s:s,s:s}],s:i}}", "kms", "references",
                       "deployment_id", "app", "evidence_type", "sim", "mr_enclave", mr,
                       "mr_signer", sg, "collateral", "evidence_type", "sim", "file", tcb_path,
                       "evidence_max_age_sec", 300);
    const char *types[] = {"sim"};
    const char *anchors[] = {path};
    const char *why = NULL;
    CHECK(kms_verify_new(f->cfg, false, types, 1, anchors, 1, &f->s.ver, &why));

    CHECK(luna_jws_signer_generate("iam-1", &f->iam));
    CHECK(luna_jws_signer_generate("att-1", &f->att));
    CHECK(luna_jws_keyset_new(&f->s.iam_keys));
    CHECK(luna_jws_keyset_new(&f->s.att_keys));
    CHECK(luna_jws_signer_publish(f->iam, f->s.iam_keys));
    CHECK(luna_jws_signer_publish(f->att, f->s.att_keys));
    f->s.set = (kms_settings){.otk_ttl_sec = 300, .nonce_ttl_sec = 60,
                              .report_max_age_sec = 600, .rotation_tick_ms = 60000,
                              .otk_key_rotation_sec = 86400, .destroy_retention_sec = 86400,
                              .token_skew_sec = 60, .iam_issuer = "lunal://svc/iam",
                              .iam_audience = LUNA_AUD_KMS,
                              .attestation_issuer = "lunal://svc/attestation"};
    CHECK(luna_hpke_generate_keypair(f->kx_sk, f->kx_pk));
    CHECK(luna_ed25519_keygen(f->sg_seed, f->sg_pk));

    kms_caller att = {.identity = "lunal://svc/attestation", .request_id = "bench"};
    kms_tee t;
    kms_why w = {0};
    memset(&t, 0, sizeof(t));
    strcpy(t.tee_id, "tee1");
    strcpy(t.tenants, "acme");
    strcpy(t.deployment, "app");
    strcpy(t.tee_type, "sim");
    memcpy(t.mr_enclave, f->mr, 32);
    t.mr_enclave_len = 32;
    CHECK(kms_tee_register(&f->s, &att, &t, &w));
    uint8_t nonce[32], ev[LUNA_SIM_EVIDENCE_MAX];
    size_t ev_len = 0;
    CHECK(luna_random(nonce, 32));
    evidence(f, nonce, ev, &ev_len);
    CHECK(kms_tee_activate(&f->s, &att, "tee1", "sim", ev, ev_len, f->kx_pk, f->sg_pk, NULL, &w));
}

static char *token(fixture *f)
{
    int64_t now = (int64_t)time(NULL);
    json_t *c = json_pack("{s:s,s:s,s:s,s:s,s:[s],s:I,s:I}", "iss", "lunal://svc/iam", "aud",
                          LUNA_AUD_KMS, "sub", "acme/app-1", "tenant", "acme", "roles", "client",
                          "iat", (json_int_t)now, "exp", (json_int_t)(now + 600));
    char *tok = NULL;
    CHECK(luna_jws_sign(f->iam, c, &tok, NULL));
    json_decref(c);
    return tok;
}

static char *report(fixture *f)
{
    char kx[64], sg[64], mr[65];
    int64_t now = (int64_t)time(NULL);
    CHECK(luna_b64url_encode(f->kx_pk, 32, kx, sizeof(kx)));
    CHECK(luna_b64url_encode(f->sg_pk, 32, sg, sizeof(sg)));
    CHECK(luna_hex_encode(f->mr, 32, mr, sizeof(mr)));
    json_t *c = json_pack("{s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:s,s:s}", "iss",
                          "lunal://svc/attestation", "sub", "tee1", "iat", (json_int_t)now, "exp",
                          (json_int_t)(now + 600), "deployment_id", "app", "evidence_type", "sim",
                          "mr_enclave", mr, "tee_kx_pk", kx, "tee_sign_pk", sg);
    char *tok = NULL;
    CHECK(luna_jws_sign(f->att, c, &tok, NULL));
    json_decref(c);
    return tok;
}

typedef struct part {
    const char *name;
    double per_op_us;
    double uses_per_otk;
} part;

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 500;
    const char *base = argc > 2 ? argv[2] : "/tmp";
    if (n <= 0)
        return 2;
    snprintf(g_dir, sizeof(g_dir), "%s/bench-kms-XXXXXX", base);
    if (mkdtemp(g_dir) == NULL)
        return 1;
    fixture f;
    setup(&f);
    char *tok = token(&f);
    char *rep = report(&f);
    uint8_t csk[32], cpk[32];
    CHECK(luna_hpke_generate_keypair(csk, cpk));

    double t_issue = 0, t_chal = 0, t_rel = 0, t_tee = 0;
    for (int i = 0; i < n; i++) {
        kms_caller cl = {.identity = "lunal://svc/gateway", .request_id = "bench"};
        kms_why w = {0};
        kms_otk_issue_out io;
        char rid[32];
        snprintf(rid, sizeof(rid), "r-%d", i);
        kms_otk_issue_in in = {.tee_id = "tee1", .job = "j", .request_id = rid};
        memcpy(in.client_pk, cpk, 32);
        double t0 = now_s();
        char authz[9000];
        snprintf(authz, sizeof(authz), "Bearer %s", tok);
        CHECK(kms_auth_token(&f.s, authz, &cl, &w));
        CHECK(kms_otk_issue(&f.s, &cl, &in, &io, &w));
        kms_caller_clear(&cl);
        double t1 = now_s();
        kms_caller tee = {.identity = "lunal://tee/tee1", .request_id = "bench"};
        uint8_t nonce[32], ev[LUNA_SIM_EVIDENCE_MAX];
        size_t ev_len = 0;
        int64_t exp = 0;
        CHECK(kms_otk_challenge(&f.s, &tee, "tee1", io.otk_id, nonce, &exp, &w));
        double t2 = now_s();
        evidence(&f, nonce, ev, &ev_len);
        double t3 = now_s();
        kms_otk_release_in ri = {.tee_id = "tee1", .otk_id = io.otk_id, .evidence_type = "sim",
                                 .evidence = ev, .evidence_len = ev_len, .report = rep,
                                 .report_len = strlen(rep)};
        memcpy(ri.nonce, nonce, 32);
        kms_otk_release_out ro;
        CHECK(kms_otk_release(&f.s, &tee, &ri, &ro, &w));
        double t4 = now_s();
        t_issue += t1 - t0;
        t_chal += t2 - t1;
        t_tee += t3 - t2;
        t_rel += t4 - t3;
    }
    double total = t_issue + t_chal + t_rel;

    /* ---- building blocks alone ---- */
    int m = n < 300 ? n : 300;
    uint8_t wrapped[LUNA_HSM_WRAPPED_LEN], key[32], sealed[LUNA_HSM_SEALED_KEY_LEN], tag[32];
    uint8_t row[300], out[80], ev[LUNA_SIM_EVIDENCE_MAX], nonce[32];
    size_t on = 0, ev_len = 0;
    memset(row, 7, sizeof(row));
    CHECK(luna_hsm_client_gen_kek(f.s.hsm, wrapped));
    CHECK(luna_hsm_client_mac(f.s.hsm, row, sizeof(row), tag));
    double a = now_s();
    for (int i = 0; i < m; i++)
        CHECK(luna_hsm_client_ping(f.s.hsm));
    double ping = (now_s() - a) / m;
    a = now_s();
    for (int i = 0; i < m; i++)
        CHECK(luna_hsm_client_mac_verify(f.s.hsm, row, sizeof(row), tag));
    double macv = (now_s() - a) / m;
    a = now_s();
    for (int i = 0; i < m; i++)
        CHECK(luna_hsm_client_gen_data_key(f.s.hsm, wrapped, row, 100, key, sealed));
    double gdk = (now_s() - a) / m;
    a = now_s();
    for (int i = 0; i < m; i++)
        CHECK(luna_hsm_client_open(f.s.hsm, wrapped, row, 100, sealed, sizeof(sealed), key, 32,
                                   &on));
    double hopen = (now_s() - a) / m;
    a = now_s();
    for (int i = 0; i < m; i++) {
        uint8_t rnd[32];
        CHECK(luna_random(rnd, sizeof(rnd)));
        CHECK(luna_store_begin(f.s.db));
        luna_store_param p[] = {luna_store_p_blob(rnd, sizeof(rnd))};
        CHECK(luna_store_exec(f.s.db,
                              "INSERT INTO kms_nonces (nonce, tee_id, otk_id, expires_at, used) "
                              "VALUES (?1, 'b', 'b', 0, 1)",
                              p, 1, NULL));
        CHECK(luna_store_commit(f.s.db));
    }
    double commit = (now_s() - a) / m;
    a = now_s();
    for (int i = 0; i < m; i++)
        CHECK(kms_audit(&f.s, NULL, "bench.entry", "acme", "tee1", "app", NULL,
                        LUNA_AUDIT_SUCCESS, ""));
    double audit = (now_s() - a) / m;
    CHECK(luna_random(nonce, 32));
    evidence(&f, nonce, ev, &ev_len);
    a = now_s();
    for (int i = 0; i < m; i++) {
        kms_ev_claims c;
        const char *why = NULL;
        CHECK(kms_verify_evidence(f.s.ver, true, "sim", ev, ev_len, "app", nonce, f.kx_pk,
                                  f.sg_pk, 0, &c, &why));
    }
    double own = (now_s() - a) / m;
    a = now_s();
    for (int i = 0; i < m; i++) {
        json_t *c = NULL;
        CHECK(luna_jws_verify(f.s.att_keys, rep, strlen(rep), NULL, &c, NULL));
        json_decref(c);
    }
    double jws = (now_s() - a) / m;
    a = now_s();
    for (int i = 0; i < m; i++)
        CHECK(kms_hpke_seal(f.kx_pk, row, 40, key, out));
    double hpke = (now_s() - a) / m;
    luna_wipe(key, sizeof(key));

    printf("bench_kms_otk: %d one-time keys, issue + challenge + release, everything "
           "production does (no HTTP/TLS)\n", n);
    printf("  throughput        %8.0f OTK/s   (%.3f ms each; target 2000/s)\n", n / total,
           1e3 * total / n);
    printf("    issue           %8.3f ms   (token verify, TEE row MAC, OTK key row MAC, HSM "
           "data key, HPKE, commit, audit)\n", 1e3 * t_issue / n);
    printf("    challenge       %8.3f ms   (commit, audit)\n", 1e3 * t_chal / n);
    printf("    release         %8.3f ms   (nonce commit, report, own verification, row MACs, "
           "HSM open, HPKE, commit, audit)\n", 1e3 * t_rel / n);
    printf("    (TEE side, excluded: evidence signing %.3f ms)\n", 1e3 * t_tee / n);
    printf("  baseline (same run): HSM round trip (PING) %8.0f /s; one-row SQLite commit %8.0f /s\n",
           1 / ping, 1 / commit);
    part parts[] = {
        {"HSM MAC verify (registry/key rows)", macv, 4},
        {"HSM generate data key", gdk, 1},
        {"HSM open sealed key", hopen, 1},
        {"SQLite commit (synchronous=FULL)", commit, 4},
        {"audit entry (append + fdatasync)", audit, 3},
        {"own evidence verification", own, 1},
        {"JWS verify (token, report)", jws, 2},
        {"HPKE seal (client, TEE)", hpke, 2},
    };
    double sum = 0;
    printf("  breakdown (each block timed alone; uses per OTK):\n");
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        double ms = 1e3 * parts[i].per_op_us * parts[i].uses_per_otk;
        sum += ms;
        printf("    %-38s %7.3f ms x %.0f = %7.3f ms  (%4.1f%%)\n", parts[i].name,
               1e3 * parts[i].per_op_us, parts[i].uses_per_otk, ms, 100 * ms / (1e3 * total / n));
    }
    printf("    %-38s %35.3f ms of %.3f ms measured\n", "sum of blocks", sum, 1e3 * total / n);
    printf("    %-38s %35.3f ms (row reads, JSON, key-row loads, glue)\n", "rest",
           1e3 * total / n - sum);

    free(tok);
    free(rep);
    kms_audit_free(f.s.audit);
    kms_verify_free(f.s.ver);
    luna_jws_keyset_free(f.s.iam_keys);
    luna_jws_keyset_free(f.s.att_keys);
    luna_hsm_client_free(f.s.hsm);
    luna_store_close(f.s.db);
    luna_sim_platform_free(f.platform);
    luna_sim_vendor_free(f.vendor);
    luna_jws_signer_free(f.iam);
    luna_jws_signer_free(f.att);
    json_decref(f.cfg);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        return 1;
    return 0;
}
