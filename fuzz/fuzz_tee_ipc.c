/*
 * fuzz_tee_ipc.c - the host <-> runtime message decoder (tee/ipc.c).
 * Property: a datagram the decoder accepts re-encodes to the same bytes
 * (one encoding per message), and nothing is read past the input.
 * The module is compiled into this target directly: the fuzz build links
 * only luna-core.
 */
#include <stdlib.h>
#include <string.h>

#include "../tee/ipc.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    luna_tee_msg m;
    if (luna_tee_ipc_decode(data, size, &m) != LUNA_OK)
        return 0;
    luna_wbuf w;
    if (luna_wbuf_init_alloc(&w, LUNA_TEE_IPC_MAX) != LUNA_OK)
        abort();
    if (luna_tee_ipc_encode(&m, &w) != LUNA_OK || w.len != size ||
        memcmp(w.data, data, size) != 0)
        abort();
    luna_wbuf_free(&w);
    return 0;
}
