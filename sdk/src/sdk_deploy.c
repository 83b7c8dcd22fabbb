/*
 * sdk_deploy.c - the developer's side of deployments: signs a manifest
 * from a JSON description with the developer's Ed25519 seed
 * (luna_deployment_sign).  Must never print or keep the seed, and refuses
 * a seed file readable by others.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "luna/bytes.h"
#include "luna/json.h"
#include "sdk_internal.h"

static const luna_json_field job_item = {.name = "job", .type = LUNA_JSON_T_STRING,
                                         .min_len = 1, .max_len = LUNA_MANIFEST_JOB_MAX,
                                         .pattern = LUNA_JSON_PAT_IDENT};
static const luna_json_field spec_fields[] = {
    {.name = "name", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = LUNA_MANIFEST_NAME_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "version", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = LUNA_MANIFEST_VERSION_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "jobs", .type = LUNA_JSON_T_ARRAY, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = LUNA_MANIFEST_MAX_JOBS, .items = &job_item},
    {.name = "build_hash", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 64, .max_len = 71, .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "mr_enclave", .type = LUNA_JSON_T_HEX, .flags = LUNA_JSON_REQUIRED, .min_len = 32,
     .max_len = LUNA_MANIFEST_MR_ENCLAVE_MAX},
    {.name = "developer_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = LUNA_MANIFEST_DEV_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
};
static const luna_json_schema spec_schema = {spec_fields,
                                             sizeof spec_fields / sizeof spec_fields[0], NULL};

static luna_err read_small(const char *path, bool private_only, char *buf, size_t cap,
                           size_t *len, char *why)
{
    struct stat st;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0) {
        sdk_why(why, "cannot open %s: %s", path, strerror(errno));
        return LUNA_ERR_CONFIG;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (private_only && (st.st_mode & 077) != 0)) {
        close(fd);
        sdk_why(why, "%s must be a regular file%s", path,
                private_only ? " readable only by its owner (chmod 600)" : "");
        return LUNA_ERR_PERMISSION;
    }
    n = read(fd, buf, cap);
    close(fd);
    if (n < 0 || (size_t)n >= cap) {
        sdk_why(why, "cannot read %s (at most %zu bytes)", path, cap - 1);
        return LUNA_ERR_CONFIG;
    }
    *len = (size_t)n;
    return LUNA_OK;
}

static luna_err load_seed(const char *path, uint8_t seed[LUNA_ED25519_SEED_LEN], char *why)
{
    char buf[130];
    size_t len = 0, got = 0;
    luna_err err;

    LUNA_GUARD(read_small(path, true, buf, sizeof buf, &len, why));
    if (len == LUNA_ED25519_SEED_LEN) {
        memcpy(seed, buf, LUNA_ED25519_SEED_LEN);
        err = LUNA_OK;
    } else {
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            len--;
        err = len == 64 ? luna_hex_decode(buf, len, seed, LUNA_ED25519_SEED_LEN, &got)
                        : LUNA_ERR_FORMAT;
        if (err != LUNA_OK || got != LUNA_ED25519_SEED_LEN) {
            sdk_why(why, "%s is not an Ed25519 seed (32 raw bytes or 64 hex)", path);
            err = LUNA_ERR_CONFIG;
        }
    }
    luna_wipe(buf, sizeof buf);
    return err;
}

luna_err luna_deployment_sign(const char *spec_path, const char *key_path, char **jws,
                              char *key_id, char *why)
{
    char text[16384];
    size_t len = 0, n = 0, count = 0;
    json_t *spec = NULL;
    const json_t *jobs = NULL;
    const char *s = NULL;
    luna_json_error jerr;
    luna_manifest m;
    uint8_t seed[LUNA_ED25519_SEED_LEN];
    luna_err err;

    if (why != NULL)
        why[0] = 0;
    if (spec_path == NULL || key_path == NULL || jws == NULL)
        return LUNA_ERR_INVALID_ARG;
    *jws = NULL;
    memset(&m, 0, sizeof m);
    LUNA_GUARD(read_small(spec_path, false, text, sizeof text, &len, why));
    if (luna_json_parse(text, len, &spec_schema, NULL, &spec, &jerr) != LUNA_OK) {
        sdk_why(why, "%s: %s%s%s", spec_path, jerr.path, jerr.path[0] ? ": " : "", jerr.message);
        return LUNA_ERR_CONFIG;
    }
    err = LUNA_ERR_CONFIG;
    if (sdk_json_str(spec, "name", m.name, sizeof m.name) != LUNA_OK ||
        sdk_json_str(spec, "version", m.version, sizeof m.version) != LUNA_OK ||
        sdk_json_str(spec, "developer_id", m.developer_id, sizeof m.developer_id) != LUNA_OK ||
        luna_json_get_array(spec, "jobs", &jobs, &count) != LUNA_OK ||
        luna_json_get_hex(spec, "mr_enclave", m.mr_enclave, sizeof m.mr_enclave,
                          &m.mr_enclave_len) != LUNA_OK ||
        luna_json_get_string(spec, "build_hash", &s, NULL) != LUNA_OK)
        goto out;
    if (strncasecmp(s, "sha256:", 7) == 0)
        s += 7;
    if (strlen(s) != 64 || luna_hex_decode(s, 64, m.build_hash, sizeof m.build_hash, &n) != LUNA_OK) {
        sdk_why(why, "build_hash must be 64 hex characters (optionally sha256:)");
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        const char *j = json_string_value(json_array_get(jobs, i));
        snprintf(m.jobs[i], sizeof m.jobs[i], "%s", j != NULL ? j : "");
    }
    m.n_jobs = count;
    LUNA_TRY(load_seed(key_path, seed, why), out);
    err = luna_manifest_sign(&m, seed, jws, NULL);
    if (err == LUNA_OK && key_id != NULL) {
        uint8_t pk[LUNA_ED25519_PUB_LEN];
        char kid[LUNA_MANIFEST_KEY_ID_LEN + 1];
        if (luna_ed25519_public(seed, pk) == LUNA_OK && luna_manifest_key_id(pk, kid) == LUNA_OK)
            snprintf(key_id, 48, "%s", kid);
        else
            key_id[0] = 0;
    }
    luna_wipe(seed, sizeof seed);
    if (err != LUNA_OK)
        sdk_why(why, "the manifest breaks a rule (docs/manifest.md): %s", luna_strerror(err));
out:
    if (err != LUNA_OK && why != NULL && why[0] == 0)
        sdk_why(why, "bad deployment description %s", spec_path);
    json_decref(spec);
    return err;
}
