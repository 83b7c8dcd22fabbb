/*
 * luna/audience.h - the token audiences: one per service, equal to the
 * service's mTLS URI identity (docs/protocol.md "Token audiences").
 *
 * IAM mints a token for exactly one of these; each service verifies with
 * its own audience only (luna_jws_verify_opts.audience, never
 * audience_any_of), so a token a service receives cannot be replayed by
 * that service to another one.  This header must never grow a shared or
 * wildcard audience.  Everything here is pure and thread-safe.
 */
#ifndef LUNA_AUDIENCE_H
#define LUNA_AUDIENCE_H

#include <stddef.h>

#include "luna/err.h"

#define LUNA_AUD_GATEWAY "lunal://svc/gateway"
#define LUNA_AUD_IAM "lunal://svc/iam"
#define LUNA_AUD_KMS "lunal://svc/kms"
#define LUNA_AUD_AUDIT "lunal://svc/audit"
#define LUNA_AUD_ATTESTATION "lunal://svc/attestation"

/*
 * On a route the gateway relays, the client sends its gateway token in
 * Authorization and the downstream service's token in this header; the
 * gateway forwards this value (only) as the downstream Authorization.
 */
#define LUNA_DOWNSTREAM_AUTH_HEADER "Lunal-Downstream-Authorization"

/* Short service names, the keys of IAM's "downstream" token object. */
#define LUNA_AUD_NAME_MAX 16u

/*
 * The audience of a short name ("gateway", "iam", "kms", "audit",
 * "attestation"), or NULL for any other string (NULL included).
 */
const char *luna_aud_of(const char *name);

/*
 * Checks a service's configured audience at load time: it must be exactly
 * own (the service's own audience above).  An empty value, the old shared
 * "lunal", another service's audience or anything else is
 * LUNA_ERR_CONFIG; NULL arguments are LUNA_ERR_INVALID_ARG.  Use it in
 * every profile: a service that accepts a foreign audience accepts tokens
 * minted for someone else.
 */
luna_err luna_aud_check_config(const char *configured, const char *own) LUNA_MUST_CHECK;

#endif
