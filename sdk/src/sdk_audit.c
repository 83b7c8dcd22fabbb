/*
 * sdk_audit.c - `lunal audit verify|proof`: the client side of the audit
 * log's transparency (docs/audit.md section 4), through the gateway's
 * /v1/audit/... relays.  The checks themselves are luna/audit_verify.h;
 * this file fetches, keeps the last accepted checkpoint in the state
 * file, and says in words what failed.
 *
 * Must never: replace the kept checkpoint before every check passed;
 * take a tree size or root from anything but a checkpoint signed by the
 * pinned key; follow a symlink when writing the state file.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "luna/audit_entry.h"
#include "luna/audit_verify.h"
#include "luna/bytes.h"
#include "luna/json.h"
#include "sdk_internal.h"

#define WITNESS_BODY_MAX (16u * 1024u)

/* ---- settings ---- */

static luna_err dup_setting(char **dst, const char *env, const json_t *cfg, const char *key,
                            const char *dir, bool is_path)
{
    const char *v = getenv(env);
    char buf[SDK_PATH_MAX];

    if ((v == NULL || v[0] == 0) && cfg != NULL &&
        luna_json_get_string(cfg, key, &v, NULL) == LUNA_OK && is_path && v[0] != '/' &&
        dir != NULL) {
        if ((size_t)snprintf(buf, sizeof buf, "%s/%s", dir, v) >= sizeof buf)
            return LUNA_ERR_CONFIG;
        v = buf;
    }
    if (v == NULL || v[0] == 0)
        return LUNA_OK;
    *dst = strdup(v);
    return *dst != NULL ? LUNA_OK : LUNA_ERR_NOMEM;
}

luna_err sdk_audit_configure(luna_client *c, const json_t *cfg, const char *dir, char *why)
{
    luna_err err = dup_setting(&c->audit_log_key, "LUNAL_AUDIT_LOG_KEY", cfg, "audit_log_key",
                               dir, false);
    if (err == LUNA_OK)
        err = dup_setting(&c->audit_witness_key, "LUNAL_AUDIT_WITNESS_KEY", cfg,
                          "audit_witness_key", dir, false);
    if (err == LUNA_OK)
        err = dup_setting(&c->audit_state_file, "LUNAL_AUDIT_STATE", cfg, "audit_state_file",
                          dir, true);
    if (err != LUNA_OK)
        sdk_why(why, "audit settings: path too long or out of memory");
    return err;
}

void sdk_audit_free(luna_client *c)
{
    free(c->audit_log_key);
    free(c->audit_witness_key);
    free(c->audit_state_file);
    c->audit_log_key = c->audit_witness_key = c->audit_state_file = NULL;
}

/* ---- the report ---- */

void luna_audit_report_clear(luna_audit_report *r)
{
    if (r == NULL)
        return;
    free(r->checkpoint);
    for (size_t i = 0; i < r->n_proved && i < LUNAL_AUDIT_MAX_ENTRIES; i++) {
        free(r->proved[i].entry_json);
        free(r->proved[i].proof_json);
    }
    memset(r, 0, sizeof(*r));
}

static void fail(luna_audit_report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(luna_audit_report *r, const char *fmt, ...)
{
    va_list ap;

    if (!r->verified && r->reason[0] != 0)
        return; /* the first failure is the one reported */
    r->verified = false;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
}

/* ---- transport ---- */

/* A GET through the gateway.  LUNA_OK with *status and the body (owned)
 * whenever an answer came back. */
static luna_err get(luna_client *c, const char *path, long *status, char **body, size_t *len,
                    char *why)
{
    *body = NULL;
    *len = 0;
    return luna_client_call(c, "GET", path, NULL, status, body, len, why);
}

/* Non-2xx: 4xx is the log refusing what a verifier must get (a failed
 * check); anything else is "could not ask" (the caller's error). */
static luna_err status_err(long status, const char *what, char *why)
{
    if (status == 401) {
        sdk_why(why, "%s: the gateway refused the credentials", what);
        return LUNA_ERR_UNAUTHENTICATED;
    }
    if (status == 403) {
        sdk_why(why, "%s: not allowed (an auditor role is needed)", what);
        return LUNA_ERR_PERMISSION;
    }
    sdk_why(why, "%s: HTTP %ld", what, status);
    return status >= 500 ? LUNA_ERR_UNAVAILABLE : LUNA_ERR_FORMAT;
}

/* ---- the state file ---- */

/* Reads the kept checkpoint.  LUNA_ERR_NOT_FOUND when there is none. */
static luna_err state_read(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    size_t got = 0;

    if (fd < 0)
        return errno == ENOENT ? LUNA_ERR_NOT_FOUND : LUNA_ERR_IO;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
        (size_t)st.st_size > cap) {
        close(fd);
        return LUNA_ERR_FORMAT;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n <= 0) {
            close(fd);
            return LUNA_ERR_IO;
        }
        got += (size_t)n;
    }
    close(fd);
    *len = got;
    return LUNA_OK;
}

/* Temporary file in the same folder, fsync, rename over, fsync the
 * folder: after a crash the file holds the old or the new checkpoint. */
static luna_err state_write(const char *path, const uint8_t *data, size_t len)
{
    char tmp[SDK_PATH_MAX], dir[SDK_PATH_MAX];
    const char *slash = strrchr(path, '/');
    int fd, dfd;
    size_t off = 0;
    luna_err err = LUNA_OK;

    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp)
        return LUNA_ERR_CONFIG;
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    (void)unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return LUNA_ERR_IO;
    while (off < len && err == LUNA_OK) {
        ssize_t n = write(fd, data + off, len - off);
        if (n <= 0)
            err = LUNA_ERR_IO;
        else
            off += (size_t)n;
    }
    if (err == LUNA_OK && fsync(fd) != 0)
        err = LUNA_ERR_IO;
    if (close(fd) != 0 && err == LUNA_OK)
        err = LUNA_ERR_IO;
    if (err == LUNA_OK && rename(tmp, path) != 0)
        err = LUNA_ERR_IO;
    if (err != LUNA_OK) {
        (void)unlink(tmp);
        return err;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) != 0)
            err = LUNA_ERR_IO;
        close(dfd);
    }
    return err;
}

/* ---- the checks ---- */

typedef struct vctx {
    luna_client *c;
    luna_audit_report *r;
    luna_note_verifier log_key;
    luna_note_verifier witness_key;
    char *why;
} vctx;

/*
 * Proves that b extends a (a->size <= b->size, both opened with the
 * pinned key).  LUNA_OK with *ok telling the verdict; an error when the
 * log could not be asked.
 */
static luna_err prove_extends(vctx *v, const luna_audit_cp *a, const luna_audit_cp *b, bool *ok)
{
    char path[128], *body = NULL;
    size_t len = 0;
    long status = 0;
    luna_merkle_proof p;
    luna_err err;

    *ok = false;
    luna_merkle_proof_init(&p);
    if (a->size == 0 || a->size >= b->size) {
        *ok = luna_audit_check_consistency(a, b, &p) == LUNA_OK;
        return LUNA_OK;
    }
    snprintf(path, sizeof path, "/v1/audit/proof/consistency?from=%" PRIu64 "&to=%" PRIu64,
             a->size, b->size);
    LUNA_GUARD(get(v->c, path, &status, &body, &len, v->why));
    if (status == 200) {
        err = luna_audit_proof_parse(body, len, &p);
        *ok = err == LUNA_OK && luna_audit_check_consistency(a, b, &p) == LUNA_OK;
        err = LUNA_OK;
    } else if (status == 400 || status == 404 || status == 409) {
        err = LUNA_OK; /* the log will not prove it: *ok stays false */
    } else {
        err = status_err(status, "consistency proof", v->why);
    }
    free(body);
    return err;
}

static luna_err fetch_checkpoint(vctx *v, luna_audit_cp *now)
{
    char *body = NULL;
    size_t len = 0;
    long status = 0;
    luna_err err;

    LUNA_GUARD(get(v->c, "/v1/audit/checkpoint", &status, &body, &len, v->why));
    if (status != 200) {
        err = status_err(status, "checkpoint", v->why);
        free(body);
        return err;
    }
    err = luna_audit_cp_open(body, len, &v->log_key, NULL, now);
    free(body);
    if (err != LUNA_OK)
        fail(v->r, "the log's checkpoint does not verify with the pinned key of %s",
             v->log_key.name);
    return LUNA_OK;
}

/* The witness's cosigned checkpoint: *w->size == 0 when it holds none. */
static luna_err fetch_witness(vctx *v, luna_audit_cp *w)
{
    char *body = NULL;
    size_t len = 0;
    long status = 0;
    json_t *o = NULL;
    json_error_t jerr;
    const json_t *cp, *sz;
    luna_err err = LUNA_OK;

    memset(w, 0, sizeof(*w));
    LUNA_GUARD(get(v->c, "/v1/audit/witness", &status, &body, &len, v->why));
    if (status != 200) {
        err = status_err(status, "witness", v->why);
        goto out;
    }
    if (len > WITNESS_BODY_MAX ||
        (o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL ||
        !json_is_object(o)) {
        fail(v->r, "the witness answered something that is not its state");
        goto out;
    }
    cp = json_object_get(o, "checkpoint");
    sz = json_object_get(o, "size");
    if (json_is_string(cp)) {
        if (luna_audit_cp_open(json_string_value(cp), json_string_length(cp), &v->log_key,
                               &v->witness_key, w) != LUNA_OK)
            fail(v->r, "the witness's checkpoint is not signed by both the log and the "
                       "pinned witness key");
    } else if (!json_is_integer(sz) || json_integer_value(sz) != 0) {
        fail(v->r, "the witness serves no cosigned checkpoint for its size");
    }
out:
    json_decref(o);
    free(body);
    return err;
}

/* Copies the canonical bytes of a JSON entry object; they are re-checked
 * (decode is strict) before any hash is trusted. */
static luna_err entry_bytes(const json_t *e, char **out)
{
    *out = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);
    return *out != NULL ? LUNA_OK : LUNA_ERR_NOMEM;
}

/* Fetches the caller-visible entry at index (entries?cursor=index-1&limit=1). */
static luna_err fetch_entry(vctx *v, uint64_t index, char **leaf)
{
    char path[128], *body = NULL;
    size_t len = 0;
    long status = 0;
    json_t *o = NULL;
    json_error_t jerr;
    const json_t *arr, *it;
    luna_err err;

    *leaf = NULL;
    if (index == 0)
        snprintf(path, sizeof path, "/v1/audit/entries?limit=1");
    else
        snprintf(path, sizeof path, "/v1/audit/entries?cursor=%" PRIu64 "&limit=1", index - 1);
    LUNA_GUARD(get(v->c, path, &status, &body, &len, v->why));
    if (status != 200) {
        err = status_err(status, "entries", v->why);
        free(body);
        return err;
    }
    o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    free(body);
    arr = json_object_get(o, "entries");
    it = json_array_get(arr, 0);
    if (it == NULL || !json_is_integer(json_object_get(it, "index")) ||
        (uint64_t)json_integer_value(json_object_get(it, "index")) != index ||
        !json_is_object(json_object_get(it, "entry"))) {
        json_decref(o);
        sdk_why(v->why, "entry %" PRIu64 " is not visible to this tenant's auditor", index);
        return LUNA_ERR_NOT_FOUND;
    }
    err = entry_bytes(json_object_get(it, "entry"), leaf);
    json_decref(o);
    return err;
}

/* A few indexes the caller can read, most recent first. */
static luna_err default_entries(vctx *v, uint64_t size, uint64_t *out, size_t *n)
{
    char path[128], *body = NULL;
    size_t len = 0, k;
    long status = 0;
    json_t *o;
    json_error_t jerr;
    const json_t *arr;

    *n = 0;
    if (size == 0)
        return LUNA_OK;
    /* The latest 64 first (a tenant may own none of them), else its oldest. */
    for (int pass = 0; pass < 2 && *n == 0; pass++) {
        if (pass == 0 && size > 64)
            snprintf(path, sizeof path, "/v1/audit/entries?cursor=%" PRIu64 "&limit=64",
                     size - 65);
        else if (pass == 0)
            snprintf(path, sizeof path, "/v1/audit/entries?limit=64");
        else
            snprintf(path, sizeof path, "/v1/audit/entries?limit=%d",
                     LUNAL_AUDIT_DEFAULT_ENTRIES);
        LUNA_GUARD(get(v->c, path, &status, &body, &len, v->why));
        if (status != 200) {
            luna_err err = status_err(status, "entries", v->why);
            free(body);
            return err;
        }
        o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
        free(body);
        arr = json_object_get(o, "entries");
        k = json_array_size(arr);
        while (k-- > 0 && *n < LUNAL_AUDIT_DEFAULT_ENTRIES) {
            const json_t *ix = json_object_get(json_array_get(arr, k), "index");
            if (json_is_integer(ix) && json_integer_value(ix) >= 0 &&
                (uint64_t)json_integer_value(ix) < size)
                out[(*n)++] = (uint64_t)json_integer_value(ix);
        }
        json_decref(o);
        if (pass == 0 && size <= 64)
            break;
    }
    return LUNA_OK;
}

static char *proof_to_json(const luna_merkle_proof *p)
{
    json_t *arr = json_array();
    char hex[2 * LUNA_MERKLE_HASH_LEN + 1], *s;

    if (arr == NULL)
        return NULL;
    for (size_t i = 0; i < p->n; i++)
        if (luna_hex_encode(p->hash[i], LUNA_MERKLE_HASH_LEN, hex, sizeof hex) != LUNA_OK ||
            json_array_append_new(arr, json_string(hex)) != 0) {
            json_decref(arr);
            return NULL;
        }
    s = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return s;
}

static luna_err prove_entry(vctx *v, const luna_audit_cp *now, uint64_t index)
{
    char path[128], *leaf = NULL, *body = NULL;
    size_t len = 0;
    long status = 0;
    luna_merkle_proof p;
    uint8_t h[LUNA_MERKLE_HASH_LEN];
    luna_audit_proved *pr = &v->r->proved[v->r->n_proved];
    luna_err err;

    if (index >= now->size) {
        sdk_why(v->why, "entry %" PRIu64 " is past the tree size %" PRIu64, index, now->size);
        return LUNA_ERR_NOT_FOUND;
    }
    LUNA_GUARD(fetch_entry(v, index, &leaf));
    snprintf(path, sizeof path, "/v1/audit/proof/inclusion?index=%" PRIu64 "&size=%" PRIu64,
             index, now->size);
    err = get(v->c, path, &status, &body, &len, v->why);
    if (err != LUNA_OK)
        goto out;
    if (status != 200 && status != 400 && status != 404) {
        err = status_err(status, "inclusion proof", v->why);
        goto out;
    }
    if (status != 200 || luna_audit_proof_parse(body, len, &p) != LUNA_OK ||
        luna_audit_check_inclusion(now, index, (const uint8_t *)leaf, strlen(leaf), &p, h) !=
            LUNA_OK) {
        fail(v->r, "entry %" PRIu64 " is not in the log's tree of size %" PRIu64
                   " (inclusion proof refused)", index, now->size);
        goto out;
    }
    pr->index = index;
    err = luna_hex_encode(h, sizeof h, pr->leaf_hash_hex, sizeof pr->leaf_hash_hex);
    if (err != LUNA_OK)
        goto out;
    pr->proof_json = proof_to_json(&p);
    pr->entry_json = leaf;
    leaf = NULL;
    v->r->n_proved++;
    if (pr->proof_json == NULL)
        err = LUNA_ERR_NOMEM;
out:
    free(leaf);
    free(body);
    return err;
}

/* Every entry exported and the root recomputed (platform auditors). */
static luna_err full_check(vctx *v, const luna_audit_cp *now)
{
    luna_audit_root_acc acc;
    uint8_t root[LUNA_MERKLE_HASH_LEN];
    uint64_t at = 0;

    luna_audit_root_acc_init(&acc);
    while (at < now->size) {
        char path[128], *body = NULL;
        size_t len = 0;
        long status = 0;
        uint64_t got = 0;
        luna_err err;

        snprintf(path, sizeof path, "/v1/audit/export?from=%" PRIu64 "&to=%" PRIu64, at,
                 now->size);
        LUNA_GUARD(get(v->c, path, &status, &body, &len, v->why));
        if (status != 200) {
            err = status_err(status, "export (--full needs auditor + platform-admin)", v->why);
            free(body);
            return err;
        }
        err = luna_audit_root_acc_add_jsonl(&acc, (const uint8_t *)body, len, &got);
        free(body);
        if (err != LUNA_OK) {
            fail(v->r, "exported entry %" PRIu64 " is not a canonical entry", at + got);
            return LUNA_OK;
        }
        if (got == 0 || acc.count > now->size) {
            fail(v->r, "the export does not hold the %" PRIu64 " entries of the checkpoint",
                 now->size);
            return LUNA_OK;
        }
        at += got;
    }
    LUNA_GUARD(luna_audit_root_acc_root(&acc, root));
    if (!luna_ct_equal(root, now->root, sizeof root)) {
        fail(v->r, "the exported entries do not reproduce the root of size %" PRIu64,
             now->size);
        return LUNA_OK;
    }
    v->r->full_checked = true;
    return LUNA_OK;
}

static luna_err parse_key(const char *text, luna_note_verifier *out, const char *what, char *why)
{
    if (text == NULL) {
        sdk_why(why, "no %s key (option, LUNAL_AUDIT_%s_KEY or config audit_%s_key)", what,
                strcmp(what, "log") == 0 ? "LOG" : "WITNESS", what);
        return LUNA_ERR_CONFIG;
    }
    if (luna_note_verifier_parse(text, strlen(text), out) != LUNA_OK) {
        sdk_why(why, "the %s key is not a vkey (name+id+key)", what);
        return LUNA_ERR_CONFIG;
    }
    return LUNA_OK;
}

/*
 * The witness's answer crosses the gateway too: a cosigned checkpoint is
 * remembered beside the kept one (<state>.witness), so an answer that
 * later says "nothing cosigned" or replays an older cosignature is a
 * failure, not a pass.  *kept_w stays zero-sized when there is none.
 */
static luna_err witness_state_read(vctx *v, const char *state, uint8_t *buf,
                                   luna_audit_cp *kept_w)
{
    char path[SDK_PATH_MAX];
    size_t len = 0;
    if ((size_t)snprintf(path, sizeof path, "%s.witness", state) >= sizeof path) {
        sdk_why(v->why, "the state file path is too long");
        return LUNA_ERR_CONFIG;
    }
    luna_err err = state_read(path, buf, LUNA_AUDIT_CP_MAX, &len);
    if (err == LUNA_ERR_NOT_FOUND)
        return LUNA_OK;
    if (err == LUNA_ERR_IO) {
        sdk_why(v->why, "cannot read the state file %s", path);
        return err;
    }
    if (err != LUNA_OK ||
        luna_audit_cp_open(buf, len, &v->log_key, &v->witness_key, kept_w) != LUNA_OK)
        fail(v->r, "the kept witness checkpoint in %s does not verify with the pinned keys",
             path);
    return LUNA_OK;
}

static luna_err witness_state_write(const char *state, const luna_audit_cp *w)
{
    char path[SDK_PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s.witness", state) >= sizeof path)
        return LUNA_ERR_CONFIG;
    return state_write(path, w->note, w->len);
}

static luna_err run(vctx *v, const luna_audit_verify_opts *o, const char *state)
{
    luna_audit_report *r = v->r;
    luna_audit_cp *kept = NULL, *now = NULL, *w = NULL, *kept_w = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    uint64_t idx[LUNAL_AUDIT_MAX_ENTRIES];
    size_t n_idx = 0;
    bool ok = false;
    luna_err err = LUNA_OK;

    kept = calloc(1, sizeof(*kept));
    now = calloc(1, sizeof(*now));
    w = calloc(1, sizeof(*w));
    kept_w = calloc(1, sizeof(*kept_w));
    buf = malloc(LUNA_AUDIT_CP_MAX);
    LUNA_TRY_ENSURE(kept != NULL && now != NULL && w != NULL && kept_w != NULL && buf != NULL,
                    LUNA_ERR_NOMEM, out);
    if (state != NULL) {
        err = state_read(state, buf, LUNA_AUDIT_CP_MAX, &len);
        if (err == LUNA_ERR_NOT_FOUND) {
            r->first_use = true;
            err = LUNA_OK;
        } else if (err == LUNA_ERR_IO) {
            sdk_why(v->why, "cannot read the state file %s", state);
            goto out;
        } else if (err != LUNA_OK ||
                   luna_audit_cp_open(buf, len, &v->log_key, NULL, kept) != LUNA_OK) {
            err = LUNA_OK;
            fail(r, "the kept checkpoint in %s does not verify with the pinned log key", state);
            goto out;
        }
    } else {
        r->first_use = true;
    }
    r->kept_size = kept->size;

    /* The witness first: a log that answers later can only be ahead. */
    if (!o->no_witness) {
        if (state != NULL) {
            LUNA_TRY(witness_state_read(v, state, buf, kept_w), out);
            if (r->reason[0] != 0)
                goto out;
        }
        LUNA_TRY(fetch_witness(v, w), out);
        if (r->reason[0] != 0)
            goto out;
        r->witness_size = w->size;
        if (w->size < kept_w->size) {
            fail(r, "the witness answer (size %" PRIu64 ") is older than the cosigned size %" PRIu64
                    " seen before: a witness answer was suppressed or replayed", w->size,
                 kept_w->size);
            goto out;
        }
    }
    LUNA_TRY(fetch_checkpoint(v, now), out);
    if (r->reason[0] != 0)
        goto out;
    r->size = now->size;
    LUNA_TRY(luna_hex_encode(now->root, sizeof now->root, r->root_hex, sizeof r->root_hex), out);
    snprintf(r->origin, sizeof r->origin, "%s", v->log_key.name);
    r->checkpoint = malloc(now->len + 1);
    LUNA_TRY_ENSURE(r->checkpoint != NULL, LUNA_ERR_NOMEM, out);
    memcpy(r->checkpoint, now->note, now->len);
    r->checkpoint[now->len] = 0;

    if (kept->size > 0) {
        if (now->size < kept->size) {
            fail(r, "the log rolled back from size %" PRIu64 " to %" PRIu64, kept->size,
                 now->size);
            goto out;
        }
        LUNA_TRY(prove_extends(v, kept, now, &ok), out);
        if (!ok) {
            if (kept->size == now->size)
                fail(r, "the log rewrote history at size %" PRIu64 " (another root)",
                     now->size);
            else
                fail(r, "the log rewrote history between size %" PRIu64 " and %" PRIu64,
                     kept->size, now->size);
            goto out;
        }
    }
    if (!o->no_witness && w->size > 0) {
        if (w->size > now->size) {
            fail(r, "the witness cosigned size %" PRIu64 " but the log shows size %" PRIu64
                    " (rollback or split view)", w->size, now->size);
            goto out;
        }
        LUNA_TRY(prove_extends(v, w, now, &ok), out);
        if (!ok) {
            fail(r, "witness and log disagree at size %" PRIu64, w->size);
            goto out;
        }
        if (kept_w->size > 0) {
            LUNA_TRY(prove_extends(v, kept_w, now, &ok), out);
            if (!ok) {
                fail(r, "the log disagrees with the witness checkpoint of size %" PRIu64
                        " seen before", kept_w->size);
                goto out;
            }
        }
        r->witness_checked = true;
    }
    /* A witness that has cosigned nothing yet leaves witness_checked false. */

    if (o->n_entries > 0) {
        memcpy(idx, o->entries, o->n_entries * sizeof(idx[0]));
        n_idx = o->n_entries;
    } else {
        LUNA_TRY(default_entries(v, now->size, idx, &n_idx), out);
    }
    for (size_t i = 0; i < n_idx && r->reason[0] == 0; i++)
        LUNA_TRY(prove_entry(v, now, idx[i]), out);
    if (r->reason[0] != 0)
        goto out;
    if (o->full) {
        LUNA_TRY(full_check(v, now), out);
        if (r->reason[0] != 0)
            goto out;
    }
    r->verified = true;
    /* Only a checkpoint that passed everything is kept; never a smaller one. */
    if (state != NULL && now->size >= kept->size) {
        err = state_write(state, now->note, now->len);
        if (err != LUNA_OK) {
            sdk_why(v->why, "verified, but cannot write the state file %s", state);
            goto out;
        }
        r->state_saved = true;
    }
    if (state != NULL && !o->no_witness && w->size > 0 && w->size >= kept_w->size) {
        err = witness_state_write(state, w);
        if (err != LUNA_OK) {
            sdk_why(v->why, "verified, but cannot write the witness state beside %s", state);
            goto out;
        }
    }
out:
    free(kept);
    free(now);
    free(w);
    free(kept_w);
    free(buf);
    return err;
}

luna_err luna_audit_verify(luna_client *c, const luna_audit_verify_opts *o, luna_audit_report *r,
                           char *why)
{
    vctx v;
    const char *lk, *wk, *state;
    luna_err err;

    if (why != NULL)
        why[0] = 0;
    if (c == NULL || o == NULL || r == NULL) {
        sdk_why(why, "client, options and report are required");
        return LUNA_ERR_INVALID_ARG;
    }
    memset(r, 0, sizeof(*r));
    if (o->n_entries > LUNAL_AUDIT_MAX_ENTRIES || (o->n_entries > 0 && o->entries == NULL)) {
        sdk_why(why, "at most %d entries", LUNAL_AUDIT_MAX_ENTRIES);
        return LUNA_ERR_INVALID_ARG;
    }
    memset(&v, 0, sizeof v);
    v.c = c;
    v.r = r;
    v.why = why;
    lk = o->log_key != NULL ? o->log_key : c->audit_log_key;
    wk = o->witness_key != NULL ? o->witness_key : c->audit_witness_key;
    state = o->no_state ? NULL : (o->state_file != NULL ? o->state_file : c->audit_state_file);
    LUNA_GUARD(parse_key(lk, &v.log_key, "log", why));
    if (!o->no_witness)
        LUNA_GUARD(parse_key(wk, &v.witness_key, "witness", why));
    if (!o->no_state && state == NULL) {
        sdk_why(why, "no audit state file (LUNAL_AUDIT_STATE or config audit_state_file)");
        return LUNA_ERR_CONFIG;
    }
    err = run(&v, o, state);
    if (err != LUNA_OK) {
        r->verified = false;
        if (why != NULL && why[0] == 0)
            sdk_why(why, "%s", luna_strerror(err));
    }
    return err;
}
