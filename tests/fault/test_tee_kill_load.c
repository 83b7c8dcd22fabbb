/*
 * fault.tee_kill_load (labels fault, e2e, gateway, sdk): a TEE killed under
 * load loses no request the client was told succeeded (issue 6).
 *
 * The real embedded platform (`lunal dev up`, two SIMULATED TEEs) takes
 * 16 concurrent SDK clients, each sending the demo job `sha256` unique data
 * whose digest is computed here.  Once both TEEs have answered, one TEE
 * runtime is killed with SIGKILL mid-run and the load goes on.  Then:
 *   - every request the SDK reported successful carries the right digest
 *     for its own data and a receipt for this tenant, job and a known TEE
 *     (the SDK verified its signature against the attested key);
 *   - no success is duplicated: receipt request ids are unique, and every
 *     logical request had its own idempotency key;
 *   - every failure is a typed LUNA_ERR_UNAVAILABLE (the retryable
 *     "no TEE could serve"), no crash, no hang (every call returned within
 *     its deadline), and only around the kill;
 *   - the kill was seen by clients (a retried or failed request) and the
 *     SDK's retry carried requests over to the surviving TEE;
 *   - requests started after the kill settle all succeed, on the survivor;
 *   - the gateway reports one healthy TEE.
 *
 * The gateway's rate limits are raised for this platform (environment
 * overrides): the test is about a dying TEE, not the limiter.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/sha.h>
#include <sqlite3.h>

#include "devplat.h"
#include "luna_test.h"
#include "lunal.h"

#define N_CLIENTS 16u
#define MAX_RECORDS 8192u
#define DATA_MAX 4096u
#define JOB "sha256"
#define WARMUP_MIN_OK 24u          /* successes before the kill, over both TEEs */
#define WARMUP_DEADLINE_S 30.0
/* The load goes on after the kill for at least AFTER_KILL_S and until
   N_CLIENTS requests started after the settle time succeeded (or the
   deadline: a 2-core machine shared with builds is slow). */
#define AFTER_KILL_S 5.0
#define AFTER_KILL_MAX_S 35.0
#define SETTLE_S 2.0               /* after this, every request must succeed */
#define JOIN_DEADLINE_S 30.0       /* a client still busy after this has hung */
#define CLIENT_TIMEOUT_MS 10000u   /* per HTTP call */
#define MAX_TEES 8u
#define HEALTHY_WAIT_S 20.0
/* The whole run, platform start included, ends by then: a hang anywhere
   fails the test and still stops the platform (CTest's own timeout would
   leave its detached processes behind). */
#define WATCHDOG_S 110
#define AUDIT_WAIT_S 10.0         /* job.run entries are appended after the answer */

static const char *const test_env[] = {
    "LUNA_GATEWAY_GATEWAY_RATE_AUTH_PER_SEC=100000",
    "LUNA_GATEWAY_GATEWAY_RATE_AUTH_BURST=100000",
    "LUNA_GATEWAY_GATEWAY_RATE_TENANT_PER_SEC=100000",
    "LUNA_GATEWAY_GATEWAY_RATE_TENANT_BURST=100000",
    "LUNA_GATEWAY_GATEWAY_RATE_KEY_PER_SEC=100000",
    "LUNA_GATEWAY_GATEWAY_RATE_KEY_BURST=100000",
    NULL,
};

typedef struct record {
    unsigned client;
    double t0, t1;                 /* seconds since the start of the load */
    luna_err err;
    bool correct;                  /* result equals the locally computed one */
    unsigned attempts;
    char tee_id[LUNAL_ID_MAX + 1];
    char request_id[LUNAL_ID_MAX + 1];
    char idem[LUNAL_ID_MAX + 1];
    char tenant[LUNAL_ID_MAX + 1];
    char job[LUNAL_ID_MAX + 1];
    char reason[LUNAL_REASON_MAX];
} record;

typedef struct tee_info {
    char id[LUNAL_ID_MAX + 1];
    unsigned port;
} tee_info;

static struct {
    luna_devplat plat;
    bool up;
    tee_info tees[MAX_TEES];
    size_t n_tees;
    double epoch;
    atomic_bool stop;
    atomic_uint running;
    pthread_mutex_t lock;
    record *recs;
    size_t n_recs;
    size_t ok_per_tee[MAX_TEES];
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cond = PTHREAD_COND_INITIALIZER;
static bool wd_done;

static void *watchdog(void *arg)
{
    struct timespec until;

    (void)arg;
    (void)clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WATCHDOG_S;
    pthread_mutex_lock(&wd_lock);
    while (!wd_done)
        if (pthread_cond_timedwait(&wd_cond, &wd_lock, &until) == ETIMEDOUT)
            break;
    bool fire = !wd_done;
    wd_done = true; /* teardown leaves the platform to us from here */
    pthread_mutex_unlock(&wd_lock);
    if (!fire)
        return NULL;
    fprintf(stderr, "FAIL: the run did not finish within %d s (a hang); stopping the platform\n",
            WATCHDOG_S);
    luna_devplat_down(&g.plat);
    _exit(1);
}

/* True when teardown (not the watchdog) stops the platform. */
static bool watchdog_disarm(void)
{
    pthread_mutex_lock(&wd_lock);
    bool mine = !wd_done;
    wd_done = true;
    pthread_cond_signal(&wd_cond);
    pthread_mutex_unlock(&wd_lock);
    return mine;
}

typedef struct client_ctx {
    pthread_t th;
    unsigned id;
    luna_client *c;
} client_ctx;

static double now_s(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - g.epoch;
}

static void expected(const uint8_t *d, size_t n, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t md[SHA256_DIGEST_LENGTH];
    char mdhex[2 * SHA256_DIGEST_LENGTH + 1];

    assert_non_null(SHA256(d, n, md));
    for (size_t i = 0; i < sizeof md; i++) {
        mdhex[2 * i] = hex[md[i] >> 4];
        mdhex[2 * i + 1] = hex[md[i] & 0x0f];
    }
    mdhex[sizeof mdhex - 1] = 0;
    (void)snprintf(out, cap, "{\"bytes\":%zu,\"sha256\":\"%s\"}", n, mdhex);
}

static int tee_index(const char *id)
{
    for (size_t i = 0; i < g.n_tees; i++)
        if (strcmp(g.tees[i].id, id) == 0)
            return (int)i;
    return -1;
}

static void *client_main(void *arg)
{
    client_ctx *cc = arg;
    uint8_t data[DATA_MAX];
    char want[128];

    for (unsigned seq = 0; !atomic_load(&g.stop); seq++) {
        uint16_t len16 = 0;
        if (getrandom(data, sizeof data, 0) != (ssize_t)sizeof data ||
            getrandom(&len16, sizeof len16, 0) != (ssize_t)sizeof len16)
            break;
        /* 16..4096 bytes, unique by (client, seq) in the first 8 bytes */
        size_t len = 16u + (size_t)len16 % (DATA_MAX - 15u);
        memcpy(data, &cc->id, sizeof cc->id);
        memcpy(data + 4, &seq, sizeof seq);
        expected(data, len, want, sizeof want);
        record rec;
        memset(&rec, 0, sizeof rec);
        rec.client = cc->id;
        rec.t0 = now_s();
        luna_result *r = luna_request(cc->c, JOB, data, len);
        rec.t1 = now_s();
        if (r == NULL) {
            rec.err = LUNA_ERR_NOMEM;
        } else {
            rec.err = r->err;
            rec.attempts = r->attempts;
            (void)snprintf(rec.idem, sizeof rec.idem, "%s", r->idempotency_key);
            (void)snprintf(rec.reason, sizeof rec.reason, "%s", r->reason);
            if (r->err == LUNA_OK) {
                rec.correct = r->len == strlen(want) && memcmp(r->data, want, r->len) == 0;
                (void)snprintf(rec.tee_id, sizeof rec.tee_id, "%s", r->receipt.tee_id);
                (void)snprintf(rec.request_id, sizeof rec.request_id, "%s",
                               r->receipt.request_id);
                (void)snprintf(rec.tenant, sizeof rec.tenant, "%s", r->receipt.tenant);
                (void)snprintf(rec.job, sizeof rec.job, "%s", r->receipt.job);
            }
        }
        luna_result_free(r);
        pthread_mutex_lock(&g.lock);
        if (g.n_recs < MAX_RECORDS)
            g.recs[g.n_recs++] = rec;
        int ti = rec.err == LUNA_OK ? tee_index(rec.tee_id) : -1;
        if (ti >= 0)
            g.ok_per_tee[ti]++;
        pthread_mutex_unlock(&g.lock);
    }
    atomic_fetch_sub(&g.running, 1u);
    return NULL;
}

/* The TEEs the gateway routes to, from its config in the state folder. */
static void load_tees(void)
{
    char path[LUNA_DEVPLAT_PATH_MAX + 32];
    json_error_t je;
    json_t *cfg, *tees, *t;
    size_t i;

    (void)snprintf(path, sizeof path, "%s/config/gateway.json", g.plat.state);
    cfg = json_load_file(path, 0, &je);
    assert_non_null(cfg);
    tees = json_object_get(json_object_get(cfg, "gateway"), "tees");
    assert_true(json_is_array(tees));
    json_array_foreach(tees, i, t) {
        const char *id = json_string_value(json_object_get(t, "id"));
        json_int_t port = json_integer_value(json_object_get(t, "port"));
        assert_non_null(id);
        assert_true(port > 0 && port < 65536);
        assert_true(g.n_tees < MAX_TEES);
        (void)snprintf(g.tees[g.n_tees].id, sizeof g.tees[g.n_tees].id, "%s", id);
        g.tees[g.n_tees].port = (unsigned)port;
        g.n_tees++;
    }
    json_decref(cfg);
    assert_int_equal(g.n_tees, 2); /* `dev up` runs two TEEs */
}

static int setup(void **state)
{
    char why[LUNA_DEVPLAT_WHY_MAX];
    const char *lunal = luna_devplat_default_lunal(NULL);

    pthread_t wd;

    (void)state;
    if (pthread_create(&wd, NULL, watchdog, NULL) != 0 || pthread_detach(wd) != 0)
        return -1;
    if (lunal == NULL) {
        fprintf(stderr, "LUNA_BINARY_DIR is not set (run through ctest)\n");
        return -1;
    }
    if (luna_devplat_up(&g.plat, lunal, NULL, test_env, why) != LUNA_OK) {
        fprintf(stderr, "platform: %s\n", why);
        return -1;
    }
    g.up = true;
    g.recs = calloc(MAX_RECORDS, sizeof *g.recs);
    return g.recs != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (watchdog_disarm() && g.up)
        luna_devplat_down(&g.plat);
    free(g.recs);
    return 0;
}

static long healthy_tees(luna_client *c)
{
    long status = 0;
    char *ans = NULL;
    char why[LUNAL_REASON_MAX];
    json_error_t je;
    long n = -1;

    if (luna_client_call(c, "GET", "/v1/health", NULL, &status, &ans, NULL, why) != LUNA_OK)
        return -1;
    json_t *j = status == 200 ? json_loads(ans, 0, &je) : NULL;
    if (json_is_integer(json_object_get(j, "healthy_tees")))
        n = (long)json_integer_value(json_object_get(j, "healthy_tees"));
    json_decref(j);
    free(ans);
    return n;
}

/*
 * The platform's own account: the gateway's audit log has one job.run
 * success per result it handed out (request id = the X-Request-Id of the
 * attempt).  Counts, for the request ids of the successes the clients saw,
 * how many success entries each has (into hits[]), and how many success
 * entries name a request id no client saw succeed (*stray).  Returns the
 * number of job.run success entries, or -1 when the log cannot be read.
 */
static long audit_job_runs(const char *const *ids, size_t n_ids, const char *const *tees,
                           unsigned *hits, size_t *stray, size_t *tee_mismatch)
{
    char path[LUNA_DEVPLAT_PATH_MAX + 32];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long total = 0;

    (void)snprintf(path, sizeof path, "%s/db/audit.db", g.plat.state);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT leaf FROM audit_entries WHERE operation = 'job.run'", -1,
                           &st, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return -1;
    }
    memset(hits, 0, n_ids * sizeof *hits);
    *stray = *tee_mismatch = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const void *leaf = sqlite3_column_blob(st, 0);
        int len = sqlite3_column_bytes(st, 0);
        json_error_t je;
        json_t *e = leaf != NULL ? json_loadb(leaf, (size_t)len, 0, &je) : NULL;
        const char *out = json_string_value(json_object_get(e, "outcome"));
        const char *rid = json_string_value(json_object_get(e, "request_id"));
        const char *tee = json_string_value(json_object_get(e, "tee"));
        if (out != NULL && rid != NULL && tee != NULL && strcmp(out, "success") == 0) {
            bool seen = false;
            total++;
            for (size_t i = 0; i < n_ids; i++)
                if (strcmp(ids[i], rid) == 0) {
                    hits[i]++;
                    seen = true;
                    if (strcmp(tees[i], tee) != 0)
                        (*tee_mismatch)++;
                }
            if (!seen)
                (*stray)++;
        }
        json_decref(e);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return total;
}

static void test_tee_killed_under_load(void **state)
{
    client_ctx cc[N_CLIENTS];
    pid_t host = 0, kids[8], victim = 0;
    size_t n_kids;
    struct timespec ts;
    int vi = -1;

    (void)state;
    load_tees();
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    g.epoch = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    memset(cc, 0, sizeof cc);
    for (unsigned i = 0; i < N_CLIENTS; i++) {
        luna_client_opts o;
        char why[LUNAL_REASON_MAX];
        memset(&o, 0, sizeof o);
        o.config_file = g.plat.config;
        o.timeout_ms = CLIENT_TIMEOUT_MS;
        cc[i].id = i;
        if (luna_client_create(&o, &cc[i].c, why) != LUNA_OK)
            fail_msg("client %u: %s", i, why);
    }
    /* Both TEEs healthy first (the gateway probes every few seconds). */
    long healthy = -1;
    for (double until = now_s() + HEALTHY_WAIT_S; now_s() < until; (void)usleep(200000))
        if ((healthy = healthy_tees(cc[0].c)) == 2)
            break;
    assert_int_equal(healthy, 2);

    atomic_store(&g.running, N_CLIENTS);
    for (unsigned i = 0; i < N_CLIENTS; i++)
        assert_int_equal(pthread_create(&cc[i].th, NULL, client_main, &cc[i]), 0);

    /* Load on both TEEs before the kill: the victim must be doing work. */
    for (;;) {
        pthread_mutex_lock(&g.lock);
        size_t ok = g.ok_per_tee[0] + g.ok_per_tee[1];
        bool both = g.ok_per_tee[0] > 0 && g.ok_per_tee[1] > 0;
        pthread_mutex_unlock(&g.lock);
        if (ok >= WARMUP_MIN_OK && both)
            break;
        if (now_s() > WARMUP_DEADLINE_S) {
            atomic_store(&g.stop, true);
            for (unsigned i = 0; i < N_CLIENTS; i++)
                (void)pthread_join(cc[i].th, NULL);
            fail_msg("before the kill: %zu + %zu successes on %s / %s within %.0f s "
                     "(the load never reached both TEEs); %zu requests, first: %s",
                     g.ok_per_tee[0], g.ok_per_tee[1], g.tees[0].id, g.tees[1].id,
                     WARMUP_DEADLINE_S, g.n_recs, g.n_recs > 0 ? g.recs[0].reason : "-");
        }
        (void)usleep(50000);
    }

    /* The victim: the runtime listening on the first TEE's port, a child
       of this platform's tee-host. */
    assert_luna_ok(luna_devplat_component_pid(&g.plat, "tee-host", &host));
    n_kids = luna_devplat_children(host, "luna-tee", kids, 8);
    assert_int_equal(n_kids, 2);
    vi = 0;
    assert_luna_ok(luna_devplat_listener((uint16_t)g.tees[vi].port, kids, n_kids, &victim));
    double t_kill = now_s();
    assert_int_equal(kill(victim, SIGKILL), 0);
    pthread_mutex_lock(&g.lock);
    fprintf(stderr, "killed %s (pid %ld) at %.2f s, %zu requests so far\n", g.tees[vi].id,
            (long)victim, t_kill, g.n_recs);
    pthread_mutex_unlock(&g.lock);

    for (;;) {
        size_t settled_ok = 0;
        pthread_mutex_lock(&g.lock);
        for (size_t i = 0; i < g.n_recs; i++)
            if (g.recs[i].err == LUNA_OK && g.recs[i].t0 >= t_kill + SETTLE_S)
                settled_ok++;
        pthread_mutex_unlock(&g.lock);
        double t = now_s();
        if ((t >= t_kill + AFTER_KILL_S && settled_ok >= N_CLIENTS) ||
            t >= t_kill + AFTER_KILL_MAX_S)
            break;
        (void)usleep(100000);
    }
    atomic_store(&g.stop, true);
    /* No hang: every client returns within the deadline. */
    double t_stop = now_s();
    while (atomic_load(&g.running) > 0 && now_s() < t_stop + JOIN_DEADLINE_S)
        (void)usleep(50000);
    assert_int_equal(atomic_load(&g.running), 0);
    for (unsigned i = 0; i < N_CLIENTS; i++)
        assert_int_equal(pthread_join(cc[i].th, NULL), 0);

    /* ---- verdicts ---- */
    const char *survivor = g.tees[1 - vi].id;
    size_t ok = 0, failed = 0, retried = 0, carried = 0, after_ok = 0, in_flight = 0;
    for (size_t i = 0; i < g.n_recs; i++) {
        const record *r = &g.recs[i];
        if (r->t0 < t_kill && r->t1 > t_kill)
            in_flight++;
        if (r->attempts > 1 || r->err != LUNA_OK)
            retried++;
        if (r->err == LUNA_OK) {
            ok++;
            carried += r->attempts > 1 ? 1u : 0u;
            if (!r->correct)
                fail_msg("request %s (client %u) reported success with a WRONG result",
                         r->request_id, r->client);
            assert_string_equal(r->job, JOB);
            assert_string_equal(r->tenant, luna_client_tenant(cc[0].c));
            if (tee_index(r->tee_id) < 0)
                fail_msg("a receipt names an unknown TEE '%s'", r->tee_id);
            assert_true(r->request_id[0] != 0);
            for (size_t j = 0; j < i; j++)
                if (g.recs[j].err == LUNA_OK &&
                    strcmp(g.recs[j].request_id, r->request_id) == 0)
                    fail_msg("request id %s reported successful twice", r->request_id);
        } else {
            failed++;
            fprintf(stderr, "failed at %.2f-%.2f s after %u attempts: %s: %s\n", r->t0, r->t1,
                    r->attempts, luna_errname(r->err), r->reason);
            if (r->err != LUNA_ERR_UNAVAILABLE)
                fail_msg("a failed request got %s, not the retryable UNAVAILABLE: %s",
                         luna_errname(r->err), r->reason);
            if (r->t1 < t_kill)
                fail_msg("a request failed before the kill: %s", r->reason);
        }
        assert_true(r->idem[0] != 0);
        for (size_t j = 0; j < i; j++)
            if (strcmp(g.recs[j].idem, r->idem) == 0)
                fail_msg("idempotency key %s used by two logical requests", r->idem);
        if (r->t0 >= t_kill + SETTLE_S) {
            if (r->err != LUNA_OK)
                fail_msg("a request started %.2f s after the kill failed: %s",
                         r->t0 - t_kill, r->reason);
            if (strcmp(r->tee_id, survivor) != 0)
                fail_msg("a request after the kill was served by %s, not the survivor %s",
                         r->tee_id, survivor);
            after_ok++;
        }
    }
    fprintf(stderr, "%zu requests: %zu ok (%zu after a retry), %zu failed, %zu in flight at "
                    "the kill, %zu after the kill settled\n",
            g.n_recs, ok, carried, failed, in_flight, after_ok);
    assert_true(g.n_recs < MAX_RECORDS);
    assert_true(in_flight > 0);
    /* The kill was seen by clients, and the SDK's retry carried at least
       one request over to the survivor (DESIGN.md 3a). */
    assert_true(retried > 0);
    assert_true(carried > 0);
    /* Failures at most the requests that were in flight at the kill. */
    assert_true(failed <= in_flight);
    assert_true(after_ok >= N_CLIENTS);

    /* The gateway marked the dead TEE unhealthy and still serves. */
    assert_int_equal(healthy_tees(cc[0].c), 1);
    {
        static const uint8_t msg[] = "after the kill";
        char want[128];
        expected(msg, sizeof msg - 1, want, sizeof want);
        luna_result *r = luna_request(cc[0].c, JOB, msg, sizeof msg - 1);
        assert_non_null(r);
        if (r->err != LUNA_OK)
            fail_msg("a request after the run failed: %s", r->reason);
        assert_string_equal(r->receipt.tee_id, survivor);
        assert_int_equal(r->len, strlen(want));
        assert_memory_equal(r->data, want, r->len);
        /* counted with the others in the audit check below */
        pthread_mutex_lock(&g.lock);
        assert_true(g.n_recs < MAX_RECORDS);
        record *last = &g.recs[g.n_recs++];
        memset(last, 0, sizeof *last);
        last->err = LUNA_OK;
        (void)snprintf(last->request_id, sizeof last->request_id, "%s", r->receipt.request_id);
        (void)snprintf(last->tee_id, sizeof last->tee_id, "%s", r->receipt.tee_id);
        pthread_mutex_unlock(&g.lock);
        luna_result_free(r);
    }

    /* Not lost, not duplicated, as the platform recorded it: exactly one
       job.run success per success a client saw, on the TEE its receipt
       names, and none that no client saw. */
    {
        const char **ids = calloc(g.n_recs, sizeof *ids);
        const char **tees = calloc(g.n_recs, sizeof *tees);
        unsigned *hits = calloc(g.n_recs, sizeof *hits);
        size_t n_ids = 0, stray = 0, mismatch = 0, missing = 0, twice = 0;
        long total = -1;
        assert_non_null(ids);
        assert_non_null(tees);
        assert_non_null(hits);
        for (size_t i = 0; i < g.n_recs; i++)
            if (g.recs[i].err == LUNA_OK) {
                tees[n_ids] = g.recs[i].tee_id;
                ids[n_ids++] = g.recs[i].request_id;
            }
        double until = now_s() + AUDIT_WAIT_S;
        do {
            total = audit_job_runs(ids, n_ids, tees, hits, &stray, &mismatch);
            missing = twice = 0;
            for (size_t i = 0; i < n_ids; i++) {
                missing += hits[i] == 0 ? 1u : 0u;
                twice += hits[i] > 1 ? 1u : 0u;
            }
            if (total >= 0 && missing == 0)
                break;
            (void)usleep(200000);
        } while (now_s() < until);
        fprintf(stderr, "audit: %ld job.run successes for %zu client successes; %zu missing, "
                        "%zu twice, %zu unknown, %zu on another TEE\n",
                total, n_ids, missing, twice, stray, mismatch);
        assert_true(total >= 0);
        assert_int_equal(missing, 0);
        assert_int_equal(twice, 0);
        assert_int_equal(stray, 0);
        assert_int_equal(mismatch, 0);
        assert_int_equal((size_t)total, n_ids);
        free(ids);
        free(tees);
        free(hits);
    }
    for (unsigned i = 0; i < N_CLIENTS; i++)
        luna_client_free(cc[i].c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tee_killed_under_load),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
