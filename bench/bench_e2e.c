/*
 * bench_e2e.c - end-to-end secure requests on the real embedded platform
 * (`lunal dev up`), through the SDK exactly as a user calls it
 * (luna_request with client-side attestation verification, one-time key,
 * double envelope, verified receipt), for 1, 8 and 32 concurrent clients
 * and 1 KiB / 1 MiB payloads; beside each cell, in the same run, a plain
 * HTTPS request to the same gateway (GET /v1/health over libcurl with
 * connection reuse, same concurrency).  docs/benchmarks.md.
 *
 * Every request carries unique data to the demo job `sha256` and its
 * result is checked against the digest computed here.  Exits 1 on a wrong
 * result or a failed request, 2 when the platform cannot be started; never
 * on speed.  Must never disable TLS or attestation verification to go
 * faster: the figure is what a user gets.
 *
 * Environment: LUNAL_BENCH_DEV_DIR=<state folder> reuses a running
 * platform (raise its gateway rate limits first, see the doc);
 * LUNAL_BENCH_SECONDS=<n> seconds per measurement (default 3, max 600);
 * LUNAL_BENCH_LUNAL=<path> the lunal executable (default: this build's).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/sha.h>

#include "devplat.h"
#include "lunal.h"

#define BENCH_JOB "sha256"
#define BENCH_MAX_CLIENTS 32u
#define BENCH_MAX_SAMPLES 200000u  /* per thread; a cell stops recording beyond */
#define BENCH_DEFAULT_SECONDS 3u
#define BENCH_MAX_SECONDS 600u
#define BENCH_HEALTH_MAX 4096u     /* bytes of a health answer kept */
#define BENCH_TIMEOUT_MS 60000u

/* The gateway's default limits (docs/gateway.md) are per tenant and key:
   the benchmark measures the request path, not the limiter, so a platform
   it starts gets limits it cannot reach (and room for every answer in the
   idempotency cache). */
static const char *const bench_env[] = {
    "LUNA_GATEWAY_GATEWAY_RATE_AUTH_PER_SEC=100000",
    "LUNA_GATEWAY_GATEWAY_RATE_AUTH_BURST=100000",
    "LUNA_GATEWAY_GATEWAY_RATE_TENANT_PER_SEC=100000",
    "LUNA_GATEWAY_GATEWAY_RATE_TENANT_BURST=100000",
    "LUNA_GATEWAY_GATEWAY_RATE_KEY_PER_SEC=100000",
    "LUNA_GATEWAY_GATEWAY_RATE_KEY_BURST=100000",
    "LUNA_GATEWAY_GATEWAY_IDEMPOTENCY_ENTRIES=100000",
    NULL,
};

typedef struct cell_stats {
    double p50_ms, p99_ms, rps;
    size_t ok, failed, wrong;
} cell_stats;

typedef struct worker {
    pthread_t th;
    unsigned id;
    /* secure requests */
    luna_client *client;
    size_t payload;
    /* plain HTTPS */
    const char *health_url;
    const char *ca_file;
    /* shared */
    const atomic_bool *stop;
    double *lat_ms;
    size_t n_lat;
    size_t ok, failed, wrong;
    uint64_t rng;
    char first_error[LUNAL_REASON_MAX + 32];
} worker;

static double now_s(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: test data only, unique per request by its prefix. */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void fill_data(worker *w, uint64_t seq, uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = rng_next(&w->rng);
        size_t n = len - i < 8 ? len - i : 8;
        memcpy(buf + i, &v, n);
    }
    /* thread id and sequence number first: no two requests carry the same data */
    if (len >= 12) {
        uint32_t id = w->id;
        memcpy(buf, &id, sizeof id);
        memcpy(buf + 4, &seq, sizeof seq);
    }
}

/* The demo job's exact answer for data (tee/jobs/demo_jobs.c). */
static int expected_result(const uint8_t *data, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t md[SHA256_DIGEST_LENGTH];
    char mdhex[2 * SHA256_DIGEST_LENGTH + 1];

    if (SHA256(data, len, md) == NULL)
        return -1;
    for (size_t i = 0; i < sizeof md; i++) {
        mdhex[2 * i] = hex[md[i] >> 4];
        mdhex[2 * i + 1] = hex[md[i] & 0x0f];
    }
    mdhex[sizeof mdhex - 1] = 0;
    return snprintf(out, cap, "{\"bytes\":%zu,\"sha256\":\"%s\"}", len, mdhex);
}

static void record(worker *w, double ms)
{
    if (w->n_lat < BENCH_MAX_SAMPLES)
        w->lat_ms[w->n_lat++] = ms;
}

static void note_error(worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_error(worker *w, const char *fmt, ...)
{
    va_list ap;

    if (w->first_error[0] != 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(w->first_error, sizeof w->first_error, fmt, ap);
    va_end(ap);
}

static void *secure_worker(void *arg)
{
    worker *w = arg;
    uint8_t *data = malloc(w->payload > 0 ? w->payload : 1);
    char expect[128];

    if (data == NULL) {
        w->failed++;
        note_error(w, "out of memory");
        return NULL;
    }
    for (uint64_t seq = 0; !atomic_load(w->stop); seq++) {
        fill_data(w, seq, data, w->payload);
        int n = expected_result(data, w->payload, expect, sizeof expect);
        double t0 = now_s();
        luna_result *r = luna_request(w->client, BENCH_JOB, data, w->payload);
        double t1 = now_s();
        if (r == NULL || r->err != LUNA_OK) {
            w->failed++;
            note_error(w, "request failed: %s (%s)", r != NULL ? luna_errname(r->err) : "NOMEM",
                       r != NULL ? r->reason : "");
        } else if (n <= 0 || r->len != (size_t)n || memcmp(r->data, expect, (size_t)n) != 0 ||
                   strcmp(r->receipt.job, BENCH_JOB) != 0) {
            w->wrong++;
            note_error(w, "WRONG RESULT from TEE %s (request %s)", r->receipt.tee_id,
                       r->receipt.request_id);
        } else {
            w->ok++;
            record(w, (t1 - t0) * 1e3);
        }
        luna_result_free(r);
    }
    free(data);
    return NULL;
}

typedef struct sink {
    char buf[BENCH_HEALTH_MAX];
    size_t len;
} sink;

static size_t sink_write(char *p, size_t size, size_t n, void *arg)
{
    sink *s = arg;
    size_t len = size * n;

    if (len > sizeof s->buf - 1 - s->len)
        return 0; /* over the cap: curl reports a write error */
    memcpy(s->buf + s->len, p, len);
    s->len += len;
    s->buf[s->len] = 0;
    return len;
}

static void *https_worker(void *arg)
{
    worker *w = arg;
    CURL *h = curl_easy_init();
    sink s;

    if (h == NULL) {
        w->failed++;
        return NULL;
    }
    /* One handle per thread, reused: the connection stays open. */
    (void)curl_easy_setopt(h, CURLOPT_URL, w->health_url);
    (void)curl_easy_setopt(h, CURLOPT_CAINFO, w->ca_file);
    (void)curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    (void)curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    (void)curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    (void)curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    (void)curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    (void)curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)BENCH_TIMEOUT_MS);
    (void)curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write);
    (void)curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    while (!atomic_load(w->stop)) {
        long status = 0;
        s.len = 0;
        s.buf[0] = 0;
        double t0 = now_s();
        CURLcode rc = curl_easy_perform(h);
        double t1 = now_s();
        (void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (rc != CURLE_OK || status != 200) {
            w->failed++;
            note_error(w, "health request failed: %s (HTTP %ld)", curl_easy_strerror(rc), status);
        } else if (strstr(s.buf, "\"healthy_tees\"") == NULL) {
            w->wrong++;
            note_error(w, "health answer without healthy_tees");
        } else {
            w->ok++;
            record(w, (t1 - t0) * 1e3);
        }
    }
    curl_easy_cleanup(h);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double percentile(const double *sorted, size_t n, double q)
{
    if (n == 0)
        return 0.0;
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

/* Runs fn on n workers for seconds; merges their figures into st. */
static int run_phase(worker *ws, unsigned n, void *(*fn)(void *), unsigned seconds,
                     cell_stats *st)
{
    atomic_bool stop = false;
    size_t total = 0;
    double *all = NULL;
    int rc = 0;

    for (unsigned i = 0; i < n; i++) {
        ws[i].stop = &stop;
        ws[i].n_lat = ws[i].ok = ws[i].failed = ws[i].wrong = 0;
        ws[i].first_error[0] = 0;
    }
    double t0 = now_s();
    unsigned started = 0;
    for (; started < n; started++)
        if (pthread_create(&ws[started].th, NULL, fn, &ws[started]) != 0) {
            rc = -1;
            break;
        }
    while (rc == 0 && now_s() - t0 < (double)seconds)
        (void)usleep(20000);
    atomic_store(&stop, true);
    for (unsigned i = 0; i < started; i++)
        (void)pthread_join(ws[i].th, NULL);
    double elapsed = now_s() - t0;
    memset(st, 0, sizeof *st);
    for (unsigned i = 0; i < started; i++) {
        total += ws[i].n_lat;
        st->ok += ws[i].ok;
        st->failed += ws[i].failed;
        st->wrong += ws[i].wrong;
        if (ws[i].first_error[0] != 0)
            fprintf(stderr, "bench_e2e: worker %u: %s\n", i, ws[i].first_error);
    }
    all = malloc((total > 0 ? total : 1) * sizeof *all);
    if (all == NULL)
        return -1;
    total = 0;
    for (unsigned i = 0; i < started; i++) {
        memcpy(all + total, ws[i].lat_ms, ws[i].n_lat * sizeof *all);
        total += ws[i].n_lat;
    }
    qsort(all, total, sizeof *all, cmp_double);
    st->p50_ms = percentile(all, total, 0.50);
    st->p99_ms = percentile(all, total, 0.99);
    st->rps = elapsed > 0 ? (double)st->ok / elapsed : 0.0;
    free(all);
    return rc;
}

static unsigned env_seconds(void)
{
    const char *s = getenv("LUNAL_BENCH_SECONDS");
    char *end = NULL;

    if (s == NULL || s[0] == 0)
        return BENCH_DEFAULT_SECONDS;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != 0 || v == 0 || v > BENCH_MAX_SECONDS) {
        fprintf(stderr, "bench_e2e: LUNAL_BENCH_SECONDS must be 1..%u; using %u\n",
                BENCH_MAX_SECONDS, BENCH_DEFAULT_SECONDS);
        return BENCH_DEFAULT_SECONDS;
    }
    return (unsigned)v;
}

/* This build's lunal: <dir of this program>/../cli/lunal. */
static const char *default_lunal(char *buf, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);

    if (n <= 0)
        return NULL;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash == NULL)
        return NULL;
    *slash = 0;
    if ((size_t)snprintf(buf, cap, "%s/../cli/lunal", self) >= cap)
        return NULL;
    return buf;
}

/* The gateway URL and CA file of the platform's client config. */
static int read_client_config(const char *path, char *url, size_t url_cap, char *ca, size_t ca_cap)
{
    json_error_t je;
    json_t *cfg = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    const char *u = json_string_value(json_object_get(cfg, "gateway_url"));
    const char *c = json_string_value(json_object_get(cfg, "ca_file"));
    int rc = -1;

    if (u != NULL && c != NULL && strncmp(u, "https://", 8) == 0 &&
        (size_t)snprintf(url, url_cap, "%s/v1/health", u) < url_cap &&
        (size_t)snprintf(ca, ca_cap, "%s", c) < ca_cap)
        rc = 0;
    json_decref(cfg);
    return rc;
}

int main(void)
{
    static const unsigned clients[] = {1, 8, 32};
    static const size_t payloads[] = {1024, 1024 * 1024};
    luna_devplat plat;
    char why[LUNA_DEVPLAT_WHY_MAX], lunal_buf[PATH_MAX], url[640], ca[LUNA_DEVPLAT_PATH_MAX];
    const char *reuse = getenv("LUNAL_BENCH_DEV_DIR");
    const char *lunal = getenv("LUNAL_BENCH_LUNAL");
    unsigned seconds = env_seconds();
    worker *ws = NULL;
    int status = 0;

    if (lunal == NULL)
        lunal = default_lunal(lunal_buf, sizeof lunal_buf);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 2;
    fprintf(stderr, "bench_e2e: %s the platform...\n", reuse != NULL ? "reusing" : "starting");
    if (luna_devplat_up(&plat, lunal, reuse != NULL && reuse[0] != 0 ? reuse : NULL, bench_env,
                        why) != LUNA_OK) {
        fprintf(stderr, "bench_e2e: platform: %s\n", why);
        return 2;
    }
    if (read_client_config(plat.config, url, sizeof url, ca, sizeof ca) != 0) {
        fprintf(stderr, "bench_e2e: %s lacks an https gateway_url or ca_file\n", plat.config);
        status = 2;
        goto out;
    }
    ws = calloc(BENCH_MAX_CLIENTS, sizeof *ws);
    if (ws == NULL) {
        status = 2;
        goto out;
    }
    for (unsigned i = 0; i < BENCH_MAX_CLIENTS; i++) {
        luna_client_opts o;
        char cwhy[LUNAL_REASON_MAX];
        memset(&o, 0, sizeof o);
        o.config_file = plat.config;
        o.timeout_ms = BENCH_TIMEOUT_MS;
        ws[i].id = i;
        ws[i].health_url = url;
        ws[i].ca_file = ca;
        ws[i].lat_ms = malloc(BENCH_MAX_SAMPLES * sizeof(double));
        if (getrandom(&ws[i].rng, sizeof ws[i].rng, 0) != (ssize_t)sizeof ws[i].rng)
            ws[i].rng = 0x9e3779b97f4a7c15ULL + i;
        ws[i].rng |= 1;
        if (ws[i].lat_ms == NULL || luna_client_create(&o, &ws[i].client, cwhy) != LUNA_OK) {
            fprintf(stderr, "bench_e2e: client %u: %s\n", i,
                    ws[i].lat_ms == NULL ? "out of memory" : cwhy);
            status = 2;
            goto out;
        }
    }
    /* Warm-up outside the figures: every client's token, TLS session and a
       first verification. */
    for (unsigned i = 0; i < BENCH_MAX_CLIENTS; i++) {
        uint8_t one = (uint8_t)i;
        luna_result *r = luna_request(ws[i].client, BENCH_JOB, &one, 1);
        if (r == NULL || r->err != LUNA_OK) {
            fprintf(stderr, "bench_e2e: warm-up request of client %u failed: %s\n", i,
                    r != NULL ? r->reason : "out of memory");
            luna_result_free(r);
            status = 1;
            goto out;
        }
        luna_result_free(r);
    }

    printf("End-to-end secure requests (luna_request, verification on, demo job sha256) vs\n"
           "plain HTTPS GET /v1/health on the same gateway (libcurl, connection reuse);\n"
           "%u s per measurement (n = secure requests measured), %ld online CPUs.\n\n",
           seconds, sysconf(_SC_NPROCESSORS_ONLN));
    printf("%-7s %-7s | %9s %9s %8s %6s | %9s %9s %8s | %9s %9s | %s\n", "clients", "payload",
           "sec p50", "sec p99", "sec r/s", "n", "tls p50", "tls p99", "tls r/s", "p50 x",
           "r/s x", "errors");
    printf("%-7s %-7s | %9s %9s %8s %6s | %9s %9s %8s | %9s %9s |\n", "", "", "ms", "ms", "", "",
           "ms", "ms", "", "slower", "fewer");
    for (size_t pi = 0; pi < sizeof payloads / sizeof payloads[0]; pi++)
        for (size_t ci = 0; ci < sizeof clients / sizeof clients[0]; ci++) {
            cell_stats sec, tls;
            unsigned n = clients[ci];
            for (unsigned i = 0; i < n; i++)
                ws[i].payload = payloads[pi];
            if (run_phase(ws, n, secure_worker, seconds, &sec) != 0 ||
                run_phase(ws, n, https_worker, seconds, &tls) != 0) {
                fprintf(stderr, "bench_e2e: cannot start the worker threads\n");
                status = 2;
                goto out;
            }
            printf("%-7u %-7s | %9.2f %9.2f %8.1f %6zu | %9.3f %9.3f %8.0f | %9.1f %9.1f | "
                   "%zu%s\n",
                   n, payloads[pi] >= 1024 * 1024 ? "1 MiB" : "1 KiB", sec.p50_ms, sec.p99_ms,
                   sec.rps, sec.ok, tls.p50_ms, tls.p99_ms, tls.rps,
                   tls.p50_ms > 0 ? sec.p50_ms / tls.p50_ms : 0.0,
                   sec.rps > 0 ? tls.rps / sec.rps : 0.0,
                   sec.failed + sec.wrong + tls.failed + tls.wrong,
                   sec.wrong + tls.wrong > 0 ? " WRONG RESULTS" : "");
            fflush(stdout);
            if (sec.failed + sec.wrong + tls.failed + tls.wrong > 0 || sec.ok == 0 || tls.ok == 0)
                status = 1;
        }
    if (status != 0)
        fprintf(stderr, "bench_e2e: FAILED: some requests failed or answered wrong (above)\n");
out:
    for (unsigned i = 0; ws != NULL && i < BENCH_MAX_CLIENTS; i++) {
        luna_client_free(ws[i].client);
        free(ws[i].lat_ms);
    }
    free(ws);
    luna_devplat_down(&plat);
    curl_global_cleanup();
    return status;
}
