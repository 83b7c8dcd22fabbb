/*
 * gw_limits.c - per-tenant and per-key token buckets, and the idempotency
 * cache of answered job submissions.
 *
 * Both are fixed-size tables allocated once (named caps), so no caller can
 * make the gateway grow.  Must never: let a flood of new names reset a
 * busy caller's bucket, replay an answer for a body other than the one it
 * answered, or keep anything but sealed answers (the cache stores result
 * envelopes, which only the client can open).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "luna/bytes.h"

/* ---- token buckets ---- */

luna_err gw_rl_init(gw_ratelimit *rl, size_t cap, double rate, double burst)
{
    if (rl == NULL || cap == 0 || cap > 1000000u || !(rate > 0.0) || !(burst >= 1.0))
        return LUNA_ERR_INVALID_ARG;
    memset(rl, 0, sizeof(*rl));
    rl->b = calloc(cap, sizeof(*rl->b));
    if (rl->b == NULL)
        return LUNA_ERR_NOMEM;
    rl->cap = cap;
    rl->rate = rate;
    rl->burst = burst;
    return LUNA_OK;
}

void gw_rl_free(gw_ratelimit *rl)
{
    if (rl == NULL)
        return;
    free(rl->b);
    rl->b = NULL;
    rl->cap = 0;
}

static void refill(const gw_ratelimit *rl, gw_bucket *b, double now)
{
    double dt = now - b->last;
    if (dt > 0.0) {
        b->tokens = fmin(rl->burst, b->tokens + dt * rl->rate);
        b->last = now;
    }
}

bool gw_rl_take(gw_ratelimit *rl, const char *name, double now, unsigned *retry_after)
{
    if (retry_after != NULL)
        *retry_after = 1;
    if (rl == NULL || rl->b == NULL || name == NULL || strlen(name) > GW_RL_NAME_MAX)
        return false;
    gw_bucket *hit = NULL, *spare = NULL;
    for (size_t i = 0; i < rl->cap && hit == NULL; i++) {
        gw_bucket *b = &rl->b[i];
        if (!b->used) {
            if (spare == NULL)
                spare = b;
            continue;
        }
        if (strcmp(b->name, name) == 0) {
            hit = b;
            break;
        }
        if (spare == NULL) {
            refill(rl, b, now);
            if (b->tokens >= rl->burst)
                spare = b; /* idle: forgetting it changes nothing */
        }
    }
    if (hit == NULL) {
        if (spare == NULL)
            return false;
        memset(spare, 0, sizeof(*spare));
        memcpy(spare->name, name, strlen(name) + 1);
        spare->used = true;
        spare->tokens = rl->burst;
        spare->last = now;
        hit = spare;
    }
    refill(rl, hit, now);
    if (hit->tokens >= 1.0) {
        hit->tokens -= 1.0;
        return true;
    }
    if (retry_after != NULL) {
        double wait = ceil((1.0 - hit->tokens) / rl->rate);
        *retry_after = wait < 1.0 ? 1u : wait > 3600.0 ? 3600u : (unsigned)wait;
    }
    return false;
}

/* ---- idempotency cache ---- */

luna_err gw_idem_init(gw_idem *t, size_t cap, double ttl, size_t max_resp)
{
    if (t == NULL || cap == 0 || cap > 1000000u || !(ttl > 0.0))
        return LUNA_ERR_INVALID_ARG;
    memset(t, 0, sizeof(*t));
    t->e = calloc(cap, sizeof(*t->e));
    if (t->e == NULL)
        return LUNA_ERR_NOMEM;
    t->cap = cap;
    t->ttl = ttl;
    t->max_resp = max_resp;
    return LUNA_OK;
}

static void entry_clear(gw_idem_entry *e)
{
    if (e->resp != NULL) {
        luna_wipe(e->resp, e->resp_len);
        free(e->resp);
    }
    memset(e, 0, sizeof(*e));
}

void gw_idem_free(gw_idem *t)
{
    if (t == NULL || t->e == NULL)
        return;
    for (size_t i = 0; i < t->cap; i++)
        entry_clear(&t->e[i]);
    free(t->e);
    t->e = NULL;
    t->cap = 0;
}

gw_idem_state gw_idem_begin(gw_idem *t, const char *name, const uint8_t hash[LUNA_SHA256_LEN],
                            double now, const gw_idem_entry **out)
{
    if (out != NULL)
        *out = NULL;
    if (t == NULL || t->e == NULL || name == NULL || hash == NULL ||
        strlen(name) > GW_IDEM_NAME_MAX)
        return GW_IDEM_FULL;
    gw_idem_entry *spare = NULL;
    for (size_t i = 0; i < t->cap; i++) {
        gw_idem_entry *e = &t->e[i];
        if (e->used && now >= e->expires)
            entry_clear(e);
        if (!e->used) {
            if (spare == NULL)
                spare = e;
            continue;
        }
        if (strcmp(e->name, name) != 0)
            continue;
        if (!luna_ct_equal(e->body_hash, hash, LUNA_SHA256_LEN))
            return GW_IDEM_CONFLICT;
        if (!e->done)
            return GW_IDEM_IN_PROGRESS;
        if (out != NULL)
            *out = e;
        return GW_IDEM_REPLAY;
    }
    if (spare == NULL)
        return GW_IDEM_FULL;
    memcpy(spare->name, name, strlen(name) + 1);
    memcpy(spare->body_hash, hash, LUNA_SHA256_LEN);
    spare->used = true;
    spare->done = false;
    spare->expires = now + t->ttl;
    return GW_IDEM_NEW;
}

void gw_idem_finish(gw_idem *t, const char *name, int status, const uint8_t *resp, size_t len,
                    double now)
{
    if (t == NULL || t->e == NULL || name == NULL)
        return;
    for (size_t i = 0; i < t->cap; i++) {
        gw_idem_entry *e = &t->e[i];
        if (!e->used || e->done || strcmp(e->name, name) != 0)
            continue;
        if (status < 200 || status > 299 || len > t->max_resp || (len > 0 && resp == NULL)) {
            entry_clear(e);
            return;
        }
        e->resp = malloc(len > 0 ? len : 1);
        if (e->resp == NULL) {
            entry_clear(e);
            return;
        }
        if (len > 0)
            memcpy(e->resp, resp, len);
        e->resp_len = len;
        e->status = status;
        e->done = true;
        e->expires = now + t->ttl;
        return;
    }
}
