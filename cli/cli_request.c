/*
 * cli_request.c - `lunal request --job NAME --data @FILE`: one secure
 * request through luna_request (attested TEE, double envelope, verified
 * receipt).  The result goes to stdout (or --out FILE), the receipt to
 * stderr.  Must never print a result that did not verify.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

static const char request_help[] =
    "usage: lunal request --job NAME --data @FILE|@-|TEXT [--deployment NAME] [--out FILE] [--json]\n"
    "\n"
    "Sends the data to the job inside a TEE this machine verified, and prints\n"
    "the result once its signed receipt checks out.  Exit status: 0 ok,\n"
    "1 verification refused, 2 usage or connection error.\n";

static int read_all(FILE *f, unsigned char **out, size_t *len)
{
    size_t cap = 65536, n = 0;
    unsigned char *buf = malloc(cap);

    while (buf != NULL) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
        if (n == cap) {
            unsigned char *nb;
            if (cap >= LUNAL_MAX_RESULT) {
                free(buf);
                return cli_usage_error("request: data larger than 64 MiB");
            }
            nb = realloc(buf, cap * 2);
            if (nb == NULL)
                break;
            buf = nb;
            cap *= 2;
        }
    }
    if (buf == NULL || ferror(f)) {
        free(buf);
        return cli_usage_error("request: cannot read the data");
    }
    *out = buf;
    *len = n;
    return CLI_OK;
}

int cli_cmd_request(const cli_global *g, int argc, char **argv)
{
    const char *job = NULL, *data = NULL, *dep = NULL, *outf = NULL;
    bool json = g->json;
    unsigned char *buf = NULL;
    size_t len = 0;
    luna_client *c;
    luna_result *r;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(request_help, stdout);
            return CLI_OK;
        } else if (strcmp(argv[i], "--job") == 0 && i + 1 < argc) {
            job = argv[++i];
        } else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            data = argv[++i];
        } else if (strcmp(argv[i], "--deployment") == 0 && i + 1 < argc) {
            dep = argv[++i];
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            outf = argv[++i];
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else {
            fputs(request_help, stderr);
            return cli_usage_error("request: unexpected %s", argv[i]);
        }
    }
    if (job == NULL || data == NULL) {
        fputs(request_help, stderr);
        return cli_usage_error("request: --job and --data are required");
    }
    if (data[0] == '@') {
        FILE *f = strcmp(data, "@-") == 0 ? stdin : fopen(data + 1, "rb");
        if (f == NULL)
            return cli_usage_error("request: cannot open %s: %s", data + 1, strerror(errno));
        rc = read_all(f, &buf, &len);
        if (f != stdin)
            fclose(f);
        if (rc != CLI_OK)
            return rc;
    } else {
        len = strlen(data);
        buf = malloc(len + 1);
        if (buf == NULL)
            return CLI_USAGE;
        memcpy(buf, data, len);
    }
    if ((c = cli_client(g)) == NULL) {
        free(buf);
        return CLI_USAGE;
    }
    r = luna_request_deployment(c, dep, job, buf, len);
    free(buf);
    if (r == NULL || r->err != LUNA_OK) {
        fprintf(stderr, "lunal: request failed (%s): %s\n",
                r != NULL ? luna_errname(r->err) : "nomem",
                r != NULL ? r->reason : "out of memory");
        rc = r != NULL && r->err == LUNA_ERR_VERIFY ? CLI_FAILED : CLI_USAGE;
        luna_result_free(r);
        luna_client_free(c);
        return rc;
    }
    rc = CLI_OK;
    if (json) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:i,s:s%}", "request_id",
                              r->receipt.request_id, "tee_id", r->receipt.tee_id, "job",
                              r->receipt.job, "deployment_id", r->receipt.deployment_id,
                              "measurement", r->receipt.measurement_hex, "result_sha256",
                              r->receipt.result_sha256_hex, "simulated", r->receipt.simulated,
                              "attempts", (int)r->attempts, "data", (const char *)r->data,
                              r->len);
        char *text = o != NULL ? json_dumps(o, JSON_INDENT(2)) : NULL;
        if (text == NULL) {
            fprintf(stderr, "lunal: the result is not UTF-8 text: use --out FILE\n");
            rc = CLI_USAGE;
        } else {
            puts(text);
        }
        free(text);
        json_decref(o);
    } else {
        FILE *f = outf != NULL ? fopen(outf, "wb") : stdout;
        if (f == NULL || fwrite(r->data, 1, r->len, f) != r->len) {
            fprintf(stderr, "lunal: cannot write the result\n");
            rc = CLI_USAGE;
        }
        if (f != NULL && f != stdout)
            fclose(f);
        if (f == stdout && r->len > 0 && r->data[r->len - 1] != '\n' && g->color)
            fputc('\n', stdout);
        fprintf(stderr, "verified result of %s from TEE %s%s (request %s, measurement %.16s...)\n",
                r->receipt.job, r->receipt.tee_id,
                r->receipt.simulated ? " [SIMULATED, development only]" : "",
                r->receipt.request_id, r->receipt.measurement_hex);
    }
    luna_result_free(r);
    luna_client_free(c);
    return rc;
}
