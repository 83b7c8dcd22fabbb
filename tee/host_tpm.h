/*
 * host_tpm.h - the TPM side of the live TPM 2.0 path (docs/tpm-live.md):
 * a TEE host that owns a TPM (swtpm in development and tests) reaches it
 * through a TCTI, hands out the EK certificate and the AK public area for
 * enrolment, answers the MakeCredential challenge with
 * TPM2_ActivateCredential, records the TEE measurement in a resettable PCR
 * and produces quotes in the LTQ1 container (luna/evidence_hw.h).
 *
 * Keys: the EK is the persistent RSA-2048 EK at 0x81010001 (what
 * swtpm_setup --create-ek-cert makes; its certificate in NV 0x01C00002).
 * The AK is a primary key of the endorsement hierarchy created from a
 * fixed template (RSA-2048, RSASSA-SHA-256, restricted, fixedTPM): the
 * same TPM always re-creates the same AK, so an enrolment survives a TPM
 * reset.  Measurement convention: PCR 23 (SHA-256 bank) is reset, then
 * extended once with the 32-byte TEE measurement; the quote selects PCR
 * 23 only.
 *
 * Not thread-safe (one ESYS context); one host_tpm per thread.
 */
#ifndef LUNA_HOST_TPM_H
#define LUNA_HOST_TPM_H

#include <stddef.h>
#include <stdint.h>

#include "luna/bytes.h"
#include "luna/err.h"

#define HOST_TPM_PCR 23u
#define HOST_TPM_EK_HANDLE 0x81010001u
#define HOST_TPM_EK_CERT_NV 0x01C00002u
#define HOST_TPM_EVIDENCE_MAX 2048u
#define HOST_TPM_TCTI_MAX 256u

typedef struct host_tpm host_tpm;

/*
 * Opens the TPM named by tcti (a TCTI loader string, e.g.
 * "swtpm:host=127.0.0.1,port=2321"; <= HOST_TPM_TCTI_MAX), checks that the
 * EK is present and creates the AK.  LUNA_ERR_UNAVAILABLE when the TPM
 * cannot be reached, LUNA_ERR_NOT_FOUND without an EK, LUNA_ERR_IO for
 * other TPM errors.
 */
luna_err host_tpm_open(const char *tcti, host_tpm **out) LUNA_MUST_CHECK;
void host_tpm_free(host_tpm *t);

/* The EK certificate (DER, trimmed to its exact length) into out. */
luna_err host_tpm_ek_cert(host_tpm *t, uint8_t *out, size_t cap, size_t *len) LUNA_MUST_CHECK;

/* The AK's marshalled TPMT_PUBLIC (no size prefix) into out. */
luna_err host_tpm_ak_public(host_tpm *t, uint8_t *out, size_t cap, size_t *len) LUNA_MUST_CHECK;

/*
 * TPM2_ActivateCredential for the AK under the EK (policy session with
 * PolicySecret(endorsement)).  id_object and enc_secret are the marshalled
 * TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET of luna/tpm.h.  Writes the
 * recovered credential (<= 64 bytes) into out.  LUNA_ERR_VERIFY when the
 * TPM refuses the blob (made for another AK or another EK),
 * LUNA_ERR_FORMAT for malformed input.
 */
luna_err host_tpm_activate(host_tpm *t, const uint8_t *id_object, size_t id_len,
                           const uint8_t *enc_secret, size_t sec_len, uint8_t *out, size_t cap,
                           size_t *len) LUNA_MUST_CHECK;

/* PCR 23 := 0, then extend it with the 32-byte measurement. */
luna_err host_tpm_measure(host_tpm *t, const uint8_t measurement[32]) LUNA_MUST_CHECK;

/* Extends PCR 23 once more without a reset (tests: a changed PCR). */
luna_err host_tpm_extend(host_tpm *t, const uint8_t digest[32]) LUNA_MUST_CHECK;

/*
 * TPM2_Quote over PCR 23 with extraData = extra (1..64 bytes), packaged
 * with the PCR value as an LTQ1 container into w.
 */
luna_err host_tpm_quote(host_tpm *t, const uint8_t *extra, size_t extra_len,
                        luna_wbuf *w) LUNA_MUST_CHECK;

/*
 * What a TEE host in TPM mode produces for a runtime (docs/tpm-live.md):
 * PCR 23 := measurement (reset + extend), then a quote whose extraData is
 * the first 32 bytes of luna_verifier_binding(nonce, x25519, ed25519)
 * (ed25519 may be NULL), as LTQ1 into w, followed by the key section
 * (luna_tpm_evidence_add_keys) carrying those keys.  The same binding the sim
 * evidence carries, so the shared verifier's key-binding check applies
 * unchanged.
 */
luna_err host_tpm_evidence(host_tpm *t, const uint8_t measurement[32], const uint8_t nonce[32],
                           const uint8_t x25519[32], const uint8_t *ed25519,
                           luna_wbuf *w) LUNA_MUST_CHECK;

#endif
