/*
 * iam_keys.c - the master key file and the token signing key ring.
 *
 * The master key (32 random bytes in a 0600 file) never leaves a
 * luna_secret; from it HKDF derives the key that seals signing seeds in
 * the store (AES-256-GCM, the kid as associated data) and the API key
 * pepper.  Signing seeds exist in clear only inside luna_jws_signer.
 *
 * Must never: write a seed or the master key anywhere but the sealed
 * column and the 0600 file; log either; accept a master key file that
 * others can read; publish a key set without a key that is still signing.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iam.h"
#include "luna/bytes.h"
#include "luna/log.h"

static const char SEAL_INFO[] = "luna-iam/signing-key-seal/v1";
static const char SEAL_AAD[] = "luna-iam/signing-key/v1";

/* ---- master key ---- */

luna_err iam_master_load(const char *path, luna_secret **out)
{
    if (path == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            return LUNA_ERR_NOT_FOUND;
        return (errno == EACCES || errno == ELOOP) ? LUNA_ERR_PERMISSION : LUNA_ERR_IO;
    }
    luna_err err = LUNA_OK;
    luna_secret *s = NULL;
    struct stat st;
    LUNA_TRY_ENSURE(fstat(fd, &st) == 0, LUNA_ERR_IO, done);
    LUNA_TRY_ENSURE(S_ISREG(st.st_mode), LUNA_ERR_PERMISSION, done);
    LUNA_TRY_ENSURE((st.st_mode & 077) == 0, LUNA_ERR_PERMISSION, done);
    LUNA_TRY_ENSURE(st.st_uid == geteuid(), LUNA_ERR_PERMISSION, done);
    LUNA_TRY_ENSURE(st.st_size == (off_t)IAM_MASTER_KEY_LEN, LUNA_ERR_FORMAT, done);
    LUNA_TRY(luna_secret_new(IAM_MASTER_KEY_LEN, &s), done);
    size_t got = 0;
    while (got < IAM_MASTER_KEY_LEN) {
        ssize_t r = read(fd, luna_secret_data(s) + got, IAM_MASTER_KEY_LEN - got);
        if (r < 0 && errno == EINTR)
            continue;
        LUNA_TRY_ENSURE(r > 0, LUNA_ERR_IO, done);
        got += (size_t)r;
    }
    *out = s;
    s = NULL;
done:
    luna_secret_free(s);
    close(fd);
    return err;
}

luna_err iam_master_create(const char *path)
{
    if (path == NULL)
        return LUNA_ERR_INVALID_ARG;
    uint8_t k[IAM_MASTER_KEY_LEN];
    luna_err err;
    LUNA_TRY(luna_random(k, sizeof(k)), done);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        err = (errno == EEXIST) ? LUNA_ERR_CONFLICT : LUNA_ERR_IO;
        goto done;
    }
    size_t put = 0;
    while (put < sizeof(k)) {
        ssize_t w = write(fd, k + put, sizeof(k) - put);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        put += (size_t)w;
    }
    bool ok = put == sizeof(k) && fsync(fd) == 0;
    ok = (close(fd) == 0) && ok;
    if (!ok) {
        (void)unlink(path);
        err = LUNA_ERR_IO;
    }
done:
    luna_wipe(k, sizeof(k));
    return err;
}

luna_err iam_master_derive(const luna_secret *master, const char *info, uint8_t *out,
                           size_t out_len)
{
    if (master == NULL || info == NULL || out == NULL || out_len == 0 || out_len > 64)
        return LUNA_ERR_INVALID_ARG;
    return luna_hkdf(LUNA_HASH_SHA256, NULL, 0, luna_secret_cdata(master),
                     luna_secret_len(master), (const uint8_t *)info, strlen(info), out, out_len);
}

/* ---- sealing ---- */

static luna_err seal_aad(const char *kid, uint8_t *aad, size_t cap, size_t *len)
{
    size_t k = strlen(kid);
    if (k > IAM_KID_MAX || sizeof(SEAL_AAD) + k > cap)
        return LUNA_ERR_INVALID_ARG;
    memcpy(aad, SEAL_AAD, sizeof(SEAL_AAD)); /* with its NUL: a separator */
    memcpy(aad + sizeof(SEAL_AAD), kid, k);
    *len = sizeof(SEAL_AAD) + k;
    return LUNA_OK;
}

static luna_err seed_seal(const luna_secret *master, const char *kid,
                          const uint8_t seed[LUNA_ED25519_SEED_LEN],
                          uint8_t out[IAM_SEALED_SEED_LEN])
{
    uint8_t key[32], aad[sizeof(SEAL_AAD) + IAM_KID_MAX];
    size_t aad_len = 0;
    luna_err err;
    LUNA_TRY(seal_aad(kid, aad, sizeof(aad), &aad_len), done);
    LUNA_TRY(iam_master_derive(master, SEAL_INFO, key, sizeof(key)), done);
    LUNA_TRY(luna_random(out, LUNA_AEAD_NONCE_LEN), done);
    LUNA_TRY(luna_aead_seal(LUNA_AEAD_AES256GCM, key, sizeof(key), out, LUNA_AEAD_NONCE_LEN,
                            aad, aad_len, seed, LUNA_ED25519_SEED_LEN, out + LUNA_AEAD_NONCE_LEN),
             done);
done:
    luna_wipe(key, sizeof(key));
    return err;
}

static luna_err seed_open(const luna_secret *master, const char *kid, const uint8_t *sealed,
                          size_t sealed_len, uint8_t seed[LUNA_ED25519_SEED_LEN])
{
    if (sealed_len != IAM_SEALED_SEED_LEN)
        return LUNA_ERR_FORMAT;
    uint8_t key[32], aad[sizeof(SEAL_AAD) + IAM_KID_MAX];
    size_t aad_len = 0;
    luna_err err;
    LUNA_TRY(seal_aad(kid, aad, sizeof(aad), &aad_len), done);
    LUNA_TRY(iam_master_derive(master, SEAL_INFO, key, sizeof(key)), done);
    LUNA_TRY(luna_aead_open(LUNA_AEAD_AES256GCM, key, sizeof(key), sealed, LUNA_AEAD_NONCE_LEN,
                            aad, aad_len, sealed + LUNA_AEAD_NONCE_LEN,
                            sealed_len - LUNA_AEAD_NONCE_LEN, seed),
             done);
done:
    luna_wipe(key, sizeof(key));
    return err;
}

/* ---- rotation ---- */

typedef struct rotate_ctx {
    const char *kid;
    const uint8_t *pk;
    const uint8_t *sealed;
    int64_t now, publish_delay, token_ttl, skew;
} rotate_ctx;

static luna_err rotate_tx(luna_store *db, void *arg)
{
    rotate_ctx *c = arg;
    luna_store_rows *rows = NULL;
    luna_err err;
    const luna_store_param now_p[] = {luna_store_p_int64(c->now)};
    LUNA_TRY(luna_store_query(db,
                              "SELECT COUNT(*) FROM iam_signing_keys "
                              "WHERE retire_at IS NULL OR retire_at > ?1",
                              now_p, 1, &rows),
             done);
    bool has = false;
    int64_t live = 0;
    LUNA_TRY(luna_store_rows_next(rows, &has), done);
    LUNA_TRY_ENSURE(has, LUNA_ERR_STORAGE, done);
    LUNA_TRY(luna_store_col_int64(rows, 0, &live), done);
    luna_store_rows_free(rows);
    rows = NULL;
    LUNA_TRY_ENSURE(live < (int64_t)IAM_MAX_SIGNING_KEYS - 1, LUNA_ERR_CONFLICT, done);
    /* The first key has no verifier to wait for: no token exists yet. */
    int64_t activate = live == 0 ? c->now : c->now + c->publish_delay;
    const luna_store_param ins[] = {
        luna_store_p_text(c->kid),
        luna_store_p_blob(c->pk, LUNA_ED25519_PUB_LEN),
        luna_store_p_blob(c->sealed, IAM_SEALED_SEED_LEN),
        luna_store_p_int64(c->now),
        luna_store_p_int64(activate),
    };
    LUNA_TRY(luna_store_exec(db,
                             "INSERT INTO iam_signing_keys (kid, public_key, sealed_seed, "
                             "created_at, activate_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                             ins, 5, NULL),
             done);
    /* Older keys stay published until the last token they sign expires. */
    const luna_store_param upd[] = {luna_store_p_int64(activate + c->token_ttl + c->skew),
                                    luna_store_p_text(c->kid)};
    LUNA_TRY(luna_store_exec(db,
                             "UPDATE iam_signing_keys SET retire_at = ?1 "
                             "WHERE retire_at IS NULL AND kid <> ?2",
                             upd, 2, NULL),
             done);
done:
    luna_store_rows_free(rows);
    return err;
}

luna_err iam_signing_rotate(luna_store *db, const luna_secret *master, int64_t now,
                            int64_t publish_delay, int64_t token_ttl, int64_t skew,
                            char kid_out[IAM_KID_MAX + 1])
{
    if (db == NULL || master == NULL || now < 0 || publish_delay < 0 || token_ttl < 0 ||
        skew < 0)
        return LUNA_ERR_INVALID_ARG;
    uint8_t seed[LUNA_ED25519_SEED_LEN], pk[LUNA_ED25519_PUB_LEN], rnd[8];
    uint8_t sealed[IAM_SEALED_SEED_LEN];
    char kid[IAM_KID_MAX + 1], hex[2 * sizeof(rnd) + 1];
    luna_err err;
    LUNA_TRY(luna_random(rnd, sizeof(rnd)), done);
    LUNA_TRY(luna_hex_encode(rnd, sizeof(rnd), hex, sizeof(hex)), done);
    memcpy(kid, "iam-", 4);
    memcpy(kid + 4, hex, sizeof(hex)); /* with its NUL */
    LUNA_TRY(luna_ed25519_keygen(seed, pk), done);
    LUNA_TRY(seed_seal(master, kid, seed, sealed), done);
    rotate_ctx c = {kid, pk, sealed, now, publish_delay, token_ttl, skew};
    LUNA_TRY(luna_store_tx(db, rotate_tx, &c), done);
    if (kid_out != NULL)
        memcpy(kid_out, kid, strlen(kid) + 1);
done:
    luna_wipe(seed, sizeof(seed));
    return err;
}

/* ---- the ring ---- */

void iam_keyring_clear(iam_keyring *ring)
{
    if (ring == NULL)
        return;
    for (size_t i = 0; i < ring->n; i++)
        luna_jws_signer_free(ring->keys[i].signer);
    luna_jws_keyset_free(ring->published);
    memset(ring, 0, sizeof(*ring));
}

static luna_err load_row(luna_store_rows *rows, const luna_secret *master, iam_signkey *k)
{
    const char *kid;
    const uint8_t *pk_db, *sealed;
    size_t kid_len, pk_len, sealed_len;
    bool retire_null = true;
    uint8_t seed[LUNA_ED25519_SEED_LEN], pk[LUNA_ED25519_PUB_LEN];
    luna_err err;
    LUNA_TRY(luna_store_col_text(rows, 0, &kid, &kid_len), done);
    LUNA_TRY_ENSURE(kid_len >= 1 && kid_len <= IAM_KID_MAX, LUNA_ERR_FORMAT, done);
    memcpy(k->kid, kid, kid_len);
    k->kid[kid_len] = '\0';
    LUNA_TRY(luna_store_col_blob(rows, 1, &pk_db, &pk_len), done);
    LUNA_TRY_ENSURE(pk_len == LUNA_ED25519_PUB_LEN, LUNA_ERR_FORMAT, done);
    LUNA_TRY(luna_store_col_blob(rows, 2, &sealed, &sealed_len), done);
    LUNA_TRY(luna_store_col_int64(rows, 3, &k->created_at), done);
    LUNA_TRY(luna_store_col_int64(rows, 4, &k->activate_at), done);
    LUNA_TRY(luna_store_col_is_null(rows, 5, &retire_null), done);
    k->retire_at = 0;
    if (!retire_null)
        LUNA_TRY(luna_store_col_int64(rows, 5, &k->retire_at), done);
    LUNA_TRY(seed_open(master, k->kid, sealed, sealed_len, seed), done);
    /* The sealed seed and the stored public key must agree. */
    LUNA_TRY(luna_ed25519_public(seed, pk), done);
    LUNA_TRY_ENSURE(luna_ct_equal(pk, pk_db, sizeof(pk)), LUNA_ERR_VERIFY, done);
    LUNA_TRY(luna_jws_signer_new(seed, k->kid, &k->signer), done);
done:
    luna_wipe(seed, sizeof(seed));
    return err;
}

/*
 * Drops from ring every key retired at now, signer and published entry
 * alike.  Used when a reload fails, so a store that cannot be read never
 * keeps a retired key trusted.  Allocates nothing.
 */
static void keyring_prune(iam_keyring *ring, int64_t now)
{
    size_t kept = 0;
    for (size_t i = 0; i < ring->n; i++) {
        iam_signkey *k = &ring->keys[i];
        if (k->retire_at != 0 && k->retire_at <= now) {
            if (ring->published != NULL &&
                luna_jws_keyset_remove(ring->published, k->kid) != LUNA_OK) {
                /* Cannot happen for a key we published; trust nothing then. */
                luna_jws_keyset_free(ring->published);
                ring->published = NULL;
            }
            luna_jws_signer_free(k->signer);
            memset(k, 0, sizeof(*k));
            continue;
        }
        if (kept != i) {
            ring->keys[kept] = *k;
            memset(k, 0, sizeof(*k));
        }
        kept++;
    }
    ring->n = kept;
}

luna_err iam_keyring_refresh(iam_keyring *ring, luna_store *db, const luna_secret *master,
                             int64_t now)
{
    if (ring == NULL || db == NULL || master == NULL)
        return LUNA_ERR_INVALID_ARG;
    iam_keyring fresh;
    memset(&fresh, 0, sizeof(fresh));
    luna_store_rows *rows = NULL;
    luna_err err;
    luna_err row_err = LUNA_OK;
    size_t live = 0;
    const luna_store_param p[] = {luna_store_p_int64(now)};
    LUNA_TRY(luna_jws_keyset_new(&fresh.published), done);
    LUNA_TRY(luna_store_query(db,
                              "SELECT kid, public_key, sealed_seed, created_at, activate_at, "
                              "retire_at FROM iam_signing_keys "
                              "WHERE retire_at IS NULL OR retire_at > ?1 "
                              "ORDER BY activate_at, kid",
                              p, 1, &rows),
             done);
    for (;;) {
        bool has = false;
        LUNA_TRY(luna_store_rows_next(rows, &has), done);
        if (!has)
            break;
        live++;
        LUNA_TRY_ENSURE(live <= IAM_MAX_SIGNING_KEYS, LUNA_ERR_TOO_LARGE, done);
        iam_signkey *k = &fresh.keys[fresh.n];
        luna_err e = load_row(rows, master, k);
        if (e != LUNA_OK) {
            /* One unreadable row must not freeze the ring (retired keys
               would stay trusted): it is skipped, and only it. */
            LUNA_LOGF(LUNA_LOG_ERROR, "iam", "signing key row unreadable, skipped",
                      LUNA_LOG_STR("kid", k->kid), LUNA_LOG_ERR("err", e));
            luna_jws_signer_free(k->signer);
            memset(k, 0, sizeof(*k));
            if (row_err == LUNA_OK)
                row_err = e;
            continue;
        }
        fresh.n++;
        LUNA_TRY(luna_jws_signer_publish(k->signer, fresh.published), done);
    }
    /* Live rows but none readable (a wrong master key): keep what we had. */
    LUNA_TRY_ENSURE(fresh.n > 0 || row_err == LUNA_OK, row_err, done);
    iam_keyring_clear(ring);
    *ring = fresh;
    memset(&fresh, 0, sizeof(fresh));
done:
    luna_store_rows_free(rows);
    iam_keyring_clear(&fresh);
    if (err != LUNA_OK)
        keyring_prune(ring, now);
    return err;
}

const iam_signkey *iam_keyring_current(const iam_keyring *ring, int64_t now)
{
    if (ring == NULL)
        return NULL;
    const iam_signkey *best = NULL;
    for (size_t i = 0; i < ring->n; i++) {
        const iam_signkey *k = &ring->keys[i];
        if (k->activate_at > now || (k->retire_at != 0 && k->retire_at <= now))
            continue;
        if (best == NULL || k->activate_at >= best->activate_at)
            best = k;
    }
    return best;
}
