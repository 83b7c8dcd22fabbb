/*
 * audit_util.c - helpers shared by luna-audit and luna-audit-witness
 * (audit_util.h).
 *
 * Owns: reading and writing the log's Ed25519 note key files, the strict
 * query-string grammar, proofs as JSON.
 * Must never: read a key file that others can read, leave key text in
 * memory after use, or accept two spellings of one query value.
 */
#include "audit_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "luna/bytes.h"
#include "luna/crypto.h"

static luna_err read_fd_all(int fd, char *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    for (;;) {
        if (n == cap)
            return LUNA_ERR_TOO_LARGE;
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return LUNA_ERR_IO;
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *len = n;
    return LUNA_OK;
}

luna_err audit_read_signer(const char *path, const char *name, luna_note_signer **out)
{
    if (path == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? LUNA_ERR_NOT_FOUND : LUNA_ERR_PERMISSION;
    luna_err err;
    char buf[AUDIT_KEY_FILE_MAX + 1];
    size_t len = 0;
    struct stat st;
    LUNA_TRY_ENSURE(fstat(fd, &st) == 0, LUNA_ERR_IO, out);
    LUNA_TRY_ENSURE(S_ISREG(st.st_mode), LUNA_ERR_CONFIG, out);
    /* The signing key of the log: nobody but its owner may read it, and
     * the owner is this process's user (a file planted by another user -
     * who could rewrite it at will - is refused, as IAM and the HSM do). */
    LUNA_TRY_ENSURE((st.st_mode & 077) == 0, LUNA_ERR_PERMISSION, out);
    LUNA_TRY_ENSURE(st.st_uid == geteuid(), LUNA_ERR_PERMISSION, out);
    LUNA_TRY(read_fd_all(fd, buf, sizeof(buf) - 1, &len), out);
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    LUNA_TRY(luna_note_signer_parse(buf, len, out), out);
    if (name != NULL) {
        luna_note_verifier v;
        luna_note_signer_verifier(*out, &v);
        if (strcmp(v.name, name) != 0) {
            luna_note_signer_free(*out);
            *out = NULL;
            err = LUNA_ERR_CONFIG;
        }
    }
out:
    luna_wipe(buf, sizeof(buf));
    close(fd);
    return err;
}

luna_err audit_keygen(const char *name, const char *path, char *vkey, size_t vkey_cap)
{
    if (name == NULL || path == NULL || vkey == NULL)
        return LUNA_ERR_INVALID_ARG;
    luna_err err;
    uint8_t seed[LUNA_ED25519_SEED_LEN], pk[LUNA_ED25519_PUB_LEN];
    uint8_t raw[1 + LUNA_ED25519_SEED_LEN];
    char b64[64], text[AUDIT_KEY_FILE_MAX];
    int fd = -1;
    luna_note_verifier v;
    size_t vlen;
    LUNA_TRY(luna_ed25519_keygen(seed, pk), out);
    LUNA_TRY(luna_note_verifier_new(name, strlen(name), pk, &v), out);
    LUNA_TRY(luna_note_verifier_format(&v, vkey, vkey_cap, &vlen), out);
    raw[0] = LUNA_NOTE_ALG_ED25519;
    memcpy(raw + 1, seed, sizeof(seed));
    /* Standard base64 with padding, as the skey format has it. */
    int bl = EVP_EncodeBlock((unsigned char *)b64, raw, (int)sizeof(raw));
    LUNA_TRY_ENSURE(bl > 0 && (size_t)bl < sizeof(b64), LUNA_ERR_CRYPTO, out);
    int tl = snprintf(text, sizeof(text), "PRIVATE+KEY+%s+%08x+%s\n", name, (unsigned)v.key_id,
                      b64);
    LUNA_TRY_ENSURE(tl > 0 && (size_t)tl < sizeof(text), LUNA_ERR_TOO_LARGE, out);
    /* Prove the text parses back before it is written anywhere. */
    luna_note_signer *check = NULL;
    LUNA_TRY(luna_note_signer_parse(text, (size_t)tl - 1, &check), out);
    luna_note_signer_free(check);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    LUNA_TRY_ENSURE(fd >= 0, errno == EEXIST ? LUNA_ERR_CONFLICT : LUNA_ERR_IO, out);
    LUNA_TRY_ENSURE(write(fd, text, (size_t)tl) == tl && fsync(fd) == 0, LUNA_ERR_IO, out);
out:
    if (fd >= 0)
        close(fd);
    luna_wipe(seed, sizeof(seed));
    luna_wipe(raw, sizeof(raw));
    luna_wipe(b64, sizeof(b64));
    luna_wipe(text, sizeof(text));
    return err;
}

static void file_id_from(const struct stat *st, audit_file_id *id)
{
    memset(id, 0, sizeof(*id));
    id->dev = (uint64_t)st->st_dev;
    id->ino = (uint64_t)st->st_ino;
    id->size = (uint64_t)st->st_size;
    id->mtime_sec = (int64_t)st->st_mtim.tv_sec;
    id->mtime_nsec = (int64_t)st->st_mtim.tv_nsec;
    id->ctime_sec = (int64_t)st->st_ctim.tv_sec;
    id->ctime_nsec = (int64_t)st->st_ctim.tv_nsec;
}

luna_err audit_file_id_get(const char *path, audit_file_id *id)
{
    if (path == NULL || id == NULL)
        return LUNA_ERR_INVALID_ARG;
    struct stat st;
    if (stat(path, &st) != 0)
        return errno == ENOENT ? LUNA_ERR_NOT_FOUND : LUNA_ERR_IO;
    file_id_from(&st, id);
    return LUNA_OK;
}

bool audit_file_id_equal(const audit_file_id *a, const audit_file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_sec == b->mtime_sec && a->mtime_nsec == b->mtime_nsec &&
           a->ctime_sec == b->ctime_sec && a->ctime_nsec == b->ctime_nsec;
}

luna_err audit_read_small_file(const char *path, size_t max, char **out, size_t *len,
                               audit_file_id *id)
{
    if (path == NULL || out == NULL || len == NULL || max == 0)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? LUNA_ERR_NOT_FOUND : LUNA_ERR_PERMISSION;
    luna_err err;
    struct stat st;
    char *buf = NULL;
    LUNA_TRY_ENSURE(fstat(fd, &st) == 0, LUNA_ERR_IO, out);
    LUNA_TRY_ENSURE(S_ISREG(st.st_mode), LUNA_ERR_CONFIG, out);
    if (id != NULL)
        file_id_from(&st, id);
    buf = malloc(max + 1);
    LUNA_TRY_ENSURE(buf != NULL, LUNA_ERR_NOMEM, out);
    LUNA_TRY(read_fd_all(fd, buf, max, len), out);
    buf[*len] = '\0';
    *out = buf;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return err;
}

luna_err audit_parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (s == NULL || out == NULL || len == 0 || len > 20)
        return LUNA_ERR_FORMAT;
    if (len > 1 && s[0] == '0')
        return LUNA_ERR_FORMAT;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return LUNA_ERR_FORMAT;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return LUNA_ERR_FORMAT;
        v = v * 10 + d;
    }
    *out = v;
    return LUNA_OK;
}

static bool value_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == ':' || c == '/' || c == '@' || c == '-';
}

luna_err audit_query_parse(const char *qs, const char *const *allowed, audit_query *out)
{
    if (allowed == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if (qs == NULL || qs[0] == '\0')
        return LUNA_OK;
    const char *p = qs;
    for (;;) {
        const char *amp = strchr(p, '&');
        size_t plen = amp != NULL ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', plen);
        if (eq == NULL)
            return LUNA_ERR_FORMAT;
        size_t klen = (size_t)(eq - p), vlen = plen - klen - 1;
        if (klen == 0 || vlen == 0 || vlen > AUDIT_QUERY_MAX_VALUE ||
            out->n == AUDIT_QUERY_MAX_PARAMS)
            return LUNA_ERR_FORMAT;
        int which = -1;
        for (int i = 0; allowed[i] != NULL; i++) {
            if (strlen(allowed[i]) == klen && memcmp(allowed[i], p, klen) == 0) {
                which = i;
                break;
            }
        }
        if (which < 0 || klen >= sizeof(out->key[0]))
            return LUNA_ERR_FORMAT;
        for (size_t i = 0; i < vlen; i++) {
            if (!value_char(eq[1 + i]))
                return LUNA_ERR_FORMAT;
        }
        if (audit_query_get(out, allowed[which]) != NULL)
            return LUNA_ERR_FORMAT;
        memcpy(out->key[out->n], p, klen);
        out->key[out->n][klen] = '\0';
        memcpy(out->value[out->n], eq + 1, vlen);
        out->value[out->n][vlen] = '\0';
        out->n++;
        if (amp == NULL)
            break;
        p = amp + 1;
    }
    return LUNA_OK;
}

const char *audit_query_get(const audit_query *q, const char *key)
{
    for (size_t i = 0; i < q->n; i++) {
        if (strcmp(q->key[i], key) == 0)
            return q->value[i];
    }
    return NULL;
}

json_t *audit_proof_json(const luna_merkle_proof *p)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return NULL;
    for (size_t i = 0; i < p->n && i < LUNA_MERKLE_MAX_PROOF; i++) {
        char hex[2 * LUNA_MERKLE_HASH_LEN + 1];
        if (luna_hex_encode(p->hash[i], LUNA_MERKLE_HASH_LEN, hex, sizeof(hex)) != LUNA_OK ||
            json_array_append_new(arr, json_string(hex)) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

luna_err audit_proof_from_json(const json_t *arr, luna_merkle_proof *out)
{
    if (arr == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    luna_merkle_proof_init(out);
    if (!json_is_array(arr))
        return LUNA_ERR_FORMAT;
    if (json_array_size(arr) > LUNA_MERKLE_MAX_PROOF)
        return LUNA_ERR_TOO_LARGE;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *it = json_array_get(arr, i);
        uint8_t h[LUNA_MERKLE_HASH_LEN];
        size_t n = 0;
        if (!json_is_string(it) || json_string_length(it) != 2 * LUNA_MERKLE_HASH_LEN)
            return LUNA_ERR_FORMAT;
        LUNA_GUARD(luna_hex_decode(json_string_value(it), json_string_length(it), h, sizeof(h),
                                   &n));
        LUNA_GUARD(luna_merkle_proof_add(out, h, n));
    }
    return LUNA_OK;
}

int64_t audit_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
