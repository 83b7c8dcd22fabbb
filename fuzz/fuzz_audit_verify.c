/*
 * Fuzz target: what `lunal audit verify` parses from the network and the
 * state file (luna/audit_verify.h): a proof answer, a checkpoint opened
 * with a fixed log key (and as a cosigned one), and a JSONL export chunk
 * fed to the root accumulator.  The first input byte picks the parser;
 * nothing may crash, leak or read out of bounds, and every refusal must
 * leave its output empty.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "luna/audit_verify.h"
#include "luna/note.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static luna_note_verifier log_key, wit_key;

static void setup(void)
{
    static int done;
    static const uint8_t s1[32] = {7}, s2[32] = {9};
    luna_note_signer *a = NULL, *b = NULL;
    if (done)
        return;
    if (luna_note_signer_new("lunal.audit/fuzz", 16, s1, &a) != LUNA_OK ||
        luna_note_signer_new("witness/fuzz", 12, s2, &b) != LUNA_OK)
        abort();
    luna_note_signer_verifier(a, &log_key);
    luna_note_signer_verifier(b, &wit_key);
    luna_note_signer_free(a);
    luna_note_signer_free(b);
    done = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size == 0)
        return 0;
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0: {
        luna_merkle_proof p;
        if (luna_audit_proof_parse(in, n, &p) != LUNA_OK && p.n != 0)
            abort();
        break;
    }
    case 1: {
        luna_audit_cp *cp = malloc(sizeof(*cp));
        if (cp == NULL)
            abort();
        if (luna_audit_cp_open(in, n, &log_key, NULL, cp) != LUNA_OK && cp->len != 0)
            abort();
        if (luna_audit_cp_open(in, n, &log_key, &wit_key, cp) != LUNA_OK && cp->len != 0)
            abort();
        free(cp);
        break;
    }
    default: {
        luna_audit_root_acc acc;
        uint8_t root[LUNA_MERKLE_HASH_LEN];
        uint64_t lines = 0;
        luna_audit_root_acc_init(&acc);
        /* Accepted input holds at least one line per byte run. */
        if (luna_audit_root_acc_add_jsonl(&acc, in, n, &lines) == LUNA_OK && n > 0 && lines == 0)
            abort();
        if (lines != acc.count || luna_audit_root_acc_root(&acc, root) != LUNA_OK)
            abort();
        break;
    }
    }
    return 0;
}
