/*
 * audit_webhook.h - the audit log's webhook sink for monitoring systems
 * (private to audit/; docs/audit.md section 9).
 *
 * Each configured sink runs in its own thread with its own read-only
 * connection to the log's store: it reads acknowledged entries (below
 * the tree head) from its durable cursor on, POSTs the ones its filter
 * matches as JSON over HTTPS, and moves the cursor (a small file, written
 * atomically) only after a 2xx.  Delivery is therefore at least once, a
 * restart resumes where the cursor says and never skips; the log itself
 * is the queue, so the sink's memory is bounded by one batch, and an
 * append never waits for a sink.  Failures back off exponentially.
 *
 * Thread safety: start and stop from the service's thread only.
 */
#ifndef LUNA_AUDIT_WEBHOOK_H
#define LUNA_AUDIT_WEBHOOK_H

#include <jansson.h>

#include "luna/err.h"

#define AUDIT_WEBHOOK_MAX 8

typedef struct audit_webhooks audit_webhooks;

/*
 * Starts one thread per entry of the "audit.webhooks" array of the
 * service config (the schema below, AUDIT_WEBHOOK_SCHEMA_ITEM) reading
 * storage_url; default_ca is the platform CA used when a sink names
 * none.  *out is NULL when no sink is configured.
 */
luna_err audit_webhooks_start(const json_t *arr, const char *storage_url, const char *default_ca,
                              audit_webhooks **out) LUNA_MUST_CHECK;
/* Stops the threads (each finishes its current POST) and frees; NULL ok. */
void audit_webhooks_stop(audit_webhooks *w);

#endif
