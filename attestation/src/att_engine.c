/*
 * att_engine.c - one attestation, start to end, on a worker thread:
 * admission (first attestation, TEE certificate), on-demand verification,
 * periodic re-attestation and operator reinstatement; the answer in the
 * DESIGN.md section 6 shape, the signed report, the history row, and the
 * reaction to abnormal evidence (quarantine, alert, audit).
 *
 * Must never: issue a certificate or report for evidence that did not
 * verify, skip the registry, call simulated evidence hardware-protected,
 * or move a TEE out of "revoked".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/log.h"

#include "att.h"

#define SIM_LABEL "SIMULATED TEE (development only): no hardware protection"

typedef struct att_result {
    att_kind kind;
    char att_id[ATT_ID_LEN + 1];
    int64_t now;
    char tee_id[ATT_TEE_ID_MAX + 1];
    char deployment_id[ATT_DEPLOYMENT_MAX + 1];
    const char *status; /* "verified", "refused", "unavailable" */
    char reason[ATT_REASON_MAX];
    char message[ATT_MSG_MAX];
    char evidence_type[16];
    const uint8_t *evidence;
    size_t evidence_len;
    att_appraisal ap;
    char registry_status[16];
    char *report; /* JWS when verified */
    int64_t report_exp;
    /* The owning tenants the registry named this round (have_tenants). */
    bool have_tenants;
    char tenants[ATT_TENANTS_TEXT_MAX + 1];
    bool registry_verdict; /* refused because of what the registry said */
} att_result;

static const char *kind_name(att_kind k)
{
    switch (k) {
    case ATT_KIND_ADMIT: return "admit";
    case ATT_KIND_VERIFY: return "verify";
    case ATT_KIND_REATTEST: return "reattest";
    case ATT_KIND_REINSTATE: return "reinstate";
    case ATT_KIND_REGISTER: return "register";
    }
    return "unknown";
}

static luna_err new_att_id(char out[ATT_ID_LEN + 1])
{
    uint8_t r[12];
    memcpy(out, "att_", 4);
    LUNA_GUARD(luna_random(r, sizeof r));
    return luna_hex_encode(r, sizeof r, out + 4, ATT_ID_LEN + 1 - 4);
}

luna_err att_admit_nonce(const uint8_t challenge[ATT_NONCE_LEN], const uint8_t *spki,
                         size_t spki_len, uint8_t out[ATT_NONCE_LEN])
{
    static const char label[] = "lunal admit v1";
    uint8_t buf[sizeof label - 1 + ATT_NONCE_LEN + LUNA_SHA256_LEN];
    LUNA_GUARD(luna_sha256(spki, spki_len, buf + sizeof label - 1 + ATT_NONCE_LEN));
    memcpy(buf, label, sizeof label - 1);
    memcpy(buf + sizeof label - 1, challenge, ATT_NONCE_LEN);
    return luna_sha256(buf, sizeof buf, out);
}

static void set_hex(json_t *obj, const char *key, const uint8_t *b, size_t n)
{
    char hex[2 * 64 + 1];
    if (n > 64 || luna_hex_encode(b, n, hex, sizeof hex) != LUNA_OK)
        return;
    json_object_set_new(obj, key, json_string(hex));
}

static void set_b64(json_t *obj, const char *key, const uint8_t *b, size_t n)
{
    size_t cap = LUNA_B64URL_ENC_LEN(n);
    char *s = malloc(cap);
    if (s != NULL && luna_b64url_encode(b, n, s, cap) == LUNA_OK)
        json_object_set_new(obj, key, json_string(s));
    free(s);
}

static void rfc3339(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The signed report's claims (docs/protocol.md "Attestation report"). */
static luna_err sign_report(att_service *svc, att_result *r)
{
    const att_claims *c = &r->ap.claims;
    uint8_t ev_hash[LUNA_SHA256_LEN];
    json_t *claims = json_object();
    luna_err err;

    if (claims == NULL)
        return LUNA_ERR_NOMEM;
    LUNA_TRY(luna_sha256(r->evidence, r->evidence_len, ev_hash), out);
    r->report_exp = r->now + svc->s->report_lifetime;
    json_object_set_new(claims, "iss", json_string(ATT_IDENTITY));
    json_object_set_new(claims, "sub", json_string(r->tee_id));
    json_object_set_new(claims, "iat", json_integer(r->now));
    json_object_set_new(claims, "exp", json_integer(r->report_exp));
    json_object_set_new(claims, "jti", json_string(r->att_id));
    json_object_set_new(claims, "deployment_id", json_string(r->deployment_id));
    json_object_set_new(claims, "evidence_type", json_string(c->evidence_type_name));
    json_object_set_new(claims, "simulated", json_boolean(c->simulated));
    set_hex(claims, "mr_enclave", c->measurement, c->measurement_len);
    set_hex(claims, "mr_signer", c->signer, c->signer_len);
    json_object_set_new(claims, "tcb_status", json_string(c->tcb_status));
    json_object_set_new(claims, "qe_identity_status", json_string(c->qe_status));
    set_b64(claims, "tee_kx_pk", c->tee_kx, ATT_KEY_LEN);
    if (c->has_tee_sign)
        set_b64(claims, "tee_sign_pk", c->tee_sign, ATT_KEY_LEN);
    set_b64(claims, "key_binding", c->report_data, 32);
    set_hex(claims, "evidence_sha256", ev_hash, sizeof ev_hash);
    LUNA_TRY(luna_jws_sign(svc->signer, claims, &r->report, NULL), out);
out:
    json_decref(claims);
    return err;
}

/* The answer: DESIGN.md section 6 fields, then ours. */
static json_t *build_answer(att_service *svc, const att_result *r)
{
    att_deployment dep;
    const att_deployment *d = att_deps_find(svc, r->deployment_id, &dep) ? &dep : NULL;
    const att_claims *c = &r->ap.claims;
    bool ok = strcmp(r->status, "verified") == 0;
    char ts[32];
    json_t *root = json_object(), *att = json_object(), *meas = json_object(),
           *sig = json_object(), *plat = json_object(), *keys = json_object();

    if (root == NULL || att == NULL || meas == NULL || sig == NULL || plat == NULL ||
        keys == NULL) {
        json_decref(root);
        json_decref(att);
        json_decref(meas);
        json_decref(sig);
        json_decref(plat);
        json_decref(keys);
        return NULL;
    }
    rfc3339(r->now, ts);
    json_object_set_new(root, "status", json_string(r->status));
    if (!ok) {
        json_object_set_new(root, "reason", json_string(r->reason));
        json_object_set_new(root, "message", json_string(r->message));
    }
    json_object_set_new(att, "id", json_string(r->att_id));
    json_object_set_new(att, "timestamp", json_string(ts));
    json_object_set_new(att, "kind", json_string(kind_name(r->kind)));
    json_object_set_new(att, "tee_id", json_string(r->tee_id));
    json_object_set_new(att, "deployment_id", json_string(r->deployment_id));
    json_object_set_new(att, "deployment_version", json_string(d != NULL ? d->version : ""));
    json_object_set_new(att, "build_hash", json_string(d != NULL ? d->build_hash : ""));
    json_object_set_new(att, "evidence_type", json_string(r->evidence_type));
    /* Claims come only from authenticated evidence: empty when refused. */
    json_object_set_new(meas, "mr_enclave", json_string(""));
    json_object_set_new(meas, "mr_signer", json_string(""));
    if (ok) {
        set_hex(meas, "mr_enclave", c->measurement, c->measurement_len);
        set_hex(meas, "mr_signer", c->signer, c->signer_len);
        if (c->has_memory_digest)
            set_hex(meas, "memory_state", c->memory_digest, sizeof c->memory_digest);
    }
    json_object_set_new(att, "measurements", meas);
    json_object_set_new(sig, "developer_id", json_string(d != NULL ? d->developer_id : ""));
    if (d != NULL && d->developer_name[0] != '\0')
        json_object_set_new(sig, "developer_name", json_string(d->developer_name));
    /* The developer's key is the one pinned for the deployment, and the
       evidence's mr_signer matched it under a verified platform signature. */
    json_object_set_new(sig, "signature_valid", json_boolean(ok));
    json_object_set_new(sig, "key_id", json_string(d != NULL ? d->key_id : ""));
    json_object_set_new(att, "signature_verification", sig);
    json_object_set_new(plat, "tcb_status", json_string(ok ? c->tcb_status : "unknown"));
    json_object_set_new(plat, "qe_identity_status", json_string(ok ? c->qe_status : "unknown"));
    bool simulated = ok ? c->simulated : strcmp(r->evidence_type, "sim") == 0;
    json_object_set_new(plat, "simulated", json_boolean(simulated));
    if (ok) {
        json_object_set_new(plat, "tcb_level", json_integer(c->tcb_level));
        json_object_set_new(plat, "debug", json_boolean(c->debug));
    }
    if (simulated) {
        /* Honest labels (DESIGN.md 3a): never the hardware wording. */
        json_object_set_new(plat, "environment", json_string(SIM_LABEL));
        json_object_set_new(plat, "memory_encryption",
                            json_string("not provided: simulated platform, development only"));
        json_object_set_new(plat, "secure_boot",
                            json_string("not provided: simulated platform, development only"));
    } else if (strcmp(r->evidence_type, "tpm") == 0) {
        /* A TPM quote proves what the host measured into PCR 23, signed by
           an enrolled TPM: no memory encryption, no isolation from the host. */
        json_object_set_new(plat, "environment",
                            json_string("TPM 2.0 quote of a host-measured runtime"));
        json_object_set_new(plat, "memory_encryption",
                            json_string("not provided: TPM 2.0 quote, no memory encryption"));
    }
    json_object_set_new(att, "platform_verification", plat);
    if (ok) {
        set_b64(keys, "tee_kx_pk", c->tee_kx, ATT_KEY_LEN);
        if (c->has_tee_sign)
            set_b64(keys, "tee_sign_pk", c->tee_sign, ATT_KEY_LEN);
        set_b64(keys, "key_binding", c->report_data, 32);
    }
    json_object_set_new(att, "tee_keys", keys);
    json_object_set_new(att, "registry_status", json_string(r->registry_status));
    json_object_set_new(root, "attestation", att);
    if (r->report != NULL) {
        json_object_set_new(root, "report", json_string(r->report));
        json_object_set_new(root, "report_expires_at", json_integer(r->report_exp));
    }
    return root;
}

/* Stores the row; the answer gets the raw evidence for independent checks. */
static void finish(att_worker *w, att_result *r, att_answer *ans, int http_status)
{
    att_record rec;
    char *text = NULL;
    json_t *body = build_answer(w->svc, r);
    luna_err err;

    if (body == NULL) {
        ans->status = 500;
        ans->body = NULL;
        return;
    }
    text = json_dumps(body, JSON_COMPACT);
    memset(&rec, 0, sizeof rec);
    memcpy(rec.att_id, r->att_id, sizeof rec.att_id);
    memcpy(rec.tee_id, r->tee_id, sizeof rec.tee_id);
    memcpy(rec.deployment_id, r->deployment_id, sizeof rec.deployment_id);
    rec.kind = kind_name(r->kind);
    rec.created_at = r->now;
    rec.status = r->status;
    rec.reason = strcmp(r->status, "verified") == 0 ? "" : r->reason;
    rec.evidence = r->evidence;
    rec.evidence_len = r->evidence_len;
    rec.report = r->report;
    rec.body = text != NULL ? text : "{}";
    rec.tenants = r->have_tenants ? r->tenants : NULL;
    err = att_db_put_record(w->db, &rec);
    free(text);
    if (err != LUNA_OK) {
        /* A result that cannot be kept is not given out (history of every result). */
        LUNA_LOGF(LUNA_LOG_ERROR, ATT_COMPONENT, "history write failed",
                  LUNA_LOG_STR("tee_id", r->tee_id), LUNA_LOG_ERR("error", err));
        json_decref(body);
        ans->status = 503;
        ans->body = json_pack("{s:{s:s,s:s}}", "error", "code", "storage_unavailable", "message",
                              "the result could not be recorded");
        return;
    }
    if (r->evidence != NULL && r->evidence_len > 0) {
        set_b64(body, "evidence", r->evidence, r->evidence_len);
        json_object_set_new(body, "evidence_type", json_string(r->evidence_type));
    }
    LUNA_LOGF(strcmp(r->status, "verified") == 0 ? LUNA_LOG_INFO : LUNA_LOG_WARN, ATT_COMPONENT,
              "attestation", LUNA_LOG_STR("kind", kind_name(r->kind)),
              LUNA_LOG_STR("attestation_id", r->att_id), LUNA_LOG_STR("tee_id", r->tee_id),
              LUNA_LOG_STR("deployment_id", r->deployment_id), LUNA_LOG_STR("status", r->status),
              LUNA_LOG_STR("reason", strcmp(r->status, "verified") == 0 ? "" : r->reason));
    ans->status = http_status;
    ans->body = body;
}

static void error_answer(att_answer *ans, int status, const char *code, const char *message)
{
    ans->status = status;
    ans->body = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
}

static void refuse(att_result *r, const char *reason, const char *message)
{
    r->status = "refused";
    snprintf(r->reason, sizeof r->reason, "%s", reason);
    snprintf(r->message, sizeof r->message, "%s", message);
}

/* Abnormal evidence: quarantine at the KMS (revokes the TEE's keys), alert, audit. */
static void quarantine(att_worker *w, const char *tee_id, const char *deployment_id,
                       const char *reason, const char *att_id)
{
    att_service *svc = w->svc;
    luna_err err;
    int tries;

    pthread_mutex_lock(&svc->state_lock);
    err = att_db_set_state(w->db, tee_id, ATT_TEE_ACTIVE, ATT_TEE_QUARANTINED, reason,
                           (int64_t)time(NULL));
    pthread_mutex_unlock(&svc->state_lock);
    if (err == LUNA_ERR_CONFLICT)
        return; /* not active any more: someone already acted */
    if (err != LUNA_OK)
        LUNA_LOGF(LUNA_LOG_ERROR, ATT_COMPONENT, "quarantine: local state not saved",
                  LUNA_LOG_STR("tee_id", tee_id), LUNA_LOG_ERR("error", err));
    for (tries = 0; tries < 3; tries++) {
        err = att_kms_quarantine(&svc->peers, tee_id, reason, att_id);
        if (err == LUNA_OK || err == LUNA_ERR_CONFLICT)
            break;
    }
    att_alert(&svc->peers, "tee.quarantined", tee_id, reason, att_id);
    if (err != LUNA_OK && err != LUNA_ERR_CONFLICT)
        att_alert(&svc->peers, "kms.quarantine_failed", tee_id, luna_errname(err), att_id);
    /* Quarantine is the closed direction, so it is never undone for want
       of an audit entry; the entry is retried and, when the log stays
       unavailable, that is an alert of its own (the TEE stays out). */
    for (tries = 0; tries < 3; tries++) {
        err = att_audit(&svc->peers, ATT_IDENTITY, "tee.quarantine", tee_id, deployment_id, att_id,
                        true, false, reason, NULL);
        if (err == LUNA_OK)
            break;
    }
    if (err != LUNA_OK)
        att_alert(&svc->peers, "audit.quarantine_not_recorded", tee_id, luna_errname(err), att_id);
}

static bool abnormal(const att_result *r)
{
    /* A refusal of the evidence itself; registry answers are not evidence. */
    return strcmp(r->status, "refused") == 0 && !r->registry_verdict &&
           strncmp(r->reason, "registry_", 9) != 0;
}

/* Takes the registry's tenants for the history row of this round. */
static void keep_tenants(att_result *r, const att_registry_entry *reg)
{
    snprintf(r->tenants, sizeof r->tenants, "%s", reg->tenants);
    r->have_tenants = true;
}

/*
 * The registry's word on a TEE that verified but that it does not list
 * as active for this deployment: quarantined and revoked say so, in the
 * reason code and in words, so a client (the CLI) shows why.  The KMS
 * registry keeps no reason text; the operator's is in the audit log.
 */
static void refuse_registry(att_result *r, const att_registry_entry *reg)
{
    r->ap.ok = false;
    r->registry_verdict = true;
    if (strcmp(reg->deployment_id, r->deployment_id) != 0)
        refuse(r, "registry_not_active", "the registry lists this TEE for another deployment");
    else if (strcmp(reg->status, "quarantined") == 0)
        refuse(r, "tee_quarantined", "TEE quarantined: the KMS registry lists it as quarantined");
    else if (strcmp(reg->status, "revoked") == 0)
        refuse(r, "tee_revoked", "TEE revoked: the KMS registry lists it as revoked (final)");
    else
        refuse(r, "registry_not_active", "the registry does not list this TEE as active");
}

/*
 * The TEE's last success as stored now, not as read when this round
 * began: a round that hung on the TEE must not quarantine it for missing
 * evidence after an operator reinstated it meanwhile.
 */
static int64_t last_ok_now(att_worker *w, const att_tee *at_start)
{
    att_tee now;
    if (att_db_get_tee(w->db, at_start->tee_id, &now) == LUNA_OK && now.last_ok > at_start->last_ok)
        return now.last_ok;
    return at_start->last_ok;
}

/* Whether the comma-joined list names tenant exactly. */
static bool tenants_have(const char *list, const char *tenant)
{
    size_t n = strlen(tenant);
    while (*list != '\0') {
        const char *comma = strchr(list, ',');
        size_t len = comma != NULL ? (size_t)(comma - list) : strlen(list);
        if (len == n && memcmp(list, tenant, n) == 0)
            return true;
        if (comma == NULL)
            break;
        list = comma + 1;
    }
    return false;
}

/*
 * A verify scoped to a tenant picks among the deployment's active TEEs
 * only one the KMS registry lists for that tenant: ownership lives in the
 * registry, not here.  Bounded: the most recently attested few.
 */
#define ATT_PICK_MAX 16
static luna_err pick_owned_tee(att_worker *w, const char *deployment_id, const char *tenant,
                               char tee_id[ATT_TEE_ID_MAX + 1])
{
    char ids[ATT_PICK_MAX][ATT_TEE_ID_MAX + 1];
    size_t n = 0;
    att_registry_entry reg;
    bool unconfirmed = false;
    LUNA_GUARD(att_db_active_tees(w->db, deployment_id, ids, ATT_PICK_MAX, &n));
    for (size_t i = 0; i < n; i++) {
        luna_err err = att_kms_get_tee(&w->svc->peers, ids[i], &reg);
        if (err == LUNA_OK && tenants_have(reg.tenants, tenant)) {
            memcpy(tee_id, ids[i], sizeof ids[i]);
            return LUNA_OK;
        }
        unconfirmed = unconfirmed || (err != LUNA_OK && err != LUNA_ERR_NOT_FOUND);
    }
    return unconfirmed ? LUNA_ERR_UNAVAILABLE : LUNA_ERR_NOT_FOUND;
}

void att_engine_attest(att_worker *w, att_kind kind, const char *tee_id,
                       const char *deployment_id, const char *actor, const char *scope_tenant,
                       const char *request_id, att_answer *ans)
{
    att_service *svc = w->svc;
    att_result r;
    att_tee tee;
    att_registry_entry reg;
    uint8_t nonce[ATT_NONCE_LEN];
    uint8_t *ev = NULL;
    size_t ev_len = 0;
    luna_err err, reg_err;
    int http_status = 200;
    char words[ATT_MSG_MAX];

    memset(&r, 0, sizeof r);
    memset(ans, 0, sizeof ans[0]);
    r.kind = kind;
    r.now = (int64_t)time(NULL);
    if (tee_id == NULL) {
        err = scope_tenant != NULL ? pick_owned_tee(w, deployment_id, scope_tenant, r.tee_id)
                                   : att_db_pick_tee(w->db, deployment_id, r.tee_id);
        if (err != LUNA_OK) {
            error_answer(ans, err == LUNA_ERR_NOT_FOUND ? 404 : 503,
                         err == LUNA_ERR_NOT_FOUND     ? "no_active_tee"
                         : err == LUNA_ERR_UNAVAILABLE ? "registry_unavailable"
                                                       : "storage_unavailable",
                         err == LUNA_ERR_NOT_FOUND ? "no active TEE runs this deployment"
                                                   : "no TEE could be confirmed right now");
            return;
        }
    } else {
        snprintf(r.tee_id, sizeof r.tee_id, "%s", tee_id);
    }
    err = att_db_get_tee(w->db, r.tee_id, &tee);
    if (err != LUNA_OK) {
        error_answer(ans, err == LUNA_ERR_NOT_FOUND ? 404 : 503,
                     err == LUNA_ERR_NOT_FOUND ? "unknown_tee" : "storage_unavailable",
                     "no such admitted TEE");
        return;
    }
    snprintf(r.registry_status, sizeof r.registry_status, "unknown");
    /* Read first so that every row of this round, refused ones included,
       carries the owning tenants of that moment; judged only after the
       evidence (a registry answer never masks an evidence refusal).  Before
       any state answer, so another tenant learns nothing of this TEE. */
    reg_err = att_kms_get_tee(&svc->peers, r.tee_id, &reg);
    if (reg_err == LUNA_OK) {
        keep_tenants(&r, &reg);
        snprintf(r.registry_status, sizeof r.registry_status, "%s", reg.status);
    }
    if (scope_tenant != NULL && (reg_err != LUNA_OK || !tenants_have(reg.tenants, scope_tenant))) {
        /* Another tenant's TEE looks like no TEE at all; unconfirmed is unavailable. */
        bool unknown = reg_err == LUNA_OK || reg_err == LUNA_ERR_NOT_FOUND;
        error_answer(ans, unknown ? 404 : 503, unknown ? "unknown_tee" : "registry_unavailable",
                     unknown ? "no such admitted TEE" : "the registry could not be asked");
        return;
    }
    /* A verify names the deployment it expects: a TEE of another one is
       answered exactly like an unknown TEE. */
    if (kind == ATT_KIND_VERIFY && deployment_id != NULL &&
        strcmp(deployment_id, tee.deployment_id) != 0) {
        error_answer(ans, 404, "unknown_tee", "no such admitted TEE");
        return;
    }
    if (tee.state == ATT_TEE_REVOKED) {
        snprintf(words, sizeof words, "TEE revoked: %s (revoked is final)", tee.state_reason);
        error_answer(ans, 409, "tee_revoked", words);
        return;
    }
    if ((kind == ATT_KIND_REATTEST || kind == ATT_KIND_VERIFY) && tee.state != ATT_TEE_ACTIVE) {
        snprintf(words, sizeof words, "TEE quarantined: %s", tee.state_reason);
        error_answer(ans, 409, "tee_quarantined", words);
        return;
    }
    if (kind == ATT_KIND_REINSTATE && tee.state != ATT_TEE_QUARANTINED) {
        error_answer(ans, 409, "tee_not_quarantined", "only a quarantined TEE can be reinstated");
        return;
    }
    snprintf(r.deployment_id, sizeof r.deployment_id, "%s", tee.deployment_id);
    if (new_att_id(r.att_id) != LUNA_OK || luna_random(nonce, sizeof nonce) != LUNA_OK) {
        error_answer(ans, 500, "internal", "randomness failed");
        return;
    }
    err = att_tee_evidence(&svc->peers, r.tee_id, tee.address, nonce, &ev, &ev_len,
                           r.evidence_type);
    if (err != LUNA_OK) {
        r.status = "unavailable";
        snprintf(r.reason, sizeof r.reason, "evidence_unavailable");
        snprintf(r.message, sizeof r.message, "the TEE gave no evidence: %s", luna_errname(err));
        http_status = 503;
        goto done;
    }
    r.evidence = ev;
    r.evidence_len = ev_len;
    err = att_deps_appraise(svc, att_evidence_type_parse(r.evidence_type), ev, ev_len,
                            r.deployment_id, nonce, 0, &r.ap);
    if (err != LUNA_OK) {
        r.status = "unavailable";
        snprintf(r.reason, sizeof r.reason, "internal");
        snprintf(r.message, sizeof r.message, "verifier failed");
        http_status = 500;
        goto done;
    }
    if (!r.ap.ok) {
        refuse(&r, r.ap.reason, r.ap.message);
        goto done;
    }
    if (r.ap.claims.measurement_len != tee.measurement_len ||
        !luna_ct_equal(r.ap.claims.measurement, tee.measurement, tee.measurement_len)) {
        /* Even another allowed reference is a change from what was admitted. */
        r.ap.ok = false;
        refuse(&r, "measurement_changed", "measurement differs from the admitted one");
        goto done;
    }
    if (reg_err != LUNA_OK) {
        r.ap.ok = false;
        r.registry_verdict = true;
        r.status = reg_err == LUNA_ERR_NOT_FOUND ? "refused" : "unavailable";
        snprintf(r.reason, sizeof r.reason, "%s",
                 reg_err == LUNA_ERR_NOT_FOUND ? "registry_unknown_tee" : "registry_unavailable");
        snprintf(r.message, sizeof r.message, "registry membership not confirmed");
        http_status = reg_err == LUNA_ERR_NOT_FOUND ? 200 : 503;
        goto done;
    }
    bool reg_ok = strcmp(reg.deployment_id, r.deployment_id) == 0 &&
                  (strcmp(reg.status, "active") == 0 ||
                   (kind == ATT_KIND_REINSTATE && strcmp(reg.status, "quarantined") == 0));
    if (!reg_ok) {
        refuse_registry(&r, &reg);
        goto done;
    }
    r.status = "verified";
    if (sign_report(svc, &r) != LUNA_OK) {
        error_answer(ans, 500, "internal", "report signing failed");
        free(ev);
        return;
    }
    if (kind == ATT_KIND_REINSTATE) {
        /* Fail closed: audited before the KMS re-activates anything. */
        err = att_audit(&svc->peers, actor, "tee.reinstate", r.tee_id, r.deployment_id, r.att_id,
                        true, false, "fresh attestation verified", request_id);
        if (err != LUNA_OK) {
            LUNA_LOGF(LUNA_LOG_ERROR, ATT_COMPONENT,
                      "reinstatement refused: audit log unavailable",
                      LUNA_LOG_STR("tee_id", r.tee_id));
            error_answer(ans, 503, "audit_unavailable",
                         "the reinstatement was refused: its audit entry could not be written");
            goto out;
        }
        err = att_kms_activate(&svc->peers, r.tee_id, r.evidence_type, ev, ev_len,
                               r.ap.claims.tee_kx, r.ap.claims.tee_sign, nonce);
        if (err != LUNA_OK) {
            att_logged(att_audit(&svc->peers, actor, "tee.reinstate", r.tee_id, r.deployment_id,
                                 r.att_id, false, false, "kms_refused", request_id));
            error_answer(ans, 503, "kms_refused", "the KMS did not re-activate the TEE");
            goto out;
        }
        pthread_mutex_lock(&svc->state_lock);
        err = att_db_set_state(w->db, r.tee_id, ATT_TEE_QUARANTINED, ATT_TEE_ACTIVE, "reinstated",
                               r.now);
        pthread_mutex_unlock(&svc->state_lock);
        if (err != LUNA_OK) {
            error_answer(ans, 409, "state_changed", "the TEE changed state meanwhile");
            goto out;
        }
    }
    err = att_db_touch_ok(w->db, r.tee_id, r.now);
    if (err != LUNA_OK)
        LUNA_LOGF(LUNA_LOG_ERROR, ATT_COMPONENT, "last_ok not saved", LUNA_LOG_ERR("error", err));
done:
    finish(w, &r, ans, http_status);
    if (kind != ATT_KIND_REINSTATE) {
        att_logged(att_audit(&svc->peers, actor,
                        kind == ATT_KIND_REATTEST ? "attestation.reattest" : "attestation.verify",
                        r.tee_id, r.deployment_id, r.att_id, strcmp(r.status, "unavailable") != 0,
                        strcmp(r.status, "refused") == 0,
                        strcmp(r.status, "verified") == 0 ? "" : r.reason, request_id));
    }
    if (kind == ATT_KIND_REATTEST || kind == ATT_KIND_VERIFY) {
        if (abnormal(&r))
            quarantine(w, r.tee_id, r.deployment_id, r.reason, r.att_id);
        else if (strcmp(r.reason, "evidence_unavailable") == 0 &&
                 r.now - last_ok_now(w, &tee) > (int64_t)svc->s->grace)
            quarantine(w, r.tee_id, r.deployment_id, "evidence_missing", r.att_id);
    }
out:
    free(r.report);
    free(ev);
}

static void admit_refuse(att_worker *w, att_result *r, att_answer *ans, int status,
                         const char *reason, const char *message, const char *request_id)
{
    refuse(r, reason, message);
    r->ap.ok = false;
    finish(w, r, ans, status);
    att_logged(att_audit(&w->svc->peers, ATT_HOST_IDENTITY, "tee.admit", r->tee_id, r->deployment_id,
                    r->att_id, true, true, reason, request_id));
}

void att_engine_admit(att_worker *w, const att_admit_input *in, const char *request_id,
                      att_answer *ans)
{
    att_service *svc = w->svc;
    att_result r;
    att_registry_entry reg;
    att_tee tee;
    uint8_t expected[ATT_NONCE_LEN];
    EVP_PKEY *pub = NULL;
    X509 *cert = NULL;
    BIO *bio = NULL;
    char identity[LUNA_PKI_IDENTITY_MAX];
    int64_t nb, na;
    luna_err err;

    memset(&r, 0, sizeof r);
    memset(ans, 0, sizeof ans[0]);
    r.kind = ATT_KIND_ADMIT;
    r.now = (int64_t)time(NULL);
    snprintf(r.tee_id, sizeof r.tee_id, "%s", in->tee_id);
    snprintf(r.evidence_type, sizeof r.evidence_type, "%s", in->evidence_type);
    r.evidence = in->evidence;
    r.evidence_len = in->evidence_len;
    if (new_att_id(r.att_id) != LUNA_OK) {
        error_answer(ans, 500, "internal", "randomness failed");
        return;
    }
    err = att_kms_get_tee(&svc->peers, r.tee_id, &reg);
    if (err == LUNA_ERR_NOT_FOUND) {
        error_answer(ans, 403, "not_registered", "the TEE is not in the registry");
        return;
    }
    if (err != LUNA_OK) {
        error_answer(ans, 503, "registry_unavailable", "the registry could not be asked");
        return;
    }
    snprintf(r.registry_status, sizeof r.registry_status, "%s", reg.status);
    keep_tenants(&r, &reg);
    if (!att_deployment_id_ok(reg.deployment_id)) {
        error_answer(ans, 502, "registry_malformed", "the registry entry has no deployment");
        return;
    }
    snprintf(r.deployment_id, sizeof r.deployment_id, "%s", reg.deployment_id);
    if (strcmp(reg.status, "pending") != 0 && strcmp(reg.status, "active") != 0) {
        admit_refuse(w, &r, ans, 403, "registry_not_admissible",
                     "the registry status is neither pending nor active", request_id);
        return;
    }
    bool was_active = false;
    if (att_db_get_tee(w->db, r.tee_id, &tee) == LUNA_OK) {
        was_active = tee.state == ATT_TEE_ACTIVE;
    } else {
        memset(&tee, 0, sizeof tee);
    }
    if (tee.state == ATT_TEE_REVOKED) {
        admit_refuse(w, &r, ans, 409, "tee_revoked", "the TEE is revoked; revoked is final",
                     request_id);
        return;
    }
    err = att_db_take_nonce(w->db, in->nonce, r.tee_id, r.now);
    if (err != LUNA_OK) {
        const char *reason = err == LUNA_ERR_CONFLICT   ? "nonce_replayed"
                             : err == LUNA_ERR_EXPIRED  ? "nonce_expired"
                             : err == LUNA_ERR_NOT_FOUND ? "nonce_unknown"
                                                         : "storage_unavailable";
        admit_refuse(w, &r, ans, err == LUNA_ERR_CONFLICT ? 409 : 403, reason,
                     "the admission nonce is not a live one issued to this TEE", request_id);
        return;
    }
    if (att_admit_nonce(in->nonce, in->tls_spki, in->tls_spki_len, expected) != LUNA_OK ||
        att_deps_appraise(svc, att_evidence_type_parse(in->evidence_type), in->evidence,
                          in->evidence_len, r.deployment_id, expected, 0, &r.ap) != LUNA_OK) {
        error_answer(ans, 500, "internal", "appraisal failed");
        return;
    }
    if (!r.ap.ok) {
        admit_refuse(w, &r, ans, 403, r.ap.reason, r.ap.message, request_id);
        /* An admitted TEE id now presented by a runtime whose evidence
           fails (a restart from a swapped binary is how a measured process
           changes its code: see docs/attestation.md) is abnormal evidence
           for that TEE: quarantine it now, not at the next round. */
        if (was_active)
            quarantine(w, r.tee_id, r.deployment_id, r.reason, r.att_id);
        return;
    }
    if (luna_pki_pubkey_from_der(in->tls_spki, in->tls_spki_len, &pub) != LUNA_OK) {
        admit_refuse(w, &r, ans, 400, "bad_tls_spki", "tls_spki is not a P-256 public key",
                     request_id);
        return;
    }
    r.status = "verified";
    if (sign_report(svc, &r) != LUNA_OK) {
        error_answer(ans, 500, "internal", "report signing failed");
        goto out;
    }
    snprintf(identity, sizeof identity, "lunal://tee/%s", r.tee_id);
    if (luna_pki_validity_hours(svc->s->tee_cert_hours, &nb, &na) != LUNA_OK ||
        luna_pki_issue(svc->tee_ca, pub, identity, nb, na, &cert) != LUNA_OK) {
        error_answer(ans, 500, "internal", "certificate issue failed");
        goto out;
    }
    /* Fail closed: the entry is written (receipt checked) before anything
       acts - before the KMS activates the TEE and before the certificate
       leaves.  No audit, no admission: the registry keeps its status. */
    if (att_audit(&svc->peers, ATT_HOST_IDENTITY, "tee.admit", r.tee_id, r.deployment_id,
                  r.att_id, true, false, "", request_id) != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, ATT_COMPONENT, "admission refused: audit log unavailable",
                  LUNA_LOG_STR("tee_id", r.tee_id));
        error_answer(ans, 503, "audit_unavailable",
                     "the admission was refused: its audit entry could not be written");
        goto out;
    }
    err = att_kms_activate(&svc->peers, r.tee_id, r.evidence_type, in->evidence, in->evidence_len,
                           r.ap.claims.tee_kx, r.ap.claims.tee_sign, expected);
    if (err != LUNA_OK) {
        /* The entry above said "admitted": record that it did not happen. */
        att_logged(att_audit(&svc->peers, ATT_HOST_IDENTITY, "tee.admit", r.tee_id,
                             r.deployment_id, r.att_id, false, false, "kms_refused", request_id));
        error_answer(ans, err == LUNA_ERR_UNAVAILABLE ? 503 : 403, "kms_refused",
                     "the KMS did not activate the TEE");
        goto out;
    }
    memset(&tee, 0, sizeof tee);
    snprintf(tee.tee_id, sizeof tee.tee_id, "%s", r.tee_id);
    snprintf(tee.deployment_id, sizeof tee.deployment_id, "%s", r.deployment_id);
    snprintf(tee.address, sizeof tee.address, "%s",
             in->address[0] != '\0' ? in->address : reg.address);
    tee.state = ATT_TEE_ACTIVE;
    memcpy(tee.measurement, r.ap.claims.measurement, r.ap.claims.measurement_len);
    tee.measurement_len = r.ap.claims.measurement_len;
    tee.admitted_at = tee.last_ok = tee.updated_at = r.now;
    snprintf(tee.state_reason, sizeof tee.state_reason, "admitted");
    pthread_mutex_lock(&svc->state_lock);
    err = att_db_put_tee(w->db, &tee);
    pthread_mutex_unlock(&svc->state_lock);
    if (err != LUNA_OK) {
        error_answer(ans, err == LUNA_ERR_CONFLICT ? 409 : 503, "state_not_saved",
                     "the TEE could not be recorded");
        goto out;
    }
    finish(w, &r, ans, 200);
    if (ans->status == 200 && ans->body != NULL) {
        BUF_MEM *mem = NULL;
        bio = BIO_new(BIO_s_mem());
        if (bio != NULL && PEM_write_bio_X509(bio, cert) == 1) {
            BIO_get_mem_ptr(bio, &mem);
            json_object_set_new(ans->body, "certificate", json_stringn(mem->data, mem->length));
        } else {
            json_decref(ans->body);
            error_answer(ans, 500, "internal", "certificate encoding failed");
        }
    }
out:
    BIO_free(bio);
    X509_free(cert);
    EVP_PKEY_free(pub);
    free(r.report);
}
