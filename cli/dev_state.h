/*
 * dev_state.h - the dev state folder and the component table of
 * `lunal dev` (docs/operations.md).  Internal to cli/dev*.c.
 *
 * Owns: where every file of the dev platform lives, which port each
 * component listens on, and where the component executables are found.
 * Must never: place a secret outside the 0700 state folder or give it a
 * mode other than 0600.
 */
#ifndef LUNAL_CLI_DEV_STATE_H
#define LUNAL_CLI_DEV_STATE_H

#include <stdbool.h>
#include <stddef.h>

#include "dev.h"

#define DEV_DEFAULT_DIR ".lunal/dev"
#define DEV_DEFAULT_PORT_BASE 8443u
#define DEV_N_TEES 2u
#define DEV_TENANT "demo"
#define DEV_DEPLOYMENT "demo"
#define DEV_DEVELOPER "dev_demo"
#define DEV_DEVELOPER_NAME "Demo Developer"
#define DEV_CLIENT "demo-client"
#define DEV_IDENTITY "lunal://svc/dev"

typedef struct dev_ctx {
    char dir[DEV_PATH_MAX];     /* absolute state folder */
    char bindir[DEV_PATH_MAX];  /* folder of the running lunal executable */
    unsigned port_base;         /* gateway port; the others follow it */
    bool verbose;
} dev_ctx;

/* One long-running component.  port_off is added to the port base. */
typedef struct dev_comp {
    const char *name;       /* "iam": names its config, log, pidfile, db */
    const char *binary;     /* "luna-iam" */
    const char *subdir;     /* its folder in a build tree ("iam") */
    const char *identity;   /* "lunal://svc/iam" */
    unsigned port_off;
    const char *args[4];    /* after the binary; "@CONFIG@" is the config path */
} dev_comp;

/* The components in start order (stop order is the reverse). */
extern const dev_comp dev_comps[];
extern const size_t dev_n_comps;

/* dir/rel into out; LUNA_ERR_TOO_LARGE when it does not fit. */
luna_err dev_path(const dev_ctx *c, const char *rel, char *out, size_t cap) LUNA_MUST_CHECK;
/* dir/<folder>/<name><suffix>. */
luna_err dev_file(const dev_ctx *c, const char *folder, const char *name, const char *suffix,
                  char *out, size_t cap) LUNA_MUST_CHECK;
unsigned dev_port(const dev_ctx *c, const dev_comp *comp);
unsigned dev_tee_port(const dev_ctx *c, unsigned n);

/*
 * Finds an executable: $LUNAL_BIN_DIR/<binary>, then the build tree next
 * to lunal (<bindir>/../<subdir>/<binary>), then <bindir>/<binary>.
 * LUNA_ERR_NOT_FOUND when none is an executable regular file.
 */
luna_err dev_find_binary(const dev_ctx *c, const char *binary, const char *subdir, char *out,
                         size_t cap) LUNA_MUST_CHECK;

/* Creates dir (and parents) with mode 0700; an existing one must be a
   folder owned by us without group/other write access. */
luna_err dev_mkdir(const char *path) LUNA_MUST_CHECK;
/* Writes data to path atomically with the given mode. */
luna_err dev_write_file(const char *path, const void *data, size_t len,
                        unsigned mode) LUNA_MUST_CHECK;
bool dev_exists(const char *path);

/* ---- one-time material and configs (dev_config.c) ---- */

/* Why a step failed, in words, for the operator (never a secret). */
typedef struct dev_why {
    char msg[512];
} dev_why;
void dev_why_set(dev_why *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Everything a component needs before it starts and that survives a
 * restart: CA and TEE CA with passphrase files, certificates (renewed on
 * every `up`), the sim platform, the SoftHSM token, the audit and IAM
 * keys, the developer key, the measured and signed demo deployment.
 * Idempotent: what exists is reused.
 */
luna_err dev_prepare(const dev_ctx *c, dev_why *why) LUNA_MUST_CHECK;

/*
 * Right before the KMS starts: its own folder kms/ (the database; a
 * db/kms.db of an older state folder moves there).  As root also the
 * system user lunal-kms (created when absent, like lunal-hsm) that the
 * KMS becomes once its HSM process runs (kms.user), owning kms/ and
 * certs/kms.key, with group read access to exactly the public files it
 * reads after the drop (docs/operations.md, "The KMS's user").
 */
luna_err dev_kms_prepare(const dev_ctx *c, dev_why *why) LUNA_MUST_CHECK;

/* Writes comp's JSON config (mode 0600) from the ports and the state. */
luna_err dev_config_write(const dev_ctx *c, const dev_comp *comp, dev_why *why) LUNA_MUST_CHECK;

/* The client config of the demo tenant (client/client.json) once the
   tenant's API key and client key exist. */
luna_err dev_client_config_write(const dev_ctx *c, dev_why *why) LUNA_MUST_CHECK;

/*
 * After IAM and the KMS are ready, before the TEE host starts: registers
 * the demo developer and client application in IAM (writing
 * client/client.key and client/api_key, 0600, once) and tee-1, tee-2 in
 * the KMS registry for tenant and deployment demo, as the bootstrap
 * administrator (client/admin_api_key).  What exists already is kept.
 */
luna_err dev_bootstrap_demo(const dev_ctx *c, dev_why *why) LUNA_MUST_CHECK;

/* TLS options for the dev operator identity (DEV_IDENTITY) to reach comp. */
typedef struct dev_tls_paths {
    char ca[DEV_PATH_MAX], tee_ca[DEV_PATH_MAX], cert[DEV_PATH_MAX], key[DEV_PATH_MAX];
} dev_tls_paths;
luna_err dev_tls_paths_get(const dev_ctx *c, dev_tls_paths *out) LUNA_MUST_CHECK;

#endif
