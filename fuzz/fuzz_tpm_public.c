/*
 * Fuzz target: the TPMT_PUBLIC parser of luna/tpm.h (what a TPM host
 * hands the verifier for AK enrolment), then what the verifier derives
 * from a parsed area: its Name, the attestation-key attribute check and
 * the public key (OpenSSL import, point-on-curve check).  Also feeds the
 * input as an LTQ1 container to luna_tpm_quote_check with a throwaway
 * key.  Invariants: nothing reads outside the input; a parse failure
 * leaves no view behind; a Name is nameAlg || digest; nothing fuzzed
 * verifies as a quote, and refused quotes never move the counters.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "luna/tpm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *key;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    luna_tpm_public pub;
    uint8_t name[LUNA_TPM_NAME_MAX];
    size_t name_len = 0;

    if (key == NULL && (key = EVP_EC_gen("P-256")) == NULL)
        abort();
    if (luna_tpm_public_parse(data, size, &pub) == LUNA_OK) {
        if (luna_tpm_public_name(data, size, &pub, name, &name_len) != LUNA_OK || name_len < 34 ||
            ((uint16_t)(name[0] << 8 | name[1])) != pub.name_alg)
            abort();
        luna_err e = luna_tpm_ak_check(&pub);
        if (e != LUNA_OK && e != LUNA_ERR_PERMISSION && e != LUNA_ERR_UNSUPPORTED &&
            e != LUNA_ERR_FORMAT)
            abort();
        EVP_PKEY *k = NULL;
        if (luna_tpm_public_key(&pub, &k) == LUNA_OK && k == NULL)
            abort();
        EVP_PKEY_free(k);
    }
    static const uint8_t extra[32] = {1};
    static const uint8_t ref[32] = {2};
    luna_tpm_counters c;
    memset(&c, 0, sizeof(c));
    luna_tpm_quote_expect x = {extra, sizeof(extra), ref, sizeof(ref)};
    const char *why = NULL;
    if (luna_tpm_quote_check(data, size, key, &x, &c, &why) == LUNA_TPM_QUOTE_OK || c.valid ||
        why == NULL)
        abort();
    return 0;
}
