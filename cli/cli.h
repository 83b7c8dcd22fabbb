/*
 * cli.h - what the `lunal` command's files share.  The CLI is built on the
 * public SDK API (lunal.h) only; it never reads a key from its command
 * line (credentials come from the config file and the environment).
 * Exit status: 0 verified/ok, 1 verification failed, 2 usage or
 * connection error.
 */
#ifndef LUNAL_CLI_H
#define LUNAL_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "lunal.h"

#define CLI_OK 0
#define CLI_FAILED 1
#define CLI_USAGE 2

/* Global options, parsed by main.c before the command. */
typedef struct cli_global {
    const char *config;  /* --config FILE (else $LUNAL_CONFIG) */
    bool json;           /* --json */
    bool color;          /* stdout is a terminal and NO_COLOR is unset */
    bool err_tty;        /* stderr is a terminal */
} cli_global;

/* Formatting of an attestation report (cli_fmt.c); returns the exit status
   the report means (0 verified, 1 not). */
int cli_print_report(FILE *out, const luna_attestation_report *r, bool color);
/* "Up to date", "Out of date", ... */
const char *cli_tcb_words(const char *status);
const char *cli_qe_words(const char *status);

/* Commands (argv[0] is the command name). */
int cli_cmd_attestation(const cli_global *g, int argc, char **argv);
int cli_cmd_request(const cli_global *g, int argc, char **argv);
int cli_cmd_api(const cli_global *g, const char *group, int argc, char **argv);
/* `lunal audit verify|proof|tail|checkpoint` (cli_audit.c). */
int cli_cmd_audit(const cli_global *g, int argc, char **argv);

/* A client from config/env; prints the reason and returns NULL on error. */
luna_client *cli_client(const cli_global *g);
/* Prints "lunal: <msg>" to stderr; returns CLI_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* True for -h / --help. */
bool cli_is_help(const char *arg);

#endif
