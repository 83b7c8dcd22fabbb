/*
 * verifier_tpm.c - the TPM 2.0 backend of the evidence verifier: a
 * TPM2_Quote (TPMS_ATTEST with TPMS_QUOTE_INFO, TPM 2.0 Library spec
 * Part 2) with its TPMT_SIGNATURE and the PCR values it covers (the LTQ1
 * container of luna/evidence_hw.h); the signature by an attestation key
 * whose certificate, from the collateral, chains to a policy anchor; the
 * PCR digest recomputed from the supplied values; extraData as the
 * report data.  Also the appraisal of quotes of an AK enrolled through
 * luna/tpm.h (luna_tpm_quote_check), with its clock/reset counter rule.
 *
 * It must never decide policy, never take the attestation key from the
 * evidence, never accept SHA-1 signatures, and never accept PCR values
 * that are not exactly the selected ones.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/evidence_hw.h"
#include "luna/tpm.h"
#include "verifier_hw.h"
#include "verifier_internal.h"
#include "verifier_tpm.h"

#define TPM_GENERATED_VALUE 0xff544347u
#define TPM_ST_ATTEST_QUOTE 0x8018u
#define TPM_ALG_RSASSA 0x0014u
#define TPM_ALG_RSAPSS 0x0016u
#define TPM_ALG_ECDSA 0x0018u
#define TPM_MAX_SELECTIONS 4
#define TPM_PCR_SELECT_MAX 4 /* 32 PCRs */

typedef struct tpm_state {
    const uint8_t *attest; /* views into the evidence, valid for the call */
    size_t attest_len;
    uint8_t signer[LUNA_CLAIM_SIGNER_MAX];
    size_t signer_len;
    uint8_t extra[LUNA_CLAIM_REPORT_DATA_LEN];
    size_t extra_len;
    uint8_t pcr_digest[LUNA_HASH_MAX_LEN];
    size_t pcr_digest_len;
    uint16_t sig_alg, sig_hash;
    const uint8_t *sig; /* RSA signature, or ECDSA r || s (P1363) in ecdsa */
    size_t sig_len;
    uint8_t ecdsa[2 * 48];
    uint8_t pcr_concat_digest[LUNA_HASH_MAX_LEN]; /* H(values) */
    luna_tpm_counters counters; /* clockInfo of the quote (valid = parsed) */
    /* The TEE keys of the optional key section: unauthenticated here, the
       verifier's key binding proves them through extraData. */
    bool has_kx, has_ed;
    uint8_t kx[LUNA_CLAIM_KEY_LEN], ed[LUNA_CLAIM_KEY_LEN];
    /* Set by tpm_verify. */
    uint8_t serial[LUNA_CLAIM_SERIAL_MAX];
    size_t serial_len;
    bool crl_checked;
} tpm_state;

static size_t bank_len(uint16_t alg)
{
    switch (alg) {
    case LUNA_TPM_ALG_SHA1: return 20;
    case LUNA_TPM_ALG_SHA256: return 32;
    case LUNA_TPM_ALG_SHA384: return 48;
    case LUNA_TPM_ALG_SHA512: return 64;
    default: return 0;
    }
}

static bool hash_of(uint16_t alg, luna_hash *out)
{
    switch (alg) {
    case LUNA_TPM_ALG_SHA256: *out = LUNA_HASH_SHA256; return true;
    case LUNA_TPM_ALG_SHA384: *out = LUNA_HASH_SHA384; return true;
    case LUNA_TPM_ALG_SHA512: *out = LUNA_HASH_SHA512; return true;
    default: return false;
    }
}

/* ---- container builder ---- */

luna_err luna_tpm_evidence_build(luna_wbuf *w, const uint8_t *attest, size_t attest_len,
                                 const uint8_t *sig, size_t sig_len, const luna_tpm_pcr *pcrs,
                                 size_t n_pcrs)
{
    if (w == NULL || attest == NULL || sig == NULL || (pcrs == NULL && n_pcrs != 0) ||
        attest_len == 0 || attest_len > LUNA_TPM_ATTEST_MAX || sig_len == 0 ||
        sig_len > LUNA_TPM_SIG_MAX || n_pcrs > LUNA_TPM_MAX_PCRS)
        return LUNA_ERR_INVALID_ARG;
    for (size_t i = 0; i < n_pcrs; i++)
        if (pcrs[i].value == NULL || bank_len(pcrs[i].bank) == 0 ||
            pcrs[i].len != bank_len(pcrs[i].bank))
            return LUNA_ERR_INVALID_ARG;
    LUNA_GUARD(luna_write_bytes(w, LUNA_TPM_EVIDENCE_MAGIC, 4));
    LUNA_GUARD(luna_write_u16(w, (uint16_t)attest_len));
    LUNA_GUARD(luna_write_bytes(w, attest, attest_len));
    LUNA_GUARD(luna_write_u16(w, (uint16_t)sig_len));
    LUNA_GUARD(luna_write_bytes(w, sig, sig_len));
    LUNA_GUARD(luna_write_u8(w, (uint8_t)n_pcrs));
    for (size_t i = 0; i < n_pcrs; i++) {
        LUNA_GUARD(luna_write_u16(w, pcrs[i].bank));
        LUNA_GUARD(luna_write_u8(w, pcrs[i].index));
        LUNA_GUARD(luna_write_bytes(w, pcrs[i].value, pcrs[i].len));
    }
    return LUNA_OK;
}

luna_err luna_tpm_evidence_add_keys(luna_wbuf *w, const uint8_t x25519[32],
                                    const uint8_t *ed25519)
{
    if (w == NULL || x25519 == NULL)
        return LUNA_ERR_INVALID_ARG;
    LUNA_GUARD(luna_write_u8(w, LUNA_TPM_EVIDENCE_KEYS_TAG));
    LUNA_GUARD(luna_write_bytes(w, x25519, LUNA_CLAIM_KEY_LEN));
    LUNA_GUARD(luna_write_u8(w, ed25519 != NULL ? 1u : 0u));
    if (ed25519 != NULL)
        LUNA_GUARD(luna_write_bytes(w, ed25519, LUNA_CLAIM_KEY_LEN));
    return LUNA_OK;
}

/* ---- parse ---- */

static luna_err read_tpm2b(luna_reader *r, const uint8_t **p, size_t *n, size_t max)
{
    uint16_t len = 0;
    LUNA_GUARD(luna_read_u16(r, &len));
    LUNA_ENSURE(len <= max, LUNA_ERR_FORMAT);
    *n = len;
    return luna_read_view(r, p, len);
}

typedef struct pcr_sel {
    uint16_t hash;
    uint8_t bitmap[TPM_PCR_SELECT_MAX];
    uint8_t size;
} pcr_sel;

static luna_verify_reason parse_attest(tpm_state *s, pcr_sel *sel, uint32_t *n_sel,
                                       const char **why)
{
    luna_reader r;
    uint32_t magic = 0, count = 0, reset = 0, restart = 0;
    uint16_t type = 0;
    uint64_t clock = 0, fw = 0;
    uint8_t safe = 0;
    const uint8_t *p = NULL;
    size_t n = 0;

    *why = "malformed TPMS_ATTEST";
    luna_reader_init(&r, s->attest, s->attest_len);
    if (luna_read_u32(&r, &magic) != LUNA_OK || luna_read_u16(&r, &type) != LUNA_OK)
        return LUNA_VERIFY_MALFORMED;
    if (magic != TPM_GENERATED_VALUE || type != TPM_ST_ATTEST_QUOTE) {
        *why = "TPMS_ATTEST is not a TPM-generated quote";
        return LUNA_VERIFY_UNSUPPORTED_VERSION;
    }
    if (read_tpm2b(&r, &p, &n, LUNA_CLAIM_SIGNER_MAX) != LUNA_OK || n < 2)
        return LUNA_VERIFY_MALFORMED;
    memcpy(s->signer, p, n);
    s->signer_len = n;
    if (read_tpm2b(&r, &p, &n, LUNA_CLAIM_REPORT_DATA_LEN) != LUNA_OK)
        return LUNA_VERIFY_MALFORMED;
    memcpy(s->extra, p, n);
    s->extra_len = n;
    if (luna_read_u64(&r, &clock) != LUNA_OK || luna_read_u32(&r, &reset) != LUNA_OK ||
        luna_read_u32(&r, &restart) != LUNA_OK || luna_read_u8(&r, &safe) != LUNA_OK ||
        luna_read_u64(&r, &fw) != LUNA_OK)
        return LUNA_VERIFY_MALFORMED;
    if (safe > 1) {
        *why = "TPMS_CLOCK_INFO.safe is not a boolean";
        return LUNA_VERIFY_RESERVED_BITS;
    }
    s->counters.valid = true;
    s->counters.clock = clock;
    s->counters.reset_count = reset;
    s->counters.restart_count = restart;
    if (luna_sha256(s->attest, s->attest_len, s->counters.attest_hash) != LUNA_OK) {
        *why = "out of memory";
        return LUNA_VERIFY_INTERNAL;
    }
    if (luna_read_u32(&r, &count) != LUNA_OK || count == 0 || count > TPM_MAX_SELECTIONS)
        return LUNA_VERIFY_MALFORMED;
    for (uint32_t i = 0; i < count; i++) {
        if (luna_read_u16(&r, &sel[i].hash) != LUNA_OK || luna_read_u8(&r, &sel[i].size) != LUNA_OK ||
            sel[i].size == 0 || sel[i].size > TPM_PCR_SELECT_MAX ||
            luna_read_bytes(&r, sel[i].bitmap, sel[i].size) != LUNA_OK)
            return LUNA_VERIFY_MALFORMED;
        if (bank_len(sel[i].hash) == 0) {
            *why = "unknown PCR bank in the quote";
            return LUNA_VERIFY_UNSUPPORTED_VERSION;
        }
    }
    *n_sel = count;
    if (read_tpm2b(&r, &p, &n, LUNA_HASH_MAX_LEN) != LUNA_OK || n == 0 ||
        luna_read_end(&r) != LUNA_OK)
        return LUNA_VERIFY_MALFORMED;
    memcpy(s->pcr_digest, p, n);
    s->pcr_digest_len = n;
    return LUNA_VERIFY_OK;
}

/* One ECDSA component (TPM2B, big-endian, minimal) left-padded to field. */
static luna_err read_ec_component(luna_reader *r, uint8_t *out, size_t field)
{
    const uint8_t *p = NULL;
    size_t n = 0;
    LUNA_GUARD(read_tpm2b(r, &p, &n, field + 1));
    while (n > field && p[0] == 0) { /* a sign byte some stacks add */
        p++;
        n--;
    }
    LUNA_ENSURE(n >= 1 && n <= field, LUNA_ERR_FORMAT);
    memset(out, 0, field - n);
    memcpy(out + field - n, p, n);
    return LUNA_OK;
}

static luna_verify_reason parse_sig(tpm_state *s, const uint8_t *p, size_t n, const char **why)
{
    luna_reader r;
    luna_hash h;
    luna_reader_init(&r, p, n);
    *why = "malformed TPMT_SIGNATURE";
    if (luna_read_u16(&r, &s->sig_alg) != LUNA_OK || luna_read_u16(&r, &s->sig_hash) != LUNA_OK)
        return LUNA_VERIFY_MALFORMED;
    if (!hash_of(s->sig_hash, &h)) {
        *why = "TPM signature hash is not SHA-256, SHA-384 or SHA-512";
        return LUNA_VERIFY_UNSUPPORTED_VERSION;
    }
    if (s->sig_alg == TPM_ALG_RSASSA || s->sig_alg == TPM_ALG_RSAPSS) {
        if (read_tpm2b(&r, &s->sig, &s->sig_len, 512) != LUNA_OK || s->sig_len == 0)
            return LUNA_VERIFY_MALFORMED;
    } else if (s->sig_alg == TPM_ALG_ECDSA) {
        /* The curve follows the key; the field size follows the hash
           (P-256/SHA-256, P-384/SHA-384), checked again at verification. */
        size_t field = s->sig_hash == LUNA_TPM_ALG_SHA256 ? 32 : 48;
        if (s->sig_hash == LUNA_TPM_ALG_SHA512) {
            *why = "TPM ECDSA with SHA-512 is not supported";
            return LUNA_VERIFY_UNSUPPORTED_VERSION;
        }
        if (read_ec_component(&r, s->ecdsa, field) != LUNA_OK ||
            read_ec_component(&r, s->ecdsa + field, field) != LUNA_OK)
            return LUNA_VERIFY_MALFORMED;
        s->sig = s->ecdsa;
        s->sig_len = 2 * field;
    } else {
        *why = "TPM signature algorithm is not RSASSA, RSAPSS or ECDSA";
        return LUNA_VERIFY_UNSUPPORTED_VERSION;
    }
    return luna_read_end(&r) == LUNA_OK ? LUNA_VERIFY_OK : LUNA_VERIFY_MALFORMED;
}

/* The PCR values must be exactly the selected ones, in selection order;
   their concatenation is hashed with the signature's hash. */
static luna_verify_reason read_pcrs(luna_reader *r, tpm_state *s, const pcr_sel *sel,
                                    uint32_t n_sel, const char **why)
{
    uint8_t n = 0;
    luna_hash h;
    luna_wbuf w;
    luna_verify_reason res = LUNA_VERIFY_MALFORMED;

    *why = "PCR values are not exactly the quote's selection";
    if (!hash_of(s->sig_hash, &h) || luna_read_u8(r, &n) != LUNA_OK || n > LUNA_TPM_MAX_PCRS)
        return LUNA_VERIFY_MALFORMED;
    if (luna_wbuf_init_alloc(&w, (size_t)LUNA_TPM_MAX_PCRS * 64) != LUNA_OK) {
        *why = "out of memory";
        return LUNA_VERIFY_INTERNAL;
    }
    size_t seen = 0;
    for (uint32_t i = 0; i < n_sel; i++) {
        for (unsigned idx = 0; idx < 8u * sel[i].size; idx++) {
            if ((sel[i].bitmap[idx / 8] & (1u << (idx % 8))) == 0)
                continue;
            uint16_t bank = 0;
            uint8_t index = 0;
            const uint8_t *v = NULL;
            if (seen >= n || luna_read_u16(r, &bank) != LUNA_OK ||
                luna_read_u8(r, &index) != LUNA_OK || bank != sel[i].hash || index != idx ||
                luna_read_view(r, &v, bank_len(bank)) != LUNA_OK ||
                luna_write_bytes(&w, v, bank_len(bank)) != LUNA_OK)
                goto out;
            seen++;
        }
    }
    if (seen != n)
        goto out;
    if (luna_hash_digest(h, w.data, w.len, s->pcr_concat_digest) != LUNA_OK) {
        res = LUNA_VERIFY_INTERNAL;
        goto out;
    }
    res = LUNA_VERIFY_OK;
out:
    luna_wbuf_free(&w);
    return res;
}

/* The optional key section: tag || x25519 || u8 has_ed25519 (0/1) || [ed25519]. */
static luna_verify_reason read_keys(luna_reader *r, tpm_state *s, const char **why)
{
    uint8_t tag = 0, has_ed = 0;
    *why = "malformed TPM evidence key section";
    if (luna_read_u8(r, &tag) != LUNA_OK || tag != LUNA_TPM_EVIDENCE_KEYS_TAG ||
        luna_read_bytes(r, s->kx, sizeof(s->kx)) != LUNA_OK ||
        luna_read_u8(r, &has_ed) != LUNA_OK || has_ed > 1)
        return LUNA_VERIFY_MALFORMED;
    if (has_ed == 1 && luna_read_bytes(r, s->ed, sizeof(s->ed)) != LUNA_OK)
        return LUNA_VERIFY_MALFORMED;
    s->has_kx = true;
    s->has_ed = has_ed == 1;
    return LUNA_VERIFY_OK;
}

static luna_verify_reason tpm_parse(const uint8_t *ev, size_t len, void **state, const char **why)
{
    luna_reader r;
    const uint8_t *magic = NULL, *sig = NULL;
    size_t sig_len = 0;
    pcr_sel sel[TPM_MAX_SELECTIONS];
    uint32_t n_sel = 0;
    luna_verify_reason res = LUNA_VERIFY_MALFORMED;
    tpm_state *s = calloc(1, sizeof(*s));

    *state = NULL;
    if (s == NULL) {
        *why = "out of memory";
        return LUNA_VERIFY_INTERNAL;
    }
    *why = "malformed TPM evidence container";
    luna_reader_init(&r, ev, len);
    if (luna_read_view(&r, &magic, 4) != LUNA_OK)
        goto out;
    if (memcmp(magic, LUNA_TPM_EVIDENCE_MAGIC, 4) != 0) {
        res = LUNA_VERIFY_UNSUPPORTED_VERSION;
        *why = "TPM evidence container magic is not LTQ1";
        goto out;
    }
    if (read_tpm2b(&r, &s->attest, &s->attest_len, LUNA_TPM_ATTEST_MAX) != LUNA_OK ||
        read_tpm2b(&r, &sig, &sig_len, LUNA_TPM_SIG_MAX) != LUNA_OK)
        goto out;
    res = parse_attest(s, sel, &n_sel, why);
    if (res != LUNA_VERIFY_OK)
        goto out;
    res = parse_sig(s, sig, sig_len, why);
    if (res != LUNA_VERIFY_OK)
        goto out;
    res = read_pcrs(&r, s, sel, n_sel, why);
    if (res == LUNA_VERIFY_OK && luna_reader_left(&r) != 0)
        res = read_keys(&r, s, why);
    if (res == LUNA_VERIFY_OK && luna_read_end(&r) != LUNA_OK) {
        res = LUNA_VERIFY_MALFORMED;
        *why = "trailing bytes after the TPM evidence";
    }
out:
    if (res != LUNA_VERIFY_OK) {
        free(s);
        return res;
    }
    *state = s;
    return LUNA_VERIFY_OK;
}

static void tpm_free_state(void *state)
{
    free(state);
}

/* ---- verify ---- */

/* The quote signature with key (RSA or EC), whatever the key type. */
static luna_err sig_ok(const tpm_state *s, EVP_PKEY *key)
{
    luna_hash h;
    if (key == NULL || !hash_of(s->sig_hash, &h))
        return LUNA_ERR_VERIFY;
    if (s->sig_alg == TPM_ALG_ECDSA) {
        uint8_t pt[97];
        size_t n = 0;
        const char *why = NULL;
        luna_ec_curve curve = s->sig_hash == LUNA_TPM_ALG_SHA256 ? LUNA_EC_P256 : LUNA_EC_P384;
        if (luna_hw_ec_point(key, curve, pt, sizeof(pt), &n, &why) != LUNA_VERIFY_OK)
            return LUNA_ERR_VERIFY;
        return luna_ecdsa_verify(curve, pt, n, LUNA_SIG_P1363, s->attest, s->attest_len, s->sig,
                                 s->sig_len);
    }
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(key, &der);
    if (n <= 0)
        return LUNA_ERR_VERIFY;
    luna_err e = luna_rsa_verify(der, (size_t)n,
                                 s->sig_alg == TPM_ALG_RSAPSS ? LUNA_RSA_PSS : LUNA_RSA_PKCS1, h,
                                 s->attest, s->attest_len, s->sig, s->sig_len);
    OPENSSL_free(der);
    return e;
}

static luna_verify_reason digest_ok(const tpm_state *s, const char **why)
{
    luna_hash h;
    if (!hash_of(s->sig_hash, &h) || s->pcr_digest_len != luna_hash_len(h) ||
        !luna_ct_equal(s->pcr_digest, s->pcr_concat_digest, s->pcr_digest_len)) {
        *why = "supplied PCR values are not the ones the quote covers";
        return LUNA_VERIFY_BAD_SIGNATURE;
    }
    return LUNA_VERIFY_OK;
}

static luna_verify_reason tpm_verify(void *state, const luna_backend_ctx *ctx, const char **why)
{
    tpm_state *s = state;
    const luna_hw_bundle *b = ctx->collateral;
    X509 *leaf = NULL;
    X509 *others[LUNA_HWCOL_MAX_ITEMS];
    size_t n_others = 0;
    bool candidate = false;
    luna_verify_reason r;

    if (b == NULL) {
        *why = "no TPM collateral (attestation key certificate chain) installed";
        return LUNA_VERIFY_COLLATERAL_MISSING;
    }
    for (size_t i = 0; i < b->n_certs && leaf == NULL; i++) {
        X509 *c = b->certs[i];
        if (X509_check_ca(c) != 0)
            continue;
        candidate = true;
        if (sig_ok(s, X509_get0_pubkey(c)) == LUNA_OK)
            leaf = c;
    }
    if (leaf == NULL) {
        *why = candidate ? "TPM quote signature does not verify with the attestation key"
                         : "no attestation key certificate in the TPM collateral";
        return candidate ? LUNA_VERIFY_BAD_SIGNATURE : LUNA_VERIFY_COLLATERAL_MISSING;
    }
    for (size_t i = 0; i < b->n_certs; i++)
        if (b->certs[i] != leaf)
            others[n_others++] = b->certs[i];
    luna_hw_chain_opts o = {.anchors = ctx->anchors,
                            .n_anchors = ctx->n_anchors,
                            .untrusted = others,
                            .n_untrusted = n_others,
                            .crls = b->crls,
                            .n_crls = b->n_crls,
                            .check_crls = true,
                            .revocation_optional = ctx->revocation_optional,
                            .now = ctx->now};
    r = luna_hw_verify_chain(leaf, &o, NULL, &s->crl_checked, why);
    if (r != LUNA_VERIFY_OK)
        return r;
    /* An AK signs quotes: it must allow digital signatures when it says. */
    if ((X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) != 0 &&
        (X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE) == 0) {
        *why = "attestation key certificate does not allow signing";
        return LUNA_VERIFY_BAD_CERTIFICATE;
    }
    if (!luna_hw_serial(leaf, s->serial, &s->serial_len)) {
        *why = "attestation key certificate serial is unusable";
        return LUNA_VERIFY_BAD_CERTIFICATE;
    }
    return digest_ok(s, why);
}

luna_verify_reason luna_tpm_verify_pinned(const uint8_t *ev, size_t len, EVP_PKEY *ak,
                                          const char **why)
{
    void *state = NULL;
    luna_verify_reason r = luna_verifier_backend_tpm.parse(ev, len, &state, why);
    if (r != LUNA_VERIFY_OK)
        return r;
    if (sig_ok(state, ak) != LUNA_OK) {
        *why = "TPM quote signature does not verify with the pinned attestation key";
        r = LUNA_VERIFY_BAD_SIGNATURE;
    } else {
        r = digest_ok(state, why);
    }
    tpm_free_state(state);
    return r;
}

/* ---- quotes of an enrolled AK (luna/tpm.h) ---- */

const char *luna_tpm_quote_reason_name(luna_tpm_quote_reason r)
{
    switch (r) {
    case LUNA_TPM_QUOTE_OK: return "ok";
    case LUNA_TPM_QUOTE_MALFORMED: return "malformed";
    case LUNA_TPM_QUOTE_UNSUPPORTED: return "unsupported";
    case LUNA_TPM_QUOTE_BAD_SIGNATURE: return "bad_signature";
    case LUNA_TPM_QUOTE_PCR_VALUES_MISMATCH: return "pcr_values_mismatch";
    case LUNA_TPM_QUOTE_REPLAY: return "replay";
    case LUNA_TPM_QUOTE_RESET_BACKWARDS: return "reset_count_backwards";
    case LUNA_TPM_QUOTE_RESTART_BACKWARDS: return "restart_count_backwards";
    case LUNA_TPM_QUOTE_CLOCK_BACKWARDS: return "clock_backwards";
    case LUNA_TPM_QUOTE_NONCE_MISMATCH: return "nonce_mismatch";
    case LUNA_TPM_QUOTE_MEASUREMENT_MISMATCH: return "measurement_mismatch";
    case LUNA_TPM_QUOTE_INTERNAL: return "internal";
    }
    return "unknown";
}

luna_verify_reason luna_tpm_quote_reason_verify(luna_tpm_quote_reason r)
{
    switch (r) {
    case LUNA_TPM_QUOTE_OK: return LUNA_VERIFY_OK;
    case LUNA_TPM_QUOTE_MALFORMED: return LUNA_VERIFY_MALFORMED;
    case LUNA_TPM_QUOTE_UNSUPPORTED: return LUNA_VERIFY_UNSUPPORTED_VERSION;
    case LUNA_TPM_QUOTE_BAD_SIGNATURE:
    case LUNA_TPM_QUOTE_PCR_VALUES_MISMATCH: return LUNA_VERIFY_BAD_SIGNATURE;
    case LUNA_TPM_QUOTE_REPLAY:
    case LUNA_TPM_QUOTE_RESET_BACKWARDS:
    case LUNA_TPM_QUOTE_RESTART_BACKWARDS:
    case LUNA_TPM_QUOTE_CLOCK_BACKWARDS: return LUNA_VERIFY_STALE;
    case LUNA_TPM_QUOTE_NONCE_MISMATCH: return LUNA_VERIFY_NONCE_MISMATCH;
    case LUNA_TPM_QUOTE_MEASUREMENT_MISMATCH: return LUNA_VERIFY_MEASUREMENT_MISMATCH;
    case LUNA_TPM_QUOTE_INTERNAL: return LUNA_VERIFY_INTERNAL;
    }
    return LUNA_VERIFY_INTERNAL;
}

/*
 * (resetCount, restartCount, clock) only move forward for one TPM: a
 * Reset raises resetCount (restartCount starts again at 0), a Restart
 * raises restartCount, and clock counts milliseconds in between.  The AK
 * lives in the endorsement hierarchy, so the TPM does not obfuscate these
 * (Part 1, "privacy" of TPMS_CLOCK_INFO applies to other hierarchies).
 * Equal counters are accepted only for a different quote (two quotes may
 * share a millisecond); the same quote twice is a replay.
 */
luna_tpm_quote_reason luna_tpm_counters_advance(luna_tpm_counters *last,
                                                const luna_tpm_counters *seen)
{
    if (last == NULL || seen == NULL || !seen->valid)
        return LUNA_TPM_QUOTE_INTERNAL;
    if (last->valid) {
        if (seen->reset_count < last->reset_count)
            return LUNA_TPM_QUOTE_RESET_BACKWARDS;
        if (seen->reset_count == last->reset_count) {
            if (seen->restart_count < last->restart_count)
                return LUNA_TPM_QUOTE_RESTART_BACKWARDS;
            if (seen->restart_count == last->restart_count) {
                if (seen->clock < last->clock)
                    return LUNA_TPM_QUOTE_CLOCK_BACKWARDS;
                if (seen->clock == last->clock &&
                    luna_ct_equal(seen->attest_hash, last->attest_hash, 32))
                    return LUNA_TPM_QUOTE_REPLAY;
            }
        }
    }
    *last = *seen;
    return LUNA_TPM_QUOTE_OK;
}

static luna_tpm_quote_reason from_parse(luna_verify_reason r)
{
    switch (r) {
    case LUNA_VERIFY_OK: return LUNA_TPM_QUOTE_OK;
    case LUNA_VERIFY_UNSUPPORTED_VERSION: return LUNA_TPM_QUOTE_UNSUPPORTED;
    case LUNA_VERIFY_INTERNAL: return LUNA_TPM_QUOTE_INTERNAL;
    default: return LUNA_TPM_QUOTE_MALFORMED;
    }
}

luna_tpm_quote_reason luna_tpm_quote_check(const uint8_t *ev, size_t len, EVP_PKEY *ak,
                                           const luna_tpm_quote_expect *x,
                                           luna_tpm_counters *last, const char **why)
{
    const char *dummy = NULL;
    void *state = NULL;
    tpm_state *s;
    luna_tpm_counters next;
    luna_tpm_quote_reason q;

    if (why == NULL)
        why = &dummy;
    *why = "invalid argument";
    if (ev == NULL || ak == NULL || x == NULL || last == NULL || x->extra_data == NULL ||
        x->extra_len == 0 || x->extra_len > LUNA_CLAIM_REPORT_DATA_LEN || x->pcr_digest == NULL ||
        x->pcr_digest_len == 0 || x->pcr_digest_len > LUNA_HASH_MAX_LEN)
        return LUNA_TPM_QUOTE_INTERNAL;
    if (len > LUNA_VERIFY_EVIDENCE_MAX) {
        *why = "TPM evidence over the size cap";
        return LUNA_TPM_QUOTE_MALFORMED;
    }
    q = from_parse(luna_verifier_backend_tpm.parse(ev, len, &state, why));
    if (q != LUNA_TPM_QUOTE_OK)
        return q;
    s = state;
    if (sig_ok(s, ak) != LUNA_OK) {
        *why = "TPM quote is not signed by the enrolled attestation key";
        q = LUNA_TPM_QUOTE_BAD_SIGNATURE;
        goto out;
    }
    if (digest_ok(s, why) != LUNA_VERIFY_OK) {
        q = LUNA_TPM_QUOTE_PCR_VALUES_MISMATCH;
        goto out;
    }
    /* Counters before the nonce: a replayed quote is named a replay even
       when the caller expects a new nonce. */
    next = *last;
    q = luna_tpm_counters_advance(&next, &s->counters);
    if (q != LUNA_TPM_QUOTE_OK) {
        *why = q == LUNA_TPM_QUOTE_REPLAY ? "the same TPM quote was already accepted"
                                          : "TPM clock or reset counters went backwards";
        goto out;
    }
    if (s->extra_len != x->extra_len || !luna_ct_equal(s->extra, x->extra_data, x->extra_len)) {
        *why = "TPM quote extraData is not the expected (nonce, key) binding";
        q = LUNA_TPM_QUOTE_NONCE_MISMATCH;
        goto out;
    }
    if (s->pcr_digest_len != x->pcr_digest_len ||
        !luna_ct_equal(s->pcr_digest, x->pcr_digest, x->pcr_digest_len)) {
        *why = "TPM quote pcrDigest is not the reference measurement";
        q = LUNA_TPM_QUOTE_MEASUREMENT_MISMATCH;
        goto out;
    }
    *last = next;
    *why = "ok";
    q = LUNA_TPM_QUOTE_OK;
out:
    tpm_free_state(state);
    return q;
}

static luna_verify_reason tpm_claims(const void *state, const luna_backend_ctx *ctx,
                                     luna_claims *c, const char **why)
{
    const tpm_state *s = state;
    (void)ctx;
    (void)why;
    memset(c, 0, sizeof(*c));
    c->type = LUNA_EVIDENCE_TPM;
    c->version = 2;
    memcpy(c->measurement, s->pcr_digest, s->pcr_digest_len);
    c->measurement_len = s->pcr_digest_len;
    memcpy(c->signer, s->signer, s->signer_len);
    c->signer_len = s->signer_len;
    memcpy(c->report_data, s->extra, s->extra_len);
    c->tcb_status = LUNA_TCB_UP_TO_DATE;
    c->qe_status = LUNA_QE_NOT_APPLICABLE;
    memcpy(c->platform_serial, s->serial, s->serial_len);
    c->platform_serial_len = s->serial_len;
    c->revocation_checked = s->crl_checked;
    c->has_tee_x25519 = s->has_kx;
    memcpy(c->tee_x25519, s->kx, sizeof(s->kx));
    c->has_tee_ed25519 = s->has_ed;
    memcpy(c->tee_ed25519, s->ed, sizeof(s->ed));
    return LUNA_VERIFY_OK;
}

static luna_err tpm_collateral_load(const uint8_t *doc, size_t len, X509 *const *anchors,
                                    size_t n_anchors, int64_t now, void **out)
{
    luna_hw_bundle *b = NULL;
    (void)anchors;
    (void)n_anchors;
    (void)now;
    *out = NULL;
    LUNA_GUARD(luna_hw_bundle_parse(doc, len, &b));
    if (b->n_certs == 0 || b->tcb_info != NULL || b->qe_identity != NULL) {
        luna_hw_bundle_free(b);
        return LUNA_ERR_FORMAT;
    }
    *out = b;
    return LUNA_OK;
}

static void tpm_collateral_free(void *c)
{
    luna_hw_bundle_free(c);
}

static int64_t tpm_collateral_issued_at(const void *c)
{
    const luna_hw_bundle *b = c;
    return b->issued_at;
}

const luna_verifier_backend luna_verifier_backend_tpm = {
    .type = LUNA_EVIDENCE_TPM,
    .simulated = false,
    .parse = tpm_parse,
    .verify = tpm_verify,
    .claims = tpm_claims,
    .free_state = tpm_free_state,
    .collateral_load = tpm_collateral_load,
    .collateral_issued_at = tpm_collateral_issued_at,
    .collateral_free = tpm_collateral_free,
};
