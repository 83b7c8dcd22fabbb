/*
 * Fuzz target: the signed-note parser and verifier, the checkpoint body
 * parser and the vkey/skey parsers (luna/note.h).  Invariants: nothing
 * reads outside the input; a parsed note's text is a prefix of the input
 * ending in "\n"; a parsed checkpoint formats back to exactly its bytes
 * (the format is canonical); a parsed vkey formats and re-parses to the
 * same verifier; nothing verifies without a key that signed it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "luna/note.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_checkpoint(const uint8_t *text, size_t len)
{
    luna_note_checkpoint cp;
    if (luna_note_checkpoint_parse(text, len, &cp) != LUNA_OK)
        return;
    uint8_t *out = malloc(len + 1);
    size_t n = 0;
    if (out == NULL)
        abort();
    if (luna_note_checkpoint_format(&cp, out, len, &n) != LUNA_OK || n != len ||
        memcmp(out, text, len) != 0)
        abort();
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char pn[] = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    luna_note_verifier known, v, again;
    luna_note note;

    if (luna_note_verifier_parse(pn, sizeof(pn) - 1, &known) != LUNA_OK)
        abort();

    if (luna_note_parse(data, size, &note) == LUNA_OK) {
        if (note.text != data || note.text_len == 0 || note.text_len >= size ||
            data[note.text_len - 1] != '\n' || note.n_sigs == 0 ||
            note.n_sigs > LUNA_NOTE_MAX_SIGS)
            abort();
        for (size_t i = 0; i < note.n_sigs; i++)
            if (note.sigs[i].name_len == 0 || note.sigs[i].b64_len < 8)
                abort();
        check_checkpoint(note.text, note.text_len);
    }
    luna_err err = luna_note_open(data, size, &known, 1, &note);
    if (err == LUNA_OK) {
        if (note.n_verified != 1)
            abort();
    } else if (note.text != NULL || note.n_sigs != 0) {
        abort(); /* a refused note must leave nothing usable */
    }
    if (luna_note_open(data, size, NULL, 0, &note) == LUNA_OK)
        abort(); /* no key, no note */

    check_checkpoint(data, size);

    if (luna_note_verifier_parse((const char *)data, size, &v) == LUNA_OK) {
        char text[LUNA_NOTE_VKEY_MAX_LEN];
        size_t n = 0;
        if (luna_note_verifier_format(&v, text, sizeof(text), &n) != LUNA_OK ||
            luna_note_verifier_parse(text, n, &again) != LUNA_OK ||
            memcmp(&v, &again, sizeof(v)) != 0)
            abort();
    }
    luna_note_signer *s = NULL;
    if (luna_note_signer_parse((const char *)data, size, &s) == LUNA_OK) {
        luna_note_signer_verifier(s, &v);
        uint8_t out[512];
        size_t n = 0;
        if (luna_note_sign((const uint8_t *)"fuzz\n", 5, &s, 1, out, sizeof(out), &n) != LUNA_OK ||
            luna_note_open(out, n, &v, 1, &note) != LUNA_OK)
            abort();
    }
    luna_note_signer_free(s);
    return 0;
}
