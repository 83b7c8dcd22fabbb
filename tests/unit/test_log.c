/*
 * test_log.c - the structured logger: one JSON object per line, typed
 * fields, escaping that keeps every line one valid JSON object whatever
 * the values hold, length caps, and level filtering.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "luna/log.h"
#include "luna_test.h"

static int fds[2];
static char line[LUNA_LOG_LINE_MAX * 2];

static int setup(void **state)
{
    (void)state;
    if (pipe2(fds, O_NONBLOCK) != 0)
        return -1;
    luna_log_set_fd(fds[1]);
    luna_log_set_level(LUNA_LOG_DEBUG);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    luna_log_set_fd(2);
    close(fds[0]);
    close(fds[1]);
    return 0;
}

/* Reads what was logged since the last call ("" when nothing). */
static const char *drain(void)
{
    ssize_t n = read(fds[0], line, sizeof(line) - 1);
    line[n > 0 ? n : 0] = '\0';
    return line;
}

static json_t *one_object(void)
{
    const char *s = drain();
    size_t n = strlen(s);
    assert_true(n > 0);
    assert_int_equal('\n', s[n - 1]);
    assert_ptr_equal(strchr(s, '\n'), s + n - 1); /* exactly one line */
    json_error_t je;
    json_t *j = json_loadb(s, n - 1, 0, &je);
    assert_non_null(j);
    return j;
}

static void test_basic_line(void **state)
{
    (void)state;
    LUNA_LOGF(LUNA_LOG_INFO, "kms", "key released", LUNA_LOG_STR("tee", "t-1"),
              LUNA_LOG_INT("n", -3), LUNA_LOG_UINT("u", 4000000000u),
              LUNA_LOG_BOOL("ok", true), LUNA_LOG_ERR("err", LUNA_ERR_VERIFY),
              LUNA_LOG_DBL("ms", 1.5), LUNA_LOG_STR("nothing", NULL));
    json_t *j = one_object();
    assert_string_equal("info", json_string_value(json_object_get(j, "level")));
    assert_string_equal("kms", json_string_value(json_object_get(j, "component")));
    assert_string_equal("key released", json_string_value(json_object_get(j, "msg")));
    const char *ts = json_string_value(json_object_get(j, "ts"));
    assert_non_null(ts);
    assert_int_equal(24, (int)strlen(ts)); /* 2026-01-02T03:04:05.678Z */
    assert_int_equal('Z', ts[23]);
    assert_string_equal("t-1", json_string_value(json_object_get(j, "tee")));
    assert_int_equal(-3, (int)json_integer_value(json_object_get(j, "n")));
    assert_true(json_is_true(json_object_get(j, "ok")));
    assert_string_equal("verify_failed", json_string_value(json_object_get(j, "err")));
    assert_true(json_real_value(json_object_get(j, "ms")) == 1.5);
    assert_true(json_is_null(json_object_get(j, "nothing")));
    assert_null(json_object_get(j, "truncated"));
    json_decref(j);
    luna_log(LUNA_LOG_WARN, "x", "no fields", NULL, 0);
    j = one_object();
    assert_string_equal("warn", json_string_value(json_object_get(j, "level")));
    json_decref(j);
}

static void test_escaping(void **state)
{
    (void)state;
    /* Hostile values: quotes, newlines forging a second line, control and high bytes. */
    static const char evil[] = "a\"b\\c\n{\"level\":\"error\"}\r\t\x01\x7f\xc3\xa9\xff";
    LUNA_LOGF(LUNA_LOG_ERROR, "gw", "evil \"msg\"\n", LUNA_LOG_STR("v", evil),
              LUNA_LOG_STR("k\"ey\n", "x"));
    const char *raw = drain();
    /* Pure ASCII, one line. */
    for (const char *p = raw; *p != '\0'; p++)
        assert_true((unsigned char)*p < 0x80 && (*p >= 0x20 || *p == '\n'));
    json_error_t je;
    json_t *j = json_loadb(raw, strlen(raw) - 1, 0, &je);
    assert_non_null(j);
    assert_string_equal("error", json_string_value(json_object_get(j, "level")));
    assert_string_equal("evil \"msg\"\n", json_string_value(json_object_get(j, "msg")));
    assert_string_equal("x", json_string_value(json_object_get(j, "k\"ey\n")));
    /* Bytes >= 0x80 come back as \u00XX code points, never raw. */
    const char *v = json_string_value(json_object_get(j, "v"));
    assert_non_null(v);
    assert_non_null(strstr(raw, "\\u00c3\\u00a9\\u00ff"));
    assert_non_null(strstr(raw, "\\u000a{\\\"level\\\""));
    json_decref(j);
}

static void test_caps(void **state)
{
    (void)state;
    char *big = malloc(10000);
    assert_non_null(big);
    memset(big, 'x', 9999);
    big[9999] = '\0';
    LUNA_LOGF(LUNA_LOG_INFO, "c", "big", LUNA_LOG_STR("v", big));
    json_t *j = one_object();
    const char *v = json_string_value(json_object_get(j, "v"));
    assert_int_equal(LUNA_LOG_VALUE_MAX + 3, (int)strlen(v));
    assert_string_equal("...", v + LUNA_LOG_VALUE_MAX);
    json_decref(j);

    /* Escaped values that overflow the line drop the trailing fields. */
    memset(big, '\x01', 9999); /* each byte becomes 6 characters */
    luna_log_field f[8];
    for (size_t i = 0; i < 8; i++)
        f[i] = LUNA_LOG_STR("v", big);
    luna_log(LUNA_LOG_INFO, "c", "long", f, 8);
    const char *raw = drain();
    assert_true(strlen(raw) <= LUNA_LOG_LINE_MAX);
    json_error_t je;
    j = json_loadb(raw, strlen(raw) - 1, 0, &je);
    assert_non_null(j);
    assert_true(json_is_true(json_object_get(j, "truncated")));
    json_decref(j);

    /* More fields than the cap. */
    luna_log_field many[LUNA_LOG_MAX_FIELDS + 4];
    for (size_t i = 0; i < LUNA_LOG_MAX_FIELDS + 4; i++)
        many[i] = LUNA_LOG_INT("i", (int64_t)i);
    luna_log(LUNA_LOG_INFO, "c", "many", many, LUNA_LOG_MAX_FIELDS + 4);
    j = one_object();
    assert_true(json_is_true(json_object_get(j, "truncated")));
    json_decref(j);
    free(big);
}

static void test_levels(void **state)
{
    (void)state;
    luna_log_set_level(LUNA_LOG_WARN);
    assert_int_equal(LUNA_LOG_WARN, luna_log_get_level());
    luna_log(LUNA_LOG_INFO, "c", "hidden", NULL, 0);
    luna_log(LUNA_LOG_DEBUG, "c", "hidden", NULL, 0);
    assert_string_equal("", drain());
    luna_log(LUNA_LOG_ERROR, "c", "shown", NULL, 0);
    assert_non_null(strstr(drain(), "\"shown\""));
    luna_log_set_level(LUNA_LOG_OFF);
    luna_log(LUNA_LOG_ERROR, "c", "hidden", NULL, 0);
    assert_string_equal("", drain());
    luna_log_set_level((luna_log_level)42); /* ignored */
    assert_int_equal(LUNA_LOG_OFF, luna_log_get_level());
    luna_log_set_level(LUNA_LOG_DEBUG);
    luna_log(LUNA_LOG_OFF, "c", "never a level of a line", NULL, 0);
    assert_string_equal("", drain());

    luna_log_level l;
    assert_luna_ok(luna_log_level_parse("warn", &l));
    assert_int_equal(LUNA_LOG_WARN, l);
    assert_luna_ok(luna_log_level_parse("debug", &l));
    assert_int_equal(LUNA_LOG_DEBUG, l);
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_log_level_parse("WARN", &l));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_log_level_parse(NULL, &l));
    assert_string_equal("error", luna_log_level_name(LUNA_LOG_ERROR));
    assert_string_equal("unknown", luna_log_level_name((luna_log_level)9));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_line),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_levels),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
