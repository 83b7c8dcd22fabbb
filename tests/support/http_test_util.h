/*
 * http_test_util.h - what the HTTP e2e and attack tests share: a temp
 * folder with a platform CA made by the real luna-ca tool, certificates
 * issued by it, the test server process started on an ephemeral port, and
 * a raw OpenSSL client that reports exactly what came back (so refusal
 * tests never depend on luna's own client refusing).  Every wait here is
 * bounded.
 */
#ifndef LUNA_HTTP_TEST_UTIL_H
#define LUNA_HTTP_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "luna/http.h"

#define HTU_PATH_MAX 512

typedef struct htu_env {
    char dir[HTU_PATH_MAX];    /* temp folder, removed by htu_teardown */
    char ca_dir[HTU_PATH_MAX]; /* the platform CA */
    char ca_crt[HTU_PATH_MAX];
} htu_env;

typedef struct htu_server {
    pid_t pid;
    uint16_t port;
} htu_server;

/* Monotonic clock in milliseconds. */
long htu_now_ms(void);
/* A loopback port the kernel just handed out and released (tiny reuse race). */
unsigned htu_free_port(void);
/*
 * Reads the "PORT n" line a server process prints on fd, waiting at most
 * timeout_ms.  Returns n, or 0 when no well-formed line came in time.
 */
unsigned htu_read_port(int fd, int timeout_ms);

/* Creates the folder and the platform CA; aborts the test on failure. */
void htu_setup(htu_env *env);
void htu_teardown(htu_env *env);

/* Runs argv (bounded to 30 s); returns the exit status or -1. */
int htu_run(char *const argv[]);

/*
 * Issues dir/<name>.crt and dir/<name>.key for identity with the CA of
 * ca_dir (NULL = the platform CA); extra: NULL or "--not-before" style
 * arguments ending in NULL.  Returns the luna-ca exit status.
 */
int htu_issue(const htu_env *env, const char *ca_dir, const char *identity, const char *name,
              const char *const *extra);
/* Renews dir/<name>.crt with the platform CA. */
int htu_renew(const htu_env *env, const char *name);
/* Path of dir/<name><suffix> into out. */
void htu_path(const htu_env *env, const char *name, const char *suffix, char *out, size_t cap);

/*
 * Starts the test server with the certificate <name>; extra arguments
 * (NULL-terminated, may be NULL) are passed through.  Waits at most 10 s
 * for its port; aborts the test on failure.  Its stderr goes to
 * dir/server.log.
 */
void htu_server_start(const htu_env *env, const char *name, const char *const *extra,
                      htu_server *srv);
/* Sends sig, waits at most timeout_ms; returns the exit code, or -1 (killed). */
int htu_server_stop(htu_server *srv, int sig, int timeout_ms);

/* A raw client context: TLS versions [min, max]; cert NULL = none. */
SSL_CTX *htu_client_ctx(const htu_env *env, const char *cert_name, const char *ca_file,
                        int min_version, int max_version);

typedef struct htu_raw {
    bool connected;       /* TCP connected */
    bool handshake_ok;    /* SSL_connect returned 1 (TLS only) */
    size_t n;             /* response bytes received */
    char buf[16384];      /* NUL-terminated */
    char serial[80];      /* server certificate serial (hex), TLS only */
} htu_raw;

/*
 * Connects to 127.0.0.1:port, TLS with ctx (NULL = plain TCP), writes req
 * and reads until EOF, error, or timeout_ms.
 */
void htu_raw_exchange(uint16_t port, SSL_CTX *ctx, const char *req, size_t req_len,
                      int timeout_ms, htu_raw *out);
/* 1 when the response starts with an HTTP status line; writes the status. */
bool htu_raw_status(const htu_raw *r, int *status);
/* The body (after the blank line) or NULL. */
const char *htu_raw_body(const htu_raw *r);
/* A response header value (copied into out), case-insensitive name. */
bool htu_raw_header(const htu_raw *r, const char *name, char *out, size_t cap);

/* Client options for luna_http_fetch with certificate <name>. */
void htu_client_opts(const htu_env *env, const char *name, uint16_t port, const char *expected,
                     luna_http_client_opts *o, char paths[3][HTU_PATH_MAX]);

#endif
