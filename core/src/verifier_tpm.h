/*
 * verifier_tpm.h - what the TPM backend offers beside its
 * luna_verifier_backend: verification of a quote against a pinned
 * attestation key (no certificate), for TEE hosts that learn the AK from
 * another authenticated source (an Azure HCL report, a provisioning
 * record) and for the tests of samples that have no AK certificate.
 * Private to the verifier module, its tests and fuzz targets.
 */
#ifndef LUNA_VERIFIER_TPM_H
#define LUNA_VERIFIER_TPM_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "luna/verifier.h"

/* Parses an LTQ1 container, checks the quote signature with ak (borrowed)
   and the PCR digest.  Returns a reason; *why a static message. */
luna_verify_reason luna_tpm_verify_pinned(const uint8_t *ev, size_t len, EVP_PKEY *ak,
                                          const char **why);

#endif
