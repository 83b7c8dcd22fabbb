/*
 * main.c - `lunal`: global options and dispatch to the commands.  Owns the
 * exit-status contract (0 ok/verified, 1 verification failed, 2 usage or
 * connection error).  Must never take a secret on the command line and
 * never colour output that is not a terminal.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_offline.h"

/* Defined by cli/dev.c when present (`lunal dev up|down|status`). */
int lunal_cmd_dev(int argc, char **argv) __attribute__((weak));

static const char usage_text[] =
    "usage: lunal [--config FILE] [--json] <command> [args]\n"
    "\n"
    "commands:\n"
    "  attestation verify --deployment NAME [--tee ID] | --batch FILE | --all\n"
    "  attestation verify --evidence FILE --type sev-snp|tdx|sgx|nitro|tpm [--collateral DIR]\n"
    "                     [--at TIME] [--policy FILE] [--allow-debug] [--accept-tcb S,...]\n"
    "                     [--revocation-optional]        (offline, no network)\n"
    "  attestation history --deployment NAME | --tee ID\n"
    "  request --job NAME --data @FILE|-  [--deployment NAME] [--out FILE]\n"
    "  audit verify|proof|tail|checkpoint  keys list|rotate|revoke\n"
    "  tee list|register|quarantine     deployment register|list\n"
    "  tenant ...   apikey ...   client register   data put|get|list|rm\n"
    "  dev up|down|status\n"
    "\n"
    "Credentials and trust come from the client config (--config or LUNAL_CONFIG)\n"
    "and the environment (LUNAL_API_KEY, LUNAL_TENANT, LUNAL_GATEWAY_URL, ...),\n"
    "never from the command line.  Exit status: 0 ok/verified, 1 verification\n"
    "failed, 2 usage or connection error.  `lunal <command> --help` for more.\n";

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("lunal: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n", stderr);
    return CLI_USAGE;
}

bool cli_is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0 || strcmp(arg, "help") == 0;
}

luna_client *cli_client(const cli_global *g)
{
    luna_client_opts o;
    luna_client *c = NULL;
    char why[LUNAL_REASON_MAX];
    luna_err err;

    memset(&o, 0, sizeof o);
    o.config_file = g->config;
    err = luna_client_create(&o, &c, why);
    if (err != LUNA_OK) {
        fprintf(stderr, "lunal: client configuration: %s\n", why);
        return NULL;
    }
    return c;
}

int main(int argc, char **argv)
{
    cli_global g;
    int i = 1;
    const char *nc = getenv("NO_COLOR");

    memset(&g, 0, sizeof g);
    g.color = isatty(STDOUT_FILENO) == 1 && (nc == NULL || nc[0] == 0) &&
              getenv("TERM") != NULL && strcmp(getenv("TERM"), "dumb") != 0;
    g.err_tty = isatty(STDERR_FILENO) == 1;
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            g.config = argv[i + 1];
            i += 2;
        } else if (strcmp(argv[i], "--json") == 0) {
            g.json = true;
            i++;
        } else if (cli_is_help(argv[i])) {
            fputs(usage_text, stdout);
            return CLI_OK;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("lunal %s\n", LUNAL_SDK_VERSION);
            return CLI_OK;
        } else {
            fputs(usage_text, stderr);
            return cli_usage_error("unknown option %s", argv[i]);
        }
    }
    if (i >= argc) {
        fputs(usage_text, stderr);
        return CLI_USAGE;
    }
    argc -= i;
    argv += i;
    if (strcmp(argv[0], "help") == 0) {
        fputs(usage_text, stdout);
        return CLI_OK;
    }
    /* The offline form needs no client configuration and no network. */
    if (strcmp(argv[0], "attestation") == 0 && argc > 1 && strcmp(argv[1], "verify") == 0 &&
        cli_offline_wanted(argc - 1, argv + 1))
        return cli_cmd_offline_verify(&g, argc - 1, argv + 1);
    if (strcmp(argv[0], "attestation") == 0)
        return cli_cmd_attestation(&g, argc, argv);
    if (strcmp(argv[0], "request") == 0)
        return cli_cmd_request(&g, argc, argv);
    if (strcmp(argv[0], "dev") == 0) {
        if (lunal_cmd_dev == NULL)
            return cli_usage_error("dev: not built into this lunal");
        return lunal_cmd_dev(argc, argv);
    }
    if (strcmp(argv[0], "audit") == 0)
        return cli_cmd_audit(&g, argc, argv);
    if (strcmp(argv[0], "keys") == 0 ||
        strcmp(argv[0], "tee") == 0 || strcmp(argv[0], "deployment") == 0 ||
        strcmp(argv[0], "tenant") == 0 || strcmp(argv[0], "apikey") == 0 ||
        strcmp(argv[0], "client") == 0 || strcmp(argv[0], "data") == 0)
        return cli_cmd_api(&g, argv[0], argc, argv);
    fputs(usage_text, stderr);
    return cli_usage_error("unknown command %s", argv[0]);
}
