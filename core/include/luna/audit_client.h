/*
 * luna/audit_client.h - how a component writes to the audit log
 * (docs/audit.md section 5).  Fail closed: the callback reports LUNA_OK
 * only when the log answered 201 AND its answer proves it recorded what
 * was sent (the returned canonical entry decodes, its writer fields equal
 * the entry sent, and the returned leaf hash is the hash of those bytes).
 * Anything else - no connection, timeout, refusal, a malformed or
 * mismatching answer - is an error, and the caller must then refuse the
 * operation it was about to log (key release, TEE admission, ...).
 *
 * THE ONLY WAY TO WRITE.  Every component (KMS, attestation, gateway,
 * IAM, TEE hosts, ...) posts its entries through this client; none posts
 * to /v1/audit/entries with its own HTTP code, because a raw POST that
 * does not check the receipt turns "sent" into "logged" and fails open.
 * The pattern for an operation that must be logged first:
 *
 *     decide (policy, verification), but do not act yet;
 *     luna_audit_client_append(c, &entry, done, ctx);
 *     done(err, index, ctx):
 *         err == LUNA_OK  -> act (release the key, admit the TEE), answer;
 *         anything else   -> do NOT act; answer 503; log the refusal.
 *
 * Refusals and failures go through the client too.  A client is made once
 * at start (luna_audit_client_new) and used from the event loop; tools
 * without a loop use luna_audit_append_sync (docs/audit.md section 5).
 *
 * The log sets the entry's component (the caller's mTLS identity) and
 * time; e->component and e->time_ms are ignored on the way out.
 *
 * Errors given to the callback: LUNA_ERR_FORMAT (the log refused the
 * entry as malformed, 400), LUNA_ERR_PERMISSION (not a writer, 403),
 * LUNA_ERR_UNAVAILABLE (could not be written durably, 503, any other
 * status, or the client was freed), LUNA_ERR_VERIFY (the answer does not
 * match the entry), and the transport errors of luna/http.h.
 *
 * Threading: the event_base thread only (luna/http.h's rule).
 */
#ifndef LUNA_AUDIT_CLIENT_H
#define LUNA_AUDIT_CLIENT_H

#include <stdint.h>

#include "luna/audit_entry.h"
#include "luna/err.h"
#include "luna/http.h"

struct event_base;

typedef struct luna_audit_client luna_audit_client;

/* opts: the log's address and identity ("lunal://svc/audit"), this
 * component's certificate.  base is borrowed. */
luna_err luna_audit_client_new(struct event_base *base, const luna_http_client_opts *opts,
                               luna_audit_client **out) LUNA_MUST_CHECK;
/* Pending appends get their callback with LUNA_ERR_UNAVAILABLE first. */
void luna_audit_client_free(luna_audit_client *c);

/* err LUNA_OK: durable at index.  Called exactly once, from the loop. */
typedef void (*luna_audit_done_fn)(luna_err err, uint64_t index, void *arg);

/*
 * Sends e (copied).  When this returns an error (entry breaks the rules:
 * LUNA_ERR_FORMAT; NOMEM) the callback is not called.
 */
luna_err luna_audit_client_append(luna_audit_client *c, const luna_audit_entry *e,
                                  luna_audit_done_fn cb, void *arg) LUNA_MUST_CHECK;

/* Blocking form (CLI, tests, tools): its own event loop. */
luna_err luna_audit_append_sync(const luna_http_client_opts *opts, const luna_audit_entry *e,
                                uint64_t *index) LUNA_MUST_CHECK;

/*
 * Checks a log answer against what was sent (what the callback relies on;
 * exposed for tests).  body is the 201 JSON body.
 */
luna_err luna_audit_check_receipt(const luna_audit_entry *sent, const uint8_t *body, size_t len,
                                  uint64_t *index) LUNA_MUST_CHECK;

#endif
