/*
 * cli_audit.c - `lunal audit verify|proof|tail|checkpoint`: the audit
 * log seen by a tenant's or the platform's auditor, through the gateway.
 * verify/proof run luna_audit_verify (the SDK keeps the last checkpoint
 * it accepted); exit 0 verified, 1 verification failed (the reason in
 * words), 2 usage, configuration or connection error.
 * Must never: print a token or key, or take one from the command line
 * (the pinned keys come from the config or the environment).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"

#define TAIL_DEFAULT 20u
#define TAIL_MAX 1000u

static const char audit_usage[] =
    "usage: lunal audit verify [--entry N]... [--full] [--state FILE] [--no-witness]\n"
    "       lunal audit proof --entry N\n"
    "       lunal audit tail [--limit N] [--operation OP] [--tee ID] [--deployment ID]\n"
    "                        [--tenant T]\n"
    "       lunal audit checkpoint\n"
    "\n"
    "verify  fetches the log's signed checkpoint, checks it with the pinned log key\n"
    "        (audit_log_key / LUNAL_AUDIT_LOG_KEY), proves it consistent with the\n"
    "        checkpoint kept in the state file (audit_state_file / LUNAL_AUDIT_STATE)\n"
    "        and with the witness's cosigned one (audit_witness_key /\n"
    "        LUNAL_AUDIT_WITNESS_KEY), proves the inclusion of the given entries (by\n"
    "        default a few recent ones you can read), and keeps the new checkpoint.\n"
    "        --full also exports every entry and recomputes the root (platform scope).\n"
    "proof   the same checks for one entry, printing its inclusion proof.\n"
    "tail    the latest entries you can read.\n"
    "\n"
    "Exit status: 0 verified, 1 verification failed, 2 usage, configuration or\n"
    "connection error.\n";

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v;

    if (s == NULL || s[0] < '0' || s[0] > '9' || (s[0] == '0' && s[1] != 0) || strlen(s) > 20)
        return false;
    v = strtoull(s, &end, 10);
    if (end == NULL || *end != 0)
        return false;
    *out = (uint64_t)v;
    return true;
}

static bool ident_ok(const char *v)
{
    size_t n = strlen(v);
    return n > 0 && n <= 128 &&
           strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:/@-") == n;
}

static void print_report_json(const luna_audit_report *r)
{
    json_t *o = json_pack("{s:b,s:s,s:b,s:I,s:I,s:s,s:s,s:b,s:I,s:b,s:b}", "verified",
                          r->verified, "reason", r->reason, "first_use", r->first_use,
                          "kept_size", (json_int_t)r->kept_size, "size", (json_int_t)r->size,
                          "root", r->root_hex, "origin", r->origin, "witness_checked",
                          r->witness_checked, "witness_size", (json_int_t)r->witness_size,
                          "full_checked", r->full_checked, "state_saved", r->state_saved);
    json_t *arr = json_array();
    char *s;

    if (o == NULL || arr == NULL) {
        json_decref(o);
        json_decref(arr);
        return;
    }
    for (size_t i = 0; i < r->n_proved; i++) {
        const luna_audit_proved *p = &r->proved[i];
        json_error_t jerr;
        json_t *e = json_pack("{s:I,s:s,s:o*,s:o*}", "index", (json_int_t)p->index,
                              "leaf_hash", p->leaf_hash_hex, "entry",
                              p->entry_json != NULL ? json_loads(p->entry_json, 0, &jerr) : NULL,
                              "proof",
                              p->proof_json != NULL ? json_loads(p->proof_json, 0, &jerr) : NULL);
        if (e != NULL)
            json_array_append_new(arr, e);
    }
    json_object_set_new(o, "entries", arr);
    if (r->checkpoint != NULL)
        json_object_set_new(o, "checkpoint", json_string(r->checkpoint));
    s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s != NULL)
        puts(s);
    free(s);
    json_decref(o);
}

static void print_report(const luna_audit_report *r, bool proof, bool no_witness)
{
    if (!r->verified) {
        printf("Audit log: NOT VERIFIED\n  %s\n", r->reason);
        return;
    }
    printf("Audit log: verified\n");
    printf("  Log:        %s\n", r->origin);
    printf("  Tree size:  %" PRIu64 "\n", r->size);
    printf("  Root:       %s\n", r->root_hex);
    if (r->first_use)
        printf("  History:    first checkpoint kept (trusted on first use)\n");
    else
        printf("  History:    consistent with the kept checkpoint of size %" PRIu64 "\n",
               r->kept_size);
    if (!r->witness_checked && r->witness_size == 0 && !no_witness)
        printf("  Witness:    NOT checked: it has not cosigned anything yet\n");
    else if (!r->witness_checked)
        printf("  Witness:    NOT checked (--no-witness)\n");
    else
        printf("  Witness:    agrees (cosigned size %" PRIu64 ")\n", r->witness_size);
    for (size_t i = 0; i < r->n_proved; i++) {
        printf("  Entry %-6" PRIu64 " included (leaf %s)\n", r->proved[i].index,
               r->proved[i].leaf_hash_hex);
        if (proof) {
            printf("    entry: %s\n", r->proved[i].entry_json);
            printf("    proof: %s\n", r->proved[i].proof_json);
        }
    }
    if (r->n_proved == 0)
        printf("  Entries:    none readable to prove\n");
    if (r->full_checked)
        printf("  Full check: every entry re-hashed, root recomputed\n");
    if (r->state_saved)
        printf("  Kept:       checkpoint of size %" PRIu64 " saved\n", r->size);
}

static int cmd_verify(const cli_global *g, int argc, char **argv, bool proof)
{
    luna_audit_verify_opts o;
    luna_audit_report r;
    uint64_t entries[LUNAL_AUDIT_MAX_ENTRIES];
    char why[LUNAL_REASON_MAX];
    luna_client *c;
    bool json = g->json;
    luna_err err;
    int rc;

    memset(&o, 0, sizeof o);
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(audit_usage, stdout);
            return CLI_OK;
        } else if ((strcmp(argv[i], "--entry") == 0 || strcmp(argv[i], "--id") == 0) &&
                   i + 1 < argc) {
            if (o.n_entries >= LUNAL_AUDIT_MAX_ENTRIES)
                return cli_usage_error("audit: at most %d --entry", LUNAL_AUDIT_MAX_ENTRIES);
            if (!parse_u64(argv[++i], &entries[o.n_entries]))
                return cli_usage_error("audit: --entry takes an entry index");
            o.n_entries++;
        } else if (strcmp(argv[i], "--full") == 0 && !proof) {
            o.full = true;
        } else if (strcmp(argv[i], "--no-witness") == 0) {
            o.no_witness = true;
        } else if (strcmp(argv[i], "--state") == 0 && i + 1 < argc) {
            o.state_file = argv[++i];
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else {
            return cli_usage_error("audit %s: unexpected %s", argv[0], argv[i]);
        }
    }
    if (proof && o.n_entries != 1)
        return cli_usage_error("audit proof: exactly one --entry N");
    o.entries = o.n_entries > 0 ? entries : NULL;
    if ((c = cli_client(g)) == NULL)
        return CLI_USAGE;
    err = luna_audit_verify(c, &o, &r, why);
    luna_client_free(c);
    if (err != LUNA_OK) {
        fprintf(stderr, "lunal: audit %s: %s\n", argv[0], why);
        luna_audit_report_clear(&r);
        return CLI_USAGE;
    }
    if (json)
        print_report_json(&r);
    else
        print_report(&r, proof, o.no_witness);
    rc = r.verified ? CLI_OK : CLI_FAILED;
    if (!r.verified && !json)
        fprintf(stderr, "lunal: audit %s: %s\n", argv[0], r.reason);
    luna_audit_report_clear(&r);
    return rc;
}

/* GET path; prints the reason and returns NULL on any failure. */
static json_t *get_json(luna_client *c, const char *path)
{
    char *ans = NULL, why[LUNAL_REASON_MAX];
    long status = 0;
    json_error_t jerr;
    json_t *o;

    if (luna_client_call(c, "GET", path, NULL, &status, &ans, NULL, why) != LUNA_OK) {
        fprintf(stderr, "lunal: audit: %s\n", why);
        return NULL;
    }
    if (status != 200) {
        fprintf(stderr, "lunal: audit: HTTP %ld %s\n", status, ans != NULL ? ans : "");
        free(ans);
        return NULL;
    }
    o = json_loads(ans, JSON_REJECT_DUPLICATES, &jerr);
    free(ans);
    if (!json_is_object(o)) {
        json_decref(o);
        fprintf(stderr, "lunal: audit: malformed answer\n");
        return NULL;
    }
    return o;
}

static const char *str_or(const json_t *o, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL ? v : dflt;
}

static void print_entry(const json_t *it)
{
    const json_t *e = json_object_get(it, "entry");
    const json_t *objs = json_object_get(e, "objects");
    json_int_t ms = json_integer_value(json_object_get(e, "time"));
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char when[32] = "?";

    if (gmtime_r(&t, &tm) != NULL)
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    printf("%-7" JSON_INTEGER_FORMAT " %s  %-18s %-8s %-12s %s",
           json_integer_value(json_object_get(it, "index")), when, str_or(e, "operation", "?"),
           str_or(e, "outcome", "?"), str_or(e, "tenant", ""), str_or(e, "actor", ""));
    for (size_t i = 0; i < json_array_size(objs); i++) {
        const char *ob = json_string_value(json_array_get(objs, i));
        printf("%s%s", i == 0 ? "  [" : ",", ob != NULL ? ob : "?");
    }
    printf("%s\n", json_array_size(objs) > 0 ? "]" : "");
}

static int cmd_tail(const cli_global *g, int argc, char **argv)
{
    static const char *const filters[] = {"operation", "tee", "deployment", "tenant"};
    char q[768] = "", path[1024];
    uint64_t limit = TAIL_DEFAULT, size, span = 64;
    size_t qlen = 0;
    luna_client *c;
    json_t *o = NULL, *arr;
    int rc = CLI_USAGE;

    for (int i = 1; i < argc; i++) {
        bool known = false;
        if (cli_is_help(argv[i])) {
            fputs(audit_usage, stdout);
            return CLI_OK;
        }
        if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            if (!parse_u64(argv[++i], &limit) || limit == 0 || limit > TAIL_MAX)
                return cli_usage_error("audit tail: --limit 1..%u", TAIL_MAX);
            continue;
        }
        if (strcmp(argv[i], "--json") == 0)
            continue;
        for (size_t k = 0; k < sizeof filters / sizeof filters[0]; k++)
            if (strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i] + 2, filters[k]) == 0 &&
                i + 1 < argc) {
                if (!ident_ok(argv[i + 1]))
                    return cli_usage_error("audit tail: bad value for %s", argv[i]);
                qlen += (size_t)snprintf(q + qlen, sizeof q - qlen, "&%s=%s", filters[k],
                                         argv[++i]);
                known = true;
                break;
            }
        if (!known)
            return cli_usage_error("audit tail: unexpected %s", argv[i]);
    }
    if ((c = cli_client(g)) == NULL)
        return CLI_USAGE;
    snprintf(path, sizeof path, "/v1/audit/entries?limit=1%s", q);
    if ((o = get_json(c, path)) == NULL)
        goto out;
    size = (uint64_t)json_integer_value(json_object_get(o, "tree_size"));
    /* Widen a window at the end of the tree until it holds enough of the
     * caller's entries (pages are in index order). */
    for (;;) {
        uint64_t from = size > span ? size - span : 0;
        json_decref(o);
        if (from > 0)
            snprintf(path, sizeof path, "/v1/audit/entries?cursor=%" PRIu64 "&limit=%u%s",
                     from - 1, TAIL_MAX, q);
        else
            snprintf(path, sizeof path, "/v1/audit/entries?limit=%u%s", TAIL_MAX, q);
        if ((o = get_json(c, path)) == NULL)
            goto out;
        arr = json_object_get(o, "entries");
        if (json_array_size(arr) >= limit || from == 0 || span >= TAIL_MAX)
            break;
        span *= 4;
    }
    arr = json_object_get(o, "entries");
    {
        size_t n = json_array_size(arr), first = n > limit ? n - (size_t)limit : 0;
        if (g->json) {
            json_t *out = json_array();
            for (size_t i = first; out != NULL && i < n; i++)
                json_array_append(out, json_array_get(arr, i));
            char *s = out != NULL ? json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
            if (s != NULL)
                puts(s);
            free(s);
            json_decref(out);
        } else {
            for (size_t i = first; i < n; i++)
                print_entry(json_array_get(arr, i));
            if (n == 0)
                printf("(no entries you can read)\n");
        }
    }
    rc = CLI_OK;
out:
    json_decref(o);
    luna_client_free(c);
    return rc;
}

static int cmd_checkpoint(const cli_global *g, int argc, char **argv)
{
    char *ans = NULL, why[LUNAL_REASON_MAX];
    long status = 0;
    luna_client *c;
    int rc = CLI_USAGE;

    if (argc > 1 && cli_is_help(argv[1])) {
        fputs(audit_usage, stdout);
        return CLI_OK;
    }
    if (argc > 1 && strcmp(argv[1], "--json") != 0)
        return cli_usage_error("audit checkpoint: unexpected %s", argv[1]);
    if ((c = cli_client(g)) == NULL)
        return CLI_USAGE;
    if (luna_client_call(c, "GET", "/v1/audit/checkpoint", NULL, &status, &ans, NULL, why) !=
        LUNA_OK)
        fprintf(stderr, "lunal: audit checkpoint: %s\n", why);
    else if (status != 200)
        fprintf(stderr, "lunal: audit checkpoint: HTTP %ld\n", status);
    else {
        /* Unverified bytes: `audit verify` is what checks them. */
        fputs(ans, stdout);
        rc = CLI_OK;
    }
    free(ans);
    luna_client_free(c);
    return rc;
}

int cli_cmd_audit(const cli_global *g, int argc, char **argv)
{
    if (argc < 2 || cli_is_help(argv[1])) {
        fputs(audit_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "verify") == 0)
        return cmd_verify(g, argc - 1, argv + 1, false);
    if (strcmp(argv[1], "proof") == 0)
        return cmd_verify(g, argc - 1, argv + 1, true);
    if (strcmp(argv[1], "tail") == 0)
        return cmd_tail(g, argc - 1, argv + 1);
    if (strcmp(argv[1], "checkpoint") == 0)
        return cmd_checkpoint(g, argc - 1, argv + 1);
    fputs(audit_usage, stderr);
    return cli_usage_error("audit: unknown subcommand %s", argv[1]);
}
