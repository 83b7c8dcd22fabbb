/*
 * http_tls.c - the TLS 1.3 mutual-authentication contexts of the HTTP
 * server and client, rebuilt from disk when the certificate files change.
 *
 * Owns the SSL_CTX settings (one place decides them for both sides) and
 * the reload logic.  Must never accept anything below TLS 1.3, never trust
 * any anchor but the platform CA file (and the TEE CA, for lunal://tee/
 * identities only), never resume sessions, and never
 * swap in a context built from files that fail to load, mismatch, or do
 * not chain to the CA: a broken renewal keeps the old context.
 */
#include "http_internal.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "luna/pki.h"

/* Leaf directly under the root (the CA has pathLen 0). */
#define LUNA_HTTP_VERIFY_DEPTH 2

double luna_http_now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0.0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the client's expected peer identity, kept on the SSL ---- */

static pthread_once_t luna_http_ex_once = PTHREAD_ONCE_INIT;
static int luna_http_ex_idx = -1;
static int luna_http_tee_ca_idx = -1; /* SSL_CTX ex data: the TEE CA's X509 */

static void tee_ca_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                        void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    X509_free(ptr);
}

static const char luna_tee_prefix[] = "lunal://tee/";

static bool is_tee_identity(const char *id)
{
    return strncmp(id, luna_tee_prefix, sizeof(luna_tee_prefix) - 1) == 0;
}

/*
 * The anchor rule of docs/protocol.md: with a TEE CA configured, an
 * identity is acceptable only from its own anchor (TEE identities from the
 * TEE CA, every other identity from the platform CA).  root is the top of
 * the verified chain.
 */
static bool anchor_allows(const SSL_CTX *ctx, const X509 *root, const char *id)
{
    const X509 *tee_ca = luna_http_tee_ca_idx >= 0 && ctx != NULL
                             ? SSL_CTX_get_ex_data(ctx, luna_http_tee_ca_idx)
                             : NULL;
    if (tee_ca == NULL)
        return true; /* one anchor: the platform CA vouches for every identity */
    if (root == NULL)
        return false;
    bool from_tee_ca = X509_cmp(root, tee_ca) == 0;
    return from_tee_ca == is_tee_identity(id);
}

static void expected_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                          void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    free(ptr);
}

static void ex_init(void)
{
    luna_http_ex_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, expected_free);
    luna_http_tee_ca_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, tee_ca_free);
}

luna_err luna_http_tls_set_expected(SSL *ssl, const char *identity)
{
    if (ssl == NULL || identity == NULL || !luna_pki_identity_valid(identity))
        return LUNA_ERR_INVALID_ARG;
    if (pthread_once(&luna_http_ex_once, ex_init) != 0 || luna_http_ex_idx < 0)
        return LUNA_ERR_TLS;
    char *copy = strdup(identity);
    if (copy == NULL)
        return LUNA_ERR_NOMEM;
    if (SSL_set_ex_data(ssl, luna_http_ex_idx, copy) != 1) {
        free(copy);
        return LUNA_ERR_TLS;
    }
    return LUNA_OK;
}

/*
 * Runs inside the handshake for each certificate of the server's chain.
 * At the leaf, after OpenSSL accepted the chain, the identity must be the
 * expected one: otherwise the handshake fails and no request is sent.
 */
static int client_verify_cb(int preverify_ok, X509_STORE_CTX *x)
{
    if (preverify_ok != 1)
        return 0;
    if (X509_STORE_CTX_get_error_depth(x) != 0)
        return 1;
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    const char *expected = NULL;
    if (ssl != NULL && luna_http_ex_idx >= 0)
        expected = SSL_get_ex_data(ssl, luna_http_ex_idx);
    X509 *leaf = X509_STORE_CTX_get_current_cert(x);
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(x);
    X509 *root = chain != NULL && sk_X509_num(chain) > 0
                     ? sk_X509_value(chain, sk_X509_num(chain) - 1)
                     : NULL;
    char id[LUNA_PKI_IDENTITY_MAX];
    if (expected == NULL || leaf == NULL ||
        luna_pki_identity_from_cert(leaf, id, sizeof(id)) != LUNA_OK ||
        strcmp(id, expected) != 0 ||
        !anchor_allows(ssl != NULL ? SSL_get_SSL_CTX(ssl) : NULL, root, id)) {
        X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    return 1;
}

luna_err luna_http_tls_peer_identity(SSL *ssl, char *out, size_t out_cap)
{
    if (out == NULL || out_cap == 0)
        return LUNA_ERR_INVALID_ARG;
    out[0] = '\0';
    if (ssl == NULL)
        return LUNA_ERR_UNAUTHENTICATED;
    X509 *peer = SSL_get0_peer_certificate(ssl);
    /* The handshake already enforced this; checked again so a settings slip fails closed. */
    if (peer == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
        return LUNA_ERR_UNAUTHENTICATED;
    if (luna_pki_identity_from_cert(peer, out, out_cap) != LUNA_OK) {
        out[0] = '\0';
        return LUNA_ERR_UNAUTHENTICATED;
    }
    STACK_OF(X509) *chain = SSL_get0_verified_chain(ssl);
    X509 *root = chain != NULL && sk_X509_num(chain) > 0
                     ? sk_X509_value(chain, sk_X509_num(chain) - 1)
                     : NULL;
    if (!anchor_allows(SSL_get_SSL_CTX(ssl), root, out)) {
        out[0] = '\0';
        return LUNA_ERR_UNAUTHENTICATED;
    }
    return LUNA_OK;
}

/* ---- building a context ---- */

/*
 * Every exchange is a few small TLS records each way; with Nagle on, the
 * second record waits for the peer's delayed ACK (~40 ms per exchange on
 * Linux).  The socket is only known once libevent has connected or
 * accepted it, which is when the handshake starts, so the option is set
 * there, for both sides.  Failure (not a TCP socket) changes nothing.
 */
static void nodelay_info_cb(const SSL *ssl, int where, int ret)
{
    (void)ret;
    if ((where & SSL_CB_HANDSHAKE_START) == 0)
        return;
    int fd = SSL_get_fd(ssl);
    int on = 1;
    if (fd >= 0)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

static luna_err build_ctx(luna_http_tls_role role, const luna_http_tls *t, SSL_CTX **out)
{
    luna_err err = LUNA_OK;
    X509 *ca = NULL, *tee_ca = NULL, *leaf = NULL;
    EVP_PKEY *key = NULL;
    SSL_CTX *ctx = NULL;
    *out = NULL;

    if (pthread_once(&luna_http_ex_once, ex_init) != 0 || luna_http_tee_ca_idx < 0)
        return LUNA_ERR_TLS;
    LUNA_TRY(luna_pki_read_cert(t->ca_file, &ca), out);
    if (t->tee_ca_file != NULL)
        LUNA_TRY(luna_pki_read_cert(t->tee_ca_file, &tee_ca), out);
    LUNA_TRY(luna_pki_read_cert(t->cert_file, &leaf), out);
    LUNA_TRY(luna_pki_read_key(t->key_file, &key), out);
    char id[LUNA_PKI_IDENTITY_MAX];
    LUNA_TRY(luna_pki_identity_from_cert(leaf, id, sizeof(id)), out);
    /* Our own certificate must be one a peer will accept right now, from
     * the anchor its identity belongs to. */
    LUNA_TRY(luna_pki_verify(tee_ca != NULL && is_tee_identity(id) ? tee_ca : ca, leaf,
                             (int64_t)time(NULL)),
             out);

    ctx = SSL_CTX_new(role == LUNA_HTTP_TLS_CLIENT ? TLS_client_method() : TLS_server_method());
    LUNA_TRY_ENSURE(ctx != NULL, LUNA_ERR_NOMEM, out);
    LUNA_TRY_ENSURE(SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) == 1 &&
                        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) == 1,
                    LUNA_ERR_TLS, out);
    LUNA_TRY_ENSURE(SSL_CTX_use_certificate(ctx, leaf) == 1, LUNA_ERR_TLS, out);
    LUNA_TRY_ENSURE(SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1,
                    LUNA_ERR_TLS, out);

    /* The platform CA is the only anchor: no default paths are loaded. */
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    LUNA_TRY_ENSURE(store != NULL && X509_STORE_add_cert(store, ca) == 1, LUNA_ERR_TLS, out);
    if (tee_ca != NULL) {
        LUNA_TRY_ENSURE(X509_STORE_add_cert(store, tee_ca) == 1, LUNA_ERR_TLS, out);
        LUNA_TRY_ENSURE(SSL_CTX_set_ex_data(ctx, luna_http_tee_ca_idx, tee_ca) == 1, LUNA_ERR_TLS,
                        out);
        tee_ca = NULL; /* owned by ctx now (freed by tee_ca_free) */
    }
    X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
    LUNA_TRY_ENSURE(param != NULL && X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT) == 1,
                    LUNA_ERR_TLS, out);
    SSL_CTX_set_verify_depth(ctx, LUNA_HTTP_VERIFY_DEPTH);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_info_callback(ctx, nodelay_info_cb);

    if (role == LUNA_HTTP_TLS_SERVER) {
        /* The peer is a client: its certificate must allow clientAuth. */
        LUNA_TRY_ENSURE(SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) == 1, LUNA_ERR_TLS, out);
        LUNA_TRY_ENSURE(SSL_CTX_set_num_tickets(ctx, 0) == 1, LUNA_ERR_TLS, out);
        LUNA_TRY_ENSURE(SSL_CTX_add_client_CA(ctx, ca) == 1, LUNA_ERR_TLS, out);
        X509 *tee_anchor = SSL_CTX_get_ex_data(ctx, luna_http_tee_ca_idx);
        if (tee_anchor != NULL)
            LUNA_TRY_ENSURE(SSL_CTX_add_client_CA(ctx, tee_anchor) == 1, LUNA_ERR_TLS, out);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    } else if (role == LUNA_HTTP_TLS_PUBLIC_SERVER) {
        /* Anonymous clients: no certificate request, no CA list sent. */
        LUNA_TRY_ENSURE(SSL_CTX_set_num_tickets(ctx, 0) == 1, LUNA_ERR_TLS, out);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        LUNA_TRY_ENSURE(SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER) == 1, LUNA_ERR_TLS, out);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, client_verify_cb);
    }
    *out = ctx;
    ctx = NULL;
out:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    EVP_PKEY_free(key);
    X509_free(leaf);
    X509_free(tee_ca);
    X509_free(ca);
    return err;
}

/* ---- file stamps ---- */

static luna_err stamp_file(const char *path, luna_http_file_stamp *s)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return LUNA_ERR_IO;
    memset(s, 0, sizeof(*s));
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->size = st.st_size;
    s->mtime = st.st_mtim;
    return LUNA_OK;
}

static bool stamps_equal(const luna_http_file_stamp *a, const luna_http_file_stamp *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static luna_err stamp_all(const luna_http_tls *t, luna_http_file_stamp st[4])
{
    LUNA_GUARD(stamp_file(t->ca_file, &st[0]));
    LUNA_GUARD(stamp_file(t->cert_file, &st[1]));
    memset(&st[3], 0, sizeof(st[3]));
    if (t->tee_ca_file != NULL)
        LUNA_GUARD(stamp_file(t->tee_ca_file, &st[3]));
    return stamp_file(t->key_file, &st[2]);
}

void luna_http_tls_free(luna_http_tls *t)
{
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    free(t->ca_file);
    free(t->cert_file);
    free(t->key_file);
    free(t->tee_ca_file);
    free(t);
}

luna_err luna_http_tls_new(luna_http_tls_role role, const luna_http_tls_files *files,
                           luna_http_tls **out)
{
    luna_err err;
    if (out == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    if (files == NULL || files->ca_file == NULL || files->cert_file == NULL ||
        files->key_file == NULL ||
        (role != LUNA_HTTP_TLS_SERVER && role != LUNA_HTTP_TLS_CLIENT &&
         role != LUNA_HTTP_TLS_PUBLIC_SERVER))
        return LUNA_ERR_CONFIG;
    luna_http_tls *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return LUNA_ERR_NOMEM;
    t->role = role;
    t->ca_file = strdup(files->ca_file);
    t->cert_file = strdup(files->cert_file);
    t->key_file = strdup(files->key_file);
    if (files->tee_ca_file != NULL)
        t->tee_ca_file = strdup(files->tee_ca_file);
    LUNA_TRY_ENSURE(t->ca_file != NULL && t->cert_file != NULL && t->key_file != NULL &&
                        (files->tee_ca_file == NULL || t->tee_ca_file != NULL),
                    LUNA_ERR_NOMEM, fail);
    LUNA_TRY(stamp_all(t, t->stamps), fail);
    LUNA_TRY(build_ctx(role, t, &t->ctx), fail);
    *out = t;
    return LUNA_OK;
fail:
    luna_http_tls_free(t);
    return err;
}

luna_err luna_http_tls_check(luna_http_tls *t, bool *reloaded)
{
    if (t == NULL || reloaded == NULL)
        return LUNA_ERR_INVALID_ARG;
    *reloaded = false;
    luna_http_file_stamp now[4];
    luna_err err = stamp_all(t, now);
    if (err != LUNA_OK)
        return err; /* a file mid-replacement or gone: keep serving, retry next tick */
    bool same = true, same_failed = t->have_failed;
    for (size_t i = 0; i < 4; i++) {
        same = same && stamps_equal(&now[i], &t->stamps[i]);
        same_failed = same_failed && stamps_equal(&now[i], &t->failed[i]);
    }
    /* Unchanged, or exactly the files that already failed: nothing to try. */
    if (same || same_failed)
        return LUNA_OK;
    SSL_CTX *fresh = NULL;
    err = build_ctx(t->role, t, &fresh);
    if (err != LUNA_OK) {
        memcpy(t->failed, now, sizeof(t->failed));
        t->have_failed = true;
        return err;
    }
    /* Live connections hold their own reference to the old context. */
    SSL_CTX_free(t->ctx);
    t->ctx = fresh;
    memcpy(t->stamps, now, sizeof(t->stamps));
    t->have_failed = false;
    *reloaded = true;
    return LUNA_OK;
}
