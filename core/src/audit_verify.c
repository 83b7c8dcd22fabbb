/*
 * audit_verify.c - the audit log verifier's checks (luna/audit_verify.h).
 * Owns: the rules a verifier applies to what the log and the witness
 * served.  Must never: take a size or root from anything but a checkpoint
 * opened with a pinned key, or report LUNA_OK for a proof it did not
 * verify.
 */
#include "luna/audit_verify.h"

#include <string.h>

#include <jansson.h>

#include "luna/audit_entry.h"
#include "luna/bytes.h"

luna_err luna_audit_cp_open(const void *note, size_t len, const luna_note_verifier *log_key,
                            const luna_note_verifier *witness_key, luna_audit_cp *out)
{
    luna_note n;
    luna_note_checkpoint cp;
    luna_err err;

    if (out == NULL)
        return LUNA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if (note == NULL || log_key == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (len > sizeof(out->note))
        return LUNA_ERR_TOO_LARGE;
    /* Opened once per key: luna_note_open accepts a note signed by any ONE
     * known key, and both signatures are required here. */
    err = luna_note_checkpoint_open(note, len, log_key->name, log_key->name_len, log_key, 1, &n,
                                    &cp);
    if (err == LUNA_OK && witness_key != NULL) {
        luna_note wn;
        luna_note_checkpoint wcp;
        err = luna_note_checkpoint_open(note, len, log_key->name, log_key->name_len, witness_key,
                                        1, &wn, &wcp);
    }
    if (err != LUNA_OK)
        return err == LUNA_ERR_TOO_LARGE ? err
                                         : (err == LUNA_ERR_FORMAT ? err : LUNA_ERR_VERIFY);
    memcpy(out->note, note, len);
    out->len = len;
    out->size = cp.size;
    memcpy(out->root, cp.root, LUNA_MERKLE_HASH_LEN);
    return LUNA_OK;
}

luna_err luna_audit_proof_parse(const void *body, size_t len, luna_merkle_proof *out)
{
    json_error_t jerr;
    json_t *o;
    const json_t *arr;
    luna_err err = LUNA_OK;

    if (out == NULL)
        return LUNA_ERR_INVALID_ARG;
    luna_merkle_proof_init(out);
    if (body == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (len > LUNA_AUDIT_PROOF_BODY_MAX)
        return LUNA_ERR_TOO_LARGE;
    o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL)
        return LUNA_ERR_FORMAT;
    arr = json_object_get(o, "proof");
    if (!json_is_object(o) || !json_is_array(arr))
        err = LUNA_ERR_FORMAT;
    for (size_t i = 0; err == LUNA_OK && i < json_array_size(arr); i++) {
        const json_t *s = json_array_get(arr, i);
        uint8_t h[LUNA_MERKLE_HASH_LEN];
        size_t n = 0;
        if (!json_is_string(s) || json_string_length(s) != 2 * LUNA_MERKLE_HASH_LEN) {
            err = LUNA_ERR_FORMAT;
            break;
        }
        err = luna_hex_decode(json_string_value(s), json_string_length(s), h, sizeof(h), &n);
        if (err == LUNA_OK)
            err = luna_merkle_proof_add(out, h, n);
    }
    json_decref(o);
    if (err != LUNA_OK)
        luna_merkle_proof_init(out);
    return err;
}

luna_err luna_audit_check_consistency(const luna_audit_cp *kept, const luna_audit_cp *now,
                                      const luna_merkle_proof *proof)
{
    if (kept == NULL || now == NULL || proof == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (kept->size == 0)
        return LUNA_OK;
    if (now->size < kept->size)
        return LUNA_ERR_CONFLICT;
    if (now->size == kept->size) {
        /* Roots are public: no need for a constant-time compare, but one
         * costs nothing. */
        if (proof->n != 0 || !luna_ct_equal(kept->root, now->root, LUNA_MERKLE_HASH_LEN))
            return LUNA_ERR_VERIFY;
        return LUNA_OK;
    }
    if (luna_merkle_verify_consistency(kept->size, now->size, kept->root, LUNA_MERKLE_HASH_LEN,
                                       now->root, LUNA_MERKLE_HASH_LEN, proof) != LUNA_OK)
        return LUNA_ERR_VERIFY;
    return LUNA_OK;
}

luna_err luna_audit_check_inclusion(const luna_audit_cp *cp, uint64_t index, const uint8_t *leaf,
                                    size_t len, const luna_merkle_proof *proof,
                                    uint8_t leaf_hash[LUNA_MERKLE_HASH_LEN])
{
    luna_audit_entry e;
    uint8_t h[LUNA_MERKLE_HASH_LEN];

    if (cp == NULL || leaf == NULL || proof == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (index >= cp->size)
        return LUNA_ERR_VERIFY;
    LUNA_GUARD(luna_audit_entry_decode(leaf, len, &e));
    LUNA_GUARD(luna_merkle_leaf_hash(leaf, len, h));
    if (luna_merkle_verify_inclusion(index, cp->size, h, sizeof(h), proof, cp->root,
                                     LUNA_MERKLE_HASH_LEN) != LUNA_OK)
        return LUNA_ERR_VERIFY;
    if (leaf_hash != NULL)
        memcpy(leaf_hash, h, sizeof(h));
    return LUNA_OK;
}

void luna_audit_root_acc_init(luna_audit_root_acc *a)
{
    memset(a, 0, sizeof(*a));
}

luna_err luna_audit_root_acc_add(luna_audit_root_acc *a, const uint8_t *leaf, size_t len)
{
    luna_audit_entry e;

    if (a == NULL || leaf == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (a->count == UINT64_MAX)
        return LUNA_ERR_TOO_LARGE;
    LUNA_GUARD(luna_audit_entry_decode(leaf, len, &e));
    /* depth <= popcount(count) + 1 <= 64 before the merges below. */
    LUNA_GUARD(luna_merkle_leaf_hash(leaf, len, a->stack[a->depth]));
    a->height[a->depth] = 0;
    a->depth++;
    /* Two complete subtrees of one height are siblings: merge them. */
    while (a->depth >= 2 && a->height[a->depth - 1] == a->height[a->depth - 2]) {
        LUNA_GUARD(luna_merkle_node_hash(a->stack[a->depth - 2], a->stack[a->depth - 1],
                                         a->stack[a->depth - 2]));
        a->height[a->depth - 2]++;
        a->depth--;
    }
    a->count++;
    return LUNA_OK;
}

luna_err luna_audit_root_acc_add_jsonl(luna_audit_root_acc *a, const uint8_t *body, size_t len,
                                       uint64_t *n_lines)
{
    size_t at = 0;
    uint64_t n = 0;

    if (n_lines != NULL)
        *n_lines = 0;
    if (a == NULL || (body == NULL && len > 0))
        return LUNA_ERR_INVALID_ARG;
    if (len > 0 && body[len - 1] != '\n')
        return LUNA_ERR_FORMAT;
    while (at < len) {
        const uint8_t *nl = memchr(body + at, '\n', len - at);
        size_t l = (size_t)(nl - (body + at));
        if (l == 0)
            return LUNA_ERR_FORMAT;
        LUNA_GUARD(luna_audit_root_acc_add(a, body + at, l));
        at += l + 1;
        n++;
        if (n_lines != NULL)
            *n_lines = n;
    }
    return LUNA_OK;
}

luna_err luna_audit_root_acc_root(const luna_audit_root_acc *a, uint8_t out[LUNA_MERKLE_HASH_LEN])
{
    uint8_t r[LUNA_MERKLE_HASH_LEN];

    if (a == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (a->depth == 0)
        return luna_merkle_empty_root(out);
    /* RFC 6962 splits at the largest power of two below n, so the root
     * folds the right edge from the smallest subtree leftwards. */
    memcpy(r, a->stack[a->depth - 1], sizeof(r));
    for (unsigned i = a->depth - 1; i-- > 0;)
        LUNA_GUARD(luna_merkle_node_hash(a->stack[i], r, r));
    memcpy(out, r, sizeof(r));
    return LUNA_OK;
}
