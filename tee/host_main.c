/*
 * host_main.c - luna-tee-host, the SIMULATED TEE platform
 * (lunal://svc/tee-host; INSECURE, development only; docs/tee.md), or,
 * with tee_host.platform "tpm", a host whose evidence is a TPM 2.0 quote
 * of its own measurement of the runtime (docs/tpm-live.md).
 *
 *   luna-tee-host init-platform --dir DIR [--tcb-level N]
 *   luna-tee-host measure --runtime FILE --bundle FILE --config FILE
 *   luna-tee-host run --config FILE
 *
 * `run` starts each configured TEE runtime (fork + exec) with a private
 * SOCK_SEQPACKET socketpair, measures it from outside through /proc (the
 * executable it maps, the bundle it mapped, the config it was handed),
 * signs evidence for it on request, relays its admission to the
 * attestation service, and publishes the TCB collateral over mTLS.
 * It must never measure a path on disk for a live runtime, never sign
 * for a runtime it did not measure, and never hand a runtime anything but
 * its own evidence and certificate.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "host.h"
#include "host_tpm.h"
#include "ipc.h"
#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/http.h"
#include "luna/json.h"
#include "luna/log.h"
#include "luna/manifest.h"
#include "luna/secret.h"
#include "measure.h"
#include "tee_config.h"

#define COMPONENT "tee-host"
#define HOST_IDENTITY "lunal://svc/tee-host"
#define ATT_IDENTITY "lunal://svc/attestation"
#define RUNTIME_FD 3
#define ADMIT_LABEL "lunal admit v1"
#define VENDOR_PEM_MAX (16u * 1024u)

typedef enum tee_state { TEE_STARTING, TEE_MEASURED, TEE_ADMITTED, TEE_EXITED } tee_state;

typedef struct host_ctx host_ctx;

typedef struct host_tee {
    host_ctx *ctx;
    const host_tee_settings *ts;
    pid_t pid;
    int fd;
    struct event *ev;
    uint8_t *config;
    size_t config_len;
    uint8_t config_hash[32]; /* of the parsed config the runtime gets (measure.h) */
    uint8_t signer[32];
    bool loaded;
    uint64_t bundle_addr;
    uint8_t mr_enclave[32];
    uint16_t port;
    tee_state state;
} host_tee;

struct host_ctx {
    host_settings s;
    host_platform *platform; /* platform "sim" */
    host_tpm *tpm;           /* platform "tpm" */
    struct event_base *base;
    luna_http_server *srv;
    host_tee tees[HOST_MAX_TEES];
    uint8_t rx[LUNA_TEE_IPC_MAX];
    char vendor_pem[VENDOR_PEM_MAX];
    size_t vendor_pem_len;
};

static const char *state_name(tee_state s)
{
    switch (s) {
    case TEE_STARTING: return "starting";
    case TEE_MEASURED: return "measured";
    case TEE_ADMITTED: return "admitted";
    case TEE_EXITED: return "exited";
    }
    return "unknown";
}

static void hex32(const uint8_t b[32], char out[65])
{
    if (luna_hex_encode(b, 32, out, 65) != LUNA_OK)
        out[0] = '\0';
}

static luna_err read_small_file(const char *path, size_t cap, uint8_t **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? LUNA_ERR_NOT_FOUND : LUNA_ERR_IO;
    struct stat st;
    luna_err err = LUNA_OK;
    uint8_t *buf = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        err = LUNA_ERR_IO;
    } else if (st.st_size < 1 || (uint64_t)st.st_size > cap) {
        err = LUNA_ERR_TOO_LARGE;
    } else if ((buf = malloc((size_t)st.st_size)) == NULL) {
        err = LUNA_ERR_NOMEM;
    }
    for (size_t got = 0; err == LUNA_OK && got < (size_t)st.st_size;) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            err = LUNA_ERR_IO; /* shrank under us */
        else
            got += (size_t)n;
    }
    close(fd);
    if (err != LUNA_OK) {
        free(buf);
        return err;
    }
    *out = buf;
    *len = (size_t)st.st_size;
    return LUNA_OK;
}

/* ---- measurement ---- */

static luna_err measure_now(const host_tee *t, uint8_t mr[32])
{
    uint8_t exe[32], bundle[32];
    if (!t->loaded)
        return LUNA_ERR_UNAVAILABLE;
    LUNA_GUARD(luna_tee_measure_exe(t->pid, exe));
    LUNA_GUARD(luna_tee_measure_mapping(t->pid, t->bundle_addr, bundle));
    return luna_tee_mr_enclave(exe, bundle, t->config_hash, mr);
}

static luna_err evidence_for(host_tee *t, const uint8_t nonce[32], const uint8_t x25519[32],
                             const uint8_t ed25519[32], uint64_t arena, uint64_t arena_len,
                             uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t mr[32], mem[32];
    LUNA_GUARD(measure_now(t, mr));
    LUNA_GUARD(luna_tee_memory_digest(t->pid, arena, arena_len, mem));
    if (!luna_ct_equal(mr, t->mr_enclave, 32)) {
        char h[65];
        hex32(mr, h);
        LUNA_LOGF(LUNA_LOG_WARN, COMPONENT, "runtime measurement changed",
                  LUNA_LOG_STR("tee_id", t->ts->id), LUNA_LOG_STR("mr_enclave", h));
        memcpy(t->mr_enclave, mr, 32);
    }
    host_evidence_in in = {mr, t->signer, x25519, ed25519, nonce, mem, t->ctx->s.debug};
    if (t->ctx->tpm != NULL)
        return host_platform_tpm_evidence(t->ctx->tpm, &in, out, cap, out_len);
    return host_platform_sign(t->ctx->platform, &in, out, cap, out_len);
}

/* ---- admission relay ---- */

static void client_opts(const host_ctx *c, luna_http_client_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->tls.ca_file = c->s.tls_ca;
    o->tls.cert_file = c->s.tls_cert;
    o->tls.key_file = c->s.tls_key;
    o->host = c->s.att_host;
    o->port = c->s.att_port;
    o->expected_identity = ATT_IDENTITY;
    o->timeout_sec = 20;
}

static luna_err att_post(const host_ctx *c, const char *path, json_t *body, json_t **ans)
{
    luna_http_client_opts o;
    luna_http_result res;
    char *text = json_dumps(body, JSON_COMPACT);
    if (text == NULL)
        return LUNA_ERR_NOMEM;
    client_opts(c, &o);
    memset(&res, 0, sizeof(res));
    luna_err err = luna_http_fetch(&o, "POST", path, "application/json", text, strlen(text), &res);
    free(text);
    if (err != LUNA_OK)
        return LUNA_ERR_UNAVAILABLE;
    if (res.status != 200) {
        LUNA_LOGF(LUNA_LOG_WARN, COMPONENT, "attestation refused", LUNA_LOG_STR("path", path),
                  LUNA_LOG_INT("status", res.status));
        luna_http_result_free(&res);
        return res.status == 503 ? LUNA_ERR_UNAVAILABLE : LUNA_ERR_PERMISSION;
    }
    json_error_t jerr;
    *ans = json_loadb((const char *)res.body, res.body_len, JSON_REJECT_DUPLICATES, &jerr);
    luna_http_result_free(&res);
    return *ans != NULL && json_is_object(*ans) ? LUNA_OK : LUNA_ERR_FORMAT;
}

static luna_err b64_into(json_t *obj, const char *key, const uint8_t *b, size_t n)
{
    size_t cap = LUNA_B64URL_ENC_LEN(n);
    char *s = malloc(cap);
    if (s == NULL)
        return LUNA_ERR_NOMEM;
    luna_err err = luna_b64url_encode(b, n, s, cap);
    if (err == LUNA_OK && json_object_set_new(obj, key, json_string(s)) != 0)
        err = LUNA_ERR_NOMEM;
    free(s);
    return err;
}

static luna_err admit(host_tee *t, const luna_tee_msg *m, char **cert, char **report)
{
    host_ctx *c = t->ctx;
    json_t *req = NULL, *ans = NULL;
    uint8_t challenge[32], nonce[32], ev[HOST_EVIDENCE_MAX];
    uint8_t buf[sizeof(ADMIT_LABEL) - 1 + 32 + 32];
    size_t ev_len, n;
    char address[80];
    const char *s;
    luna_err err;

    if (!c->s.has_attestation)
        return LUNA_ERR_UNAVAILABLE;
    /* 1. A challenge from the attestation service, single use, for this TEE. */
    req = json_pack("{s:s}", "tee_id", t->ts->id);
    LUNA_TRY_ENSURE(req != NULL, LUNA_ERR_NOMEM, out);
    LUNA_TRY(att_post(c, "/v1/attestation/admit/challenge", req, &ans), out);
    LUNA_TRY(luna_json_get_b64url(ans, "nonce", challenge, sizeof(challenge), &n), out);
    LUNA_TRY_ENSURE(n == sizeof(challenge), LUNA_ERR_FORMAT, out);
    json_decref(req);
    json_decref(ans);
    req = ans = NULL;
    /* 2. Evidence over SHA-256("lunal admit v1" || challenge || SHA-256(tls_spki)),
       so the admission also binds the TLS key the certificate will name. */
    memcpy(buf, ADMIT_LABEL, sizeof(ADMIT_LABEL) - 1);
    memcpy(buf + sizeof(ADMIT_LABEL) - 1, challenge, 32);
    LUNA_TRY(luna_sha256(m->spki, m->spki_len, buf + sizeof(ADMIT_LABEL) - 1 + 32), out);
    LUNA_TRY(luna_sha256(buf, sizeof(buf), nonce), out);
    LUNA_TRY(evidence_for(t, nonce, m->x25519, m->ed25519, m->arena_addr, m->arena_len, ev,
                          sizeof(ev), &ev_len),
             out);
    /* 3. Admission. */
    snprintf(address, sizeof(address), "127.0.0.1:%u", (unsigned)m->port);
    req = json_pack("{s:s, s:s, s:s}", "tee_id", t->ts->id, "evidence_type",
                    c->tpm != NULL ? "tpm" : "sim", "address", address);
    LUNA_TRY_ENSURE(req != NULL, LUNA_ERR_NOMEM, out);
    LUNA_TRY(b64_into(req, "evidence", ev, ev_len), out);
    LUNA_TRY(b64_into(req, "tls_spki", m->spki, m->spki_len), out);
    LUNA_TRY(b64_into(req, "nonce", challenge, sizeof(challenge)), out);
    LUNA_TRY(att_post(c, "/v1/attestation/admit", req, &ans), out);
    LUNA_TRY(luna_json_get_string(ans, "certificate", &s, &n), out);
    LUNA_TRY_ENSURE(n >= 1 && n <= LUNA_TEE_IPC_CERT_MAX, LUNA_ERR_FORMAT, out);
    *cert = strdup(s);
    LUNA_TRY(luna_json_get_string(ans, "report", &s, &n), out);
    LUNA_TRY_ENSURE(n >= 1 && n <= LUNA_TEE_IPC_REPORT_MAX, LUNA_ERR_FORMAT, out);
    *report = strdup(s);
    LUNA_TRY_ENSURE(*cert != NULL && *report != NULL, LUNA_ERR_NOMEM, out);
    t->port = m->port;
out:
    if (err != LUNA_OK) {
        free(*cert);
        free(*report);
        *cert = *report = NULL;
    }
    json_decref(req);
    json_decref(ans);
    return err;
}

/* ---- runtime messages ---- */

static void tee_exited(host_tee *t)
{
    int status = 0;
    if (t->ev != NULL) {
        event_free(t->ev);
        t->ev = NULL;
    }
    if (t->fd >= 0) {
        close(t->fd);
        t->fd = -1;
    }
    if (t->pid > 0) {
        kill(t->pid, SIGKILL);
        while (waitpid(t->pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    LUNA_LOGF(LUNA_LOG_WARN, COMPONENT, "runtime exited", LUNA_LOG_STR("tee_id", t->ts->id),
              LUNA_LOG_INT("pid", t->pid),
              LUNA_LOG_INT("exit", WIFEXITED(status) ? WEXITSTATUS(status) : -1),
              LUNA_LOG_INT("signal", WIFSIGNALED(status) ? WTERMSIG(status) : 0));
    t->pid = -1;
    t->state = TEE_EXITED;
}

static void on_loaded(host_tee *t, const luna_tee_msg *m)
{
    luna_tee_msg r = {.type = LUNA_TEE_MSG_MEASURED};
    uint8_t zero[32] = {0};
    t->bundle_addr = m->bundle_addr;
    t->loaded = true;
    luna_err err = measure_now(t, t->mr_enclave);
    if (err != LUNA_OK) {
        t->loaded = false;
        r.status = (uint16_t)err;
        r.mr_enclave = r.mr_signer = zero;
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "runtime could not be measured",
                  LUNA_LOG_STR("tee_id", t->ts->id), LUNA_LOG_ERR("error", err));
    } else {
        char mr[65], sg[65];
        hex32(t->mr_enclave, mr);
        hex32(t->signer, sg);
        t->state = TEE_MEASURED;
        r.mr_enclave = t->mr_enclave;
        r.mr_signer = t->signer;
        LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "runtime measured", LUNA_LOG_STR("tee_id", t->ts->id),
                  LUNA_LOG_INT("pid", t->pid), LUNA_LOG_STR("mr_enclave", mr),
                  LUNA_LOG_STR("mr_signer", sg),
                  LUNA_LOG_BOOL("simulated", t->ctx->tpm == NULL));
    }
    if (luna_tee_ipc_send(t->fd, &r) != LUNA_OK)
        tee_exited(t);
}

static void on_evidence_req(host_tee *t, const luna_tee_msg *m)
{
    uint8_t ev[HOST_EVIDENCE_MAX];
    size_t ev_len = 0;
    luna_tee_msg r = {.type = LUNA_TEE_MSG_EVIDENCE};
    luna_err err = evidence_for(t, m->nonce, m->x25519, m->ed25519, m->arena_addr, m->arena_len,
                                ev, sizeof(ev), &ev_len);
    if (err == LUNA_OK) {
        r.evidence = ev;
        r.evidence_len = ev_len;
    } else {
        r.status = (uint16_t)err;
        LUNA_LOGF(LUNA_LOG_WARN, COMPONENT, "evidence refused", LUNA_LOG_STR("tee_id", t->ts->id),
                  LUNA_LOG_ERR("error", err));
    }
    if (luna_tee_ipc_send(t->fd, &r) != LUNA_OK)
        tee_exited(t);
}

static void on_admit_req(host_tee *t, const luna_tee_msg *m)
{
    char *cert = NULL, *report = NULL;
    luna_tee_msg r = {.type = LUNA_TEE_MSG_ADMITTED};
    luna_err err = admit(t, m, &cert, &report);
    if (err == LUNA_OK) {
        r.cert = (const uint8_t *)cert;
        r.cert_len = strlen(cert);
        r.report = (const uint8_t *)report;
        r.report_len = strlen(report);
        t->state = TEE_ADMITTED;
        LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "runtime admitted", LUNA_LOG_STR("tee_id", t->ts->id),
                  LUNA_LOG_UINT("port", m->port));
    } else {
        r.status = (uint16_t)err;
        LUNA_LOGF(LUNA_LOG_WARN, COMPONENT, "admission failed", LUNA_LOG_STR("tee_id", t->ts->id),
                  LUNA_LOG_ERR("error", err));
    }
    if (luna_tee_ipc_send(t->fd, &r) != LUNA_OK)
        tee_exited(t);
    free(cert);
    free(report);
}

static void on_ipc(evutil_socket_t fd, short what, void *arg)
{
    host_tee *t = arg;
    luna_tee_msg m;
    luna_err err = luna_tee_ipc_recv((int)fd, t->ctx->rx, sizeof(t->ctx->rx), 0, &m);
    if (err == LUNA_ERR_TIMEOUT)
        return;
    if (err != LUNA_OK) {
        if (err != LUNA_ERR_UNAVAILABLE)
            LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "bad message from runtime",
                      LUNA_LOG_STR("tee_id", t->ts->id), LUNA_LOG_ERR("error", err));
        tee_exited(t); /* a runtime that breaks the protocol is stopped */
        return;
    }
    switch (m.type) {
    case LUNA_TEE_MSG_LOADED:
        if (t->loaded) {
            tee_exited(t); /* one bundle per runtime life */
            return;
        }
        on_loaded(t, &m);
        return;
    case LUNA_TEE_MSG_EVIDENCE_REQ:
        on_evidence_req(t, &m);
        return;
    case LUNA_TEE_MSG_ADMIT_REQ:
        on_admit_req(t, &m);
        return;
    default:
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "unexpected message from runtime",
                  LUNA_LOG_STR("tee_id", t->ts->id), LUNA_LOG_UINT("type", m.type));
        tee_exited(t);
        return;
    }
}

static luna_err start_tee(host_ctx *c, host_tee *t, const host_tee_settings *ts)
{
    luna_tee_config cfg;
    char msg[256];
    int sv[2];
    luna_err err;

    memset(t, 0, sizeof(*t));
    t->ctx = c;
    t->ts = ts;
    t->fd = -1;
    t->pid = -1;
    LUNA_GUARD(read_small_file(ts->config, LUNA_TEE_IPC_CONFIG_MAX, &t->config, &t->config_len));
    err = luna_tee_config_parse(t->config, t->config_len, &cfg, msg, sizeof(msg));
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "runtime config refused",
                  LUNA_LOG_STR("tee_id", ts->id), LUNA_LOG_STR("why", msg));
        return err;
    }
    LUNA_GUARD(luna_manifest_mr_signer(cfg.developer_pk, t->signer));
    LUNA_GUARD(luna_tee_config_hash(&cfg, t->config_hash));
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return LUNA_ERR_IO;
    pid_t pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return LUNA_ERR_IO;
    }
    if (pid == 0) {
        /* A runtime never outlives its platform (nothing would measure it). */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
            _exit(127);
        if (sv[1] == RUNTIME_FD)
            (void)fcntl(RUNTIME_FD, F_SETFD, 0);
        else if (dup2(sv[1], RUNTIME_FD) != RUNTIME_FD)
            _exit(127);
        (void)syscall(SYS_close_range, RUNTIME_FD + 1, ~0U, 0);
        char *const argv[] = {(char *)"luna-tee", (char *)"--ipc-fd", (char *)"3",
                              (char *)"--manifest", (char *)ts->manifest,
                              (char *)"--bundle", (char *)ts->bundle, NULL};
        execv(c->s.runtime, argv);
        _exit(127);
    }
    close(sv[1]);
    t->pid = pid;
    t->fd = sv[0];
    t->state = TEE_STARTING;
    luna_tee_msg m = {.type = LUNA_TEE_MSG_CONFIG,
                      .tee_id = (const uint8_t *)ts->id,
                      .tee_id_len = strlen(ts->id),
                      .config = t->config,
                      .config_len = t->config_len};
    err = luna_tee_ipc_send(t->fd, &m);
    if (err == LUNA_OK) {
        t->ev = event_new(c->base, t->fd, EV_READ | EV_PERSIST, on_ipc, t);
        if (t->ev == NULL || event_add(t->ev, NULL) != 0)
            err = LUNA_ERR_NOMEM;
    }
    if (err != LUNA_OK) {
        tee_exited(t);
        return err;
    }
    LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "runtime started", LUNA_LOG_STR("tee_id", ts->id),
              LUNA_LOG_INT("pid", pid));
    return LUNA_OK;
}

/* ---- HTTP ---- */

static void handle_tcb(luna_http_request *req, void *arg)
{
    host_ctx *c = arg;
    const uint8_t *doc;
    size_t len;
    if (c->platform == NULL) {
        luna_http_reply_err(req, LUNA_ERR_NOT_FOUND); /* a TPM has no sim collateral */
        return;
    }
    luna_err err = host_platform_tcb(c->platform, &doc, &len);
    if (err != LUNA_OK) {
        luna_http_reply_err(req, err);
        return;
    }
    luna_http_reply(req, 200, "application/octet-stream", doc, len);
}

static void handle_root(luna_http_request *req, void *arg)
{
    host_ctx *c = arg;
    if (c->platform == NULL) {
        luna_http_reply_err(req, LUNA_ERR_NOT_FOUND);
        return;
    }
    luna_http_reply(req, 200, "application/x-pem-file", c->vendor_pem, c->vendor_pem_len);
}

static void handle_tees(luna_http_request *req, void *arg)
{
    host_ctx *c = arg;
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < c->s.n_tees; i++) {
        const host_tee *t = &c->tees[i];
        char mr[65], sg[65];
        hex32(t->mr_enclave, mr);
        hex32(t->signer, sg);
        json_array_append_new(list, json_pack("{s:s, s:s, s:I, s:s, s:s, s:I}", "tee_id", t->ts->id,
                                              "state", state_name(t->state), "pid",
                                              (json_int_t)t->pid, "mr_enclave", mr, "mr_signer",
                                              sg, "port", (json_int_t)t->port));
    }
    bool tpm = c->tpm != NULL;
    json_t *ans = json_pack("{s:b, s:s, s:o}", "simulated", tpm ? 0 : 1, "platform",
                            tpm ? "TPM 2.0 quote of a host measurement (no memory encryption)"
                                : "SIMULATED - INSECURE (development only)",
                            "tees", list != NULL ? list : json_array());
    if (ans == NULL) {
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        return;
    }
    luna_http_reply_json(req, 200, ans);
    json_decref(ans);
}

/* The evidence source: a TPM (platform "tpm") or the sim vendor keys. */
static luna_err open_platform(host_ctx *c)
{
    luna_err err;
    if (c->s.tpm) {
        LUNA_LOGF(LUNA_LOG_WARN, COMPONENT,
                  "TPM platform: quotes of the host's own measurement, no memory encryption",
                  LUNA_LOG_BOOL("simulated", false));
        err = host_tpm_open(c->s.tcti, &c->tpm);
        if (err != LUNA_OK)
            LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "TPM unavailable", LUNA_LOG_ERR("error", err));
        return err;
    }
    LUNA_LOGF(LUNA_LOG_WARN, COMPONENT, "SIMULATED TEE platform: insecure, development only",
              LUNA_LOG_BOOL("simulated", true));
    uint8_t *pem = NULL;
    size_t pem_len = 0;
    char path[HOST_PATH_MAX + 32];
    int pn = snprintf(path, sizeof(path), "%s/vendor.crt", c->s.platform_dir);
    err = pn > 0 && (size_t)pn < sizeof(path) ? read_small_file(path, VENDOR_PEM_MAX, &pem, &pem_len)
                                             : LUNA_ERR_TOO_LARGE;
    if (err == LUNA_OK) {
        memcpy(c->vendor_pem, pem, pem_len);
        c->vendor_pem_len = pem_len;
        free(pem);
        err = host_platform_open(c->s.platform_dir, c->s.tcb_level, &c->platform);
    }
    if (err != LUNA_OK)
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "platform keys unavailable", LUNA_LOG_ERR("error", err));
    return err;
}

/* The operator's AK enrolment (platform "tpm" only; docs/tpm-live.md). */
static void handle_tpm_enrolment(luna_http_request *req, void *arg)
{
    host_ctx *c = arg;
    json_t *ans = NULL;
    luna_err err = c->tpm != NULL ? host_platform_tpm_enrolment(c->tpm, &ans) : LUNA_ERR_NOT_FOUND;
    if (err != LUNA_OK) {
        luna_http_reply_err(req, err);
        return;
    }
    luna_http_reply_json(req, 200, ans);
    json_decref(ans);
}

static void handle_tpm_activate(luna_http_request *req, void *arg)
{
    host_ctx *c = arg;
    const uint8_t *body = NULL;
    size_t len = 0;
    json_t *ans = NULL;
    luna_err err = c->tpm != NULL ? luna_http_request_body(req, &body, &len) : LUNA_ERR_NOT_FOUND;
    if (err == LUNA_OK)
        err = host_platform_tpm_activate(c->tpm, body, len, &ans);
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_WARN, COMPONENT, "TPM credential activation refused",
                  LUNA_LOG_ERR("error", err));
        luna_http_reply_err(req, err);
        return;
    }
    LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "TPM credential activated for the operator",
              LUNA_LOG_STR("route", "/v1/tee-host/tpm/activate"));
    luna_http_reply_json(req, 200, ans);
    json_decref(ans);
}

static int cmd_run(const char *config_path)
{
    static host_ctx ctx; /* large: keep it off the stack */
    host_ctx *c = &ctx;
    char msg[512];
    luna_err err;
    int rc = 1;

    err = host_settings_load(config_path, &c->s, msg, sizeof(msg));
    if (err != LUNA_OK) {
        fprintf(stderr, "luna-tee-host: %s\n", msg);
        return 2;
    }
    if (open_platform(c) != LUNA_OK)
        return 2;
    c->base = event_base_new();
    luna_http_server_opts so = {.component = COMPONENT,
                                .bind_addr = c->s.listen_address,
                                .port = c->s.listen_port,
                                .tls = {c->s.tls_ca, c->s.tls_cert, c->s.tls_key, NULL},
                                .handle_signals = true};
    if (c->base == NULL || luna_http_server_new(c->base, &so, &c->srv) != LUNA_OK)
        goto out;
    static const char *const any[] = {LUNA_HTTP_ALLOW_ANY_PLATFORM};
    static const char *const operator[] = {"lunal://svc/operator"};
    const luna_http_route routes[] = {
        {LUNA_HTTP_GET, "/v1/tee-host/tcb", any, 1, NULL, handle_tcb, c},
        {LUNA_HTTP_GET, "/v1/tee-host/vendor-root", any, 1, NULL, handle_root, c},
        {LUNA_HTTP_GET, "/v1/tee-host/tees", any, 1, NULL, handle_tees, c},
        {LUNA_HTTP_GET, "/v1/tee-host/tpm/enrolment", operator, 1, NULL, handle_tpm_enrolment, c},
        {LUNA_HTTP_POST, "/v1/tee-host/tpm/activate", operator, 1, "application/json",
         handle_tpm_activate, c},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (luna_http_server_add_route(c->srv, &routes[i]) != LUNA_OK)
            goto out;
    for (size_t i = 0; i < c->s.n_tees; i++) {
        err = start_tee(c, &c->tees[i], &c->s.tees[i]);
        if (err != LUNA_OK)
            LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "runtime not started",
                      LUNA_LOG_STR("tee_id", c->s.tees[i].id), LUNA_LOG_ERR("error", err));
    }
    LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "listening",
              LUNA_LOG_UINT("port", luna_http_server_port(c->srv)));
    event_base_dispatch(c->base);
    rc = 0;
out:
    /* SIGTERM first (a runtime finishes its request), SIGKILL after 3 s. */
    for (size_t i = 0; i < c->s.n_tees; i++)
        if (c->tees[i].pid > 0)
            kill(c->tees[i].pid, SIGTERM);
    for (int w = 0; w < 30; w++) {
        bool alive = false;
        for (size_t i = 0; i < c->s.n_tees; i++) {
            host_tee *t = &c->tees[i];
            if (t->pid > 0 && waitpid(t->pid, NULL, WNOHANG) == t->pid)
                t->pid = -1;
            alive = alive || t->pid > 0;
        }
        if (!alive)
            break;
        usleep(100000);
    }
    for (size_t i = 0; i < c->s.n_tees; i++) {
        host_tee *t = &c->tees[i];
        if (t->pid > 0 || t->fd >= 0)
            tee_exited(t);
        free(t->config);
    }
    luna_http_server_free(c->srv);
    if (c->base != NULL)
        event_base_free(c->base);
    host_platform_free(c->platform);
    host_tpm_free(c->tpm);
    return rc;
}

/* ---- tools ---- */

static const char *arg_value(int argc, char **argv, const char *name)
{
    for (int i = 2; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

static int cmd_measure(const char *runtime, const char *bundle, const char *config)
{
    uint8_t exe[32], bun[32], mr[32], signer[32], ch[32];
    uint8_t *cfg = NULL;
    size_t cfg_len = 0;
    luna_tee_config tc;
    char msg[256], h1[65], h2[65], h3[65];
    luna_err err = luna_tee_hash_path(runtime, exe);
    if (err == LUNA_OK)
        err = luna_tee_hash_path(bundle, bun);
    if (err == LUNA_OK)
        err = read_small_file(config, LUNA_TEE_IPC_CONFIG_MAX, &cfg, &cfg_len);
    if (err == LUNA_OK)
        err = luna_tee_config_parse(cfg, cfg_len, &tc, msg, sizeof(msg));
    if (err == LUNA_OK)
        err = luna_tee_config_hash(&tc, ch);
    if (err == LUNA_OK)
        err = luna_tee_mr_enclave(exe, bun, ch, mr);
    if (err == LUNA_OK)
        err = luna_manifest_mr_signer(tc.developer_pk, signer);
    free(cfg);
    if (err != LUNA_OK) {
        fprintf(stderr, "luna-tee-host: measure: %s\n", luna_strerror(err));
        return 1;
    }
    hex32(mr, h1);
    hex32(signer, h2);
    hex32(bun, h3);
    printf("{\"mr_enclave\":\"%s\",\"mr_signer\":\"%s\",\"build_hash\":\"%s\",\"simulated\":true}\n",
           h1, h2, h3);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "luna-tee-host - SIMULATED TEE platform (insecure, development only)\n"
                    "  luna-tee-host init-platform --dir DIR [--tcb-level N]\n"
                    "  luna-tee-host measure --runtime FILE --bundle FILE --config FILE\n"
                    "  luna-tee-host run --config FILE\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return 2;
    }
    if (luna_process_harden() != LUNA_OK)
        return 1;
    if (strcmp(argv[1], "init-platform") == 0) {
        const char *dir = arg_value(argc, argv, "--dir");
        const char *lvl = arg_value(argc, argv, "--tcb-level");
        if (dir == NULL) {
            usage();
            return 2;
        }
        uint32_t level = lvl != NULL ? (uint32_t)strtoul(lvl, NULL, 10) : 1;
        luna_err err = host_platform_init_dir(dir, level);
        if (err != LUNA_OK) {
            fprintf(stderr, "luna-tee-host: init-platform: %s\n", luna_strerror(err));
            return 1;
        }
        printf("SIMULATED vendor root and TCB collateral written to %s (insecure)\n", dir);
        return 0;
    }
    if (strcmp(argv[1], "measure") == 0) {
        const char *r = arg_value(argc, argv, "--runtime"), *b = arg_value(argc, argv, "--bundle"),
                   *c = arg_value(argc, argv, "--config");
        if (r == NULL || b == NULL || c == NULL) {
            usage();
            return 2;
        }
        return cmd_measure(r, b, c);
    }
    if (strcmp(argv[1], "run") == 0) {
        const char *c = arg_value(argc, argv, "--config");
        if (c == NULL) {
            usage();
            return 2;
        }
        return cmd_run(c);
    }
    usage();
    return 2;
}
