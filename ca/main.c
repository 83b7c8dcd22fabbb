/*
 * luna-ca - the platform CA command line: init, issue, renew, show.
 * All certificate and key logic is luna/pki.h; this file parses
 * arguments, picks the passphrase source, and maps errors to exit codes
 * (0 ok, 1 failure, 2 usage).
 *
 * Must never: take a passphrase on the command line, print or log one,
 * print private key bytes, or leave a partial file (the library writes
 * atomically).
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "luna/err.h"
#include "luna/pki.h"
#include "luna/secret.h"

#define EXIT_USAGE 2

enum {
    OPT_DIR = 1u << 0,
    OPT_IDENTITY = 1u << 1,
    OPT_KEY_OUT = 1u << 2,
    OPT_CERT_OUT = 1u << 3,
    OPT_CERT = 1u << 4,
    OPT_KEY = 1u << 5,
    OPT_PASS_FILE = 1u << 6,
    OPT_DAYS = 1u << 7,
    OPT_HOURS = 1u << 8,
    OPT_NOT_BEFORE = 1u << 9,
    OPT_NOT_AFTER = 1u << 10,
};

typedef struct opts {
    const char *dir, *identity, *key_out, *cert_out, *cert, *key, *pass_file;
    const char *days, *hours, *not_before, *not_after;
    unsigned seen;
} opts;

static const struct {
    const char *name;
    unsigned bit;
    size_t offset;
} option_table[] = {
    {"--dir", OPT_DIR, offsetof(opts, dir)},
    {"--identity", OPT_IDENTITY, offsetof(opts, identity)},
    {"--key-out", OPT_KEY_OUT, offsetof(opts, key_out)},
    {"--cert-out", OPT_CERT_OUT, offsetof(opts, cert_out)},
    {"--cert", OPT_CERT, offsetof(opts, cert)},
    {"--key", OPT_KEY, offsetof(opts, key)},
    {"--passphrase-file", OPT_PASS_FILE, offsetof(opts, pass_file)},
    {"--days", OPT_DAYS, offsetof(opts, days)},
    {"--hours", OPT_HOURS, offsetof(opts, hours)},
    {"--not-before", OPT_NOT_BEFORE, offsetof(opts, not_before)},
    {"--not-after", OPT_NOT_AFTER, offsetof(opts, not_after)},
};

static const char usage_main[] =
    "usage: luna-ca <command> [options]\n"
    "commands:\n"
    "  init    create the platform CA (encrypted key + root certificate)\n"
    "  issue   create a P-256 key and a certificate for an identity\n"
    "  renew   reissue a certificate for the same key and identity\n"
    "  show    print a certificate's identity, serial and validity\n"
    "The CA passphrase comes from --passphrase-file F (mode 0600) or the\n"
    "environment variable " LUNA_PKI_PASSPHRASE_ENV ", never the command line.\n"
    "Exit status: 0 ok, 1 failure, 2 usage error.  luna-ca <command> --help\n";

static const char usage_init[] =
    "usage: luna-ca init --dir DIR [--passphrase-file F] [--days N]\n"
    "  Writes DIR/ca.key (encrypted PKCS#8, 0600) and DIR/ca.crt (0644).\n"
    "  Refuses to overwrite an existing CA.  --days: 1..7300, default 1825.\n";

static const char usage_issue[] =
    "usage: luna-ca issue --dir DIR --identity ID --key-out K --cert-out C\n"
    "                     [--hours N | --not-before UNIX --not-after UNIX]\n"
    "                     [--passphrase-file F]\n"
    "  ID: lunal://svc/<name>, lunal://tee/<tee-id> or\n"
    "      lunal://client/<tenant>/<principal>.\n"
    "  Writes a new P-256 key to K (0600) and its certificate to C (0644).\n"
    "  --hours: 1..2160, default 24.\n";

static const char usage_renew[] =
    "usage: luna-ca renew --dir DIR --cert C --key K [--hours N]\n"
    "                     [--passphrase-file F]\n"
    "  Reissues C (same key, same identity, new serial and validity) and\n"
    "  replaces it atomically.  C must have been issued by this CA.\n";

static const char usage_show[] =
    "usage: luna-ca show --cert C\n"
    "  Prints identity, serial, not_before and not_after, one per line.\n";

static int usage(const char *text, const char *problem)
{
    if (problem != NULL)
        fprintf(stderr, "luna-ca: %s\n", problem);
    fputs(text, stderr);
    return EXIT_USAGE;
}

static int fail(const char *what, luna_err err)
{
    fprintf(stderr, "luna-ca: %s: %s\n", what, luna_strerror(err));
    return EXIT_FAILURE;
}

static bool is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/*
 * Parses "--name value" pairs allowed by mask.  Returns 0, 1 for --help,
 * or -1 after printing the problem.
 */
static int parse_opts(int argc, char **argv, unsigned mask, opts *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = 0; i < argc; i++) {
        if (is_help(argv[i]))
            return 1;
        size_t k = 0;
        for (; k < sizeof(option_table) / sizeof(option_table[0]); k++) {
            if (strcmp(argv[i], option_table[k].name) == 0)
                break;
        }
        if (k == sizeof(option_table) / sizeof(option_table[0]) ||
            (option_table[k].bit & mask) == 0) {
            fprintf(stderr, "luna-ca: unknown option: %s\n", argv[i]);
            return -1;
        }
        if (o->seen & option_table[k].bit) {
            fprintf(stderr, "luna-ca: option given twice: %s\n", argv[i]);
            return -1;
        }
        if (i + 1 >= argc || argv[i + 1][0] == '\0') {
            fprintf(stderr, "luna-ca: option needs a value: %s\n", argv[i]);
            return -1;
        }
        o->seen |= option_table[k].bit;
        const char **slot = (const char **)(void *)((char *)o + option_table[k].offset);
        *slot = argv[++i];
    }
    return 0;
}

/* Decimal digits only, no sign, no spaces, min..max. */
static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (s == NULL || s[0] < '0' || s[0] > '9')
        return false;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0' || v < min || v > max)
        return false;
    *out = (uint64_t)v;
    return true;
}

/* Passphrase from file or environment; prints why it could not. */
static int load_pass(const opts *o, luna_secret **pass)
{
    luna_err err = luna_pki_passphrase_load(o->pass_file, pass);
    if (err == LUNA_OK)
        return 0;
    if (err == LUNA_ERR_NOT_FOUND && o->pass_file == NULL) {
        fprintf(stderr, "luna-ca: no CA passphrase: use --passphrase-file F or set %s\n",
                LUNA_PKI_PASSPHRASE_ENV);
        return EXIT_USAGE;
    }
    if (err == LUNA_ERR_PERMISSION)
        fprintf(stderr, "luna-ca: passphrase file must not be accessible by group or others\n");
    else if (err == LUNA_ERR_INVALID_ARG)
        fprintf(stderr, "luna-ca: passphrase must be %u to %u bytes\n",
                LUNA_PKI_PASSPHRASE_MIN, LUNA_PKI_PASSPHRASE_MAX);
    return fail("cannot read the CA passphrase", err);
}

static int load_ca(const opts *o, luna_pki_ca **ca)
{
    luna_secret *pass = NULL;
    int rc = load_pass(o, &pass);
    if (rc != 0)
        return rc;
    luna_err err = luna_pki_ca_load(o->dir, pass, ca);
    luna_secret_free(pass);
    if (err == LUNA_OK)
        return 0;
    if (err == LUNA_ERR_FORMAT)
        fprintf(stderr, "luna-ca: refusing the CA: key must be encrypted PKCS#8 (PBES2) and "
                        "the certificate a CA certificate\n");
    else if (err == LUNA_ERR_VERIFY)
        fprintf(stderr, "luna-ca: wrong passphrase, or key and certificate do not match\n");
    else if (err == LUNA_ERR_PERMISSION)
        fprintf(stderr, "luna-ca: ca.key must not be accessible by group or others\n");
    return fail("cannot load the CA", err);
}

static int cmd_init(int argc, char **argv)
{
    opts o;
    uint64_t days = LUNA_PKI_CA_DEFAULT_DAYS;
    int p = parse_opts(argc, argv, OPT_DIR | OPT_PASS_FILE | OPT_DAYS, &o);
    if (p != 0)
        return p > 0 ? (fputs(usage_init, stdout), EXIT_SUCCESS) : usage(usage_init, NULL);
    if (o.dir == NULL)
        return usage(usage_init, "--dir is required");
    if (o.days != NULL && !parse_u64(o.days, 1, LUNA_PKI_CA_MAX_DAYS, &days))
        return usage(usage_init, "--days must be 1..7300");

    luna_secret *pass = NULL;
    int rc = load_pass(&o, &pass);
    if (rc != 0)
        return rc;
    luna_pki_ca *ca = NULL;
    luna_err err = luna_pki_ca_create((uint32_t)days, &ca);
    if (err == LUNA_OK)
        err = luna_pki_ca_save(ca, o.dir, pass);
    luna_pki_ca_free(ca);
    luna_secret_free(pass);
    if (err == LUNA_ERR_CONFLICT)
        fprintf(stderr, "luna-ca: %s already holds a CA; refusing to overwrite it\n", o.dir);
    if (err != LUNA_OK)
        return fail("init failed", err);
    printf("created %s/%s and %s/%s\n", o.dir, LUNA_PKI_CA_KEY_FILE, o.dir, LUNA_PKI_CA_CERT_FILE);
    return EXIT_SUCCESS;
}

/* Validity from --hours or the --not-before/--not-after pair. */
static int validity(const opts *o, const char *help, int64_t *nb, int64_t *na)
{
    uint64_t hours = LUNA_PKI_DEFAULT_HOURS;
    bool explicit_nb = o->not_before != NULL, explicit_na = o->not_after != NULL;
    if (explicit_nb || explicit_na) {
        uint64_t b = 0, a = 0;
        if (o->hours != NULL)
            return usage(help, "--hours excludes --not-before/--not-after");
        if (!explicit_nb || !explicit_na)
            return usage(help, "--not-before and --not-after go together");
        if (!parse_u64(o->not_before, 0, INT64_C(253402300799), &b) ||
            !parse_u64(o->not_after, 0, INT64_C(253402300799), &a))
            return usage(help, "--not-before/--not-after must be Unix seconds");
        if (b >= a)
            return usage(help, "--not-before must be before --not-after");
        *nb = (int64_t)b;
        *na = (int64_t)a;
        return 0;
    }
    if (o->hours != NULL && !parse_u64(o->hours, 1, LUNA_PKI_MAX_HOURS, &hours))
        return usage(help, "--hours must be 1..2160");
    luna_err err = luna_pki_validity_hours((uint32_t)hours, nb, na);
    return err == LUNA_OK ? 0 : fail("validity", err);
}

static int cmd_issue(int argc, char **argv)
{
    opts o;
    int64_t nb = 0, na = 0;
    int p = parse_opts(argc, argv,
                       OPT_DIR | OPT_IDENTITY | OPT_KEY_OUT | OPT_CERT_OUT | OPT_HOURS |
                           OPT_NOT_BEFORE | OPT_NOT_AFTER | OPT_PASS_FILE,
                       &o);
    if (p != 0)
        return p > 0 ? (fputs(usage_issue, stdout), EXIT_SUCCESS) : usage(usage_issue, NULL);
    if (o.dir == NULL || o.identity == NULL || o.key_out == NULL || o.cert_out == NULL)
        return usage(usage_issue, "--dir, --identity, --key-out and --cert-out are required");
    if (!luna_pki_identity_valid(o.identity))
        return usage(usage_issue, "malformed --identity");
    if (strcmp(o.key_out, o.cert_out) == 0)
        return usage(usage_issue, "--key-out and --cert-out must differ");
    int rc = validity(&o, usage_issue, &nb, &na);
    if (rc != 0)
        return rc;

    luna_pki_ca *ca = NULL;
    rc = load_ca(&o, &ca);
    if (rc != 0)
        return rc;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    luna_err err = luna_pki_keygen(&key);
    if (err == LUNA_OK)
        err = luna_pki_issue(ca, key, o.identity, nb, na, &cert);
    /* Key first: a certificate must never be on disk without its key. */
    if (err == LUNA_OK)
        err = luna_pki_write_key(o.key_out, key);
    if (err == LUNA_OK)
        err = luna_pki_write_cert(o.cert_out, cert);
    X509_free(cert);
    EVP_PKEY_free(key);
    luna_pki_ca_free(ca);
    if (err != LUNA_OK)
        return fail("issue failed", err);
    printf("issued %s -> %s (key %s)\n", o.identity, o.cert_out, o.key_out);
    return EXIT_SUCCESS;
}

static int cmd_renew(int argc, char **argv)
{
    opts o;
    int64_t nb = 0, na = 0;
    char id[LUNA_PKI_IDENTITY_MAX];
    int p = parse_opts(argc, argv, OPT_DIR | OPT_CERT | OPT_KEY | OPT_HOURS | OPT_PASS_FILE, &o);
    if (p != 0)
        return p > 0 ? (fputs(usage_renew, stdout), EXIT_SUCCESS) : usage(usage_renew, NULL);
    if (o.dir == NULL || o.cert == NULL || o.key == NULL)
        return usage(usage_renew, "--dir, --cert and --key are required");
    int rc = validity(&o, usage_renew, &nb, &na);
    if (rc != 0)
        return rc;

    luna_pki_ca *ca = NULL;
    X509 *old = NULL, *fresh = NULL;
    EVP_PKEY *key = NULL;
    const char *what = "cannot read the certificate";
    luna_err err = luna_pki_read_cert(o.cert, &old);
    if (err == LUNA_OK) {
        what = "cannot read the key";
        err = luna_pki_read_key(o.key, &key);
    }
    if (err == LUNA_OK) {
        what = "the key does not match the certificate";
        err = X509_check_private_key(old, key) == 1 ? LUNA_OK : LUNA_ERR_VERIFY;
    }
    if (err == LUNA_OK) {
        what = "the certificate has no valid identity";
        err = luna_pki_identity_from_cert(old, id, sizeof(id));
    }
    if (err != LUNA_OK) {
        X509_free(old);
        EVP_PKEY_free(key);
        return fail(what, err);
    }
    rc = load_ca(&o, &ca);
    if (rc != 0) {
        X509_free(old);
        EVP_PKEY_free(key);
        return rc;
    }
    /* Only our own certificates are renewed: the expiry is irrelevant here. */
    EVP_PKEY *ca_pub = X509_get0_pubkey(luna_pki_ca_cert(ca));
    what = "the certificate was not issued by this CA";
    err = ca_pub != NULL && X509_verify(old, ca_pub) == 1 ? LUNA_OK : LUNA_ERR_VERIFY;
    if (err == LUNA_OK) {
        what = "renew failed";
        err = luna_pki_issue(ca, key, id, nb, na, &fresh);
    }
    if (err == LUNA_OK)
        err = luna_pki_write_cert(o.cert, fresh);
    X509_free(fresh);
    X509_free(old);
    EVP_PKEY_free(key);
    luna_pki_ca_free(ca);
    if (err != LUNA_OK)
        return fail(what, err);
    printf("renewed %s -> %s\n", id, o.cert);
    return EXIT_SUCCESS;
}

static void print_time(const char *label, int64_t t)
{
    struct tm tm;
    char buf[32];
    time_t tt = (time_t)t;
    if (gmtime_r(&tt, &tm) == NULL || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, sizeof(buf), "?");
    printf("%s: %s (%lld)\n", label, buf, (long long)t);
}

static int cmd_show(int argc, char **argv)
{
    opts o;
    int p = parse_opts(argc, argv, OPT_CERT, &o);
    if (p != 0)
        return p > 0 ? (fputs(usage_show, stdout), EXIT_SUCCESS) : usage(usage_show, NULL);
    if (o.cert == NULL)
        return usage(usage_show, "--cert is required");

    X509 *cert = NULL;
    char id[LUNA_PKI_IDENTITY_MAX];
    int64_t nb = 0, na = 0;
    luna_err err = luna_pki_read_cert(o.cert, &cert);
    if (err != LUNA_OK)
        return fail("cannot read the certificate", err);
    err = luna_pki_cert_times(cert, &nb, &na);
    if (err != LUNA_OK) {
        X509_free(cert);
        return fail("bad validity", err);
    }
    luna_err id_err = luna_pki_identity_from_cert(cert, id, sizeof(id));
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *serial = bn != NULL ? BN_bn2hex(bn) : NULL;
    printf("identity: %s\n", id_err == LUNA_OK ? id : "-");
    printf("serial: %s\n", serial != NULL ? serial : "?");
    print_time("not_before", nb);
    print_time("not_after", na);
    OPENSSL_free(serial);
    BN_free(bn);
    X509_free(cert);
    if (id_err != LUNA_OK)
        return fail("no valid lunal identity", id_err);
    return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(usage_main, NULL);
    if (is_help(argv[1])) {
        fputs(usage_main, stdout);
        return EXIT_SUCCESS;
    }
    /* The CA key passes through this process: no core dumps, no ptrace. */
    if (luna_process_harden() != LUNA_OK) {
        fprintf(stderr, "luna-ca: cannot harden the process\n");
        return EXIT_FAILURE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "init") == 0)
        return cmd_init(argc - 2, argv + 2);
    if (strcmp(cmd, "issue") == 0)
        return cmd_issue(argc - 2, argv + 2);
    if (strcmp(cmd, "renew") == 0)
        return cmd_renew(argc - 2, argv + 2);
    if (strcmp(cmd, "show") == 0)
        return cmd_show(argc - 2, argv + 2);
    fprintf(stderr, "luna-ca: unknown command: %s\n", cmd);
    return usage(usage_main, NULL);
}
