/*
 * cli_attest.c - `lunal attestation verify|history`: one deployment, a
 * batch file or every TEE, verified independently by the SDK, printed in
 * the DESIGN.md section 7 shape (or --json), concurrently for batches with
 * a progress bar on stderr when it is a terminal and a summary table.
 * Must never report "verified" for anything the SDK did not verify itself.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

#define BATCH_MAX 1024
#define BATCH_THREADS 8

static const char verify_help[] =
    "usage: lunal attestation verify --deployment NAME [--tee ID] [--json]\n"
    "       lunal attestation verify --batch FILE|--all [--json]\n"
    "       lunal attestation history --deployment NAME | --tee ID [--json]\n"
    "\n"
    "Verifies the deployment's TEE on this machine: vendor root, the deployment\n"
    "manifest signed by the developer key pinned in your client config, the\n"
    "measurement against that manifest, key binding and freshness.\n"
    "A batch FILE holds one `DEPLOYMENT [TEE_ID]` per line (# comments).\n"
    "Exit status: 0 verified, 1 verification failed, 2 usage or connection error.\n";

/* The service's answer plus what this client established. */
static int print_json(const luna_attestation_report *r, const char *raw)
{
    json_t *root = raw != NULL ? json_loads(raw, JSON_REJECT_DUPLICATES, NULL) : NULL;
    json_t *cv;
    char *text;

    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        root = json_object();
    }
    cv = json_pack("{s:b,s:s,s:s,s:s,s:s}", "verified", r->verified, "reason", r->reason,
                   "verified_at", r->verified_at, "tcb_status", r->tcb_status,
                   "mr_enclave", r->mr_enclave);
    if (root == NULL || cv == NULL) {
        json_decref(root);
        json_decref(cv);
        return CLI_USAGE;
    }
    json_object_set_new(root, "client_verification", cv);
    text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    if (text == NULL)
        return CLI_USAGE;
    puts(text);
    free(text);
    return r->verified ? CLI_OK : CLI_FAILED;
}

typedef struct job {
    char deployment[LUNAL_ID_MAX + 1];
    char tee[LUNAL_ID_MAX + 1];
    luna_attestation_report report;
    luna_err err;
    char why[LUNAL_REASON_MAX];
} job;

typedef struct batch {
    luna_client *c;
    job *jobs;
    size_t n, next, done;
    bool progress;
    pthread_mutex_t lock;
} batch;

static void draw_progress(const batch *b)
{
    size_t width = 30, filled = b->n ? b->done * width / b->n : width;

    fputc('\r', stderr);
    fputc('[', stderr);
    for (size_t i = 0; i < width; i++)
        fputc(i < filled ? '#' : ' ', stderr);
    fprintf(stderr, "] %zu/%zu", b->done, b->n);
    fflush(stderr);
}

static void *worker(void *arg)
{
    batch *b = arg;

    for (;;) {
        job *j;
        pthread_mutex_lock(&b->lock);
        if (b->next >= b->n) {
            pthread_mutex_unlock(&b->lock);
            return NULL;
        }
        j = &b->jobs[b->next++];
        pthread_mutex_unlock(&b->lock);
        j->err = luna_attestation_verify(b->c, j->deployment, j->tee[0] ? j->tee : NULL,
                                         &j->report, NULL, j->why);
        pthread_mutex_lock(&b->lock);
        b->done++;
        if (b->progress)
            draw_progress(b);
        pthread_mutex_unlock(&b->lock);
    }
}

static bool id_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > LUNAL_ID_MAX)
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static int read_batch(const char *path, job **out, size_t *n)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
    char line[512];
    size_t cnt = 0;
    job *jobs;

    if (f == NULL)
        return cli_usage_error("cannot open %s: %s", path, strerror(errno));
    jobs = calloc(BATCH_MAX, sizeof *jobs);
    if (jobs == NULL) {
        if (f != stdin)
            fclose(f);
        return CLI_USAGE;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        char *dep, *tee, *save = NULL;
        if (line[0] == '#')
            continue;
        dep = strtok_r(line, " \t\r\n", &save);
        if (dep == NULL)
            continue;
        tee = strtok_r(NULL, " \t\r\n", &save);
        if (!id_ok(dep) || (tee != NULL && !id_ok(tee)) || cnt >= BATCH_MAX) {
            free(jobs);
            if (f != stdin)
                fclose(f);
            return cli_usage_error("%s: bad line %zu (DEPLOYMENT [TEE_ID], at most %d)", path,
                                   cnt + 1, BATCH_MAX);
        }
        snprintf(jobs[cnt].deployment, sizeof jobs[cnt].deployment, "%s", dep);
        if (tee != NULL)
            snprintf(jobs[cnt].tee, sizeof jobs[cnt].tee, "%s", tee);
        cnt++;
    }
    if (f != stdin)
        fclose(f);
    if (cnt == 0) {
        free(jobs);
        return cli_usage_error("%s lists no deployment", path);
    }
    *out = jobs;
    *n = cnt;
    return CLI_OK;
}

/* Every TEE the platform lists (GET /v1/tees through the gateway). */
static int list_all(luna_client *c, job **out, size_t *n)
{
    long status = 0;
    char *ans = NULL, why[LUNAL_REASON_MAX];
    json_t *root = NULL, *items;
    size_t i, cnt = 0;
    job *jobs = NULL;
    int rc = CLI_USAGE;

    if (luna_client_call(c, "GET", "/v1/tees", NULL, &status, &ans, NULL, why) != LUNA_OK) {
        fprintf(stderr, "lunal: %s\n", why);
        return CLI_USAGE;
    }
    if (status != 200) {
        fprintf(stderr, "lunal: listing TEEs failed (HTTP %ld): %s\n", status,
                ans != NULL ? ans : "");
        goto out;
    }
    root = json_loads(ans, JSON_REJECT_DUPLICATES, NULL);
    /* The KMS registry's entries as the gateway relays them (docs/protocol.md). */
    items = json_object_get(root, "tees");
    if (!json_is_array(items) || json_array_size(items) == 0 ||
        json_array_size(items) > BATCH_MAX) {
        fprintf(stderr, "lunal: the TEE list is empty or malformed\n");
        goto out;
    }
    jobs = calloc(json_array_size(items), sizeof *jobs);
    if (jobs == NULL)
        goto out;
    for (i = 0; i < json_array_size(items); i++) {
        const json_t *it = json_array_get(items, i);
        const char *d = json_string_value(json_object_get(it, "deployment_id"));
        const char *t = json_string_value(json_object_get(it, "tee_id"));
        if (d == NULL || t == NULL || !id_ok(d) || !id_ok(t))
            continue;
        snprintf(jobs[cnt].deployment, sizeof jobs[cnt].deployment, "%s", d);
        snprintf(jobs[cnt].tee, sizeof jobs[cnt].tee, "%s", t);
        cnt++;
    }
    if (cnt == 0) {
        fprintf(stderr, "lunal: the TEE list names no TEE\n");
        goto out;
    }
    *out = jobs;
    *n = cnt;
    jobs = NULL;
    rc = CLI_OK;
out:
    free(jobs);
    json_decref(root);
    free(ans);
    return rc;
}

static int run_batch(const cli_global *g, luna_client *c, job *jobs, size_t n)
{
    batch b = {.c = c, .jobs = jobs, .n = n, .progress = g->err_tty};
    pthread_t th[BATCH_THREADS];
    size_t nt = n < BATCH_THREADS ? n : BATCH_THREADS, started = 0;
    int rc;

    pthread_mutex_init(&b.lock, NULL);
    for (size_t i = 0; i < nt; i++)
        if (pthread_create(&th[i], NULL, worker, &b) == 0)
            started++;
    if (started == 0)
        worker(&b);
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&b.lock);
    if (b.progress)
        fputc('\n', stderr);

    if (g->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n && arr != NULL; i++) {
            const job *j = &jobs[i];
            json_array_append_new(
                arr, json_pack("{s:s,s:s,s:b,s:s,s:s,s:s}", "deployment_id", j->deployment,
                               "tee_id", j->report.tee_id[0] ? j->report.tee_id : j->tee,
                               "verified", j->err == LUNA_OK && j->report.verified, "reason",
                               j->err != LUNA_OK ? j->why : j->report.reason, "tcb_status",
                               j->report.tcb_status, "mr_enclave", j->report.mr_enclave));
        }
        char *text = arr != NULL ? json_dumps(arr, JSON_INDENT(2)) : NULL;
        if (text != NULL)
            puts(text);
        free(text);
        json_decref(arr);
    } else {
        printf("%-24s %-24s %-10s %s\n", "DEPLOYMENT", "TEE", "RESULT", "DETAIL");
    }
    size_t ok = 0;
    bool failed = false, errored = false;
    for (size_t i = 0; i < n; i++) {
        const job *j = &jobs[i];
        bool v = j->err == LUNA_OK && j->report.verified;
        if (v)
            ok++;
        else if (j->err != LUNA_OK)
            errored = true;
        else
            failed = true;
        if (!g->json)
            printf("%-24s %-24s %-10s %s\n", j->deployment,
                   j->report.tee_id[0] ? j->report.tee_id : (j->tee[0] ? j->tee : "-"),
                   v ? "verified" : (j->err != LUNA_OK ? "error" : "FAILED"),
                   v ? (j->report.simulated ? "SIMULATED TEE (development only)" : "genuine TEE")
                     : (j->err != LUNA_OK ? j->why : j->report.reason));
    }
    if (!g->json)
        printf("%zu of %zu verified\n", ok, n);
    /* A verification failure is 1 even when others could not be reached. */
    rc = failed ? CLI_FAILED : errored ? CLI_USAGE : CLI_OK;
    return rc;
}

static int verify(const cli_global *g, int argc, char **argv)
{
    const char *dep = NULL, *tee = NULL, *batchf = NULL;
    bool all = false, json = g->json;
    luna_client *c = NULL;
    luna_attestation_report rep;
    char *raw = NULL, why[LUNAL_REASON_MAX];
    job *jobs = NULL;
    size_t n = 0;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(verify_help, stdout);
            return CLI_OK;
        } else if (strcmp(argv[i], "--deployment") == 0 && i + 1 < argc) {
            dep = argv[++i];
        } else if (strcmp(argv[i], "--tee") == 0 && i + 1 < argc) {
            tee = argv[++i];
        } else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) {
            batchf = argv[++i];
        } else if (strcmp(argv[i], "--all") == 0) {
            all = true;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else {
            fputs(verify_help, stderr);
            return cli_usage_error("attestation verify: unexpected %s", argv[i]);
        }
    }
    if ((dep != NULL) + (batchf != NULL) + all != 1 || (tee != NULL && dep == NULL)) {
        fputs(verify_help, stderr);
        return cli_usage_error("attestation verify: give exactly one of --deployment, --batch, --all");
    }
    if (dep != NULL && (!id_ok(dep) || (tee != NULL && !id_ok(tee))))
        return cli_usage_error("attestation verify: ids are 1..64 of [A-Za-z0-9._-]");
    if (batchf != NULL && (rc = read_batch(batchf, &jobs, &n)) != CLI_OK)
        return rc;
    c = cli_client(g);
    if (c == NULL) {
        free(jobs);
        return CLI_USAGE;
    }
    if (all && (rc = list_all(c, &jobs, &n)) != CLI_OK) {
        luna_client_free(c);
        return rc;
    }
    if (jobs != NULL) {
        cli_global g2 = *g;
        g2.json = json;
        rc = run_batch(&g2, c, jobs, n);
        free(jobs);
        luna_client_free(c);
        return rc;
    }
    if (luna_attestation_verify(c, dep, tee, &rep, &raw, why) != LUNA_OK) {
        fprintf(stderr, "lunal: attestation verify: %s\n", why);
        luna_client_free(c);
        return CLI_USAGE;
    }
    rc = json ? print_json(&rep, raw) : cli_print_report(stdout, &rep, g->color);
    free(raw);
    luna_client_free(c);
    return rc;
}

/* One line per attestation, newest first: time, TEE, kind, outcome. */
static int print_history(const char *ans)
{
    json_t *root = json_loads(ans, JSON_REJECT_DUPLICATES, NULL);
    const json_t *items = json_object_get(root, "items"), *it;
    size_t i;

    if (!json_is_array(items)) {
        json_decref(root);
        fprintf(stderr, "lunal: attestation history: the answer is not a history\n");
        return CLI_USAGE;
    }
    printf("%-22s %-20s %-14s %s\n", "TIME", "TEE", "KIND", "STATUS");
    json_array_foreach(items, i, it)
    {
        const json_t *a = json_object_get(it, "attestation");
        const char *ts = json_string_value(json_object_get(a, "timestamp"));
        const char *t = json_string_value(json_object_get(a, "tee_id"));
        const char *k = json_string_value(json_object_get(a, "kind"));
        const char *st = json_string_value(json_object_get(it, "status"));
        const char *why = json_string_value(json_object_get(it, "reason"));
        printf("%-22s %-20s %-14s %s%s%s\n", ts != NULL ? ts : "-", t != NULL ? t : "-",
               k != NULL ? k : "-", st != NULL ? st : "-", why != NULL ? ": " : "",
               why != NULL ? why : "");
    }
    printf("%zu entries%s\n", json_array_size(items),
           json_object_get(root, "next") != NULL ? " (more: use --json for the cursor)" : "");
    json_decref(root);
    return CLI_OK;
}

static int history(const cli_global *g, int argc, char **argv)
{
    const char *dep = NULL, *tee = NULL;
    bool json = g->json;
    char path[256], *ans = NULL, why[LUNAL_REASON_MAX];
    long status = 0;
    luna_client *c;
    int rc = CLI_OK;

    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(verify_help, stdout);
            return CLI_OK;
        } else if (strcmp(argv[i], "--deployment") == 0 && i + 1 < argc) {
            dep = argv[++i];
        } else if (strcmp(argv[i], "--tee") == 0 && i + 1 < argc) {
            tee = argv[++i];
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else {
            return cli_usage_error("attestation history: unexpected %s", argv[i]);
        }
    }
    if ((dep != NULL) == (tee != NULL) || !id_ok(dep != NULL ? dep : tee))
        return cli_usage_error("attestation history: give one of --deployment NAME or --tee ID");
    snprintf(path, sizeof path, "/v1/attestation/history?%s=%s",
             dep != NULL ? "deployment_id" : "tee_id", dep != NULL ? dep : tee);
    if ((c = cli_client(g)) == NULL)
        return CLI_USAGE;
    if (luna_client_call(c, "GET", path, NULL, &status, &ans, NULL, why) != LUNA_OK) {
        fprintf(stderr, "lunal: attestation history: %s\n", why);
        rc = CLI_USAGE;
    } else if (status != 200) {
        fprintf(stderr, "lunal: attestation history: HTTP %ld %s\n", status, ans);
        rc = CLI_USAGE;
    } else if (json) {
        puts(ans);
    } else {
        rc = print_history(ans);
    }
    free(ans);
    luna_client_free(c);
    return rc;
}

int cli_cmd_attestation(const cli_global *g, int argc, char **argv)
{
    if (argc < 2 || cli_is_help(argv[1])) {
        fputs(verify_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "verify") == 0)
        return verify(g, argc - 1, argv + 1);
    if (strcmp(argv[1], "history") == 0)
        return history(g, argc - 1, argv + 1);
    fputs(verify_help, stderr);
    return cli_usage_error("attestation: unknown subcommand %s", argv[1]);
}
