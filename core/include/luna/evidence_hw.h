/*
 * luna/evidence_hw.h - the collateral bundle the hardware evidence
 * backends (SEV-SNP, TDX, SGX, Nitro, TPM) take through
 * luna_verifier_set_collateral(), and its builder.
 *
 * A bundle is a typed list of the vendor documents a verification needs
 * offline: X.509 certificates (DER), CRLs (DER), Intel TCB Info and QE
 * Identity JSON.  It carries no trust by itself: every certificate must
 * chain to a policy anchor and every document is signature-checked when
 * the evidence is verified.  Format (docs/evidence-hardware.md):
 *
 *   "LHC1" || item*      item = kind(u8) || len(u32, big-endian) || bytes
 *
 * Nothing here allocates except through the caller's luna_wbuf, keeps
 * state, or logs.  Thread-safe.
 */
#ifndef LUNA_EVIDENCE_HW_H
#define LUNA_EVIDENCE_HW_H

#include <stddef.h>
#include <stdint.h>

#include "luna/bytes.h"
#include "luna/err.h"

typedef enum luna_hwcol_kind {
    LUNA_HWCOL_CERT = 1,        /* X.509 certificate, DER */
    LUNA_HWCOL_CRL = 2,         /* X.509 CRL, DER */
    LUNA_HWCOL_TCB_INFO = 3,    /* Intel PCS TCB Info body {"tcbInfo":...,"signature":...} */
    LUNA_HWCOL_QE_IDENTITY = 4, /* Intel PCS Enclave Identity body */
} luna_hwcol_kind;

#define LUNA_HWCOL_MAGIC "LHC1"
#define LUNA_HWCOL_MAGIC_LEN 4
#define LUNA_HWCOL_MAX (512u * 1024u)    /* whole bundle */
#define LUNA_HWCOL_ITEM_MAX (64u * 1024u) /* one item */
#define LUNA_HWCOL_MAX_ITEMS 32

/* Writes the magic; call once on an empty buffer. */
luna_err luna_hwcol_begin(luna_wbuf *w) LUNA_MUST_CHECK;
/*
 * Appends one item.  LUNA_ERR_INVALID_ARG for an unknown kind or an empty
 * item, LUNA_ERR_TOO_LARGE over LUNA_HWCOL_ITEM_MAX or the buffer's cap.
 * The contents are not checked here (the backend does that).
 */
luna_err luna_hwcol_add(luna_wbuf *w, luna_hwcol_kind kind, const uint8_t *data,
                        size_t len) LUNA_MUST_CHECK;

/*
 * TPM 2.0 evidence (type tpm): one quote with the PCR values it covers.
 *
 *   "LTQ1" || u16 attest_len || TPMS_ATTEST || u16 sig_len || TPMT_SIGNATURE
 *          || u8 n || n * (u16 bank (TPM_ALG_ID) || u8 index || digest)
 *
 * Big-endian like the TPM structures; the PCR entries list exactly the
 * PCRs the quote selects, bank by bank in selection order, ascending
 * index.  The attestation key comes from the collateral (its certificate
 * chain), never from the evidence.
 */
#define LUNA_TPM_EVIDENCE_MAGIC "LTQ1"
#define LUNA_TPM_ATTEST_MAX 1024u
#define LUNA_TPM_SIG_MAX 1024u
#define LUNA_TPM_MAX_PCRS 64u
#define LUNA_TPM_ALG_SHA1 0x0004u
#define LUNA_TPM_ALG_SHA256 0x000Bu
#define LUNA_TPM_ALG_SHA384 0x000Cu
#define LUNA_TPM_ALG_SHA512 0x000Du

typedef struct luna_tpm_pcr {
    uint16_t bank; /* LUNA_TPM_ALG_* */
    uint8_t index;
    const uint8_t *value; /* the bank's digest length */
    size_t len;
} luna_tpm_pcr;

/* Writes the container into w (LUNA_ERR_TOO_LARGE past its cap,
   LUNA_ERR_INVALID_ARG for lengths over the caps above or a PCR value
   whose length is not its bank's). */
luna_err luna_tpm_evidence_build(luna_wbuf *w, const uint8_t *attest, size_t attest_len,
                                 const uint8_t *sig, size_t sig_len, const luna_tpm_pcr *pcrs,
                                 size_t n_pcrs) LUNA_MUST_CHECK;

/*
 * The optional key section after the PCR entries (what a TEE host
 * appends, docs/tpm-live.md):
 *
 *   u8 0x4B ('K') || x25519(32) || u8 has_ed25519 (0 or 1) || [ed25519(32)]
 *
 * The TEE keys are not signed by the TPM: the verifier accepts them only
 * through the key binding (extraData = luna_verifier_binding(nonce,
 * keys)), exactly as for sim evidence.  Appends it to a container
 * written by luna_tpm_evidence_build; ed25519 may be NULL.
 */
#define LUNA_TPM_EVIDENCE_KEYS_TAG 0x4Bu
luna_err luna_tpm_evidence_add_keys(luna_wbuf *w, const uint8_t x25519[32],
                                    const uint8_t *ed25519) LUNA_MUST_CHECK;

#endif
