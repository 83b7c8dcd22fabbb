/*
 * http_metrics.c - per (route, method, status) request counters and latency
 * histograms, rendered in the Prometheus text exposition format 0.0.4.
 *
 * Owns the series table.  Must stay bounded whatever clients send: the
 * route label is the registered route pattern (or "unmatched"), never the
 * raw request path, and the table has a hard cap (LUNA_HTTP_METRICS_MAX_SERIES)
 * past which observations are only counted as dropped.
 */
#include "http_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

const double luna_http_metrics_bounds[LUNA_HTTP_METRICS_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
};

void luna_http_metrics_observe(luna_http_metrics *m, const char *route, unsigned method,
                               int status, double seconds)
{
    if (m == NULL || route == NULL)
        return;
    if (!(seconds >= 0.0)) /* also catches NaN */
        seconds = 0.0;
    luna_http_series *s = NULL;
    for (size_t i = 0; i < m->n; i++) {
        /* Labels are interned (route labels, static strings): pointer equality suffices. */
        if (m->series[i].route == route && m->series[i].method == method &&
            m->series[i].status == status) {
            s = &m->series[i];
            break;
        }
    }
    if (s == NULL) {
        if (m->n >= LUNA_HTTP_METRICS_MAX_SERIES) {
            m->dropped++;
            return;
        }
        luna_http_series *grown = realloc(m->series, (m->n + 1) * sizeof(*grown));
        if (grown == NULL) {
            m->dropped++;
            return;
        }
        m->series = grown;
        s = &m->series[m->n++];
        memset(s, 0, sizeof(*s));
        s->route = route;
        s->method = method;
        s->status = status;
    }
    s->count++;
    s->sum += seconds;
    for (size_t b = 0; b < LUNA_HTTP_METRICS_BUCKETS; b++) {
        if (seconds <= luna_http_metrics_bounds[b]) {
            s->buckets[b]++;
            break;
        }
    }
}

static const char *method_label(unsigned bit)
{
    switch (bit) {
    case LUNA_HTTP_GET: return "GET";
    case LUNA_HTTP_POST: return "POST";
    case LUNA_HTTP_PUT: return "PUT";
    case LUNA_HTTP_DELETE: return "DELETE";
    case LUNA_HTTP_PATCH: return "PATCH";
    default: return "other";
    }
}

/* Label value escaping of the exposition format: \\, \" and \n. */
static int add_label_value(struct evbuffer *out, const char *v)
{
    for (const char *p = v; *p != '\0'; p++) {
        int rc;
        if (*p == '\\')
            rc = evbuffer_add(out, "\\\\", 2);
        else if (*p == '"')
            rc = evbuffer_add(out, "\\\"", 2);
        else if (*p == '\n')
            rc = evbuffer_add(out, "\\n", 2);
        else
            rc = evbuffer_add(out, p, 1);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static int add_labels(struct evbuffer *out, const luna_http_series *s, const char *le)
{
    if (evbuffer_add_printf(out, "{route=\"") < 0 || add_label_value(out, s->route) != 0 ||
        evbuffer_add_printf(out, "\",method=\"%s\",status=\"%d\"", method_label(s->method),
                            s->status) < 0)
        return -1;
    if (le != NULL && evbuffer_add_printf(out, ",le=\"%s\"", le) < 0)
        return -1;
    return evbuffer_add_printf(out, "}") < 0 ? -1 : 0;
}

static int render_series(const luna_http_metrics *m, struct evbuffer *out)
{
    if (evbuffer_add_printf(out, "# HELP luna_http_requests_total HTTP requests answered, "
                                 "by route, method and status.\n"
                                 "# TYPE luna_http_requests_total counter\n") < 0)
        return -1;
    for (size_t i = 0; i < m->n; i++) {
        if (evbuffer_add_printf(out, "luna_http_requests_total") < 0 ||
            add_labels(out, &m->series[i], NULL) != 0 ||
            evbuffer_add_printf(out, " %" PRIu64 "\n", m->series[i].count) < 0)
            return -1;
    }
    if (evbuffer_add_printf(out, "# HELP luna_http_errors_total HTTP requests answered with "
                                 "a status >= 400.\n"
                                 "# TYPE luna_http_errors_total counter\n") < 0)
        return -1;
    for (size_t i = 0; i < m->n; i++) {
        if (m->series[i].status < 400)
            continue;
        if (evbuffer_add_printf(out, "luna_http_errors_total") < 0 ||
            add_labels(out, &m->series[i], NULL) != 0 ||
            evbuffer_add_printf(out, " %" PRIu64 "\n", m->series[i].count) < 0)
            return -1;
    }
    if (evbuffer_add_printf(out, "# HELP luna_http_request_duration_seconds Time from the "
                                 "complete request to the reply.\n"
                                 "# TYPE luna_http_request_duration_seconds histogram\n") < 0)
        return -1;
    for (size_t i = 0; i < m->n; i++) {
        const luna_http_series *s = &m->series[i];
        uint64_t cum = 0;
        for (size_t b = 0; b < LUNA_HTTP_METRICS_BUCKETS; b++) {
            char le[32];
            cum += s->buckets[b];
            if (snprintf(le, sizeof(le), "%g", luna_http_metrics_bounds[b]) <= 0)
                return -1;
            if (evbuffer_add_printf(out, "luna_http_request_duration_seconds_bucket") < 0 ||
                add_labels(out, s, le) != 0 || evbuffer_add_printf(out, " %" PRIu64 "\n", cum) < 0)
                return -1;
        }
        if (evbuffer_add_printf(out, "luna_http_request_duration_seconds_bucket") < 0 ||
            add_labels(out, s, "+Inf") != 0 ||
            evbuffer_add_printf(out, " %" PRIu64 "\n", s->count) < 0 ||
            evbuffer_add_printf(out, "luna_http_request_duration_seconds_sum") < 0 ||
            add_labels(out, s, NULL) != 0 || evbuffer_add_printf(out, " %.9f\n", s->sum) < 0 ||
            evbuffer_add_printf(out, "luna_http_request_duration_seconds_count") < 0 ||
            add_labels(out, s, NULL) != 0 ||
            evbuffer_add_printf(out, " %" PRIu64 "\n", s->count) < 0)
            return -1;
    }
    return 0;
}

luna_err luna_http_metrics_render(const luna_http_metrics *m, struct evbuffer *out)
{
    if (m == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (render_series(m, out) != 0)
        return LUNA_ERR_NOMEM;
    if (evbuffer_add_printf(out,
                            "# HELP luna_http_inflight_requests Requests being handled.\n"
                            "# TYPE luna_http_inflight_requests gauge\n"
                            "luna_http_inflight_requests %" PRIu64 "\n"
                            "# HELP luna_http_tls_reloads_total Certificate reload attempts.\n"
                            "# TYPE luna_http_tls_reloads_total counter\n"
                            "luna_http_tls_reloads_total{result=\"ok\"} %" PRIu64 "\n"
                            "luna_http_tls_reloads_total{result=\"error\"} %" PRIu64 "\n"
                            "# HELP luna_http_metrics_dropped_total Observations dropped "
                            "because the series table was full.\n"
                            "# TYPE luna_http_metrics_dropped_total counter\n"
                            "luna_http_metrics_dropped_total %" PRIu64 "\n",
                            m->inflight, m->reload_ok, m->reload_failed, m->dropped) < 0)
        return LUNA_ERR_NOMEM;
    return LUNA_OK;
}

void luna_http_metrics_free(luna_http_metrics *m)
{
    if (m == NULL)
        return;
    free(m->series);
    memset(m, 0, sizeof(*m));
}
