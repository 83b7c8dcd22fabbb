/*
 * audit_webhook.c - webhook sinks of luna-audit (audit_webhook.h).
 * Owns: each sink's thread, its read-only store connection, its durable
 * cursor and its backoff.
 * Must never: move a cursor past an entry that matched and was not
 * accepted (2xx), read entries the log has not acknowledged (at or past
 * the tree head), block the service's event loop, follow a redirect, or
 * send anything but over verified HTTPS.
 */
#include "audit_webhook.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "audit_util.h"
#include "luna/audit_entry.h"
#include "luna/bytes.h"
#include "luna/log.h"
#include "luna/store.h"

#define COMPONENT "audit-webhook"
#define URL_MAX 512
#define PATH_MAX_ 1024
#define MAX_FILTER 16
#define DEFAULT_BATCH 100
#define BACKOFF_MIN_MS 500u
#define BACKOFF_MAX_MS 60000u
#define IDLE_POLL_MS 200u
#define POST_TIMEOUT_SEC 10L
#define ANSWER_MAX 4096u

typedef enum severity { SEV_INFO = 0, SEV_WARNING = 1, SEV_ERROR = 2 } severity;

typedef struct sink {
    char url[URL_MAX];
    char ca[PATH_MAX_];
    char cursor_path[PATH_MAX_];
    char store_url[PATH_MAX_];
    char ops[MAX_FILTER][LUNA_AUDIT_OP_MAX + 1]; /* prefixes; none = all */
    size_t n_ops;
    bool outcome_ok[4]; /* indexed by luna_audit_outcome */
    severity min_sev;
    size_t batch;
    uint64_t next; /* the cursor: first index not yet handled */
    pthread_t thread;
    bool started;
    struct audit_webhooks *owner;
} sink;

struct audit_webhooks {
    atomic_bool stop;
    size_t n;
    sink s[AUDIT_WEBHOOK_MAX];
};

static const char *const sev_names[] = {"info", "warning", "error"};

static severity severity_of(luna_audit_outcome o)
{
    return o == LUNA_AUDIT_FAILURE ? SEV_ERROR : (o == LUNA_AUDIT_DENIED ? SEV_WARNING : SEV_INFO);
}

/* ---- the cursor file ---- */

static luna_err cursor_load(sink *s)
{
    char *text = NULL;
    size_t len = 0;
    luna_err err = audit_read_small_file(s->cursor_path, 64, &text, &len, NULL);
    if (err == LUNA_ERR_NOT_FOUND) {
        s->next = 0;
        return LUNA_OK;
    }
    LUNA_GUARD(err);
    /* "next=<decimal>\n" */
    err = LUNA_ERR_FORMAT;
    if (len > 6 && strncmp(text, "next=", 5) == 0 && text[len - 1] == '\n')
        err = audit_parse_u64(text + 5, len - 6, &s->next);
    free(text);
    return err;
}

static luna_err cursor_save(const sink *s)
{
    char tmp[PATH_MAX_ + 16], dir[PATH_MAX_], line[40];
    int n = snprintf(line, sizeof line, "next=%" PRIu64 "\n", s->next);
    const char *slash = strrchr(s->cursor_path, '/');
    LUNA_ENSURE(n > 0 && (size_t)n < sizeof line, LUNA_ERR_INTERNAL);
    LUNA_ENSURE((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", s->cursor_path) < sizeof tmp,
                LUNA_ERR_TOO_LARGE);
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - s->cursor_path), s->cursor_path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return LUNA_ERR_IO;
    bool ok = write(fd, line, (size_t)n) == n && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    ok = ok && rename(tmp, s->cursor_path) == 0;
    if (!ok) {
        (void)unlink(tmp);
        return LUNA_ERR_IO;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ok = fsync(dfd) == 0;
        close(dfd);
    }
    return ok ? LUNA_OK : LUNA_ERR_IO;
}

/* ---- filtering and the request body ---- */

static bool matches(const sink *s, const luna_audit_entry *e)
{
    if ((unsigned)e->outcome >= 4 || !s->outcome_ok[e->outcome])
        return false;
    if (severity_of(e->outcome) < s->min_sev)
        return false;
    if (s->n_ops == 0)
        return true;
    for (size_t i = 0; i < s->n_ops; i++)
        if (strncmp(e->operation, s->ops[i], strlen(s->ops[i])) == 0)
            return true;
    return false;
}

typedef struct body {
    char *p;
    size_t len, cap;
} body;

static bool body_add(body *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap == 0 ? 4096 : b->cap;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (np == NULL)
            return false;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = 0;
    return true;
}

/*
 * Reads the next batch from the cursor on.  Matching entries are added
 * to b as {"index":N,"severity":S,"entry":<canonical entry>} (the leaf
 * bytes are canonical JSON with nothing to escape: decode checked that).
 * *upto gets the index after the last row read (== s->next when none).
 */
static luna_err read_batch(sink *s, luna_store *db, body *b, size_t *n_match, uint64_t *upto)
{
    luna_store_param p[] = {luna_store_p_int64((int64_t)s->next),
                            luna_store_p_int64((int64_t)s->batch)};
    luna_store_rows *rows = NULL;
    luna_err err;
    *n_match = 0;
    *upto = s->next;
    /* Only acknowledged entries: the head moves in the same transaction
     * as the rows, so rows below it are committed for good. */
    LUNA_TRY(luna_store_query(db,
                              "SELECT e.idx, e.leaf FROM audit_entries e, audit_head h "
                              "WHERE h.id = 1 AND e.idx >= ?1 AND e.idx < h.size "
                              "ORDER BY e.idx LIMIT ?2",
                              p, 2, &rows),
             out);
    for (;;) {
        bool has = false;
        int64_t idx;
        const uint8_t *leaf;
        size_t len;
        luna_audit_entry e;
        LUNA_TRY(luna_store_rows_next(rows, &has), out);
        if (!has)
            break;
        LUNA_TRY(luna_store_col_int64(rows, 0, &idx), out);
        LUNA_TRY(luna_store_col_blob(rows, 1, &leaf, &len), out);
        /* A gap would be a skipped entry: stop and retry later. */
        LUNA_TRY_ENSURE(idx >= 0 && (uint64_t)idx == *upto, LUNA_ERR_VERIFY, out);
        LUNA_TRY(luna_audit_entry_decode(leaf, len, &e), out);
        *upto = (uint64_t)idx + 1;
        if (!matches(s, &e))
            continue;
        char head[96];
        int hn = snprintf(head, sizeof head, "%s{\"index\":%" PRId64 ",\"severity\":\"%s\",\"entry\":",
                          *n_match == 0 ? "" : ",", idx, sev_names[severity_of(e.outcome)]);
        LUNA_TRY_ENSURE(hn > 0 && (size_t)hn < sizeof head, LUNA_ERR_INTERNAL, out);
        LUNA_TRY_ENSURE(body_add(b, head, (size_t)hn) && body_add(b, leaf, len) &&
                            body_add(b, "}", 1),
                        LUNA_ERR_NOMEM, out);
        (*n_match)++;
    }
out:
    luna_store_rows_free(rows);
    return err;
}

/* ---- HTTPS ---- */

static size_t discard(char *ptr, size_t size, size_t n, void *arg)
{
    size_t *seen = arg;
    (void)ptr;
    *seen += size * n;
    return *seen > ANSWER_MAX ? 0 : size * n;
}

/* LUNA_OK only for a 2xx. */
static luna_err post(const sink *s, const char *json, size_t len, long *status)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    size_t seen = 0;
    luna_err err = LUNA_ERR_IO;
    *status = 0;
    if (h == NULL)
        return LUNA_ERR_NOMEM;
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (hdrs != NULL && curl_easy_setopt(h, CURLOPT_URL, s->url) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_CAINFO, s->ca) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_TIMEOUT, POST_TIMEOUT_SEC) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, json) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &seen) == CURLE_OK &&
        curl_easy_perform(h) == CURLE_OK &&
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status) == CURLE_OK)
        err = *status >= 200 && *status <= 299 ? LUNA_OK : LUNA_ERR_UNAVAILABLE;
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return err;
}

/* ---- the thread ---- */

/* Sleeps ms, waking early on stop; false when stopping. */
static bool nap(audit_webhooks *w, unsigned ms)
{
    while (ms > 0 && !atomic_load(&w->stop)) {
        unsigned step = ms < 100 ? ms : 100;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
    return !atomic_load(&w->stop);
}

static void *sink_main(void *arg)
{
    sink *s = arg;
    audit_webhooks *w = s->owner;
    luna_store *db = NULL;
    unsigned backoff = 0;
    body b = {0};

    while (!atomic_load(&w->stop)) {
        if (db == NULL && luna_store_open(s->store_url, NULL, &db) != LUNA_OK) {
            db = NULL;
            (void)nap(w, BACKOFF_MAX_MS / 10);
            continue;
        }
        size_t n = 0;
        uint64_t upto = s->next;
        b.len = 0;
        if (body_add(&b, "{\"entries\":[", 12) == false) {
            (void)nap(w, BACKOFF_MIN_MS);
            continue;
        }
        luna_err err = read_batch(s, db, &b, &n, &upto);
        if (err != LUNA_OK) {
            LUNA_LOGF(LUNA_LOG_WARN, COMPONENT, "cannot read the log; will retry",
                      LUNA_LOG_ERR("error", err), LUNA_LOG_UINT("cursor", s->next));
            luna_store_close(db);
            db = NULL;
            (void)nap(w, BACKOFF_MAX_MS / 10);
            continue;
        }
        if (upto == s->next) {
            (void)nap(w, IDLE_POLL_MS); /* nothing new */
            continue;
        }
        if (n > 0) {
            long status = 0;
            if (!body_add(&b, "]}", 2)) {
                (void)nap(w, BACKOFF_MIN_MS);
                continue;
            }
            err = post(s, b.p, b.len, &status);
            if (err != LUNA_OK) {
                backoff = backoff == 0 ? BACKOFF_MIN_MS
                                       : (backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                                       : backoff * 2);
                LUNA_LOGF(LUNA_LOG_WARN, COMPONENT, "webhook delivery failed; will retry",
                          LUNA_LOG_UINT("status", (uint64_t)status),
                          LUNA_LOG_UINT("cursor", s->next), LUNA_LOG_UINT("retry_ms", backoff));
                (void)nap(w, backoff);
                continue; /* the same entries again: at least once */
            }
            backoff = 0;
        }
        /* Delivered (or nothing matched): only now does the cursor move. */
        uint64_t prev = s->next;
        s->next = upto;
        if (cursor_save(s) != LUNA_OK) {
            /* Not durable: resend from the old cursor rather than skip. */
            s->next = prev;
            LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "cannot save the webhook cursor",
                      LUNA_LOG_UINT("cursor", prev));
            (void)nap(w, BACKOFF_MAX_MS / 10);
        }
    }
    free(b.p);
    luna_store_close(db);
    return NULL;
}

/* ---- configuration ---- */

static luna_err copy_str(const json_t *o, const char *key, char *out, size_t cap, bool required)
{
    const json_t *v = json_object_get(o, key);
    if (v == NULL)
        return required ? LUNA_ERR_CONFIG : LUNA_OK;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= cap)
        return LUNA_ERR_CONFIG;
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return LUNA_OK;
}

static luna_err configure(sink *s, const json_t *o, const char *storage_url,
                          const char *default_ca)
{
    const json_t *arr, *v;
    size_t i;
    LUNA_GUARD(copy_str(o, "url", s->url, sizeof s->url, true));
    /* TLS always, and no credentials or fragments in the URL. */
    if (strncmp(s->url, "https://", 8) != 0 || strpbrk(s->url, "@# \r\n\t") != NULL)
        return LUNA_ERR_CONFIG;
    LUNA_GUARD(copy_str(o, "cursor_file", s->cursor_path, sizeof s->cursor_path, true));
    LUNA_ENSURE(default_ca != NULL && strlen(default_ca) < sizeof s->ca, LUNA_ERR_CONFIG);
    snprintf(s->ca, sizeof s->ca, "%s", default_ca);
    LUNA_GUARD(copy_str(o, "ca_file", s->ca, sizeof s->ca, false));
    LUNA_ENSURE(strlen(storage_url) < sizeof s->store_url, LUNA_ERR_CONFIG);
    snprintf(s->store_url, sizeof s->store_url, "%s", storage_url);
    arr = json_object_get(o, "operations");
    json_array_foreach(arr, i, v)
    {
        LUNA_ENSURE(i < MAX_FILTER && json_is_string(v) &&
                        json_string_length(v) <= LUNA_AUDIT_OP_MAX,
                    LUNA_ERR_CONFIG);
        snprintf(s->ops[i], sizeof s->ops[i], "%s", json_string_value(v));
        s->n_ops = i + 1;
    }
    arr = json_object_get(o, "outcomes");
    for (int k = 0; k < 4; k++)
        s->outcome_ok[k] = arr == NULL;
    json_array_foreach(arr, i, v)
    {
        luna_audit_outcome oc;
        LUNA_ENSURE(json_is_string(v) &&
                        luna_audit_outcome_parse(json_string_value(v), &oc) == LUNA_OK &&
                        (unsigned)oc < 4,
                    LUNA_ERR_CONFIG);
        s->outcome_ok[oc] = true;
    }
    s->min_sev = SEV_INFO;
    v = json_object_get(o, "min_severity");
    if (v != NULL) {
        bool found = false;
        for (int k = 0; k < 3; k++)
            if (json_is_string(v) && strcmp(json_string_value(v), sev_names[k]) == 0) {
                s->min_sev = (severity)k;
                found = true;
            }
        LUNA_ENSURE(found, LUNA_ERR_CONFIG);
    }
    s->batch = DEFAULT_BATCH;
    v = json_object_get(o, "batch_max");
    if (json_is_integer(v))
        s->batch = (size_t)json_integer_value(v);
    LUNA_ENSURE(s->batch >= 1 && s->batch <= 1000, LUNA_ERR_CONFIG);
    return cursor_load(s);
}

luna_err audit_webhooks_start(const json_t *arr, const char *storage_url, const char *default_ca,
                              audit_webhooks **out)
{
    *out = NULL;
    if (arr == NULL || json_array_size(arr) == 0)
        return LUNA_OK;
    if (!json_is_array(arr) || json_array_size(arr) > AUDIT_WEBHOOK_MAX || storage_url == NULL)
        return LUNA_ERR_CONFIG;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return LUNA_ERR_INTERNAL;
    audit_webhooks *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return LUNA_ERR_NOMEM;
    atomic_init(&w->stop, false);
    luna_err err = LUNA_OK;
    for (size_t i = 0; i < json_array_size(arr) && err == LUNA_OK; i++) {
        err = configure(&w->s[i], json_array_get(arr, i), storage_url, default_ca);
        if (err != LUNA_OK)
            LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "bad webhook sink (url https://, cursor_file)",
                      LUNA_LOG_UINT("sink", i), LUNA_LOG_ERR("error", err));
        w->n = i + 1;
    }
    for (size_t i = 0; i < w->n && err == LUNA_OK; i++) {
        w->s[i].owner = w;
        if (pthread_create(&w->s[i].thread, NULL, sink_main, &w->s[i]) != 0)
            err = LUNA_ERR_INTERNAL;
        else
            w->s[i].started = true;
    }
    if (err != LUNA_OK) {
        audit_webhooks_stop(w);
        return err;
    }
    *out = w;
    return LUNA_OK;
}

void audit_webhooks_stop(audit_webhooks *w)
{
    if (w == NULL)
        return;
    atomic_store(&w->stop, true);
    for (size_t i = 0; i < w->n; i++)
        if (w->s[i].started)
            pthread_join(w->s[i].thread, NULL);
    free(w);
}
