/*
 * kms_audit.c - the KMS's audit sink: every key and registry operation
 * writes an entry before its effect is committed, and an entry that cannot
 * be written fails the operation (DESIGN.md section 3: key release fails
 * closed).  Two backends behind one call: the audit service over mTLS
 * (luna/audit_client.h: POST /v1/audit/entries with the receipt checked,
 * docs/audit.md), or an append-only local file of
 * canonical entries (one per line, fsync'ed) for the embedded default.
 *
 * Must never: put a key, a token or evidence bytes in an entry (the entry
 * grammar of luna/audit_entry.h leaves no room for one), or report an
 * entry as written before it is durable.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kms.h"
#include "luna/audit_client.h"
#include "luna/http.h"
#include "luna/log.h"

#define AUDIT_PATH_MAX 4096u

struct kms_audit_sink {
    bool http;
    char path[AUDIT_PATH_MAX];
    char host[256];
    char identity[256];
    char ca[AUDIT_PATH_MAX];
    char cert[AUDIT_PATH_MAX];
    char key[AUDIT_PATH_MAX];
    uint16_t port;
};

static luna_err copy(char *dst, size_t cap, const char *src)
{
    if (src == NULL || strlen(src) >= cap)
        return LUNA_ERR_INVALID_ARG;
    memcpy(dst, src, strlen(src) + 1);
    return LUNA_OK;
}

luna_err kms_audit_open_file(const char *path, kms_audit_sink **out)
{
    kms_audit_sink *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return LUNA_ERR_NOMEM;
    if (copy(a->path, sizeof(a->path), path) != LUNA_OK) {
        free(a);
        return LUNA_ERR_INVALID_ARG;
    }
    *out = a;
    return LUNA_OK;
}

luna_err kms_audit_open_http(const char *host, uint16_t port, const char *identity,
                             const char *ca, const char *cert, const char *key,
                             kms_audit_sink **out)
{
    kms_audit_sink *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return LUNA_ERR_NOMEM;
    a->http = true;
    a->port = port;
    if (copy(a->host, sizeof(a->host), host) != LUNA_OK ||
        copy(a->identity, sizeof(a->identity), identity) != LUNA_OK ||
        copy(a->ca, sizeof(a->ca), ca) != LUNA_OK ||
        copy(a->cert, sizeof(a->cert), cert) != LUNA_OK ||
        copy(a->key, sizeof(a->key), key) != LUNA_OK || port == 0) {
        free(a);
        return LUNA_ERR_INVALID_ARG;
    }
    *out = a;
    return LUNA_OK;
}

void kms_audit_free(kms_audit_sink *a)
{
    free(a);
}

/* Appends one line and makes it durable; the file is opened per entry so
 * a rotated or replaced file is picked up and a broken one fails now. */
static luna_err write_file(const kms_audit_sink *a, luna_audit_entry *e)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    e->time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    LUNA_GUARD(luna_audit_set(e->component, sizeof(e->component), KMS_IDENTITY));
    uint8_t line[LUNA_AUDIT_ENTRY_MAX + 1];
    size_t len = 0;
    LUNA_GUARD(luna_audit_entry_encode(e, line, sizeof(line) - 1, &len));
    line[len++] = '\n';
    int fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return LUNA_ERR_UNAVAILABLE;
    ssize_t n = write(fd, line, len);
    int rc = (n == (ssize_t)len) ? fdatasync(fd) : -1;
    (void)close(fd);
    return rc == 0 ? LUNA_OK : LUNA_ERR_UNAVAILABLE;
}

/* Through the shared audit client, which also checks the log's receipt
 * (the canonical entry it stored and its leaf hash match what was sent). */
static luna_err write_http(const kms_audit_sink *a, const luna_audit_entry *e)
{
    luna_http_client_opts o = {
        .tls = {.ca_file = a->ca, .cert_file = a->cert, .key_file = a->key},
        .host = a->host,
        .port = a->port,
        .expected_identity = a->identity,
        .timeout_sec = 5,
    };
    uint64_t index = 0;
    luna_err err = luna_audit_append_sync(&o, e, &index);
    return err == LUNA_OK ? LUNA_OK : LUNA_ERR_UNAVAILABLE;
}

luna_err kms_audit(kms_svc *s, const kms_caller *c, const char *op, const char *tenant,
                   const char *tee, const char *deployment, const char *const *objects,
                   luna_audit_outcome outcome, const char *reason)
{
    if (s == NULL || s->audit == NULL)
        return LUNA_ERR_UNAVAILABLE;
    luna_audit_entry e;
    memset(&e, 0, sizeof(e));
    const char *actor = KMS_IDENTITY;
    const char *rid = "kms-internal";
    if (c != NULL) {
        actor = c->actor[0] != '\0' ? c->actor : (c->identity != NULL ? c->identity : actor);
        if (c->request_id != NULL)
            rid = c->request_id;
    }
    luna_err err = LUNA_OK;
    LUNA_TRY(luna_audit_set(e.actor, sizeof(e.actor), actor), out);
    LUNA_TRY(luna_audit_set(e.operation, sizeof(e.operation), op), out);
    LUNA_TRY(luna_audit_set(e.request_id, sizeof(e.request_id), rid), out);
    LUNA_TRY(luna_audit_set(e.tenant, sizeof(e.tenant), tenant != NULL ? tenant : ""), out);
    LUNA_TRY(luna_audit_set(e.tee, sizeof(e.tee), tee != NULL ? tee : ""), out);
    LUNA_TRY(luna_audit_set(e.deployment, sizeof(e.deployment),
                            deployment != NULL ? deployment : ""), out);
    LUNA_TRY(luna_audit_set(e.reason, sizeof(e.reason), reason != NULL ? reason : ""), out);
    for (size_t i = 0; objects != NULL && objects[i] != NULL && i < LUNA_AUDIT_MAX_OBJECTS; i++) {
        LUNA_TRY(luna_audit_set(e.objects[i], sizeof(e.objects[i]), objects[i]), out);
        e.n_objects = i + 1;
    }
    e.outcome = outcome;
    err = s->audit->http ? write_http(s->audit, &e) : write_file(s->audit, &e);
out:
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, KMS_COMPONENT, "audit entry not written",
                  LUNA_LOG_STR("operation", op), LUNA_LOG_ERR("error", err));
        return LUNA_ERR_UNAVAILABLE;
    }
    return LUNA_OK;
}

void kms_audit_best_effort(kms_svc *s, const kms_caller *c, const char *op, const char *tenant,
                           const char *tee, const char *deployment, const char *const *objects,
                           luna_audit_outcome outcome, const char *reason)
{
    luna_err err = kms_audit(s, c, op, tenant, tee, deployment, objects, outcome, reason);
    (void)err;
}
