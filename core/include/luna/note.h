/*
 * luna/note.h - C2SP signed notes (c2sp.org/signed-note) with Ed25519
 * keys, and transparency-log checkpoints (c2sp.org/tlog-checkpoint).
 *
 * The audit log signs its tree heads as checkpoints in this format so that
 * third-party tools can check them; `lunal audit verify` opens them here.
 * Byte formats are in docs/merkle.md.
 *
 * A signed note is UTF-8 text, one blank line, then signature lines:
 *     <text, every line ending in "\n">
 *     "\n"
 *     "\xE2\x80\x94 " <key name> " " base64(key ID (4, big-endian) || signature) "\n"
 *     ... one line per signature
 * The note text runs up to the LAST "\n\n" (plus that first "\n"), so it
 * may itself contain blank lines.  The whole note must be valid UTF-8 with
 * no ASCII control character other than "\n", and at most
 * LUNA_NOTE_MAX_LEN bytes with at most LUNA_NOTE_MAX_SIGS signature lines.
 *
 * Keys (Ed25519 only, algorithm byte 0x01):
 *     key ID = first 4 bytes of SHA-256(name || "\n" || 0x01 || public key)
 *     verifier key "vkey": <name> "+" <key ID, 8 hex> "+" base64(0x01 || public key)
 *     signer key   "skey": "PRIVATE+KEY+" <name> "+" <key ID> "+" base64(0x01 || seed)
 * A key name is non-empty UTF-8 of at most LUNA_NOTE_MAX_NAME_LEN bytes
 * with no "+", no Unicode white space and no control character.
 *
 * Verification policy (luna_note_open): a signature line whose (name, key
 * ID) matches no known verifier is ignored; a line that matches one must
 * verify, or the whole note is refused (LUNA_ERR_VERIFY); and at least one
 * known key must have signed (else LUNA_ERR_VERIFY).  Malformed notes are
 * LUNA_ERR_FORMAT, notes over a cap LUNA_ERR_TOO_LARGE.
 *
 * base64 here is RFC 4648 section 4 (standard alphabet, "=" padding) in
 * its canonical form only: non-zero unused bits are refused.
 *
 * Thread safety: no shared state; a signer may be used by several threads
 * at once (it is read-only after creation).
 */
#ifndef LUNA_NOTE_H
#define LUNA_NOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "luna/crypto.h"
#include "luna/err.h"
#include "luna/merkle.h"

/* Caps: a whole signed note, its signature lines, a key name. */
#define LUNA_NOTE_MAX_LEN (64u * 1024u)
#define LUNA_NOTE_MAX_SIGS 32
#define LUNA_NOTE_MAX_NAME_LEN 255
#define LUNA_NOTE_KEY_ID_LEN 4
#define LUNA_NOTE_ALG_ED25519 0x01
/* Longest vkey text: name + "+" + 8 + "+" + base64(33) = 44, plus NUL. */
#define LUNA_NOTE_VKEY_MAX_LEN (LUNA_NOTE_MAX_NAME_LEN + 1 + 8 + 1 + 44 + 1)
/* One Ed25519 signature line: "— " + name + " " + base64(4 + 64) + "\n". */
#define LUNA_NOTE_SIG_LINE_LEN(name_len) (4 + (name_len) + 1 + 92 + 1)

/* A public key allowed to sign notes.  Plain data: copy freely. */
typedef struct luna_note_verifier {
    char name[LUNA_NOTE_MAX_NAME_LEN + 1]; /* NUL-terminated */
    size_t name_len;
    uint32_t key_id;
    uint8_t pub[LUNA_ED25519_PUB_LEN];
} luna_note_verifier;

/* key_id = SHA-256(name || "\n" || 0x01 || pub)[0:4] as a big-endian u32. */
luna_err luna_note_key_id(const char *name, size_t name_len, const uint8_t pub[LUNA_ED25519_PUB_LEN],
                          uint32_t *key_id) LUNA_MUST_CHECK;
/* Builds a verifier from a name and an Ed25519 public key. */
luna_err luna_note_verifier_new(const char *name, size_t name_len,
                                const uint8_t pub[LUNA_ED25519_PUB_LEN],
                                luna_note_verifier *out) LUNA_MUST_CHECK;
/*
 * Parses a vkey (len bytes, no NUL needed).  LUNA_ERR_FORMAT for bad
 * syntax, a bad name, or a key ID that does not match the key;
 * LUNA_ERR_UNSUPPORTED for an algorithm byte other than 0x01.
 */
luna_err luna_note_verifier_parse(const char *vkey, size_t len,
                                  luna_note_verifier *out) LUNA_MUST_CHECK;
/* Writes the vkey text, NUL-terminated (out_cap >= LUNA_NOTE_VKEY_MAX_LEN is always enough). */
luna_err luna_note_verifier_format(const luna_note_verifier *v, char *out, size_t out_cap,
                                   size_t *out_len) LUNA_MUST_CHECK;

/* A private signing key: the seed lives in a luna_secret. */
typedef struct luna_note_signer luna_note_signer;
/* Copies the seed; the caller wipes its own copy. */
luna_err luna_note_signer_new(const char *name, size_t name_len,
                              const uint8_t seed[LUNA_ED25519_SEED_LEN],
                              luna_note_signer **out) LUNA_MUST_CHECK;
/* Parses an skey; the caller wipes its text.  Same errors as verifier_parse. */
luna_err luna_note_signer_parse(const char *skey, size_t len,
                                luna_note_signer **out) LUNA_MUST_CHECK;
/* The matching verifier (public half). */
void luna_note_signer_verifier(const luna_note_signer *s, luna_note_verifier *out);
/* Wipes and frees; NULL is a no-op. */
void luna_note_signer_free(luna_note_signer *s);

/*
 * Signs text with each of n signers (1 <= n <= LUNA_NOTE_MAX_SIGS) and
 * writes text || "\n" || signature lines to out.  text must be non-empty,
 * end in "\n" and obey the note text rules (LUNA_ERR_FORMAT otherwise).
 * LUNA_ERR_TOO_LARGE when the result would exceed out_cap or
 * LUNA_NOTE_MAX_LEN.  Ed25519 is deterministic: same input, same bytes.
 */
luna_err luna_note_sign(const uint8_t *text, size_t text_len, luna_note_signer *const *signers,
                        size_t n, uint8_t *out, size_t out_cap, size_t *out_len) LUNA_MUST_CHECK;

/* One signature line of a parsed note.  Pointers are views into the message. */
typedef struct luna_note_sig {
    const char *name;
    size_t name_len;
    uint32_t key_id;
    const char *b64; /* base64(key ID || signature), canonical, >= 5 bytes decoded */
    size_t b64_len;
    bool verified; /* set by luna_note_open: made by a known key and checked */
} luna_note_sig;

/* A parsed note.  It points into the caller's message: keep that alive. */
typedef struct luna_note {
    const uint8_t *text; /* includes its final "\n" */
    size_t text_len;
    size_t n_sigs;
    luna_note_sig sigs[LUNA_NOTE_MAX_SIGS];
    size_t n_verified; /* distinct known keys whose signature verified */
} luna_note;

/*
 * Structure only: splits and checks the syntax without verifying anything
 * (for inspecting a note whose keys you do not have).  Never trust its
 * text: use luna_note_open for that.
 */
luna_err luna_note_parse(const uint8_t *msg, size_t len, luna_note *out) LUNA_MUST_CHECK;
/*
 * Parses and verifies against n_known verifiers (the policy above).  On
 * any error *out is zeroed, so a caller cannot use an unverified text.
 */
luna_err luna_note_open(const uint8_t *msg, size_t len, const luna_note_verifier *known,
                        size_t n_known, luna_note *out) LUNA_MUST_CHECK;

/* ---- tlog checkpoints (the note text of a signed tree head) ---- */

#define LUNA_NOTE_CHECKPOINT_MAX_EXT 16 /* extension lines */

/*
 * Checkpoint body:
 *     <origin> "\n"
 *     <tree size, decimal, no sign, no leading zero ("0" allowed)> "\n"
 *     <base64 of the 32-byte root hash> "\n"
 *     [<extension line, non-empty> "\n"]*
 * The origin is non-empty and obeys the note text rules.
 */
typedef struct luna_note_checkpoint {
    const char *origin; /* view, origin_len bytes, no "\n" */
    size_t origin_len;
    uint64_t size;
    uint8_t root[LUNA_MERKLE_HASH_LEN];
    const char *ext; /* view: the extension lines verbatim (each ends "\n"); NULL if none */
    size_t ext_len;
} luna_note_checkpoint;

/* Parses a checkpoint body (a verified note's text).  Errors: FORMAT, TOO_LARGE. */
luna_err luna_note_checkpoint_parse(const uint8_t *text, size_t len,
                                    luna_note_checkpoint *out) LUNA_MUST_CHECK;
/*
 * Writes the checkpoint body; refuses (LUNA_ERR_FORMAT) an origin or
 * extension block that luna_note_checkpoint_parse would not accept back.
 */
luna_err luna_note_checkpoint_format(const luna_note_checkpoint *cp, uint8_t *out, size_t out_cap,
                                     size_t *out_len) LUNA_MUST_CHECK;
/*
 * Opens a signed checkpoint: luna_note_open, then the body parse, then
 * checks the origin is exactly `origin` (LUNA_ERR_VERIFY otherwise) so that
 * a valid checkpoint of another log is never taken for this one.
 */
luna_err luna_note_checkpoint_open(const uint8_t *msg, size_t len, const char *origin,
                                   size_t origin_len, const luna_note_verifier *known,
                                   size_t n_known, luna_note *note,
                                   luna_note_checkpoint *cp) LUNA_MUST_CHECK;

#endif
