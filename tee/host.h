/*
 * host.h - private seams of the SIMULATED TEE platform (luna-tee-host):
 * its settings (host_config.c, the only file that includes luna/config.h)
 * and its platform keys (host_platform.c, the only one that includes
 * luna/evidence_sim.h; the two headers define clashing profile names).
 * INSECURE BY DESIGN: development and tests only (docs/tee.md).
 */
#ifndef LUNA_TEE_HOST_H
#define LUNA_TEE_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "luna/err.h"

#define HOST_MAX_TEES 16
#define HOST_PATH_MAX 4096
#define HOST_ID_MAX 64
#define HOST_TCB_MAX 8192

typedef struct host_tee_settings {
    char id[HOST_ID_MAX + 1];
    char config[HOST_PATH_MAX + 1];   /* the runtime's measured config (JSON) */
    char manifest[HOST_PATH_MAX + 1]; /* the signed deployment manifest */
    char bundle[HOST_PATH_MAX + 1];   /* the job bundle */
} host_tee_settings;

typedef struct host_settings {
    char listen_address[64];
    uint16_t listen_port;
    char tls_cert[HOST_PATH_MAX + 1], tls_key[HOST_PATH_MAX + 1], tls_ca[HOST_PATH_MAX + 1];
    bool tpm;                         /* platform "tpm": evidence from a TPM 2.0 quote */
    char tcti[257];                   /* its TCTI (tee/host_tpm.h, HOST_TPM_TCTI_MAX) */
    char platform_dir[HOST_PATH_MAX + 1]; /* platform "sim" only */
    char runtime[HOST_PATH_MAX + 1];
    uint32_t tcb_level;
    bool debug;
    bool has_attestation;
    char att_host[256];
    uint16_t att_port;
    host_tee_settings tees[HOST_MAX_TEES];
    size_t n_tees;
} host_settings;

/* Loads the host's config (development profile only: sim is insecure). */
luna_err host_settings_load(const char *path, host_settings *out, char *msg,
                            size_t msg_cap) LUNA_MUST_CHECK;

/* ---- platform (host_platform.c) ---- */
typedef struct host_platform host_platform;

/*
 * Creates a new simulated vendor root in dir (vendor.crt, vendor.key 0600)
 * and a TCB document tcb.bin; LUNA_ERR_CONFLICT when the root exists.
 */
luna_err host_platform_init_dir(const char *dir, uint32_t tcb_level) LUNA_MUST_CHECK;
/*
 * Loads the vendor root from dir and creates this run's platform key
 * (Ed25519) and certificate, and a fresh TCB status document.
 */
luna_err host_platform_open(const char *dir, uint32_t tcb_level, host_platform **out) LUNA_MUST_CHECK;
void host_platform_free(host_platform *p);
/* The current signed TCB status document (re-signed when near its next update). */
luna_err host_platform_tcb(host_platform *p, const uint8_t **doc, size_t *len) LUNA_MUST_CHECK;

typedef struct host_evidence_in {
    const uint8_t *measurement; /* 32 */
    const uint8_t *signer;      /* 32 */
    const uint8_t *x25519;      /* 32 */
    const uint8_t *ed25519;     /* 32 */
    const uint8_t *nonce;       /* 32 */
    const uint8_t *memory_digest; /* 32 */
    bool debug;
} host_evidence_in;

#define HOST_EVIDENCE_MAX 4096

/* ---- TPM platform (host_platform_tpm.c, docs/tpm-live.md) ---- */
struct host_tpm;
/*
 * TPM evidence for one runtime: PCR 23 := its measurement (reset +
 * extend), a quote over the binding of (nonce, keys), the keys beside it
 * (LTQ1, out of HOST_EVIDENCE_MAX bytes).  in->signer, memory_digest and
 * debug have no place in a quote and are not used.
 */
luna_err host_platform_tpm_evidence(struct host_tpm *t, const host_evidence_in *in, uint8_t *out,
                                    size_t cap, size_t *out_len) LUNA_MUST_CHECK;

/*
 * The operator's AK enrolment, TPM side (docs/tpm-live.md): *out gets
 * {"ek_cert", "ak_public"} (b64url DER certificate and marshalled
 * TPMT_PUBLIC), or, for a body {"id_object", "enc_secret"} (b64url
 * TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET), {"credential"} from
 * TPM2_ActivateCredential.  *out is the caller's (json_decref).
 * LUNA_ERR_FORMAT / LUNA_ERR_TOO_LARGE for a bad body, LUNA_ERR_VERIFY when
 * the TPM refuses the blob (made for another AK or EK).
 */
struct json_t;
luna_err host_platform_tpm_enrolment(struct host_tpm *t, struct json_t **out) LUNA_MUST_CHECK;
luna_err host_platform_tpm_activate(struct host_tpm *t, const uint8_t *body, size_t len,
                                    struct json_t **out) LUNA_MUST_CHECK;
/* Signs sim evidence (out of HOST_EVIDENCE_MAX bytes). */
luna_err host_platform_sign(host_platform *p, const host_evidence_in *in, uint8_t *out,
                            size_t cap, size_t *out_len) LUNA_MUST_CHECK;

#endif
