/*
 * pki_internal.h - what pki.c and pki_file.c share and nothing else may
 * call: the P-256 check and building a CA from loaded parts.
 */
#ifndef LUNA_PKI_INTERNAL_H
#define LUNA_PKI_INTERNAL_H

#include "luna/pki.h"

/* LUNA_OK when key is an EC key on P-256, else LUNA_ERR_UNSUPPORTED. */
luna_err luna_pki_key_is_p256(const EVP_PKEY *key) LUNA_MUST_CHECK;

/*
 * Takes ownership of cert and key on LUNA_OK only (caller frees them on
 * error).  Checks the key is P-256, the certificate a CA, and that they
 * match.
 */
luna_err luna_pki_ca_from_parts(X509 *cert, EVP_PKEY *key, luna_pki_ca **out) LUNA_MUST_CHECK;

/* The CA's private key, borrowed. */
EVP_PKEY *luna_pki_ca_key(const luna_pki_ca *ca);

#endif
