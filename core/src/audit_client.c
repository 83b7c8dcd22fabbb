/*
 * audit_client.c - the components' side of the audit log
 * (luna/audit_client.h).
 *
 * Owns: building the append request and judging the log's answer.
 * Must never: report success for anything but a 201 whose receipt matches
 * the entry sent, or carry anything but the entry's fields to the log.
 */
#include "luna/audit_client.h"

#include <stdlib.h>
#include <string.h>

#include "luna/bytes.h"
#include "luna/merkle.h"

#define RECEIPT_MAX (2u * LUNA_AUDIT_ENTRY_MAX + 512u)

struct luna_audit_client {
    luna_http_client *http;
};

typedef struct pending {
    luna_audit_entry sent;
    luna_audit_done_fn cb;
    void *arg;
} pending;

static const luna_json_field receipt_fields[] = {
    {.name = "index", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 0,
     .max = INT64_MAX},
    {.name = "leaf_hash", .type = LUNA_JSON_T_HEX, .flags = LUNA_JSON_REQUIRED,
     .min_len = LUNA_MERKLE_HASH_LEN, .max_len = LUNA_MERKLE_HASH_LEN},
    {.name = "entry", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = LUNA_AUDIT_ENTRY_MAX, .pattern = LUNA_JSON_PAT_PRINTABLE},
};
static const luna_json_schema receipt_schema = {receipt_fields, 3, NULL};

luna_err luna_audit_check_receipt(const luna_audit_entry *sent, const uint8_t *body, size_t len,
                                  uint64_t *index)
{
    if (sent == NULL || index == NULL || (body == NULL && len > 0))
        return LUNA_ERR_INVALID_ARG;
    luna_json_limits lim = {.max_bytes = RECEIPT_MAX, .max_depth = 1,
                            .max_string = LUNA_AUDIT_ENTRY_MAX};
    json_t *root = NULL;
    if (luna_json_parse((const char *)body, len, &receipt_schema, &lim, &root, NULL) != LUNA_OK)
        return LUNA_ERR_VERIFY;
    luna_err err;
    int64_t idx = 0;
    const char *entry;
    size_t entry_len;
    uint8_t claimed[LUNA_MERKLE_HASH_LEN], h[LUNA_MERKLE_HASH_LEN];
    size_t claimed_len = 0;
    luna_audit_entry got;
    LUNA_TRY(luna_json_get_int(root, "index", &idx), out);
    LUNA_TRY(luna_json_get_string(root, "entry", &entry, &entry_len), out);
    LUNA_TRY(luna_json_get_hex(root, "leaf_hash", claimed, sizeof(claimed), &claimed_len), out);
    LUNA_TRY(luna_audit_entry_decode((const uint8_t *)entry, entry_len, &got), out);
    LUNA_TRY_ENSURE(luna_audit_entry_same_request(sent, &got), LUNA_ERR_VERIFY, out);
    LUNA_TRY(luna_merkle_leaf_hash(entry, entry_len, h), out);
    LUNA_TRY_ENSURE(claimed_len == sizeof(h) && luna_ct_equal(claimed, h, sizeof(h)),
                    LUNA_ERR_VERIFY, out);
    *index = (uint64_t)idx;
out:
    json_decref(root);
    return err == LUNA_OK ? LUNA_OK : LUNA_ERR_VERIFY;
}

static luna_err status_err(int status)
{
    switch (status) {
    case 400:
    case 413:
        return LUNA_ERR_FORMAT;
    case 403:
        return LUNA_ERR_PERMISSION;
    default:
        return LUNA_ERR_UNAVAILABLE;
    }
}

static void on_response(const luna_http_response *resp, void *arg)
{
    pending *p = arg;
    uint64_t index = 0;
    luna_err err = resp->err;
    if (err == LUNA_OK)
        err = resp->status == 201
                  ? luna_audit_check_receipt(&p->sent, resp->body, resp->body_len, &index)
                  : status_err(resp->status);
    p->cb(err, err == LUNA_OK ? index : 0, p->arg);
    free(p);
}

/* The request body, checked as the log will check it. */
static luna_err build_body(const luna_audit_entry *e, char **out, size_t *len)
{
    luna_audit_entry probe = *e;
    memcpy(probe.component, "x", 2);
    probe.time_ms = 0;
    LUNA_GUARD(luna_audit_entry_check(&probe));
    json_t *o = NULL;
    LUNA_GUARD(luna_audit_entry_to_request(e, &o));
    *out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (*out == NULL)
        return LUNA_ERR_NOMEM;
    *len = strlen(*out);
    return LUNA_OK;
}

luna_err luna_audit_client_new(struct event_base *base, const luna_http_client_opts *opts,
                               luna_audit_client **out)
{
    if (base == NULL || opts == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    luna_audit_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return LUNA_ERR_NOMEM;
    luna_err err = luna_http_client_new(base, opts, &c->http);
    if (err != LUNA_OK) {
        free(c);
        return err;
    }
    *out = c;
    return LUNA_OK;
}

void luna_audit_client_free(luna_audit_client *c)
{
    if (c == NULL)
        return;
    luna_http_client_free(c->http);
    free(c);
}

luna_err luna_audit_client_append(luna_audit_client *c, const luna_audit_entry *e,
                                  luna_audit_done_fn cb, void *arg)
{
    if (c == NULL || e == NULL || cb == NULL)
        return LUNA_ERR_INVALID_ARG;
    char *body = NULL;
    size_t len = 0;
    LUNA_GUARD(build_body(e, &body, &len));
    pending *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        free(body);
        return LUNA_ERR_NOMEM;
    }
    p->sent = *e;
    p->cb = cb;
    p->arg = arg;
    luna_err err = luna_http_client_request(c->http, "POST", "/v1/audit/entries",
                                            "application/json", body, len, e->request_id,
                                            on_response, p);
    free(body);
    if (err != LUNA_OK)
        free(p);
    return err;
}

luna_err luna_audit_append_sync(const luna_http_client_opts *opts, const luna_audit_entry *e,
                                uint64_t *index)
{
    if (opts == NULL || e == NULL || index == NULL)
        return LUNA_ERR_INVALID_ARG;
    char *body = NULL;
    size_t len = 0;
    LUNA_GUARD(build_body(e, &body, &len));
    luna_http_result r;
    memset(&r, 0, sizeof(r));
    luna_err err = luna_http_fetch(opts, "POST", "/v1/audit/entries", "application/json", body,
                                   len, &r);
    free(body);
    if (err == LUNA_OK)
        err = r.status == 201 ? luna_audit_check_receipt(e, r.body, r.body_len, index)
                              : status_err(r.status);
    luna_http_result_free(&r);
    return err;
}
