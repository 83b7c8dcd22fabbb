/*
 * hsm_client.h - the KMS's handle on its HSM process (docs/kms-hsm.md).
 *
 * The network-facing KMS never loads a PKCS#11 module, never reads the PIN
 * and never holds a key handle.  It starts luna-kms-hsm (fork+exec, a
 * separate address space it can kill and restart), hands it
 * one end of a SOCK_SEQPACKET socketpair, and asks it for key operations
 * with the typed messages of hsm_ipc.h.  What it holds are wrapped blobs
 * (safe to store anywhere) and, for data keys it must itself use (HPKE to a
 * client or TEE), the plaintext data key for the duration of that use.
 *
 * Failure behaviour (every operation):
 *   - the HSM process gone (EOF, EPIPE), hung (no reply within
 *     request_timeout_ms), or answering with a malformed message, or the
 *     token reporting a device/session error: the call returns
 *     LUNA_ERR_UNAVAILABLE, the process is killed and reaped, and the NEXT
 *     call restarts it once a backoff delay has passed (backoff_min_ms,
 *     doubling up to backoff_max_ms, reset by a successful start).  Before
 *     that delay calls fail fast with LUNA_ERR_UNAVAILABLE.  A request is
 *     never retried behind the caller's back and there is no software
 *     fallback of any kind.
 *   - a start that fails reports the HSM's reason: LUNA_ERR_UNAUTHENTICATED
 *     (wrong PIN), LUNA_ERR_CONFIG (module or token absent, root or MAC key
 *     with wrong attributes: the KMS must refuse to run), LUNA_ERR_CONFLICT
 *     (two keys under one label), LUNA_ERR_PERMISSION (PIN file readable by
 *     others or not ours); LUNA_ERR_UNAVAILABLE if it could not be spawned.
 *   - the token refusing the input: LUNA_ERR_VERIFY (tampered wrapped blob,
 *     sealed blob or AAD; MAC mismatch).  The channel stays up.
 * Every failure is logged (component "kms", stable error names, CK_RV
 * numbers); never the PIN, a key or a plaintext.
 *
 * Process identity (H2 of the security review, docs/kms-hsm.md):
 *   - KMS running as root (euid 0): the HSM process runs as hsm_user
 *     (default "lunal-hsm"; a name or a decimal uid), with that user's
 *     primary gid and NO supplementary groups; the switch happens in the
 *     forked child before exec, so the HSM binary never runs as root.  The
 *     PIN file must be owned by that uid (mode 0600) and the token folder
 *     readable by that uid only.  A user that does not exist, or resolves
 *     to uid 0 or gid 0: LUNA_ERR_CONFIG.  In production the network-facing
 *     KMS itself must never run as that uid (and should shed root after
 *     start: a root process reads every file, see the doc).
 *   - KMS not root: the HSM process keeps the KMS's uid, which can read
 *     the PIN and use the token itself; luna_hsm_client_new logs a warning.
 *     hsm_user naming another uid is then LUNA_ERR_CONFIG.
 *   - Environment: the HSM process gets only the variables named by
 *     env_keep (default: SOFTHSM2_CONF), with the values they had when
 *     luna_hsm_client_new ran; names starting with "LD_" are refused.
 *   - The HSM process is told the KMS's pid and refuses to start unless
 *     that is its parent; it dies (PR_SET_PDEATHSIG) when the THREAD that
 *     spawned it exits.  So luna_hsm_client_new and every call that may
 *     restart the process must run on long-lived threads (the event loop),
 *     never on a short-lived worker.
 *
 * Thread safety: all calls on one client are serialized by its mutex; one
 * request is in flight at a time.  The client ignores no signal itself: a
 * daemon using it must ignore SIGPIPE or rely on the MSG_NOSIGNAL sends here.
 */
#ifndef LUNA_KMS_HSM_CLIENT_H
#define LUNA_KMS_HSM_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hsm_ipc.h"
#include "luna/err.h"

typedef struct luna_hsm_config {
    const char *hsm_path;    /* absolute path of luna-kms-hsm; NULL: built-in default */
    const char *module_path; /* absolute path of the PKCS#11 module */
    const char *token_label; /* 1..32 bytes */
    const char *pin_file;    /* absolute path, mode 0600 or stricter, owned by the HSM's uid */
    const char *root_label;  /* NULL: "luna-kms-root" */
    const char *mac_label;   /* NULL: "luna-kms-registry-mac" */
    uint32_t request_timeout_ms; /* 0: 5000 */
    uint32_t start_timeout_ms;   /* 0: 10000 */
    uint32_t backoff_min_ms;     /* 0: 100 */
    uint32_t backoff_max_ms;     /* 0: 10000; never below backoff_min_ms */
    const char *hsm_user;        /* used when the KMS is root; NULL: "lunal-hsm" */
    const char *const *env_keep; /* NULL-terminated names; NULL: {"SOFTHSM2_CONF"} */
} luna_hsm_config;

typedef struct luna_hsm_client luna_hsm_client;

/*
 * Copies cfg (strings included; hsm_user resolved and env_keep's values
 * captured now), starts the HSM process and waits for its READY: the
 * token is open, the root and MAC keys exist (created if absent)
 * and their attributes were checked.  Returns the start error above and no
 * client when that fails: a KMS must not run without its root.
 */
luna_err luna_hsm_client_new(const luna_hsm_config *cfg, luna_hsm_client **out) LUNA_MUST_CHECK;
/* Closes the channel, lets the HSM process exit (SIGKILL after 2 s), reaps it. */
void luna_hsm_client_free(luna_hsm_client *c);

luna_err luna_hsm_client_ping(luna_hsm_client *c) LUNA_MUST_CHECK;
/* Re-reads the root and MAC key attributes in the token; LUNA_ERR_CONFIG if wrong now. */
luna_err luna_hsm_client_check_root(luna_hsm_client *c) LUNA_MUST_CHECK;

/*
 * A fresh AES-256 key-encryption key, generated in the token and returned
 * only wrapped under the root (RFC 5649, CKM_AES_KEY_WRAP_PAD): exactly
 * LUNA_HSM_WRAPPED_LEN bytes into wrapped.  Its plaintext never leaves the
 * token.
 */
luna_err luna_hsm_client_gen_kek(luna_hsm_client *c,
                                 uint8_t wrapped[LUNA_HSM_WRAPPED_LEN]) LUNA_MUST_CHECK;

/*
 * AES-256-GCM under the KEK `wrapped`, inside the token.  seal: pt_len in
 * 1..LUNA_HSM_SEAL_MAX, aad_len <= LUNA_HSM_AAD_MAX (aad may be NULL when
 * 0); writes nonce || ct || tag, pt_len + LUNA_HSM_SEAL_OVERHEAD bytes,
 * into out (out_cap at least that).  open: the inverse, writes
 * sealed_len - LUNA_HSM_SEAL_OVERHEAD bytes; LUNA_ERR_VERIFY when the KEK,
 * the sealed bytes or the AAD were altered.  *out_len is set on success.
 */
luna_err luna_hsm_client_seal(luna_hsm_client *c, const uint8_t wrapped[LUNA_HSM_WRAPPED_LEN],
                              const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                              size_t pt_len, uint8_t *out, size_t out_cap,
                              size_t *out_len) LUNA_MUST_CHECK;
luna_err luna_hsm_client_open(luna_hsm_client *c, const uint8_t wrapped[LUNA_HSM_WRAPPED_LEN],
                              const uint8_t *aad, size_t aad_len, const uint8_t *sealed,
                              size_t sealed_len, uint8_t *out, size_t out_cap,
                              size_t *out_len) LUNA_MUST_CHECK;

/*
 * A fresh 32-byte data key (a one-time key, an object key) from the
 * token's generator: key receives it (the caller wipes it after use) and
 * sealed receives seal(KEK, aad, key), the only form to store.  Recover it
 * later with luna_hsm_client_open(wrapped, aad, sealed, ...).
 */
luna_err luna_hsm_client_gen_data_key(luna_hsm_client *c,
                                      const uint8_t wrapped[LUNA_HSM_WRAPPED_LEN],
                                      const uint8_t *aad, size_t aad_len,
                                      uint8_t key[LUNA_HSM_KEY_LEN],
                                      uint8_t sealed[LUNA_HSM_SEALED_KEY_LEN]) LUNA_MUST_CHECK;

/*
 * HMAC-SHA256 under the token's registry MAC key; len <= LUNA_HSM_MAC_MSG_MAX.
 * verify: LUNA_OK when tag matches (compared in constant time in the HSM
 * process), LUNA_ERR_VERIFY otherwise.
 */
luna_err luna_hsm_client_mac(luna_hsm_client *c, const uint8_t *msg, size_t len,
                             uint8_t tag[LUNA_HSM_MAC_LEN]) LUNA_MUST_CHECK;
luna_err luna_hsm_client_mac_verify(luna_hsm_client *c, const uint8_t *msg, size_t len,
                                    const uint8_t tag[LUNA_HSM_MAC_LEN]) LUNA_MUST_CHECK;

/* The running HSM process id, or 0 while it is down (monitoring, tests). */
pid_t luna_hsm_client_pid(luna_hsm_client *c);

#ifdef LUNA_TESTING
/*
 * Test hook: sends len raw bytes as one datagram (no validation) and waits
 * for a reply like any request; returns what a request would (a sibling
 * that dies on it gives LUNA_ERR_UNAVAILABLE).  *exit_status receives the
 * HSM process's wait status when it was reaped by this call, else -1.
 */
luna_err luna_hsm_client_test_send_raw(luna_hsm_client *c, const uint8_t *msg, size_t len,
                                       int *exit_status) LUNA_MUST_CHECK;
#endif

#endif
