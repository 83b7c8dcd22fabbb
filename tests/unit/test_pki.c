/*
 * Platform CA: identity grammar and extraction from hand-built SANs
 * (missing, duplicated, wrong scheme, bad characters, overlong, embedded
 * NUL), the issuance round trip through X509_verify_cert, expiry, the
 * encrypted CA key file (header, no passphrase, wrong passphrase, clear
 * key refused) and file modes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "luna/pki.h"
#include "luna/secret.h"
#include "luna_test.h"

/* ---- helpers ---- */

typedef struct san {
    int type; /* GEN_URI, GEN_DNS */
    const char *value;
    int len; /* -1: strlen */
} san;

static EVP_PKEY *test_key;

/* A self-signed certificate carrying exactly the given SAN entries. */
static X509 *cert_with_sans(const san *sans, size_t n, int extensions)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(1, X509_set_version(x, X509_VERSION_3));
    assert_int_equal(1, ASN1_INTEGER_set(X509_get_serialNumber(x), 7));
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    assert_int_equal(1, X509_set_pubkey(x, test_key));
    for (int e = 0; e < extensions; e++) {
        GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
        assert_non_null(gens);
        for (size_t i = 0; i < n; i++) {
            GENERAL_NAME *g = GENERAL_NAME_new();
            ASN1_IA5STRING *s = ASN1_IA5STRING_new();
            assert_non_null(g);
            assert_non_null(s);
            int len = sans[i].len >= 0 ? sans[i].len : (int)strlen(sans[i].value);
            assert_int_equal(1, ASN1_STRING_set(s, sans[i].value, len));
            GENERAL_NAME_set0_value(g, sans[i].type, s);
            assert_true(sk_GENERAL_NAME_push(gens, g) > 0);
        }
        X509_EXTENSION *ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
        assert_non_null(ext);
        assert_int_equal(1, X509_add_ext(x, ext, -1));
        X509_EXTENSION_free(ext);
        GENERAL_NAMES_free(gens);
    }
    assert_true(X509_sign(x, test_key, EVP_sha256()) > 0);
    return x;
}

static luna_err id_of(const san *sans, size_t n, char *out, size_t cap)
{
    X509 *x = cert_with_sans(sans, n, 1);
    luna_err err = luna_pki_identity_from_cert(x, out, cap);
    X509_free(x);
    return err;
}

static luna_secret *pass_of(const char *s)
{
    luna_secret *p = NULL;
    assert_luna_ok(luna_secret_from(s, strlen(s), &p));
    return p;
}

static char tmpdir[64];

static void path_in(char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", tmpdir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(0, stat(path, &st));
    return st.st_mode & 07777;
}

static char *slurp(const char *path)
{
    size_t len = 0;
    uint8_t *data = luna_test_read_file(path, &len);
    char *s = malloc(len + 1);
    assert_non_null(s);
    memcpy(s, data, len);
    s[len] = '\0';
    free(data);
    return s;
}

static int setup(void **state)
{
    (void)state;
    assert_luna_ok(luna_pki_keygen(&test_key));
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/luna-pki-test.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(test_key);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    assert_int_equal(0, system(cmd));
    return 0;
}

/* ---- identity grammar ---- */

static void identity_grammar(void **state)
{
    (void)state;
    static const char *good[] = {
        "lunal://svc/gateway", "lunal://svc/iam", "lunal://svc/tee-platform",
        "lunal://svc/a", "lunal://svc/01234567890123456789012345678901",
        "lunal://tee/tee-0f3a", "lunal://tee/sim_1",
        "lunal://client/acme/app-1", "lunal://client/t_1/dev_29fja92",
    };
    static const char *bad[] = {
        "", "lunal://", "lunal://svc/", "lunal://svc/KMS", "lunal://svc/k_s",
        "lunal://svc/kms/", "lunal://svc/kms ", " lunal://svc/kms", "lunal://svc/k.s",
        "lunal://svc/012345678901234567890123456789012", /* 33 */
        "LUNAL://svc/kms", "lunal:svc/kms", "lunal://SVC/kms", "lunal://svc/kms?x=1",
        "lunal://svc/kms#f", "lunal://svc/k%6ds", "lunal://svc:443/kms", "lunal://user/kms",
        "lunal://tee/", "lunal://tee/a/b", "lunal://client/acme", "lunal://client/acme/",
        "lunal://client//app", "lunal://client/acme/app/x", "https://svc/kms",
        "spiffe://lunal/svc/kms",
        "lunal://tee/01234567890123456789012345678901234567890123456789012345678901234", /* 65 */
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!luna_pki_identity_valid(good[i]))
            fail_msg("refused good identity %s", good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (luna_pki_identity_valid(bad[i]))
            fail_msg("accepted bad identity '%s'", bad[i]);
    }
    assert_false(luna_pki_identity_valid(NULL));
    /* An identity longer than the buffer cap is refused without overread. */
    char big[LUNA_PKI_IDENTITY_MAX + 40];
    memset(big, 'a', sizeof(big) - 1);
    memcpy(big, "lunal://tee/", 12);
    big[sizeof(big) - 1] = '\0';
    assert_false(luna_pki_identity_valid(big));
}

/* ---- identity from a certificate ---- */

static void identity_from_cert_valid(void **state)
{
    (void)state;
    char id[LUNA_PKI_IDENTITY_MAX];
    const san one[] = {{GEN_DNS, "localhost", -1}, {GEN_URI, "lunal://svc/kms", -1}};
    assert_luna_ok(id_of(one, 2, id, sizeof(id)));
    assert_string_equal("lunal://svc/kms", id);

    /* Other URI schemes and DNS names are ignored, wherever they sit. */
    const san mixed[] = {{GEN_URI, "https://example.com/", -1},
                         {GEN_URI, "lunal://tee/tee-1", -1},
                         {GEN_URI, "spiffe://lunal/svc/iam", -1},
                         {GEN_DNS, "lunal://svc/iam", -1}};
    assert_luna_ok(id_of(mixed, 4, id, sizeof(id)));
    assert_string_equal("lunal://tee/tee-1", id);

    const san client[] = {{GEN_URI, "lunal://client/acme/app-1", -1}};
    assert_luna_ok(id_of(client, 1, id, sizeof(id)));
    assert_string_equal("lunal://client/acme/app-1", id);

    /* Exactly enough room: len + NUL. */
    char small[16];
    assert_luna_ok(id_of(one, 2, small, sizeof(small)));
    assert_string_equal("lunal://svc/kms", small);
}

static void identity_from_cert_refusals(void **state)
{
    (void)state;
    char id[LUNA_PKI_IDENTITY_MAX];

    /* No SAN extension at all. */
    X509 *none = cert_with_sans(NULL, 0, 0);
    memcpy(id, "junk", 5);
    assert_luna_err(LUNA_ERR_FORMAT, luna_pki_identity_from_cert(none, id, sizeof(id)));
    assert_string_equal("", id);
    X509_free(none);

    /* SAN without any lunal URI. */
    const san dns_only[] = {{GEN_DNS, "kms.internal", -1}};
    assert_luna_err(LUNA_ERR_FORMAT, id_of(dns_only, 1, id, sizeof(id)));
    const san wrong_scheme[] = {{GEN_URI, "https://svc/kms", -1},
                                {GEN_URI, "spiffe://svc/kms", -1}};
    assert_luna_err(LUNA_ERR_FORMAT, id_of(wrong_scheme, 2, id, sizeof(id)));

    /* Two lunal URIs, equal or not, and a differently cased second one. */
    const san two[] = {{GEN_URI, "lunal://svc/kms", -1}, {GEN_URI, "lunal://svc/iam", -1}};
    assert_luna_err(LUNA_ERR_FORMAT, id_of(two, 2, id, sizeof(id)));
    const san twice[] = {{GEN_URI, "lunal://svc/kms", -1}, {GEN_URI, "lunal://svc/kms", -1}};
    assert_luna_err(LUNA_ERR_FORMAT, id_of(twice, 2, id, sizeof(id)));
    const san cased[] = {{GEN_URI, "lunal://svc/kms", -1}, {GEN_URI, "LUNAL://svc/iam", -1}};
    assert_luna_err(LUNA_ERR_FORMAT, id_of(cased, 2, id, sizeof(id)));
    assert_string_equal("", id);

    /* Malformed lunal URIs. */
    static const char *bad[] = {
        "lunal://svc/KMS", "lunal://svc/k_s", "lunal://svc/kms/", "lunal://svc/",
        "lunal://svc/012345678901234567890123456789012", "lunal:svc/kms", "lunal://svc/kms?a",
        "Lunal://svc/kms",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const san s[] = {{GEN_URI, bad[i], -1}};
        if (id_of(s, 1, id, sizeof(id)) != LUNA_ERR_FORMAT)
            fail_msg("accepted SAN %s", bad[i]);
    }

    /* Overlong: far past any buffer. */
    char longuri[600];
    memset(longuri, 'a', sizeof(longuri) - 1);
    memcpy(longuri, "lunal://tee/", 12);
    longuri[sizeof(longuri) - 1] = '\0';
    const san overlong[] = {{GEN_URI, longuri, -1}};
    assert_luna_err(LUNA_ERR_FORMAT, id_of(overlong, 1, id, sizeof(id)));

    /* An embedded NUL must not truncate "lunal://svc/kms\0.evil" to kms. */
    const san nul[] = {{GEN_URI, "lunal://svc/kms\0.evil", 21}};
    assert_luna_err(LUNA_ERR_FORMAT, id_of(nul, 1, id, sizeof(id)));

    /* Two subjectAltName extensions, each with one identity. */
    const san one[] = {{GEN_URI, "lunal://svc/kms", -1}};
    X509 *dup = cert_with_sans(one, 1, 2);
    assert_luna_err(LUNA_ERR_FORMAT, luna_pki_identity_from_cert(dup, id, sizeof(id)));
    X509_free(dup);

    /* Output too small: TOO_LARGE and an empty string, never a truncation. */
    char small[15];
    assert_luna_err(LUNA_ERR_TOO_LARGE, id_of(one, 1, small, sizeof(small)));
    assert_string_equal("", small);

    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_pki_identity_from_cert(NULL, id, sizeof(id)));
    X509 *x = cert_with_sans(one, 1, 1);
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_pki_identity_from_cert(x, NULL, 10));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_pki_identity_from_cert(x, id, 0));
    X509_free(x);
}

/* ---- issuance ---- */

static bool has_ext_critical(X509 *x, int nid, int want_crit)
{
    int idx = X509_get_ext_by_NID(x, nid, -1);
    if (idx < 0)
        return false;
    /* exactly one such extension */
    if (X509_get_ext_by_NID(x, nid, idx) >= 0)
        return false;
    return X509_EXTENSION_get_critical(X509_get_ext(x, idx)) == want_crit;
}

static void issue_round_trip(void **state)
{
    (void)state;
    luna_pki_ca *ca = NULL;
    EVP_PKEY *key = NULL;
    X509 *leaf = NULL;
    int64_t nb = 0, na = 0;
    char id[LUNA_PKI_IDENTITY_MAX];

    assert_luna_ok(luna_pki_ca_create(30, &ca));
    X509 *root = luna_pki_ca_cert(ca);
    assert_int_equal(1, X509_check_ca(root));
    assert_true(has_ext_critical(root, NID_basic_constraints, 1));
    assert_true(has_ext_critical(root, NID_key_usage, 1));
    assert_int_equal(0, X509_get_pathlen(root));
    assert_true((X509_get_key_usage(root) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) ==
                (KU_KEY_CERT_SIGN | KU_CRL_SIGN));

    assert_luna_ok(luna_pki_keygen(&key));
    assert_luna_ok(luna_pki_validity_hours(LUNA_PKI_DEFAULT_HOURS, &nb, &na));
    int64_t now = (int64_t)time(NULL);
    assert_true(nb <= now && nb >= now - LUNA_PKI_BACKDATE_SECONDS - 5);
    assert_true(na >= now + 24 * 3600 - 5 && na <= now + 24 * 3600 + 5);
    assert_luna_ok(luna_pki_issue(ca, key, "lunal://svc/kms", nb, na, &leaf));

    /* The profile. */
    assert_int_equal(X509_VERSION_3, X509_get_version(leaf));
    const ASN1_INTEGER *serial = X509_get0_serialNumber(leaf);
    assert_int_equal(16, ASN1_STRING_length(serial));
    assert_int_equal(0, X509_check_ca(leaf));
    assert_true(has_ext_critical(leaf, NID_basic_constraints, 1));
    assert_true(has_ext_critical(leaf, NID_key_usage, 1));
    assert_true(has_ext_critical(leaf, NID_ext_key_usage, 0));
    assert_true(has_ext_critical(leaf, NID_subject_alt_name, 0));
    assert_true(has_ext_critical(leaf, NID_subject_key_identifier, 0));
    assert_true(has_ext_critical(leaf, NID_authority_key_identifier, 0));
    assert_int_equal(KU_DIGITAL_SIGNATURE, X509_get_key_usage(leaf));
    assert_int_equal(XKU_SSL_SERVER | XKU_SSL_CLIENT, X509_get_extended_key_usage(leaf));
    assert_int_equal(0, ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(leaf),
                                              X509_get0_subject_key_id(root)));
    assert_int_equal(1, X509_check_host(leaf, "localhost", 0, 0, NULL));
    assert_int_equal(1, X509_check_ip_asc(leaf, "127.0.0.1", 0));
    assert_int_equal(NID_ecdsa_with_SHA256, X509_get_signature_nid(leaf));
    assert_int_equal(1, X509_check_private_key(leaf, key));
    int64_t cnb = 0, cna = 0;
    assert_luna_ok(luna_pki_cert_times(leaf, &cnb, &cna));
    assert_true(cnb == nb && cna == na);
    assert_luna_ok(luna_pki_identity_from_cert(leaf, id, sizeof(id)));
    assert_string_equal("lunal://svc/kms", id);

    /* Chain verifies now, plainly through X509_verify_cert too. */
    assert_luna_ok(luna_pki_verify(root, leaf, now));
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_int_equal(1, X509_STORE_add_cert(store, root));
    assert_int_equal(1, X509_STORE_CTX_init(ctx, store, leaf, NULL));
    X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT);
    assert_int_equal(1, X509_verify_cert(ctx));
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);

    /* ... and not outside its window. */
    assert_luna_err(LUNA_ERR_EXPIRED, luna_pki_verify(root, leaf, na + 10));
    assert_luna_err(LUNA_ERR_EXPIRED, luna_pki_verify(root, leaf, nb - 10));

    /* An already-expired certificate fails verification now. */
    X509 *old = NULL;
    assert_luna_ok(luna_pki_issue(ca, key, "lunal://svc/kms", now - 7200, now - 3600, &old));
    assert_luna_err(LUNA_ERR_EXPIRED, luna_pki_verify(root, old, now));
    store = X509_STORE_new();
    ctx = X509_STORE_CTX_new();
    assert_int_equal(1, X509_STORE_add_cert(store, root));
    assert_int_equal(1, X509_STORE_CTX_init(ctx, store, old, NULL));
    assert_int_equal(0, X509_verify_cert(ctx));
    assert_int_equal(X509_V_ERR_CERT_HAS_EXPIRED, X509_STORE_CTX_get_error(ctx));
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(old);

    /* A certificate of another CA does not verify against this one. */
    luna_pki_ca *other = NULL;
    X509 *foreign = NULL;
    assert_luna_ok(luna_pki_ca_create(30, &other));
    assert_luna_ok(luna_pki_issue(other, key, "lunal://svc/kms", nb, na, &foreign));
    assert_luna_err(LUNA_ERR_VERIFY, luna_pki_verify(root, foreign, now));
    X509_free(foreign);
    luna_pki_ca_free(other);

    /* Two issuances never share a serial. */
    X509 *again = NULL;
    assert_luna_ok(luna_pki_issue(ca, key, "lunal://svc/kms", nb, na, &again));
    assert_int_not_equal(0, ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(again)));
    X509_free(again);

    X509_free(leaf);
    EVP_PKEY_free(key);
    luna_pki_ca_free(ca);
}

static void issue_refusals(void **state)
{
    (void)state;
    luna_pki_ca *ca = NULL;
    EVP_PKEY *key = NULL;
    X509 *x = (X509 *)1;
    int64_t now = (int64_t)time(NULL);

    assert_luna_ok(luna_pki_ca_create(2, &ca));
    assert_luna_ok(luna_pki_keygen(&key));
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_pki_issue(ca, key, "lunal://svc/KMS", now, now + 60, &x));
    assert_null(x);
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_pki_issue(ca, key, "lunal://svc/kms", now + 60, now + 60, &x));
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_pki_issue(ca, key, "lunal://svc/kms", now + 60, now, &x));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_pki_issue(ca, key, "lunal://svc/kms", -5, now, &x));
    /* Longer than LUNA_PKI_MAX_HOURS, and past the CA's own expiry. */
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_pki_issue(ca, key, "lunal://svc/kms", now - 91 * 86400, now, &x));
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_pki_issue(ca, key, "lunal://svc/kms", now, now + 3 * 86400, &x));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_pki_issue(NULL, key, "lunal://svc/kms", now,
                                                         now + 60, &x));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_pki_validity_hours(0, &now, &now));
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_pki_validity_hours(LUNA_PKI_MAX_HOURS + 1, &now, &now));
    luna_pki_ca *none = NULL;
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_pki_ca_create(0, &none));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_pki_ca_create(LUNA_PKI_CA_MAX_DAYS + 1, &none));
    assert_null(none);

    /* Only P-256 keys get certificates. */
    EVP_PKEY *p384 = EVP_EC_gen("P-384");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(p384);
    assert_non_null(ed);
    assert_luna_err(LUNA_ERR_UNSUPPORTED,
                    luna_pki_issue(ca, p384, "lunal://svc/kms", now, now + 60, &x));
    assert_luna_err(LUNA_ERR_UNSUPPORTED,
                    luna_pki_issue(ca, ed, "lunal://svc/kms", now, now + 60, &x));
    assert_null(x);

    /* The public key handed over as DER: strict parse, P-256 only. */
    uint8_t *der = NULL;
    int der_len = i2d_PUBKEY(key, &der);
    assert_true(der_len > 0);
    EVP_PKEY *pub = NULL;
    assert_luna_ok(luna_pki_pubkey_from_der(der, (size_t)der_len, &pub));
    assert_int_equal(1, EVP_PKEY_eq(pub, key));
    assert_luna_ok(luna_pki_issue(ca, pub, "lunal://tee/tee-1", now, now + 60, &x));
    assert_int_equal(1, X509_check_private_key(x, key));
    X509_free(x);
    EVP_PKEY_free(pub);
    uint8_t *longer = malloc((size_t)der_len + 1);
    assert_non_null(longer);
    memcpy(longer, der, (size_t)der_len);
    longer[der_len] = 0;
    assert_luna_err(LUNA_ERR_FORMAT, luna_pki_pubkey_from_der(longer, (size_t)der_len + 1, &pub));
    assert_luna_err(LUNA_ERR_FORMAT, luna_pki_pubkey_from_der(der, (size_t)der_len - 1, &pub));
    assert_null(pub);
    free(longer);
    OPENSSL_free(der);
    der = NULL;
    der_len = i2d_PUBKEY(p384, &der);
    assert_true(der_len > 0);
    assert_luna_err(LUNA_ERR_UNSUPPORTED, luna_pki_pubkey_from_der(der, (size_t)der_len, &pub));
    OPENSSL_free(der);

    EVP_PKEY_free(ed);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(key);
    luna_pki_ca_free(ca);
}

/* ---- files ---- */

static void ca_key_encrypted_at_rest(void **state)
{
    (void)state;
    char dir[128], key_path[160], cert_path[160];
    luna_pki_ca *ca = NULL, *loaded = NULL;
    luna_secret *pass = pass_of("correct horse battery");
    luna_secret *wrong = pass_of("correct horse battery!");
    luna_secret *shortp = pass_of("short");

    path_in(dir, sizeof(dir), "ca");
    snprintf(key_path, sizeof(key_path), "%s/ca.key", dir);
    snprintf(cert_path, sizeof(cert_path), "%s/ca.crt", dir);
    assert_luna_ok(luna_pki_ca_create(30, &ca));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_pki_ca_save(ca, dir, shortp));
    assert_luna_ok(luna_pki_ca_save(ca, dir, pass));
    assert_int_equal(0700, mode_of(dir));
    assert_int_equal(0600, mode_of(key_path));
    assert_int_equal(0644, mode_of(cert_path));

    /* Scrypt-protected PKCS#8: the PEM label says so, no clear key inside. */
    char *text = slurp(key_path);
    assert_non_null(strstr(text, "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    assert_null(strstr(text, "-----BEGIN PRIVATE KEY-----"));
    assert_null(strstr(text, "EC PRIVATE KEY"));
    free(text);
    BIO *bio = BIO_new_file(key_path, "r");
    X509_SIG *sig = PEM_read_bio_PKCS8(bio, NULL, NULL, NULL);
    assert_non_null(sig);
    const X509_ALGOR *alg = NULL;
    const ASN1_OBJECT *oid = NULL;
    X509_SIG_get0(sig, &alg, NULL);
    X509_ALGOR_get0(&oid, NULL, NULL, alg);
    assert_int_equal(NID_pbes2, OBJ_obj2nid(oid));
    PBE2PARAM *pbe2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter);
    assert_non_null(pbe2);
    assert_int_equal(NID_id_scrypt, OBJ_obj2nid(pbe2->keyfunc->algorithm));
    assert_int_equal(NID_aes_256_cbc, OBJ_obj2nid(pbe2->encryption->algorithm));
    PBE2PARAM_free(pbe2);
    X509_SIG_free(sig);
    BIO_free(bio);

    /* Never overwritten. */
    assert_luna_err(LUNA_ERR_CONFLICT, luna_pki_ca_save(ca, dir, pass));

    /* Loads with the passphrase, and is the same CA. */
    assert_luna_ok(luna_pki_ca_load(dir, pass, &loaded));
    assert_int_equal(0, X509_cmp(luna_pki_ca_cert(ca), luna_pki_ca_cert(loaded)));
    luna_pki_ca_free(loaded);
    loaded = NULL;

    /* Wrong passphrase; no passphrase (the clear-key reader). */
    assert_luna_err(LUNA_ERR_VERIFY, luna_pki_ca_load(dir, wrong, &loaded));
    assert_null(loaded);
    EVP_PKEY *k = NULL;
    assert_luna_err(LUNA_ERR_FORMAT, luna_pki_read_key(key_path, &k));
    assert_null(k);
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_pki_ca_load(dir, NULL, &loaded));

    /* A key readable by others is refused before it is even parsed. */
    assert_int_equal(0, chmod(key_path, 0640));
    assert_luna_err(LUNA_ERR_PERMISSION, luna_pki_ca_load(dir, pass, &loaded));
    assert_int_equal(0, chmod(key_path, 0600));

    /* An unencrypted CA key in its place is refused even with the passphrase. */
    char clear_dir[128];
    path_in(clear_dir, sizeof(clear_dir), "clear");
    assert_int_equal(0, mkdir(clear_dir, 0700));
    char clear_key[160], clear_cert[160];
    snprintf(clear_key, sizeof(clear_key), "%s/ca.key", clear_dir);
    snprintf(clear_cert, sizeof(clear_cert), "%s/ca.crt", clear_dir);
    EVP_PKEY *ca_key = NULL;
    assert_luna_ok(luna_pki_read_key_encrypted(key_path, pass, &ca_key));
    assert_luna_ok(luna_pki_write_key(clear_key, ca_key));
    assert_luna_ok(luna_pki_write_cert(clear_cert, luna_pki_ca_cert(ca)));
    assert_luna_err(LUNA_ERR_FORMAT, luna_pki_ca_load(clear_dir, pass, &loaded));
    assert_null(loaded);
    EVP_PKEY_free(ca_key);

    /* A key that does not belong to the certificate. */
    assert_int_equal(0, unlink(clear_key));
    EVP_PKEY *stranger = NULL;
    assert_luna_ok(luna_pki_keygen(&stranger));
    assert_luna_ok(luna_pki_write_key_encrypted(clear_key, stranger, pass));
    assert_luna_err(LUNA_ERR_VERIFY, luna_pki_ca_load(clear_dir, pass, &loaded));
    EVP_PKEY_free(stranger);

    luna_secret_free(shortp);
    luna_secret_free(wrong);
    luna_secret_free(pass);
    luna_pki_ca_free(ca);
}

static void leaf_files(void **state)
{
    (void)state;
    char key_path[160], cert_path[160];
    luna_pki_ca *ca = NULL;
    EVP_PKEY *key = NULL, *back = NULL;
    X509 *cert = NULL, *cert_back = NULL;
    int64_t nb = 0, na = 0;

    path_in(key_path, sizeof(key_path), "svc.key");
    path_in(cert_path, sizeof(cert_path), "svc.crt");
    assert_luna_ok(luna_pki_ca_create(30, &ca));
    assert_luna_ok(luna_pki_keygen(&key));
    assert_luna_ok(luna_pki_validity_hours(1, &nb, &na));
    assert_luna_ok(luna_pki_issue(ca, key, "lunal://svc/audit", nb, na, &cert));
    assert_luna_ok(luna_pki_write_key(key_path, key));
    assert_luna_ok(luna_pki_write_cert(cert_path, cert));
    assert_int_equal(0600, mode_of(key_path));
    assert_int_equal(0644, mode_of(cert_path));
    assert_luna_ok(luna_pki_read_key(key_path, &back));
    assert_int_equal(1, EVP_PKEY_eq(key, back));
    assert_luna_ok(luna_pki_read_cert(cert_path, &cert_back));
    assert_int_equal(0, X509_cmp(cert, cert_back));
    X509_free(cert_back);
    cert_back = NULL;

    /* Replacing leaves exactly the new file, no temporary beside it. */
    assert_luna_ok(luna_pki_write_cert(cert_path, luna_pki_ca_cert(ca)));
    assert_luna_ok(luna_pki_read_cert(cert_path, &cert_back));
    assert_int_equal(0, X509_cmp(luna_pki_ca_cert(ca), cert_back));
    X509_free(cert_back);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "ls '%s' | grep -q tmp", tmpdir);
    assert_int_not_equal(0, system(cmd));

    /* Group-readable private key refused; trailing junk after a cert refused. */
    assert_int_equal(0, chmod(key_path, 0644));
    EVP_PKEY_free(back);
    back = NULL;
    assert_luna_err(LUNA_ERR_PERMISSION, luna_pki_read_key(key_path, &back));
    assert_null(back);
    FILE *f = fopen(cert_path, "a");
    assert_non_null(f);
    fputs("junk\n", f);
    fclose(f);
    assert_luna_err(LUNA_ERR_FORMAT, luna_pki_read_cert(cert_path, &cert_back));
    char missing[160];
    path_in(missing, sizeof(missing), "absent.crt");
    assert_luna_err(LUNA_ERR_NOT_FOUND, luna_pki_read_cert(missing, &cert_back));
    assert_luna_err(LUNA_ERR_IO, luna_pki_read_cert(tmpdir, &cert_back));

    X509_free(cert);
    EVP_PKEY_free(key);
    luna_pki_ca_free(ca);
}

static void passphrase_sources(void **state)
{
    (void)state;
    char path[160];
    luna_secret *p = NULL;
    path_in(path, sizeof(path), "pass");

    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("s3cret passphrase\r\n", f);
    fclose(f);
    assert_int_equal(0, chmod(path, 0600));
    assert_luna_ok(luna_pki_passphrase_load(path, &p));
    assert_int_equal(17, luna_secret_len(p));
    assert_memory_equal("s3cret passphrase", luna_secret_cdata(p), 17);
    luna_secret_free(p);
    p = NULL;

    assert_int_equal(0, chmod(path, 0604));
    assert_luna_err(LUNA_ERR_PERMISSION, luna_pki_passphrase_load(path, &p));
    assert_null(p);

    f = fopen(path, "w");
    assert_non_null(f);
    fputs("short\n", f);
    fclose(f);
    assert_int_equal(0, chmod(path, 0600));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_pki_passphrase_load(path, &p));

    assert_int_equal(0, unsetenv(LUNA_PKI_PASSPHRASE_ENV));
    assert_luna_err(LUNA_ERR_NOT_FOUND, luna_pki_passphrase_load(NULL, &p));
    assert_int_equal(0, setenv(LUNA_PKI_PASSPHRASE_ENV, "from the environment", 1));
    assert_luna_ok(luna_pki_passphrase_load(NULL, &p));
    assert_int_equal(20, luna_secret_len(p));
    luna_secret_free(p);
    assert_int_equal(0, unsetenv(LUNA_PKI_PASSPHRASE_ENV));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(identity_grammar),
        cmocka_unit_test(identity_from_cert_valid),
        cmocka_unit_test(identity_from_cert_refusals),
        cmocka_unit_test(issue_round_trip),
        cmocka_unit_test(issue_refusals),
        cmocka_unit_test(ca_key_encrypted_at_rest),
        cmocka_unit_test(leaf_files),
        cmocka_unit_test(passphrase_sources),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
