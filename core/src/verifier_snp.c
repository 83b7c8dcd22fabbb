/*
 * verifier_snp.c - the AMD SEV-SNP backend of the evidence verifier: the
 * 1184-byte ATTESTATION_REPORT (versions 2 and 3, SEV-SNP Firmware ABI
 * spec #56860), its ECDSA P-384 signature by the VCEK or VLEK named in the
 * report's SIGNING_KEY field, the certificate chain VCEK <- ASK (VLEK <-
 * ASVK) <- ARK with the ARK pinned whole, the ARK-signed CRL, and the
 * VCEK's TCB and hwID extensions (KDS spec #57230) against the report.
 *
 * It must never decide policy (verifier.c does), never accept a field
 * layout it does not know (unknown version, signature algorithm, product,
 * reserved bit), and never use a certificate that was not chosen by the
 * report itself (SIGNING_KEY type and, for a VCEK, CHIP_ID).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "verifier_hw.h"
#include "verifier_internal.h"

#define SNP_REPORT_LEN 0x4A0u
#define SNP_SIGNED_LEN 0x2A0u
#define SNP_SIG_COMPONENT 72u /* little-endian, only the low 48 bytes used */
#define SNP_P384_LEN 48u

#define SNP_SIG_ALGO_ECDSA_P384_SHA384 1u

/* Guest POLICY bits (ABI spec, "Guest Policy Structure"). */
#define SNP_POLICY_SMT (1ull << 16)
#define SNP_POLICY_RSVD1 (1ull << 17) /* must be one */
#define SNP_POLICY_MIGRATE_MA (1ull << 18)
#define SNP_POLICY_DEBUG (1ull << 19)
#define SNP_POLICY_KNOWN_MASK 0x3FFFFFFull /* bits 0..25; 26..63 reserved */

/* Report flags (offset 0x48). */
#define SNP_FLAG_AUTHOR_KEY_EN 0x1u
#define SNP_FLAG_MASK_CHIP_KEY 0x2u
#define SNP_FLAG_SIGNING_KEY_SHIFT 2
#define SNP_FLAG_SIGNING_KEY_MASK 0x7u
#define SNP_FLAGS_KNOWN 0x1Fu
#define SNP_SIGNING_VCEK 0u
#define SNP_SIGNING_VLEK 1u

/* PLATFORM_INFO bits 0..5 are defined (SMT_EN, TSME_EN, ECC_EN, RAPL_DIS,
   CIPHERTEXT_HIDING_EN, ALIAS_CHECK_COMPLETE); others reserved. */
#define SNP_PLATFORM_INFO_KNOWN 0x3Full

/* VCEK / VLEK extensions (KDS spec #57230). */
#define OID_BL_SPL "1.3.6.1.4.1.3704.1.3.1"
#define OID_TEE_SPL "1.3.6.1.4.1.3704.1.3.2"
#define OID_SNP_SPL "1.3.6.1.4.1.3704.1.3.3"
#define OID_SPL_4 "1.3.6.1.4.1.3704.1.3.4"
#define OID_SPL_5 "1.3.6.1.4.1.3704.1.3.5"
#define OID_SPL_6 "1.3.6.1.4.1.3704.1.3.6"
#define OID_SPL_7 "1.3.6.1.4.1.3704.1.3.7"
#define OID_UCODE_SPL "1.3.6.1.4.1.3704.1.3.8"
#define OID_HWID "1.3.6.1.4.1.3704.1.4"

typedef struct snp_report {
    uint32_t version;
    uint32_t guest_svn;
    uint64_t policy;
    uint32_t vmpl;
    uint32_t sig_algo;
    uint64_t current_tcb;
    uint64_t platform_info;
    uint32_t flags;
    uint8_t report_data[64];
    uint8_t measurement[48];
    uint8_t host_data[32];
    uint8_t id_key_digest[48];
    uint8_t author_key_digest[48];
    uint64_t reported_tcb;
    uint8_t chip_id[64];
    uint64_t committed_tcb;
    uint64_t launch_tcb;
    uint8_t signed_part[SNP_SIGNED_LEN];
    uint8_t sig[2 * SNP_P384_LEN]; /* big-endian r || s (P1363) */
} snp_report;

typedef struct snp_state {
    snp_report rep;
    /* Set by snp_verify. */
    uint8_t serial[LUNA_CLAIM_SERIAL_MAX];
    size_t serial_len;
    bool crl_checked;
} snp_state;

static luna_verify_reason fail(const char **why, const char *msg, luna_verify_reason r)
{
    *why = msg;
    return r;
}

/* ---- parse ---- */

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

static luna_err read_zero(luna_reader *r, size_t n, bool *zero)
{
    const uint8_t *p = NULL;
    LUNA_GUARD(luna_read_view(r, &p, n));
    *zero = *zero && all_zero(p, n);
    return LUNA_OK;
}

/* One little-endian 72-byte component to 48 big-endian bytes. */
static luna_err read_sig_component(luna_reader *r, uint8_t out[SNP_P384_LEN], bool *zero)
{
    const uint8_t *p = NULL;
    LUNA_GUARD(luna_read_view(r, &p, SNP_SIG_COMPONENT));
    for (size_t i = 0; i < SNP_P384_LEN; i++)
        out[i] = p[SNP_P384_LEN - 1 - i];
    *zero = *zero && all_zero(p + SNP_P384_LEN, SNP_SIG_COMPONENT - SNP_P384_LEN);
    return LUNA_OK;
}

static luna_err parse_report(const uint8_t *ev, size_t len, snp_report *s, bool *reserved_zero)
{
    luna_reader r;
    const uint8_t *cpuid = NULL;
    uint8_t b = 0;

    *reserved_zero = true;
    if (len != SNP_REPORT_LEN)
        return LUNA_ERR_FORMAT;
    memcpy(s->signed_part, ev, SNP_SIGNED_LEN);
    luna_reader_init(&r, ev, len);
    LUNA_GUARD(luna_read_u32_le(&r, &s->version));
    LUNA_GUARD(luna_read_u32_le(&r, &s->guest_svn));
    LUNA_GUARD(luna_read_u64_le(&r, &s->policy));
    LUNA_GUARD(luna_read_skip(&r, 16 + 16)); /* FAMILY_ID, IMAGE_ID */
    LUNA_GUARD(luna_read_u32_le(&r, &s->vmpl));
    LUNA_GUARD(luna_read_u32_le(&r, &s->sig_algo));
    LUNA_GUARD(luna_read_u64_le(&r, &s->current_tcb));
    LUNA_GUARD(luna_read_u64_le(&r, &s->platform_info));
    LUNA_GUARD(luna_read_u32_le(&r, &s->flags));
    LUNA_GUARD(read_zero(&r, 4, reserved_zero)); /* 0x4C */
    LUNA_GUARD(luna_read_bytes(&r, s->report_data, sizeof(s->report_data)));
    LUNA_GUARD(luna_read_bytes(&r, s->measurement, sizeof(s->measurement)));
    LUNA_GUARD(luna_read_bytes(&r, s->host_data, sizeof(s->host_data)));
    LUNA_GUARD(luna_read_bytes(&r, s->id_key_digest, sizeof(s->id_key_digest)));
    LUNA_GUARD(luna_read_bytes(&r, s->author_key_digest, sizeof(s->author_key_digest)));
    LUNA_GUARD(luna_read_skip(&r, 32 + 32)); /* REPORT_ID, REPORT_ID_MA */
    LUNA_GUARD(luna_read_u64_le(&r, &s->reported_tcb));
    /* 0x188: version 3 puts CPUID family/model/stepping in the first three
       bytes; version 2 reserves all 24. */
    LUNA_GUARD(luna_read_view(&r, &cpuid, 3));
    if (s->version == 2)
        *reserved_zero = *reserved_zero && all_zero(cpuid, 3);
    LUNA_GUARD(read_zero(&r, 21, reserved_zero));
    LUNA_GUARD(luna_read_bytes(&r, s->chip_id, sizeof(s->chip_id)));
    LUNA_GUARD(luna_read_u64_le(&r, &s->committed_tcb));
    LUNA_GUARD(luna_read_skip(&r, 3)); /* CURRENT build/minor/major */
    LUNA_GUARD(luna_read_u8(&r, &b));
    *reserved_zero = *reserved_zero && b == 0;
    LUNA_GUARD(luna_read_skip(&r, 3)); /* COMMITTED build/minor/major */
    LUNA_GUARD(luna_read_u8(&r, &b));
    *reserved_zero = *reserved_zero && b == 0;
    LUNA_GUARD(luna_read_u64_le(&r, &s->launch_tcb));
    LUNA_GUARD(read_zero(&r, SNP_SIGNED_LEN - 0x1F8, reserved_zero));
    LUNA_GUARD(read_sig_component(&r, s->sig, reserved_zero));
    LUNA_GUARD(read_sig_component(&r, s->sig + SNP_P384_LEN, reserved_zero));
    LUNA_GUARD(read_zero(&r, SNP_REPORT_LEN - SNP_SIGNED_LEN - 2 * SNP_SIG_COMPONENT,
                         reserved_zero));
    return luna_read_end(&r);
}

static luna_verify_reason snp_parse(const uint8_t *ev, size_t len, void **state, const char **why)
{
    bool reserved_zero = true;
    snp_state *s = calloc(1, sizeof(*s));

    *state = NULL;
    if (s == NULL) {
        *why = "out of memory";
        return LUNA_VERIFY_INTERNAL;
    }
    luna_verify_reason r = LUNA_VERIFY_MALFORMED;
    snp_report *rep = &s->rep;
    if (parse_report(ev, len, rep, &reserved_zero) != LUNA_OK) {
        *why = "SEV-SNP report is not 1184 bytes";
        goto fail;
    }
    r = LUNA_VERIFY_UNSUPPORTED_VERSION;
    if (rep->version != 2 && rep->version != 3) {
        *why = "SEV-SNP report version is not 2 or 3";
        goto fail;
    }
    if (rep->sig_algo != SNP_SIG_ALGO_ECDSA_P384_SHA384) {
        *why = "SEV-SNP signature algorithm is not ECDSA P-384 with SHA-384";
        goto fail;
    }
    uint32_t key = (rep->flags >> SNP_FLAG_SIGNING_KEY_SHIFT) & SNP_FLAG_SIGNING_KEY_MASK;
    if ((rep->flags & SNP_FLAG_MASK_CHIP_KEY) != 0 ||
        (key != SNP_SIGNING_VCEK && key != SNP_SIGNING_VLEK)) {
        *why = "SEV-SNP report is not signed by a VCEK or VLEK";
        goto fail;
    }
    r = LUNA_VERIFY_RESERVED_BITS;
    if ((rep->flags & ~SNP_FLAGS_KNOWN) != 0 || (rep->policy & ~SNP_POLICY_KNOWN_MASK) != 0 ||
        (rep->policy & SNP_POLICY_RSVD1) == 0 ||
        (rep->platform_info & ~SNP_PLATFORM_INFO_KNOWN) != 0 || !reserved_zero) {
        *why = "reserved bit or field set in the SEV-SNP report";
        goto fail;
    }
    r = LUNA_VERIFY_MALFORMED;
    if (rep->vmpl > 3) {
        *why = "SEV-SNP VMPL out of range";
        goto fail;
    }
    *state = s;
    return LUNA_VERIFY_OK;
fail:
    free(s);
    return r;
}

static void snp_free_state(void *state)
{
    free(state);
}

/* ---- verify ---- */

/* TCB_VERSION on Milan and Genoa: byte 0 boot loader, 1 TEE, 2..5
   reserved, 6 SNP, 7 microcode. */
static uint8_t tcb_byte(uint64_t tcb, unsigned i)
{
    return (uint8_t)(tcb >> (8 * i));
}

static bool tcb_reserved_zero(uint64_t tcb)
{
    return (tcb & 0x0000FFFFFFFF0000ull) == 0;
}

/* An SPL extension: a DER INTEGER 0..255 equal to want. */
static bool spl_matches(X509 *cert, const char *oid, uint8_t want)
{
    const uint8_t *v = NULL;
    size_t n = 0;
    int64_t val = -1;
    if (!luna_hw_ext(cert, oid, &v, &n))
        return false;
    const unsigned char *p = v;
    ASN1_INTEGER *ai = d2i_ASN1_INTEGER(NULL, &p, (long)n);
    bool ok = ai != NULL && p == v + n && ASN1_INTEGER_get_int64(&val, ai) == 1 && val >= 0 &&
              val <= 255 && (uint8_t)val == want;
    ASN1_INTEGER_free(ai);
    return ok;
}

/* hwID: the 64-byte chip id, raw (as AMD's KDS issues it) or wrapped in
   an OCTET STRING. */
static int hwid_state(X509 *cert, const uint8_t chip_id[64])
{
    const uint8_t *v = NULL;
    size_t n = 0;
    if (!luna_hw_ext(cert, OID_HWID, &v, &n))
        return -1; /* absent */
    if (n == 66 && v[0] == 0x04 && v[1] == 0x40) {
        v += 2;
        n -= 2;
    }
    return n == 64 && luna_ct_equal(v, chip_id, 64) ? 1 : 0;
}

typedef enum snp_product { SNP_MILAN = 1, SNP_GENOA = 2 } snp_product;

/* The product from the signing certificate's issuer CN. */
static bool product_of(X509 *leaf, bool vlek, snp_product *out)
{
    char cn[64];
    const char *name = NULL;
    if (!luna_hw_cn(X509_get_issuer_name(leaf), cn, sizeof(cn)))
        return false;
    if (vlek) {
        if (strncmp(cn, "SEV-VLEK-", 9) != 0)
            return false;
        name = cn + 9;
    } else {
        if (strncmp(cn, "SEV-", 4) != 0)
            return false;
        name = cn + 4;
    }
    if (strcmp(name, "Milan") == 0)
        *out = SNP_MILAN;
    else if (strcmp(name, "Genoa") == 0)
        *out = SNP_GENOA;
    else
        return false;
    return true;
}

static luna_verify_reason check_ark_crls(const luna_hw_bundle *b, X509 *ark, X509 *leaf,
                                         X509 *const *chain_certs, size_t n_chain,
                                         const luna_backend_ctx *ctx, bool *checked,
                                         const char **why)
{
    EVP_PKEY *ark_key = X509_get0_pubkey(ark);
    bool found = false;

    *checked = false;
    for (size_t i = 0; i < b->n_crls; i++) {
        X509_CRL *crl = b->crls[i];
        int64_t this_update = 0, next_update = 0;
        if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ark)) != 0)
            continue;
        found = true;
        if (ark_key == NULL || X509_CRL_verify(crl, ark_key) != 1) {
            *why = "AMD CRL signature does not verify with the ARK";
            return LUNA_VERIFY_COLLATERAL_INVALID;
        }
        if (luna_hw_asn1_time(X509_CRL_get0_lastUpdate(crl), &this_update) != LUNA_OK ||
            X509_CRL_get0_nextUpdate(crl) == NULL ||
            luna_hw_asn1_time(X509_CRL_get0_nextUpdate(crl), &next_update) != LUNA_OK) {
            *why = "AMD CRL has no valid update times";
            return LUNA_VERIFY_COLLATERAL_INVALID;
        }
        if (ctx->now < this_update || ctx->now > next_update) {
            *why = "AMD CRL is outside its validity (past nextUpdate or not yet valid)";
            return LUNA_VERIFY_COLLATERAL_STALE;
        }
        X509_REVOKED *rev = NULL;
        if (X509_CRL_get0_by_cert(crl, &rev, leaf) == 1) {
            *why = "the VCEK/VLEK is revoked by AMD";
            return LUNA_VERIFY_REVOKED_PLATFORM_KEY;
        }
        for (size_t j = 0; j < n_chain; j++) {
            if (X509_CRL_get0_by_cert(crl, &rev, chain_certs[j]) == 1) {
                *why = "the ASK/ASVK is revoked by AMD";
                return LUNA_VERIFY_REVOKED_PLATFORM_KEY;
            }
        }
    }
    if (!found && !ctx->revocation_optional) {
        *why = "no AMD (ARK-issued) CRL in the SEV-SNP collateral";
        return LUNA_VERIFY_COLLATERAL_MISSING;
    }
    *checked = found;
    return LUNA_VERIFY_OK;
}

static bool cn_is(const X509_NAME *name, const char *want)
{
    char cn[64];
    return luna_hw_cn(name, cn, sizeof(cn)) && strcmp(cn, want) == 0;
}

/* The one anchor named ARK-<product>, for the CRL check of a chain that
   came from the cache (it reached that anchor when it verified). */
static X509 *product_ark(const luna_backend_ctx *ctx, snp_product product)
{
    X509 *found = NULL;
    const char *want = product == SNP_MILAN ? "ARK-Milan" : "ARK-Genoa";
    for (size_t i = 0; i < ctx->n_anchors; i++) {
        if (!cn_is(X509_get_subject_name(ctx->anchors[i]), want))
            continue;
        if (found != NULL)
            return NULL; /* ambiguous: verify the chain again instead */
        found = ctx->anchors[i];
    }
    return found;
}

/* Chain cache key: the leaf and every other certificate the chain could
   be built from, as installed. */
static luna_err chain_key(const luna_hw_bundle *b, size_t leaf_idx, uint8_t **key, size_t *len)
{
    const uint8_t *parts[LUNA_HWCOL_MAX_ITEMS];
    size_t lens[LUNA_HWCOL_MAX_ITEMS];
    size_t n = 0;
    parts[n] = b->cert_der[leaf_idx];
    lens[n++] = b->cert_der_len[leaf_idx];
    for (size_t i = 0; i < b->n_certs; i++) {
        if (i == leaf_idx)
            continue;
        parts[n] = b->cert_der[i];
        lens[n++] = b->cert_der_len[i];
    }
    return luna_hw_cache_key(parts, lens, n, key, len);
}

static luna_verify_reason snp_verify(void *state, const luna_backend_ctx *ctx, const char **why)
{
    snp_state *s = state;
    const snp_report *rep = &s->rep;
    const luna_hw_bundle *b = ctx->collateral;
    const bool vlek = ((rep->flags >> SNP_FLAG_SIGNING_KEY_SHIFT) & SNP_FLAG_SIGNING_KEY_MASK) ==
                      SNP_SIGNING_VLEK;
    const char *want_cn = vlek ? "SEV-VLEK" : "SEV-VCEK";
    const char *other_cn = vlek ? "SEV-VCEK" : "SEV-VLEK";
    X509 *leaf = NULL;
    size_t leaf_idx = 0;
    X509 *ark = NULL;
    X509 *inter[LUNA_HWCOL_MAX_ITEMS];
    size_t n_inter = 0;
    size_t n_named = 0, n_other = 0, n_chip = 0;
    uint8_t pt[97];
    size_t pt_len = 0;
    snp_product product;
    luna_verify_reason r;
    uint8_t *key = NULL;
    size_t key_len = 0;
    luna_chain_entry ce;

    /* Fail closed before any work: every expectation must be set (ANY is
       a setting).  NULL: the caller appraises the claims itself. */
    if (ctx->expect != NULL) {
        r = luna_hw_expect_complete(LUNA_EVIDENCE_SEV_SNP, ctx->expect, why);
        if (r != LUNA_VERIFY_OK)
            return r;
    }
    if (b == NULL)
        return fail(why, "no SEV-SNP collateral (VCEK/VLEK and AMD chain) installed",
                    LUNA_VERIFY_COLLATERAL_MISSING);
    /* The report names its key: SIGNING_KEY says VCEK or VLEK, and a VCEK
       is the one whose hwID is this CHIP_ID. */
    for (size_t i = 0; i < b->n_certs && leaf == NULL; i++) {
        X509 *c = b->certs[i];
        if (cn_is(X509_get_subject_name(c), other_cn))
            n_other++;
        if (!cn_is(X509_get_subject_name(c), want_cn))
            continue;
        n_named++;
        if (!vlek && hwid_state(c, rep->chip_id) != 1)
            continue;
        n_chip++;
        if (luna_hw_ec_point(X509_get0_pubkey(c), LUNA_EC_P384, pt, sizeof(pt), &pt_len, why) !=
            LUNA_VERIFY_OK)
            continue;
        if (luna_ecdsa_verify(LUNA_EC_P384, pt, pt_len, LUNA_SIG_P1363, rep->signed_part,
                              SNP_SIGNED_LEN, rep->sig, sizeof(rep->sig)) == LUNA_OK) {
            leaf = c;
            leaf_idx = i;
        }
    }
    if (leaf == NULL) {
        if (n_named == 0 && n_other > 0)
            return fail(why,
                        vlek ? "SIGNING_KEY says VLEK but the collateral holds only a VCEK"
                             : "SIGNING_KEY says VCEK but the collateral holds only a VLEK",
                        LUNA_VERIFY_SIGNING_KEY_MISMATCH);
        if (n_named == 0)
            return fail(why,
                        vlek ? "no VLEK certificate in the SEV-SNP collateral"
                             : "no VCEK certificate in the SEV-SNP collateral",
                        LUNA_VERIFY_COLLATERAL_MISSING);
        if (n_chip == 0)
            return fail(why, "CHIP_ID is not the hwID of any VCEK in the collateral",
                        LUNA_VERIFY_CHIP_ID_MISMATCH);
        return fail(why, "SEV-SNP report signature does not verify with the VCEK/VLEK",
                    LUNA_VERIFY_BAD_SIGNATURE);
    }
    if (!product_of(leaf, vlek, &product))
        return fail(why, "signing certificate is not issued by a known AMD product key (Milan, Genoa)",
                    LUNA_VERIFY_UNSUPPORTED_VERSION);
    for (size_t i = 0; i < b->n_certs; i++)
        if (i != leaf_idx)
            inter[n_inter++] = b->certs[i];
    /* A chain that already verified with exactly these bytes, and is
       inside its window now, skips the X.509 work (never the report
       signature above, nor the CRLs below). */
    if (chain_key(b, leaf_idx, &key, &key_len) != LUNA_OK)
        return fail(why, "out of memory", LUNA_VERIFY_INTERNAL);
    if (luna_chain_cache_get(ctx->cache, LUNA_EVIDENCE_SEV_SNP, key, key_len, ctx->now, &ce))
        ark = product_ark(ctx, product);
    if (ark == NULL) {
        memset(&ce, 0, sizeof(ce));
        luna_hw_chain_opts o = {.anchors = ctx->anchors,
                                .n_anchors = ctx->n_anchors,
                                .untrusted = inter,
                                .n_untrusted = n_inter,
                                .check_crls = false,
                                .now = ctx->now,
                                .window_not_before = &ce.not_before,
                                .window_not_after = &ce.not_after};
        r = luna_hw_verify_chain(leaf, &o, &ark, NULL, why);
        if (r != LUNA_VERIFY_OK)
            goto out;
        /* The root reached must be this product's ARK, whatever anchors
           the policy holds for other products. */
        if (!cn_is(X509_get_subject_name(ark), product == SNP_MILAN ? "ARK-Milan" : "ARK-Genoa")) {
            r = fail(why, "signing certificate does not chain to the ARK of its product",
                     LUNA_VERIFY_UNKNOWN_ROOT);
            goto out;
        }
        ce.type = LUNA_EVIDENCE_SEV_SNP;
        ce.kind = LUNA_CHAIN_KEY_P384;
        memcpy(ce.key, pt, pt_len);
        ce.key_len = pt_len;
        luna_chain_cache_put(ctx->cache, key, key_len, &ce);
    }
    r = check_ark_crls(b, ark, leaf, inter, n_inter, ctx, &s->crl_checked, why);
    if (r != LUNA_VERIFY_OK)
        goto out;
    /* The certificate certifies one TCB: the report must claim exactly it. */
    if (!tcb_reserved_zero(rep->reported_tcb) || !tcb_reserved_zero(rep->current_tcb) ||
        !tcb_reserved_zero(rep->committed_tcb) || !tcb_reserved_zero(rep->launch_tcb)) {
        r = fail(why, "reserved TCB_VERSION bytes set for a Milan/Genoa report",
                 LUNA_VERIFY_RESERVED_BITS);
        goto out;
    }
    if (!spl_matches(leaf, OID_BL_SPL, tcb_byte(rep->reported_tcb, 0)) ||
        !spl_matches(leaf, OID_TEE_SPL, tcb_byte(rep->reported_tcb, 1)) ||
        !spl_matches(leaf, OID_SNP_SPL, tcb_byte(rep->reported_tcb, 6)) ||
        !spl_matches(leaf, OID_UCODE_SPL, tcb_byte(rep->reported_tcb, 7))) {
        r = fail(why, "REPORTED_TCB is not the TCB the signing certificate was issued for",
                 LUNA_VERIFY_TCB_CERT_MISMATCH);
        goto out;
    }
    /* A VLEK is not chip-bound; if one ever carries a hwID it must match. */
    if (vlek && hwid_state(leaf, rep->chip_id) == 0) {
        r = fail(why, "VLEK hwID does not match CHIP_ID", LUNA_VERIFY_CHIP_ID_MISMATCH);
        goto out;
    }
    if (!luna_hw_serial(leaf, s->serial, &s->serial_len)) {
        r = fail(why, "signing certificate serial is unusable", LUNA_VERIFY_BAD_CERTIFICATE);
        goto out;
    }
out:
    free(key);
    return r;
}

static luna_verify_reason snp_claims(const void *state, const luna_backend_ctx *ctx,
                                     luna_claims *c, const char **why)
{
    const snp_state *s = state;
    const snp_report *rep = &s->rep;

    memset(c, 0, sizeof(*c));
    c->type = LUNA_EVIDENCE_SEV_SNP;
    c->version = rep->version;
    memcpy(c->measurement, rep->measurement, sizeof(rep->measurement));
    c->measurement_len = sizeof(rep->measurement);
    /* mr_signer: the author key when the ID block names one, else the ID
       key (all zero for a guest launched without an ID block). */
    if ((rep->flags & SNP_FLAG_AUTHOR_KEY_EN) != 0)
        memcpy(c->signer, rep->author_key_digest, sizeof(rep->author_key_digest));
    else
        memcpy(c->signer, rep->id_key_digest, sizeof(rep->id_key_digest));
    c->signer_len = sizeof(rep->id_key_digest);
    memcpy(c->report_data, rep->report_data, sizeof(rep->report_data));
    c->debug = (rep->policy & SNP_POLICY_DEBUG) != 0;
    /* Packed reported TCB, most significant first: microcode, SNP, TEE,
       boot loader (docs/evidence-hardware.md). */
    c->tcb_level = (uint32_t)tcb_byte(rep->reported_tcb, 7) << 24 |
                   (uint32_t)tcb_byte(rep->reported_tcb, 6) << 16 |
                   (uint32_t)tcb_byte(rep->reported_tcb, 1) << 8 |
                   (uint32_t)tcb_byte(rep->reported_tcb, 0);
    /* AMD publishes no TCB status collateral: the certificate matched the
       reported TCB, and the minimum is the policy's tcb_level. */
    c->tcb_status = LUNA_TCB_UP_TO_DATE;
    c->qe_status = LUNA_QE_NOT_APPLICABLE;
    memcpy(c->platform_serial, s->serial, s->serial_len);
    c->platform_serial_len = s->serial_len;
    c->revocation_checked = s->crl_checked;
    c->snp_policy = rep->policy;
    c->snp_platform_info = rep->platform_info;
    c->snp_vmpl = rep->vmpl;
    memcpy(c->snp_host_data, rep->host_data, sizeof(rep->host_data));
    c->snp_reported_tcb = (luna_snp_tcb){.bootloader = tcb_byte(rep->reported_tcb, 0),
                                         .tee = tcb_byte(rep->reported_tcb, 1),
                                         .snp = tcb_byte(rep->reported_tcb, 6),
                                         .microcode = tcb_byte(rep->reported_tcb, 7)};
    c->snp_vlek = ((rep->flags >> SNP_FLAG_SIGNING_KEY_SHIFT) & SNP_FLAG_SIGNING_KEY_MASK) ==
                  SNP_SIGNING_VLEK;
    memcpy(c->snp_chip_id, rep->chip_id, sizeof(rep->chip_id));
    /* The policy's expectations, on exactly what the claims say. */
    if (ctx->expect != NULL)
        return luna_hw_expect_check(LUNA_EVIDENCE_SEV_SNP, ctx->expect, c, why);
    return LUNA_VERIFY_OK;
}

/* ---- collateral ---- */

static void snp_collateral_free(void *p)
{
    luna_hw_bundle_free(p);
}

static luna_err snp_collateral_load(const uint8_t *doc, size_t len, X509 *const *anchors,
                                    size_t n_anchors, int64_t now, void **out)
{
    luna_hw_bundle *b = NULL;
    luna_err err;

    *out = NULL;
    LUNA_GUARD(luna_hw_bundle_parse(doc, len, &b));
    LUNA_TRY_ENSURE(b->n_certs > 0 && b->tcb_info == NULL && b->qe_identity == NULL,
                    LUNA_ERR_FORMAT, fail);
    /* AMD CRLs are ARK-issued: each must verify with an anchor now and be
       current.  Certificates are checked per verification (chain). */
    for (size_t i = 0; i < b->n_crls; i++) {
        bool ok = false;
        int64_t next = 0;
        for (size_t j = 0; j < n_anchors && !ok; j++) {
            EVP_PKEY *k = X509_get0_pubkey(anchors[j]);
            ok = k != NULL &&
                 X509_NAME_cmp(X509_CRL_get_issuer(b->crls[i]),
                               X509_get_subject_name(anchors[j])) == 0 &&
                 X509_CRL_verify(b->crls[i], k) == 1;
        }
        LUNA_TRY_ENSURE(ok, LUNA_ERR_VERIFY, fail);
        LUNA_TRY_ENSURE(X509_CRL_get0_nextUpdate(b->crls[i]) != NULL, LUNA_ERR_FORMAT, fail);
        LUNA_TRY(luna_hw_asn1_time(X509_CRL_get0_nextUpdate(b->crls[i]), &next), fail);
        LUNA_TRY_ENSURE(now <= next, LUNA_ERR_EXPIRED, fail);
    }
    *out = b;
    return LUNA_OK;
fail:
    luna_hw_bundle_free(b);
    return err;
}

static int64_t snp_collateral_issued_at(const void *p)
{
    const luna_hw_bundle *b = p;
    return b->issued_at;
}

const luna_verifier_backend luna_verifier_backend_snp = {
    .type = LUNA_EVIDENCE_SEV_SNP,
    .simulated = false,
    .parse = snp_parse,
    .verify = snp_verify,
    .claims = snp_claims,
    .free_state = snp_free_state,
    .collateral_load = snp_collateral_load,
    .collateral_issued_at = snp_collateral_issued_at,
    .collateral_free = snp_collateral_free,
};
