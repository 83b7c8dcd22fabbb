/*
 * host_platform.c - the SIMULATED platform's keys: the sim vendor root
 * (kept in a folder), this run's platform key and certificate, the TCB
 * status collateral, and evidence signing through luna/evidence_sim.h.
 * INSECURE BY DESIGN.  Must never be mistaken for hardware: every name it
 * creates says SIMULATED, and a production policy refuses its root.
 */
#include "host.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "luna/evidence_sim.h"
#include "luna/pki.h"

#define VENDOR_DAYS 3650
#define PLATFORM_DAYS 30
#define TCB_VALID_SECONDS (7 * 24 * 3600)

struct host_platform {
    luna_sim_vendor *vendor;
    luna_sim_platform *platform;
    uint32_t tcb_level;
    uint8_t tcb[HOST_TCB_MAX];
    size_t tcb_len;
    int64_t tcb_next;
};

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static luna_err join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n > 0 && (size_t)n < cap ? LUNA_OK : LUNA_ERR_TOO_LARGE;
}

static luna_err sign_tcb(const luna_sim_vendor *v, uint32_t level, uint8_t *out, size_t cap,
                         size_t *len, int64_t *next)
{
    luna_sim_tcb_params t;
    memset(&t, 0, sizeof(t));
    t.current_level = level;
    t.revoked_below = 0;
    t.issued_at = now_s();
    t.next_update = t.issued_at + TCB_VALID_SECONDS;
    *next = t.next_update;
    return luna_sim_tcb_sign(v, &t, out, cap, len);
}

static luna_err write_file(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wbx");
    if (f == NULL)
        return errno == EEXIST ? LUNA_ERR_CONFLICT : LUNA_ERR_IO;
    bool ok = fwrite(b, 1, n, f) == n;
    ok = fclose(f) == 0 && ok;
    return ok ? LUNA_OK : LUNA_ERR_IO;
}

luna_err host_platform_init_dir(const char *dir, uint32_t tcb_level)
{
    char crt[HOST_PATH_MAX + 32], key[HOST_PATH_MAX + 32], tcb[HOST_PATH_MAX + 32];
    luna_sim_vendor *v = NULL;
    uint8_t doc[LUNA_SIM_TCB_MAX];
    size_t doc_len;
    int64_t next;
    luna_err err;

    if (dir == NULL)
        return LUNA_ERR_INVALID_ARG;
    (void)mkdir(dir, 0700);
    LUNA_GUARD(join(crt, sizeof(crt), dir, "vendor.crt"));
    LUNA_GUARD(join(key, sizeof(key), dir, "vendor.key"));
    LUNA_GUARD(join(tcb, sizeof(tcb), dir, "tcb.bin"));
    struct stat st;
    if (stat(crt, &st) == 0 || stat(key, &st) == 0)
        return LUNA_ERR_CONFLICT;
    LUNA_TRY(luna_sim_vendor_create(now_s() - 300, now_s() + (int64_t)VENDOR_DAYS * 86400, &v),
             out);
    LUNA_TRY(luna_pki_write_key(key, luna_sim_vendor_key(v)), out);
    LUNA_TRY(luna_pki_write_cert(crt, luna_sim_vendor_cert(v)), out);
    LUNA_TRY(sign_tcb(v, tcb_level, doc, sizeof(doc), &doc_len, &next), out);
    (void)remove(tcb);
    LUNA_TRY(write_file(tcb, doc, doc_len), out);
out:
    luna_sim_vendor_free(v);
    return err;
}

luna_err host_platform_open(const char *dir, uint32_t tcb_level, host_platform **out)
{
    char crt[HOST_PATH_MAX + 32], key[HOST_PATH_MAX + 32];
    X509 *cert = NULL;
    EVP_PKEY *pkey = NULL;
    host_platform *p = NULL;
    luna_err err;

    if (dir == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    LUNA_GUARD(join(crt, sizeof(crt), dir, "vendor.crt"));
    LUNA_GUARD(join(key, sizeof(key), dir, "vendor.key"));
    p = calloc(1, sizeof(*p));
    LUNA_TRY_ENSURE(p != NULL, LUNA_ERR_NOMEM, out);
    p->tcb_level = tcb_level;
    LUNA_TRY(luna_pki_read_cert(crt, &cert), out);
    LUNA_TRY(luna_pki_read_key(key, &pkey), out);
    LUNA_TRY(luna_sim_vendor_from_parts(cert, pkey, &p->vendor), out);
    cert = NULL;
    pkey = NULL;
    LUNA_TRY(luna_sim_platform_create(p->vendor, LUNA_SIM_SIG_ED25519, now_s() - 300,
                                      now_s() + (int64_t)PLATFORM_DAYS * 86400, &p->platform),
             out);
    LUNA_TRY(sign_tcb(p->vendor, tcb_level, p->tcb, sizeof(p->tcb), &p->tcb_len, &p->tcb_next),
             out);
    /* Also refresh dir/tcb.bin (atomically) for verifiers that read the
       collateral from a file rather than GET /v1/tee-host/tcb. */
    char tcb[HOST_PATH_MAX + 32], tmp[HOST_PATH_MAX + 32];
    LUNA_TRY(join(tcb, sizeof(tcb), dir, "tcb.bin"), out);
    LUNA_TRY(join(tmp, sizeof(tmp), dir, "tcb.bin.new"), out);
    (void)remove(tmp);
    LUNA_TRY(write_file(tmp, p->tcb, p->tcb_len), out);
    LUNA_TRY_ENSURE(rename(tmp, tcb) == 0, LUNA_ERR_IO, out);
    *out = p;
    p = NULL;
out:
    X509_free(cert);
    EVP_PKEY_free(pkey);
    host_platform_free(p);
    return err;
}

void host_platform_free(host_platform *p)
{
    if (p == NULL)
        return;
    luna_sim_platform_free(p->platform);
    luna_sim_vendor_free(p->vendor);
    free(p);
}

luna_err host_platform_tcb(host_platform *p, const uint8_t **doc, size_t *len)
{
    if (p == NULL || doc == NULL || len == NULL)
        return LUNA_ERR_INVALID_ARG;
    /* Re-issue a day before the next update so verifiers never see it stale. */
    if (now_s() > p->tcb_next - 86400)
        LUNA_GUARD(sign_tcb(p->vendor, p->tcb_level, p->tcb, sizeof(p->tcb), &p->tcb_len,
                            &p->tcb_next));
    *doc = p->tcb;
    *len = p->tcb_len;
    return LUNA_OK;
}

luna_err host_platform_sign(host_platform *p, const host_evidence_in *in, uint8_t *out,
                            size_t cap, size_t *out_len)
{
    if (p == NULL || in == NULL || out == NULL || out_len == NULL || in->measurement == NULL ||
        in->signer == NULL || in->x25519 == NULL || in->ed25519 == NULL || in->nonce == NULL ||
        in->memory_digest == NULL)
        return LUNA_ERR_INVALID_ARG;
    luna_sim_evidence_params e;
    memset(&e, 0, sizeof(e));
    e.tcb_level = p->tcb_level;
    e.debug = in->debug;
    memcpy(e.measurement, in->measurement, LUNA_SIM_FIELD_LEN);
    memcpy(e.signer, in->signer, LUNA_SIM_FIELD_LEN);
    memcpy(e.tee_x25519, in->x25519, LUNA_SIM_FIELD_LEN);
    e.has_tee_ed25519 = true;
    memcpy(e.tee_ed25519, in->ed25519, LUNA_SIM_FIELD_LEN);
    memcpy(e.nonce, in->nonce, LUNA_SIM_FIELD_LEN);
    memcpy(e.memory_digest, in->memory_digest, LUNA_SIM_FIELD_LEN);
    e.timestamp = now_s();
    e.report_data = NULL; /* the binding of (nonce, keys): luna_verifier_binding */
    return luna_sim_evidence_sign(p->platform, &e, out, cap, out_len);
}
