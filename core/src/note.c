/*
 * note.c - C2SP signed notes with Ed25519 keys, vkey/skey key strings and
 * tlog checkpoint bodies (see luna/note.h for the formats and policy).
 *
 * Owns: the note syntax checks, the key ID derivation, the signature
 * policy (unknown keys ignored, known keys must verify, at least one) and
 * a strict canonical standard-base64 codec.
 * Must never: trust a text before a known key verified it, read outside
 * the message it was given, accept a non-canonical encoding, or leave a
 * signing seed anywhere but its luna_secret (stack copies are wiped).
 */
#include "luna/note.h"

#include <stdlib.h>
#include <string.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/secret.h"

/* U+2014 EM DASH and a space: the prefix of every signature line. */
static const uint8_t SIG_PREFIX[4] = {0xe2, 0x80, 0x94, 0x20};
static const char SKEY_PREFIX[] = "PRIVATE+KEY+";
#define KEY_B64_LEN 44       /* base64(0x01 || 32 bytes) */
#define SIG_B64_LEN 92       /* base64(4 + 64 bytes) */
#define ROOT_B64_LEN 44      /* base64(32 bytes) */
#define MAX_DECIMAL_U64 20   /* digits of 2^64 - 1 */

struct luna_note_signer {
    luna_note_verifier v;
    luna_secret *seed;
};

/* ---- base64, standard alphabet, padded, canonical only ---- */

/* All ones when lo <= c <= hi, else zero; no branch on c (seeds pass here). */
static uint32_t range_mask(uint32_t c, uint32_t lo, uint32_t hi)
{
    return (((c - lo) | (hi - c)) >> 31) - 1u;
}

/* Value of one base64 character; *bad gets a bit when c is not one. */
static uint32_t b64_value(uint8_t ch, uint32_t *bad)
{
    uint32_t c = ch;
    uint32_t up = range_mask(c, 'A', 'Z'), lo = range_mask(c, 'a', 'z');
    uint32_t dg = range_mask(c, '0', '9'), pl = range_mask(c, '+', '+');
    uint32_t sl = range_mask(c, '/', '/');
    uint32_t v = (up & (c - 'A')) | (lo & (c - 'a' + 26)) | (dg & (c - '0' + 52)) | (pl & 62) |
                 (sl & 63);
    *bad |= ~(up | lo | dg | pl | sl) & 1u;
    return v & 63u;
}

/*
 * Decodes in_len characters.  out may be NULL to only validate and count.
 * Padding is required (in_len % 4 == 0) and unused bits must be zero.
 */
static luna_err b64_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap,
                           size_t *out_len)
{
    size_t pad = 0, n, o = 0;
    uint32_t bad = 0;

    *out_len = 0;
    if (in_len == 0 || in_len % 4 != 0)
        return LUNA_ERR_FORMAT;
    if (in[in_len - 1] == '=') {
        pad = 1;
        if (in[in_len - 2] == '=')
            pad = 2;
    }
    n = in_len / 4 * 3 - pad;
    if (out != NULL && n > out_cap)
        return LUNA_ERR_TOO_LARGE;
    for (size_t i = 0; i < in_len; i += 4) {
        size_t real = i + 4 == in_len ? 4 - pad : 4;
        uint32_t acc = 0;
        for (size_t j = 0; j < 4; j++)
            acc = (acc << 6) | (j < real ? b64_value((uint8_t)in[i + j], &bad) : 0);
        if (real == 3)
            bad |= (acc & 0xffu) != 0;
        else if (real == 2)
            bad |= (acc & 0xffffu) != 0;
        if (out != NULL) {
            uint8_t b[3] = {(uint8_t)(acc >> 16), (uint8_t)(acc >> 8), (uint8_t)acc};
            memcpy(out + o, b, real - 1);
            luna_wipe(b, sizeof(b));
        }
        o += real - 1;
    }
    if (bad != 0) {
        if (out != NULL)
            luna_wipe(out, o);
        return LUNA_ERR_FORMAT;
    }
    *out_len = o;
    return LUNA_OK;
}

#define B64_ENC_LEN(n) ((((n) + 2) / 3) * 4)

/* Encodes public bytes (keys, signatures, hashes); no NUL is written. */
static luna_err b64_encode(luna_wbuf *w, const uint8_t *in, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        size_t left = n - i;
        uint32_t acc = (uint32_t)in[i] << 16;
        if (left > 1)
            acc |= (uint32_t)in[i + 1] << 8;
        if (left > 2)
            acc |= in[i + 2];
        uint8_t q[4] = {(uint8_t)alphabet[(acc >> 18) & 63], (uint8_t)alphabet[(acc >> 12) & 63],
                        (uint8_t)(left > 1 ? alphabet[(acc >> 6) & 63] : '='),
                        (uint8_t)(left > 2 ? alphabet[acc & 63] : '=')};
        LUNA_GUARD(luna_write_bytes(w, q, sizeof(q)));
    }
    return LUNA_OK;
}

/* ---- UTF-8 and names ---- */

/*
 * Decodes one strict UTF-8 sequence (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF).  Returns its length, 0 if invalid.
 */
static size_t utf8_next(const uint8_t *p, size_t n, uint32_t *cp)
{
    uint8_t b0 = p[0];
    size_t len;
    uint32_t c, min;

    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    if (b0 >= 0xc2 && b0 <= 0xdf) {
        len = 2;
        c = b0 & 0x1fu;
        min = 0x80;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
        len = 3;
        c = b0 & 0x0fu;
        min = 0x800;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
        len = 4;
        c = b0 & 0x07u;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0u) != 0x80u)
            return 0;
        c = (c << 6) | (p[i] & 0x3fu);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

/* Note text rule: valid UTF-8, no ASCII control character but "\n". */
static bool text_chars_ok(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c;
        size_t l = utf8_next(p + i, n - i, &c);
        if (l == 0 || (c < 0x20 && c != '\n'))
            return false;
        i += l;
    }
    return true;
}

/* Unicode White_Space (what Go's unicode.IsSpace reports). */
static bool is_unicode_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
           c == 0x205f || c == 0x3000;
}

static bool name_ok(const char *name, size_t len)
{
    const uint8_t *p = (const uint8_t *)name;
    size_t i = 0;

    if (name == NULL || len == 0 || len > LUNA_NOTE_MAX_NAME_LEN)
        return false;
    while (i < len) {
        uint32_t c;
        size_t l = utf8_next(p + i, len - i, &c);
        if (l == 0 || c == '+' || c < 0x20 || c == 0x7f || is_unicode_space(c))
            return false;
        i += l;
    }
    return true;
}

/* Index of byte ch in p[0..n), or n when absent. */
static size_t find_byte(const char *p, size_t n, char ch)
{
    const char *hit = memchr(p, ch, n);
    return hit == NULL ? n : (size_t)(hit - p);
}

/* ---- keys ---- */

luna_err luna_note_key_id(const char *name, size_t name_len, const uint8_t pub[LUNA_ED25519_PUB_LEN],
                          uint32_t *key_id)
{
    uint8_t buf[LUNA_NOTE_MAX_NAME_LEN + 2 + LUNA_ED25519_PUB_LEN];
    uint8_t digest[LUNA_SHA256_LEN];
    luna_wbuf w;

    if (pub == NULL || key_id == NULL)
        return LUNA_ERR_INVALID_ARG;
    *key_id = 0;
    if (!name_ok(name, name_len))
        return LUNA_ERR_FORMAT;
    luna_wbuf_init(&w, buf, sizeof(buf));
    LUNA_GUARD(luna_write_bytes(&w, name, name_len));
    LUNA_GUARD(luna_write_u8(&w, '\n'));
    LUNA_GUARD(luna_write_u8(&w, LUNA_NOTE_ALG_ED25519));
    LUNA_GUARD(luna_write_bytes(&w, pub, LUNA_ED25519_PUB_LEN));
    LUNA_GUARD(luna_sha256(w.data, w.len, digest));
    *key_id = (uint32_t)digest[0] << 24 | (uint32_t)digest[1] << 16 | (uint32_t)digest[2] << 8 |
              digest[3];
    return LUNA_OK;
}

luna_err luna_note_verifier_new(const char *name, size_t name_len,
                                const uint8_t pub[LUNA_ED25519_PUB_LEN], luna_note_verifier *out)
{
    if (out == NULL || pub == NULL)
        return LUNA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    LUNA_GUARD(luna_note_key_id(name, name_len, pub, &out->key_id));
    memcpy(out->name, name, name_len);
    out->name[name_len] = '\0';
    out->name_len = name_len;
    memcpy(out->pub, pub, LUNA_ED25519_PUB_LEN);
    return LUNA_OK;
}

/*
 * Splits "<name>+<8 hex>+<base64 key>" (the base64 may contain "+") and
 * decodes the key into key[33] (0x01 || 32 bytes).  Shared by vkey and skey.
 */
static luna_err parse_key_string(const char *s, size_t len, const char **name, size_t *name_len,
                                 uint32_t *key_id, uint8_t key[1 + 32])
{
    size_t n1 = find_byte(s, len, '+');
    uint8_t idb[LUNA_NOTE_KEY_ID_LEN];
    size_t got = 0;

    if (n1 == len || !name_ok(s, n1))
        return LUNA_ERR_FORMAT;
    const char *rest = s + n1 + 1;
    size_t rest_len = len - n1 - 1;
    size_t n2 = find_byte(rest, rest_len, '+');
    if (n2 != 8 || n2 == rest_len)
        return LUNA_ERR_FORMAT;
    if (luna_hex_decode(rest, 8, idb, sizeof(idb), &got) != LUNA_OK || got != sizeof(idb))
        return LUNA_ERR_FORMAT;
    const char *b64 = rest + 9;
    size_t b64_len = rest_len - 9;
    /* Only Ed25519 keys are supported: anything but 44 characters is refused. */
    if (b64_len == 0)
        return LUNA_ERR_FORMAT;
    if (b64_len != KEY_B64_LEN) {
        /* Well-formed but not 0x01 || 32 bytes: another algorithm, or a broken Ed25519 key. */
        uint8_t head[3];
        size_t any = 0;
        if (b64_decode(b64, b64_len, NULL, 0, &any) != LUNA_OK || b64_len < 4 ||
            b64_decode(b64, 4, head, sizeof(head), &any) != LUNA_OK || any < 1) {
            luna_wipe(head, sizeof(head));
            return LUNA_ERR_FORMAT;
        }
        /* For a signer key, head[1..2] are seed bytes: wiped either way. */
        uint8_t alg = head[0];
        luna_wipe(head, sizeof(head));
        return alg == LUNA_NOTE_ALG_ED25519 ? LUNA_ERR_FORMAT : LUNA_ERR_UNSUPPORTED;
    }
    if (b64_decode(b64, b64_len, key, 33, &got) != LUNA_OK || got != 33)
        return LUNA_ERR_FORMAT;
    if (key[0] != LUNA_NOTE_ALG_ED25519) {
        luna_wipe(key, 33);
        return LUNA_ERR_UNSUPPORTED;
    }
    *name = s;
    *name_len = n1;
    *key_id = (uint32_t)idb[0] << 24 | (uint32_t)idb[1] << 16 | (uint32_t)idb[2] << 8 | idb[3];
    return LUNA_OK;
}

luna_err luna_note_verifier_parse(const char *vkey, size_t len, luna_note_verifier *out)
{
    const char *name = NULL;
    size_t name_len = 0;
    uint32_t claimed = 0;
    uint8_t key[33];

    if (out == NULL || (vkey == NULL && len != 0))
        return LUNA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if (len > LUNA_NOTE_VKEY_MAX_LEN)
        return LUNA_ERR_FORMAT;
    LUNA_GUARD(parse_key_string(vkey, len, &name, &name_len, &claimed, key));
    LUNA_GUARD(luna_note_verifier_new(name, name_len, key + 1, out));
    if (out->key_id != claimed) {
        memset(out, 0, sizeof(*out));
        return LUNA_ERR_FORMAT;
    }
    return LUNA_OK;
}

luna_err luna_note_verifier_format(const luna_note_verifier *v, char *out, size_t out_cap,
                                   size_t *out_len)
{
    uint8_t key[33];
    char hex[9];
    uint8_t idb[4];
    luna_wbuf w;

    if (v == NULL || out == NULL || out_len == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out_len = 0;
    if (!name_ok(v->name, v->name_len))
        return LUNA_ERR_FORMAT;
    idb[0] = (uint8_t)(v->key_id >> 24);
    idb[1] = (uint8_t)(v->key_id >> 16);
    idb[2] = (uint8_t)(v->key_id >> 8);
    idb[3] = (uint8_t)v->key_id;
    LUNA_GUARD(luna_hex_encode(idb, sizeof(idb), hex, sizeof(hex)));
    key[0] = LUNA_NOTE_ALG_ED25519;
    memcpy(key + 1, v->pub, LUNA_ED25519_PUB_LEN);
    luna_wbuf_init(&w, (uint8_t *)out, out_cap);
    LUNA_GUARD(luna_write_bytes(&w, v->name, v->name_len));
    LUNA_GUARD(luna_write_u8(&w, '+'));
    LUNA_GUARD(luna_write_bytes(&w, hex, 8));
    LUNA_GUARD(luna_write_u8(&w, '+'));
    LUNA_GUARD(b64_encode(&w, key, sizeof(key)));
    LUNA_GUARD(luna_write_u8(&w, '\0'));
    *out_len = w.len - 1;
    return LUNA_OK;
}

luna_err luna_note_signer_new(const char *name, size_t name_len,
                              const uint8_t seed[LUNA_ED25519_SEED_LEN], luna_note_signer **out)
{
    uint8_t pub[LUNA_ED25519_PUB_LEN];
    luna_note_signer *s = NULL;
    luna_err err;

    if (out == NULL || seed == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return LUNA_ERR_NOMEM;
    LUNA_TRY(luna_ed25519_public(seed, pub), done);
    LUNA_TRY(luna_note_verifier_new(name, name_len, pub, &s->v), done);
    LUNA_TRY(luna_secret_from(seed, LUNA_ED25519_SEED_LEN, &s->seed), done);
    *out = s;
    s = NULL;
done:
    luna_note_signer_free(s);
    return err;
}

luna_err luna_note_signer_parse(const char *skey, size_t len, luna_note_signer **out)
{
    const size_t plen = sizeof(SKEY_PREFIX) - 1;
    const char *name = NULL;
    size_t name_len = 0;
    uint32_t claimed = 0;
    uint8_t key[33];
    luna_err err;

    if (out == NULL || (skey == NULL && len != 0))
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    if (len < plen || len > plen + LUNA_NOTE_VKEY_MAX_LEN || memcmp(skey, SKEY_PREFIX, plen) != 0)
        return LUNA_ERR_FORMAT;
    err = parse_key_string(skey + plen, len - plen, &name, &name_len, &claimed, key);
    if (err == LUNA_OK)
        err = luna_note_signer_new(name, name_len, key + 1, out);
    luna_wipe(key, sizeof(key));
    if (err == LUNA_OK && (*out)->v.key_id != claimed) {
        luna_note_signer_free(*out);
        *out = NULL;
        err = LUNA_ERR_FORMAT;
    }
    return err;
}

void luna_note_signer_verifier(const luna_note_signer *s, luna_note_verifier *out)
{
    if (s != NULL && out != NULL)
        *out = s->v;
}

void luna_note_signer_free(luna_note_signer *s)
{
    if (s == NULL)
        return;
    luna_secret_free(s->seed);
    luna_wipe(s, sizeof(*s));
    free(s);
}

/* ---- notes ---- */

/* Finds the last "\n\n"; returns its index or len when absent. */
static size_t last_blank_line(const uint8_t *msg, size_t len)
{
    for (size_t i = len; i >= 2; i--) {
        if (msg[i - 2] == '\n' && msg[i - 1] == '\n')
            return i - 2;
    }
    return len;
}

/* Parses one signature line (without its "\n") into *sig. */
static luna_err parse_sig_line(const uint8_t *line, size_t n, luna_note_sig *sig)
{
    luna_reader r;
    const uint8_t *prefix = NULL;
    size_t got = 0;
    uint8_t id[LUNA_NOTE_KEY_ID_LEN + 2];

    luna_reader_init(&r, line, n);
    if (luna_read_view(&r, &prefix, sizeof(SIG_PREFIX)) != LUNA_OK ||
        memcmp(prefix, SIG_PREFIX, sizeof(SIG_PREFIX)) != 0)
        return LUNA_ERR_FORMAT;
    const char *rest = (const char *)line + sizeof(SIG_PREFIX);
    size_t rest_len = luna_reader_left(&r);
    size_t sp = find_byte(rest, rest_len, ' ');
    if (sp == rest_len || !name_ok(rest, sp))
        return LUNA_ERR_FORMAT;
    sig->name = rest;
    sig->name_len = sp;
    sig->b64 = rest + sp + 1;
    sig->b64_len = rest_len - sp - 1;
    /* Whole line must be base64 (so no second space) and decode to >= 5 bytes. */
    if (b64_decode(sig->b64, sig->b64_len, NULL, 0, &got) != LUNA_OK || got < 5)
        return LUNA_ERR_FORMAT;
    /* The key ID is in the first 8 characters (6 bytes); decode just those. */
    if (b64_decode(sig->b64, 8, id, sizeof(id), &got) != LUNA_OK || got < LUNA_NOTE_KEY_ID_LEN)
        return LUNA_ERR_FORMAT;
    sig->key_id = (uint32_t)id[0] << 24 | (uint32_t)id[1] << 16 | (uint32_t)id[2] << 8 | id[3];
    sig->verified = false;
    return LUNA_OK;
}

luna_err luna_note_parse(const uint8_t *msg, size_t len, luna_note *out)
{
    size_t split, off;
    luna_err err = LUNA_ERR_FORMAT;

    if (out == NULL || (msg == NULL && len != 0))
        return LUNA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if (len > LUNA_NOTE_MAX_LEN)
        return LUNA_ERR_TOO_LARGE;
    if (len == 0 || msg[len - 1] != '\n' || !text_chars_ok(msg, len))
        return LUNA_ERR_FORMAT;
    split = last_blank_line(msg, len);
    if (split == len || split + 2 == len)
        return LUNA_ERR_FORMAT; /* no blank line, or nothing after it */
    out->text = msg;
    out->text_len = split + 1;
    off = split + 2;
    while (off < len) {
        /* msg ends in "\n", so every line is terminated. */
        size_t nl = find_byte((const char *)msg + off, len - off, '\n');
        if (out->n_sigs == LUNA_NOTE_MAX_SIGS) {
            err = LUNA_ERR_TOO_LARGE;
            goto bad;
        }
        LUNA_TRY(parse_sig_line(msg + off, nl, &out->sigs[out->n_sigs]), bad);
        out->n_sigs++;
        off += nl + 1;
    }
    return LUNA_OK;
bad:
    memset(out, 0, sizeof(*out));
    return err;
}

static bool same_key(const luna_note_sig *sig, const luna_note_verifier *v)
{
    return sig->key_id == v->key_id && sig->name_len == v->name_len &&
           memcmp(sig->name, v->name, v->name_len) == 0;
}

luna_err luna_note_open(const uint8_t *msg, size_t len, const luna_note_verifier *known,
                        size_t n_known, luna_note *out)
{
    size_t which[LUNA_NOTE_MAX_SIGS] = {0};
    uint8_t raw[LUNA_NOTE_KEY_ID_LEN + LUNA_ED25519_SIG_LEN];
    luna_err err;

    if (out == NULL || (known == NULL && n_known != 0))
        return LUNA_ERR_INVALID_ARG;
    LUNA_GUARD(luna_note_parse(msg, len, out));
    for (size_t i = 0; i < out->n_sigs; i++) {
        luna_note_sig *sig = &out->sigs[i];
        size_t j, got = 0;
        for (j = 0; j < n_known && !same_key(sig, &known[j]); j++)
            ;
        if (j == n_known)
            continue; /* unknown signer: ignored, by the spec */
        /* A known Ed25519 key: exactly key ID || 64-byte signature. */
        LUNA_TRY_ENSURE(sig->b64_len == SIG_B64_LEN, LUNA_ERR_VERIFY, bad);
        LUNA_TRY_ENSURE(b64_decode(sig->b64, sig->b64_len, raw, sizeof(raw), &got) == LUNA_OK &&
                            got == sizeof(raw),
                        LUNA_ERR_VERIFY, bad);
        LUNA_TRY(luna_ed25519_verify(known[j].pub, out->text, out->text_len,
                                     raw + LUNA_NOTE_KEY_ID_LEN, LUNA_ED25519_SIG_LEN),
                 bad);
        sig->verified = true;
        which[i] = j;
        size_t k;
        for (k = 0; k < i && !(out->sigs[k].verified && which[k] == j); k++)
            ;
        /* Two signature lines from one known key make a malformed note (as
           in the reference implementation), not one counted signature. */
        LUNA_TRY_ENSURE(k == i, LUNA_ERR_VERIFY, bad);
        out->n_verified++;
    }
    LUNA_TRY_ENSURE(out->n_verified > 0, LUNA_ERR_VERIFY, bad);
    return LUNA_OK;
bad:
    /* A bad encoding from a known key is a bad signature, not a bad note. */
    if (err == LUNA_ERR_FORMAT)
        err = LUNA_ERR_VERIFY;
    memset(out, 0, sizeof(*out));
    return err;
}

luna_err luna_note_sign(const uint8_t *text, size_t text_len, luna_note_signer *const *signers,
                        size_t n, uint8_t *out, size_t out_cap, size_t *out_len)
{
    uint8_t raw[LUNA_NOTE_KEY_ID_LEN + LUNA_ED25519_SIG_LEN];
    luna_wbuf w;
    luna_err err;

    if (text == NULL || signers == NULL || out == NULL || out_len == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out_len = 0;
    if (n == 0 || n > LUNA_NOTE_MAX_SIGS)
        return LUNA_ERR_INVALID_ARG;
    if (text_len > LUNA_NOTE_MAX_LEN)
        return LUNA_ERR_TOO_LARGE;
    if (text_len == 0 || text[text_len - 1] != '\n' || !text_chars_ok(text, text_len))
        return LUNA_ERR_FORMAT;
    luna_wbuf_init(&w, out, out_cap < LUNA_NOTE_MAX_LEN ? out_cap : LUNA_NOTE_MAX_LEN);
    LUNA_TRY(luna_write_bytes(&w, text, text_len), done);
    LUNA_TRY(luna_write_u8(&w, '\n'), done);
    for (size_t i = 0; i < n; i++) {
        const luna_note_signer *s = signers[i];
        LUNA_TRY_ENSURE(s != NULL, LUNA_ERR_INVALID_ARG, done);
        raw[0] = (uint8_t)(s->v.key_id >> 24);
        raw[1] = (uint8_t)(s->v.key_id >> 16);
        raw[2] = (uint8_t)(s->v.key_id >> 8);
        raw[3] = (uint8_t)s->v.key_id;
        LUNA_TRY(luna_ed25519_sign(luna_secret_cdata(s->seed), text, text_len,
                                   raw + LUNA_NOTE_KEY_ID_LEN),
                 done);
        LUNA_TRY(luna_write_bytes(&w, SIG_PREFIX, sizeof(SIG_PREFIX)), done);
        LUNA_TRY(luna_write_bytes(&w, s->v.name, s->v.name_len), done);
        LUNA_TRY(luna_write_u8(&w, ' '), done);
        LUNA_TRY(b64_encode(&w, raw, sizeof(raw)), done);
        LUNA_TRY(luna_write_u8(&w, '\n'), done);
    }
    *out_len = w.len;
done:
    if (err != LUNA_OK)
        luna_wipe(out, w.len);
    return err;
}

/* ---- checkpoints ---- */

/* Decimal u64: digits only, no leading zero unless "0", no overflow. */
static luna_err parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;

    if (n == 0 || n > MAX_DECIMAL_U64 || (n > 1 && s[0] == '0'))
        return LUNA_ERR_FORMAT;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return LUNA_ERR_FORMAT;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return LUNA_ERR_FORMAT;
        v = v * 10 + d;
    }
    *out = v;
    return LUNA_OK;
}

/* Extension block: 0..MAX non-empty lines, each ending "\n", note text rules. */
static luna_err check_extensions(const char *ext, size_t len)
{
    size_t off = 0, lines = 0;

    if (len == 0)
        return LUNA_OK;
    if (ext[len - 1] != '\n' || !text_chars_ok((const uint8_t *)ext, len))
        return LUNA_ERR_FORMAT;
    while (off < len) {
        size_t nl = find_byte(ext + off, len - off, '\n');
        if (nl == 0)
            return LUNA_ERR_FORMAT;
        if (++lines > LUNA_NOTE_CHECKPOINT_MAX_EXT)
            return LUNA_ERR_TOO_LARGE;
        off += nl + 1;
    }
    return LUNA_OK;
}

luna_err luna_note_checkpoint_parse(const uint8_t *text, size_t len, luna_note_checkpoint *out)
{
    const char *s = (const char *)text;
    size_t off = 0, nl, got = 0;
    luna_err err;

    if (out == NULL || (text == NULL && len != 0))
        return LUNA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if (len > LUNA_NOTE_MAX_LEN)
        return LUNA_ERR_TOO_LARGE;
    if (len == 0 || text[len - 1] != '\n' || !text_chars_ok(text, len))
        return LUNA_ERR_FORMAT;
    /* Origin. */
    nl = find_byte(s, len, '\n');
    LUNA_TRY_ENSURE(nl > 0, LUNA_ERR_FORMAT, bad);
    out->origin = s;
    out->origin_len = nl;
    off = nl + 1;
    /* Tree size. */
    nl = find_byte(s + off, len - off, '\n');
    LUNA_TRY_ENSURE(off + nl < len, LUNA_ERR_FORMAT, bad);
    LUNA_TRY(parse_u64(s + off, nl, &out->size), bad);
    off += nl + 1;
    /* Root hash. */
    nl = find_byte(s + off, len - off, '\n');
    LUNA_TRY_ENSURE(off + nl < len && nl == ROOT_B64_LEN, LUNA_ERR_FORMAT, bad);
    LUNA_TRY(b64_decode(s + off, nl, out->root, sizeof(out->root), &got), bad);
    LUNA_TRY_ENSURE(got == LUNA_MERKLE_HASH_LEN, LUNA_ERR_FORMAT, bad);
    off += nl + 1;
    /* Extension lines. */
    LUNA_TRY(check_extensions(s + off, len - off), bad);
    if (off < len) {
        out->ext = s + off;
        out->ext_len = len - off;
    }
    return LUNA_OK;
bad:
    memset(out, 0, sizeof(*out));
    return err;
}

luna_err luna_note_checkpoint_format(const luna_note_checkpoint *cp, uint8_t *out, size_t out_cap,
                                     size_t *out_len)
{
    char digits[MAX_DECIMAL_U64];
    size_t nd = 0;
    uint64_t v;
    luna_wbuf w;

    if (cp == NULL || out == NULL || out_len == NULL || cp->origin == NULL ||
        (cp->ext == NULL && cp->ext_len != 0))
        return LUNA_ERR_INVALID_ARG;
    *out_len = 0;
    if (cp->origin_len == 0 || memchr(cp->origin, '\n', cp->origin_len) != NULL ||
        !text_chars_ok((const uint8_t *)cp->origin, cp->origin_len))
        return LUNA_ERR_FORMAT;
    LUNA_GUARD(check_extensions(cp->ext, cp->ext_len));
    v = cp->size;
    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    luna_wbuf_init(&w, out, out_cap);
    LUNA_GUARD(luna_write_bytes(&w, cp->origin, cp->origin_len));
    LUNA_GUARD(luna_write_u8(&w, '\n'));
    while (nd > 0)
        LUNA_GUARD(luna_write_u8(&w, (uint8_t)digits[--nd]));
    LUNA_GUARD(luna_write_u8(&w, '\n'));
    LUNA_GUARD(b64_encode(&w, cp->root, sizeof(cp->root)));
    LUNA_GUARD(luna_write_u8(&w, '\n'));
    if (cp->ext_len != 0)
        LUNA_GUARD(luna_write_bytes(&w, cp->ext, cp->ext_len));
    if (w.len > LUNA_NOTE_MAX_LEN)
        return LUNA_ERR_TOO_LARGE;
    *out_len = w.len;
    return LUNA_OK;
}

luna_err luna_note_checkpoint_open(const uint8_t *msg, size_t len, const char *origin,
                                   size_t origin_len, const luna_note_verifier *known,
                                   size_t n_known, luna_note *note, luna_note_checkpoint *cp)
{
    luna_err err;

    if (note == NULL || cp == NULL || origin == NULL || origin_len == 0)
        return LUNA_ERR_INVALID_ARG;
    memset(cp, 0, sizeof(*cp));
    LUNA_GUARD(luna_note_open(msg, len, known, n_known, note));
    LUNA_TRY(luna_note_checkpoint_parse(note->text, note->text_len, cp), bad);
    LUNA_TRY_ENSURE(cp->origin_len == origin_len && memcmp(cp->origin, origin, origin_len) == 0,
                    LUNA_ERR_VERIFY, bad);
    return LUNA_OK;
bad:
    memset(note, 0, sizeof(*note));
    memset(cp, 0, sizeof(*cp));
    return err;
}
