/*
 * fuzz_hsm_ipc.c - the KMS <-> HSM process message codec
 * (kms/src/hsm_ipc.c), from either side: any datagram either parses with
 * exact sizes or is refused, and whatever parses rebuilds to the very same
 * bytes (so no two encodings of one message exist).
 *
 * The codec lives in kms/, which fuzz/CMakeLists.txt does not link; it is
 * compiled into this target directly (a self-contained file by design).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../kms/src/hsm_ipc.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t again[LUNA_HSM_MSG_MAX];
    luna_hsm_msg m;
    luna_hsm_body b;
    luna_wbuf w;

    if (luna_hsm_msg_parse(data, size, &m) != LUNA_OK)
        return 0;
    if (m.payload_len + LUNA_HSM_HDR_LEN != size)
        abort();
    (void)luna_hsm_msg_is_request(m.type);
    if (luna_hsm_body_parse(&m, &b) != LUNA_OK)
        return 0;
    luna_wbuf_init(&w, again, sizeof(again));
    if (luna_hsm_msg_build(&w, (luna_hsm_msg_type)m.type, m.id, &b) != LUNA_OK)
        abort();
    if (w.len != size || memcmp(again, data, size) != 0)
        abort();
    return 0;
}
