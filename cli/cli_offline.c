/*
 * cli_offline.c - `lunal attestation verify --evidence FILE --type T`:
 * offline verification of hardware evidence (SEV-SNP, TDX, SGX, Nitro,
 * TPM) against a folder of collateral recognized by content, at an
 * explicit time, under a strict default policy whose every relaxation is
 * named in the output.  Exit 0 verified, 1 refused, 2 usage or input
 * error.  docs/cli.md ("Offline verification").
 *
 * Must never open a network connection, never trust a root that is not
 * pinned (compiled in below, or by SHA-256 in the --policy file), never
 * trust a file name for what a file is, and never print simulated or
 * hardware wording for evidence that did not verify.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "cli_offline.h"
#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/evidence_hw.h"

#define GREEN "\033[32m"
#define RED "\033[31m"
#define BOLD "\033[1m"
#define RESET "\033[0m"

#define MAX_ITEMS 48u /* distinct items kept from a folder (bundle cap applies after) */

static const char offline_help[] =
    "usage: lunal attestation verify --evidence FILE --type sev-snp|tdx|sgx|nitro|tpm\n"
    "         [--collateral DIR] [--at TIME] [--policy FILE] [--allow-debug]\n"
    "         [--accept-tcb STATUS,...] [--revocation-optional] [--json]\n"
    "\n"
    "Verifies hardware evidence offline (no network): signature, certificate chain\n"
    "to a pinned vendor root, collateral, revocation (CRLs), TCB status, QE identity,\n"
    "debug, and the reference values of --policy.  DIR holds certificates (PEM or\n"
    "DER), CRLs, Intel TCB Info and QE Identity JSON, recognized by content.\n"
    "TIME is RFC 3339 (2024-01-31T12:00:00Z) or Unix seconds; default now.\n"
    "Strict by default: debug refused, only UpToDate TCB, CRLs required; each\n"
    "relaxation relaxes that check only and is named in the output.\n"
    "TPM: --evidence X.attest.bin reads X.sig.bin and X.pcrs.json beside it.\n"
    "Exit status: 0 verified, 1 refused, 2 usage or input error.\n";

/* ---- pinned vendor roots (SHA-256 of the DER certificate) ---- */

typedef struct pinned_root {
    luna_evidence_type type;
    const char *name;
    const char *sha256;
} pinned_root;

static const pinned_root pinned_roots[] = {
    {LUNA_EVIDENCE_SEV_SNP, "AMD ARK-Milan",
     "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd"},
    {LUNA_EVIDENCE_SEV_SNP, "AMD ARK-Genoa",
     "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1"},
    {LUNA_EVIDENCE_TDX, "Intel SGX Root CA",
     "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"},
    {LUNA_EVIDENCE_SGX, "Intel SGX Root CA",
     "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"},
    {LUNA_EVIDENCE_NITRO, "AWS Nitro Enclaves Root G1",
     "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"},
    {LUNA_EVIDENCE_TPM, "Google vTPM EK Root 1",
     "9bd5285f8fb18502a7947e621ffd470266f49fcd3b73e19a190f690ad32a7caf"},
};

static const struct {
    const char *name;
    luna_evidence_type type;
    const char *words;
} types[] = {
    {"sev-snp", LUNA_EVIDENCE_SEV_SNP, "AMD SEV-SNP attestation report"},
    {"tdx", LUNA_EVIDENCE_TDX, "Intel TDX quote"},
    {"sgx", LUNA_EVIDENCE_SGX, "Intel SGX DCAP quote"},
    {"nitro", LUNA_EVIDENCE_NITRO, "AWS Nitro Enclaves attestation document"},
    {"tpm", LUNA_EVIDENCE_TPM, "TPM 2.0 quote"},
};

/* ---- options ---- */

typedef struct opts {
    const char *evidence;
    const char *type_name;
    luna_evidence_type type;
    const char *type_words;
    const char *collateral;
    const char *at;
    const char *policy_file;
    const char *accept_arg;
    bool json;
    int64_t now;
    cli_offline_policy pol;
} opts;

/* ---- collateral gathered from the folder ---- */

typedef struct item {
    luna_colfile_kind kind;
    uint8_t *data;
    size_t len;
    char file[64]; /* the file it came from, for messages (truncated) */
} item;

typedef struct gathered {
    item items[MAX_ITEMS];
    size_t n;
    size_t total; /* bytes read from the folder */
    const char *current;
    char dup_kind[16];
} gathered;

static void gathered_free(gathered *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->items[i].data);
    g->n = 0;
}

static luna_err keep_item(void *arg, luna_colfile_kind kind, const uint8_t *der, size_t len)
{
    gathered *g = arg;

    for (size_t i = 0; i < g->n; i++) {
        if (g->items[i].kind != kind)
            continue;
        if (g->items[i].len == len && memcmp(g->items[i].data, der, len) == 0)
            return LUNA_OK; /* the same certificate in several chain files */
        /* Two different Intel documents of a kind: which applies is the
           user's choice, not a guess of ours. */
        if (kind == LUNA_COLFILE_TCB_INFO || kind == LUNA_COLFILE_QE_IDENTITY) {
            snprintf(g->dup_kind, sizeof g->dup_kind, "%s", luna_colfile_kind_name(kind));
            return LUNA_ERR_CONFLICT;
        }
    }
    if (g->n >= MAX_ITEMS)
        return LUNA_ERR_TOO_LARGE;
    uint8_t *copy = malloc(len);
    if (copy == NULL)
        return LUNA_ERR_NOMEM;
    memcpy(copy, der, len);
    g->items[g->n] = (item){.kind = kind, .data = copy, .len = len};
    snprintf(g->items[g->n].file, sizeof g->items[g->n].file, "%s", g->current);
    g->n++;
    return LUNA_OK;
}

/* Reads a regular file of at most cap bytes.  CLI_OK or CLI_USAGE (printed). */
static int read_capped(int dirfd, const char *path, size_t cap, uint8_t **out, size_t *len)
{
    struct stat st;
    /* O_NONBLOCK: a FIFO planted in the folder must not hang the command;
       it is then refused as not a regular file. */
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    uint8_t *buf;
    size_t got = 0;

    if (fd < 0)
        return cli_usage_error("%s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return cli_usage_error("%s: not a regular file", path);
    }
    if (st.st_size <= 0 || (unsigned long long)st.st_size > cap) {
        close(fd);
        return cli_usage_error("%s: empty or over the %zu-byte cap", path, cap);
    }
    buf = malloc((size_t)st.st_size);
    if (buf == NULL) {
        close(fd);
        return cli_usage_error("%s: out of memory", path);
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
        return cli_usage_error("%s: short read", path);
    }
    *out = buf;
    *len = got;
    return CLI_OK;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of dir (names starting with '.' are skipped). */
static int scan_folder(const char *dir, gathered *g)
{
    DIR *d = opendir(dir);
    char *names[LUNA_COLDIR_MAX_FILES];
    size_t n = 0;
    int rc = CLI_OK;
    struct dirent *e;

    if (d == NULL)
        return cli_usage_error("--collateral %s: %s", dir, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n >= LUNA_COLDIR_MAX_FILES) {
            rc = cli_usage_error("--collateral %s: more than %u files", dir,
                                 LUNA_COLDIR_MAX_FILES);
            break;
        }
        names[n] = strdup(e->d_name);
        if (names[n] == NULL) {
            rc = cli_usage_error("out of memory");
            break;
        }
        n++;
    }
    qsort(names, n, sizeof names[0], cmp_names);
    for (size_t i = 0; i < n && rc == CLI_OK; i++) {
        uint8_t *data = NULL;
        size_t len = 0;
        const char *why = NULL;
        rc = read_capped(dirfd(d), names[i], LUNA_COLFILE_MAX, &data, &len);
        if (rc != CLI_OK)
            break;
        g->total += len;
        if (g->total > LUNA_COLDIR_MAX) {
            free(data);
            rc = cli_usage_error("--collateral %s: over the %u-byte folder cap", dir,
                                 LUNA_COLDIR_MAX);
            break;
        }
        g->current = names[i];
        luna_err err = luna_colfile_detect(data, len, keep_item, g, &why);
        free(data);
        if (err == LUNA_ERR_CONFLICT)
            rc = cli_usage_error("collateral %s/%s: a second, different %s: keep only the one "
                                 "for this evidence",
                                 dir, names[i], g->dup_kind);
        else if (err == LUNA_ERR_TOO_LARGE && why != NULL && g->n >= MAX_ITEMS)
            rc = cli_usage_error("--collateral %s: more than %u items", dir, MAX_ITEMS);
        else if (err != LUNA_OK)
            rc = cli_usage_error("collateral %s/%s: unrecognized file: %s", dir, names[i], why);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    closedir(d);
    return rc;
}

/* ---- anchors, AK pins and the bundle ---- */

static bool sha256_hex_equal(const uint8_t *data, size_t len, const char *hex)
{
    uint8_t h[32], want[32];
    size_t n = 0;
    return luna_sha256(data, len, h) == LUNA_OK &&
           luna_hex_decode(hex, strlen(hex), want, sizeof want, &n) == LUNA_OK && n == 32 &&
           memcmp(h, want, 32) == 0;
}

static bool sha256_in(const uint8_t *data, size_t len, const uint8_t (*pins)[32], size_t n)
{
    uint8_t h[32];
    if (luna_sha256(data, len, h) != LUNA_OK)
        return false;
    for (size_t i = 0; i < n; i++)
        if (memcmp(h, pins[i], 32) == 0)
            return true;
    return false;
}

static const char *pinned_name(const opts *o, const item *it)
{
    for (size_t i = 0; i < sizeof(pinned_roots) / sizeof(pinned_roots[0]); i++)
        if (pinned_roots[i].type == o->type &&
            sha256_hex_equal(it->data, it->len, pinned_roots[i].sha256))
            return pinned_roots[i].name;
    if (sha256_in(it->data, it->len, (const uint8_t(*)[32])o->pol.anchors, o->pol.n_anchors))
        return "policy trust anchor";
    return NULL;
}

typedef struct prepared {
    X509 *anchors[LUNA_POLICY_MAX_ANCHORS];
    size_t n_anchors;
    const char *anchor_names[LUNA_POLICY_MAX_ANCHORS];
    EVP_PKEY *ak;
    luna_wbuf bundle;
    bool has_bundle;
} prepared;

static void prepared_free(prepared *p)
{
    for (size_t i = 0; i < p->n_anchors; i++)
        X509_free(p->anchors[i]);
    EVP_PKEY_free(p->ak);
    if (p->has_bundle)
        luna_wbuf_free(&p->bundle);
}

static luna_hwcol_kind bundle_kind(luna_colfile_kind k)
{
    switch (k) {
    case LUNA_COLFILE_CERT: return LUNA_HWCOL_CERT;
    case LUNA_COLFILE_CRL: return LUNA_HWCOL_CRL;
    case LUNA_COLFILE_TCB_INFO: return LUNA_HWCOL_TCB_INFO;
    case LUNA_COLFILE_QE_IDENTITY: return LUNA_HWCOL_QE_IDENTITY;
    case LUNA_COLFILE_PUBKEY: break;
    }
    return (luna_hwcol_kind)0;
}

static int prepare(const opts *o, const gathered *g, prepared *p)
{
    size_t in_bundle = 0;

    memset(p, 0, sizeof *p);
    for (size_t i = 0; i < g->n; i++) {
        const item *it = &g->items[i];
        const unsigned char *q = it->data;
        const char *root = it->kind == LUNA_COLFILE_CERT ? pinned_name(o, it) : NULL;
        if (root != NULL) {
            if (p->n_anchors >= LUNA_POLICY_MAX_ANCHORS)
                return cli_usage_error("collateral: more than %d pinned roots",
                                       LUNA_POLICY_MAX_ANCHORS);
            X509 *x = d2i_X509(NULL, &q, (long)it->len);
            if (x == NULL)
                return cli_usage_error("collateral %s: unreadable certificate", it->file);
            p->anchor_names[p->n_anchors] = root;
            p->anchors[p->n_anchors++] = x;
            continue;
        }
        if (it->kind == LUNA_COLFILE_PUBKEY) {
            /* An AK public key counts only when the policy pins it. */
            if (o->type == LUNA_EVIDENCE_TPM && p->ak == NULL &&
                sha256_in(it->data, it->len, (const uint8_t(*)[32])o->pol.tpm_aks,
                          o->pol.n_tpm_aks)) {
                p->ak = d2i_PUBKEY(NULL, &q, (long)it->len);
                if (p->ak == NULL)
                    return cli_usage_error("collateral %s: unreadable public key", it->file);
            } else if (o->type == LUNA_EVIDENCE_TPM && p->ak == NULL) {
                fprintf(stderr, "lunal: note: collateral %s: a public key is trusted only when "
                                "the --policy file pins it (tpm_ak_sha256)\n",
                        it->file);
            }
            continue;
        }
        if (!p->has_bundle) {
            if (luna_wbuf_init_alloc(&p->bundle, LUNA_HWCOL_MAX) != LUNA_OK ||
                luna_hwcol_begin(&p->bundle) != LUNA_OK)
                return cli_usage_error("out of memory");
            p->has_bundle = true;
        }
        if (++in_bundle > LUNA_HWCOL_MAX_ITEMS ||
            luna_hwcol_add(&p->bundle, bundle_kind(it->kind), it->data, it->len) != LUNA_OK)
            return cli_usage_error("collateral: more than %d items or %u bytes for the bundle",
                                   LUNA_HWCOL_MAX_ITEMS, LUNA_HWCOL_MAX);
    }
    return CLI_OK;
}

/* ---- evidence ---- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && strcmp(s + n - m, suffix) == 0;
}

/* TPM: an LTQ1 container as is, or X.attest.bin with X.sig.bin and
   X.pcrs.json beside it. */
static int tpm_evidence(const char *path, uint8_t *attest, size_t attest_len, uint8_t **out,
                        size_t *out_len)
{
    static const char suffix[] = ".attest.bin";
    uint8_t *sig = NULL, *pcrs = NULL;
    size_t sig_len = 0, pcrs_len = 0, base;
    char *side = NULL;
    const char *why = NULL;
    luna_wbuf w;
    int rc = CLI_USAGE;

    if (attest_len >= LUNA_HWCOL_MAGIC_LEN && memcmp(attest, LUNA_TPM_EVIDENCE_MAGIC, 4) == 0) {
        *out = attest;
        *out_len = attest_len;
        return CLI_OK;
    }
    if (!ends_with(path, suffix)) {
        free(attest);
        return cli_usage_error("--evidence %s: a TPM quote file must be named X.attest.bin "
                               "(X.sig.bin and X.pcrs.json beside it) or be an LTQ1 container",
                               path);
    }
    base = strlen(path) - strlen(suffix);
    side = malloc(base + sizeof(".pcrs.json"));
    if (side == NULL)
        goto out;
    memcpy(side, path, base);
    memcpy(side + base, ".sig.bin", sizeof(".sig.bin"));
    if (read_capped(AT_FDCWD, side, LUNA_TPM_SIG_MAX, &sig, &sig_len) != CLI_OK)
        goto out;
    memcpy(side + base, ".pcrs.json", sizeof(".pcrs.json"));
    if (read_capped(AT_FDCWD, side, 16u * 1024u, &pcrs, &pcrs_len) != CLI_OK)
        goto out;
    if (luna_wbuf_init_alloc(&w, LUNA_VERIFY_EVIDENCE_MAX) != LUNA_OK)
        goto out;
    if (luna_tpm_evidence_from_files(&w, attest, attest_len, sig, sig_len, pcrs, pcrs_len,
                                     &why) != LUNA_OK) {
        luna_wbuf_free(&w);
        (void)cli_usage_error("--evidence %s: %s", path, why);
        goto out;
    }
    *out = w.data; /* plain heap memory: the caller frees it */
    *out_len = w.len;
    rc = CLI_OK;
out:
    free(attest);
    free(sig);
    free(pcrs);
    free(side);
    return rc;
}

/* ---- time ---- */

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* RFC 3339 date-time (Z or +-HH:MM, optional fraction ignored) or Unix seconds. */
static bool parse_time(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 0;
    struct tm tm, back;

    if (n > 0 && n <= 12 && strspn(s, "0123456789") == n) {
        long long v = strtoll(s, NULL, 10);
        if (v <= 0)
            return false;
        *out = (int64_t)v;
        return true;
    }
    if (n < 20 || n > 40 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
        s[7] != '-' || !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &se))
        return false;
    size_t i = 19;
    if (s[i] == '.') {
        i++;
        size_t f = strspn(s + i, "0123456789");
        if (f == 0)
            return false;
        i += f;
    }
    if ((s[i] == 'Z' || s[i] == 'z') && s[i + 1] == '\0') {
        sign = 0;
    } else if ((s[i] == '+' || s[i] == '-') && strlen(s + i) == 6 &&
               digits(s + i + 1, 2, &oh) && s[i + 3] == ':' && digits(s + i + 4, 2, &om) &&
               oh < 24 && om < 60) {
        sign = s[i] == '+' ? 1 : -1;
    } else {
        return false;
    }
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return false;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se == 60 ? 59 : se; /* a leap second reads as the second before */
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || gmtime_r(&t, &back) == NULL || back.tm_mday != d ||
        back.tm_mon != mo - 1)
        return false; /* 31 April and the like */
    t -= (time_t)sign * (oh * 3600 + om * 60);
    if (t <= 0)
        return false;
    *out = (int64_t)t;
    return true;
}

/* RFC 3339 ("...T...Z") or the report's "YYYY-MM-DD HH:MM:SS UTC". */
static void fmt_time(int64_t t, bool rfc3339, char *out, size_t cap)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (gmtime_r(&tt, &tm) == NULL ||
        strftime(out, cap, rfc3339 ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(out, cap, "%lld", (long long)t);
}

/* ---- output ---- */

static const char *relax_src(cli_relax_src s, const char *flag)
{
    return s == CLI_RELAX_FLAG ? flag : "policy file";
}

static char *hex_of(const uint8_t *b, size_t n)
{
    char *s = malloc(2 * n + 1);
    if (s != NULL && luna_hex_encode(b, n, s, 2 * n + 1) != LUNA_OK)
        s[0] = '\0';
    return s;
}

static const char *tcb_snake_list(unsigned bits, char *out, size_t cap)
{
    size_t off = 0;
    out[0] = '\0';
    for (int s = LUNA_TCB_SW_HARDENING_NEEDED; s <= LUNA_TCB_OUT_OF_DATE; s++) {
        if ((bits & (1u << s)) == 0)
            continue;
        int w = snprintf(out + off, cap - off, "%s%s", off ? "," : "",
                         luna_tcb_status_name((luna_tcb_status)s));
        if (w < 0 || (size_t)w >= cap - off)
            break;
        off += (size_t)w;
    }
    return out;
}

static json_t *relaxations_json(const opts *o)
{
    json_t *a = json_array();
    char buf[128];
    if (a == NULL)
        return NULL;
    if (o->pol.core.allow_debug)
        json_array_append_new(a, json_pack("{s:s,s:s}", "name", "allow_debug", "source",
                                           relax_src(o->pol.debug_src, "--allow-debug")));
    if (o->pol.core.accept_tcb != 0)
        json_array_append_new(a, json_pack("{s:s,s:s,s:s}", "name", "accept_tcb", "statuses",
                                           tcb_snake_list(o->pol.core.accept_tcb, buf, sizeof buf),
                                           "source", relax_src(o->pol.accept_src, "--accept-tcb")));
    if (o->pol.core.revocation_optional)
        json_array_append_new(a, json_pack("{s:s,s:s}", "name", "revocation_optional", "source",
                                           relax_src(o->pol.revocation_src,
                                                     "--revocation-optional")));
    return a;
}

static int print_json(const opts *o, const luna_offline_result *r, const prepared *p)
{
    json_t *root = json_object(), *checks = json_object(), *reasons = json_array();
    char when[40];
    int rc = r->verified ? CLI_OK : CLI_FAILED;

    if (root == NULL || checks == NULL || reasons == NULL)
        goto oom;
    fmt_time(o->now, true, when, sizeof when);
    for (int c = 0; c < LUNA_OFFLINE_CHECK__COUNT; c++)
        json_object_set_new(checks, luna_offline_check_name((luna_offline_check)c),
                            json_string(luna_offline_state_name(r->checks[c])));
    for (size_t i = 0; i < r->n_failures; i++)
        json_array_append_new(
            reasons, json_pack("{s:s,s:s,s:s}", "code",
                               luna_verify_reason_name(r->failures[i].reason), "check",
                               luna_offline_check_name(r->failures[i].check), "message",
                               r->failures[i].message));
    json_object_set_new(root, "verdict", json_string(r->verified ? "verified" : "refused"));
    json_object_set_new(root, "reason", json_string(luna_verify_reason_name(r->reason)));
    json_object_set_new(root, "evidence_type", json_string(o->type_name));
    json_object_set_new(root, "verification_time", json_string(when));
    json_object_set_new(root, "checks", checks);
    json_object_set_new(root, "reasons", reasons);
    checks = reasons = NULL;
    json_object_set_new(root, "relaxations", relaxations_json(o));
    json_t *anchors = json_array();
    for (size_t i = 0; anchors != NULL && i < p->n_anchors; i++)
        json_array_append_new(anchors, json_string(p->anchor_names[i]));
    json_object_set_new(root, "trust_anchors", anchors);
    if (r->has_claims) {
        const luna_claims *c = &r->claims;
        char *m = hex_of(c->measurement, c->measurement_len);
        char *s = hex_of(c->signer, c->signer_len);
        char *rd = hex_of(c->report_data, sizeof c->report_data);
        char *ser = hex_of(c->platform_serial, c->platform_serial_len);
        json_t *cl = json_pack("{s:s,s:s,s:s,s:b,s:s,s:I,s:s,s:b,s:s,s:I}", "mr_enclave",
                               m ? m : "", "mr_signer", s ? s : "", "report_data", rd ? rd : "",
                               "debug", c->debug, "tcb_status",
                               luna_tcb_status_name(c->tcb_status), "tcb_level",
                               (json_int_t)c->tcb_level, "qe_identity_status",
                               luna_qe_status_name(c->qe_status), "revocation_checked",
                               c->revocation_checked, "platform_serial", ser ? ser : "",
                               "version", (json_int_t)c->version);
        if (cl != NULL && o->type == LUNA_EVIDENCE_TPM)
            json_object_set_new(cl, "ak_pinned", json_boolean(r->ak_pinned));
        json_object_set_new(root, "claims", cl);
        free(m);
        free(s);
        free(rd);
        free(ser);
    }
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    if (text == NULL)
        return CLI_USAGE;
    puts(text);
    free(text);
    return rc;
oom:
    json_decref(root);
    json_decref(checks);
    json_decref(reasons);
    return CLI_USAGE;
}

static const char *mark(luna_offline_state s, bool color)
{
    if (s == LUNA_OFFLINE_PASS)
        return color ? " " GREEN "✓" RESET : " ✓";
    if (s == LUNA_OFFLINE_FAIL)
        return color ? " " RED "✗" RESET : " ✗";
    return "";
}

/* One line per check: a word, then why it is not a plain pass. */
static void check_line(FILE *out, const char *label, luna_offline_state s, const char *pass,
                       const char *relaxed, const char *failed, bool color)
{
    const char *w;
    switch (s) {
    case LUNA_OFFLINE_PASS: w = pass; break;
    case LUNA_OFFLINE_FAIL: w = failed; break;
    case LUNA_OFFLINE_NOT_APPLICABLE: w = "Not applicable"; break;
    case LUNA_OFFLINE_RELAXED: w = relaxed; break;
    case LUNA_OFFLINE_NOT_CHECKED: w = "Not checked (no expectation given)"; break;
    case LUNA_OFFLINE_SKIPPED:
    default: w = "Not evaluated (an earlier check failed)"; break;
    }
    fprintf(out, "%s: %s%s\n", label, w, mark(s, color));
}

static void print_human(FILE *out, const opts *o, const luna_offline_result *r,
                        const prepared *p, bool color)
{
    const luna_claims *c = &r->claims;
    const luna_offline_state *ck = r->checks;
    const char *file = strrchr(o->evidence, '/') != NULL ? strrchr(o->evidence, '/') + 1
                                                         : o->evidence;
    char when[40], buf[160], tcbs[96];

    if (r->verified)
        fprintf(out, "✅ Attestation verification complete for evidence: %s\n", file);
    else
        fprintf(out, "%s❌ Attestation verification FAILED for evidence: %s%s\n",
                color ? BOLD RED : "", file, color ? RESET : "");
    fprintf(out, "Evidence Type: %s (%s)\n", o->type_words, o->type_name);
    fmt_time(o->now, false, when, sizeof when);
    fprintf(out, "Verification Time: %s%s\n", when, o->at != NULL ? " (--at)" : "");
    if (!o->pol.core.allow_debug && o->pol.core.accept_tcb == 0 &&
        !o->pol.core.revocation_optional) {
        fprintf(out, "Policy: strict\n");
    } else {
        fprintf(out, "Policy: relaxed:");
        if (o->pol.core.allow_debug)
            fprintf(out, " allow debug (%s);", relax_src(o->pol.debug_src, "--allow-debug"));
        if (o->pol.core.accept_tcb != 0)
            fprintf(out, " accept TCB %s (%s);",
                    tcb_snake_list(o->pol.core.accept_tcb, tcbs, sizeof tcbs),
                    relax_src(o->pol.accept_src, "--accept-tcb"));
        if (o->pol.core.revocation_optional)
            fprintf(out, " revocation optional (%s);",
                    relax_src(o->pol.revocation_src, "--revocation-optional"));
        fputc('\n', out);
    }
    fprintf(out, "TEE Measurements:\n");
    if (r->has_claims) {
        char *m = hex_of(c->measurement, c->measurement_len);
        char *s = hex_of(c->signer, c->signer_len);
        char *rd = hex_of(c->report_data, sizeof c->report_data);
        const bool checked = ck[LUNA_OFFLINE_MEASUREMENT] != LUNA_OFFLINE_NOT_CHECKED;
        fprintf(out, "MR_ENCLAVE: %s%s%s\n", m ? m : "?", mark(ck[LUNA_OFFLINE_MEASUREMENT], color),
                checked ? "" : " (not checked: no --policy mr_enclave)");
        fprintf(out, "MR_SIGNER: %s\n", s ? s : "?");
        fprintf(out, "Report Data: %s\n", rd ? rd : "?");
        free(m);
        free(s);
        free(rd);
    } else {
        fprintf(out, "MR_ENCLAVE: unknown (evidence not authenticated)\n");
        fprintf(out, "MR_SIGNER: unknown\n");
    }
    check_line(out, "Evidence Signature", ck[LUNA_OFFLINE_SIGNATURE], "VALID", "VALID", "INVALID",
               color);
    if (r->ak_pinned) {
        fprintf(out, "Certificate Chain: Not applicable (attestation key pinned by policy)\n");
    } else if (ck[LUNA_OFFLINE_CERT_CHAIN] == LUNA_OFFLINE_PASS && p->n_anchors > 0) {
        snprintf(buf, sizeof buf, "VALID (root: %s)", p->anchor_names[0]);
        check_line(out, "Certificate Chain", ck[LUNA_OFFLINE_CERT_CHAIN], buf, buf, "INVALID", color);
    } else {
        check_line(out, "Certificate Chain", ck[LUNA_OFFLINE_CERT_CHAIN], "VALID", "VALID", "INVALID",
                   color);
    }
    check_line(out, "Collateral", ck[LUNA_OFFLINE_COLLATERAL], "VALID (TCB Info, QE Identity)",
               "VALID", "INVALID or missing", color);
    snprintf(buf, sizeof buf, "NOT CHECKED, no CRL (relaxed: %s)",
             relax_src(o->pol.revocation_src, "--revocation-optional"));
    check_line(out, "Revocation", ck[LUNA_OFFLINE_REVOCATION], "CHECKED (CRLs current)", buf,
               "FAILED (CRL missing, stale or revoking)", color);
    snprintf(buf, sizeof buf, "Yes (relaxed: %s)", relax_src(o->pol.debug_src, "--allow-debug"));
    check_line(out, "Debug", ck[LUNA_OFFLINE_DEBUG], "No", buf, "Yes (debug TEE)", color);
    if (r->verified)
        fprintf(out, "Platform Verification: SECURE%s\n", mark(LUNA_OFFLINE_PASS, color));
    else
        fprintf(out, "Platform Verification: FAILED%s\n", mark(LUNA_OFFLINE_FAIL, color));
    const char *tcb = r->has_claims ? cli_tcb_words(luna_tcb_status_name(c->tcb_status))
                                    : "Unknown";
    switch (ck[LUNA_OFFLINE_TCB_STATUS]) {
    case LUNA_OFFLINE_NOT_APPLICABLE:
        fprintf(out, "TCB Status: Not applicable (no TCB data in this format)\n");
        break;
    case LUNA_OFFLINE_RELAXED:
        fprintf(out, "TCB Status: %s (accepted: %s)\n", tcb,
                relax_src(o->pol.accept_src, "--accept-tcb"));
        break;
    case LUNA_OFFLINE_SKIPPED:
        fprintf(out, "TCB Status: Not evaluated (an earlier check failed)\n");
        break;
    default:
        fprintf(out, "TCB Status: %s%s\n", tcb,
                ck[LUNA_OFFLINE_TCB_STATUS] == LUNA_OFFLINE_FAIL ? mark(LUNA_OFFLINE_FAIL, color)
                                                                  : "");
        break;
    }
    if (ck[LUNA_OFFLINE_QE_IDENTITY] == LUNA_OFFLINE_SKIPPED)
        fprintf(out, "QE Identity: Not evaluated (an earlier check failed)\n");
    else
        fprintf(out, "QE Identity: %s%s\n",
                cli_qe_words(luna_qe_status_name(r->has_claims ? c->qe_status : LUNA_QE_UNKNOWN)),
                ck[LUNA_OFFLINE_QE_IDENTITY] == LUNA_OFFLINE_FAIL ? mark(LUNA_OFFLINE_FAIL, color)
                                                                   : "");
    if (!r->verified) {
        fprintf(out, "Memory Encryption: Not verified\n");
        fprintf(out, "Secure Boot: Not verified\n");
    } else if (o->type == LUNA_EVIDENCE_TPM) {
        fprintf(out, "Memory Encryption: Not applicable (TPM quote: measured boot only)\n");
        fprintf(out, "Secure Boot: Measured (PCR values quoted)\n");
    } else {
        fprintf(out, "Memory Encryption: Active\n");
        fprintf(out, "Secure Boot: Verified\n");
    }
    for (size_t i = 0; i < r->n_failures; i++)
        fprintf(out, "Reason: %s (%s, %s)\n", r->failures[i].message,
                luna_verify_reason_name(r->failures[i].reason),
                luna_offline_check_name(r->failures[i].check));
    if (!r->verified) {
        fprintf(out, "The evidence could NOT be verified: do not trust it.\n");
        return;
    }
    if (ck[LUNA_OFFLINE_DEBUG] == LUNA_OFFLINE_RELAXED)
        fprintf(out, "Warning: a debug TEE was accepted (%s): its host can read and alter "
                     "its memory.\n",
                relax_src(o->pol.debug_src, "--allow-debug"));
    if (ck[LUNA_OFFLINE_MEASUREMENT] == LUNA_OFFLINE_NOT_CHECKED)
        fprintf(out, "No reference values were given (--policy): the measurements above were "
                     "not compared with anything.\n");
    fprintf(out, "The evidence comes from a genuine TEE environment.\n");
}

/* ---- the command ---- */

bool cli_offline_wanted(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--evidence") == 0)
            return true;
    return false;
}

static int parse_args(const cli_global *g, int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->json = g->json;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (cli_is_help(a)) {
            fputs(offline_help, stdout);
            return -1;
        }
        if (strcmp(a, "--evidence") == 0)
            slot = &o->evidence;
        else if (strcmp(a, "--type") == 0)
            slot = &o->type_name;
        else if (strcmp(a, "--collateral") == 0)
            slot = &o->collateral;
        else if (strcmp(a, "--at") == 0)
            slot = &o->at;
        else if (strcmp(a, "--policy") == 0)
            slot = &o->policy_file;
        else if (strcmp(a, "--accept-tcb") == 0)
            slot = &o->accept_arg;
        if (slot != NULL) {
            if (i + 1 >= argc)
                return cli_usage_error("attestation verify: %s needs a value", a);
            if (*slot != NULL)
                return cli_usage_error("attestation verify: %s given twice", a);
            *slot = argv[++i];
        } else if (strcmp(a, "--allow-debug") == 0) {
            o->pol.core.allow_debug = true;
            o->pol.debug_src = CLI_RELAX_FLAG;
        } else if (strcmp(a, "--revocation-optional") == 0) {
            o->pol.core.revocation_optional = true;
            o->pol.revocation_src = CLI_RELAX_FLAG;
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else {
            fputs(offline_help, stderr);
            return cli_usage_error("attestation verify: unexpected %s", a);
        }
    }
    if (o->evidence == NULL || o->type_name == NULL) {
        fputs(offline_help, stderr);
        return cli_usage_error("attestation verify: --evidence and --type are required");
    }
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(o->type_name, types[i].name) == 0) {
            o->type = types[i].type;
            o->type_words = types[i].words;
        }
    }
    if (o->type_words == NULL)
        return cli_usage_error("attestation verify: --type is one of sev-snp, tdx, sgx, nitro, "
                               "tpm (simulated evidence is verified online only)");
    if (o->at != NULL && !parse_time(o->at, &o->now))
        return cli_usage_error("attestation verify: --at takes RFC 3339 "
                               "(2024-01-31T12:00:00Z) or Unix seconds");
    if (o->at == NULL)
        o->now = (int64_t)time(NULL);
    if (o->accept_arg != NULL) {
        if (cli_offline_accept_tcb(o->accept_arg, &o->pol.core.accept_tcb) != CLI_OK)
            return CLI_USAGE;
        if (o->pol.core.accept_tcb != 0)
            o->pol.accept_src = CLI_RELAX_FLAG;
    }
    if (o->policy_file != NULL && cli_offline_policy_load(o->policy_file, &o->pol) != CLI_OK)
        return CLI_USAGE;
    return CLI_OK;
}

int cli_cmd_offline_verify(const cli_global *g, int argc, char **argv)
{
    static opts o; /* large (policy tables); one command per process */
    gathered *col = NULL;
    prepared prep;
    uint8_t *ev = NULL;
    size_t ev_len = 0;
    luna_offline_result *res = NULL;
    int rc = parse_args(g, argc, argv, &o);

    memset(&prep, 0, sizeof prep);
    if (rc == -1)
        return CLI_OK;
    if (rc != CLI_OK)
        return rc;
    rc = CLI_USAGE;
    col = calloc(1, sizeof *col);
    res = calloc(1, sizeof *res);
    if (col == NULL || res == NULL)
        goto out;
    if (read_capped(AT_FDCWD, o.evidence, LUNA_VERIFY_EVIDENCE_MAX, &ev, &ev_len) != CLI_OK)
        goto out;
    if (o.type == LUNA_EVIDENCE_TPM) {
        uint8_t *raw = ev;
        ev = NULL;
        if (tpm_evidence(o.evidence, raw, ev_len, &ev, &ev_len) != CLI_OK)
            goto out;
    }
    if (o.collateral != NULL && scan_folder(o.collateral, col) != CLI_OK)
        goto out;
    if (prepare(&o, col, &prep) != CLI_OK)
        goto out;
    luna_offline_input in = {.type = o.type,
                             .evidence = ev,
                             .evidence_len = ev_len,
                             .collateral = prep.has_bundle ? prep.bundle.data : NULL,
                             .collateral_len = prep.has_bundle ? prep.bundle.len : 0,
                             .anchors = prep.anchors,
                             .n_anchors = prep.n_anchors,
                             .pinned_ak = prep.ak,
                             .now = o.now,
                             .policy = &o.pol.core};
    luna_err err = luna_offline_verify(&in, res);
    if (err != LUNA_OK && err != LUNA_ERR_VERIFY) {
        fprintf(stderr, "lunal: attestation verify: %s\n",
                res->n_failures > 0 ? res->failures[0].message : luna_strerror(err));
        goto out;
    }
    if (o.json)
        rc = print_json(&o, res, &prep);
    else {
        print_human(stdout, &o, res, &prep, g->color);
        rc = res->verified ? CLI_OK : CLI_FAILED;
    }
out:
    prepared_free(&prep);
    if (col != NULL)
        gathered_free(col);
    free(col);
    free(res);
    free(ev);
    return rc;
}
