/*
 * Signed notes and checkpoints against merkle/c2sp-notes/ (vectors README
 * 3.3): all five notes parse, the four with published keys verify (one
 * with two keys), the Go skey reproduces its note byte for byte; then
 * tampering, unknown-key, malformed-input and cap cases, and round trips
 * of our own notes and checkpoints.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luna/bytes.h"
#include "luna/note.h"
#include "luna_test.h"

static const char *const NOTE_NAMES[5] = {
    "c2sp-signed-note-example",     "c2sp-signed-note-quasimodo",
    "c2sp-tlog-checkpoint-example", "go-sumdb-note-peterneumann",
    "go-sumdb-note-peterneumann-enochroot",
};

static json_t *notes_json(void)
{
    char *path = luna_test_vector_path("merkle/c2sp-notes/notes.json");
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (doc == NULL)
        fail_msg("%s: %s", path, jerr.text);
    free(path);
    return doc;
}

static uint8_t *note_file(const char *name, size_t *len)
{
    char rel[128];
    snprintf(rel, sizeof(rel), "merkle/c2sp-notes/%s.note", name);
    char *path = luna_test_vector_path(rel);
    uint8_t *b = luna_test_read_file(path, len);
    free(path);
    return b;
}

static void vkey(const char *s, luna_note_verifier *v)
{
    assert_luna_ok(luna_note_verifier_parse(s, strlen(s), v));
}

static luna_err open_str(const char *msg, const luna_note_verifier *known, size_t n, luna_note *out)
{
    return luna_note_open((const uint8_t *)msg, strlen(msg), known, n, out);
}

static void vectors_parse_and_verify(void **state)
{
    (void)state;
    json_t *doc = notes_json();
    size_t parsed = 0, verified = 0, signatures = 0;

    for (size_t i = 0; i < 5; i++) {
        const json_t *e = json_object_get(doc, NOTE_NAMES[i]);
        const char *text = json_string_value(json_object_get(e, "note"));
        const char *vk = json_string_value(json_object_get(e, "vkey"));
        const char *vk2 = json_string_value(json_object_get(e, "vkey2"));
        size_t len = 0;
        uint8_t *msg = note_file(NOTE_NAMES[i], &len);
        luna_note note;
        assert_non_null(text);
        assert_int_equal(strlen(text), len);
        assert_memory_equal(text, msg, len);

        assert_luna_ok(luna_note_parse(msg, len, &note));
        assert_true(note.n_sigs >= 1);
        assert_int_equal(0, note.n_verified);
        parsed++;
        if (vk == NULL) {
            /* No key published: must not verify with unrelated keys. */
            luna_note_verifier other;
            vkey("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", &other);
            assert_luna_err(LUNA_ERR_VERIFY, luna_note_open(msg, len, &other, 1, &note));
            assert_null(note.text);
            free(msg);
            continue;
        }
        luna_note_verifier keys[2];
        size_t nk = 0;
        vkey(vk, &keys[nk++]);
        if (vk2 != NULL)
            vkey(vk2, &keys[nk++]);
        assert_luna_ok(luna_note_open(msg, len, keys, nk, &note));
        assert_int_equal(nk, note.n_verified);
        assert_int_equal(nk, note.n_sigs);
        /* The vkey formats back to the same text. */
        char again[LUNA_NOTE_VKEY_MAX_LEN];
        size_t alen = 0;
        assert_luna_ok(luna_note_verifier_format(&keys[0], again, sizeof(again), &alen));
        assert_int_equal(strlen(vk), alen);
        assert_string_equal(vk, again);
        verified++;
        signatures += note.n_verified;
        free(msg);
    }
    /*
     * The README's "4 verifiable" counts signatures: 3 notes carry published
     * keys, one of them signed by two.
     */
    printf("notes: %zu parsed, %zu verified (%zu signatures checked)\n", parsed, verified,
           signatures);
    assert_int_equal(5, parsed);
    assert_int_equal(3, verified);
    assert_int_equal(4, signatures);
    json_decref(doc);
}

static void vectors_structure(void **state)
{
    (void)state;
    size_t len = 0;
    luna_note note;
    luna_note_checkpoint cp;

    /* quasimodo: text with a blank line and non-ASCII; key ID 367ba04b. */
    uint8_t *msg = note_file("c2sp-signed-note-quasimodo", &len);
    assert_luna_ok(luna_note_parse(msg, len, &note));
    static const char qtext[] = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di "
                                "sole:\n\ned \xc3\xa8 subito sera.\n";
    assert_int_equal(strlen(qtext), note.text_len);
    assert_memory_equal(qtext, note.text, note.text_len);
    assert_int_equal(1, note.n_sigs);
    assert_int_equal(0x367ba04bu, note.sigs[0].key_id);
    assert_int_equal(strlen("quasimodo.example/salvatore"), note.sigs[0].name_len);
    assert_memory_equal("quasimodo.example/salvatore", note.sigs[0].name, note.sigs[0].name_len);
    free(msg);

    /* The checkpoint example: origin, size, root, key ID 033de0ae. */
    msg = note_file("c2sp-tlog-checkpoint-example", &len);
    assert_luna_ok(luna_note_parse(msg, len, &note));
    assert_int_equal(0x033de0aeu, note.sigs[0].key_id);
    assert_luna_ok(luna_note_checkpoint_parse(note.text, note.text_len, &cp));
    assert_int_equal(strlen("example.com/behind-the-sofa"), cp.origin_len);
    assert_memory_equal("example.com/behind-the-sofa", cp.origin, cp.origin_len);
    assert_int_equal(20852163u, cp.size);
    static const uint8_t root[32] = {0x0a, 0xc5, 0x18, 0x6a, 0x91, 0x86, 0x3e, 0x8e,
                                     0x1d, 0x90, 0xc8, 0x08, 0x01, 0x4a, 0xa8, 0x9b,
                                     0xf5, 0xda, 0x8e, 0x3e, 0xe1, 0xd9, 0xf0, 0x76,
                                     0x30, 0xf0, 0x37, 0x8f, 0x68, 0xf1, 0xab, 0x62};
    assert_memory_equal(root, cp.root, 32);
    assert_null(cp.ext);
    uint8_t body[256];
    size_t blen = 0;
    assert_luna_ok(luna_note_checkpoint_format(&cp, body, sizeof(body), &blen));
    assert_int_equal(note.text_len, blen);
    assert_memory_equal(note.text, body, blen);
    free(msg);
}

static void vectors_skey_reproduces(void **state)
{
    (void)state;
    json_t *doc = notes_json();
    const json_t *e = json_object_get(doc, "go-sumdb-note-peterneumann");
    const char *skey = json_string_value(json_object_get(e, "skey"));
    const char *vk = json_string_value(json_object_get(e, "vkey"));
    luna_note_signer *signer = NULL;
    luna_note_verifier v, want;
    size_t len = 0, out_len = 0, text_len;
    uint8_t out[1024];

    assert_luna_ok(luna_note_signer_parse(skey, strlen(skey), &signer));
    luna_note_signer_verifier(signer, &v);
    vkey(vk, &want);
    assert_memory_equal(&want, &v, sizeof(v));
    uint8_t *msg = note_file("go-sumdb-note-peterneumann", &len);
    luna_note note;
    assert_luna_ok(luna_note_parse(msg, len, &note));
    text_len = note.text_len;
    assert_luna_ok(luna_note_sign(msg, text_len, &signer, 1, out, sizeof(out), &out_len));
    assert_int_equal(len, out_len);
    assert_memory_equal(msg, out, len);
    /* Too small an output buffer: refused, not truncated. */
    assert_luna_err(LUNA_ERR_TOO_LARGE,
                    luna_note_sign(msg, text_len, &signer, 1, out, len - 1, &out_len));
    assert_int_equal(0, out_len);
    luna_note_signer_free(signer);
    free(msg);

    /* skey syntax errors. */
    static const char *const bad_skeys[] = {
        "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDF",
        "PRIVATE+KEY+PeterNeumann+c74f20a3",
        "PRIVATE+KEX+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+Peter Neumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
    };
    luna_note_signer *keep = NULL;
    assert_luna_ok(luna_note_signer_parse(skey, strlen(skey), &keep));
    for (size_t i = 0; i < sizeof(bad_skeys) / sizeof(bad_skeys[0]); i++) {
        signer = keep; /* must be reset to NULL on failure */
        assert_int_not_equal(LUNA_OK,
                             luna_note_signer_parse(bad_skeys[i], strlen(bad_skeys[i]), &signer));
        assert_null(signer);
    }
    luna_note_signer_free(keep);
    json_decref(doc);
}

static void tampering_refused(void **state)
{
    (void)state;
    luna_note_verifier pn, enoch, foo;
    luna_note note;
    size_t len = 0;

    vkey("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", &pn);
    vkey("EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop", &enoch);
    vkey("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", &foo);
    uint8_t *msg = note_file("go-sumdb-note-peterneumann-enochroot", &len);
    uint8_t *copy = malloc(len);
    assert_non_null(copy);

    /* Unknown signatures are ignored: one known key is enough. */
    assert_luna_ok(luna_note_open(msg, len, &pn, 1, &note));
    assert_int_equal(2, note.n_sigs);
    assert_int_equal(1, note.n_verified);
    assert_true(note.sigs[0].verified);
    assert_false(note.sigs[1].verified);
    assert_luna_ok(luna_note_open(msg, len, &enoch, 1, &note));
    assert_true(note.sigs[1].verified);
    /* No known key at all: refused. */
    assert_luna_err(LUNA_ERR_VERIFY, luna_note_open(msg, len, &foo, 1, &note));
    assert_luna_err(LUNA_ERR_VERIFY, luna_note_open(msg, len, NULL, 0, &note));

    /* Every byte of the text matters. */
    size_t text_len = 0;
    assert_luna_ok(luna_note_parse(msg, len, &note));
    text_len = note.text_len;
    size_t flips = 0;
    for (size_t i = 0; i + 1 < text_len; i++) {
        memcpy(copy, msg, len);
        if (copy[i] == '\n')
            continue;
        copy[i] = copy[i] == 'a' ? 'b' : 'a';
        assert_int_not_equal(LUNA_OK, luna_note_open(copy, len, &pn, 1, &note));
        flips++;
    }
    /* A known key's signature that fails sinks the note, even next to a good one. */
    memcpy(copy, msg, len);
    size_t sig2 = len - 2 - 10; /* inside EnochRoot's base64, away from padding */
    copy[sig2] = copy[sig2] == 'A' ? 'B' : 'A';
    assert_luna_ok(luna_note_open(copy, len, &pn, 1, &note));
    luna_note_verifier both[2] = {pn, enoch};
    assert_luna_err(LUNA_ERR_VERIFY, luna_note_open(copy, len, both, 2, &note));
    assert_null(note.text);
    printf("notes: %zu one-byte text changes refused\n", flips);

    /* Right name, wrong key ID: the vkey itself is refused. */
    assert_luna_err(LUNA_ERR_FORMAT,
                    luna_note_verifier_parse(
                        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", 66,
                        &pn));
    /* Another name for the same key: a different key ID, so vkey refused. */
    static const char renamed[] = "PeterNeuman+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    assert_luna_err(LUNA_ERR_FORMAT, luna_note_verifier_parse(renamed, strlen(renamed), &pn));
    /* A verifier built under another name never matches the signature line. */
    luna_note_verifier alias;
    vkey("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", &pn);
    assert_luna_ok(luna_note_verifier_new("Peter", 5, pn.pub, &alias));
    assert_luna_err(LUNA_ERR_VERIFY, luna_note_open(msg, len, &alias, 1, &note));
    /* Same name and key ID but a different public key: the signature fails. */
    alias = pn;
    alias.pub[0] ^= 1;
    assert_luna_err(LUNA_ERR_VERIFY, luna_note_open(msg, len, &alias, 1, &note));
    free(copy);
    free(msg);
}

static void vkey_syntax(void **state)
{
    (void)state;
    luna_note_verifier v;
    struct {
        const char *s;
        luna_err want;
    } cases[] = {
        {"example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", LUNA_OK},
        {"example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", LUNA_OK},
        {"example.com/foo+530d903+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", LUNA_ERR_FORMAT},
        {"example.com/foo+530d903g+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", LUNA_ERR_FORMAT},
        {"example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2l", LUNA_ERR_FORMAT},
        {"example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2", LUNA_ERR_FORMAT},
        {"example.com/foo+530d903a+", LUNA_ERR_FORMAT},
        {"example.com/foo+530d903a", LUNA_ERR_FORMAT},
        {"+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", LUNA_ERR_FORMAT},
        {"example com+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", LUNA_ERR_FORMAT},
        /* Algorithm byte 0x02: well-formed but not supported. */
        {"example.com/foo+530d903a+AkyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", LUNA_ERR_FORMAT},
        {"example.com/foo+530d903a+AukyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
         LUNA_ERR_UNSUPPORTED},
        {"example.com/foo+530d903a+AukyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2kAAAA",
         LUNA_ERR_UNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        luna_err got = luna_note_verifier_parse(cases[i].s, strlen(cases[i].s), &v);
        if (got != cases[i].want)
            fail_msg("vkey %s: got %s want %s", cases[i].s, luna_errname(got),
                     luna_errname(cases[i].want));
    }
}

static const uint8_t SEED_A[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t SEED_B[32] = {0xff, 0xee, 0xdd};

/* Copies tmpl into buf with each "@" replaced by sub (no format strings). */
static void fill(char *buf, size_t cap, const char *tmpl, const char *sub)
{
    size_t o = 0, sl = strlen(sub);
    for (const char *p = tmpl; *p != '\0'; p++) {
        if (*p == '@') {
            assert_true(o + sl < cap);
            memcpy(buf + o, sub, sl);
            o += sl;
        } else {
            assert_true(o + 1 < cap);
            buf[o++] = *p;
        }
    }
    buf[o] = '\0';
}

static void malformed_notes(void **state)
{
    (void)state;
    luna_note_signer *s = NULL;
    luna_note_verifier v;
    luna_note note;
    uint8_t out[LUNA_NOTE_MAX_LEN];
    size_t n = 0;

    assert_luna_ok(luna_note_signer_new("luna.test/log", 13, SEED_A, &s));
    luna_note_signer_verifier(s, &v);
    assert_luna_ok(luna_note_sign((const uint8_t *)"hello\n", 6, &s, 1, out, sizeof(out), &n));
    out[n] = 0;
    assert_luna_ok(open_str((const char *)out, &v, 1, &note));
    const char *good = (const char *)out;
    const char *sig_line = strstr(good, "\xe2\x80\x94 ");
    assert_non_null(sig_line);
    char b64[128];
    snprintf(b64, sizeof(b64), "%s", strchr(sig_line + 4, ' ') + 1);
    b64[strlen(b64) - 1] = 0; /* drop "\n" */
    char buf[1024];

    struct {
        const char *tmpl;
        luna_err want;
    } cases[] = {
        {"hello\n\n\xe2\x80\x94 luna.test/log @\n", LUNA_OK},
        {"hello\n\xe2\x80\x94 luna.test/log @\n", LUNA_ERR_FORMAT},      /* no blank line */
        {"hello\n\n\xe2\x80\x94 luna.test/log @", LUNA_ERR_FORMAT},      /* no final \n */
        {"hello\n\n-- luna.test/log @\n", LUNA_ERR_FORMAT},              /* not an em dash */
        {"hello\n\n\xe2\x80\x93 luna.test/log @\n", LUNA_ERR_FORMAT},    /* en dash */
        {"hello\n\n\xe2\x80\x94luna.test/log @\n", LUNA_ERR_FORMAT},     /* no space */
        {"hello\n\n\xe2\x80\x94 luna.test/log  @\n", LUNA_ERR_FORMAT},   /* two spaces */
        {"hello\n\n\xe2\x80\x94 luna.test/log @ \n", LUNA_ERR_FORMAT},   /* trailing space */
        {"hello\n\n\xe2\x80\x94 luna.test/log @\n\n", LUNA_ERR_FORMAT},  /* blank after sigs */
        {"hello\r\n\n\xe2\x80\x94 luna.test/log @\n", LUNA_ERR_FORMAT},  /* control char */
        {"hel\xc0\xafo\n\n\xe2\x80\x94 luna.test/log @\n", LUNA_ERR_FORMAT}, /* overlong */
        {"hel\xed\xa0\x80o\n\n\xe2\x80\x94 luna.test/log @\n", LUNA_ERR_FORMAT}, /* surrogate */
        {"hello\n\n\xe2\x80\x94 luna+test @\n", LUNA_ERR_FORMAT},        /* "+" in name */
        {"hello\n\n\xe2\x80\x94 luna\xc2\xa0test @\n", LUNA_ERR_FORMAT}, /* NBSP in name */
        {"hello\n\n\xe2\x80\x94 luna.test/log @=\n", LUNA_ERR_FORMAT},   /* bad padding */
        {"hello\n\n\xe2\x80\x94 luna.test/log AAAAAA==\n", LUNA_ERR_FORMAT}, /* < 5 bytes */
        {"hello\n\n\xe2\x80\x94 luna.test/log AAAAAAA=\n", LUNA_ERR_VERIFY}, /* 5 bytes, unknown */
        {"hello\n\n\xe2\x80\x94 luna.test/log AAAAAAB=\n", LUNA_ERR_FORMAT}, /* non-canonical */
        {"hello\n\n", LUNA_ERR_FORMAT},                                   /* no signature */
        {"\n\n\xe2\x80\x94 luna.test/log @\n", LUNA_ERR_VERIFY},         /* other text */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fill(buf, sizeof(buf), cases[i].tmpl, b64);
        luna_err got = open_str(buf, &v, 1, &note);
        if (got != cases[i].want)
            fail_msg("case %zu: got %s want %s", i, luna_errname(got), luna_errname(cases[i].want));
        if (got != LUNA_OK)
            assert_null(note.text);
    }
    /* A non-canonical copy of the real signature (last char's unused bits). */
    snprintf(buf, sizeof(buf), "hello\n\n\xe2\x80\x94 luna.test/log %s\n", b64);
    char *last = strchr(buf + 8, '=') - 1;
    *last = (char)(*last == 'A' ? 'B' : *last == 'Q' ? 'R' : *last + 1);
    assert_int_not_equal(LUNA_OK, open_str(buf, &v, 1, &note));

    /* Two signature lines from one known key: a malformed note. */
    luna_note_signer *many[LUNA_NOTE_MAX_SIGS];
    for (size_t i = 0; i < LUNA_NOTE_MAX_SIGS; i++)
        many[i] = s;
    assert_luna_ok(luna_note_sign((const uint8_t *)"x\n", 2, many, 2, out, sizeof(out), &n));
    assert_luna_err(LUNA_ERR_VERIFY, luna_note_open(out, n, &v, 1, &note));
    /* Caps: 32 signature lines are fine (one known key, 31 others), 33 are
       too many. */
    luna_note_signer *others[LUNA_NOTE_MAX_SIGS - 1];
    for (size_t i = 0; i < LUNA_NOTE_MAX_SIGS - 1; i++) {
        char name[32];
        uint8_t seed[32];
        memset(seed, (int)(i + 1), sizeof(seed));
        int nl = snprintf(name, sizeof(name), "other.test/%zu", i);
        assert_luna_ok(luna_note_signer_new(name, (size_t)nl, seed, &others[i]));
        many[i + 1] = others[i];
    }
    assert_luna_ok(luna_note_sign((const uint8_t *)"x\n", 2, many, LUNA_NOTE_MAX_SIGS, out,
                                  sizeof(out), &n));
    for (size_t i = 0; i < LUNA_NOTE_MAX_SIGS - 1; i++)
        luna_note_signer_free(others[i]);
    assert_luna_ok(luna_note_open(out, n, &v, 1, &note));
    assert_int_equal(LUNA_NOTE_MAX_SIGS, note.n_sigs);
    assert_int_equal(1, note.n_verified); /* only the known key counts */
    for (size_t i = 1; i < LUNA_NOTE_MAX_SIGS; i++)
        many[i] = s; /* for the over-cap signing refusal below */
    uint8_t *more = malloc(n + 200);
    assert_non_null(more);
    memcpy(more, out, n);
    const char *extra_start = strstr((const char *)out, "\xe2\x80\x94 ");
    size_t line_len = (size_t)(strchr(extra_start, '\n') - extra_start) + 1;
    memcpy(more + n, extra_start, line_len);
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_note_open(more, n + line_len, &v, 1, &note));
    free(more);
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_note_sign((const uint8_t *)"x\n", 2, many,
                                                         LUNA_NOTE_MAX_SIGS + 1, out, sizeof(out),
                                                         &n));
    /* Size cap: a note over LUNA_NOTE_MAX_LEN is refused before any parsing. */
    uint8_t *huge = malloc(LUNA_NOTE_MAX_LEN + 1);
    assert_non_null(huge);
    memset(huge, 'a', LUNA_NOTE_MAX_LEN + 1);
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_note_open(huge, LUNA_NOTE_MAX_LEN + 1, &v, 1, &note));
    /* A text that fits alone but not with its signature line. */
    huge[LUNA_NOTE_MAX_LEN - 51] = '\n';
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_note_sign(huge, LUNA_NOTE_MAX_LEN - 50, &s, 1, out,
                                                       sizeof(out), &n));
    assert_int_equal(0, n);
    free(huge);
    /* Text rules on signing. */
    assert_luna_err(LUNA_ERR_FORMAT,
                    luna_note_sign((const uint8_t *)"no newline", 10, &s, 1, out, sizeof(out), &n));
    assert_luna_err(LUNA_ERR_FORMAT,
                    luna_note_sign((const uint8_t *)"", 0, &s, 1, out, sizeof(out), &n));
    assert_luna_err(LUNA_ERR_FORMAT,
                    luna_note_sign((const uint8_t *)"tab\there\n", 10, &s, 1, out, sizeof(out), &n));
    luna_note_signer_free(s);
}

static void own_round_trips(void **state)
{
    (void)state;
    luna_note_signer *a = NULL, *b = NULL;
    luna_note_verifier va, vb;
    luna_note note;
    luna_note_checkpoint cp, back;
    uint8_t body[512], msg[2048];
    size_t blen = 0, mlen = 0;

    assert_luna_ok(luna_note_signer_new("audit.lunal.example/log", 23, SEED_A, &a));
    assert_luna_ok(luna_note_signer_new("witness.example/w1", 18, SEED_B, &b));
    luna_note_signer_verifier(a, &va);
    luna_note_signer_verifier(b, &vb);
    /* The vkey text round-trips. */
    char vk[LUNA_NOTE_VKEY_MAX_LEN];
    size_t vlen = 0;
    luna_note_verifier va2;
    assert_luna_ok(luna_note_verifier_format(&va, vk, sizeof(vk), &vlen));
    assert_luna_ok(luna_note_verifier_parse(vk, vlen, &va2));
    assert_memory_equal(&va, &va2, sizeof(va));
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_note_verifier_format(&va, vk, vlen, &vlen));

    /* A checkpoint with extension lines, signed by the log and a witness. */
    memset(&cp, 0, sizeof(cp));
    cp.origin = "audit.lunal.example/log";
    cp.origin_len = strlen(cp.origin);
    cp.size = 18446744073709551615ull;
    for (size_t i = 0; i < 32; i++)
        cp.root[i] = (uint8_t)(0xa0 + i);
    cp.ext = "ext one\nsecond extension line\n";
    cp.ext_len = strlen(cp.ext);
    assert_luna_ok(luna_note_checkpoint_format(&cp, body, sizeof(body), &blen));
    luna_note_signer *both[2] = {a, b};
    assert_luna_ok(luna_note_sign(body, blen, both, 2, msg, sizeof(msg), &mlen));
    fwrite(msg, 1, mlen, stdout);
    assert_luna_ok(luna_note_checkpoint_open(msg, mlen, cp.origin, cp.origin_len, &va, 1, &note,
                                             &back));
    assert_int_equal(cp.size, back.size);
    assert_memory_equal(cp.root, back.root, 32);
    assert_int_equal(cp.ext_len, back.ext_len);
    assert_memory_equal(cp.ext, back.ext, cp.ext_len);
    assert_int_equal(1, note.n_verified);
    luna_note_verifier ab[2] = {va, vb};
    assert_luna_ok(luna_note_checkpoint_open(msg, mlen, cp.origin, cp.origin_len, ab, 2, &note,
                                             &back));
    assert_int_equal(2, note.n_verified);
    /* Another log's origin: refused although the signature is good. */
    assert_luna_err(LUNA_ERR_VERIFY, luna_note_checkpoint_open(msg, mlen, "audit.lunal.example/lo",
                                                               22, &va, 1, &note, &back));
    assert_null(note.text);
    /* Witness only, still fine (origin is checked, not the signer's name). */
    assert_luna_ok(luna_note_checkpoint_open(msg, mlen, cp.origin, cp.origin_len, &vb, 1, &note,
                                             &back));

    /* Texts with inner blank lines and a final blank line round-trip. */
    static const char *const texts[] = {"a\n\nb\n", "a\n\n", "\n", "one line\n",
                                        "\xe2\x82\xac and \xf0\x9f\x94\x92\n"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        size_t tl = strlen(texts[i]);
        assert_luna_ok(luna_note_sign((const uint8_t *)texts[i], tl, &a, 1, msg, sizeof(msg),
                                      &mlen));
        assert_luna_ok(luna_note_open(msg, mlen, &va, 1, &note));
        assert_int_equal(tl, note.text_len);
        assert_memory_equal(texts[i], note.text, tl);
    }
    luna_note_signer_free(a);
    luna_note_signer_free(b);
    luna_note_signer_free(NULL);
}

static void checkpoint_syntax(void **state)
{
    (void)state;
    luna_note_checkpoint cp;
    static const char R[] = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
    char buf[2048];
    struct {
        const char *origin, *size, *root, *ext;
        luna_err want;
    } cases[] = {
        {"o", "0", R, "", LUNA_OK},
        {"o", "18446744073709551615", R, "", LUNA_OK},
        {"o", "18446744073709551616", R, "", LUNA_ERR_FORMAT},
        {"o", "99999999999999999999", R, "", LUNA_ERR_FORMAT},
        {"o", "012", R, "", LUNA_ERR_FORMAT},
        {"o", "+12", R, "", LUNA_ERR_FORMAT},
        {"o", "-1", R, "", LUNA_ERR_FORMAT},
        {"o", "1 ", R, "", LUNA_ERR_FORMAT},
        {"o", "", R, "", LUNA_ERR_FORMAT},
        {"", "5", R, "", LUNA_ERR_FORMAT},
        {"o", "5", "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=", "", LUNA_ERR_FORMAT},
        {"o", "5", "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I", "", LUNA_ERR_FORMAT},
        {"o", "5", "CsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=", "", LUNA_ERR_FORMAT},
        {"o", "5", "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=AAAA", "", LUNA_ERR_FORMAT},
        {"o", "5", "AAAA", "", LUNA_ERR_FORMAT},
        {"o", "5", R, "x\n", LUNA_OK},
        {"o", "5", R, "x\n\n", LUNA_ERR_FORMAT},
        {"o", "5", R, "\n", LUNA_ERR_FORMAT},
        {"o", "5", R, "x\ty\n", LUNA_ERR_FORMAT},
        {"o\xff", "5", R, "", LUNA_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(buf, sizeof(buf), "%s\n%s\n%s\n%s", cases[i].origin, cases[i].size, cases[i].root,
                 cases[i].ext);
        luna_err got = luna_note_checkpoint_parse((const uint8_t *)buf, strlen(buf), &cp);
        if (got != cases[i].want)
            fail_msg("checkpoint case %zu: got %s want %s", i, luna_errname(got),
                     luna_errname(cases[i].want));
    }
    /* Structure errors. */
    static const char *const bad[] = {"o\n5\n", "o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=",
                                      "o\n", "", "o\n5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_luna_err(LUNA_ERR_FORMAT,
                        luna_note_checkpoint_parse((const uint8_t *)bad[i], strlen(bad[i]), &cp));
    /* Extension line cap: 16 fine, 17 too many. */
    int off = snprintf(buf, sizeof(buf), "o\n1\n%s\n", R);
    for (int i = 0; i < LUNA_NOTE_CHECKPOINT_MAX_EXT; i++)
        off += snprintf(buf + off, sizeof(buf) - (size_t)off, "e%d\n", i);
    assert_luna_ok(luna_note_checkpoint_parse((const uint8_t *)buf, (size_t)off, &cp));
    off += snprintf(buf + off, sizeof(buf) - (size_t)off, "last\n");
    assert_luna_err(LUNA_ERR_TOO_LARGE,
                    luna_note_checkpoint_parse((const uint8_t *)buf, (size_t)off, &cp));
    /* format refuses what parse would refuse. */
    uint8_t out[256];
    size_t n = 0;
    memset(&cp, 0, sizeof(cp));
    cp.origin = "a\nb";
    cp.origin_len = 3;
    assert_luna_err(LUNA_ERR_FORMAT, luna_note_checkpoint_format(&cp, out, sizeof(out), &n));
    cp.origin = "ok";
    cp.origin_len = 2;
    cp.ext = "no newline";
    cp.ext_len = 10;
    assert_luna_err(LUNA_ERR_FORMAT, luna_note_checkpoint_format(&cp, out, sizeof(out), &n));
    cp.ext = NULL;
    cp.ext_len = 0;
    assert_luna_ok(luna_note_checkpoint_format(&cp, out, sizeof(out), &n));
    assert_int_equal(strlen("ok\n0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"), n);
    assert_memory_equal("ok\n0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", out, n);
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_note_checkpoint_format(&cp, out, n - 1, &n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(vectors_parse_and_verify),
        cmocka_unit_test(vectors_structure),
        cmocka_unit_test(vectors_skey_reproduces),
        cmocka_unit_test(tampering_refused),
        cmocka_unit_test(vkey_syntax),
        cmocka_unit_test(malformed_notes),
        cmocka_unit_test(own_round_trips),
        cmocka_unit_test(checkpoint_syntax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
