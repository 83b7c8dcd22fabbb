/*
 * Fuzz target: the signed manifest verifier and its payload parser
 * (luna/manifest.h).  Invariants: nothing reads outside the input;
 * nothing verifies against the fixture's pinned key (fresh per process,
 * so no input can carry its signature); a payload that parses is
 * canonical, so signing it again yields a manifest that verifies and
 * reads back the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "luna/crypto.h"
#include "luna/manifest.h"
#include "manifest_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t seed[32], pk[32];
static int ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    luna_manifest m, back;

    if (!ready) {
        if (luna_ed25519_keygen(seed, pk) != LUNA_OK)
            abort();
        ready = 1;
    }
    if (luna_manifest_verify((const char *)data, size, "dev", pk, &m) == LUNA_OK)
        abort();
    if (luna_manifest_parse_payload((const char *)data, size, &m) == LUNA_OK) {
        char *jws = NULL;
        size_t len = 0;
        if (luna_manifest_sign(&m, seed, &jws, &len) != LUNA_OK)
            abort();
        luna_err err = luna_manifest_verify(jws, len, m.developer_id, pk, &back);
        free(jws);
        if (err != LUNA_OK || strcmp(back.name, m.name) != 0 || back.n_jobs != m.n_jobs ||
            memcmp(back.build_hash, m.build_hash, sizeof(m.build_hash)) != 0)
            abort();
    }
    return 0;
}
