/*
 * fuzz_envelope.c - the envelope parser and both open paths on arbitrary
 * bytes, with the fixed keys of the shipped "basic" vectors
 * (tests/data/envelope/) so seeds derived from them reach the AEAD and
 * receipt code.  Must never crash, leak, or read outside the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "luna/crypto.h"
#include "luna/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fill(uint8_t *b, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(seed + i * 7);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t client_sk[32], client_pk[32], tee_sk[32], tee_pk[32], otk[32], seed[32], spk[32];
    uint8_t meas[48];
    luna_envelope_header h;
    uint8_t *buf, *pt;
    size_t pt_len;

    fill(client_sk, 32, 0x11);
    fill(tee_sk, 32, 0x22);
    fill(otk, 32, 0x33);
    fill(seed, 32, 0x81);
    fill(meas, 48, 0x91);
    if (luna_x25519_public(client_sk, client_pk) != LUNA_OK ||
        luna_x25519_public(tee_sk, tee_pk) != LUNA_OK || luna_ed25519_public(seed, spk) != LUNA_OK)
        abort();

    /* Expected ids: the header's own when it parses, so the crypto path of
     * open is what gets fuzzed, not only the id comparison. */
    char tenant[LUNA_ENVELOPE_MAX_ID_LEN + 1] = "acme", job[LUNA_ENVELOPE_MAX_ID_LEN + 1] = "x",
         req[LUNA_ENVELOPE_MAX_ID_LEN + 1] = "r";
    if (luna_envelope_parse_header(data, size, &h) == LUNA_OK) {
        if (h.header_len + h.body_len != size || h.header_len > LUNA_ENVELOPE_MAX_HEADER_LEN)
            abort(); /* the parser's own invariant */
        memcpy(tenant, h.tenant, sizeof(tenant));
        memcpy(job, h.job, sizeof(job));
        memcpy(req, h.request_id, sizeof(req));
    }

    buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    luna_envelope_open_params op = {.tee_id = "tee-sim-01", .tenant = tenant, .job = job,
                                    .request_id = req, .tee_sk = tee_sk, .otk = otk,
                                    .client_pk = client_pk};
    if (luna_envelope_open(buf, size, &op, &h, &pt, &pt_len) == LUNA_OK) {
        if (pt < buf || pt_len > size || (size_t)(pt - buf) + pt_len > size)
            abort();
    }

    memcpy(buf, data, size);
    luna_result_open_params rp = {
        .expected = {"acme", "summarize", "tee-sim-01", "req-7f3a9c"},
        .client_sk = client_sk, .tee_pk = tee_pk, .tee_sign_pk = spk, .otk = otk,
        .expected_measurement = meas, .expected_measurement_len = sizeof(meas)};
    luna_receipt rc;
    uint8_t *res;
    size_t res_len;
    if (luna_result_open(buf, size, &rp, &rc, &res, &res_len) == LUNA_OK) {
        if (res < buf || (size_t)(res - buf) + res_len > size)
            abort();
    }
    free(buf);
    return 0;
}
