/*
 * luna/pki.h - the platform CA: transport identities, the certificate
 * profile, issuance, and the key and certificate files (docs/pki.md).
 *
 * Identity.  Every component certificate carries exactly one URI
 * subjectAltName with the scheme lunal://, one of
 *     lunal://svc/<name>                   name      [a-z0-9-]{1,32}
 *     lunal://tee/<tee-id>                 tee-id    [a-z0-9_-]{1,64}
 *     lunal://client/<tenant>/<principal>  each      [a-z0-9_-]{1,64}
 * nothing else (no port, query, fragment, percent-encoding, upper case or
 * trailing slash).  The certificate subject is informational only; the
 * URI SAN is the one thing an access decision may read.
 *
 * Ownership.  X509 and EVP_PKEY objects returned through an out pointer
 * belong to the caller (X509_free / EVP_PKEY_free).  Objects passed in are
 * borrowed and never freed or modified, except where stated.
 *
 * Thread safety.  Every function may be called from any thread; a
 * luna_pki_ca may be shared between threads for issuance (it is read-only
 * after load) but must not be freed while in use.  Nothing here logs, and
 * no error path ever carries a passphrase or key byte.
 */
#ifndef LUNA_PKI_H
#define LUNA_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "luna/err.h"
#include "luna/secret.h"

/* Buffer size (with the NUL) that holds any well-formed identity. */
#define LUNA_PKI_IDENTITY_MAX 160
#define LUNA_PKI_SVC_NAME_MAX 32
#define LUNA_PKI_ID_SEGMENT_MAX 64

/* Leaf validity: default, and the longest the library will sign. */
#define LUNA_PKI_DEFAULT_HOURS 24u
#define LUNA_PKI_MAX_HOURS (24u * 90u)
/* Default leaf not_before is this many seconds in the past (clock skew). */
#define LUNA_PKI_BACKDATE_SECONDS 300
/* CA validity: default and maximum, in days. */
#define LUNA_PKI_CA_DEFAULT_DAYS 1825u
#define LUNA_PKI_CA_MAX_DAYS 7300u

/* Size caps of the files this module reads. */
#define LUNA_PKI_FILE_MAX (64u * 1024u)
#define LUNA_PKI_PASSPHRASE_MIN 8u
#define LUNA_PKI_PASSPHRASE_MAX 1024u
/* Environment variable the CA passphrase may come from. */
#define LUNA_PKI_PASSPHRASE_ENV "LUNA_CA_PASSPHRASE"

/* File names inside a CA folder. */
#define LUNA_PKI_CA_KEY_FILE "ca.key"
#define LUNA_PKI_CA_CERT_FILE "ca.crt"

/* ---- identities ---- */

/* True when id is a NUL-terminated, well-formed identity (grammar above). */
bool luna_pki_identity_valid(const char *id);

/*
 * Extracts the identity of cert: the one URI SAN whose scheme is lunal
 * (compared case-insensitively, so "LUNAL://..." counts and then fails the
 * grammar).  DNS, IP and non-lunal URI SANs are ignored.  LUNA_ERR_FORMAT
 * when there is no SAN, no lunal URI, more than one lunal URI, a malformed
 * one (grammar, embedded NUL, overlong), or duplicate SAN extensions.
 * LUNA_ERR_TOO_LARGE when the identity does not fit out_cap (size
 * LUNA_PKI_IDENTITY_MAX always fits).  On any error out is "" (when
 * out_cap > 0).  Does NOT verify the certificate: call it on a peer
 * certificate only after the TLS stack has verified the chain.
 */
luna_err luna_pki_identity_from_cert(X509 *cert, char *out, size_t out_cap) LUNA_MUST_CHECK;

/* ---- keys ---- */

/* Generates an ECDSA P-256 key pair (the only TLS key type issued). */
luna_err luna_pki_keygen(EVP_PKEY **out) LUNA_MUST_CHECK;

/*
 * Parses a DER SubjectPublicKeyInfo holding a P-256 public key (how a TEE
 * hands over its TLS key for issuance).  LUNA_ERR_FORMAT for bad DER or
 * trailing bytes, LUNA_ERR_UNSUPPORTED for another key type or curve.
 */
luna_err luna_pki_pubkey_from_der(const uint8_t *der, size_t len, EVP_PKEY **out) LUNA_MUST_CHECK;

/* ---- the CA ---- */

typedef struct luna_pki_ca luna_pki_ca;

/*
 * Creates a new root: fresh P-256 key, self-signed X.509 v3 certificate
 * "O=Lunal, CN=Lunal Platform CA", basicConstraints CA:TRUE pathlen:0
 * (critical), keyUsage keyCertSign+cRLSign (critical), SKI and AKI.
 * days in 1..LUNA_PKI_CA_MAX_DAYS, else LUNA_ERR_INVALID_ARG.
 */
luna_err luna_pki_ca_create(uint32_t days, luna_pki_ca **out) LUNA_MUST_CHECK;

/*
 * Writes dir/ca.key (encrypted PKCS#8 PEM, scrypt + AES-256-CBC, mode 0600)
 * and dir/ca.crt (PEM, 0644), each atomically.  dir is created (0700) when
 * absent.  LUNA_ERR_CONFLICT when either file already exists: a CA is
 * never overwritten.  pass: LUNA_PKI_PASSPHRASE_MIN..MAX bytes.
 */
luna_err luna_pki_ca_save(const luna_pki_ca *ca, const char *dir, const luna_secret *pass) LUNA_MUST_CHECK;

/*
 * Loads dir/ca.key and dir/ca.crt.  Refuses (LUNA_ERR_FORMAT) a key that is
 * not encrypted PKCS#8 with PBES2; LUNA_ERR_VERIFY for a wrong passphrase;
 * LUNA_ERR_PERMISSION when ca.key is readable by group or others;
 * LUNA_ERR_VERIFY when the key does not match the certificate;
 * LUNA_ERR_FORMAT when the certificate is not a CA certificate.
 */
luna_err luna_pki_ca_load(const char *dir, const luna_secret *pass, luna_pki_ca **out) LUNA_MUST_CHECK;

/* The CA certificate, borrowed (valid until luna_pki_ca_free). */
X509 *luna_pki_ca_cert(const luna_pki_ca *ca);

/* Frees the CA and wipes its key; NULL is a no-op. */
void luna_pki_ca_free(luna_pki_ca *ca);

/* ---- issuance ---- */

/*
 * Signs a leaf certificate for the public half of pub (a P-256 key; any
 * private half is ignored) naming identity, valid from not_before to
 * not_after (Unix seconds, inclusive, as X.509 has it).  Profile: v3,
 * 16-byte random serial, basicConstraints CA:FALSE (critical), keyUsage
 * digitalSignature (critical), extendedKeyUsage serverAuth+clientAuth,
 * SAN = URI:identity, DNS:localhost, IP:127.0.0.1, SKI, AKI, ECDSA-SHA256.
 * LUNA_ERR_INVALID_ARG for a malformed identity, not_before >= not_after, a
 * lifetime over LUNA_PKI_MAX_HOURS, or not_after beyond the CA's own
 * not_after.  Times in the past are allowed (tests issue expired
 * certificates on purpose).
 */
luna_err luna_pki_issue(const luna_pki_ca *ca, EVP_PKEY *pub, const char *identity,
                        int64_t not_before, int64_t not_after, X509 **out) LUNA_MUST_CHECK;

/*
 * The validity window for hours (1..LUNA_PKI_MAX_HOURS) from now:
 * not_before = now - LUNA_PKI_BACKDATE_SECONDS, not_after = now + hours.
 */
luna_err luna_pki_validity_hours(uint32_t hours, int64_t *not_before,
                                 int64_t *not_after) LUNA_MUST_CHECK;

/*
 * Verifies that leaf chains to ca_cert (the only trust anchor, no other
 * store) for TLS client and server use, at time at (Unix seconds).
 * LUNA_ERR_EXPIRED when the only fault is the validity window;
 * LUNA_ERR_VERIFY for anything else.
 */
luna_err luna_pki_verify(X509 *ca_cert, X509 *leaf, int64_t at) LUNA_MUST_CHECK;

/* Validity of cert as Unix seconds. */
luna_err luna_pki_cert_times(X509 *cert, int64_t *not_before, int64_t *not_after) LUNA_MUST_CHECK;

/* ---- files ----
 * Writers are atomic: a temporary file in the same folder is written,
 * fsync'ed, given its final mode, renamed over the target, and the folder
 * fsync'ed; a crash leaves the old file or the new one, never a mix.
 * Readers refuse files over LUNA_PKI_FILE_MAX and non-regular files.
 */

/* Writes cert as PEM, mode 0644. */
luna_err luna_pki_write_cert(const char *path, X509 *cert) LUNA_MUST_CHECK;
/* Reads one PEM certificate (trailing data after it is refused). */
luna_err luna_pki_read_cert(const char *path, X509 **out) LUNA_MUST_CHECK;

/*
 * Writes a TLS private key as unencrypted PKCS#8 PEM, mode 0600 (a service
 * must start unattended; the file mode is what protects it).
 */
luna_err luna_pki_write_key(const char *path, EVP_PKEY *key) LUNA_MUST_CHECK;
/*
 * Reads an unencrypted PKCS#8 P-256 private key.  LUNA_ERR_PERMISSION when
 * the file is readable by group or others; LUNA_ERR_FORMAT otherwise bad.
 */
luna_err luna_pki_read_key(const char *path, EVP_PKEY **out) LUNA_MUST_CHECK;

/* Writes key as encrypted PKCS#8 PEM (scrypt N=2^14 r=8 p=1, AES-256-CBC), 0600. */
luna_err luna_pki_write_key_encrypted(const char *path, EVP_PKEY *key,
                                      const luna_secret *pass) LUNA_MUST_CHECK;
/* Reads an encrypted PKCS#8 key; errors as luna_pki_ca_load. */
luna_err luna_pki_read_key_encrypted(const char *path, const luna_secret *pass,
                                     EVP_PKEY **out) LUNA_MUST_CHECK;

/*
 * Reads the CA passphrase from file (when not NULL) or else from the
 * environment variable LUNA_PKI_PASSPHRASE_ENV.  One trailing "\n" or
 * "\r\n" of a file is dropped.  LUNA_ERR_NOT_FOUND when neither is given,
 * LUNA_ERR_PERMISSION when the file is accessible by group or others,
 * LUNA_ERR_INVALID_ARG for a length outside MIN..MAX.  *out is a
 * luna_secret the caller frees.
 */
luna_err luna_pki_passphrase_load(const char *file, luna_secret **out) LUNA_MUST_CHECK;

#endif
