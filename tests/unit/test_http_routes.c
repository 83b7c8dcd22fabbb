/*
 * test_http_routes.c - the pure parts of the HTTP module: identity
 * allow-lists, route resolution, request ids, paths, media types, the
 * JSON error body, status mapping, and the Prometheus rendering.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "http_internal.h"
#include "luna_test.h"

static void dummy(luna_http_request *req, void *arg)
{
    (void)req;
    (void)arg;
}

static void test_patterns(void **state)
{
    (void)state;
    assert_true(luna_http_pattern_valid("lunal://svc/kms"));
    assert_true(luna_http_pattern_valid("lunal://tee/*"));
    assert_true(luna_http_pattern_valid(LUNA_HTTP_ALLOW_ANY_PLATFORM));
    assert_false(luna_http_pattern_valid("*"));
    assert_false(luna_http_pattern_valid("lunal://*/kms"));
    assert_false(luna_http_pattern_valid("lunal://svc/KMS"));  /* not an identity */
    assert_false(luna_http_pattern_valid("lunal://svc/kms/")); /* idem */
    assert_false(luna_http_pattern_valid("https://svc/kms"));
    assert_false(luna_http_pattern_valid("lunal://tee/ *"));
    assert_false(luna_http_pattern_valid(""));
    assert_false(luna_http_pattern_valid(NULL));
}

static void test_identity_allowed(void **state)
{
    (void)state;
    const char *const gw[] = {"lunal://svc/gateway"};
    const char *const tee[] = {"lunal://tee/*"};
    const char *const any[] = {LUNA_HTTP_ALLOW_ANY_PLATFORM};
    assert_true(luna_http_identity_allowed(gw, 1, "lunal://svc/gateway"));
    assert_false(luna_http_identity_allowed(gw, 1, "lunal://svc/gateway2"));
    assert_false(luna_http_identity_allowed(gw, 1, "lunal://svc/gatewa"));
    assert_false(luna_http_identity_allowed(gw, 0, "lunal://svc/gateway"));
    assert_true(luna_http_identity_allowed(tee, 1, "lunal://tee/t-1"));
    assert_false(luna_http_identity_allowed(tee, 1, "lunal://tee/"));
    assert_false(luna_http_identity_allowed(tee, 1, "lunal://svc/t-1"));
    assert_true(luna_http_identity_allowed(any, 1, "lunal://svc/kms"));
    assert_true(luna_http_identity_allowed(any, 1, "lunal://tee/x"));
    /* Malformed identities never match, even "any". */
    assert_false(luna_http_identity_allowed(any, 1, "lunal://svc/KMS"));
    assert_false(luna_http_identity_allowed(any, 1, ""));
    assert_false(luna_http_identity_allowed(any, 1, NULL));
}

static void test_routes(void **state)
{
    (void)state;
    luna_http_route_table t = {0};
    const char *const a[] = {"lunal://svc/gateway"};
    luna_http_route r1 = {LUNA_HTTP_GET, "/v1/keys", a, 1, NULL, dummy, NULL};
    luna_http_route r2 = {LUNA_HTTP_POST, "/v1/keys", a, 1, "application/json", dummy, NULL};
    luna_http_route r3 = {LUNA_HTTP_GET, "/v1/*", a, 1, NULL, dummy, NULL};
    luna_http_route r4 = {LUNA_HTTP_GET | LUNA_HTTP_DELETE, "/v1/keys/*", a, 1, NULL, dummy, NULL};
    assert_luna_ok(luna_http_routes_add(&t, &r1));
    assert_luna_ok(luna_http_routes_add(&t, &r2));
    assert_luna_ok(luna_http_routes_add(&t, &r3));
    assert_luna_ok(luna_http_routes_add(&t, &r4));
    /* Overlapping method on the same path is refused. */
    luna_http_route dup = {LUNA_HTTP_GET | LUNA_HTTP_PUT, "/v1/keys", a, 1, NULL, dummy, NULL};
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_http_routes_add(&t, &dup));
    /* Malformed registrations. */
    const char *const bad[] = {"lunal://svc/*x"};
    luna_http_route b1 = {LUNA_HTTP_GET, "/x", bad, 1, NULL, dummy, NULL};
    luna_http_route b2 = {LUNA_HTTP_GET, "x", a, 1, NULL, dummy, NULL};
    luna_http_route b3 = {LUNA_HTTP_GET, "/x", a, 0, NULL, dummy, NULL};
    luna_http_route b4 = {0, "/x", a, 1, NULL, dummy, NULL};
    luna_http_route b5 = {LUNA_HTTP_GET, "/a*b", a, 1, NULL, dummy, NULL};
    luna_http_route b6 = {LUNA_HTTP_GET, "/x", a, 1, "text/plain\r\nX: y", dummy, NULL};
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_http_routes_add(&t, &b1));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_http_routes_add(&t, &b2));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_http_routes_add(&t, &b3));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_http_routes_add(&t, &b4));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_http_routes_add(&t, &b5));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_http_routes_add(&t, &b6));

    const luna_http_route_entry *e;
    unsigned mask;
    assert_int_equal(LUNA_HTTP_MATCH_OK, luna_http_routes_find(&t, LUNA_HTTP_GET, "/v1/keys", &e, &mask));
    assert_string_equal("/v1/keys", e->label);
    assert_int_equal(LUNA_HTTP_MATCH_OK, luna_http_routes_find(&t, LUNA_HTTP_POST, "/v1/keys", &e, &mask));
    assert_string_equal("application/json", e->content_type);
    assert_int_equal(LUNA_HTTP_MATCH_NO_METHOD,
                     luna_http_routes_find(&t, LUNA_HTTP_DELETE, "/v1/keys", &e, &mask));
    assert_int_equal(LUNA_HTTP_GET | LUNA_HTTP_POST, mask);
    /* Longest prefix wins. */
    assert_int_equal(LUNA_HTTP_MATCH_OK,
                     luna_http_routes_find(&t, LUNA_HTTP_DELETE, "/v1/keys/k1", &e, &mask));
    assert_string_equal("/v1/keys/*", e->label);
    assert_int_equal(LUNA_HTTP_MATCH_OK, luna_http_routes_find(&t, LUNA_HTTP_GET, "/v1/other", &e, &mask));
    assert_string_equal("/v1/*", e->label);
    assert_int_equal(LUNA_HTTP_MATCH_NO_METHOD,
                     luna_http_routes_find(&t, LUNA_HTTP_POST, "/v1/keys/k1", &e, &mask));
    assert_int_equal(LUNA_HTTP_MATCH_NO_PATH, luna_http_routes_find(&t, LUNA_HTTP_GET, "/v2", &e, &mask));
    assert_int_equal(LUNA_HTTP_MATCH_NO_PATH, luna_http_routes_find(&t, LUNA_HTTP_GET, "/v1", &e, &mask));
    luna_http_routes_free(&t);
}

static void test_methods(void **state)
{
    (void)state;
    assert_int_equal(LUNA_HTTP_GET, luna_http_method_bit("GET"));
    assert_int_equal(0, luna_http_method_bit("get"));
    assert_int_equal(0, luna_http_method_bit("OPTIONS"));
    char buf[48];
    luna_http_methods_text(LUNA_HTTP_GET | LUNA_HTTP_DELETE, buf, sizeof(buf));
    assert_string_equal("GET, DELETE", buf);
    luna_http_methods_text(0, buf, sizeof(buf));
    assert_string_equal("", buf);
    luna_http_methods_text(LUNA_HTTP_GET | LUNA_HTTP_POST, buf, 6); /* too small: stops early */
    assert_string_equal("GET", buf);
}

static void test_request_ids(void **state)
{
    (void)state;
    assert_true(luna_http_request_id_valid("a"));
    assert_true(luna_http_request_id_valid("Ab-9._x"));
    char longid[LUNA_HTTP_REQUEST_ID_MAX + 2];
    memset(longid, 'a', sizeof(longid));
    longid[LUNA_HTTP_REQUEST_ID_MAX] = '\0';
    assert_true(luna_http_request_id_valid(longid));
    longid[LUNA_HTTP_REQUEST_ID_MAX] = 'a';
    longid[LUNA_HTTP_REQUEST_ID_MAX + 1] = '\0';
    assert_false(luna_http_request_id_valid(longid));
    assert_false(luna_http_request_id_valid(""));
    assert_false(luna_http_request_id_valid(NULL));
    assert_false(luna_http_request_id_valid("a b"));
    assert_false(luna_http_request_id_valid("a\r\nSet-Cookie: x"));
    assert_false(luna_http_request_id_valid("\"x\""));
    char a[33], b[33];
    assert_luna_ok(luna_http_request_id_generate(a, sizeof(a)));
    assert_luna_ok(luna_http_request_id_generate(b, sizeof(b)));
    assert_int_equal(32, (int)strlen(a));
    assert_true(luna_http_request_id_valid(a));
    assert_string_not_equal(a, b);
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_http_request_id_generate(a, 32));
}

static void test_paths(void **state)
{
    (void)state;
    assert_true(luna_http_path_acceptable("/"));
    assert_true(luna_http_path_acceptable("/v1/keys/k-1"));
    assert_true(luna_http_path_acceptable("/v1/a.b/..c/.d"));
    assert_false(luna_http_path_acceptable("/v1/../admin"));
    assert_false(luna_http_path_acceptable("/v1/.."));
    assert_false(luna_http_path_acceptable("/v1/./x"));
    assert_false(luna_http_path_acceptable("/v1/."));
    assert_false(luna_http_path_acceptable("//v1"));
    assert_false(luna_http_path_acceptable("v1"));
    assert_false(luna_http_path_acceptable("/a b"));
    assert_false(luna_http_path_acceptable("/a\x7f"));
    assert_false(luna_http_path_acceptable(NULL));
    char *p = malloc(LUNA_HTTP_REQUEST_PATH_MAX + 2);
    assert_non_null(p);
    memset(p, 'a', LUNA_HTTP_REQUEST_PATH_MAX + 1);
    p[0] = '/';
    p[LUNA_HTTP_REQUEST_PATH_MAX + 1] = '\0';
    assert_false(luna_http_path_acceptable(p));
    p[LUNA_HTTP_REQUEST_PATH_MAX] = '\0';
    assert_true(luna_http_path_acceptable(p));
    free(p);
}

static void test_media_types(void **state)
{
    (void)state;
    assert_true(luna_http_media_type_is("application/json", "application/json"));
    assert_true(luna_http_media_type_is(" Application/JSON ; charset=utf-8", "application/json"));
    assert_false(luna_http_media_type_is("application/jsonx", "application/json"));
    assert_false(luna_http_media_type_is("application/jso", "application/json"));
    assert_false(luna_http_media_type_is("text/plain", "application/json"));
    assert_false(luna_http_media_type_is(NULL, "application/json"));
    assert_false(luna_http_media_type_is("", "application/json"));
}

static void test_error_body(void **state)
{
    (void)state;
    char *s = luna_http_error_body("forbidden", "a \"quoted\"\nmessage");
    assert_non_null(s);
    json_error_t je;
    json_t *j = json_loads(s, 0, &je);
    assert_non_null(j);
    assert_string_equal("forbidden", json_string_value(json_object_get(json_object_get(j, "error"), "code")));
    assert_string_equal("a \"quoted\"\nmessage",
                        json_string_value(json_object_get(json_object_get(j, "error"), "message")));
    assert_null(strchr(s, '\n')); /* one line */
    json_decref(j);
    free(s);
    assert_string_equal("not_found", luna_http_status_code_name(404));
    assert_string_equal("rate_limited", luna_http_status_code_name(429));
    assert_string_equal("too_large", luna_http_status_code_name(413));
    assert_int_equal(403, luna_http_status_for_err(LUNA_ERR_PERMISSION));
    assert_int_equal(401, luna_http_status_for_err(LUNA_ERR_UNAUTHENTICATED));
    assert_int_equal(400, luna_http_status_for_err(LUNA_ERR_FORMAT));
    assert_int_equal(413, luna_http_status_for_err(LUNA_ERR_TOO_LARGE));
    assert_int_equal(503, luna_http_status_for_err(LUNA_ERR_UNAVAILABLE));
    assert_int_equal(500, luna_http_status_for_err(LUNA_ERR_CRYPTO));
    assert_int_equal(500, luna_http_status_for_err((luna_err)999));
}

static char *render(const luna_http_metrics *m)
{
    struct evbuffer *b = evbuffer_new();
    assert_non_null(b);
    assert_luna_ok(luna_http_metrics_render(m, b));
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    assert_non_null(s);
    assert_int_equal((int)n, (int)evbuffer_remove(b, s, n));
    s[n] = '\0';
    evbuffer_free(b);
    return s;
}

static void test_metrics(void **state)
{
    (void)state;
    static const char route[] = "/v1/keys";
    static const char weird[] = "/a\"b\\c\nd";
    luna_http_metrics m = {0};
    luna_http_metrics_observe(&m, route, LUNA_HTTP_GET, 200, 0.003);
    luna_http_metrics_observe(&m, route, LUNA_HTTP_GET, 200, 0.2);
    luna_http_metrics_observe(&m, route, LUNA_HTTP_GET, 200, 99.0);
    luna_http_metrics_observe(&m, route, LUNA_HTTP_POST, 403, -1.0);
    luna_http_metrics_observe(&m, weird, 0, 404, 0.0);
    char *s = render(&m);
    assert_non_null(strstr(s, "luna_http_requests_total{route=\"/v1/keys\",method=\"GET\",status=\"200\"} 3\n"));
    assert_non_null(strstr(s, "luna_http_errors_total{route=\"/v1/keys\",method=\"POST\",status=\"403\"} 1\n"));
    assert_null(strstr(s, "luna_http_errors_total{route=\"/v1/keys\",method=\"GET\""));
    /* Cumulative buckets. */
    assert_non_null(strstr(s, "luna_http_request_duration_seconds_bucket{route=\"/v1/keys\",method=\"GET\",status=\"200\",le=\"0.001\"} 0\n"));
    assert_non_null(strstr(s, "luna_http_request_duration_seconds_bucket{route=\"/v1/keys\",method=\"GET\",status=\"200\",le=\"0.005\"} 1\n"));
    assert_non_null(strstr(s, "luna_http_request_duration_seconds_bucket{route=\"/v1/keys\",method=\"GET\",status=\"200\",le=\"0.25\"} 2\n"));
    assert_non_null(strstr(s, "luna_http_request_duration_seconds_bucket{route=\"/v1/keys\",method=\"GET\",status=\"200\",le=\"5\"} 2\n"));
    assert_non_null(strstr(s, "luna_http_request_duration_seconds_bucket{route=\"/v1/keys\",method=\"GET\",status=\"200\",le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(s, "luna_http_request_duration_seconds_count{route=\"/v1/keys\",method=\"GET\",status=\"200\"} 3\n"));
    /* Label values escaped: no raw quote or newline from the route. */
    assert_non_null(strstr(s, "route=\"/a\\\"b\\\\c\\nd\",method=\"other\""));
    free(s);

    /* The table is capped; the rest is counted as dropped. */
    static const int statuses = LUNA_HTTP_METRICS_MAX_SERIES + 5;
    for (int i = 0; i < statuses; i++)
        luna_http_metrics_observe(&m, route, LUNA_HTTP_PUT, 1000 + i, 0.0);
    assert_int_equal(LUNA_HTTP_METRICS_MAX_SERIES, (int)m.n);
    assert_true(m.dropped >= 5);
    s = render(&m);
    assert_non_null(strstr(s, "luna_http_metrics_dropped_total "));
    free(s);
    luna_http_metrics_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patterns),   cmocka_unit_test(test_identity_allowed),
        cmocka_unit_test(test_routes),     cmocka_unit_test(test_methods),
        cmocka_unit_test(test_request_ids), cmocka_unit_test(test_paths),
        cmocka_unit_test(test_media_types), cmocka_unit_test(test_error_body),
        cmocka_unit_test(test_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
