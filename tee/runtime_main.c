/*
 * runtime_main.c - luna-tee, the TEE runtime: start-up and life cycle.
 *
 *   luna-tee --ipc-fd N --manifest FILE --bundle FILE   (started by the platform)
 *
 * Generates tee_kx (X25519), tee_sign (Ed25519) and tee_tls (P-256) inside;
 * takes its measured config from the platform; verifies the signed
 * manifest against the developer key pinned in that config; maps the job
 * bundle only after its SHA-256 equals the manifest's build_hash (from a
 * sealed memfd, so what was hashed is what is mapped); tells the platform
 * where it mapped it; gets admitted (evidence + TLS key -> certificate);
 * then serves mTLS.  It must never export a private key, never map an
 * unverified bundle, and never hold plaintext outside the locked arena
 * and the job's locked buffers.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/http.h"
#include "luna/log.h"
#include "luna/pki.h"
#include "runtime.h"
#include "sandbox.h"

#define BUNDLE_MAX (64u * 1024u * 1024u)
#define EXIT_REFUSED 3 /* deployment refused: bad manifest or bundle */
#define RT_SECURE_HEAP (1u << 20)

static rt_state g_rt;

static __attribute__((noreturn)) void die(const char *msg, luna_err err, int code)
{
    LUNA_LOGF(LUNA_LOG_ERROR, RT_COMPONENT, msg, LUNA_LOG_STR("tee_id", g_rt.tee_id),
              LUNA_LOG_ERR("error", err));
    exit(code);
}

static luna_err read_file(const char *path, size_t cap, uint8_t **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? LUNA_ERR_NOT_FOUND : LUNA_ERR_IO;
    struct stat st;
    uint8_t *buf = NULL;
    size_t got = 0;
    luna_err err = LUNA_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        err = LUNA_ERR_IO;
    else if (st.st_size < 1 || (uint64_t)st.st_size > cap)
        err = LUNA_ERR_TOO_LARGE;
    else if ((buf = malloc((size_t)st.st_size)) == NULL)
        err = LUNA_ERR_NOMEM;
    while (err == LUNA_OK && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            err = LUNA_ERR_IO;
        else
            got += (size_t)n;
    }
    close(fd);
    if (err != LUNA_OK) {
        free(buf);
        return err;
    }
    *out = buf;
    *len = got;
    return LUNA_OK;
}

/* ---- keys ---- */

static luna_err make_keys(rt_state *rt)
{
    LUNA_GUARD(luna_secret_new(32, &rt->kx_sk));
    LUNA_GUARD(luna_secret_new(32, &rt->sign_seed));
    LUNA_GUARD(luna_tee_wipe_on_fork(rt->kx_sk));
    LUNA_GUARD(luna_tee_wipe_on_fork(rt->sign_seed));
    LUNA_GUARD(luna_x25519_keygen(luna_secret_data(rt->kx_sk), rt->kx_pk));
    LUNA_GUARD(luna_ed25519_keygen(luna_secret_data(rt->sign_seed), rt->sign_pk));
    LUNA_GUARD(luna_pki_keygen(&rt->tls_key));
    int n = i2d_PUBKEY(rt->tls_key, &rt->spki);
    if (n <= 0 || (size_t)n > LUNA_TEE_IPC_SPKI_MAX)
        return LUNA_ERR_CRYPTO;
    rt->spki_len = (size_t)n;
    return LUNA_OK;
}

/* ---- platform exchanges ---- */

static luna_err ipc_call(rt_state *rt, const luna_tee_msg *req, uint8_t want, int timeout_ms,
                         luna_tee_msg *ans)
{
    LUNA_GUARD(luna_tee_ipc_send(rt->ipc, req));
    LUNA_GUARD(luna_tee_ipc_recv(rt->ipc, rt->rx, sizeof(rt->rx), timeout_ms, ans));
    return ans->type == want ? LUNA_OK : LUNA_ERR_FORMAT;
}

luna_err rt_evidence(rt_state *rt, const uint8_t nonce[32], uint8_t *ev, size_t cap,
                     size_t *ev_len)
{
    luna_tee_msg req = {.type = LUNA_TEE_MSG_EVIDENCE_REQ,
                        .nonce = nonce,
                        .x25519 = rt->kx_pk,
                        .ed25519 = rt->sign_pk,
                        .arena_addr = (uint64_t)(uintptr_t)luna_secret_data(rt->arena),
                        .arena_len = luna_secret_len(rt->arena)};
    luna_tee_msg ans;
    LUNA_GUARD(ipc_call(rt, &req, LUNA_TEE_MSG_EVIDENCE, 30000, &ans));
    if (ans.status != 0)
        return ans.status < LUNA_ERR__COUNT ? (luna_err)ans.status : LUNA_ERR_UNAVAILABLE;
    LUNA_ENSURE(ans.evidence_len <= cap, LUNA_ERR_TOO_LARGE);
    memcpy(ev, ans.evidence, ans.evidence_len);
    *ev_len = ans.evidence_len;
    /* Named by what the host produced; the verifiers refuse a wrong name. */
    bool tpm = ans.evidence_len >= 4 && memcmp(ans.evidence, "LTQ1", 4) == 0;
    snprintf(rt->evidence_type, sizeof(rt->evidence_type), "%s", tpm ? "tpm" : "sim");
    return LUNA_OK;
}

void rt_reset_memory(rt_state *rt)
{
    luna_wipe(luna_secret_data(rt->arena), luna_secret_len(rt->arena));
}

/* ---- deployment ---- */

static luna_err load_deployment(rt_state *rt, const char *manifest_path, const char *bundle_path)
{
    uint8_t *m = NULL, *b = NULL;
    size_t m_len = 0, b_len = 0;
    uint8_t hash[32];
    luna_err err;
    int fd = -1;

    LUNA_TRY(read_file(manifest_path, LUNA_MANIFEST_MAX_LEN, &m, &m_len), out);
    err = luna_manifest_verify((const char *)m, m_len, rt->cfg.developer_id,
                               rt->cfg.developer_pk, &rt->manifest);
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, RT_COMPONENT, "manifest refused",
                  LUNA_LOG_STR("tee_id", rt->tee_id), LUNA_LOG_ERR("error", err));
        goto out;
    }
    LUNA_TRY_ENSURE(strcmp(rt->manifest.name, rt->cfg.deployment_id) == 0, LUNA_ERR_PERMISSION,
                    out);
    rt->manifest_jws = strndup((const char *)m, m_len);
    LUNA_TRY_ENSURE(rt->manifest_jws != NULL, LUNA_ERR_NOMEM, out);

    LUNA_TRY(read_file(bundle_path, BUNDLE_MAX, &b, &b_len), out);
    LUNA_TRY(luna_sha256(b, b_len, hash), out);
    if (!luna_ct_equal(hash, rt->manifest.build_hash, sizeof(hash))) {
        LUNA_LOGF(LUNA_LOG_ERROR, RT_COMPONENT, "bundle refused: hash differs from build_hash",
                  LUNA_LOG_STR("tee_id", rt->tee_id));
        err = LUNA_ERR_VERIFY;
        goto out;
    }
    /* Map exactly the bytes that were hashed: a sealed memfd cannot change
       after the check, unlike the file on disk. */
    fd = memfd_create("lunal-bundle", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    LUNA_TRY_ENSURE(fd >= 0, LUNA_ERR_IO, out);
    for (size_t off = 0; off < b_len;) {
        ssize_t n = write(fd, b + off, b_len - off);
        LUNA_TRY_ENSURE(n > 0 || errno == EINTR, LUNA_ERR_IO, out);
        if (n > 0)
            off += (size_t)n;
    }
    LUNA_TRY_ENSURE(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE |
                                               F_SEAL_SEAL) == 0,
                    LUNA_ERR_IO, out);
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    rt->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    LUNA_TRY_ENSURE(rt->dl != NULL, LUNA_ERR_FORMAT, out);
    void *sym = dlsym(rt->dl, LUNA_TEE_BUNDLE_SYMBOL);
    LUNA_TRY_ENSURE(sym != NULL, LUNA_ERR_FORMAT, out);
    luna_tee_bundle_fn fn;
    memcpy(&fn, &sym, sizeof(fn)); /* POSIX: dlsym gives code addresses as void * */
    rt->bundle = fn();
    LUNA_TRY_ENSURE(rt->bundle != NULL && rt->bundle->abi_version == LUNA_TEE_JOB_ABI_VERSION &&
                        rt->bundle->n_jobs >= 1 &&
                        rt->bundle->n_jobs <= LUNA_TEE_BUNDLE_MAX_JOBS,
                    LUNA_ERR_UNSUPPORTED, out);
    /* Every job the manifest offers must be in the bundle. */
    for (size_t i = 0; i < rt->manifest.n_jobs; i++) {
        bool found = false;
        for (size_t j = 0; j < rt->bundle->n_jobs && !found; j++)
            found = rt->bundle->jobs[j].name != NULL && rt->bundle->jobs[j].run != NULL &&
                    strcmp(rt->bundle->jobs[j].name, rt->manifest.jobs[i]) == 0;
        LUNA_TRY_ENSURE(found, LUNA_ERR_FORMAT, out);
    }
    err = LUNA_OK;
out:
    if (fd >= 0)
        close(fd); /* the mapping keeps the memfd alive */
    if (b != NULL)
        free(b);
    free(m);
    return err;
}

static luna_err report_loaded(rt_state *rt)
{
    struct link_map *lm = NULL;
    if (dlinfo(rt->dl, RTLD_DI_LINKMAP, &lm) != 0 || lm == NULL || lm->l_addr == 0)
        return LUNA_ERR_INTERNAL;
    luna_tee_msg req = {.type = LUNA_TEE_MSG_LOADED, .bundle_addr = (uint64_t)lm->l_addr};
    luna_tee_msg ans;
    LUNA_GUARD(ipc_call(rt, &req, LUNA_TEE_MSG_MEASURED, 30000, &ans));
    if (ans.status != 0)
        return LUNA_ERR_UNAVAILABLE;
    memcpy(rt->mr_enclave, ans.mr_enclave, 32);
    memcpy(rt->mr_signer, ans.mr_signer, 32);
    rt->measurement_matches =
        rt->manifest.mr_enclave_len == 32 &&
        luna_ct_equal(rt->mr_enclave, rt->manifest.mr_enclave, 32) &&
        luna_ct_equal(rt->mr_signer, rt->manifest.mr_signer, 32);
    char hex[65];
    if (luna_hex_encode(rt->mr_enclave, 32, hex, sizeof(hex)) != LUNA_OK)
        hex[0] = '\0';
    LUNA_LOGF(rt->measurement_matches ? LUNA_LOG_INFO : LUNA_LOG_WARN, RT_COMPONENT,
              rt->measurement_matches ? "measured as the manifest says"
                                      : "measurement differs from the signed manifest",
              LUNA_LOG_STR("tee_id", rt->tee_id), LUNA_LOG_STR("mr_enclave", hex));
    return LUNA_OK;
}

/* ---- admission: certificate and key into memfds (never on disk) ---- */

static luna_err memfd_with(const char *name, const void *data, size_t len, int *fd_out,
                           char *path, size_t path_cap)
{
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0)
        return LUNA_ERR_IO;
    if (fchmod(fd, 0600) != 0 || (size_t)write(fd, data, len) != len) {
        close(fd);
        return LUNA_ERR_IO;
    }
    snprintf(path, path_cap, "/proc/self/fd/%d", fd);
    *fd_out = fd;
    return LUNA_OK;
}

/*
 * The evidence type the attestation service appraised, from the admission
 * report's claims: the runtime only labels itself with it (the KMS and the
 * verifiers check the evidence itself), so the report is read, not
 * verified; anything outside the known names is ignored.  A report that
 * names no type (test stubs) keeps the type of the evidence last seen,
 * "sim" before any.
 */
static luna_err type_from_report(rt_state *rt)
{
    static const char *const known[] = {"sim", "sev-snp", "tdx", "sgx", "nitro", "tpm"};
    const char *dot1 = strchr(rt->report, '.');
    const char *dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
    if (dot2 == NULL)
        return LUNA_ERR_FORMAT;
    size_t n = (size_t)(dot2 - dot1 - 1), len = 0;
    uint8_t *payload = malloc(n + 1);
    if (payload == NULL)
        return LUNA_ERR_NOMEM;
    luna_err err = luna_b64url_decode(dot1 + 1, n, payload, n + 1, &len);
    json_t *claims = err == LUNA_OK ? json_loadb((const char *)payload, len,
                                                 JSON_REJECT_DUPLICATES, NULL)
                                    : NULL;
    free(payload);
    const char *t = json_string_value(json_object_get(claims, "evidence_type"));
    err = LUNA_ERR_FORMAT;
    for (size_t i = 0; t != NULL && i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(t, known[i]) == 0) {
            snprintf(rt->evidence_type, sizeof(rt->evidence_type), "%s", known[i]);
            err = LUNA_OK;
        }
    }
    json_decref(claims);
    return err;
}

static luna_err install_identity(rt_state *rt, const luna_tee_msg *ans)
{
    BIO *bio = BIO_new(BIO_s_secmem());
    BUF_MEM *mem = NULL;
    luna_err err = LUNA_ERR_CRYPTO;
    if (bio != NULL && PEM_write_bio_PrivateKey(bio, rt->tls_key, NULL, NULL, 0, NULL, NULL) == 1 &&
        BIO_get_mem_ptr(bio, &mem) == 1 && mem != NULL)
        err = memfd_with("lunal-tee-key", mem->data, mem->length, &rt->key_fd, rt->key_path,
                         sizeof(rt->key_path));
    BIO_free(bio); /* secure heap: wiped on free */
    LUNA_GUARD(err);
    LUNA_GUARD(memfd_with("lunal-tee-cert", ans->cert, ans->cert_len, &rt->cert_fd, rt->cert_path,
                          sizeof(rt->cert_path)));
    rt->report = strndup((const char *)ans->report, ans->report_len);
    if (rt->report == NULL)
        return LUNA_ERR_NOMEM;
    if (type_from_report(rt) != LUNA_OK)
        LUNA_LOGF(LUNA_LOG_WARN, RT_COMPONENT, "admission report names no evidence type",
                  LUNA_LOG_STR("evidence_type", rt->evidence_type));
    return LUNA_OK;
}

static luna_err admit(rt_state *rt)
{
    luna_tee_msg req = {.type = LUNA_TEE_MSG_ADMIT_REQ,
                        .x25519 = rt->kx_pk,
                        .ed25519 = rt->sign_pk,
                        .spki = rt->spki,
                        .spki_len = rt->spki_len,
                        .arena_addr = (uint64_t)(uintptr_t)luna_secret_data(rt->arena),
                        .arena_len = luna_secret_len(rt->arena),
                        .port = rt->cfg.listen_port};
    for (unsigned attempt = 0;; attempt++) {
        luna_tee_msg ans;
        rt_reset_memory(rt);
        LUNA_GUARD(ipc_call(rt, &req, LUNA_TEE_MSG_ADMITTED, 120000, &ans));
        if (ans.status == 0)
            return install_identity(rt, &ans);
        LUNA_LOGF(LUNA_LOG_WARN, RT_COMPONENT, "not admitted yet; retrying",
                  LUNA_LOG_STR("tee_id", rt->tee_id), LUNA_LOG_UINT("attempt", attempt),
                  LUNA_LOG_ERR("error", ans.status < LUNA_ERR__COUNT ? (luna_err)ans.status
                                                                     : LUNA_ERR_UNAVAILABLE));
        unsigned delay = attempt < 5 ? 1u << attempt : 30u;
        struct timespec ts = {(time_t)delay, 0};
        nanosleep(&ts, NULL);
    }
}

static const char *arg_value(int argc, char **argv, const char *name)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

int main(int argc, char **argv)
{
    rt_state *rt = &g_rt;
    const char *fd_s = arg_value(argc, argv, "--ipc-fd");
    const char *manifest = arg_value(argc, argv, "--manifest");
    const char *bundle = arg_value(argc, argv, "--bundle");
    luna_err err;
    char msg[256];

    if (fd_s == NULL || manifest == NULL || bundle == NULL) {
        fprintf(stderr, "usage: luna-tee --ipc-fd N --manifest FILE --bundle FILE "
                        "(started by the TEE platform)\n");
        return 2;
    }
    if ((err = luna_process_harden()) != LUNA_OK)
        die("hardening failed", err, 1);
    rt->ipc = atoi(fd_s);
    rt->cert_fd = rt->key_fd = -1;
    snprintf(rt->evidence_type, sizeof(rt->evidence_type), "sim");
    signal(SIGPIPE, SIG_IGN);
    if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1)
        die("crypto init failed", LUNA_ERR_CRYPTO, 1);
    /* Before any key: OpenSSL then keeps private scalars (tee_tls, the TLS
       handshakes' ephemeral keys) in a locked heap job children see as zero. */
    if ((err = luna_tee_secure_heap_init(RT_SECURE_HEAP)) != LUNA_OK)
        die("secure heap unavailable", err, 1);
    if ((err = make_keys(rt)) != LUNA_OK)
        die("key generation failed", err, 1);
    if ((err = luna_secret_new(RT_ARENA_LEN, &rt->arena)) != LUNA_OK)
        die("arena allocation failed", err, 1);
    /* Plaintext and keys must never reach swap: refuse to run unlocked. */
    if (!luna_secret_is_locked(rt->arena) || !luna_secret_is_locked(rt->kx_sk) ||
        !luna_secret_is_locked(rt->sign_seed))
        die("memory could not be locked (RLIMIT_MEMLOCK)", LUNA_ERR_PERMISSION, 1);
    rt->seen = calloc(RT_REPLAY_SLOTS, sizeof(*rt->seen));
    if (rt->seen == NULL)
        die("allocation failed", LUNA_ERR_NOMEM, 1);

    /* 1. The measured config from the platform. */
    luna_tee_msg m;
    err = luna_tee_ipc_recv(rt->ipc, rt->rx, sizeof(rt->rx), 30000, &m);
    if (err != LUNA_OK || m.type != LUNA_TEE_MSG_CONFIG)
        die("no config from the platform", err != LUNA_OK ? err : LUNA_ERR_FORMAT, 1);
    memcpy(rt->tee_id, m.tee_id, m.tee_id_len);
    rt->tee_id[m.tee_id_len] = '\0';
    rt->config = malloc(m.config_len);
    if (rt->config == NULL)
        die("allocation failed", LUNA_ERR_NOMEM, 1);
    memcpy(rt->config, m.config, m.config_len);
    rt->config_len = m.config_len;
    err = luna_tee_config_parse(rt->config, rt->config_len, &rt->cfg, msg, sizeof(msg));
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, RT_COMPONENT, "config refused", LUNA_LOG_STR("why", msg));
        return EXIT_REFUSED;
    }
    /* 2. The deployment: signed manifest, then the bundle it names. */
    if ((err = load_deployment(rt, manifest, bundle)) != LUNA_OK)
        die("deployment refused", err, EXIT_REFUSED);
    /* 3. Measured from outside by the platform. */
    if ((err = report_loaded(rt)) != LUNA_OK)
        die("platform did not measure the runtime", err, 1);
    LUNA_LOGF(LUNA_LOG_INFO, RT_COMPONENT, "deployment loaded", LUNA_LOG_STR("tee_id", rt->tee_id),
              LUNA_LOG_STR("deployment", rt->manifest.name),
              LUNA_LOG_STR("version", rt->manifest.version), LUNA_LOG_BOOL("simulated", true));
    /* 4. Admission: the certificate comes only after the first attestation. */
    if ((err = admit(rt)) != LUNA_OK)
        die("admission failed", err, 1);
    /* 5. Serve. */
    struct event_base *base = event_base_new();
    luna_http_server *srv = NULL;
    luna_http_server_opts so = {.component = RT_COMPONENT,
                                .bind_addr = rt->cfg.listen_address,
                                .port = rt->cfg.listen_port,
                                .tls = {rt->cfg.tls_ca, rt->cert_path, rt->key_path,
                                        rt->cfg.tls_tee_ca},
                                .max_body = RT_ARENA_LEN,
                                .timeout_sec = 60,
                                .handle_signals = true};
    if (base == NULL || (err = luna_http_server_new(base, &so, &srv)) != LUNA_OK ||
        (err = rt_http_routes(rt, srv)) != LUNA_OK)
        die("server start failed", err, 1);
    LUNA_LOGF(LUNA_LOG_INFO, RT_COMPONENT, "serving", LUNA_LOG_STR("tee_id", rt->tee_id),
              LUNA_LOG_UINT("port", luna_http_server_port(srv)));
    event_base_dispatch(base);
    luna_http_server_free(srv);
    event_base_free(base);
    rt_reset_memory(rt);
    luna_secret_free(rt->arena);
    luna_secret_free(rt->kx_sk);
    luna_secret_free(rt->sign_seed);
    EVP_PKEY_free(rt->tls_key);
    return 0;
}
