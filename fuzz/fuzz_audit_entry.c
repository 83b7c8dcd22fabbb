/*
 * Fuzz target: the audit entry parsers (luna/audit_entry.h) - the
 * canonical leaf decoder and the writer's request body parser.
 * Invariants: a decoded leaf encodes back to exactly the input (one
 * encoding per entry); every accepted string passes the whitelists (no
 * byte that JSON would escape); a parsed request, given a component and a
 * time, encodes and decodes back to the same entry.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "luna/audit_entry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void no_escapable(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (b[i] < 0x20 || b[i] > 0x7e || b[i] == '\\')
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[LUNA_AUDIT_ENTRY_MAX];
    luna_audit_entry e, back;
    size_t n = 0;
    if (luna_audit_entry_decode(data, size, &e) == LUNA_OK) {
        if (luna_audit_entry_encode(&e, out, sizeof(out), &n) != LUNA_OK || n != size ||
            memcmp(out, data, size) != 0)
            abort();
        no_escapable(out, n);
    }
    if (luna_audit_entry_parse_request(data, size, &e, NULL) == LUNA_OK) {
        memcpy(e.component, "lunal://svc/fuzz", sizeof("lunal://svc/fuzz"));
        e.time_ms = 1;
        if (luna_audit_entry_encode(&e, out, sizeof(out), &n) != LUNA_OK)
            abort();
        no_escapable(out, n);
        if (luna_audit_entry_decode(out, n, &back) != LUNA_OK ||
            !luna_audit_entry_same_request(&e, &back) || strcmp(back.component, e.component) != 0)
            abort();
    }
    return 0;
}
