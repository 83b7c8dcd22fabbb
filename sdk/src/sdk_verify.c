/*
 * sdk_verify.c - the client's own appraisal of a TEE and of an attestation
 * report: the developer key pinned in the client's configuration checks the
 * signed manifest; the manifest (never the attestation service) gives the
 * reference measurement and signer; the shared verifier checks the vendor
 * chain, signature, TCB, debug, age and key binding of the raw evidence.
 * Must never take a reference value, a key or a verdict from the
 * attestation service alone, and never accept simulated evidence outside
 * development mode.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "luna/bytes.h"
#include "luna/json.h"
#include "sdk_internal.h"

static bool type_from_name(const char *name, luna_evidence_type *out)
{
    for (int t = 1; t <= LUNA_EVIDENCE_TYPE_MAX; t++)
        if (strcmp(luna_evidence_type_name((luna_evidence_type)t), name) == 0) {
            *out = (luna_evidence_type)t;
            return true;
        }
    return false;
}

static luna_err build_verifier(const luna_client *c, const sdk_tee_input *in,
                               const luna_manifest *m, luna_evidence_type type,
                               luna_verifier **out, char *why)
{
    luna_policy *p = NULL;
    luna_err err;

    LUNA_GUARD(luna_policy_new(c->development ? LUNA_PROFILE_DEVELOPMENT : LUNA_PROFILE_PRODUCTION,
                               &p));
    err = luna_policy_allow_type(p, type, 0);
    if (err != LUNA_OK) {
        sdk_why(why, err == LUNA_ERR_PERMISSION
                         ? "simulated evidence is refused outside development mode"
                         : "this SDK has no verifier for %s evidence",
                luna_evidence_type_name(type));
        luna_policy_free(p);
        return LUNA_ERR_VERIFY;
    }
    if (type == LUNA_EVIDENCE_SIM) {
        if (c->sim_root == NULL) {
            sdk_why(why, "no simulated vendor root configured (sim_root_file)");
            luna_policy_free(p);
            return LUNA_ERR_VERIFY;
        }
        LUNA_TRY(luna_policy_add_anchor(p, type, c->sim_root), fail);
    }
    LUNA_TRY(luna_policy_add_reference(p, in->deployment_id, type, m->mr_enclave,
                                       m->mr_enclave_len), fail);
    LUNA_TRY(luna_policy_add_signer(p, in->deployment_id, m->mr_signer, sizeof m->mr_signer),
             fail);
    /* The evidence the client gets was made over the attestation
       service's nonce, not ours: freshness is its bounded age. */
    LUNA_TRY(luna_policy_set_freshness(p, false, c->max_age, LUNA_POLICY_DEFAULT_SKEW), fail);
    LUNA_GUARD(luna_verifier_new(p, out));
    if (type == LUNA_EVIDENCE_SIM) {
        const uint8_t *doc = in->collateral != NULL ? in->collateral : c->sim_tcb;
        size_t len = in->collateral != NULL ? in->collateral_len : c->sim_tcb_len;
        if (doc != NULL) {
            err = luna_verifier_set_collateral(*out, type, doc, len, in->now);
            if (err != LUNA_OK && in->collateral != NULL && c->sim_tcb != NULL)
                err = luna_verifier_set_collateral(*out, type, c->sim_tcb, c->sim_tcb_len,
                                                   in->now);
            /* A refused document leaves none installed: the verification
               below then fails with "collateral missing", which says why. */
            (void)err;
        }
    }
    return LUNA_OK;
fail:
    luna_policy_free(p);
    sdk_why(why, "cannot build the verification policy: %s", luna_strerror(err));
    return err;
}

luna_err sdk_verify_tee(const luna_client *c, const sdk_tee_input *in, sdk_tee_verdict *v,
                        char *why)
{
    sdk_tee_verdict local;
    const sdk_pin *pin;
    luna_evidence_type type;
    luna_verifier *ver = NULL;
    luna_verify_input vin;
    luna_err err;

    if (v == NULL)
        v = &local;
    memset(v, 0, sizeof *v);
    if (in->deployment_id == NULL || in->manifest == NULL || in->evidence == NULL ||
        in->evidence_type == NULL) {
        sdk_why(why, "the platform did not give the evidence and manifest to verify");
        return LUNA_ERR_VERIFY;
    }
    pin = sdk_pin_find(c, in->deployment_id);
    if (pin == NULL) {
        sdk_why(why, "no developer key is pinned for deployment %s in this client's configuration",
                in->deployment_id);
        return LUNA_ERR_VERIFY;
    }
    err = luna_manifest_verify(in->manifest, in->manifest_len, pin->developer_id, pin->pk,
                               &v->manifest);
    if (err != LUNA_OK) {
        sdk_why(why, "Developer Signature: %s",
                err == LUNA_ERR_VERIFY       ? "INVALID (bad signature on the deployment manifest)"
                : err == LUNA_ERR_PERMISSION ? "INVALID (manifest not signed by the pinned developer key)"
                                             : "INVALID (malformed deployment manifest)");
        return LUNA_ERR_VERIFY;
    }
    if (strcmp(v->manifest.name, in->deployment_id) != 0) {
        sdk_why(why, "the manifest is for deployment %s, not %s", v->manifest.name,
                in->deployment_id);
        return LUNA_ERR_VERIFY;
    }
    v->manifest_ok = true;
    if (!type_from_name(in->evidence_type, &type)) {
        sdk_why(why, "unknown evidence type");
        return LUNA_ERR_VERIFY;
    }
    if (type == LUNA_EVIDENCE_SIM && !c->development) {
        sdk_why(why, "the TEE is SIMULATED and this client is not in development mode");
        v->vr.reason = LUNA_VERIFY_SIMULATED_IN_PRODUCTION;
        return LUNA_ERR_VERIFY;
    }
    LUNA_GUARD(build_verifier(c, in, &v->manifest, type, &ver, why));
    memset(&vin, 0, sizeof vin);
    vin.type = type;
    vin.evidence = in->evidence;
    vin.evidence_len = in->evidence_len;
    vin.deployment_id = in->deployment_id;
    vin.tee_x25519 = in->tee_kx_pk;
    vin.tee_ed25519 = in->tee_sign_pk;
    vin.now = in->now;
    err = luna_verifier_verify(ver, &vin, &v->vr);
    luna_verifier_free(ver);
    if (err != LUNA_OK) {
        sdk_why(why, "evidence refused (%s): %s", luna_verify_reason_name(v->vr.reason),
                v->vr.message);
        return LUNA_ERR_VERIFY;
    }
    /* Defence in depth: the policy held exactly the manifest's values. */
    if (v->vr.claims.measurement_len != v->manifest.mr_enclave_len ||
        !luna_ct_equal(v->vr.claims.measurement, v->manifest.mr_enclave,
                       v->manifest.mr_enclave_len)) {
        sdk_why(why, "measurement differs from the manifest's mr_enclave");
        return LUNA_ERR_VERIFY;
    }
    if (!v->vr.claims.has_tee_x25519 || !v->vr.claims.has_tee_ed25519) {
        sdk_why(why, "the evidence does not bind both TEE keys");
        return LUNA_ERR_VERIFY;
    }
    v->evidence_ok = true;
    return LUNA_OK;
}

/* ---- attestation reports ---- */

static void hex_of(const uint8_t *b, size_t n, char *out, size_t cap)
{
    if (n == 0 || luna_hex_encode(b, n, out, cap) != LUNA_OK)
        out[0] = 0;
}

static bool hex_same(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

/* "sha256:<hex>" and "<hex>" name the same hash. */
static const char *strip_sha(const char *s)
{
    return strncasecmp(s, "sha256:", 7) == 0 ? s + 7 : s;
}

static void fail_check(luna_attestation_report *r, luna_check *chk, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_check(luna_attestation_report *r, luna_check *chk, const char *fmt, ...)
{
    va_list ap;

    *chk = LUNA_CHECK_FAIL;
    if (r->reason[0] != 0)
        return; /* the first failure is the one reported */
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
}

static const char *tcb_words(const char *s)
{
    if (strcmp(s, "up_to_date") == 0) return "Up to date";
    if (strcmp(s, "out_of_date") == 0) return "Out of date";
    if (strcmp(s, "revoked") == 0) return "Revoked";
    if (strcmp(s, "sw_hardening_needed") == 0) return "SW hardening needed";
    if (strcmp(s, "configuration_needed") == 0) return "Configuration needed";
    return "Unknown";
}

/* Optional member: "" when absent. */
static void opt_str(const json_t *o, const char *name, char *out, size_t cap)
{
    if (sdk_json_str(o, name, out, cap) != LUNA_OK)
        out[0] = 0;
}

static luna_err req_str(const json_t *o, const char *name, char *out, size_t cap)
{
    luna_err err = sdk_json_str(o, name, out, cap);
    return err == LUNA_OK ? LUNA_OK : LUNA_ERR_FORMAT;
}

static void now_utc(int64_t now, char *out, size_t cap)
{
    time_t t = (time_t)(now != 0 ? now : (int64_t)time(NULL));
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(out, cap, "unknown");
}

/* The service's claims against what the client established itself. */
static void compare_claims(luna_attestation_report *r, const sdk_tee_verdict *v)
{
    char local[129];
    const luna_claims *cl = &v->vr.claims;
    bool authed = cl->measurement_len != 0; /* claims are set only once authenticated */

    if (v->manifest_ok) {
        hex_of(v->manifest.mr_enclave, v->manifest.mr_enclave_len, local, sizeof local);
        if (r->mr_enclave[0] != 0 && !hex_same(r->mr_enclave, local))
            fail_check(r, &r->check_measurement,
                       "MR_ENCLAVE: the service reports %.16s..., the developer-signed manifest says %.16s...",
                       r->mr_enclave, local);
        hex_of(v->manifest.mr_signer, sizeof v->manifest.mr_signer, local, sizeof local);
        if (r->mr_signer[0] != 0 && !hex_same(r->mr_signer, local))
            fail_check(r, &r->check_signer,
                       "MR_SIGNER: the service reports %.16s..., the pinned developer key gives %.16s...",
                       r->mr_signer, local);
        hex_of(v->manifest.build_hash, sizeof v->manifest.build_hash, local, sizeof local);
        if (r->build_hash[0] == 0)
            snprintf(r->build_hash, sizeof r->build_hash, "sha256:%.64s", local);
        else if (!hex_same(strip_sha(r->build_hash), local))
            fail_check(r, &r->check_build_hash,
                       "Build Hash: the service reports %.24s..., the manifest says sha256:%.16s...",
                       r->build_hash, local);
        if (strcmp(r->key_id, v->manifest.key_id) != 0)
            fail_check(r, &r->check_manifest,
                       "Key Fingerprint: the service reports %s, the pinned key is %s", r->key_id,
                       v->manifest.key_id);
        if (r->developer_id[0] != 0 && strcmp(r->developer_id, v->manifest.developer_id) != 0)
            fail_check(r, &r->check_manifest,
                       "Developer: the service reports %s, the pinned developer is %s",
                       r->developer_id, v->manifest.developer_id);
    }
    if (authed) {
        hex_of(cl->measurement, cl->measurement_len, local, sizeof local);
        if (r->mr_enclave[0] == 0)
            snprintf(r->mr_enclave, sizeof r->mr_enclave, "%s", local);
        else if (!hex_same(r->mr_enclave, local))
            fail_check(r, &r->check_measurement,
                       "MR_ENCLAVE: the service reports %.16s..., the evidence says %.16s...",
                       r->mr_enclave, local);
        hex_of(cl->signer, cl->signer_len, local, sizeof local);
        if (r->mr_signer[0] == 0)
            snprintf(r->mr_signer, sizeof r->mr_signer, "%s", local);
        else if (!hex_same(r->mr_signer, local))
            fail_check(r, &r->check_signer,
                       "MR_SIGNER: the service reports %.16s..., the evidence says %.16s...",
                       r->mr_signer, local);
        if (strcmp(r->tcb_status, "unknown") == 0 || r->tcb_status[0] == 0)
            snprintf(r->tcb_status, sizeof r->tcb_status, "%s",
                     luna_tcb_status_name(cl->tcb_status));
        else if (strcmp(r->tcb_status, luna_tcb_status_name(cl->tcb_status)) != 0)
            fail_check(r, &r->check_platform,
                       "TCB Status: the service reports %s, the evidence and collateral say %s",
                       tcb_words(r->tcb_status), tcb_words(luna_tcb_status_name(cl->tcb_status)));
        if (strcmp(r->qe_identity_status, "unknown") == 0 || r->qe_identity_status[0] == 0)
            snprintf(r->qe_identity_status, sizeof r->qe_identity_status, "%s",
                     luna_qe_status_name(cl->qe_status));
        else if (strcmp(r->qe_identity_status, luna_qe_status_name(cl->qe_status)) != 0)
            fail_check(r, &r->check_platform,
                       "QE Identity: the service reports %s, the evidence says %s",
                       r->qe_identity_status, luna_qe_status_name(cl->qe_status));
        if (cl->simulated && !r->simulated)
            fail_check(r, &r->check_platform,
                       "the service does not label this SIMULATED TEE as simulated");
        r->simulated = r->simulated || cl->simulated;
        r->debug = cl->debug;
    }
}

/* Words for a refusal of the client's verifier, as the report's line says it. */
static void platform_failure(luna_attestation_report *r, const luna_verify_result *vr,
                             const char *why)
{
    switch (vr->reason) {
    case LUNA_VERIFY_TCB_OUT_OF_DATE:
        snprintf(r->tcb_status, sizeof r->tcb_status, "out_of_date");
        fail_check(r, &r->check_platform, "TCB Status: Out of date (%s)", vr->message);
        break;
    case LUNA_VERIFY_TCB_REVOKED:
        snprintf(r->tcb_status, sizeof r->tcb_status, "revoked");
        fail_check(r, &r->check_platform, "TCB Status: Revoked (%s)", vr->message);
        break;
    case LUNA_VERIFY_MEASUREMENT_MISMATCH:
        fail_check(r, &r->check_measurement,
                   "MR_ENCLAVE: the measured code is not the developer-signed build (%s)",
                   vr->message);
        break;
    case LUNA_VERIFY_UNKNOWN_SIGNER:
        fail_check(r, &r->check_signer, "MR_SIGNER: not the pinned developer's key (%s)",
                   vr->message);
        break;
    case LUNA_VERIFY_DEBUG_FORBIDDEN:
        fail_check(r, &r->check_platform, "Debug mode: the TEE runs in debug mode (%s)",
                   vr->message);
        break;
    case LUNA_VERIFY_STALE:
        fail_check(r, &r->check_platform, "Freshness: the evidence is too old (%s)", vr->message);
        break;
    case LUNA_VERIFY_KEY_NOT_BOUND:
        fail_check(r, &r->check_platform,
                   "Key binding: the TEE's keys are not bound in its evidence (%s)", vr->message);
        break;
    case LUNA_VERIFY_UNKNOWN_ROOT:
    case LUNA_VERIFY_BAD_CERTIFICATE:
    case LUNA_VERIFY_CERT_EXPIRED:
        fail_check(r, &r->check_platform, "Vendor chain: %s", vr->message);
        break;
    case LUNA_VERIFY_REVOKED_PLATFORM_KEY:
        fail_check(r, &r->check_platform, "Platform key: revoked by the vendor (%s)",
                   vr->message);
        break;
    case LUNA_VERIFY_BAD_SIGNATURE:
        fail_check(r, &r->check_platform, "Evidence signature: INVALID (%s)", vr->message);
        break;
    default:
        fail_check(r, &r->check_platform, "Platform verification: %s", why);
        break;
    }
}

luna_err sdk_attestation_evaluate(const luna_client *c, const char *deployment_id,
                                  const json_t *answer, int64_t now,
                                  luna_attestation_report *r)
{
    const json_t *att = NULL;
    char why[LUNAL_REASON_MAX] = "";
    char svc_reason[128] = "", svc_message[160] = "";
    uint8_t *ev = NULL, kx[SDK_KEY_LEN], sg[SDK_KEY_LEN];
    uint8_t *col = NULL;
    size_t ev_len = 0, n = 0, col_len = 0;
    bool have_kx = false, have_sg = false, sv = false;
    const char *man = NULL;
    size_t man_len = 0;
    const sdk_pin *pin;
    sdk_tee_verdict *v = NULL;
    sdk_tee_input in;
    luna_err err = LUNA_OK;

    memset(r, 0, sizeof *r);
    now_utc(now, r->verified_at, sizeof r->verified_at);
    /* The section-6 shape is required; anything missing is malformed. */
    if (req_str(answer, "status", r->status, sizeof r->status) != LUNA_OK ||
        luna_json_get_object(answer, "attestation", &att) != LUNA_OK ||
        req_str(att, "id", r->attestation_id, sizeof r->attestation_id) != LUNA_OK ||
        req_str(att, "timestamp", r->timestamp, sizeof r->timestamp) != LUNA_OK ||
        req_str(att, "deployment_id", r->deployment_id, sizeof r->deployment_id) != LUNA_OK ||
        req_str(att, "build_hash", r->build_hash, sizeof r->build_hash) != LUNA_OK ||
        req_str(att, "measurements.mr_enclave", r->mr_enclave, sizeof r->mr_enclave) != LUNA_OK ||
        req_str(att, "measurements.mr_signer", r->mr_signer, sizeof r->mr_signer) != LUNA_OK ||
        req_str(att, "signature_verification.developer_id", r->developer_id,
                sizeof r->developer_id) != LUNA_OK ||
        luna_json_get_bool(att, "signature_verification.signature_valid", &sv) != LUNA_OK ||
        req_str(att, "signature_verification.key_id", r->key_id, sizeof r->key_id) != LUNA_OK ||
        req_str(att, "platform_verification.tcb_status", r->tcb_status, sizeof r->tcb_status) !=
            LUNA_OK ||
        req_str(att, "platform_verification.qe_identity_status", r->qe_identity_status,
                sizeof r->qe_identity_status) != LUNA_OK)
        return LUNA_ERR_FORMAT;
    r->signature_valid = sv;
    opt_str(att, "tee_id", r->tee_id, sizeof r->tee_id);
    opt_str(att, "evidence_type", r->evidence_type, sizeof r->evidence_type);
    if (r->evidence_type[0] == 0)
        opt_str(answer, "evidence_type", r->evidence_type, sizeof r->evidence_type);
    opt_str(att, "registry_status", r->registry_status, sizeof r->registry_status);
    opt_str(att, "signature_verification.developer_name", r->developer_name,
            sizeof r->developer_name);
    if (luna_json_get_bool(att, "platform_verification.simulated", &sv) == LUNA_OK)
        r->simulated = sv;
    opt_str(answer, "reason", svc_reason, sizeof svc_reason);
    opt_str(answer, "message", svc_message, sizeof svc_message);

    r->check_service = LUNA_CHECK_PASS;
    r->check_registry = LUNA_CHECK_PASS;
    r->check_manifest = LUNA_CHECK_PASS;
    r->check_platform = LUNA_CHECK_PASS;
    r->check_measurement = LUNA_CHECK_PASS;
    r->check_signer = LUNA_CHECK_PASS;
    r->check_build_hash = LUNA_CHECK_PASS;

    if (strcmp(r->deployment_id, deployment_id) != 0)
        fail_check(r, &r->check_service, "the answer is for deployment %s, not %s",
                   r->deployment_id, deployment_id);
    if (strcmp(r->status, "verified") != 0)
        fail_check(r, &r->check_service, "the attestation service refused the TEE: %s%s%s",
                   svc_reason[0] ? svc_reason : r->status, svc_message[0] ? " - " : "",
                   svc_message);
    if (r->registry_status[0] != 0 && strcmp(r->registry_status, "active") != 0)
        fail_check(r, &r->check_registry, "TEE registry status: %s", r->registry_status);
    if (!r->signature_valid)
        fail_check(r, &r->check_manifest, "Developer Signature: the service reports it INVALID");

    /* Independent verification of the raw evidence and the manifest. */
    pin = sdk_pin_find(c, deployment_id);
    if (luna_json_get_string(answer, "manifest", &man, &man_len) != LUNA_OK && pin != NULL &&
        pin->manifest != NULL) {
        man = pin->manifest;
        man_len = strlen(man);
    }
    ev = malloc(LUNA_VERIFY_EVIDENCE_MAX);
    col = malloc(SDK_MAX_COLLATERAL);
    v = calloc(1, sizeof *v);
    if (ev == NULL || col == NULL || v == NULL) {
        err = LUNA_ERR_NOMEM;
        goto out;
    }
    if (luna_json_get_b64url(answer, "evidence", ev, LUNA_VERIFY_EVIDENCE_MAX, &ev_len) != LUNA_OK)
        ev_len = 0;
    if (luna_json_get_b64url(answer, "collateral", col, SDK_MAX_COLLATERAL, &col_len) != LUNA_OK)
        col_len = 0;
    have_kx = luna_json_get_b64url(att, "tee_keys.tee_kx_pk", kx, sizeof kx, &n) == LUNA_OK &&
              n == SDK_KEY_LEN;
    have_sg = luna_json_get_b64url(att, "tee_keys.tee_sign_pk", sg, sizeof sg, &n) == LUNA_OK &&
              n == SDK_KEY_LEN;
    memset(&in, 0, sizeof in);
    in.deployment_id = deployment_id;
    in.tee_id = r->tee_id;
    in.manifest = man;
    in.manifest_len = man_len;
    in.evidence_type = r->evidence_type;
    in.evidence = ev_len > 0 ? ev : NULL;
    in.evidence_len = ev_len;
    in.tee_kx_pk = have_kx ? kx : NULL;
    in.tee_sign_pk = have_sg ? sg : NULL;
    in.collateral = col_len > 0 ? col : NULL;
    in.collateral_len = col_len;
    in.now = now;
    if (pin == NULL) {
        fail_check(r, &r->check_manifest,
                   "Developer Signature: no developer key is pinned for %s in the client configuration",
                   deployment_id);
    } else if (man == NULL) {
        fail_check(r, &r->check_manifest,
                   "Developer Signature: no developer-signed manifest to check (not in the answer or the configuration)");
    } else if (ev_len == 0) {
        fail_check(r, &r->check_platform,
                   "Platform verification: the answer carries no raw evidence to verify independently");
    } else if (sdk_verify_tee(c, &in, v, why) != LUNA_OK) {
        if (!v->manifest_ok)
            fail_check(r, &r->check_manifest, "%s", why);
        else
            platform_failure(r, &v->vr, why);
    }
    if (pin != NULL && !v->manifest_ok && r->check_manifest != LUNA_CHECK_FAIL)
        fail_check(r, &r->check_manifest, "Developer Signature: not checked");
    if (v->manifest_ok && r->developer_id[0] == 0)
        snprintf(r->developer_id, sizeof r->developer_id, "%s", v->manifest.developer_id);
    compare_claims(r, v);
    if (!v->evidence_ok && r->check_platform != LUNA_CHECK_FAIL)
        fail_check(r, &r->check_platform, "Platform verification: evidence not verified");
    r->verified = r->check_service == LUNA_CHECK_PASS && r->check_registry == LUNA_CHECK_PASS &&
                  r->check_manifest == LUNA_CHECK_PASS && r->check_platform == LUNA_CHECK_PASS &&
                  r->check_measurement == LUNA_CHECK_PASS &&
                  r->check_signer == LUNA_CHECK_PASS && r->check_build_hash == LUNA_CHECK_PASS;
    if (r->verified)
        r->reason[0] = 0;
out:
    free(ev);
    free(col);
    free(v);
    return err;
}
