/*
 * fuzz_http_meta.c - fuzzes what the HTTP server checks itself before any
 * handler runs (evhttp parses the HTTP): request ids, paths, Content-Type,
 * identity patterns and allow-lists, route resolution, and the log line
 * writer that every request value passes through.  Checks invariants,
 * not just absence of crashes.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_internal.h"
#include "luna/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void dummy(luna_http_request *req, void *arg)
{
    (void)req;
    (void)arg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int devnull = -2;
    if (devnull == -2) {
        devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            luna_log_set_fd(devnull);
    }
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';

    if (luna_http_request_id_valid(s) && (strlen(s) == 0 || strlen(s) > LUNA_HTTP_REQUEST_ID_MAX ||
                                          strpbrk(s, "\r\n \"") != NULL))
        abort();
    if (luna_http_path_acceptable(s) &&
        (s[0] != '/' || strstr(s, "/../") != NULL || strstr(s, "//") != NULL ||
         strpbrk(s, "\r\n ") != NULL))
        abort();
    (void)luna_http_media_type_is(s, "application/json");

    const char *const pats[] = {"lunal://tee/*", "lunal://svc/gateway"};
    if (luna_http_identity_allowed(pats, 2, s) && strncmp(s, "lunal://", 8) != 0)
        abort();
    if (luna_http_pattern_valid(s)) {
        const char *const one[] = {s};
        (void)luna_http_identity_allowed(one, 1, "lunal://svc/kms");
    }

    luna_http_route_table t = {0};
    const char *const any[] = {LUNA_HTTP_ALLOW_ANY_PLATFORM};
    const luna_http_route r1 = {LUNA_HTTP_GET, "/v1/keys", any, 1, NULL, dummy, NULL};
    const luna_http_route r2 = {LUNA_HTTP_POST, "/v1/*", any, 1, NULL, dummy, NULL};
    if (luna_http_routes_add(&t, &r1) == LUNA_OK && luna_http_routes_add(&t, &r2) == LUNA_OK) {
        const luna_http_route_entry *e;
        unsigned mask;
        luna_http_match m = luna_http_routes_find(&t, LUNA_HTTP_GET, s, &e, &mask);
        if (m != LUNA_HTTP_MATCH_NO_PATH && (e == NULL || mask == 0))
            abort();
        /* A user-supplied path as a route registration must never crash. */
        const luna_http_route r3 = {LUNA_HTTP_PUT, s, any, 1, NULL, dummy, NULL};
        luna_err err = luna_http_routes_add(&t, &r3);
        if (err == LUNA_OK && (s[0] != '/' || strchr(s, ' ') != NULL))
            abort();
    }
    luna_http_routes_free(&t);

    LUNA_LOGF(LUNA_LOG_ERROR, "fuzz", s, LUNA_LOG_STR(s, s));
    char *body = luna_http_error_body("bad_request", s);
    free(body);
    free(s);
    return 0;
}
