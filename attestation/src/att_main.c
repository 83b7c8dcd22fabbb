/*
 * att_main.c - luna-attestation: start-up (config, verifier policy,
 * report signing key, TEE CA, IAM keys, storage), the mTLS server, and an
 * orderly shutdown.  Usage: luna-attestation --config <file>
 *
 * Must never: start with a half-built policy, a report key or TEE CA key
 * readable by others, or without storage for the history.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/log.h"
#include "luna/secret.h"

#include "att.h"

#define ATT_TEE_CA_DAYS 365u
#define ATT_JWKS_FILE_MAX (64u * 1024u)

/* The report key: 32 raw seed bytes, created once (O_EXCL, 0600). */
static luna_err load_report_key(const att_settings *s, luna_jws_signer **out)
{
    uint8_t seed[LUNA_ED25519_SEED_LEN], pk[LUNA_ED25519_PUB_LEN];
    struct stat st;
    luna_err err = LUNA_OK;
    int fd = open(s->report_key, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0 && errno == ENOENT) {
        LUNA_GUARD(luna_ed25519_keygen(seed, pk));
        fd = open(s->report_key, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, seed, sizeof seed) != (ssize_t)sizeof seed || fsync(fd) != 0)
            err = LUNA_ERR_IO;
        if (fd >= 0)
            close(fd);
        if (err == LUNA_OK)
            err = luna_jws_signer_new(seed, s->report_kid, out);
        luna_wipe(seed, sizeof seed);
        return err;
    }
    if (fd < 0)
        return LUNA_ERR_PERMISSION;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        err = LUNA_ERR_CONFIG;
    else if ((st.st_mode & 077) != 0)
        err = LUNA_ERR_PERMISSION;
    else if (st.st_size != (off_t)sizeof seed || read(fd, seed, sizeof seed) != (ssize_t)sizeof seed)
        err = LUNA_ERR_FORMAT;
    close(fd);
    if (err == LUNA_OK)
        err = luna_jws_signer_new(seed, s->report_kid, out);
    luna_wipe(seed, sizeof seed);
    return err;
}

static luna_err load_tee_ca(const att_settings *s, luna_pki_ca **out, char *crt, size_t crt_cap)
{
    luna_secret *pass = NULL;
    luna_pki_ca *ca = NULL;
    struct stat st;
    luna_err err;
    int n = snprintf(crt, crt_cap, "%s/%s", s->tee_ca_dir, LUNA_PKI_CA_CERT_FILE);

    if (n < 0 || (size_t)n >= crt_cap)
        return LUNA_ERR_TOO_LARGE;
    LUNA_GUARD(luna_pki_passphrase_load(s->tee_ca_pass, &pass));
    if (stat(crt, &st) != 0 && errno == ENOENT) {
        /* First start: the TEE CA is born here and never leaves this host. */
        LUNA_TRY(luna_pki_ca_create(ATT_TEE_CA_DAYS, &ca), out);
        LUNA_TRY(luna_pki_ca_save(ca, s->tee_ca_dir, pass), out);
        luna_pki_ca_free(ca);
        ca = NULL;
    }
    LUNA_TRY(luna_pki_ca_load(s->tee_ca_dir, pass, &ca), out);
    *out = ca;
    ca = NULL;
out:
    luna_pki_ca_free(ca);
    luna_secret_free(pass);
    return err;
}

static luna_err load_iam_keys(const att_settings *s, luna_jws_keyset **out)
{
    FILE *f;
    char *buf;
    size_t n;
    luna_err err;
    *out = NULL;
    if (s->iam_jwks == NULL)
        return LUNA_OK;
    f = fopen(s->iam_jwks, "rb");
    if (f == NULL)
        return LUNA_ERR_NOT_FOUND;
    buf = malloc(ATT_JWKS_FILE_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        return LUNA_ERR_NOMEM;
    }
    n = fread(buf, 1, ATT_JWKS_FILE_MAX + 1, f);
    fclose(f);
    err = n > ATT_JWKS_FILE_MAX ? LUNA_ERR_TOO_LARGE : luna_jws_keyset_load(buf, n, out);
    free(buf);
    return err;
}

static void usage(void)
{
    fprintf(stderr, "usage: luna-attestation --config <file>\n");
}

int main(int argc, char **argv)
{
    att_config *cfg = NULL;
    att_service svc;
    struct event_base *base = NULL;
    luna_http_server *srv = NULL;
    luna_jws_keyset *pub = NULL;
    char msg[512];
    luna_err err;
    int rc = 1;

    if (argc != 3 || strcmp(argv[1], "--config") != 0) {
        usage();
        return 2;
    }
    memset(&svc, 0, sizeof svc);
    svc.done_pipe[0] = svc.done_pipe[1] = -1;
    pthread_mutex_init(&svc.state_lock, NULL);
    pthread_mutex_init(&svc.q_lock, NULL);
    pthread_cond_init(&svc.q_cond, NULL);
    if (luna_process_harden() != LUNA_OK) {
        fprintf(stderr, "luna-attestation: process hardening failed\n");
        return 1;
    }
    err = att_config_load(argv[2], &cfg, msg, sizeof msg);
    if (err != LUNA_OK) {
        fprintf(stderr, "luna-attestation: %s\n", msg[0] != '\0' ? msg : luna_strerror(err));
        return 1;
    }
    svc.s = att_config_settings(cfg);
    svc.peers.s = svc.s;
    err = att_policy_build(svc.s, &svc.verifier, msg, sizeof msg);
    if (err != LUNA_OK) {
        fprintf(stderr, "luna-attestation: %s\n", msg);
        goto out;
    }
    err = load_report_key(svc.s, &svc.signer);
    if (err != LUNA_OK) {
        fprintf(stderr, "luna-attestation: report_key: %s\n", luna_strerror(err));
        goto out;
    }
    if (luna_jws_keyset_new(&pub) != LUNA_OK || luna_jws_signer_publish(svc.signer, pub) != LUNA_OK ||
        luna_jws_keyset_export(pub, &svc.jwks_json, &svc.jwks_len) != LUNA_OK) {
        fprintf(stderr, "luna-attestation: cannot build the JWKS\n");
        goto out;
    }
    err = load_tee_ca(svc.s, &svc.tee_ca, svc.peers.tee_ca_file, sizeof svc.peers.tee_ca_file);
    if (err != LUNA_OK) {
        fprintf(stderr, "luna-attestation: tee_ca_dir: %s\n", luna_strerror(err));
        goto out;
    }
    err = load_iam_keys(svc.s, &svc.iam_keys);
    if (err != LUNA_OK) {
        fprintf(stderr, "luna-attestation: iam_jwks: %s\n", luna_strerror(err));
        goto out;
    }
    err = att_db_open(svc.s->storage_url, &svc.db);
    if (err != LUNA_OK) {
        fprintf(stderr, "luna-attestation: storage: %s\n", luna_strerror(err));
        goto out;
    }
    err = att_deps_open(&svc, msg, sizeof msg);
    if (err != LUNA_OK) {
        fprintf(stderr, "luna-attestation: %s\n", msg);
        goto out;
    }
    base = event_base_new();
    if (base == NULL)
        goto out;
    luna_http_server_opts so;
    memset(&so, 0, sizeof so);
    so.component = ATT_COMPONENT;
    so.bind_addr = svc.s->listen_address;
    so.port = svc.s->listen_port;
    so.tls.ca_file = svc.s->tls_ca;
    so.tls.cert_file = svc.s->tls_cert;
    so.tls.key_file = svc.s->tls_key;
    so.tls.tee_ca_file = svc.peers.tee_ca_file;
    so.handle_signals = true;
    so.ready = att_service_ready;
    so.ready_arg = &svc;
    err = luna_http_server_new(base, &so, &srv);
    if (err != LUNA_OK) {
        fprintf(stderr, "luna-attestation: server: %s\n", luna_strerror(err));
        goto out;
    }
    err = att_service_routes(&svc, srv);
    if (err == LUNA_OK)
        err = att_service_start(&svc, base);
    if (err != LUNA_OK) {
        fprintf(stderr, "luna-attestation: start: %s\n", luna_strerror(err));
        goto out;
    }
    LUNA_LOGF(LUNA_LOG_INFO, ATT_COMPONENT, "started",
              LUNA_LOG_UINT("port", luna_http_server_port(srv)),
              LUNA_LOG_UINT("interval", svc.s->interval),
              LUNA_LOG_BOOL("simulated_evidence_allowed", svc.s->allow_sim));
    event_base_dispatch(base);
    rc = 0;
out:
    att_service_stop(&svc);
    luna_http_server_free(srv);
    if (base != NULL)
        event_base_free(base);
    att_deps_close(&svc);
    luna_store_close(svc.db);
    luna_jws_keyset_free(svc.iam_keys);
    luna_pki_ca_free(svc.tee_ca);
    luna_jws_keyset_free(pub);
    free(svc.jwks_json);
    luna_jws_signer_free(svc.signer);
    att_policy_free(svc.verifier);
    att_config_free(cfg);
    return rc;
}
