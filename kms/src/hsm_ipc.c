/*
 * hsm_ipc.c - codec of the KMS <-> HSM process messages (hsm_ipc.h).
 *
 * Owns the exact size rule of every message type.  It must never read a
 * byte except through luna_reader, never accept a message whose sizes do
 * not add up exactly, and never log (payloads may hold key material).
 */
#include "hsm_ipc.h"

#include <stdbool.h>

int luna_hsm_msg_is_request(uint16_t type)
{
    switch (type) {
    case LUNA_HSM_MSG_PING:
    case LUNA_HSM_MSG_CHECK_ROOT:
    case LUNA_HSM_MSG_GEN_KEK:
    case LUNA_HSM_MSG_SEAL:
    case LUNA_HSM_MSG_OPEN:
    case LUNA_HSM_MSG_GEN_DATA_KEY:
    case LUNA_HSM_MSG_MAC_SIGN:
    case LUNA_HSM_MSG_MAC_VERIFY:
        return 1;
    default:
        return 0;
    }
}

static bool known_type(uint16_t type)
{
    return type >= LUNA_HSM_MSG_READY && type <= LUNA_HSM_MSG_MAC_OK;
}

luna_err luna_hsm_msg_parse(const uint8_t *buf, size_t len, luna_hsm_msg *out)
{
    luna_reader r;
    uint16_t type, reserved;
    uint32_t id, plen;

    LUNA_ENSURE(out != NULL && (buf != NULL || len == 0), LUNA_ERR_INVALID_ARG);
    *out = (luna_hsm_msg){0};
    LUNA_ENSURE(len >= LUNA_HSM_HDR_LEN, LUNA_ERR_FORMAT);
    LUNA_ENSURE(len <= LUNA_HSM_MSG_MAX, LUNA_ERR_FORMAT);
    luna_reader_init(&r, buf, len);
    LUNA_GUARD(luna_read_u16(&r, &type));
    LUNA_GUARD(luna_read_u16(&r, &reserved));
    LUNA_GUARD(luna_read_u32(&r, &id));
    LUNA_GUARD(luna_read_u32(&r, &plen));
    LUNA_ENSURE(reserved == 0, LUNA_ERR_FORMAT);
    LUNA_ENSURE(known_type(type), LUNA_ERR_FORMAT);
    LUNA_ENSURE((size_t)plen == luna_reader_left(&r), LUNA_ERR_FORMAT);
    out->type = type;
    out->id = id;
    out->payload_len = plen;
    return luna_read_view(&r, &out->payload, plen);
}

/* u16 length then that many bytes, the length within [min, max]. */
static luna_err read_var(luna_reader *r, size_t min, size_t max, const uint8_t **p, size_t *n)
{
    uint16_t l;
    LUNA_GUARD(luna_read_u16(r, &l));
    LUNA_ENSURE(l >= min && l <= max, LUNA_ERR_FORMAT);
    *n = l;
    return luna_read_view(r, p, l);
}

/* The rest of the payload as data, its length within [min, max]. */
static luna_err read_rest(luna_reader *r, size_t min, size_t max, const uint8_t **p, size_t *n)
{
    size_t left = luna_reader_left(r);
    LUNA_ENSURE(left >= min && left <= max, LUNA_ERR_FORMAT);
    *n = left;
    return luna_read_view(r, p, left);
}

luna_err luna_hsm_body_parse(const luna_hsm_msg *msg, luna_hsm_body *out)
{
    luna_reader r;

    LUNA_ENSURE(msg != NULL && out != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(msg->payload != NULL || msg->payload_len == 0, LUNA_ERR_INVALID_ARG);
    *out = (luna_hsm_body){0};
    luna_reader_init(&r, msg->payload, msg->payload_len);
    switch (msg->type) {
    case LUNA_HSM_MSG_READY:
    case LUNA_HSM_MSG_ERROR:
        LUNA_GUARD(luna_read_u32(&r, &out->err));
        LUNA_GUARD(luna_read_u32(&r, &out->rv));
        LUNA_ENSURE(out->err < (uint32_t)LUNA_ERR__COUNT, LUNA_ERR_FORMAT);
        LUNA_ENSURE(msg->type == LUNA_HSM_MSG_READY || out->err != 0, LUNA_ERR_FORMAT);
        break;
    case LUNA_HSM_MSG_PING:
    case LUNA_HSM_MSG_PONG:
    case LUNA_HSM_MSG_CHECK_ROOT:
    case LUNA_HSM_MSG_ROOT_OK:
    case LUNA_HSM_MSG_GEN_KEK:
    case LUNA_HSM_MSG_MAC_OK:
        break;
    case LUNA_HSM_MSG_KEK:
        LUNA_GUARD(luna_read_view(&r, &out->wrapped, LUNA_HSM_WRAPPED_LEN));
        break;
    case LUNA_HSM_MSG_SEAL:
        LUNA_GUARD(luna_read_view(&r, &out->wrapped, LUNA_HSM_WRAPPED_LEN));
        LUNA_GUARD(read_var(&r, 0, LUNA_HSM_AAD_MAX, &out->aad, &out->aad_len));
        LUNA_GUARD(read_var(&r, 1, LUNA_HSM_SEAL_MAX, &out->data, &out->data_len));
        break;
    case LUNA_HSM_MSG_OPEN:
        LUNA_GUARD(luna_read_view(&r, &out->wrapped, LUNA_HSM_WRAPPED_LEN));
        LUNA_GUARD(read_var(&r, 0, LUNA_HSM_AAD_MAX, &out->aad, &out->aad_len));
        LUNA_GUARD(read_var(&r, LUNA_HSM_SEAL_OVERHEAD + 1,
                            LUNA_HSM_SEAL_OVERHEAD + LUNA_HSM_SEAL_MAX, &out->data,
                            &out->data_len));
        break;
    case LUNA_HSM_MSG_SEALED:
        LUNA_GUARD(read_rest(&r, LUNA_HSM_SEAL_OVERHEAD + 1,
                             LUNA_HSM_SEAL_OVERHEAD + LUNA_HSM_SEAL_MAX, &out->data,
                             &out->data_len));
        break;
    case LUNA_HSM_MSG_OPENED:
        LUNA_GUARD(read_rest(&r, 1, LUNA_HSM_SEAL_MAX, &out->data, &out->data_len));
        break;
    case LUNA_HSM_MSG_GEN_DATA_KEY:
        LUNA_GUARD(luna_read_view(&r, &out->wrapped, LUNA_HSM_WRAPPED_LEN));
        LUNA_GUARD(read_var(&r, 0, LUNA_HSM_AAD_MAX, &out->aad, &out->aad_len));
        break;
    case LUNA_HSM_MSG_DATA_KEY:
        LUNA_GUARD(read_rest(&r, LUNA_HSM_KEY_LEN + LUNA_HSM_SEALED_KEY_LEN,
                             LUNA_HSM_KEY_LEN + LUNA_HSM_SEALED_KEY_LEN, &out->data,
                             &out->data_len));
        break;
    case LUNA_HSM_MSG_MAC_SIGN:
        LUNA_GUARD(read_var(&r, 0, LUNA_HSM_MAC_MSG_MAX, &out->data, &out->data_len));
        break;
    case LUNA_HSM_MSG_MAC:
        LUNA_GUARD(luna_read_view(&r, &out->tag, LUNA_HSM_MAC_LEN));
        break;
    case LUNA_HSM_MSG_MAC_VERIFY:
        LUNA_GUARD(luna_read_view(&r, &out->tag, LUNA_HSM_MAC_LEN));
        LUNA_GUARD(read_var(&r, 0, LUNA_HSM_MAC_MSG_MAX, &out->data, &out->data_len));
        break;
    default:
        return LUNA_ERR_FORMAT;
    }
    /* Exact: a single trailing byte is as fatal as a missing one. */
    return luna_read_end(&r);
}

/* Payload size of body as type, checking caps the parser enforces. */
static luna_err body_len(luna_hsm_msg_type type, const luna_hsm_body *b, size_t *out)
{
    switch (type) {
    case LUNA_HSM_MSG_READY:
    case LUNA_HSM_MSG_ERROR:
        LUNA_ENSURE(b->err < (uint32_t)LUNA_ERR__COUNT, LUNA_ERR_INVALID_ARG);
        LUNA_ENSURE(type == LUNA_HSM_MSG_READY || b->err != 0, LUNA_ERR_INVALID_ARG);
        *out = 8;
        return LUNA_OK;
    case LUNA_HSM_MSG_PING:
    case LUNA_HSM_MSG_PONG:
    case LUNA_HSM_MSG_CHECK_ROOT:
    case LUNA_HSM_MSG_ROOT_OK:
    case LUNA_HSM_MSG_GEN_KEK:
    case LUNA_HSM_MSG_MAC_OK:
        *out = 0;
        return LUNA_OK;
    case LUNA_HSM_MSG_KEK:
        LUNA_ENSURE(b->wrapped != NULL, LUNA_ERR_INVALID_ARG);
        *out = LUNA_HSM_WRAPPED_LEN;
        return LUNA_OK;
    case LUNA_HSM_MSG_SEAL:
    case LUNA_HSM_MSG_OPEN:
    case LUNA_HSM_MSG_GEN_DATA_KEY: {
        size_t dmin = 1, dmax = LUNA_HSM_SEAL_MAX;
        LUNA_ENSURE(b->wrapped != NULL, LUNA_ERR_INVALID_ARG);
        LUNA_ENSURE(b->aad != NULL || b->aad_len == 0, LUNA_ERR_INVALID_ARG);
        LUNA_ENSURE(b->aad_len <= LUNA_HSM_AAD_MAX, LUNA_ERR_TOO_LARGE);
        *out = LUNA_HSM_WRAPPED_LEN + 2 + b->aad_len;
        if (type == LUNA_HSM_MSG_GEN_DATA_KEY)
            return LUNA_OK;
        if (type == LUNA_HSM_MSG_OPEN) {
            dmin += LUNA_HSM_SEAL_OVERHEAD;
            dmax += LUNA_HSM_SEAL_OVERHEAD;
        }
        LUNA_ENSURE(b->data != NULL, LUNA_ERR_INVALID_ARG);
        LUNA_ENSURE(b->data_len <= dmax, LUNA_ERR_TOO_LARGE);
        LUNA_ENSURE(b->data_len >= dmin, LUNA_ERR_INVALID_ARG);
        *out += 2 + b->data_len;
        return LUNA_OK;
    }
    case LUNA_HSM_MSG_SEALED:
        LUNA_ENSURE(b->data != NULL, LUNA_ERR_INVALID_ARG);
        LUNA_ENSURE(b->data_len > LUNA_HSM_SEAL_OVERHEAD &&
                        b->data_len <= LUNA_HSM_SEAL_OVERHEAD + LUNA_HSM_SEAL_MAX,
                    LUNA_ERR_INVALID_ARG);
        *out = b->data_len;
        return LUNA_OK;
    case LUNA_HSM_MSG_OPENED:
        LUNA_ENSURE(b->data != NULL, LUNA_ERR_INVALID_ARG);
        LUNA_ENSURE(b->data_len >= 1 && b->data_len <= LUNA_HSM_SEAL_MAX, LUNA_ERR_INVALID_ARG);
        *out = b->data_len;
        return LUNA_OK;
    case LUNA_HSM_MSG_DATA_KEY:
        LUNA_ENSURE(b->data != NULL, LUNA_ERR_INVALID_ARG);
        LUNA_ENSURE(b->data_len == LUNA_HSM_KEY_LEN + LUNA_HSM_SEALED_KEY_LEN,
                    LUNA_ERR_INVALID_ARG);
        *out = b->data_len;
        return LUNA_OK;
    case LUNA_HSM_MSG_MAC_SIGN:
    case LUNA_HSM_MSG_MAC_VERIFY:
        LUNA_ENSURE(b->data != NULL || b->data_len == 0, LUNA_ERR_INVALID_ARG);
        LUNA_ENSURE(b->data_len <= LUNA_HSM_MAC_MSG_MAX, LUNA_ERR_TOO_LARGE);
        *out = 2 + b->data_len;
        if (type == LUNA_HSM_MSG_MAC_VERIFY) {
            LUNA_ENSURE(b->tag != NULL, LUNA_ERR_INVALID_ARG);
            *out += LUNA_HSM_MAC_LEN;
        }
        return LUNA_OK;
    case LUNA_HSM_MSG_MAC:
        LUNA_ENSURE(b->tag != NULL, LUNA_ERR_INVALID_ARG);
        *out = LUNA_HSM_MAC_LEN;
        return LUNA_OK;
    default:
        return LUNA_ERR_INVALID_ARG;
    }
}

static luna_err write_var(luna_wbuf *w, const uint8_t *p, size_t n)
{
    LUNA_GUARD(luna_write_u16(w, (uint16_t)n));
    return n == 0 ? LUNA_OK : luna_write_bytes(w, p, n);
}

luna_err luna_hsm_msg_build(luna_wbuf *w, luna_hsm_msg_type type, uint32_t id,
                            const luna_hsm_body *body)
{
    static const luna_hsm_body empty;
    const luna_hsm_body *b = body != NULL ? body : &empty;
    size_t plen = 0;

    LUNA_ENSURE(w != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_GUARD(body_len(type, b, &plen));
    LUNA_ENSURE(plen <= LUNA_HSM_PAYLOAD_MAX, LUNA_ERR_TOO_LARGE);
    LUNA_GUARD(luna_write_u16(w, (uint16_t)type));
    LUNA_GUARD(luna_write_u16(w, 0));
    LUNA_GUARD(luna_write_u32(w, id));
    LUNA_GUARD(luna_write_u32(w, (uint32_t)plen));
    switch (type) {
    case LUNA_HSM_MSG_READY:
    case LUNA_HSM_MSG_ERROR:
        LUNA_GUARD(luna_write_u32(w, b->err));
        return luna_write_u32(w, b->rv);
    case LUNA_HSM_MSG_KEK:
        return luna_write_bytes(w, b->wrapped, LUNA_HSM_WRAPPED_LEN);
    case LUNA_HSM_MSG_SEAL:
    case LUNA_HSM_MSG_OPEN:
    case LUNA_HSM_MSG_GEN_DATA_KEY:
        LUNA_GUARD(luna_write_bytes(w, b->wrapped, LUNA_HSM_WRAPPED_LEN));
        LUNA_GUARD(write_var(w, b->aad, b->aad_len));
        if (type == LUNA_HSM_MSG_GEN_DATA_KEY)
            return LUNA_OK;
        return write_var(w, b->data, b->data_len);
    case LUNA_HSM_MSG_SEALED:
    case LUNA_HSM_MSG_OPENED:
    case LUNA_HSM_MSG_DATA_KEY:
        return luna_write_bytes(w, b->data, b->data_len);
    case LUNA_HSM_MSG_MAC_SIGN:
        return write_var(w, b->data, b->data_len);
    case LUNA_HSM_MSG_MAC:
        return luna_write_bytes(w, b->tag, LUNA_HSM_MAC_LEN);
    case LUNA_HSM_MSG_MAC_VERIFY:
        LUNA_GUARD(luna_write_bytes(w, b->tag, LUNA_HSM_MAC_LEN));
        return write_var(w, b->data, b->data_len);
    default:
        return LUNA_OK; /* the empty-payload types */
    }
}
