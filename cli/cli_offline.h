/*
 * cli_offline.h - what the offline `lunal attestation verify --evidence`
 * files share: the policy the command line and the policy file build
 * (cli_offline_policy.c) and the command itself (cli_offline.c).
 * docs/cli.md ("Offline verification") is the manual.  Nothing here
 * touches the network.
 */
#ifndef LUNAL_CLI_OFFLINE_H
#define LUNAL_CLI_OFFLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "luna/verifier_offline.h"

#define CLI_OFFLINE_MAX_PINS 8
#define CLI_OFFLINE_POLICY_MAX (64u * 1024u)

/* Where a relaxation came from, for naming it in the output. */
typedef enum cli_relax_src {
    CLI_RELAX_NONE = 0,
    CLI_RELAX_FLAG = 1,   /* the command-line option */
    CLI_RELAX_POLICY = 2, /* the --policy file */
} cli_relax_src;

typedef struct cli_offline_policy {
    luna_offline_policy core;
    cli_relax_src debug_src;
    cli_relax_src revocation_src;
    cli_relax_src accept_src;
    /* Extra trust anchors: SHA-256 of a root certificate's DER. */
    uint8_t anchors[CLI_OFFLINE_MAX_PINS][32];
    size_t n_anchors;
    /* TPM attestation keys trusted without certificate: SHA-256 of the
       SubjectPublicKeyInfo DER. */
    uint8_t tpm_aks[CLI_OFFLINE_MAX_PINS][32];
    size_t n_tpm_aks;
} cli_offline_policy;

/*
 * Reads the JSON policy file at path into p (strict schema, see
 * docs/cli.md).  Returns CLI_OK, or prints "lunal: policy FILE: <why>" and
 * returns CLI_USAGE.
 */
int cli_offline_policy_load(const char *path, cli_offline_policy *p);

/*
 * Adds a comma-separated list of TCB statuses (Intel names such as
 * SWHardeningNeeded or snake_case names such as sw_hardening_needed) to
 * *bits.  UpToDate is always accepted; Revoked never.  CLI_OK or
 * CLI_USAGE (message printed).
 */
int cli_offline_accept_tcb(const char *list, unsigned *bits);

/* `lunal attestation verify --evidence ...` (argv[0] is "verify"). */
int cli_cmd_offline_verify(const cli_global *g, int argc, char **argv);

/* True when argv (from argv[1]) asks for the offline form (--evidence). */
bool cli_offline_wanted(int argc, char **argv);

#endif
