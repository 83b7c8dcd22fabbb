/*
 * verifier.c - the appraisal policy and the generic half of evidence
 * verification: dispatch to the backend of the evidence type, then the
 * checks every type shares (freshness, key binding, reference measurement,
 * signer, debug, TCB).  docs/verifier.md.
 *
 * It must fail closed: an expectation the policy does not set refuses the
 * evidence; it must never accept simulated evidence under a production
 * policy, and never put evidence bytes in a message.
 */
#include "luna/verifier.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "verifier_internal.h"

/* ---- names ---- */

const char *luna_evidence_type_name(luna_evidence_type type)
{
    switch (type) {
    case LUNA_EVIDENCE_SIM: return "sim";
    case LUNA_EVIDENCE_SEV_SNP: return "sev-snp";
    case LUNA_EVIDENCE_TDX: return "tdx";
    case LUNA_EVIDENCE_SGX: return "sgx";
    case LUNA_EVIDENCE_NITRO: return "nitro";
    case LUNA_EVIDENCE_TPM: return "tpm";
    }
    return "unknown";
}

const char *luna_tcb_status_name(luna_tcb_status status)
{
    switch (status) {
    case LUNA_TCB_UNKNOWN: return "unknown";
    case LUNA_TCB_UP_TO_DATE: return "up_to_date";
    case LUNA_TCB_SW_HARDENING_NEEDED: return "sw_hardening_needed";
    case LUNA_TCB_CONFIGURATION_NEEDED: return "configuration_needed";
    case LUNA_TCB_OUT_OF_DATE: return "out_of_date";
    case LUNA_TCB_REVOKED: return "revoked";
    }
    return "unknown";
}

const char *luna_qe_status_name(luna_qe_status status)
{
    switch (status) {
    case LUNA_QE_UNKNOWN: return "unknown";
    case LUNA_QE_VALID: return "valid";
    case LUNA_QE_OUT_OF_DATE: return "out_of_date";
    case LUNA_QE_REVOKED: return "revoked";
    case LUNA_QE_NOT_APPLICABLE: return "not_applicable";
    }
    return "unknown";
}

static const char *const reason_names[LUNA_VERIFY_REASON__COUNT] = {
    [LUNA_VERIFY_OK] = "ok",
    [LUNA_VERIFY_MALFORMED] = "malformed",
    [LUNA_VERIFY_UNSUPPORTED_VERSION] = "unsupported_version",
    [LUNA_VERIFY_RESERVED_BITS] = "reserved_bits",
    [LUNA_VERIFY_TYPE_NOT_ALLOWED] = "type_not_allowed",
    [LUNA_VERIFY_SIMULATED_IN_PRODUCTION] = "simulated_in_production",
    [LUNA_VERIFY_POLICY_INCOMPLETE] = "policy_incomplete",
    [LUNA_VERIFY_BAD_SIGNATURE] = "bad_signature",
    [LUNA_VERIFY_UNKNOWN_ROOT] = "unknown_root",
    [LUNA_VERIFY_BAD_CERTIFICATE] = "bad_certificate",
    [LUNA_VERIFY_CERT_EXPIRED] = "cert_expired",
    [LUNA_VERIFY_REVOKED_PLATFORM_KEY] = "revoked_platform_key",
    [LUNA_VERIFY_COLLATERAL_MISSING] = "collateral_missing",
    [LUNA_VERIFY_COLLATERAL_INVALID] = "collateral_invalid",
    [LUNA_VERIFY_COLLATERAL_STALE] = "collateral_stale",
    [LUNA_VERIFY_MEASUREMENT_MISMATCH] = "measurement_mismatch",
    [LUNA_VERIFY_UNKNOWN_SIGNER] = "unknown_signer",
    [LUNA_VERIFY_DEBUG_FORBIDDEN] = "debug_forbidden",
    [LUNA_VERIFY_TCB_OUT_OF_DATE] = "tcb_out_of_date",
    [LUNA_VERIFY_TCB_REVOKED] = "tcb_revoked",
    [LUNA_VERIFY_STALE] = "stale",
    [LUNA_VERIFY_FUTURE_TIMESTAMP] = "future_timestamp",
    [LUNA_VERIFY_NONCE_MISMATCH] = "nonce_mismatch",
    [LUNA_VERIFY_KEY_NOT_BOUND] = "key_not_bound",
    [LUNA_VERIFY_INTERNAL] = "internal",
    [LUNA_VERIFY_GUEST_POLICY_REFUSED] = "guest_policy_refused",
    [LUNA_VERIFY_VMPL_MISMATCH] = "vmpl_mismatch",
    [LUNA_VERIFY_REPORT_DATA_MISMATCH] = "report_data_mismatch",
    [LUNA_VERIFY_HOST_DATA_MISMATCH] = "host_data_mismatch",
    [LUNA_VERIFY_TCB_CERT_MISMATCH] = "tcb_cert_mismatch",
    [LUNA_VERIFY_TCB_BELOW_MINIMUM] = "tcb_below_minimum",
    [LUNA_VERIFY_CHIP_ID_MISMATCH] = "chip_id_mismatch",
    [LUNA_VERIFY_SIGNING_KEY_MISMATCH] = "signing_key_mismatch",
    [LUNA_VERIFY_RTMR_MISMATCH] = "rtmr_mismatch",
    [LUNA_VERIFY_MRCONFIGID_MISMATCH] = "mrconfigid_mismatch",
    [LUNA_VERIFY_MROWNERCONFIG_MISMATCH] = "mrownerconfig_mismatch",
    [LUNA_VERIFY_ISVPRODID_MISMATCH] = "isvprodid_mismatch",
    [LUNA_VERIFY_ISVSVN_BELOW_MINIMUM] = "isvsvn_below_minimum",
};

const char *luna_verify_reason_name(luna_verify_reason reason)
{
    if ((unsigned)reason >= LUNA_VERIFY_REASON__COUNT || reason_names[reason] == NULL)
        return "unknown";
    return reason_names[reason];
}

/* ---- binding ---- */

#define BINDING_LABEL "LUNAL-TEE-BINDING-V1"

luna_err luna_verifier_binding(const uint8_t nonce[LUNA_VERIFY_NONCE_LEN],
                               const uint8_t x25519[LUNA_CLAIM_KEY_LEN], const uint8_t *ed25519,
                               uint8_t out[LUNA_CLAIM_REPORT_DATA_LEN])
{
    static const uint8_t zero[LUNA_CLAIM_KEY_LEN];
    uint8_t msg[sizeof(BINDING_LABEL) - 1 + LUNA_VERIFY_NONCE_LEN + 2 * LUNA_CLAIM_KEY_LEN];
    size_t off = 0;

    if (nonce == NULL || x25519 == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    memcpy(msg, BINDING_LABEL, sizeof(BINDING_LABEL) - 1);
    off += sizeof(BINDING_LABEL) - 1;
    memcpy(msg + off, nonce, LUNA_VERIFY_NONCE_LEN);
    off += LUNA_VERIFY_NONCE_LEN;
    memcpy(msg + off, x25519, LUNA_CLAIM_KEY_LEN);
    off += LUNA_CLAIM_KEY_LEN;
    memcpy(msg + off, ed25519 != NULL ? ed25519 : zero, LUNA_CLAIM_KEY_LEN);
    memset(out, 0, LUNA_CLAIM_REPORT_DATA_LEN);
    return luna_sha256(msg, sizeof(msg), out);
}

/* ---- backends ---- */

static const luna_verifier_backend *const backends[] = {
    &luna_verifier_backend_sim,
    &luna_verifier_backend_snp,
    &luna_verifier_backend_nitro,
    &luna_verifier_backend_tdx,
    &luna_verifier_backend_sgx,
    &luna_verifier_backend_tpm,
};

static const luna_verifier_backend *backend_for(luna_evidence_type type)
{
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
        if (backends[i]->type == type)
            return backends[i];
    return NULL;
}

static bool type_ok(luna_evidence_type type)
{
    return (int)type >= 1 && (int)type <= LUNA_EVIDENCE_TYPE_MAX;
}

bool luna_verifier_cert_is_simulated(X509 *cert)
{
    char buf[512];
    X509_NAME *name = cert != NULL ? X509_get_subject_name(cert) : NULL;
    if (name == NULL)
        return false;
    /* A subject that does not fit is treated as simulated: refusing an
       odd production root is safer than admitting a sim one. */
    if (X509_NAME_oneline(name, buf, (int)sizeof(buf)) == NULL)
        return true;
    return strstr(buf, "SIMULATED") != NULL || strlen(buf) >= sizeof(buf) - 1;
}

/* ---- policy ---- */

typedef struct pol_ref {
    luna_evidence_type type;
    uint8_t m[LUNA_CLAIM_MEASUREMENT_MAX];
    size_t len;
} pol_ref;

typedef struct pol_signer {
    uint8_t s[LUNA_CLAIM_SIGNER_MAX];
    size_t len;
} pol_signer;

typedef struct pol_deployment {
    char id[LUNA_POLICY_DEPLOYMENT_MAX + 1];
    pol_ref refs[LUNA_POLICY_MAX_REFS * LUNA_EVIDENCE_TYPE_MAX];
    size_t n_refs;
    pol_signer signers[LUNA_POLICY_MAX_SIGNERS];
    size_t n_signers;
} pol_deployment;

typedef struct pol_type {
    bool allowed;
    bool revocation_optional;
    bool nonce_only; /* no clock in the format: a proven nonce replaces the age rule */
    uint32_t min_tcb;
    unsigned accepted; /* bit per luna_tcb_status */
    X509 *anchors[LUNA_POLICY_MAX_ANCHORS];
    size_t n_anchors;
} pol_type;

struct luna_policy {
    luna_policy_profile profile;
    bool freshness_set;
    bool require_nonce;
    uint32_t max_age;
    uint32_t skew;
    bool allow_debug;
    pol_type types[LUNA_EVIDENCE_TYPE_MAX + 1];
    pol_deployment *deployments[LUNA_POLICY_MAX_DEPLOYMENTS];
    size_t n_deployments;
    /* Hardware expectations; all UNSET (zero) until set: fail closed. */
    luna_snp_expect snp;
    luna_tdx_expect tdx;
    luna_sgx_expect sgx;
};

luna_err luna_policy_new(luna_policy_profile profile, luna_policy **out)
{
    if (out == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    if (profile != LUNA_PROFILE_PRODUCTION && profile != LUNA_PROFILE_DEVELOPMENT)
        return LUNA_ERR_INVALID_ARG;
    luna_policy *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return LUNA_ERR_NOMEM;
    p->profile = profile;
    p->skew = LUNA_POLICY_DEFAULT_SKEW;
    *out = p;
    return LUNA_OK;
}

void luna_policy_free(luna_policy *p)
{
    if (p == NULL)
        return;
    for (size_t t = 0; t <= LUNA_EVIDENCE_TYPE_MAX; t++)
        for (size_t i = 0; i < p->types[t].n_anchors; i++)
            X509_free(p->types[t].anchors[i]);
    for (size_t i = 0; i < p->n_deployments; i++)
        free(p->deployments[i]);
    free(p);
}

luna_err luna_policy_allow_type(luna_policy *p, luna_evidence_type type, uint32_t min_tcb_level)
{
    if (p == NULL || !type_ok(type))
        return LUNA_ERR_INVALID_ARG;
    const luna_verifier_backend *b = backend_for(type);
    if (b == NULL)
        return LUNA_ERR_UNSUPPORTED;
    if (b->simulated && p->profile == LUNA_PROFILE_PRODUCTION)
        return LUNA_ERR_PERMISSION;
    if (p->types[type].allowed)
        return LUNA_ERR_CONFLICT;
    p->types[type].allowed = true;
    p->types[type].min_tcb = min_tcb_level;
    p->types[type].accepted = 1u << LUNA_TCB_UP_TO_DATE;
    return LUNA_OK;
}

luna_err luna_policy_accept_tcb_status(luna_policy *p, luna_evidence_type type,
                                       luna_tcb_status status)
{
    if (p == NULL || !type_ok(type) || status == LUNA_TCB_UNKNOWN ||
        status == LUNA_TCB_REVOKED || (int)status < 0 || (int)status > LUNA_TCB_STATUS_MAX)
        return LUNA_ERR_INVALID_ARG;
    if (!p->types[type].allowed)
        return LUNA_ERR_NOT_FOUND;
    p->types[type].accepted |= 1u << status;
    return LUNA_OK;
}

luna_err luna_policy_add_anchor(luna_policy *p, luna_evidence_type type, X509 *root)
{
    if (p == NULL || !type_ok(type) || root == NULL)
        return LUNA_ERR_INVALID_ARG;
    pol_type *t = &p->types[type];
    if (p->profile == LUNA_PROFILE_PRODUCTION && luna_verifier_cert_is_simulated(root))
        return LUNA_ERR_PERMISSION;
    if (t->n_anchors >= LUNA_POLICY_MAX_ANCHORS)
        return LUNA_ERR_TOO_LARGE;
    if (X509_up_ref(root) != 1)
        return LUNA_ERR_CRYPTO;
    t->anchors[t->n_anchors++] = root;
    return LUNA_OK;
}

static bool deployment_id_ok(const char *id)
{
    size_t n = 0;
    if (id == NULL)
        return false;
    for (; id[n] != '\0'; n++) {
        char c = id[n];
        if (n >= LUNA_POLICY_DEPLOYMENT_MAX)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

static pol_deployment *find_deployment(const luna_policy *p, const char *id)
{
    for (size_t i = 0; i < p->n_deployments; i++)
        if (strcmp(p->deployments[i]->id, id) == 0)
            return p->deployments[i];
    return NULL;
}

static luna_err get_deployment(luna_policy *p, const char *id, pol_deployment **out)
{
    pol_deployment *d = find_deployment(p, id);
    if (d == NULL) {
        if (p->n_deployments >= LUNA_POLICY_MAX_DEPLOYMENTS)
            return LUNA_ERR_TOO_LARGE;
        d = calloc(1, sizeof(*d));
        if (d == NULL)
            return LUNA_ERR_NOMEM;
        memcpy(d->id, id, strlen(id) + 1);
        p->deployments[p->n_deployments++] = d;
    }
    *out = d;
    return LUNA_OK;
}

luna_err luna_policy_add_reference(luna_policy *p, const char *deployment_id,
                                   luna_evidence_type type, const uint8_t *measurement, size_t len)
{
    pol_deployment *d = NULL;
    size_t same_type = 0;

    if (p == NULL || !deployment_id_ok(deployment_id) || !type_ok(type) || measurement == NULL ||
        len == 0 || len > LUNA_CLAIM_MEASUREMENT_MAX)
        return LUNA_ERR_INVALID_ARG;
    LUNA_GUARD(get_deployment(p, deployment_id, &d));
    for (size_t i = 0; i < d->n_refs; i++)
        if (d->refs[i].type == type)
            same_type++;
    if (same_type >= LUNA_POLICY_MAX_REFS)
        return LUNA_ERR_TOO_LARGE;
    pol_ref *r = &d->refs[d->n_refs++];
    r->type = type;
    memcpy(r->m, measurement, len);
    r->len = len;
    return LUNA_OK;
}

luna_err luna_policy_add_signer(luna_policy *p, const char *deployment_id, const uint8_t *signer,
                                size_t len)
{
    pol_deployment *d = NULL;

    if (p == NULL || !deployment_id_ok(deployment_id) || signer == NULL || len == 0 ||
        len > LUNA_CLAIM_SIGNER_MAX)
        return LUNA_ERR_INVALID_ARG;
    LUNA_GUARD(get_deployment(p, deployment_id, &d));
    if (d->n_signers >= LUNA_POLICY_MAX_SIGNERS)
        return LUNA_ERR_TOO_LARGE;
    memcpy(d->signers[d->n_signers].s, signer, len);
    d->signers[d->n_signers].len = len;
    d->n_signers++;
    return LUNA_OK;
}

luna_err luna_policy_set_freshness(luna_policy *p, bool require_nonce, uint32_t max_age_seconds,
                                   uint32_t skew_seconds)
{
    if (p == NULL || max_age_seconds > LUNA_POLICY_MAX_AGE_CAP || skew_seconds > 3600 ||
        (!require_nonce && max_age_seconds == 0))
        return LUNA_ERR_INVALID_ARG;
    p->require_nonce = require_nonce;
    p->max_age = max_age_seconds;
    p->skew = skew_seconds;
    p->freshness_set = true;
    return LUNA_OK;
}

luna_err luna_policy_set_revocation_optional(luna_policy *p, luna_evidence_type type)
{
    if (p == NULL || !type_ok(type))
        return LUNA_ERR_INVALID_ARG;
    if (!p->types[type].allowed)
        return LUNA_ERR_NOT_FOUND;
    p->types[type].revocation_optional = true;
    return LUNA_OK;
}

luna_err luna_policy_set_nonce_freshness(luna_policy *p, luna_evidence_type type)
{
    if (p == NULL || !type_ok(type) || type == LUNA_EVIDENCE_SIM)
        return LUNA_ERR_INVALID_ARG;
    if (!p->types[type].allowed)
        return LUNA_ERR_NOT_FOUND;
    p->types[type].nonce_only = true;
    return LUNA_OK;
}

static bool expect_ok(luna_expect e)
{
    return e == LUNA_EXPECT_UNSET || e == LUNA_EXPECT_ANY || e == LUNA_EXPECT_EXACT;
}

static bool bit_rule_ok(luna_bit_rule b)
{
    return b == LUNA_BIT_UNSET || b == LUNA_BIT_ANY || b == LUNA_BIT_REQUIRED ||
           b == LUNA_BIT_FORBIDDEN;
}

luna_err luna_policy_set_snp(luna_policy *p, const luna_snp_expect *e)
{
    if (p == NULL || e == NULL || !bit_rule_ok(e->smt) || !bit_rule_ok(e->migrate_ma) ||
        !bit_rule_ok(e->single_socket) || !expect_ok(e->vmpl_mode) || e->vmpl > 3 ||
        !expect_ok(e->report_data.mode) || !expect_ok(e->host_data.mode) ||
        !expect_ok(e->min_tcb_mode))
        return LUNA_ERR_INVALID_ARG;
    if (!p->types[LUNA_EVIDENCE_SEV_SNP].allowed)
        return LUNA_ERR_NOT_FOUND;
    p->snp = *e;
    return LUNA_OK;
}

luna_err luna_policy_set_tdx(luna_policy *p, const luna_tdx_expect *e)
{
    if (p == NULL || e == NULL || !expect_ok(e->mrconfigid.mode) ||
        !expect_ok(e->mrownerconfig.mode) || !expect_ok(e->report_data.mode))
        return LUNA_ERR_INVALID_ARG;
    for (size_t i = 0; i < 4; i++)
        if (!expect_ok(e->rtmr[i].mode))
            return LUNA_ERR_INVALID_ARG;
    if (!p->types[LUNA_EVIDENCE_TDX].allowed)
        return LUNA_ERR_NOT_FOUND;
    p->tdx = *e;
    return LUNA_OK;
}

luna_err luna_policy_set_sgx(luna_policy *p, const luna_sgx_expect *e)
{
    if (p == NULL || e == NULL || !expect_ok(e->isvprodid_mode) ||
        !expect_ok(e->min_isvsvn_mode) || !expect_ok(e->report_data.mode))
        return LUNA_ERR_INVALID_ARG;
    if (!p->types[LUNA_EVIDENCE_SGX].allowed)
        return LUNA_ERR_NOT_FOUND;
    p->sgx = *e;
    return LUNA_OK;
}

static const void *expect_of(const luna_policy *p, luna_evidence_type type)
{
    switch (type) {
    case LUNA_EVIDENCE_SEV_SNP: return &p->snp;
    case LUNA_EVIDENCE_TDX: return &p->tdx;
    case LUNA_EVIDENCE_SGX: return &p->sgx;
    default: return NULL;
    }
}

luna_err luna_policy_allow_debug(luna_policy *p)
{
    if (p == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (p->profile != LUNA_PROFILE_DEVELOPMENT)
        return LUNA_ERR_PERMISSION;
    p->allow_debug = true;
    return LUNA_OK;
}

/* ---- chain cache ---- */

typedef struct cache_slot {
    uint8_t *der;
    size_t len;
    uint64_t used;
    luna_chain_entry e;
} cache_slot;

struct luna_chain_cache {
    pthread_mutex_t mu;
    uint64_t clock;
    cache_slot slots[LUNA_CHAIN_CACHE_SLOTS];
};

bool luna_chain_cache_get(luna_chain_cache *c, luna_evidence_type type, const uint8_t *der,
                          size_t len, int64_t now, luna_chain_entry *out)
{
    bool hit = false;
    if (c == NULL || der == NULL || out == NULL)
        return false;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < LUNA_CHAIN_CACHE_SLOTS; i++) {
        cache_slot *s = &c->slots[i];
        /* The whole byte string is the key: a near-identical chain misses. */
        if (s->der == NULL || s->len != len || memcmp(s->der, der, len) != 0)
            continue;
        if (s->e.type == type && now >= s->e.not_before && now <= s->e.not_after) {
            *out = s->e;
            s->used = ++c->clock;
            hit = true;
        }
        break;
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

void luna_chain_cache_put(luna_chain_cache *c, const uint8_t *der, size_t len,
                          const luna_chain_entry *e)
{
    if (c == NULL || der == NULL || e == NULL || len == 0)
        return;
    uint8_t *copy = malloc(len);
    if (copy == NULL)
        return;
    memcpy(copy, der, len);
    pthread_mutex_lock(&c->mu);
    cache_slot *victim = &c->slots[0];
    for (size_t i = 0; i < LUNA_CHAIN_CACHE_SLOTS; i++) {
        cache_slot *s = &c->slots[i];
        if (s->der != NULL && s->len == len && memcmp(s->der, der, len) == 0) {
            victim = s; /* refresh an entry that had fallen out of its window */
            break;
        }
        if (s->der == NULL) {
            victim = s;
            break;
        }
        if (s->used < victim->used)
            victim = s;
    }
    free(victim->der);
    victim->der = copy;
    victim->len = len;
    victim->e = *e;
    victim->used = ++c->clock;
    pthread_mutex_unlock(&c->mu);
}

/* ---- verifier ---- */

struct luna_verifier {
    luna_policy *pol;
    pthread_rwlock_t lock; /* guards collateral */
    void *collateral[LUNA_EVIDENCE_TYPE_MAX + 1];
    luna_chain_cache cache;
};

luna_err luna_verifier_new(luna_policy *policy, luna_verifier **out)
{
    if (out != NULL)
        *out = NULL;
    if (policy == NULL || out == NULL) {
        luna_policy_free(policy);
        return LUNA_ERR_INVALID_ARG;
    }
    luna_verifier *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        luna_policy_free(policy);
        return LUNA_ERR_NOMEM;
    }
    if (pthread_rwlock_init(&v->lock, NULL) != 0) {
        free(v);
        luna_policy_free(policy);
        return LUNA_ERR_NOMEM;
    }
    if (pthread_mutex_init(&v->cache.mu, NULL) != 0) {
        pthread_rwlock_destroy(&v->lock);
        free(v);
        luna_policy_free(policy);
        return LUNA_ERR_NOMEM;
    }
    v->pol = policy;
    *out = v;
    return LUNA_OK;
}

void luna_verifier_free(luna_verifier *v)
{
    if (v == NULL)
        return;
    for (size_t t = 1; t <= LUNA_EVIDENCE_TYPE_MAX; t++) {
        const luna_verifier_backend *b = backend_for((luna_evidence_type)t);
        if (v->collateral[t] != NULL && b != NULL && b->collateral_free != NULL)
            b->collateral_free(v->collateral[t]);
    }
    for (size_t i = 0; i < LUNA_CHAIN_CACHE_SLOTS; i++)
        free(v->cache.slots[i].der);
    pthread_mutex_destroy(&v->cache.mu);
    pthread_rwlock_destroy(&v->lock);
    luna_policy_free(v->pol);
    free(v);
}

static int64_t clock_now(int64_t now)
{
    return now != 0 ? now : (int64_t)time(NULL);
}

luna_err luna_verifier_set_collateral(luna_verifier *v, luna_evidence_type type,
                                      const uint8_t *doc, size_t len, int64_t now)
{
    void *c = NULL;
    luna_err err;

    if (v == NULL || !type_ok(type) || doc == NULL || len == 0 || now < 0)
        return LUNA_ERR_INVALID_ARG;
    const luna_verifier_backend *b = backend_for(type);
    const pol_type *t = &v->pol->types[type];
    if (b == NULL || !t->allowed)
        return LUNA_ERR_PERMISSION;
    if (b->collateral_load == NULL)
        return LUNA_ERR_UNSUPPORTED;
    if (t->n_anchors == 0)
        return LUNA_ERR_CONFIG;
    err = b->collateral_load(doc, len, t->anchors, t->n_anchors, clock_now(now), &c);
    if (err != LUNA_OK)
        return err;
    pthread_rwlock_wrlock(&v->lock);
    void *old = v->collateral[type];
    /* A document older than the installed one is a rollback (a revocation
       list from before a key was revoked): refuse it. */
    if (old != NULL && b->collateral_issued_at(c) < b->collateral_issued_at(old)) {
        pthread_rwlock_unlock(&v->lock);
        b->collateral_free(c);
        return LUNA_ERR_CONFLICT;
    }
    v->collateral[type] = c;
    pthread_rwlock_unlock(&v->lock);
    if (old != NULL)
        b->collateral_free(old);
    return LUNA_OK;
}

/* ---- appraisal ---- */

static luna_err refuse(luna_verify_result *res, luna_verify_reason reason, const char *msg)
{
    size_t n = strlen(msg);
    res->reason = reason;
    if (n >= sizeof(res->message))
        n = sizeof(res->message) - 1;
    memcpy(res->message, msg, n);
    res->message[n] = '\0';
    return LUNA_ERR_VERIFY;
}

static bool ref_matches(const pol_deployment *d, luna_evidence_type type, const luna_claims *c)
{
    bool found = false;
    for (size_t i = 0; i < d->n_refs; i++) {
        const pol_ref *r = &d->refs[i];
        if (r->type == type && r->len == c->measurement_len &&
            luna_ct_equal(r->m, c->measurement, r->len))
            found = true;
    }
    return found;
}

static bool has_refs(const pol_deployment *d, luna_evidence_type type)
{
    for (size_t i = 0; i < d->n_refs; i++)
        if (d->refs[i].type == type)
            return true;
    return false;
}

static bool signer_matches(const pol_deployment *d, const luna_claims *c)
{
    bool found = false;
    for (size_t i = 0; i < d->n_signers; i++)
        if (d->signers[i].len == c->signer_len &&
            luna_ct_equal(d->signers[i].s, c->signer, c->signer_len))
            found = true;
    return found;
}

/* The checks every type shares, on claims a backend authenticated. */
static luna_err appraise(const luna_policy *pol, const pol_deployment *d, const luna_verify_input *in,
                         int64_t now, bool bind, luna_claims *c, luna_verify_result *res)
{
    const pol_type *t = &pol->types[c->type];
    uint8_t rd[LUNA_CLAIM_REPORT_DATA_LEN];
    const uint8_t *nonce = NULL;

    /* Freshness first: old or replayed evidence says nothing current. */
    if (in->nonce != NULL && c->nonce_len != 0 &&
        (c->nonce_len != LUNA_VERIFY_NONCE_LEN ||
         !luna_ct_equal(c->nonce, in->nonce, LUNA_VERIFY_NONCE_LEN)))
        return refuse(res, LUNA_VERIFY_NONCE_MISMATCH, "evidence nonce is not the expected one");
    /* A format without a clock (TPM quotes) proves freshness only through
       the caller's nonce, which the key binding below then checks. */
    bool nonce_stands_in = t->nonce_only && bind && in->nonce != NULL && !c->has_timestamp;
    if (pol->max_age != 0 && !nonce_stands_in) {
        if (!c->has_timestamp)
            return refuse(res, LUNA_VERIFY_STALE, "evidence carries no timestamp to bound its age");
        if (c->timestamp > now + (int64_t)pol->skew)
            return refuse(res, LUNA_VERIFY_FUTURE_TIMESTAMP, "evidence timestamp is in the future");
        if (now - c->timestamp > (int64_t)pol->max_age)
            return refuse(res, LUNA_VERIFY_STALE, "evidence is older than the policy allows");
    }

    /* Key binding: the report data must prove (nonce, keys). */
    if (!bind)
        goto identity;
    if (in->nonce != NULL)
        nonce = in->nonce;
    else if (c->nonce_len == LUNA_VERIFY_NONCE_LEN)
        nonce = c->nonce;
    if (nonce == NULL)
        return refuse(res, LUNA_VERIFY_KEY_NOT_BOUND, "no nonce to check the key binding with");
    if (in->tee_x25519 != NULL) {
        if (c->has_tee_x25519 && !luna_ct_equal(c->tee_x25519, in->tee_x25519, LUNA_CLAIM_KEY_LEN))
            return refuse(res, LUNA_VERIFY_KEY_NOT_BOUND,
                          "the expected TEE key is not the one in the evidence");
        memcpy(c->tee_x25519, in->tee_x25519, LUNA_CLAIM_KEY_LEN);
        c->has_tee_x25519 = true;
    }
    if (in->tee_ed25519 != NULL) {
        if (c->has_tee_ed25519 &&
            !luna_ct_equal(c->tee_ed25519, in->tee_ed25519, LUNA_CLAIM_KEY_LEN))
            return refuse(res, LUNA_VERIFY_KEY_NOT_BOUND,
                          "the expected TEE signing key is not the one in the evidence");
        memcpy(c->tee_ed25519, in->tee_ed25519, LUNA_CLAIM_KEY_LEN);
        c->has_tee_ed25519 = true;
    }
    if (!c->has_tee_x25519)
        return refuse(res, LUNA_VERIFY_KEY_NOT_BOUND, "no TEE public key to bind");
    if (luna_verifier_binding(nonce, c->tee_x25519, c->has_tee_ed25519 ? c->tee_ed25519 : NULL,
                              rd) != LUNA_OK)
        return refuse(res, LUNA_VERIFY_INTERNAL, "binding computation failed");
    if (!luna_ct_equal(rd, c->report_data, sizeof(rd)))
        return refuse(res, LUNA_VERIFY_KEY_NOT_BOUND,
                      "report data does not bind the nonce and TEE keys");

    /* Software identity. */
identity:
    if (!ref_matches(d, c->type, c))
        return refuse(res, LUNA_VERIFY_MEASUREMENT_MISMATCH,
                      "measurement is not a reference value of this deployment");
    if (!signer_matches(d, c))
        return refuse(res, LUNA_VERIFY_UNKNOWN_SIGNER, "signer is not allowed for this deployment");
    if (c->debug && !pol->allow_debug)
        return refuse(res, LUNA_VERIFY_DEBUG_FORBIDDEN, "debug evidence is forbidden");

    /* Platform state. */
    if (c->qe_status == LUNA_QE_REVOKED)
        return refuse(res, LUNA_VERIFY_REVOKED_PLATFORM_KEY, "platform identity is revoked");
    if (c->qe_status == LUNA_QE_OUT_OF_DATE)
        return refuse(res, LUNA_VERIFY_TCB_OUT_OF_DATE, "platform identity is out of date");
    if (c->qe_status != LUNA_QE_VALID && c->qe_status != LUNA_QE_NOT_APPLICABLE)
        return refuse(res, LUNA_VERIFY_INTERNAL, "backend left the platform identity unknown");
    if (c->tcb_status == LUNA_TCB_REVOKED)
        return refuse(res, LUNA_VERIFY_TCB_REVOKED, "TCB level is revoked");
    if (c->tcb_status == LUNA_TCB_UNKNOWN)
        return refuse(res, LUNA_VERIFY_INTERNAL, "backend left the TCB status unknown");
    if (c->tcb_level < t->min_tcb)
        return refuse(res, LUNA_VERIFY_TCB_OUT_OF_DATE, "TCB level is below the policy minimum");
    if ((t->accepted & (1u << c->tcb_status)) == 0)
        return refuse(res, LUNA_VERIFY_TCB_OUT_OF_DATE, "TCB status is not accepted by the policy");
    return LUNA_OK;
}

static luna_err verify_impl(luna_verifier *v, const luna_verify_input *in, bool bind,
                            luna_verify_result *res)
{
    void *state = NULL;
    const char *why = "malformed evidence";
    luna_verify_reason r;
    luna_claims claims;
    luna_err err;

    if (res == NULL)
        return LUNA_ERR_INVALID_ARG;
    memset(res, 0, sizeof(*res));
    if (v == NULL || in == NULL || (in->evidence == NULL && in->evidence_len != 0) || in->now < 0) {
        (void)refuse(res, LUNA_VERIFY_MALFORMED, "invalid arguments");
        return LUNA_ERR_INVALID_ARG;
    }
    const luna_policy *pol = v->pol;
    const int64_t now = clock_now(in->now);
    const luna_verifier_backend *b = type_ok(in->type) ? backend_for(in->type) : NULL;

    if (b == NULL)
        return refuse(res, LUNA_VERIFY_TYPE_NOT_ALLOWED, "no backend for this evidence type");
    if (b->simulated && pol->profile == LUNA_PROFILE_PRODUCTION)
        return refuse(res, LUNA_VERIFY_SIMULATED_IN_PRODUCTION,
                      "simulated evidence is never accepted by a production policy");
    const pol_type *t = &pol->types[in->type];
    if (!t->allowed)
        return refuse(res, LUNA_VERIFY_TYPE_NOT_ALLOWED, "evidence type not allowed by policy");
    if (in->evidence_len == 0 || in->evidence_len > LUNA_VERIFY_EVIDENCE_MAX)
        return refuse(res, LUNA_VERIFY_MALFORMED, "evidence empty or over the size cap");

    /* Fail closed: every expectation this appraisal needs must be set. */
    const pol_deployment *d = deployment_id_ok(in->deployment_id)
                                  ? find_deployment(pol, in->deployment_id)
                                  : NULL;
    if (d == NULL || !has_refs(d, in->type))
        return refuse(res, LUNA_VERIFY_POLICY_INCOMPLETE,
                      "policy has no reference measurement for this deployment and type");
    if (d->n_signers == 0)
        return refuse(res, LUNA_VERIFY_POLICY_INCOMPLETE,
                      "policy has no allowed signer for this deployment");
    if (!pol->freshness_set)
        return refuse(res, LUNA_VERIFY_POLICY_INCOMPLETE, "policy sets no freshness rule");
    if (pol->require_nonce && in->nonce == NULL)
        return refuse(res, LUNA_VERIFY_POLICY_INCOMPLETE,
                      "policy requires a nonce and the caller gave none");
    if (t->n_anchors == 0)
        return refuse(res, LUNA_VERIFY_POLICY_INCOMPLETE, "policy has no trust anchor for this type");

    r = b->parse(in->evidence, in->evidence_len, &state, &why);
    if (r != LUNA_VERIFY_OK)
        return refuse(res, r, why);

    memset(&claims, 0, sizeof(claims));
    pthread_rwlock_rdlock(&v->lock);
    luna_backend_ctx ctx = {.anchors = t->anchors,
                            .n_anchors = t->n_anchors,
                            .collateral = v->collateral[in->type],
                            .cache = &v->cache,
                            .now = now,
                            .revocation_optional = t->revocation_optional,
                            .expect = expect_of(pol, in->type)};
    r = b->verify(state, &ctx, &why);
    if (r == LUNA_VERIFY_OK)
        r = b->claims(state, &ctx, &claims, &why);
    pthread_rwlock_unlock(&v->lock);
    b->free_state(state);
    if (r != LUNA_VERIFY_OK)
        return refuse(res, r, why);
    if (claims.type != in->type || claims.simulated != b->simulated ||
        claims.measurement_len == 0 || claims.measurement_len > LUNA_CLAIM_MEASUREMENT_MAX ||
        claims.signer_len > LUNA_CLAIM_SIGNER_MAX || claims.nonce_len > LUNA_CLAIM_NONCE_MAX)
        return refuse(res, LUNA_VERIFY_INTERNAL, "backend returned inconsistent claims");

    err = appraise(pol, d, in, now, bind, &claims, res);
    res->claims = claims;
    if (err != LUNA_OK)
        return err;
    res->reason = LUNA_VERIFY_OK;
    (void)refuse(res, LUNA_VERIFY_OK, b->simulated ? "verified (SIMULATED, development only)"
                                                   : "verified");
    return LUNA_OK;
}

luna_err luna_verifier_verify(luna_verifier *v, const luna_verify_input *in,
                              luna_verify_result *res)
{
    return verify_impl(v, in, true, res);
}

#ifdef LUNA_TESTING
luna_err luna_verifier_verify_unbound(luna_verifier *v, const luna_verify_input *in,
                                      luna_verify_result *res)
{
    return verify_impl(v, in, false, res);
}
#endif
