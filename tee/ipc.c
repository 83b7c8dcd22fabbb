/*
 * ipc.c - encoder, strict decoder and datagram I/O of the host <->
 * runtime messages (ipc.h).  Owns the only parser of what a runtime sends
 * its platform and back.  Must never read past a datagram, accept a field
 * over its cap, or let a length field disagree with the bytes present.
 */
#include "ipc.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

static bool id_ok(const uint8_t *id, size_t len)
{
    if (len < 1 || len > LUNA_TEE_IPC_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static luna_err decode_body(luna_reader *r, luna_tee_msg *m)
{
    uint8_t u8;
    uint32_t u32;
    switch (m->type) {
    case LUNA_TEE_MSG_CONFIG:
        LUNA_GUARD(luna_read_u8(r, &u8));
        m->tee_id_len = u8;
        LUNA_GUARD(luna_read_view(r, &m->tee_id, m->tee_id_len));
        LUNA_ENSURE(id_ok(m->tee_id, m->tee_id_len), LUNA_ERR_FORMAT);
        LUNA_GUARD(luna_read_u32(r, &u32));
        LUNA_ENSURE(u32 >= 1 && u32 <= LUNA_TEE_IPC_CONFIG_MAX, LUNA_ERR_FORMAT);
        m->config_len = u32;
        return luna_read_view(r, &m->config, m->config_len);
    case LUNA_TEE_MSG_LOADED:
        LUNA_GUARD(luna_read_u64(r, &m->bundle_addr));
        LUNA_ENSURE(m->bundle_addr != 0, LUNA_ERR_FORMAT);
        return LUNA_OK;
    case LUNA_TEE_MSG_MEASURED:
        LUNA_GUARD(luna_read_u16(r, &m->status));
        LUNA_GUARD(luna_read_view(r, &m->mr_enclave, LUNA_TEE_MR_LEN));
        return luna_read_view(r, &m->mr_signer, LUNA_TEE_MR_LEN);
    case LUNA_TEE_MSG_EVIDENCE_REQ:
        LUNA_GUARD(luna_read_view(r, &m->nonce, LUNA_TEE_KEY_LEN));
        LUNA_GUARD(luna_read_view(r, &m->x25519, LUNA_TEE_KEY_LEN));
        LUNA_GUARD(luna_read_view(r, &m->ed25519, LUNA_TEE_KEY_LEN));
        LUNA_GUARD(luna_read_u64(r, &m->arena_addr));
        LUNA_GUARD(luna_read_u64(r, &m->arena_len));
        LUNA_ENSURE(m->arena_addr != 0 && m->arena_len >= 1 &&
                        m->arena_len <= LUNA_TEE_IPC_ARENA_MAX &&
                        m->arena_addr <= UINT64_MAX - m->arena_len,
                    LUNA_ERR_FORMAT);
        return LUNA_OK;
    case LUNA_TEE_MSG_EVIDENCE:
        LUNA_GUARD(luna_read_u16(r, &m->status));
        LUNA_GUARD(luna_read_u32(r, &u32));
        LUNA_ENSURE(u32 <= LUNA_TEE_IPC_EVIDENCE_MAX, LUNA_ERR_FORMAT);
        /* Evidence exactly when the status says success. */
        LUNA_ENSURE((m->status == 0) == (u32 > 0), LUNA_ERR_FORMAT);
        m->evidence_len = u32;
        return luna_read_view(r, &m->evidence, m->evidence_len);
    case LUNA_TEE_MSG_ADMIT_REQ: {
        uint16_t n;
        LUNA_GUARD(luna_read_view(r, &m->x25519, LUNA_TEE_KEY_LEN));
        LUNA_GUARD(luna_read_view(r, &m->ed25519, LUNA_TEE_KEY_LEN));
        LUNA_GUARD(luna_read_u16(r, &n));
        LUNA_ENSURE(n >= 1 && n <= LUNA_TEE_IPC_SPKI_MAX, LUNA_ERR_FORMAT);
        m->spki_len = n;
        LUNA_GUARD(luna_read_view(r, &m->spki, m->spki_len));
        LUNA_GUARD(luna_read_u64(r, &m->arena_addr));
        LUNA_GUARD(luna_read_u64(r, &m->arena_len));
        LUNA_GUARD(luna_read_u16(r, &m->port));
        LUNA_ENSURE(m->arena_addr != 0 && m->arena_len >= 1 &&
                        m->arena_len <= LUNA_TEE_IPC_ARENA_MAX &&
                        m->arena_addr <= UINT64_MAX - m->arena_len && m->port != 0,
                    LUNA_ERR_FORMAT);
        return LUNA_OK;
    }
    case LUNA_TEE_MSG_ADMITTED:
        LUNA_GUARD(luna_read_u16(r, &m->status));
        LUNA_GUARD(luna_read_u32(r, &u32));
        LUNA_ENSURE(u32 <= LUNA_TEE_IPC_CERT_MAX && (m->status == 0) == (u32 > 0), LUNA_ERR_FORMAT);
        m->cert_len = u32;
        LUNA_GUARD(luna_read_view(r, &m->cert, m->cert_len));
        LUNA_GUARD(luna_read_u32(r, &u32));
        LUNA_ENSURE(u32 <= LUNA_TEE_IPC_REPORT_MAX && (m->status == 0) == (u32 > 0),
                    LUNA_ERR_FORMAT);
        m->report_len = u32;
        return luna_read_view(r, &m->report, m->report_len);
    default:
        return LUNA_ERR_UNSUPPORTED;
    }
}

luna_err luna_tee_ipc_decode(const uint8_t *buf, size_t len, luna_tee_msg *out)
{
    if (buf == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if (len > LUNA_TEE_IPC_MAX)
        return LUNA_ERR_TOO_LARGE;
    luna_reader r;
    luna_reader_init(&r, buf, len);
    uint8_t version;
    uint16_t reserved;
    uint32_t body_len;
    luna_tee_msg m;
    memset(&m, 0, sizeof(m));
    LUNA_GUARD(luna_read_u8(&r, &version));
    LUNA_GUARD(luna_read_u8(&r, &m.type));
    LUNA_GUARD(luna_read_u16(&r, &reserved));
    LUNA_GUARD(luna_read_u32(&r, &body_len));
    LUNA_ENSURE(version == LUNA_TEE_IPC_VERSION, LUNA_ERR_UNSUPPORTED);
    LUNA_ENSURE(m.type >= 1 && m.type <= LUNA_TEE_MSG_TYPE_MAX, LUNA_ERR_UNSUPPORTED);
    LUNA_ENSURE(reserved == 0, LUNA_ERR_FORMAT);
    LUNA_ENSURE(body_len == luna_reader_left(&r), LUNA_ERR_FORMAT);
    LUNA_GUARD(decode_body(&r, &m));
    LUNA_GUARD(luna_read_end(&r));
    *out = m;
    return LUNA_OK;
}

static luna_err encode_body(const luna_tee_msg *m, luna_wbuf *w)
{
    switch (m->type) {
    case LUNA_TEE_MSG_CONFIG:
        LUNA_ENSURE(m->tee_id != NULL && id_ok(m->tee_id, m->tee_id_len), LUNA_ERR_INVALID_ARG);
        LUNA_ENSURE(m->config != NULL && m->config_len >= 1 &&
                        m->config_len <= LUNA_TEE_IPC_CONFIG_MAX,
                    LUNA_ERR_INVALID_ARG);
        LUNA_GUARD(luna_write_u8(w, (uint8_t)m->tee_id_len));
        LUNA_GUARD(luna_write_bytes(w, m->tee_id, m->tee_id_len));
        LUNA_GUARD(luna_write_u32(w, (uint32_t)m->config_len));
        return luna_write_bytes(w, m->config, m->config_len);
    case LUNA_TEE_MSG_LOADED:
        LUNA_ENSURE(m->bundle_addr != 0, LUNA_ERR_INVALID_ARG);
        return luna_write_u64(w, m->bundle_addr);
    case LUNA_TEE_MSG_MEASURED:
        LUNA_ENSURE(m->mr_enclave != NULL && m->mr_signer != NULL, LUNA_ERR_INVALID_ARG);
        LUNA_GUARD(luna_write_u16(w, m->status));
        LUNA_GUARD(luna_write_bytes(w, m->mr_enclave, LUNA_TEE_MR_LEN));
        return luna_write_bytes(w, m->mr_signer, LUNA_TEE_MR_LEN);
    case LUNA_TEE_MSG_EVIDENCE_REQ:
        LUNA_ENSURE(m->nonce != NULL && m->x25519 != NULL && m->ed25519 != NULL &&
                        m->arena_addr != 0 && m->arena_len >= 1 &&
                        m->arena_len <= LUNA_TEE_IPC_ARENA_MAX &&
                        m->arena_addr <= UINT64_MAX - m->arena_len,
                    LUNA_ERR_INVALID_ARG);
        LUNA_GUARD(luna_write_bytes(w, m->nonce, LUNA_TEE_KEY_LEN));
        LUNA_GUARD(luna_write_bytes(w, m->x25519, LUNA_TEE_KEY_LEN));
        LUNA_GUARD(luna_write_bytes(w, m->ed25519, LUNA_TEE_KEY_LEN));
        LUNA_GUARD(luna_write_u64(w, m->arena_addr));
        return luna_write_u64(w, m->arena_len);
    case LUNA_TEE_MSG_EVIDENCE:
        LUNA_ENSURE(m->evidence_len <= LUNA_TEE_IPC_EVIDENCE_MAX &&
                        (m->status == 0) == (m->evidence_len > 0) &&
                        (m->evidence_len == 0 || m->evidence != NULL),
                    LUNA_ERR_INVALID_ARG);
        LUNA_GUARD(luna_write_u16(w, m->status));
        LUNA_GUARD(luna_write_u32(w, (uint32_t)m->evidence_len));
        return luna_write_bytes(w, m->evidence, m->evidence_len);
    case LUNA_TEE_MSG_ADMIT_REQ:
        LUNA_ENSURE(m->x25519 != NULL && m->ed25519 != NULL && m->spki != NULL &&
                        m->spki_len >= 1 && m->spki_len <= LUNA_TEE_IPC_SPKI_MAX &&
                        m->arena_addr != 0 && m->arena_len >= 1 &&
                        m->arena_len <= LUNA_TEE_IPC_ARENA_MAX &&
                        m->arena_addr <= UINT64_MAX - m->arena_len && m->port != 0,
                    LUNA_ERR_INVALID_ARG);
        LUNA_GUARD(luna_write_bytes(w, m->x25519, LUNA_TEE_KEY_LEN));
        LUNA_GUARD(luna_write_bytes(w, m->ed25519, LUNA_TEE_KEY_LEN));
        LUNA_GUARD(luna_write_u16(w, (uint16_t)m->spki_len));
        LUNA_GUARD(luna_write_bytes(w, m->spki, m->spki_len));
        LUNA_GUARD(luna_write_u64(w, m->arena_addr));
        LUNA_GUARD(luna_write_u64(w, m->arena_len));
        return luna_write_u16(w, m->port);
    case LUNA_TEE_MSG_ADMITTED:
        LUNA_ENSURE(m->cert_len <= LUNA_TEE_IPC_CERT_MAX &&
                        m->report_len <= LUNA_TEE_IPC_REPORT_MAX &&
                        (m->status == 0) == (m->cert_len > 0) &&
                        (m->status == 0) == (m->report_len > 0) &&
                        (m->cert_len == 0 || m->cert != NULL) &&
                        (m->report_len == 0 || m->report != NULL),
                    LUNA_ERR_INVALID_ARG);
        LUNA_GUARD(luna_write_u16(w, m->status));
        LUNA_GUARD(luna_write_u32(w, (uint32_t)m->cert_len));
        LUNA_GUARD(luna_write_bytes(w, m->cert, m->cert_len));
        LUNA_GUARD(luna_write_u32(w, (uint32_t)m->report_len));
        return luna_write_bytes(w, m->report, m->report_len);
    default:
        return LUNA_ERR_INVALID_ARG;
    }
}

luna_err luna_tee_ipc_encode(const luna_tee_msg *m, luna_wbuf *out)
{
    if (m == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    size_t start = out->len;
    LUNA_GUARD(luna_write_u8(out, LUNA_TEE_IPC_VERSION));
    LUNA_GUARD(luna_write_u8(out, m->type));
    LUNA_GUARD(luna_write_u16(out, 0));
    LUNA_GUARD(luna_write_u32(out, 0)); /* patched below */
    luna_err err = encode_body(m, out);
    if (err != LUNA_OK) {
        out->len = start;
        return err;
    }
    size_t body = out->len - start - LUNA_TEE_IPC_HEADER_LEN;
    if (out->len - start > LUNA_TEE_IPC_MAX) {
        out->len = start;
        return LUNA_ERR_TOO_LARGE;
    }
    uint8_t *p = out->data + start + 4;
    p[0] = (uint8_t)(body >> 24);
    p[1] = (uint8_t)(body >> 16);
    p[2] = (uint8_t)(body >> 8);
    p[3] = (uint8_t)body;
    return LUNA_OK;
}

luna_err luna_tee_ipc_send(int fd, const luna_tee_msg *m)
{
    luna_wbuf w;
    LUNA_GUARD(luna_wbuf_init_alloc(&w, LUNA_TEE_IPC_MAX));
    luna_err err = luna_tee_ipc_encode(m, &w);
    if (err == LUNA_OK) {
        ssize_t n;
        do {
            n = send(fd, w.data, w.len, MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
        if (n < 0 || (size_t)n != w.len)
            err = LUNA_ERR_IO;
    }
    luna_wbuf_free(&w);
    return err;
}

luna_err luna_tee_ipc_recv(int fd, uint8_t *buf, size_t cap, int timeout_ms, luna_tee_msg *out)
{
    if (buf == NULL || out == NULL || cap < LUNA_TEE_IPC_MAX)
        return LUNA_ERR_INVALID_ARG;
    struct pollfd p = {fd, POLLIN, 0};
    int rc;
    do {
        rc = poll(&p, 1, timeout_ms);
    } while (rc < 0 && errno == EINTR);
    if (rc == 0)
        return LUNA_ERR_TIMEOUT;
    if (rc < 0)
        return LUNA_ERR_IO;
    ssize_t n;
    do {
        n = recv(fd, buf, cap, MSG_TRUNC);
    } while (n < 0 && errno == EINTR);
    if (n == 0)
        return LUNA_ERR_UNAVAILABLE;
    if (n < 0)
        return LUNA_ERR_IO;
    if ((size_t)n > cap)
        return LUNA_ERR_TOO_LARGE;
    return luna_tee_ipc_decode(buf, (size_t)n, out);
}
