/*
 * kms_verify.c - the KMS's own evidence appraisal (kms_verify.h).
 *
 * Owns: building the verifier policies from the KMS config (its own
 * reference measurements, signers, vendor roots, collateral) and calling
 * the shared verifier.  Must never: relax a policy because an input is
 * missing, or read anything the attestation service sent as a reference.
 */
#include "kms_verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "luna/bytes.h"
#include "luna/json.h"
#include "luna/verifier.h"

/* The getters below read fields the schema already checked (or left out). */
static void ign(luna_err e)
{
    (void)e;
}

#define MAX_COLLATERAL 8u
/* Anchors of one evidence type (kms.trust_anchors entries, or the legacy
   attestation.trust_anchors list, LUNA_CONFIG_MAX_ANCHORS long). */
#define MAX_TYPE_ANCHORS 16u
#define COLLATERAL_MAX_BYTES (64u * 1024u)
/* Verifiers built for registered deployments.  The row is read from the
 * database on every appraisal; an entry is reused only while the row
 * still holds the same references, so a replaced or deleted deployment
 * takes effect at once. */
#define REG_CACHE 8u

typedef struct reg_entry {
    char deployment[65];
    kms_verify_ref ref;
    luna_verifier *release;
    luna_verifier *activate;
    uint64_t used;
} reg_entry;

/*
 * Trust anchors per evidence type.  A root of one vendor must never
 * certify evidence of another type: the sim vendor key signing a TPM "AK",
 * an AMD/Intel leaf becoming an AK, the AK CA becoming an SNP root.
 */
typedef struct type_anchors {
    const char *path[LUNA_EVIDENCE_TYPE_MAX + 1][MAX_TYPE_ANCHORS]; /* borrowed */
    size_t n[LUNA_EVIDENCE_TYPE_MAX + 1];
} type_anchors;

struct kms_verify {
    luna_verifier *release;
    luna_verifier *activate;
    bool allowed[LUNA_EVIDENCE_TYPE_MAX + 1];
    const json_t *root; /* borrowed config, for on-demand builds */
    bool production;
    type_anchors anchors;
    kms_verify_lookup_fn lookup;
    void *lookup_arg;
    reg_entry cache[REG_CACHE];
    uint64_t clock;
};

static bool type_from_name(const char *name, luna_evidence_type *out)
{
    for (int t = 1; t <= LUNA_EVIDENCE_TYPE_MAX; t++) {
        if (strcmp(luna_evidence_type_name((luna_evidence_type)t), name) == 0) {
            *out = (luna_evidence_type)t;
            return true;
        }
    }
    return false;
}

static luna_err read_small_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return LUNA_ERR_IO;
    uint8_t *buf = malloc(COLLATERAL_MAX_BYTES);
    if (buf == NULL) {
        (void)fclose(f);
        return LUNA_ERR_NOMEM;
    }
    size_t n = fread(buf, 1, COLLATERAL_MAX_BYTES, f);
    bool more = fgetc(f) != EOF;
    (void)fclose(f);
    if (more || n == 0) {
        free(buf);
        return more ? LUNA_ERR_TOO_LARGE : LUNA_ERR_FORMAT;
    }
    *out = buf;
    *len = n;
    return LUNA_OK;
}

static luna_err add_anchor(luna_policy *p, luna_evidence_type t, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return LUNA_ERR_IO;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    (void)fclose(f);
    if (x == NULL)
        return LUNA_ERR_FORMAT;
    luna_err err = luna_policy_add_anchor(p, t, x);
    X509_free(x);
    return err;
}

/*
 * Installs every configured collateral document (sim: the signed TCB
 * status).  strict: any failure is returned (start-up); otherwise a
 * document that is unchanged or not newer is simply kept (refresh).
 */
static luna_err load_collateral(const json_t *root, luna_verifier *v, bool strict)
{
    const json_t *col = NULL;
    size_t n_col = 0;
    if (luna_json_get_array(root, "kms.collateral", &col, &n_col) != LUNA_OK)
        return LUNA_OK;
    for (size_t i = 0; i < n_col && i < MAX_COLLATERAL; i++) {
        const json_t *c = json_array_get(col, i);
        const char *tname = NULL, *path = NULL;
        size_t tl = 0, pl = 0, len = 0;
        uint8_t *doc = NULL;
        luna_evidence_type t;
        LUNA_GUARD(luna_json_get_string(c, "evidence_type", &tname, &tl));
        LUNA_GUARD(luna_json_get_string(c, "file", &path, &pl));
        if (!type_from_name(tname, &t))
            return LUNA_ERR_CONFIG;
        LUNA_GUARD(read_small_file(path, &doc, &len));
        luna_err err = luna_verifier_set_collateral(v, t, doc, len, 0);
        free(doc);
        if (err != LUNA_OK && (strict || err != LUNA_ERR_CONFLICT))
            return err;
    }
    return LUNA_OK;
}

static luna_err anchor_push(type_anchors *a, luna_evidence_type t, const char *path)
{
    if (path == NULL)
        return LUNA_ERR_CONFIG;
    if (a->n[t] >= MAX_TYPE_ANCHORS)
        return LUNA_ERR_TOO_LARGE;
    a->path[t][a->n[t]++] = path;
    return LUNA_OK;
}

/*
 * Which anchor serves which allowed type:
 *   - tpm: kms.tpm_ak_ca only (the operator's AK enrolment CA);
 *   - other types: kms.trust_anchors entries of that type; without that
 *     list, the legacy attestation.trust_anchors, but only when exactly
 *     one non-TPM type is allowed (otherwise which root certifies which
 *     vendor would be a guess).
 * Every allowed type ends with at least one anchor, else LUNA_ERR_CONFIG.
 */
static luna_err anchors_resolve(const json_t *root, const bool *allowed,
                                const char *const *legacy, size_t n_legacy, type_anchors *out,
                                const char **why)
{
    const json_t *list = NULL;
    size_t n_list = 0, n_other = 0;
    int only = 0;
    memset(out, 0, sizeof(*out));
    if (allowed[LUNA_EVIDENCE_TPM]) {
        const char *ca = NULL;
        size_t cl = 0;
        *why = "kms.tpm_ak_ca (required when tpm evidence is allowed)";
        if (luna_json_get_string(root, "kms.tpm_ak_ca", &ca, &cl) != LUNA_OK)
            return LUNA_ERR_CONFIG;
        LUNA_GUARD(anchor_push(out, LUNA_EVIDENCE_TPM, ca));
    }
    for (int t = 1; t <= LUNA_EVIDENCE_TYPE_MAX; t++) {
        if (allowed[t] && t != LUNA_EVIDENCE_TPM) {
            n_other++;
            only = t;
        }
    }
    *why = "kms.trust_anchors";
    if (luna_json_get_array(root, "kms.trust_anchors", &list, &n_list) == LUNA_OK) {
        for (size_t i = 0; i < n_list; i++) {
            const json_t *e = json_array_get(list, i);
            const char *tname = NULL, *path = NULL;
            size_t tl = 0, pl = 0;
            luna_evidence_type t;
            if (luna_json_get_string(e, "evidence_type", &tname, &tl) != LUNA_OK ||
                luna_json_get_string(e, "file", &path, &pl) != LUNA_OK ||
                !type_from_name(tname, &t))
                return LUNA_ERR_CONFIG;
            if (t == LUNA_EVIDENCE_TPM) {
                *why = "kms.trust_anchors: the tpm anchor is kms.tpm_ak_ca";
                return LUNA_ERR_CONFIG;
            }
            if (allowed[t])
                LUNA_GUARD(anchor_push(out, t, path));
        }
    } else if (n_other > 1) {
        *why = "kms.trust_anchors (required when several non-tpm evidence types are allowed)";
        return LUNA_ERR_CONFIG;
    } else if (n_other == 1) {
        *why = "attestation.trust_anchors";
        for (size_t i = 0; i < n_legacy; i++)
            LUNA_GUARD(anchor_push(out, (luna_evidence_type)only, legacy[i]));
    }
    for (int t = 1; t <= LUNA_EVIDENCE_TYPE_MAX; t++) {
        if (allowed[t] && out->n[t] == 0) {
            *why = "kms.trust_anchors (an allowed evidence type has no anchor)";
            return LUNA_ERR_CONFIG;
        }
    }
    *why = NULL;
    return LUNA_OK;
}

/* One policy from the config; freshness differs between the two uses. */
static luna_err build(const json_t *root, bool production, const bool *allowed,
                      const type_anchors *anchors, bool require_nonce,
                      const char *extra_dep, const kms_verify_ref *extra,
                      luna_verifier **out, const char **why)
{
    luna_policy *p = NULL;
    luna_err err;
    int64_t min_tcb = 0, max_age = 300;
    ign(luna_json_get_int(root, "kms.min_tcb_level", &min_tcb));
    ign(luna_json_get_int(root, "kms.evidence_max_age_sec", &max_age));
    *why = "kms: verifier policy";
    LUNA_TRY(luna_policy_new(production ? LUNA_PROFILE_PRODUCTION : LUNA_PROFILE_DEVELOPMENT, &p),
             fail);
    for (int t = 1; t <= LUNA_EVIDENCE_TYPE_MAX; t++) {
        if (!allowed[t])
            continue;
        *why = "attestation.allowed_evidence";
        LUNA_TRY(luna_policy_allow_type(p, (luna_evidence_type)t, (uint32_t)min_tcb), fail);
        /* A TPM quote has no clock: the caller's nonce, bound with the
           keys in extraData, is its only freshness (docs/tpm-live.md). */
        if (t == LUNA_EVIDENCE_TPM)
            LUNA_TRY(luna_policy_set_nonce_freshness(p, LUNA_EVIDENCE_TPM), fail);
        *why = t == LUNA_EVIDENCE_TPM ? "kms.tpm_ak_ca" : "kms.trust_anchors";
        for (size_t i = 0; i < anchors->n[t]; i++)
            LUNA_TRY(add_anchor(p, (luna_evidence_type)t, anchors->path[t][i]), fail);
    }
    const json_t *refs = NULL;
    size_t n_refs = 0;
    *why = "kms.references";
    if (luna_json_get_array(root, "kms.references", &refs, &n_refs) == LUNA_OK) {
        for (size_t i = 0; i < n_refs; i++) {
            const json_t *r = json_array_get(refs, i);
            const char *dep = NULL, *tname = NULL;
            size_t dl = 0, tl = 0, ml = 0, sl = 0;
            uint8_t m[64], sg[64];
            luna_evidence_type t;
            LUNA_TRY(luna_json_get_string(r, "deployment_id", &dep, &dl), fail);
            LUNA_TRY(luna_json_get_string(r, "evidence_type", &tname, &tl), fail);
            LUNA_TRY_ENSURE(type_from_name(tname, &t), LUNA_ERR_CONFIG, fail);
            LUNA_TRY(luna_json_get_hex(r, "mr_enclave", m, sizeof(m), &ml), fail);
            LUNA_TRY(luna_policy_add_reference(p, dep, t, m, ml), fail);
            if (luna_json_get_hex(r, "mr_signer", sg, sizeof(sg), &sl) == LUNA_OK)
                LUNA_TRY(luna_policy_add_signer(p, dep, sg, sl), fail);
        }
    }
    if (extra_dep != NULL) {
        *why = "registered deployment";
        for (int t = 1; t <= LUNA_EVIDENCE_TYPE_MAX; t++)
            if (allowed[t])
                LUNA_TRY(luna_policy_add_reference(p, extra_dep, (luna_evidence_type)t,
                                                   extra->mr_enclave, extra->mr_enclave_len),
                         fail);
        LUNA_TRY(luna_policy_add_signer(p, extra_dep, extra->mr_signer, extra->mr_signer_len),
                 fail);
    }
    *why = "kms.evidence_max_age_sec";
    LUNA_TRY(luna_policy_set_freshness(p, require_nonce, (uint32_t)max_age, 60), fail);
    luna_policy *given = p;
    p = NULL;
    *why = "kms: verifier";
    LUNA_TRY(luna_verifier_new(given, out), fail);
    *why = "kms.collateral";
    LUNA_TRY(load_collateral(root, *out, true), fail_v);
    *why = NULL;
    return LUNA_OK;
fail_v:
    luna_verifier_free(*out);
    *out = NULL;
fail:
    luna_policy_free(p);
    return err;
}

luna_err kms_verify_new(const json_t *root, bool production, const char *const *types,
                        size_t n_types, const char *const *anchors, size_t n_anchors,
                        kms_verify **out, const char **why)
{
    if (root == NULL || out == NULL || why == NULL)
        return LUNA_ERR_INVALID_ARG;
    kms_verify *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return LUNA_ERR_NOMEM;
    for (size_t i = 0; i < n_types; i++) {
        luna_evidence_type t;
        if (type_from_name(types[i], &t))
            v->allowed[t] = true;
    }
    v->root = root;
    v->production = production;
    luna_err err = anchors_resolve(root, v->allowed, anchors, n_anchors, &v->anchors, why);
    if (err == LUNA_OK)
        err = build(root, production, v->allowed, &v->anchors, true, NULL, NULL, &v->release,
                    why);
    if (err == LUNA_OK)
        err = build(root, production, v->allowed, &v->anchors, false, NULL, NULL,
                    &v->activate, why);
    if (err != LUNA_OK) {
        kms_verify_free(v);
        return err;
    }
    *out = v;
    return LUNA_OK;
}

static void cache_flush(kms_verify *v)
{
    for (size_t i = 0; i < REG_CACHE; i++) {
        luna_verifier_free(v->cache[i].release);
        luna_verifier_free(v->cache[i].activate);
        memset(&v->cache[i], 0, sizeof(v->cache[i]));
    }
}

void kms_verify_free(kms_verify *v)
{
    if (v == NULL)
        return;
    cache_flush(v);
    luna_verifier_free(v->release);
    luna_verifier_free(v->activate);
    free(v);
}

void kms_verify_set_lookup(kms_verify *v, kms_verify_lookup_fn fn, void *arg)
{
    if (v == NULL)
        return;
    v->lookup = fn;
    v->lookup_arg = arg;
    cache_flush(v);
}

bool kms_verify_configured(const kms_verify *v, const char *deployment)
{
    const json_t *refs = NULL;
    size_t n = 0;
    if (v == NULL || deployment == NULL ||
        luna_json_get_array(v->root, "kms.references", &refs, &n) != LUNA_OK)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *dep = NULL;
        size_t dl = 0;
        if (luna_json_get_string(json_array_get(refs, i), "deployment_id", &dep, &dl) ==
                LUNA_OK &&
            strcmp(dep, deployment) == 0)
            return true;
    }
    return false;
}

/*
 * The verifier for a registered deployment whose row holds ref: a cached
 * one built for exactly these references, else a new one (the least
 * recently used entry is replaced).
 */
static luna_err registered_verifier(kms_verify *v, const char *deployment,
                                    const kms_verify_ref *ref, bool release, luna_verifier **out)
{
    reg_entry *slot = &v->cache[0];
    size_t dl = strlen(deployment);
    if (dl >= sizeof(slot->deployment))
        return LUNA_ERR_INVALID_ARG;
    for (size_t i = 0; i < REG_CACHE; i++) {
        reg_entry *e = &v->cache[i];
        if (e->release != NULL && strcmp(e->deployment, deployment) == 0 &&
            memcmp(&e->ref, ref, sizeof(*ref)) == 0) {
            e->used = ++v->clock;
            *out = release ? e->release : e->activate;
            return LUNA_OK;
        }
        if (e->used < slot->used)
            slot = e;
    }
    luna_verifier *rel = NULL, *act = NULL;
    const char *why = NULL;
    LUNA_GUARD(build(v->root, v->production, v->allowed, &v->anchors, true, deployment, ref,
                     &rel, &why));
    luna_err err = build(v->root, v->production, v->allowed, &v->anchors, false, deployment,
                         ref, &act, &why);
    if (err != LUNA_OK) {
        luna_verifier_free(rel);
        return err;
    }
    luna_verifier_free(slot->release);
    luna_verifier_free(slot->activate);
    memset(slot, 0, sizeof(*slot));
    memcpy(slot->deployment, deployment, dl + 1);
    slot->ref = *ref;
    slot->release = rel;
    slot->activate = act;
    slot->used = ++v->clock;
    *out = release ? rel : act;
    return LUNA_OK;
}

bool kms_verify_type_ok(const kms_verify *v, const char *type)
{
    luna_evidence_type t;
    return v != NULL && type != NULL && type_from_name(type, &t) && v->allowed[t];
}

luna_err kms_verify_evidence(kms_verify *v, bool release, const char *type, const uint8_t *ev,
                             size_t len, const char *deployment, const uint8_t *nonce,
                             const uint8_t *kx, const uint8_t *sign, int64_t now,
                             kms_ev_claims *out, const char **reason)
{
    luna_verify_result res;
    luna_evidence_type t;
    *reason = "type_not_allowed";
    if (v == NULL || out == NULL || !type_from_name(type, &t) || !v->allowed[t])
        return LUNA_ERR_VERIFY;
    if (release && nonce == NULL)
        return LUNA_ERR_INVALID_ARG;
    luna_verifier *ver = release ? v->release : v->activate;
    if (deployment != NULL && v->lookup != NULL && !kms_verify_configured(v, deployment)) {
        kms_verify_ref ref;
        memset(&ref, 0, sizeof(ref));
        luna_err lerr = v->lookup(v->lookup_arg, deployment, &ref);
        if (lerr == LUNA_ERR_VERIFY) { /* the row failed its MAC (already logged) */
            *reason = "deployment_row_tampered";
            return LUNA_ERR_VERIFY;
        }
        if (lerr == LUNA_OK)
            lerr = registered_verifier(v, deployment, &ref, release, &ver);
        if (lerr != LUNA_OK && lerr != LUNA_ERR_NOT_FOUND) {
            *reason = "registry_unavailable";
            return LUNA_ERR_VERIFY;
        }
        /* NOT_FOUND: the configured verifier has no reference for it and
           refuses (fail closed). */
    }
    luna_verify_input in = {
        .type = t,
        .evidence = ev,
        .evidence_len = len,
        .deployment_id = deployment,
        .nonce = nonce,
        .tee_x25519 = kx,
        .tee_ed25519 = sign,
        .now = now,
    };
    memset(&res, 0, sizeof(res));
    luna_err err = luna_verifier_verify(ver, &in, &res);
    *reason = luna_verify_reason_name(res.reason);
    if (err != LUNA_OK) {
        luna_wipe(&res, sizeof(res));
        return err == LUNA_ERR_INVALID_ARG ? LUNA_ERR_VERIFY : err;
    }
    memset(out, 0, sizeof(*out));
    const luna_claims *c = &res.claims;
    out->measurement_len = c->measurement_len;
    memcpy(out->measurement, c->measurement, c->measurement_len);
    out->signer_len = c->signer_len;
    memcpy(out->signer, c->signer, c->signer_len);
    out->has_kx = c->has_tee_x25519;
    memcpy(out->kx, c->tee_x25519, 32);
    out->has_sign = c->has_tee_ed25519;
    memcpy(out->sign, c->tee_ed25519, 32);
    out->simulated = c->simulated;
    return LUNA_OK;
}

luna_err kms_verify_refresh(kms_verify *v, const json_t *root)
{
    if (v == NULL || root == NULL)
        return LUNA_ERR_INVALID_ARG;
    LUNA_GUARD(load_collateral(root, v->release, false));
    /* Registered verifiers are rebuilt on next use with the new documents. */
    cache_flush(v);
    return load_collateral(root, v->activate, false);
}
