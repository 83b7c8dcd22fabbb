/*
 * sdk_client.c - builds a luna_client from options, environment and the
 * client config file: tenant, gateway, credentials, the client's X25519
 * key, and the trust settings (pinned developer keys, the simulated root
 * only in development mode).  Must never read a secret from the command
 * line or print one, and must never trust the sim root unless the caller
 * opted into development mode.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/json.h"
#include "luna/note.h"
#include "sdk_internal.h"

#define SDK_MAX_FILE (256u * 1024u)

void sdk_why(char *why, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(why, LUNAL_REASON_MAX, fmt, ap);
    va_end(ap);
}

static bool id_ok(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > LUNAL_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

/* Reads a whole regular file of at most cap bytes; secret files must be
   private to their owner (no group/other bits). */
static luna_err read_file(const char *path, size_t cap, bool private_only, uint8_t **out,
                          size_t *out_len, char *why)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0) {
        sdk_why(why, "cannot open %s: %s", path, strerror(errno));
        return LUNA_ERR_CONFIG;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        sdk_why(why, "%s is not a regular file", path);
        return LUNA_ERR_CONFIG;
    }
    if (private_only && (st.st_mode & 077) != 0) {
        close(fd);
        sdk_why(why, "%s is readable by group or others (chmod 600 it)", path);
        return LUNA_ERR_PERMISSION;
    }
    if ((uint64_t)st.st_size > cap) {
        close(fd);
        sdk_why(why, "%s is larger than %zu bytes", path, cap);
        return LUNA_ERR_TOO_LARGE;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        close(fd);
        return LUNA_ERR_NOMEM;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (got != (size_t)st.st_size) {
        luna_wipe(buf, got);
        free(buf);
        sdk_why(why, "cannot read %s", path);
        return LUNA_ERR_IO;
    }
    buf[got] = 0;
    *out = buf;
    *out_len = got;
    return LUNA_OK;
}

static void free_wiped(uint8_t *p, size_t n)
{
    if (p != NULL) {
        luna_wipe(p, n);
        free(p);
    }
}

/* A 32-byte key as 64 hex or 43 base64url characters. */
static luna_err parse_key32(const char *s, uint8_t out[SDK_KEY_LEN])
{
    size_t n = s != NULL ? strlen(s) : 0, got = 0;

    if (n == 64 && luna_hex_decode(s, n, out, SDK_KEY_LEN, &got) == LUNA_OK && got == SDK_KEY_LEN)
        return LUNA_OK;
    if (n == 43 && luna_b64url_decode(s, n, out, SDK_KEY_LEN, &got) == LUNA_OK &&
        got == SDK_KEY_LEN)
        return LUNA_OK;
    return LUNA_ERR_FORMAT;
}

/*
 * IAM's client key file (docs/iam.md, "Client application"): the JSON
 * object IAM returns once as key_file.  Strict schema; it must name this
 * client's tenant and its public_key must be the private key's.
 */
static const char *const key_file_types[] = {"lunal-client-key", NULL};
static const luna_json_field key_file_fields[] = {
    {.name = "type", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = 32, .one_of = key_file_types},
    {.name = "version", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 1, .max = 1},
    {.name = "tenant_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = LUNAL_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "principal_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = LUNAL_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "key_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = 64, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "public_key", .type = LUNA_JSON_T_B64URL, .flags = LUNA_JSON_REQUIRED,
     .min_len = SDK_KEY_LEN, .max_len = SDK_KEY_LEN},
    {.name = "private_key", .type = LUNA_JSON_T_B64URL, .flags = LUNA_JSON_REQUIRED,
     .min_len = SDK_KEY_LEN, .max_len = SDK_KEY_LEN},
};
static const luna_json_schema key_file_schema = {
    key_file_fields, sizeof key_file_fields / sizeof key_file_fields[0], NULL};

static luna_err parse_iam_key_file(const luna_client *c, const uint8_t *buf, size_t len,
                                   uint8_t raw[SDK_KEY_LEN], const char *path, char *why)
{
    luna_json_limits lim = {.max_bytes = 4096, .max_depth = 2, .max_string = 256};
    luna_json_error je;
    json_t *doc = NULL;
    uint8_t pk[SDK_KEY_LEN], derived[SDK_KEY_LEN];
    size_t n = 0;
    const char *tenant = NULL;
    size_t tlen = 0;
    luna_err err = luna_json_parse((const char *)buf, len, &key_file_schema, &lim, &doc, &je);
    if (err != LUNA_OK) {
        sdk_why(why, "%s: not a lunal-client-key file (%s)", path, je.message);
        return LUNA_ERR_CONFIG;
    }
    err = LUNA_ERR_CONFIG;
    if (luna_json_get_string(doc, "tenant_id", &tenant, &tlen) != LUNA_OK ||
        strcmp(tenant, c->tenant) != 0) {
        sdk_why(why, "%s is a client key of another tenant", path);
        goto out;
    }
    if (luna_json_get_b64url(doc, "private_key", raw, SDK_KEY_LEN, &n) != LUNA_OK ||
        n != SDK_KEY_LEN || luna_json_get_b64url(doc, "public_key", pk, SDK_KEY_LEN, &n) != LUNA_OK ||
        n != SDK_KEY_LEN || luna_x25519_public(raw, derived) != LUNA_OK ||
        !luna_ct_equal(pk, derived, SDK_KEY_LEN)) {
        sdk_why(why, "%s: the private key does not match its public key", path);
        goto out;
    }
    err = LUNA_OK;
out:
    /* jansson holds the decoded document's copy of the private key. */
    {
        json_t *v = json_object_get(doc, "private_key");
        const char *s = json_string_value(v);
        if (s != NULL)
            luna_wipe((void *)(uintptr_t)s, strlen(s));
    }
    json_decref(doc);
    if (err != LUNA_OK)
        luna_wipe(raw, SDK_KEY_LEN);
    return err;
}

/*
 * Client key file: exactly 32 raw bytes, IAM's lunal-client-key JSON, or a
 * PEM PKCS#8 X25519 private key.  Anything else is refused; the file must
 * be private.
 */
static luna_err load_client_key(luna_client *c, const char *path, char *why)
{
    uint8_t *buf = NULL, raw[SDK_KEY_LEN];
    size_t len = 0, rawlen = sizeof raw;
    EVP_PKEY *pk = NULL;
    BIO *bio = NULL;
    luna_err err;

    LUNA_GUARD(read_file(path, 16384, true, &buf, &len, why));
    if (len == SDK_KEY_LEN) {
        memcpy(raw, buf, SDK_KEY_LEN);
    } else if (len > 0 && buf[0] == '{') {
        LUNA_TRY(parse_iam_key_file(c, buf, len, raw, path, why), out);
    } else {
        err = LUNA_ERR_CONFIG;
        bio = BIO_new_mem_buf(buf, (int)len);
        if (bio != NULL)
            pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        if (pk == NULL || EVP_PKEY_get_id(pk) != EVP_PKEY_X25519 ||
            EVP_PKEY_get_raw_private_key(pk, raw, &rawlen) != 1 || rawlen != SDK_KEY_LEN) {
            sdk_why(why, "%s is not an X25519 private key (32 raw bytes or PEM PKCS#8)", path);
            goto out;
        }
    }
    LUNA_TRY(luna_secret_from(raw, SDK_KEY_LEN, &c->client_sk), out);
    err = luna_x25519_public(raw, c->client_pk);
    if (err != LUNA_OK)
        sdk_why(why, "%s: the X25519 key is unusable", path);
out:
    luna_wipe(raw, sizeof raw);
    EVP_PKEY_free(pk);
    BIO_free(bio);
    free_wiped(buf, len);
    return err;
}

static luna_err ephemeral_key(luna_client *c)
{
    uint8_t sk[SDK_KEY_LEN];
    luna_err err;

    LUNA_TRY(luna_x25519_keygen(sk, c->client_pk), out);
    LUNA_TRY(luna_secret_from(sk, SDK_KEY_LEN, &c->client_sk), out);
    c->ephemeral_key = true;
out:
    luna_wipe(sk, sizeof sk);
    return err;
}

static luna_err load_sim_root(luna_client *c, const char *path, char *why)
{
    FILE *f = fopen(path, "re");

    if (f == NULL) {
        sdk_why(why, "cannot open the sim root %s: %s", path, strerror(errno));
        return LUNA_ERR_CONFIG;
    }
    c->sim_root = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (c->sim_root == NULL) {
        sdk_why(why, "%s is not a PEM certificate", path);
        return LUNA_ERR_CONFIG;
    }
    return LUNA_OK;
}

static luna_err add_pin(luna_client *c, const char *dep, const char *dev, const char *key,
                        const char *manifest, char *why)
{
    sdk_pin *p;

    if (c->n_pins >= LUNAL_MAX_PINNED) {
        sdk_why(why, "more than %d pinned developer keys", LUNAL_MAX_PINNED);
        return LUNA_ERR_TOO_LARGE;
    }
    if (!id_ok(dep) || !id_ok(dev)) {
        sdk_why(why, "pinned developer: deployment_id and developer_id must be 1..64 of [A-Za-z0-9._-]");
        return LUNA_ERR_CONFIG;
    }
    if (sdk_pin_find(c, dep) != NULL)
        return LUNA_OK; /* the first source (options, then config) wins */
    p = &c->pins[c->n_pins];
    memset(p, 0, sizeof *p);
    if (parse_key32(key, p->pk) != LUNA_OK) {
        sdk_why(why, "pinned key of deployment %s is not 32 bytes in hex or base64url", dep);
        return LUNA_ERR_CONFIG;
    }
    snprintf(p->deployment_id, sizeof p->deployment_id, "%s", dep);
    snprintf(p->developer_id, sizeof p->developer_id, "%s", dev);
    if (manifest != NULL) {
        p->manifest = strdup(manifest);
        if (p->manifest == NULL)
            return LUNA_ERR_NOMEM;
    }
    c->n_pins++;
    return LUNA_OK;
}

const sdk_pin *sdk_pin_find(const luna_client *c, const char *deployment_id)
{
    for (size_t i = 0; i < c->n_pins; i++)
        if (strcmp(c->pins[i].deployment_id, deployment_id) == 0)
            return &c->pins[i];
    return NULL;
}

/* ---- the client config file (docs/sdk.md) ---- */

static const luna_json_field pin_fields[] = {
    {.name = "deployment_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = LUNAL_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "developer_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = LUNAL_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "developer_key", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 43, .max_len = 64, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "manifest_file", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = 1024,
     .pattern = LUNA_JSON_PAT_PRINTABLE},
};
static const luna_json_schema pin_schema = {pin_fields, sizeof pin_fields / sizeof pin_fields[0],
                                            NULL};
static const luna_json_field pin_item = {.name = "deployment", .type = LUNA_JSON_T_OBJECT,
                                         .object = &pin_schema};

#define PATH_FIELD(n)                                                                            \
    {.name = n, .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = 1024,                       \
     .pattern = LUNA_JSON_PAT_PRINTABLE}
static const luna_json_field config_fields[] = {
    {.name = "tenant_id", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = LUNAL_ID_MAX,
     .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "gateway_url", .type = LUNA_JSON_T_STRING, .min_len = 8, .max_len = SDK_URL_MAX - 1,
     .pattern = LUNA_JSON_PAT_PRINTABLE},
    PATH_FIELD("api_key_file"),
    PATH_FIELD("client_key_file"),
    PATH_FIELD("ca_file"),
    {.name = "development", .type = LUNA_JSON_T_BOOL},
    PATH_FIELD("sim_root_file"),
    PATH_FIELD("sim_tcb_file"),
    PATH_FIELD("vendor_roots_dir"),
    {.name = "default_deployment", .type = LUNA_JSON_T_STRING, .min_len = 1,
     .max_len = LUNAL_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "deployments", .type = LUNA_JSON_T_ARRAY, .max_len = LUNAL_MAX_PINNED,
     .items = &pin_item},
    {.name = "timeout_ms", .type = LUNA_JSON_T_INT, .min = 100, .max = 600000},
    {.name = "max_attempts", .type = LUNA_JSON_T_INT, .min = 1, .max = SDK_MAX_ATTEMPTS},
    {.name = "max_evidence_age", .type = LUNA_JSON_T_INT, .min = 1,
     .max = LUNA_POLICY_MAX_AGE_CAP},
    /* audit log verification (sdk_audit.c) */
    {.name = "audit_log_key", .type = LUNA_JSON_T_STRING, .min_len = 1,
     .max_len = LUNA_NOTE_VKEY_MAX_LEN, .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "audit_witness_key", .type = LUNA_JSON_T_STRING, .min_len = 1,
     .max_len = LUNA_NOTE_VKEY_MAX_LEN, .pattern = LUNA_JSON_PAT_PRINTABLE},
    PATH_FIELD("audit_state_file"),
};
static const luna_json_schema config_schema = {
    config_fields, sizeof config_fields / sizeof config_fields[0], NULL};

/* Resolved settings: options win over the environment, which wins over the file. */
typedef struct settings {
    const char *tenant, *api_key, *gateway, *key_file, *ca_file, *sim_root, *sim_tcb,
        *default_dep, *api_key_file;
    bool development;
    unsigned timeout_ms, attempts, max_age;
} settings;

static const char *pick(const char *opt, const char *env_name, const json_t *cfg,
                        const char *key)
{
    const char *v = NULL;

    if (opt != NULL && opt[0] != 0)
        return opt;
    if (env_name != NULL) {
        v = getenv(env_name);
        if (v != NULL && v[0] != 0)
            return v;
    }
    if (cfg != NULL && luna_json_get_string(cfg, key, &v, NULL) == LUNA_OK)
        return v;
    return NULL;
}

/* A path in the config is relative to the config file's folder. */
static const char *cfg_path(const json_t *cfg, const char *key, const char *dir, char *buf,
                            size_t cap)
{
    const char *v = NULL;

    if (cfg == NULL || luna_json_get_string(cfg, key, &v, NULL) != LUNA_OK)
        return NULL;
    if (v[0] == '/' || dir == NULL)
        return v;
    if ((size_t)snprintf(buf, cap, "%s/%s", dir, v) >= cap)
        return NULL;
    return buf;
}

static luna_err load_api_key_file(luna_client *c, const char *path, char *why)
{
    uint8_t *buf = NULL;
    size_t len = 0, n;
    luna_err err;

    LUNA_GUARD(read_file(path, SDK_MAX_API_KEY, true, &buf, &len, why));
    n = len;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    err = n == 0 ? LUNA_ERR_CONFIG : luna_secret_from(buf, n, &c->api_key);
    if (n == 0)
        sdk_why(why, "%s holds no API key", path);
    free_wiped(buf, len);
    return err;
}

static luna_err check_api_key(const char *k, char *why)
{
    size_t n = strlen(k);

    if (n == 0 || n > SDK_MAX_API_KEY) {
        sdk_why(why, "API key must be 1..%u characters", SDK_MAX_API_KEY);
        return LUNA_ERR_CONFIG;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] <= 0x20 || (unsigned char)k[i] >= 0x7f) {
            sdk_why(why, "API key holds a character that cannot go in a header");
            return LUNA_ERR_CONFIG;
        }
    return LUNA_OK;
}

static luna_err read_manifest(const char *path, char **out, char *why)
{
    uint8_t *buf = NULL;
    size_t len = 0;

    LUNA_GUARD(read_file(path, LUNA_MANIFEST_MAX_LEN + 2, false, &buf, &len, why));
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = 0;
    *out = (char *)buf;
    return LUNA_OK;
}

static luna_err apply_config_pins(luna_client *c, const json_t *cfg, const char *dir, char *why)
{
    const json_t *arr = NULL;
    size_t n = 0;
    luna_err err = LUNA_OK;

    if (cfg == NULL || luna_json_get_array(cfg, "deployments", &arr, &n) != LUNA_OK)
        return LUNA_OK;
    for (size_t i = 0; i < n && err == LUNA_OK; i++) {
        const json_t *it = json_array_get(arr, i);
        const char *dep = NULL, *dev = NULL, *key = NULL;
        char buf[SDK_PATH_MAX], *man = NULL;
        const char *mp = cfg_path(it, "manifest_file", dir, buf, sizeof buf);

        if (luna_json_get_string(it, "deployment_id", &dep, NULL) != LUNA_OK ||
            luna_json_get_string(it, "developer_id", &dev, NULL) != LUNA_OK ||
            luna_json_get_string(it, "developer_key", &key, NULL) != LUNA_OK)
            return LUNA_ERR_CONFIG;
        if (mp != NULL) {
            err = read_manifest(mp, &man, why);
            if (err != LUNA_OK)
                return err;
        }
        err = add_pin(c, dep, dev, key, man, why);
        free(man);
    }
    return err;
}

static unsigned pick_uint(unsigned opt, const json_t *cfg, const char *key, unsigned dflt)
{
    int64_t v = 0;

    if (opt != 0)
        return opt;
    if (cfg != NULL && luna_json_get_int(cfg, key, &v) == LUNA_OK && v > 0)
        return (unsigned)v;
    return dflt;
}

static bool env_true(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
}

static luna_err configure(luna_client *c, const luna_client_opts *o, const json_t *cfg,
                          const char *dir, char *why)
{
    char b1[SDK_PATH_MAX], b2[SDK_PATH_MAX], b3[SDK_PATH_MAX], b4[SDK_PATH_MAX],
        b5[SDK_PATH_MAX];
    const char *v;
    bool dev_cfg = false;
    uint8_t *tcb = NULL;
    size_t tcb_len = 0;

    v = pick(o->tenant_id, "LUNAL_TENANT", cfg, "tenant_id");
    if (!id_ok(v)) {
        sdk_why(why, v == NULL ? "no tenant id (option, LUNAL_TENANT or config tenant_id)"
                               : "tenant id must be 1..64 of [A-Za-z0-9._-]");
        return LUNA_ERR_CONFIG;
    }
    snprintf(c->tenant, sizeof c->tenant, "%s", v);

    v = pick(o->gateway_url, "LUNAL_GATEWAY_URL", cfg, "gateway_url");
    if (v == NULL)
        v = SDK_DEFAULT_GATEWAY;
    /* TLS always: a gateway URL without https is refused, not downgraded. */
    if (strncmp(v, "https://", 8) != 0 || strlen(v) >= sizeof c->gateway ||
        strpbrk(v, " \r\n\t?#") != NULL) {
        sdk_why(why, "gateway URL must be https://host[:port] (no query)");
        return LUNA_ERR_CONFIG;
    }
    snprintf(c->gateway, sizeof c->gateway, "%s", v);
    {
        size_t n = strlen(c->gateway);
        while (n > 8 && c->gateway[n - 1] == '/')
            c->gateway[--n] = 0;
    }

    v = pick(o->api_key, "LUNAL_API_KEY", NULL, NULL);
    if (v != NULL) {
        LUNA_GUARD(check_api_key(v, why));
        LUNA_GUARD(luna_secret_from(v, strlen(v), &c->api_key));
    } else {
        v = getenv("LUNAL_API_KEY_FILE");
        if (v == NULL || v[0] == 0)
            v = cfg_path(cfg, "api_key_file", dir, b1, sizeof b1);
        if (v != NULL)
            LUNA_GUARD(load_api_key_file(c, v, why));
        if (c->api_key != NULL) {
            char tmp[SDK_MAX_API_KEY + 1];
            size_t n = luna_secret_len(c->api_key);
            memcpy(tmp, luna_secret_cdata(c->api_key), n);
            tmp[n] = 0;
            luna_err e = check_api_key(tmp, why);
            luna_wipe(tmp, sizeof tmp);
            LUNA_GUARD(e);
        }
    }

    v = pick(o->client_key_file, "LUNAL_CLIENT_KEY_FILE", NULL, NULL);
    if (v == NULL)
        v = cfg_path(cfg, "client_key_file", dir, b2, sizeof b2);
    if (v != NULL)
        LUNA_GUARD(load_client_key(c, v, why));
    else
        LUNA_GUARD(ephemeral_key(c));

    v = pick(o->ca_file, "LUNAL_CA_FILE", NULL, NULL);
    if (v == NULL)
        v = cfg_path(cfg, "ca_file", dir, b3, sizeof b3);
    if (v != NULL) {
        c->ca_file = strdup(v);
        if (c->ca_file == NULL)
            return LUNA_ERR_NOMEM;
    }

    if (cfg != NULL && luna_json_get_bool(cfg, "development", &dev_cfg) != LUNA_OK)
        dev_cfg = false;
    c->development = o->development || env_true("LUNAL_DEV") || dev_cfg;
    if (c->development) {
        v = o->sim_root_file != NULL ? o->sim_root_file
                                     : cfg_path(cfg, "sim_root_file", dir, b4, sizeof b4);
        if (v != NULL)
            LUNA_GUARD(load_sim_root(c, v, why));
        v = o->sim_tcb_file != NULL ? o->sim_tcb_file
                                    : cfg_path(cfg, "sim_tcb_file", dir, b5, sizeof b5);
        if (v != NULL) {
            LUNA_GUARD(read_file(v, SDK_MAX_COLLATERAL, false, &tcb, &tcb_len, why));
            c->sim_tcb = tcb;
            c->sim_tcb_len = tcb_len;
        }
    }

    v = pick(o->default_deployment, "LUNAL_DEPLOYMENT", cfg, "default_deployment");
    if (v != NULL) {
        if (!id_ok(v)) {
            sdk_why(why, "default deployment must be 1..64 of [A-Za-z0-9._-]");
            return LUNA_ERR_CONFIG;
        }
        snprintf(c->default_deployment, sizeof c->default_deployment, "%s", v);
    }

    if (o->n_developers > LUNAL_MAX_PINNED || (o->n_developers > 0 && o->developers == NULL)) {
        sdk_why(why, "developers: at most %d entries", LUNAL_MAX_PINNED);
        return LUNA_ERR_CONFIG;
    }
    for (size_t i = 0; i < o->n_developers; i++)
        LUNA_GUARD(add_pin(c, o->developers[i].deployment_id, o->developers[i].developer_id,
                           o->developers[i].public_key, NULL, why));
    LUNA_GUARD(apply_config_pins(c, cfg, dir, why));
    LUNA_GUARD(sdk_audit_configure(c, cfg, dir, why));

    c->timeout_ms = pick_uint(o->timeout_ms, cfg, "timeout_ms", SDK_DEFAULT_TIMEOUT_MS);
    c->max_attempts = pick_uint(o->max_attempts, cfg, "max_attempts", SDK_DEFAULT_ATTEMPTS);
    c->max_age = pick_uint(o->max_evidence_age, cfg, "max_evidence_age", SDK_DEFAULT_MAX_AGE);
    if (c->max_attempts > SDK_MAX_ATTEMPTS || c->max_age > LUNA_POLICY_MAX_AGE_CAP ||
        c->timeout_ms > 600000u) {
        sdk_why(why, "max_attempts <= %u, max_evidence_age <= %d, timeout_ms <= 600000",
                SDK_MAX_ATTEMPTS, LUNA_POLICY_MAX_AGE_CAP);
        return LUNA_ERR_CONFIG;
    }
    return LUNA_OK;
}

static luna_err load_config(const char *path, json_t **out, char *dir, size_t dir_cap, char *why)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    luna_json_error jerr;
    luna_err err;
    const char *slash;

    LUNA_GUARD(read_file(path, SDK_MAX_FILE, false, &buf, &len, why));
    err = luna_json_parse((const char *)buf, len, &config_schema, NULL, out, &jerr);
    free(buf);
    if (err != LUNA_OK) {
        sdk_why(why, "config %s: %s%s%s", path, jerr.path, jerr.path[0] ? ": " : "",
                jerr.message);
        return LUNA_ERR_CONFIG;
    }
    slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, dir_cap, ".");
    else
        snprintf(dir, dir_cap, "%.*s", (int)(slash - path), path);
    return LUNA_OK;
}

luna_err luna_client_create(const luna_client_opts *opts, luna_client **out, char *why)
{
    luna_client *c = NULL;
    json_t *cfg = NULL;
    char dir[SDK_PATH_MAX];
    const char *cfg_file;
    luna_err err;
    size_t i = 0;

    if (why != NULL)
        why[0] = 0;
    if (opts == NULL || out == NULL) {
        sdk_why(why, "opts and out are required");
        return LUNA_ERR_INVALID_ARG;
    }
    *out = NULL;
    LUNA_GUARD(sdk_http_global_init());
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return LUNA_ERR_NOMEM;
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return LUNA_ERR_INTERNAL;
    }
    for (i = 0; i < sizeof c->share_locks / sizeof c->share_locks[0]; i++)
        if (pthread_mutex_init(&c->share_locks[i], NULL) != 0)
            break;
    if (i != sizeof c->share_locks / sizeof c->share_locks[0]) {
        while (i-- > 0)
            pthread_mutex_destroy(&c->share_locks[i]);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return LUNA_ERR_INTERNAL;
    }
    cfg_file = opts->config_file != NULL ? opts->config_file : getenv("LUNAL_CONFIG");
    if (cfg_file != NULL && cfg_file[0] != 0)
        LUNA_TRY(load_config(cfg_file, &cfg, dir, sizeof dir, why), out);
    LUNA_TRY(configure(c, opts, cfg, cfg != NULL ? dir : NULL, why), out);
    LUNA_TRY(sdk_http_share_new(c), out);
    *out = c;
    c = NULL;
out:
    if (err != LUNA_OK && why != NULL && why[0] == 0)
        sdk_why(why, "%s", luna_strerror(err));
    json_decref(cfg);
    luna_client_free(c);
    return err;
}

luna_client *luna_client_new(const luna_client_opts *opts)
{
    luna_client *c = NULL;

    if (luna_client_create(opts, &c, NULL) != LUNA_OK)
        return NULL;
    return c;
}

void luna_client_free(luna_client *c)
{
    if (c == NULL)
        return;
    sdk_http_share_free(c);
    luna_secret_free(c->api_key);
    luna_secret_free(c->client_sk);
    X509_free(c->sim_root);
    free(c->sim_tcb);
    free(c->ca_file);
    sdk_audit_free(c);
    for (size_t i = 0; i < c->n_pins; i++)
        free(c->pins[i].manifest);
    sdk_tokens_clear(c);
    pthread_mutex_destroy(&c->lock);
    for (size_t i = 0; i < sizeof c->share_locks / sizeof c->share_locks[0]; i++)
        pthread_mutex_destroy(&c->share_locks[i]);
    luna_wipe(c, sizeof *c);
    free(c);
}

const char *luna_client_tenant(const luna_client *c)
{
    return c != NULL ? c->tenant : "";
}

const char *luna_client_gateway(const luna_client *c)
{
    return c != NULL ? c->gateway : "";
}

void luna_client_public_key(const luna_client *c, char out[65])
{
    if (c == NULL || luna_hex_encode(c->client_pk, SDK_KEY_LEN, out, 65) != LUNA_OK)
        out[0] = 0;
}
