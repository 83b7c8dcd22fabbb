/*
 * tee_config.h - the TEE runtime's config: the JSON document the platform
 * measures into mr_enclave and hands to the runtime (docs/tee.md,
 * "Runtime config").  Parsed with the strict JSON parser; the host reads
 * it too (for mr_signer, the developer key's digest).
 * Thread safety: no state.  Nothing here logs.
 */
#ifndef LUNA_TEE_CONFIG_H
#define LUNA_TEE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "luna/err.h"
#include "sandbox.h"

#define LUNA_TEE_CONFIG_PATH_MAX 4096
#define LUNA_TEE_CONFIG_ID_MAX 64

typedef struct luna_tee_config {
    char deployment_id[LUNA_TEE_CONFIG_ID_MAX + 1];
    char developer_id[LUNA_TEE_CONFIG_ID_MAX + 1];
    uint8_t developer_pk[32]; /* pinned Ed25519 key of the developer */
    char listen_address[64];
    uint16_t listen_port;
    char tls_ca[LUNA_TEE_CONFIG_PATH_MAX + 1];     /* the platform CA */
    char tls_tee_ca[LUNA_TEE_CONFIG_PATH_MAX + 1]; /* the TEE CA */
    char kms_host[256];
    uint16_t kms_port;
    luna_tee_limits limits;
} luna_tee_config;

/*
 * Parses and checks a config (len <= 64 KiB).  LUNA_ERR_FORMAT /
 * LUNA_ERR_TOO_LARGE with msg (may be NULL) saying which key; msg never
 * contains a value.
 */
luna_err luna_tee_config_parse(const uint8_t *buf, size_t len, luna_tee_config *out, char *msg,
                               size_t msg_cap) LUNA_MUST_CHECK;

#endif
