/*
 * sdk_http.c - the SDK's HTTPS calls to the gateway over libcurl: TLS
 * verification always on (peer and host, TLS 1.2 minimum), HTTP/2 when the
 * server offers it, connections and TLS sessions reused through a share
 * handle, every answer capped.  Must never turn verification off, follow
 * a redirect, or put a credential in an error message.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "luna/audience.h"
#include "luna/bytes.h"
#include "luna/json.h"
#include "sdk_internal.h"

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

luna_err sdk_http_global_init(void)
{
    pthread_once(&global_once, global_init);
    return global_rc == CURLE_OK ? LUNA_OK : LUNA_ERR_INTERNAL;
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *arg)
{
    luna_client *c = arg;
    size_t i = (size_t)data % (sizeof c->share_locks / sizeof c->share_locks[0]);

    (void)h;
    (void)access;
    pthread_mutex_lock(&c->share_locks[i]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *arg)
{
    luna_client *c = arg;
    size_t i = (size_t)data % (sizeof c->share_locks / sizeof c->share_locks[0]);

    (void)h;
    pthread_mutex_unlock(&c->share_locks[i]);
}

luna_err sdk_http_share_new(luna_client *c)
{
    CURLSH *sh = curl_share_init();

    if (sh == NULL)
        return LUNA_ERR_NOMEM;
    if (curl_share_setopt(sh, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
        curl_share_setopt(sh, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
        curl_share_setopt(sh, CURLSHOPT_USERDATA, c) != CURLSHE_OK ||
        curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
        curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK ||
        curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK) {
        curl_share_cleanup(sh);
        return LUNA_ERR_INTERNAL;
    }
    c->share = sh;
    return LUNA_OK;
}

void sdk_http_share_free(luna_client *c)
{
    if (c->share != NULL)
        curl_share_cleanup(c->share);
    c->share = NULL;
}

typedef struct sink {
    uint8_t *buf;
    size_t len;
    size_t cap;   /* allocated */
    size_t limit; /* named cap of this answer */
    bool over;
} sink;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    sink *s = arg;
    size_t n = size * nmemb;

    if (nmemb != 0 && n / nmemb != size)
        return 0;
    if (n > s->limit - s->len) {
        s->over = true;
        return 0; /* aborts the transfer */
    }
    if (s->len + n + 1 > s->cap) {
        size_t ncap = s->cap == 0 ? 4096 : s->cap;
        uint8_t *nb;
        while (ncap < s->len + n + 1)
            ncap *= 2;
        if (ncap > s->limit + 1)
            ncap = s->limit + 1;
        nb = malloc(ncap);
        if (nb == NULL)
            return 0;
        if (s->buf != NULL) {
            memcpy(nb, s->buf, s->len);
            /* The old copy may hold sealed results: wipe before freeing. */
            luna_wipe(s->buf, s->cap);
            free(s->buf);
        }
        s->buf = nb;
        s->cap = ncap;
    }
    memcpy(s->buf + s->len, ptr, n);
    s->len += n;
    s->buf[s->len] = 0;
    return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *arg)
{
    sdk_http_resp *r = arg;
    size_t n = size * nmemb;
    static const char ra[] = "retry-after:";

    if (n > sizeof ra - 1 && strncasecmp(ptr, ra, sizeof ra - 1) == 0) {
        unsigned v = 0;
        size_t i = sizeof ra - 1;
        while (i < n && ptr[i] == ' ')
            i++;
        for (; i < n && ptr[i] >= '0' && ptr[i] <= '9' && v < 3600; i++)
            v = v * 10 + (unsigned)(ptr[i] - '0');
        r->retry_after = v > 3600 ? 3600 : v;
    }
    return n;
}

static bool header_value_ok(const char *v)
{
    for (; *v != 0; v++)
        if ((unsigned char)*v < 0x20 || (unsigned char)*v >= 0x7f)
            return false;
    return true;
}

static luna_err add_header(struct curl_slist **l, const char *name, const char *value,
                           bool secret)
{
    char buf[SDK_MAX_TOKEN + 64];
    struct curl_slist *n;
    int len;

    if (!header_value_ok(value))
        return LUNA_ERR_INVALID_ARG;
    len = snprintf(buf, sizeof buf, "%s: %s", name, value);
    if (len < 0 || (size_t)len >= sizeof buf)
        return LUNA_ERR_TOO_LARGE;
    n = curl_slist_append(*l, buf);
    if (secret)
        luna_wipe(buf, (size_t)len);
    if (n == NULL)
        return LUNA_ERR_NOMEM;
    *l = n;
    return LUNA_OK;
}

static void read_error_body(sdk_http_resp *r)
{
    json_t *root, *e;
    const char *s;

    if (r->body == NULL || r->len == 0 || r->len > 65536)
        return;
    root = json_loadb((const char *)r->body, r->len, JSON_REJECT_DUPLICATES, NULL);
    if (root == NULL)
        return;
    e = json_object_get(root, "error");
    if (json_is_object(e)) {
        s = json_string_value(json_object_get(e, "code"));
        if (s != NULL && header_value_ok(s))
            snprintf(r->error_code, sizeof r->error_code, "%s", s);
        s = json_string_value(json_object_get(e, "message"));
        if (s != NULL && header_value_ok(s))
            snprintf(r->error_message, sizeof r->error_message, "%s", s);
    }
    json_decref(root);
}

luna_err sdk_http_do(luna_client *c, const sdk_http_req *rq, sdk_http_resp *resp, char *why)
{
    char url[SDK_URL_MAX + 1024];
    struct curl_slist *hdrs = NULL;
    sink s = {.limit = rq->max_answer != 0 ? rq->max_answer : SDK_MAX_JSON_ANSWER};
    CURL *h = NULL;
    CURLcode rc;
    luna_err err = LUNA_OK;
    char *tok = NULL;
    size_t tok_len = 0;

    memset(resp, 0, sizeof *resp);
    if (rq->path == NULL || rq->path[0] != '/' || strpbrk(rq->path, " \r\n\t#") != NULL) {
        sdk_why(why, "bad API path");
        return LUNA_ERR_INVALID_ARG;
    }
    if ((size_t)snprintf(url, sizeof url, "%s%s", c->gateway, rq->path) >= sizeof url) {
        sdk_why(why, "URL too long");
        return LUNA_ERR_TOO_LARGE;
    }
    h = curl_easy_init();
    if (h == NULL)
        return LUNA_ERR_NOMEM;
    if (rq->content_type != NULL)
        LUNA_TRY(add_header(&hdrs, "Content-Type", rq->content_type, false), out);
    LUNA_TRY(add_header(&hdrs, "Accept", "application/json, application/octet-stream", false),
             out);
    /* No "Expect: 100-continue" round trip on large envelopes. */
    LUNA_TRY(add_header(&hdrs, "Expect", "", false), out);
    if (rq->idempotency_key != NULL)
        LUNA_TRY(add_header(&hdrs, "Idempotency-Key", rq->idempotency_key, false), out);
    if (rq->otk_id != NULL)
        LUNA_TRY(add_header(&hdrs, "X-Lunal-Otk-Id", rq->otk_id, false), out);
    if (rq->request_id != NULL)
        LUNA_TRY(add_header(&hdrs, "X-Request-Id", rq->request_id, false), out);
    if (rq->api_key != NULL) {
        char v[SDK_MAX_API_KEY + 16];
        snprintf(v, sizeof v, "ApiKey %s", rq->api_key);
        err = add_header(&hdrs, "Authorization", v, true);
        luna_wipe(v, sizeof v);
        if (err != LUNA_OK)
            goto out;
    } else if (rq->auth) {
        char v[SDK_MAX_TOKEN + 16];
        pthread_mutex_lock(&c->lock);
        if (c->token != NULL) {
            tok_len = c->token_len;
            tok = malloc(tok_len + 1);
            if (tok != NULL)
                memcpy(tok, c->token, tok_len + 1);
        }
        pthread_mutex_unlock(&c->lock);
        LUNA_TRY_ENSURE(tok != NULL, LUNA_ERR_UNAUTHENTICATED, out);
        snprintf(v, sizeof v, "Bearer %s", tok);
        err = add_header(&hdrs, "Authorization", v, true);
        luna_wipe(v, sizeof v);
        luna_wipe(tok, tok_len);
        free(tok);
        tok = NULL;
        if (err != LUNA_OK)
            goto out;
        /* A relayed route also carries the downstream service's own token,
           which the gateway forwards (only it) as that request's
           Authorization; the gateway token never leaves the gateway. */
        int svc = sdk_downstream_for_request(rq->method, rq->path);
        if (svc >= 0) {
            pthread_mutex_lock(&c->lock);
            if (c->down_token[svc] != NULL) {
                tok_len = c->down_len[svc];
                tok = malloc(tok_len + 1);
                if (tok != NULL)
                    memcpy(tok, c->down_token[svc], tok_len + 1);
            }
            pthread_mutex_unlock(&c->lock);
            /* None: the principal's roles give it no token for that
               service; the gateway answers 401 missing_downstream_token. */
            if (tok != NULL) {
                snprintf(v, sizeof v, "Bearer %s", tok);
                err = add_header(&hdrs, LUNA_DOWNSTREAM_AUTH_HEADER, v, true);
                luna_wipe(v, sizeof v);
                if (err != LUNA_OK)
                    goto out;
            }
        }
    }

    if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SHARE, c->share) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->timeout_ms < 10000 ? c->timeout_ms : 10000)) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &s) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HEADERDATA, resp) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_USERAGENT, "lunal-sdk/" LUNAL_SDK_VERSION) != CURLE_OK) {
        sdk_why(why, "libcurl refused an option");
        err = LUNA_ERR_INTERNAL;
        goto out;
    }
    /* HTTP/2 over TLS when the server offers it (ALPN), else HTTP/1.1. */
    (void)curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    if (c->ca_file != NULL && curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file) != CURLE_OK) {
        err = LUNA_ERR_INTERNAL;
        goto out;
    }
    if (strcmp(rq->method, "POST") == 0) {
        if (curl_easy_setopt(h, CURLOPT_POST, 1L) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body != NULL ? (const char *)rq->body : "") != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len) != CURLE_OK) {
            err = LUNA_ERR_INTERNAL;
            goto out;
        }
    } else if (strcmp(rq->method, "GET") != 0) {
        if (curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method) != CURLE_OK) {
            err = LUNA_ERR_INTERNAL;
            goto out;
        }
    }

    rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        if (s.over) {
            sdk_why(why, "the gateway's answer is larger than %zu bytes", s.limit);
            err = LUNA_ERR_TOO_LARGE;
        } else if (rc == CURLE_OPERATION_TIMEDOUT) {
            sdk_why(why, "timed out talking to %s", c->gateway);
            err = LUNA_ERR_TIMEOUT;
        } else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CONNECT_ERROR ||
                   rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CACERT_BADFILE) {
            sdk_why(why, "TLS with %s failed: %s", c->gateway, curl_easy_strerror(rc));
            err = LUNA_ERR_TLS;
        } else {
            sdk_why(why, "cannot reach %s: %s", c->gateway, curl_easy_strerror(rc));
            err = LUNA_ERR_IO;
        }
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    if (s.buf == NULL) {
        s.buf = calloc(1, 1);
        if (s.buf == NULL) {
            err = LUNA_ERR_NOMEM;
            goto out;
        }
    }
    resp->body = s.buf;
    resp->len = s.len;
    s.buf = NULL;
    if (resp->status < 200 || resp->status > 299)
        read_error_body(resp);
out:
    if (tok != NULL) {
        luna_wipe(tok, tok_len);
        free(tok);
    }
    if (s.buf != NULL) {
        luna_wipe(s.buf, s.cap);
        free(s.buf);
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return err;
}

void sdk_http_resp_free(sdk_http_resp *r)
{
    if (r == NULL)
        return;
    if (r->body != NULL) {
        luna_wipe(r->body, r->len);
        free(r->body);
    }
    r->body = NULL;
    r->len = 0;
}

luna_err sdk_http_status_err(const sdk_http_resp *r, const char *what, char *why)
{
    luna_err e;

    switch (r->status) {
    case 400: e = LUNA_ERR_FORMAT; break;
    case 401: e = LUNA_ERR_UNAUTHENTICATED; break;
    case 403: e = LUNA_ERR_PERMISSION; break;
    case 404: e = LUNA_ERR_NOT_FOUND; break;
    case 409: e = LUNA_ERR_CONFLICT; break;
    case 413: e = LUNA_ERR_TOO_LARGE; break;
    case 415: e = LUNA_ERR_UNSUPPORTED; break;
    case 429: e = LUNA_ERR_UNAVAILABLE; break;
    case 503: e = LUNA_ERR_UNAVAILABLE; break;
    case 504: e = LUNA_ERR_TIMEOUT; break;
    default: e = LUNA_ERR_IO; break;
    }
    sdk_why(why, "%s refused (HTTP %ld%s%s%s%s)", what, r->status, r->error_code[0] ? ", " : "",
            r->error_code, r->error_message[0] ? ": " : "", r->error_message);
    return e;
}

luna_err sdk_json_load(const uint8_t *body, size_t len, json_t **out, char *why)
{
    json_error_t je;

    *out = NULL;
    if (len > SDK_MAX_JSON_ANSWER) {
        sdk_why(why, "answer over %u bytes", SDK_MAX_JSON_ANSWER);
        return LUNA_ERR_TOO_LARGE;
    }
    /* An answer is read leniently (a newer gateway may add fields) but
       strictly typed: every member used goes through the typed getters. */
    *out = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &je);
    if (*out == NULL || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        sdk_why(why, "the platform's answer is not a JSON object");
        return LUNA_ERR_FORMAT;
    }
    return LUNA_OK;
}

luna_err sdk_json_str(const json_t *o, const char *name, char *out, size_t cap)
{
    const char *s = NULL;
    size_t n = 0;

    LUNA_GUARD(luna_json_get_string(o, name, &s, &n));
    if (n >= cap || memchr(s, 0, n) != NULL)
        return LUNA_ERR_FORMAT;
    memcpy(out, s, n);
    out[n] = 0;
    return LUNA_OK;
}
