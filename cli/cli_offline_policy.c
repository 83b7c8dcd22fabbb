/*
 * cli_offline_policy.c - the JSON policy file of the offline `lunal
 * attestation verify --evidence` and the --accept-tcb list: reference
 * values (mr_enclave, mr_signer, report_data, min_tcb_level), the
 * relaxations a file may name, extra trust anchors and pinned TPM AKs.
 *
 * Strict schema through luna/json.h: an unknown field, a wrong type or a
 * value out of bounds refuses the whole file; a relaxation never comes
 * from a file silently (it is recorded so the output names it).  New
 * expectations (e.g. per-format fields) are one schema line plus one
 * reader block here, and one check in core/src/verifier_offline.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_offline.h"
#include "luna/bytes.h"
#include "luna/json.h"

/* Intel's names first, then the report's snake_case names. */
static const struct {
    const char *intel;
    const char *snake;
    luna_tcb_status status;
} tcb_names[] = {
    {"UpToDate", "up_to_date", LUNA_TCB_UP_TO_DATE},
    {"SWHardeningNeeded", "sw_hardening_needed", LUNA_TCB_SW_HARDENING_NEEDED},
    {"ConfigurationNeeded", "configuration_needed", LUNA_TCB_CONFIGURATION_NEEDED},
    {"OutOfDate", "out_of_date", LUNA_TCB_OUT_OF_DATE},
};

static bool tcb_by_name(const char *s, size_t n, luna_tcb_status *out)
{
    for (size_t i = 0; i < sizeof(tcb_names) / sizeof(tcb_names[0]); i++) {
        if ((strlen(tcb_names[i].intel) == n && memcmp(s, tcb_names[i].intel, n) == 0) ||
            (strlen(tcb_names[i].snake) == n && memcmp(s, tcb_names[i].snake, n) == 0)) {
            *out = tcb_names[i].status;
            return true;
        }
    }
    return false;
}

int cli_offline_accept_tcb(const char *list, unsigned *bits)
{
    const char *p = list;

    if (list == NULL || *list == '\0')
        return cli_usage_error("--accept-tcb: give a comma-separated list of TCB statuses");
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        luna_tcb_status st;
        if (n == 0 || !tcb_by_name(p, n, &st))
            return cli_usage_error("--accept-tcb: unknown TCB status (use UpToDate, "
                                   "SWHardeningNeeded, ConfigurationNeeded, OutOfDate; "
                                   "Revoked is never accepted)");
        if (st != LUNA_TCB_UP_TO_DATE)
            *bits |= 1u << st;
        if (comma == NULL)
            return CLI_OK;
        p = comma + 1;
    }
}

/* ---- the file ---- */

static const luna_json_field hex_ref = {.name = "item", .type = LUNA_JSON_T_HEX, .min_len = 16, .max_len = 64};
static const luna_json_field hex_sha256 = {.name = "item", .type = LUNA_JSON_T_HEX, .min_len = 32, .max_len = 32};
static const char *const tcb_all_names[] = {"UpToDate", "SWHardeningNeeded",
                                            "ConfigurationNeeded", "OutOfDate", "up_to_date",
                                            "sw_hardening_needed", "configuration_needed",
                                            "out_of_date", NULL};
static const luna_json_field tcb_item = {.name = "item", .type = LUNA_JSON_T_STRING, .min_len = 1,
                                         .max_len = 24, .one_of = tcb_all_names};

/* Hardware expectations (docs/evidence-hardware.md): an object, when
   present, must name every rule; "any" says a rule is not compared. */
static const char *const bit_rules[] = {"required", "forbidden", "any", NULL};
static const char *const vmpl_values[] = {"0", "1", "2", "3", "any", NULL};
#define HW_RULE(n) {.name = n, .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, \
                    .min_len = 3, .max_len = 9, .one_of = bit_rules}
#define HW_HEX(n, bytes) {.name = n, .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, \
                          .min_len = 3, .max_len = 2 * (bytes), .pattern = LUNA_JSON_PAT_IDENT}
static const luna_json_field snp_fields[] = {
    HW_RULE("smt"), HW_RULE("migrate_ma"), HW_RULE("single_socket"),
    {.name = "vmpl", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = 3, .one_of = vmpl_values},
    HW_HEX("report_data", 64), HW_HEX("host_data", 32),
    /* "any" or "BL.TEE.SNP.UCODE", decimal SVNs */
    {.name = "min_tcb", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 3,
     .max_len = 15, .pattern = LUNA_JSON_PAT_IDENT},
};
static const luna_json_schema snp_schema = {snp_fields, sizeof(snp_fields) / sizeof(snp_fields[0]),
                                            NULL};
static const luna_json_field tdx_fields[] = {
    HW_HEX("rtmr0", 48), HW_HEX("rtmr1", 48), HW_HEX("rtmr2", 48), HW_HEX("rtmr3", 48),
    HW_HEX("mrconfigid", 48), HW_HEX("mrownerconfig", 48), HW_HEX("report_data", 64),
};
static const luna_json_schema tdx_schema = {tdx_fields, sizeof(tdx_fields) / sizeof(tdx_fields[0]),
                                            NULL};
static const luna_json_field sgx_fields[] = {
    /* "any" or a decimal 0..65535 */
    {.name = "isvprodid", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = 5, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "min_isvsvn", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = 5, .pattern = LUNA_JSON_PAT_IDENT},
    HW_HEX("report_data", 64),
};
static const luna_json_schema sgx_schema = {sgx_fields, sizeof(sgx_fields) / sizeof(sgx_fields[0]),
                                            NULL};

static const luna_json_field policy_fields[] = {
    {.name = "version", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 1, .max = 1},
    {.name = "mr_enclave", .type = LUNA_JSON_T_ARRAY, .min_len = 1,
     .max_len = LUNA_POLICY_MAX_REFS, .items = &hex_ref},
    {.name = "mr_signer", .type = LUNA_JSON_T_ARRAY, .min_len = 1,
     .max_len = LUNA_POLICY_MAX_SIGNERS, .items = &hex_ref},
    {.name = "report_data", .type = LUNA_JSON_T_HEX, .min_len = 1,
     .max_len = LUNA_CLAIM_REPORT_DATA_LEN},
    {.name = "min_tcb_level", .type = LUNA_JSON_T_INT, .min = 0, .max = UINT32_MAX},
    {.name = "allow_debug", .type = LUNA_JSON_T_BOOL},
    {.name = "revocation_optional", .type = LUNA_JSON_T_BOOL},
    {.name = "accept_tcb", .type = LUNA_JSON_T_ARRAY, .min_len = 1, .max_len = 8,
     .items = &tcb_item},
    {.name = "trust_anchors_sha256", .type = LUNA_JSON_T_ARRAY, .min_len = 1,
     .max_len = CLI_OFFLINE_MAX_PINS, .items = &hex_sha256},
    {.name = "tpm_ak_sha256", .type = LUNA_JSON_T_ARRAY, .min_len = 1,
     .max_len = CLI_OFFLINE_MAX_PINS, .items = &hex_sha256},
    {.name = "sev_snp", .type = LUNA_JSON_T_OBJECT, .object = &snp_schema},
    {.name = "tdx", .type = LUNA_JSON_T_OBJECT, .object = &tdx_schema},
    {.name = "sgx", .type = LUNA_JSON_T_OBJECT, .object = &sgx_schema},
};
static const luna_json_schema policy_schema = {
    policy_fields, sizeof(policy_fields) / sizeof(policy_fields[0]), NULL};

static int fail(const char *path, const char *why)
{
    return cli_usage_error("policy %s: %s", path, why);
}

/* Decodes every hex item of an (already validated) array into rows. */
static int hex_rows(const json_t *root, const char *name, uint8_t *rows, size_t row_cap,
                    size_t *lens, size_t max_rows, size_t *n_out)
{
    const json_t *arr = NULL;
    size_t count = 0;

    *n_out = 0;
    luna_err e = luna_json_get_array(root, name, &arr, &count);
    if (e == LUNA_ERR_NOT_FOUND)
        return CLI_OK;
    if (e != LUNA_OK || count > max_rows)
        return CLI_USAGE;
    for (size_t i = 0; i < count; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        size_t got = 0;
        if (s == NULL ||
            luna_hex_decode(s, strlen(s), rows + i * row_cap, row_cap, &got) != LUNA_OK)
            return CLI_USAGE;
        if (lens != NULL)
            lens[i] = got;
        else if (got != row_cap)
            return CLI_USAGE;
    }
    *n_out = count;
    return CLI_OK;
}

/* ---- hardware expectations (schema-checked already) ---- */

static bool is_any(const char *s)
{
    return strcmp(s, "any") == 0;
}

/* "any", or exactly n bytes of hex. */
static bool hw_bytes(const json_t *o, const char *name, luna_expect *mode, uint8_t *val, size_t n)
{
    const char *s = NULL;
    size_t got = 0;
    if (luna_json_get_string(o, name, &s, NULL) != LUNA_OK)
        return false;
    if (is_any(s)) {
        *mode = LUNA_EXPECT_ANY;
        return true;
    }
    if (strlen(s) != 2 * n || luna_hex_decode(s, 2 * n, val, n, &got) != LUNA_OK || got != n)
        return false;
    *mode = LUNA_EXPECT_EXACT;
    return true;
}

static bool hw_bit(const json_t *o, const char *name, luna_bit_rule *out)
{
    const char *s = NULL;
    if (luna_json_get_string(o, name, &s, NULL) != LUNA_OK)
        return false;
    *out = is_any(s) ? LUNA_BIT_ANY
           : strcmp(s, "required") == 0 ? LUNA_BIT_REQUIRED
                                        : LUNA_BIT_FORBIDDEN;
    return true;
}

/* A decimal in 0..max without sign or leading zeros. */
static bool hw_uint(const char *s, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;
    size_t n = strlen(s);
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

/* "any" or a decimal 0..max. */
static bool hw_num(const json_t *o, const char *name, unsigned long max, luna_expect *mode,
                   unsigned long *out)
{
    const char *s = NULL;
    if (luna_json_get_string(o, name, &s, NULL) != LUNA_OK)
        return false;
    if (is_any(s)) {
        *mode = LUNA_EXPECT_ANY;
        return true;
    }
    *mode = LUNA_EXPECT_EXACT;
    return hw_uint(s, max, out);
}

static bool hw_snp(const json_t *o, luna_snp_expect *e)
{
    const char *s = NULL;
    unsigned long v = 0;
    if (!hw_bit(o, "smt", &e->smt) || !hw_bit(o, "migrate_ma", &e->migrate_ma) ||
        !hw_bit(o, "single_socket", &e->single_socket) ||
        !hw_num(o, "vmpl", 3, &e->vmpl_mode, &v) ||
        !hw_bytes(o, "report_data", &e->report_data.mode, e->report_data.value, 64) ||
        !hw_bytes(o, "host_data", &e->host_data.mode, e->host_data.value, 32) ||
        luna_json_get_string(o, "min_tcb", &s, NULL) != LUNA_OK)
        return false;
    e->vmpl = (uint32_t)v;
    if (is_any(s)) {
        e->min_tcb_mode = LUNA_EXPECT_ANY;
        return true;
    }
    /* BL.TEE.SNP.UCODE */
    char buf[16];
    unsigned long c[4];
    size_t n = strlen(s), k = 0;
    if (n >= sizeof(buf))
        return false;
    memcpy(buf, s, n + 1);
    char *tok = buf;
    for (;;) {
        char *dot = strchr(tok, '.');
        if (dot != NULL)
            *dot = '\0';
        if (k >= 4 || !hw_uint(tok, 255, &c[k]))
            return false;
        k++;
        if (dot == NULL)
            break;
        tok = dot + 1;
    }
    if (k != 4)
        return false;
    e->min_tcb_mode = LUNA_EXPECT_EXACT;
    e->min_tcb = (luna_snp_tcb){.bootloader = (uint8_t)c[0], .tee = (uint8_t)c[1],
                                .snp = (uint8_t)c[2], .microcode = (uint8_t)c[3]};
    return true;
}

static bool hw_tdx(const json_t *o, luna_tdx_expect *e)
{
    static const char *const rtmr[4] = {"rtmr0", "rtmr1", "rtmr2", "rtmr3"};
    for (size_t i = 0; i < 4; i++)
        if (!hw_bytes(o, rtmr[i], &e->rtmr[i].mode, e->rtmr[i].value, 48))
            return false;
    return hw_bytes(o, "mrconfigid", &e->mrconfigid.mode, e->mrconfigid.value, 48) &&
           hw_bytes(o, "mrownerconfig", &e->mrownerconfig.mode, e->mrownerconfig.value, 48) &&
           hw_bytes(o, "report_data", &e->report_data.mode, e->report_data.value, 64);
}

static bool hw_sgx(const json_t *o, luna_sgx_expect *e)
{
    unsigned long prod = 0, svn = 0;
    if (!hw_num(o, "isvprodid", 65535, &e->isvprodid_mode, &prod) ||
        !hw_num(o, "min_isvsvn", 65535, &e->min_isvsvn_mode, &svn) ||
        !hw_bytes(o, "report_data", &e->report_data.mode, e->report_data.value, 64))
        return false;
    e->isvprodid = (uint16_t)prod;
    e->min_isvsvn = (uint16_t)svn;
    return true;
}

static int read_policy_file(const char *path, char **out, size_t *len)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    char *buf;
    size_t got = 0;

    if (fd < 0)
        return cli_usage_error("policy %s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        (unsigned long long)st.st_size > CLI_OFFLINE_POLICY_MAX) {
        close(fd);
        return fail(path, "not a regular file of 1 byte to 64 KiB");
    }
    buf = malloc((size_t)st.st_size);
    if (buf == NULL) {
        close(fd);
        return fail(path, "out of memory");
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != (size_t)st.st_size) {
        free(buf);
        return fail(path, "short read");
    }
    *out = buf;
    *len = got;
    return CLI_OK;
}

int cli_offline_policy_load(const char *path, cli_offline_policy *p)
{
    char *text = NULL;
    size_t len = 0;
    json_t *root = NULL;
    luna_json_error je;
    const luna_json_limits lim = {.max_bytes = CLI_OFFLINE_POLICY_MAX, .max_depth = 4};
    int rc = read_policy_file(path, &text, &len);
    bool b = false;
    int64_t v = 0;
    size_t n = 0;
    uint8_t rd[LUNA_CLAIM_REPORT_DATA_LEN];

    if (rc != CLI_OK)
        return rc;
    if (luna_json_parse(text, len, &policy_schema, &lim, &root, &je) != LUNA_OK) {
        free(text);
        return cli_usage_error("policy %s: %s%s%s", path, je.path, je.path[0] ? ": " : "",
                               je.message);
    }
    free(text);
    rc = CLI_USAGE;

    if (hex_rows(root, "mr_enclave", &p->core.mr_enclave[0][0], LUNA_CLAIM_MEASUREMENT_MAX,
                 p->core.mr_enclave_len, LUNA_POLICY_MAX_REFS, &p->core.n_mr_enclave) != CLI_OK ||
        hex_rows(root, "mr_signer", &p->core.mr_signer[0][0], LUNA_CLAIM_SIGNER_MAX,
                 p->core.mr_signer_len, LUNA_POLICY_MAX_SIGNERS, &p->core.n_mr_signer) != CLI_OK ||
        hex_rows(root, "trust_anchors_sha256", &p->anchors[0][0], 32, NULL, CLI_OFFLINE_MAX_PINS,
                 &p->n_anchors) != CLI_OK ||
        hex_rows(root, "tpm_ak_sha256", &p->tpm_aks[0][0], 32, NULL, CLI_OFFLINE_MAX_PINS,
                 &p->n_tpm_aks) != CLI_OK) {
        (void)fail(path, "a hex list could not be read");
        goto out;
    }
    memset(rd, 0, sizeof(rd));
    luna_err e = luna_json_get_hex(root, "report_data", rd, sizeof(rd), &n);
    if (e == LUNA_OK) {
        /* Shorter expectations are compared zero-padded, as claims are. */
        memcpy(p->core.report_data, rd, sizeof(rd));
        p->core.has_report_data = true;
    } else if (e != LUNA_ERR_NOT_FOUND) {
        (void)fail(path, "report_data could not be read");
        goto out;
    }
    if (luna_json_get_int(root, "min_tcb_level", &v) == LUNA_OK) {
        p->core.has_min_tcb = true;
        p->core.min_tcb_level = (uint32_t)v;
    }
    if (luna_json_get_bool(root, "allow_debug", &b) == LUNA_OK && b) {
        p->core.allow_debug = true;
        if (p->debug_src == CLI_RELAX_NONE)
            p->debug_src = CLI_RELAX_POLICY;
    }
    if (luna_json_get_bool(root, "revocation_optional", &b) == LUNA_OK && b) {
        p->core.revocation_optional = true;
        if (p->revocation_src == CLI_RELAX_NONE)
            p->revocation_src = CLI_RELAX_POLICY;
    }
    const json_t *arr = NULL;
    size_t count = 0;
    if (luna_json_get_array(root, "accept_tcb", &arr, &count) == LUNA_OK) {
        for (size_t i = 0; i < count; i++) {
            const char *s = json_string_value(json_array_get(arr, i));
            luna_tcb_status st;
            if (s == NULL || !tcb_by_name(s, strlen(s), &st)) {
                (void)fail(path, "accept_tcb names an unknown status");
                goto out;
            }
            if (st != LUNA_TCB_UP_TO_DATE) {
                p->core.accept_tcb |= 1u << st;
                if (p->accept_src == CLI_RELAX_NONE)
                    p->accept_src = CLI_RELAX_POLICY;
            }
        }
    }
    const json_t *hw = NULL;
    if (luna_json_get_object(root, "sev_snp", &hw) == LUNA_OK) {
        if (!hw_snp(hw, &p->core.snp)) {
            (void)fail(path, "sev_snp: a rule is not \"any\" or a valid value");
            goto out;
        }
        p->core.has_snp = true;
    }
    if (luna_json_get_object(root, "tdx", &hw) == LUNA_OK) {
        if (!hw_tdx(hw, &p->core.tdx)) {
            (void)fail(path, "tdx: a register is not \"any\" or 48 (report_data 64) hex bytes");
            goto out;
        }
        p->core.has_tdx = true;
    }
    if (luna_json_get_object(root, "sgx", &hw) == LUNA_OK) {
        if (!hw_sgx(hw, &p->core.sgx)) {
            (void)fail(path, "sgx: a rule is not \"any\" or a valid value");
            goto out;
        }
        p->core.has_sgx = true;
    }
    rc = CLI_OK;
out:
    json_decref(root);
    return rc;
}
