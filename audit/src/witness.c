/*
 * witness.c - luna-audit-witness: a second, independent checkpoint
 * source for the audit log (docs/audit.md section 6).
 *
 *   luna-audit-witness --config FILE
 *   luna-audit-witness keygen --name NAME --out FILE
 *
 * It keeps the last checkpoint it cosigned (durably, in its own store) and
 * cosigns a new one only when it is signed by the log's key, has the log's
 * origin, and is proven consistent with the kept one; it refuses a second
 * root for a size it has cosigned (split view) and any smaller size
 * (rollback).  Auditors who require the witness's cosignature therefore
 * all see one history.
 *
 * Owns: the witness state and its compare-and-set update.
 * Must never: cosign before the new state is committed, cosign two roots
 * for one size, or accept a proof it did not verify itself.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_util.h"
#include "luna/audit_entry.h"
#include "luna/bytes.h"
#include "luna/config.h"
#include "luna/http.h"
#include "luna/log.h"
#include "luna/merkle.h"
#include "luna/note.h"
#include "luna/secret.h"
#include "luna/store.h"

#define COMPONENT "audit-witness"
#define HLEN LUNA_MERKLE_HASH_LEN
#define MAX_PATTERNS 32

typedef struct witness {
    luna_store *db;
    luna_note_signer *signer;
    luna_note_verifier log_key;
    char origin[LUNA_NOTE_MAX_NAME_LEN + 1];
    bool have_state;
    uint64_t size;
    uint8_t root[HLEN];
    /* The cosigned checkpoint of (size, root), served by /v1/witness/state
     * so that auditors get a second signed source; NULL before the first. */
    uint8_t *note;
    size_t note_len;
} witness;

static const luna_store_migration migrations[] = {
    {1,
     "CREATE TABLE witness_state (origin TEXT PRIMARY KEY, size INTEGER NOT NULL,"
     " root BLOB NOT NULL);",
     "CREATE TABLE witness_state (origin TEXT PRIMARY KEY, size BIGINT NOT NULL,"
     " root BYTEA NOT NULL);"},
    {2, "ALTER TABLE witness_state ADD COLUMN note BLOB;",
     "ALTER TABLE witness_state ADD COLUMN note BYTEA;"},
};

/* ---- config ---- */

static const luna_json_field pattern_item = {.name = "item", .type = LUNA_JSON_T_STRING,
                                             .min_len = 1, .max_len = 200,
                                             .pattern = LUNA_JSON_PAT_PRINTABLE};
static const luna_json_field witness_fields[] = {
    {.name = "name", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = LUNA_NOTE_MAX_NAME_LEN, .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "key_file", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = LUNA_CONFIG_PATH_MAX, .pattern = LUNA_JSON_PAT_TEXT},
    {.name = "log_origin", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = LUNA_NOTE_MAX_NAME_LEN, .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "log_vkey", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = LUNA_NOTE_VKEY_MAX_LEN, .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "submitters", .type = LUNA_JSON_T_ARRAY, .min_len = 1, .max_len = MAX_PATTERNS,
     .items = &pattern_item},
};
static const luna_json_schema witness_section = {
    witness_fields, sizeof(witness_fields) / sizeof(witness_fields[0]), NULL};
static const luna_json_field top_fields[] = {
    {.name = "witness", .type = LUNA_JSON_T_OBJECT, .flags = LUNA_JSON_REQUIRED,
     .object = &witness_section},
};
static const luna_json_schema witness_schema = {top_fields, 1, &luna_config_common_schema};
static const char *const file_keys[] = {"witness.key_file", NULL};

/* ---- request ---- */

static const luna_json_field proof_item = {.name = "item", .type = LUNA_JSON_T_HEX,
                                           .min_len = HLEN, .max_len = HLEN};
static const luna_json_field req_fields[] = {
    {.name = "old_size", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 0,
     .max = INT64_MAX},
    {.name = "proof", .type = LUNA_JSON_T_ARRAY, .flags = LUNA_JSON_REQUIRED,
     .max_len = LUNA_MERKLE_MAX_PROOF, .items = &proof_item},
    {.name = "checkpoint", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = LUNA_NOTE_MAX_LEN, .pattern = LUNA_JSON_PAT_ANY},
};
static const luna_json_schema req_schema = {req_fields, 3, NULL};

static luna_err load_state(witness *w)
{
    luna_store_param p[] = {luna_store_p_text(w->origin)};
    luna_store_rows *rows = NULL;
    luna_err err;
    LUNA_TRY(luna_store_query(w->db,
                              "SELECT size, root, note FROM witness_state WHERE origin = ?1", p,
                              1, &rows),
             out);
    bool has = false;
    LUNA_TRY(luna_store_rows_next(rows, &has), out);
    w->have_state = has;
    if (has) {
        int64_t s;
        const uint8_t *b;
        size_t n;
        LUNA_TRY(luna_store_col_int64(rows, 0, &s), out);
        LUNA_TRY(luna_store_col_blob(rows, 1, &b, &n), out);
        LUNA_TRY_ENSURE(s >= 0 && n == HLEN, LUNA_ERR_VERIFY, out);
        w->size = (uint64_t)s;
        memcpy(w->root, b, HLEN);
        /* A row written before migration 2 has no note (NULL column). */
        if (luna_store_col_blob(rows, 2, &b, &n) == LUNA_OK && n > 0 && n <= LUNA_NOTE_MAX_LEN) {
            w->note = malloc(n);
            LUNA_TRY_ENSURE(w->note != NULL, LUNA_ERR_NOMEM, out);
            memcpy(w->note, b, n);
            w->note_len = n;
        }
    }
out:
    luna_store_rows_free(rows);
    return err;
}

typedef struct save_ctx {
    witness *w;
    uint64_t size;
    const uint8_t *root;
    const uint8_t *note; /* the cosigned checkpoint */
    size_t note_len;
} save_ctx;

static luna_err save_tx(luna_store *db, void *vctx)
{
    save_ctx *c = vctx;
    uint64_t changed = 0;
    if (c->size > (uint64_t)INT64_MAX)
        return LUNA_ERR_INVALID_ARG; /* never stored as a negative number */
    if (!c->w->have_state) {
        luna_store_param p[] = {luna_store_p_text(c->w->origin),
                                luna_store_p_int64((int64_t)c->size),
                                luna_store_p_blob(c->root, HLEN),
                                luna_store_p_blob(c->note, c->note_len)};
        return luna_store_exec(db, "INSERT INTO witness_state (origin, size, root, note) VALUES "
                                   "(?1, ?2, ?3, ?4)",
                               p, 4, NULL);
    }
    luna_store_param p[] = {luna_store_p_int64((int64_t)c->size), luna_store_p_blob(c->root, HLEN),
                            luna_store_p_text(c->w->origin),
                            luna_store_p_int64((int64_t)c->w->size),
                            luna_store_p_blob(c->note, c->note_len)};
    LUNA_GUARD(luna_store_exec(db, "UPDATE witness_state SET size = ?1, root = ?2, note = ?5 "
                                   "WHERE origin = ?3 AND size = ?4",
                               p, 5, &changed));
    return changed == 1 ? LUNA_OK : LUNA_ERR_CONFLICT;
}

static void refuse(luna_http_request *req, witness *w, int status, const char *code,
                   const char *msg)
{
    json_t *o = json_pack("{s:{s:s,s:s},s:I}", "error", "code", code, "message", msg, "size",
                          (json_int_t)(w->have_state ? w->size : 0));
    luna_http_reply_json(req, status, o);
    json_decref(o);
}

static void handle_add(luna_http_request *req, void *arg)
{
    witness *w = arg;
    const uint8_t *body;
    size_t len;
    if (luna_http_request_body(req, &body, &len) != LUNA_OK) {
        luna_http_reply_err(req, LUNA_ERR_TOO_LARGE);
        return;
    }
    luna_json_limits lim = {.max_bytes = LUNA_NOTE_MAX_LEN * 2, .max_depth = 3,
                            .max_string = LUNA_NOTE_MAX_LEN};
    json_t *root = NULL;
    luna_json_error jerr;
    if (luna_json_parse((const char *)body, len, &req_schema, &lim, &root, &jerr) != LUNA_OK) {
        luna_http_reply_error(req, 400, "invalid_request", "bad add-checkpoint body");
        return;
    }
    int64_t old_size = 0;
    const char *note;
    size_t note_len;
    const json_t *proof_arr;
    size_t n_proof;
    luna_merkle_proof proof;
    luna_note nt;
    luna_note_checkpoint cp;
    if (luna_json_get_int(root, "old_size", &old_size) != LUNA_OK ||
        luna_json_get_string(root, "checkpoint", &note, &note_len) != LUNA_OK ||
        luna_json_get_array(root, "proof", &proof_arr, &n_proof) != LUNA_OK ||
        audit_proof_from_json(proof_arr, &proof) != LUNA_OK) {
        json_decref(root);
        luna_http_reply_error(req, 400, "invalid_request", "bad add-checkpoint body");
        return;
    }
    luna_err err = luna_note_checkpoint_open((const uint8_t *)note, note_len, w->origin,
                                             strlen(w->origin), &w->log_key, 1, &nt, &cp);
    if (err != LUNA_OK) {
        json_decref(root);
        luna_http_reply_error(req, 403, "verify_failed",
                              "not a checkpoint of this log signed by its key");
        return;
    }
    /* The state is stored as a signed 64-bit integer: a larger size would
     * come back negative and the witness could never start again (a
     * compromised log key must not be able to brick it).  No real tree
     * gets near 2^63 leaves. */
    if (cp.size > (uint64_t)INT64_MAX) {
        json_decref(root);
        LUNA_LOGF(LUNA_LOG_WARN, COMPONENT, "refused a checkpoint size above 2^63-1",
                  LUNA_LOG_UINT("size", cp.size));
        refuse(req, w, 400, "invalid_request", "checkpoint size out of range");
        return;
    }
    uint64_t have = w->have_state ? w->size : 0;
    if ((uint64_t)old_size != have) {
        json_decref(root);
        refuse(req, w, 409, "old_size_mismatch", "old_size is not the witnessed size");
        return;
    }
    if (w->have_state && cp.size < w->size) {
        json_decref(root);
        LUNA_LOGF(LUNA_LOG_WARN, COMPONENT, "refused a rollback", LUNA_LOG_UINT("size", cp.size),
                  LUNA_LOG_UINT("witnessed", w->size));
        refuse(req, w, 409, "rollback", "smaller than the witnessed tree");
        return;
    }
    if (w->have_state && cp.size == w->size) {
        if (!luna_ct_equal(cp.root, w->root, HLEN)) {
            json_decref(root);
            LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "SPLIT VIEW: two roots for one tree size",
                      LUNA_LOG_UINT("size", cp.size));
            refuse(req, w, 409, "split_view", "another root was witnessed for this size");
            return;
        }
        if (proof.n != 0) {
            json_decref(root);
            refuse(req, w, 400, "invalid_request", "equal sizes take an empty proof");
            return;
        }
    } else if (w->have_state && w->size > 0) {
        err = luna_merkle_verify_consistency(w->size, cp.size, w->root, HLEN, cp.root, HLEN,
                                             &proof);
        if (err != LUNA_OK) {
            json_decref(root);
            LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT,
                      "refused a checkpoint not consistent with the witnessed one",
                      LUNA_LOG_UINT("size", cp.size), LUNA_LOG_UINT("witnessed", w->size),
                      LUNA_LOG_ERR("error", err));
            refuse(req, w, 409, "inconsistent", "the consistency proof does not verify");
            return;
        }
    } else if (proof.n != 0) {
        /* Nothing witnessed yet (or an empty tree): nothing to prove. */
        json_decref(root);
        refuse(req, w, 400, "invalid_request", "first checkpoint takes an empty proof");
        return;
    }
    /* The cosignature: the witness's own signature line over the same
     * text, appended to the log's signed note.  It is made before the
     * commit so that it is stored with the state, but released only
     * after the commit. */
    uint8_t *out = malloc(LUNA_NOTE_MAX_LEN);
    size_t out_len = 0;
    err = out != NULL ? luna_note_sign(nt.text, nt.text_len, &w->signer, 1, out,
                                       LUNA_NOTE_MAX_LEN, &out_len)
                      : LUNA_ERR_NOMEM;
    size_t sig_off = nt.text_len + 1;
    if (err == LUNA_OK && out_len < sig_off)
        err = LUNA_ERR_INTERNAL;
    /* The stored and served note is rebuilt from what was verified: the
     * text, the log's signature line(s) that checked, and ours.  Other
     * lines a submitter added (say, a bogus one named like this witness,
     * which would make every auditor's check of the note fail) are
     * dropped. */
    size_t full_len = 0;
    uint8_t *full = err == LUNA_OK ? malloc(LUNA_NOTE_MAX_LEN) : NULL;
    if (err == LUNA_OK && full == NULL)
        err = LUNA_ERR_NOMEM;
    if (err == LUNA_OK) {
        memcpy(full, nt.text, nt.text_len);
        full[nt.text_len] = '\n';
        full_len = sig_off;
    }
    for (size_t i = 0; err == LUNA_OK && i < nt.n_sigs; i++) {
        const luna_note_sig *sg = &nt.sigs[i];
        size_t line = 4 + sg->name_len + 1 + sg->b64_len + 1;
        if (!sg->verified)
            continue;
        if (full_len + line > LUNA_NOTE_MAX_LEN) {
            err = LUNA_ERR_TOO_LARGE;
            break;
        }
        memcpy(full + full_len, "\xE2\x80\x94 ", 4);
        memcpy(full + full_len + 4, sg->name, sg->name_len);
        full[full_len + 4 + sg->name_len] = ' ';
        memcpy(full + full_len + 5 + sg->name_len, sg->b64, sg->b64_len);
        full[full_len + line - 1] = '\n';
        full_len += line;
    }
    if (err == LUNA_OK && full_len + (out_len - sig_off) > LUNA_NOTE_MAX_LEN)
        err = LUNA_ERR_TOO_LARGE;
    if (err == LUNA_OK) {
        memcpy(full + full_len, out + sig_off, out_len - sig_off);
        full_len += out_len - sig_off;
    }
    free(out);
    if (err != LUNA_OK) {
        free(full);
        json_decref(root);
        luna_http_reply_err(req, LUNA_ERR_INTERNAL);
        return;
    }
    /* Commit the new state first; release the cosignature only once kept. */
    save_ctx sc = {w, cp.size, cp.root, full, full_len};
    err = luna_store_tx(w->db, save_tx, &sc);
    if (err != LUNA_OK) {
        free(full);
        json_decref(root);
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "cannot save state", LUNA_LOG_ERR("error", err));
        luna_http_reply_err(req, LUNA_ERR_UNAVAILABLE);
        return;
    }
    w->have_state = true;
    w->size = cp.size;
    memcpy(w->root, cp.root, HLEN);
    LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "cosigned", LUNA_LOG_UINT("size", cp.size));
    luna_http_reply(req, 200, "text/plain; charset=utf-8", full, full_len);
    free(w->note);
    w->note = full;
    w->note_len = full_len;
    json_decref(root);
}

static void handle_state(luna_http_request *req, void *arg)
{
    witness *w = arg;
    char hex[2 * HLEN + 1] = "";
    if (w->have_state && luna_hex_encode(w->root, HLEN, hex, sizeof(hex)) != LUNA_OK) {
        luna_http_reply_err(req, LUNA_ERR_INTERNAL);
        return;
    }
    json_t *o = json_pack("{s:s,s:I,s:s}", "origin", w->origin, "size",
                          (json_int_t)(w->have_state ? w->size : 0), "root", hex);
    /* The cosigned checkpoint: auditors check both signatures themselves
     * rather than trusting the relay that carried this answer. */
    if (o != NULL && w->note != NULL)
        json_object_set_new(o, "checkpoint", json_stringn((const char *)w->note, w->note_len));
    luna_http_reply_json(req, 200, o);
    json_decref(o);
}

static int usage(void)
{
    fprintf(stderr, "usage: luna-audit-witness --config FILE\n"
                    "       luna-audit-witness keygen --name NAME --out FILE\n");
    return 2;
}

static int run(const char *path)
{
    int rc = 1;
    witness w;
    memset(&w, 0, sizeof(w));
    struct event_base *base = NULL;
    luna_http_server *srv = NULL;
    luna_config *cfg = NULL;
    luna_config_error cerr;
    luna_config_spec spec = {.schema = &witness_schema, .file_keys = file_keys,
                             .storage_required = true, .env_prefix = "LUNA_WITNESS_"};
    if (luna_config_load(path, &spec, &cfg, &cerr) != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "bad config", LUNA_LOG_STR("detail", cerr.message));
        return 1;
    }
    const luna_config_common *c = luna_config_common_get(cfg);
    luna_log_set_level(c->log_level);
    const json_t *root = luna_config_json(cfg);
    const char *s, *name;
    size_t n;
    luna_err err = luna_json_get_string(root, "witness.log_origin", &s, &n);
    if (err == LUNA_OK)
        err = luna_audit_set(w.origin, sizeof(w.origin), s);
    if (err == LUNA_OK)
        err = luna_json_get_string(root, "witness.log_vkey", &s, &n);
    if (err == LUNA_OK)
        err = luna_note_verifier_parse(s, n, &w.log_key);
    if (err == LUNA_OK)
        err = luna_json_get_string(root, "witness.name", &name, &n);
    if (err == LUNA_OK)
        err = luna_json_get_string(root, "witness.key_file", &s, &n);
    if (err == LUNA_OK)
        err = audit_read_signer(s, name, &w.signer);
    if (err == LUNA_OK)
        err = luna_store_open(c->storage_url, NULL, &w.db);
    if (err == LUNA_OK)
        err = luna_store_migrate(w.db, migrations, sizeof(migrations) / sizeof(migrations[0]),
                                 NULL);
    if (err == LUNA_OK)
        err = load_state(&w);
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "cannot start", LUNA_LOG_ERR("error", err));
        goto out;
    }
    base = event_base_new();
    if (base == NULL)
        goto out;
    luna_http_server_opts o = {.component = COMPONENT,
                               .bind_addr = c->listen_address,
                               .port = c->listen_port,
                               .tls = {.ca_file = c->tls_ca,
                                       .cert_file = c->tls_cert,
                                       .key_file = c->tls_key},
                               .handle_signals = true};
    err = luna_http_server_new(base, &o, &srv);
    const char *subs[MAX_PATTERNS];
    size_t ns = 0;
    const json_t *arr;
    if (luna_json_get_array(root, "witness.submitters", &arr, &n) == LUNA_OK) {
        for (size_t i = 0; i < n && i < MAX_PATTERNS; i++)
            subs[ns++] = json_string_value(json_array_get(arr, i));
    } else {
        subs[ns++] = "lunal://svc/*";
    }
    static const char *const any[] = {LUNA_HTTP_ALLOW_ANY_PLATFORM};
    const luna_http_route routes[] = {
        {LUNA_HTTP_POST, "/v1/witness/add-checkpoint", subs, ns, "application/json", handle_add,
         &w},
        {LUNA_HTTP_GET, "/v1/witness/state", any, 1, NULL, handle_state, &w},
    };
    for (size_t i = 0; err == LUNA_OK && i < 2; i++)
        err = luna_http_server_add_route(srv, &routes[i]);
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "cannot start the server",
                  LUNA_LOG_ERR("error", err));
        goto out;
    }
    LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "listening",
              LUNA_LOG_UINT("port", luna_http_server_port(srv)),
              LUNA_LOG_UINT("witnessed_size", w.have_state ? w.size : 0));
    printf("PORT %u\n", (unsigned)luna_http_server_port(srv));
    fflush(stdout);
    rc = event_base_dispatch(base) < 0 ? 1 : 0;
out:
    luna_http_server_free(srv);
    if (base != NULL)
        event_base_free(base);
    luna_store_close(w.db);
    free(w.note);
    luna_note_signer_free(w.signer);
    luna_config_free(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    if (luna_process_harden() != LUNA_OK)
        return 1;
    if (argc == 6 && strcmp(argv[1], "keygen") == 0 && strcmp(argv[2], "--name") == 0 &&
        strcmp(argv[4], "--out") == 0) {
        char vkey[LUNA_NOTE_VKEY_MAX_LEN];
        luna_err err = audit_keygen(argv[3], argv[5], vkey, sizeof(vkey));
        if (err != LUNA_OK) {
            fprintf(stderr, "luna-audit-witness keygen: %s\n", luna_strerror(err));
            return 1;
        }
        printf("%s\n", vkey);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "--config") == 0)
        return run(argv[2]);
    return usage();
}
