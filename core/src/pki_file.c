/*
 * pki_file.c - key, certificate and passphrase files of the platform CA:
 * atomic 0600/0644 writes, capped reads, the encrypted PKCS#8 CA key.
 *
 * Must never: leave a partially written file under a final name, read a
 * key or passphrase file others can read, load a CA key that is not
 * encrypted, prompt on a terminal (every PEM call gets a callback that
 * refuses), or leave key or passphrase bytes in memory it frees.
 */
#include "luna/pki.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "luna/bytes.h"
#include "pki_internal.h"

/* scrypt cost: 16 MiB, under OpenSSL's default 32 MiB decode limit. */
#define PKI_SCRYPT_N 16384u
#define PKI_SCRYPT_R 8u
#define PKI_SCRYPT_P 1u

/* Any PEM password prompt is refused: nothing here is interactive. */
static int no_password_cb(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* ---- raw files ---- */

static luna_err write_all(int fd, const uint8_t *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return LUNA_ERR_IO;
        off += (size_t)n;
    }
    return LUNA_OK;
}

/* fsync of the folder holding path, so the rename itself is durable. */
static luna_err sync_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        dir[0] = '.';
        dir[1] = '\0';
    } else if (slash == path) {
        dir[0] = '/';
        dir[1] = '\0';
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof(dir))
            return LUNA_ERR_INVALID_ARG;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return LUNA_ERR_IO;
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? LUNA_OK : LUNA_ERR_IO;
}

/*
 * Writes len bytes to path through a temporary file in the same folder.
 * no_clobber: link(2) instead of rename(2), so an existing file is never
 * replaced (LUNA_ERR_CONFLICT), without a check-then-write race.
 */
static luna_err write_atomic(const char *path, const uint8_t *data, size_t len, mode_t mode,
                             bool no_clobber)
{
    char tmp[PATH_MAX];
    luna_err err;
    int fd = -1;

    LUNA_ENSURE(path != NULL && path[0] != '\0', LUNA_ERR_INVALID_ARG);
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
    LUNA_ENSURE(n > 0 && (size_t)n < sizeof(tmp), LUNA_ERR_INVALID_ARG);
    /* mkstemp creates the file 0600 and exclusively; no window at a wider mode. */
    fd = mkostemp(tmp, O_CLOEXEC);
    LUNA_ENSURE(fd >= 0, LUNA_ERR_IO);
    LUNA_TRY_ENSURE(fchmod(fd, mode) == 0, LUNA_ERR_IO, fail);
    LUNA_TRY(write_all(fd, data, len), fail);
    LUNA_TRY_ENSURE(fsync(fd) == 0, LUNA_ERR_IO, fail);
    LUNA_TRY_ENSURE(close(fd) == 0, LUNA_ERR_IO, fail_closed);
    fd = -1;
    if (no_clobber) {
        if (link(tmp, path) != 0) {
            err = errno == EEXIST ? LUNA_ERR_CONFLICT : LUNA_ERR_IO;
            goto fail_closed;
        }
        (void)unlink(tmp);
    } else {
        LUNA_TRY_ENSURE(rename(tmp, path) == 0, LUNA_ERR_IO, fail_closed);
    }
    return sync_parent(path);
fail:
    close(fd);
fail_closed:
    (void)unlink(tmp);
    return err;
}

/*
 * Reads a whole regular file of at most LUNA_PKI_FILE_MAX bytes into a
 * NUL-terminated malloc'd buffer the caller wipes and frees.  private:
 * refuse (LUNA_ERR_PERMISSION) a file accessible by group or others.
 */
static luna_err read_capped(const char *path, bool private_file, char **out, size_t *out_len)
{
    struct stat st;
    luna_err err;
    char *buf = NULL;
    size_t off = 0;

    *out = NULL;
    *out_len = 0;
    LUNA_ENSURE(path != NULL, LUNA_ERR_INVALID_ARG);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return errno == ENOENT ? LUNA_ERR_NOT_FOUND : LUNA_ERR_IO;
    LUNA_TRY_ENSURE(fstat(fd, &st) == 0, LUNA_ERR_IO, out);
    LUNA_TRY_ENSURE(S_ISREG(st.st_mode), LUNA_ERR_IO, out);
    LUNA_TRY_ENSURE(!private_file || (st.st_mode & 077) == 0, LUNA_ERR_PERMISSION, out);
    LUNA_TRY_ENSURE(st.st_size >= 0 && (uint64_t)st.st_size <= LUNA_PKI_FILE_MAX,
                    LUNA_ERR_TOO_LARGE, out);
    /* Read up to the cap, not st_size: the file may grow under us. */
    buf = malloc(LUNA_PKI_FILE_MAX + 1);
    LUNA_TRY_ENSURE(buf != NULL, LUNA_ERR_NOMEM, out);
    for (;;) {
        ssize_t n = read(fd, buf + off, LUNA_PKI_FILE_MAX + 1 - off);
        if (n < 0 && errno == EINTR)
            continue;
        LUNA_TRY_ENSURE(n >= 0, LUNA_ERR_IO, out);
        if (n == 0)
            break;
        off += (size_t)n;
        LUNA_TRY_ENSURE(off <= LUNA_PKI_FILE_MAX, LUNA_ERR_TOO_LARGE, out);
    }
    buf[off] = '\0';
    *out = buf;
    *out_len = off;
    buf = NULL;
    err = LUNA_OK;
out:
    if (buf != NULL) {
        luna_wipe(buf, LUNA_PKI_FILE_MAX + 1);
        free(buf);
    }
    close(fd);
    return err;
}

static void free_file(char *buf, size_t len)
{
    if (buf != NULL) {
        luna_wipe(buf, len);
        free(buf);
    }
}

/* Writes what a memory BIO holds to path. */
static luna_err write_bio(const char *path, BIO *bio, mode_t mode, bool no_clobber)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    LUNA_ENSURE(len > 0 && data != NULL, LUNA_ERR_CRYPTO);
    return write_atomic(path, (const uint8_t *)data, (size_t)len, mode, no_clobber);
}

/* Only whitespace may follow the one PEM block that was read. */
static luna_err bio_rest_blank(BIO *bio)
{
    char *rest = NULL;
    long n = BIO_get_mem_data(bio, &rest);
    for (long i = 0; i < n && rest != NULL; i++) {
        char c = rest[i];
        if (c != '\n' && c != '\r' && c != ' ' && c != '\t')
            return LUNA_ERR_FORMAT;
    }
    return LUNA_OK;
}

/* ---- certificates ---- */

static luna_err cert_write(const char *path, X509 *cert, bool no_clobber)
{
    luna_err err;
    LUNA_ENSURE(path != NULL && cert != NULL, LUNA_ERR_INVALID_ARG);
    BIO *bio = BIO_new(BIO_s_mem());
    LUNA_ENSURE(bio != NULL, LUNA_ERR_NOMEM);
    LUNA_TRY_ENSURE(PEM_write_bio_X509(bio, cert) == 1, LUNA_ERR_CRYPTO, out);
    LUNA_TRY(write_bio(path, bio, 0644, no_clobber), out);
out:
    BIO_free(bio);
    return err;
}

luna_err luna_pki_write_cert(const char *path, X509 *cert)
{
    return cert_write(path, cert, false);
}

luna_err luna_pki_read_cert(const char *path, X509 **out)
{
    luna_err err;
    char *buf = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    X509 *x = NULL;

    LUNA_ENSURE(out != NULL, LUNA_ERR_INVALID_ARG);
    *out = NULL;
    LUNA_GUARD(read_capped(path, false, &buf, &len));
    bio = BIO_new_mem_buf(buf, (int)len);
    LUNA_TRY_ENSURE(bio != NULL, LUNA_ERR_NOMEM, out);
    x = PEM_read_bio_X509(bio, NULL, no_password_cb, NULL);
    LUNA_TRY_ENSURE(x != NULL, LUNA_ERR_FORMAT, out);
    LUNA_TRY(bio_rest_blank(bio), out);
    *out = x;
    x = NULL;
    err = LUNA_OK;
out:
    X509_free(x);
    BIO_free(bio);
    free_file(buf, len);
    return err;
}

/* ---- private keys ---- */

luna_err luna_pki_write_key(const char *path, EVP_PKEY *key)
{
    luna_err err;
    LUNA_ENSURE(path != NULL && key != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_GUARD(luna_pki_key_is_p256(key));
    /* secmem BIO: its buffer is cleansed when freed. */
    BIO *bio = BIO_new(BIO_s_secmem());
    LUNA_ENSURE(bio != NULL, LUNA_ERR_NOMEM);
    LUNA_TRY_ENSURE(PEM_write_bio_PKCS8PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1,
                    LUNA_ERR_CRYPTO, out);
    LUNA_TRY(write_bio(path, bio, 0600, false), out);
out:
    BIO_free(bio);
    return err;
}

luna_err luna_pki_read_key(const char *path, EVP_PKEY **out)
{
    luna_err err;
    char *buf = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    EVP_PKEY *k = NULL;
    unsigned char *der = NULL;
    long der_len = 0;

    LUNA_ENSURE(out != NULL, LUNA_ERR_INVALID_ARG);
    *out = NULL;
    LUNA_GUARD(read_capped(path, true, &buf, &len));
    bio = BIO_new_mem_buf(buf, (int)len);
    LUNA_TRY_ENSURE(bio != NULL, LUNA_ERR_NOMEM, out);
    /*
     * "PRIVATE KEY" only: no legacy formats, no encrypted ones, no prompt.
     * The secmem variant wipes the decoded DER when it is freed.
     */
    LUNA_TRY_ENSURE(PEM_bytes_read_bio_secmem(&der, &der_len, NULL, PEM_STRING_PKCS8INF, bio,
                                              no_password_cb, NULL) == 1,
                    LUNA_ERR_FORMAT, out);
    LUNA_TRY(bio_rest_blank(bio), out);
    const unsigned char *p = der;
    p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, der_len);
    LUNA_TRY_ENSURE(p8 != NULL && p == der + der_len, LUNA_ERR_FORMAT, out);
    k = EVP_PKCS82PKEY(p8);
    LUNA_TRY_ENSURE(k != NULL, LUNA_ERR_FORMAT, out);
    LUNA_TRY(luna_pki_key_is_p256(k), out);
    *out = k;
    k = NULL;
    err = LUNA_OK;
out:
    EVP_PKEY_free(k);
    PKCS8_PRIV_KEY_INFO_free(p8);
    if (der != NULL)
        OPENSSL_secure_clear_free(der, (size_t)der_len);
    BIO_free(bio);
    free_file(buf, len);
    return err;
}

static luna_err pass_ok(const luna_secret *pass)
{
    LUNA_ENSURE(pass != NULL, LUNA_ERR_INVALID_ARG);
    size_t n = luna_secret_len(pass);
    LUNA_ENSURE(n >= LUNA_PKI_PASSPHRASE_MIN && n <= LUNA_PKI_PASSPHRASE_MAX,
                LUNA_ERR_INVALID_ARG);
    return LUNA_OK;
}

static luna_err key_write_encrypted(const char *path, EVP_PKEY *key, const luna_secret *pass,
                                    bool no_clobber)
{
    luna_err err;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    X509_ALGOR *alg = NULL;
    X509_SIG *sig = NULL;
    BIO *bio = NULL;

    LUNA_ENSURE(path != NULL && key != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_GUARD(pass_ok(pass));
    LUNA_GUARD(luna_pki_key_is_p256(key));
    p8 = EVP_PKEY2PKCS8(key);
    LUNA_TRY_ENSURE(p8 != NULL, LUNA_ERR_CRYPTO, out);
    /* NULL salt and IV: OpenSSL draws 16 random bytes of each. */
    alg = PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), NULL, 16, NULL, PKI_SCRYPT_N, PKI_SCRYPT_R,
                                PKI_SCRYPT_P);
    LUNA_TRY_ENSURE(alg != NULL, LUNA_ERR_CRYPTO, out);
    sig = PKCS8_set0_pbe((const char *)luna_secret_cdata(pass), (int)luna_secret_len(pass), p8,
                         alg);
    LUNA_TRY_ENSURE(sig != NULL, LUNA_ERR_CRYPTO, out);
    alg = NULL; /* owned by sig now */
    bio = BIO_new(BIO_s_secmem());
    LUNA_TRY_ENSURE(bio != NULL, LUNA_ERR_NOMEM, out);
    LUNA_TRY_ENSURE(PEM_write_bio_PKCS8(bio, sig) == 1, LUNA_ERR_CRYPTO, out);
    LUNA_TRY(write_bio(path, bio, 0600, no_clobber), out);
out:
    BIO_free(bio);
    X509_SIG_free(sig);
    X509_ALGOR_free(alg);
    PKCS8_PRIV_KEY_INFO_free(p8);
    return err;
}

luna_err luna_pki_write_key_encrypted(const char *path, EVP_PKEY *key, const luna_secret *pass)
{
    return key_write_encrypted(path, key, pass, false);
}

luna_err luna_pki_read_key_encrypted(const char *path, const luna_secret *pass, EVP_PKEY **out)
{
    luna_err err;
    char *buf = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    X509_SIG *sig = NULL;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    EVP_PKEY *k = NULL;
    const X509_ALGOR *alg = NULL;
    const ASN1_OBJECT *oid = NULL;

    LUNA_ENSURE(out != NULL, LUNA_ERR_INVALID_ARG);
    *out = NULL;
    LUNA_GUARD(pass_ok(pass));
    LUNA_GUARD(read_capped(path, true, &buf, &len));
    bio = BIO_new_mem_buf(buf, (int)len);
    LUNA_TRY_ENSURE(bio != NULL, LUNA_ERR_NOMEM, out);
    /* Only "ENCRYPTED PRIVATE KEY" parses here: a clear key is refused. */
    sig = PEM_read_bio_PKCS8(bio, NULL, no_password_cb, NULL);
    LUNA_TRY_ENSURE(sig != NULL, LUNA_ERR_FORMAT, out);
    LUNA_TRY(bio_rest_blank(bio), out);
    /* PBES2 only: the PKCS#12 PBEs are 3DES/RC2 with a weak KDF. */
    X509_SIG_get0(sig, &alg, NULL);
    LUNA_TRY_ENSURE(alg != NULL, LUNA_ERR_FORMAT, out);
    X509_ALGOR_get0(&oid, NULL, NULL, alg);
    LUNA_TRY_ENSURE(oid != NULL && OBJ_obj2nid(oid) == NID_pbes2, LUNA_ERR_FORMAT, out);
    p8 = PKCS8_decrypt(sig, (const char *)luna_secret_cdata(pass), (int)luna_secret_len(pass));
    LUNA_TRY_ENSURE(p8 != NULL, LUNA_ERR_VERIFY, out);
    k = EVP_PKCS82PKEY(p8);
    LUNA_TRY_ENSURE(k != NULL, LUNA_ERR_FORMAT, out);
    LUNA_TRY(luna_pki_key_is_p256(k), out);
    *out = k;
    k = NULL;
    err = LUNA_OK;
out:
    EVP_PKEY_free(k);
    PKCS8_PRIV_KEY_INFO_free(p8);
    X509_SIG_free(sig);
    BIO_free(bio);
    free_file(buf, len);
    return err;
}

/* ---- the CA folder ---- */

static luna_err ca_path(const char *dir, const char *file, char *out, size_t cap)
{
    LUNA_ENSURE(dir != NULL && dir[0] != '\0', LUNA_ERR_INVALID_ARG);
    int n = snprintf(out, cap, "%s/%s", dir, file);
    LUNA_ENSURE(n > 0 && (size_t)n < cap, LUNA_ERR_INVALID_ARG);
    return LUNA_OK;
}

luna_err luna_pki_ca_save(const luna_pki_ca *ca, const char *dir, const luna_secret *pass)
{
    char key_path[PATH_MAX];
    char cert_path[PATH_MAX];
    struct stat st;

    LUNA_ENSURE(ca != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_GUARD(pass_ok(pass));
    LUNA_GUARD(ca_path(dir, LUNA_PKI_CA_KEY_FILE, key_path, sizeof(key_path)));
    LUNA_GUARD(ca_path(dir, LUNA_PKI_CA_CERT_FILE, cert_path, sizeof(cert_path)));
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return LUNA_ERR_IO;
    /* The key's link() is the real guard; this only avoids a half-made CA. */
    LUNA_ENSURE(lstat(cert_path, &st) != 0 && errno == ENOENT, LUNA_ERR_CONFLICT);
    LUNA_GUARD(key_write_encrypted(key_path, luna_pki_ca_key(ca), pass, true));
    luna_err err = cert_write(cert_path, luna_pki_ca_cert(ca), true);
    if (err != LUNA_OK) {
        /* Ours a moment ago; without its certificate it is unusable. */
        (void)unlink(key_path);
    }
    return err;
}

luna_err luna_pki_ca_load(const char *dir, const luna_secret *pass, luna_pki_ca **out)
{
    char key_path[PATH_MAX];
    char cert_path[PATH_MAX];
    luna_err err;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;

    LUNA_ENSURE(out != NULL, LUNA_ERR_INVALID_ARG);
    *out = NULL;
    LUNA_GUARD(ca_path(dir, LUNA_PKI_CA_KEY_FILE, key_path, sizeof(key_path)));
    LUNA_GUARD(ca_path(dir, LUNA_PKI_CA_CERT_FILE, cert_path, sizeof(cert_path)));
    LUNA_TRY(luna_pki_read_cert(cert_path, &cert), out);
    LUNA_TRY(luna_pki_read_key_encrypted(key_path, pass, &key), out);
    LUNA_TRY(luna_pki_ca_from_parts(cert, key, out), out);
    cert = NULL;
    key = NULL;
out:
    X509_free(cert);
    EVP_PKEY_free(key);
    return err;
}

/* ---- passphrase ---- */

luna_err luna_pki_passphrase_load(const char *file, luna_secret **out)
{
    luna_err err;
    char *buf = NULL;
    size_t len = 0;

    LUNA_ENSURE(out != NULL, LUNA_ERR_INVALID_ARG);
    *out = NULL;
    if (file == NULL) {
        const char *env = getenv(LUNA_PKI_PASSPHRASE_ENV);
        LUNA_ENSURE(env != NULL, LUNA_ERR_NOT_FOUND);
        size_t n = strnlen(env, LUNA_PKI_PASSPHRASE_MAX + 1);
        LUNA_ENSURE(n >= LUNA_PKI_PASSPHRASE_MIN && n <= LUNA_PKI_PASSPHRASE_MAX,
                    LUNA_ERR_INVALID_ARG);
        return luna_secret_from(env, n, out);
    }
    LUNA_GUARD(read_capped(file, true, &buf, &len));
    size_t n = len;
    if (n > 0 && buf[n - 1] == '\n') {
        n--;
        if (n > 0 && buf[n - 1] == '\r')
            n--;
    }
    LUNA_TRY_ENSURE(n >= LUNA_PKI_PASSPHRASE_MIN && n <= LUNA_PKI_PASSPHRASE_MAX,
                    LUNA_ERR_INVALID_ARG, out);
    LUNA_TRY(luna_secret_from(buf, n, out), out);
out:
    free_file(buf, len);
    return err;
}
