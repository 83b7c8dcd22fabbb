/*
 * log.c - the structured JSON line logger (luna/log.h).
 *
 * Owns the escaping of everything it writes and the single-write line
 * discipline.  Must never format caller buffers with printf-style
 * directives, never allocate, and never write more than LUNA_LOG_LINE_MAX
 * bytes per line.
 */
#include "luna/log.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int luna_log_threshold = LUNA_LOG_INFO;
static _Atomic int luna_log_fd = 2;

/*
 * A bounded line under construction.  Once an append does not fit, the
 * line is marked full and later appends are ignored, so the caller can
 * roll back to the last complete field.
 */
typedef struct log_line {
    char buf[LUNA_LOG_LINE_MAX];
    size_t len;
    bool full;
} log_line;

/* Room kept for the closing `,"truncated":true}\n`. */
#define LOG_TAIL_RESERVE 24

static void line_put(log_line *l, const char *s, size_t n)
{
    if (l->full || n > LUNA_LOG_LINE_MAX - LOG_TAIL_RESERVE - l->len) {
        l->full = true;
        return;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void line_puts(log_line *l, const char *s)
{
    line_put(l, s, strlen(s));
}

/* Writes s as a JSON string, escaped, cut at LUNA_LOG_VALUE_MAX bytes. */
static void line_put_json_string(log_line *l, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (s == NULL) {
        line_puts(l, "null");
        return;
    }
    line_put(l, "\"", 1);
    size_t i;
    for (i = 0; i < LUNA_LOG_VALUE_MAX && s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            line_put(l, esc, 2);
        } else if (c < 0x20 || c >= 0x7f) {
            /*
             * Non-ASCII is escaped byte by byte: the output stays pure
             * ASCII whatever the input encoding, and invalid UTF-8 can
             * never reach a log collector.
             */
            esc[0] = '\\';
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xf];
            line_put(l, esc, 6);
        } else {
            esc[0] = (char)c;
            line_put(l, esc, 1);
        }
    }
    if (s[i] != '\0')
        line_puts(l, "...");
    line_put(l, "\"", 1);
}

static void line_put_timestamp(log_line *l)
{
    struct timespec ts;
    struct tm tm;
    char buf[40];
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || gmtime_r(&ts.tv_sec, &tm) == NULL) {
        line_puts(l, "\"1970-01-01T00:00:00.000Z\"");
        return;
    }
    int n = snprintf(buf, sizeof(buf), "\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\"", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (long)(ts.tv_nsec / 1000000));
    if (n > 0 && (size_t)n < sizeof(buf))
        line_put(l, buf, (size_t)n);
}

static void line_put_field_value(log_line *l, const luna_log_field *f)
{
    char num[48];
    int n = -1;
    switch (f->kind) {
    case LUNA_LOG_KIND_STR:
        line_put_json_string(l, f->v.s);
        return;
    case LUNA_LOG_KIND_INT:
        n = snprintf(num, sizeof(num), "%" PRId64, f->v.i);
        break;
    case LUNA_LOG_KIND_UINT:
        n = snprintf(num, sizeof(num), "%" PRIu64, f->v.u);
        break;
    case LUNA_LOG_KIND_BOOL:
        line_puts(l, f->v.b ? "true" : "false");
        return;
    case LUNA_LOG_KIND_ERR:
        line_put_json_string(l, luna_errname(f->v.e));
        return;
    case LUNA_LOG_KIND_DOUBLE:
        /* JSON has no NaN or infinity. */
        if (!isfinite(f->v.d)) {
            line_puts(l, "null");
            return;
        }
        n = snprintf(num, sizeof(num), "%.6g", f->v.d);
        break;
    default:
        line_puts(l, "null");
        return;
    }
    if (n > 0 && (size_t)n < sizeof(num))
        line_put(l, num, (size_t)n);
    else
        line_puts(l, "null");
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere to report a failing log sink */
        }
        p += (size_t)w;
        n -= (size_t)w;
    }
}

void luna_log(luna_log_level level, const char *component, const char *msg,
              const luna_log_field *fields, size_t n_fields)
{
    if ((int)level < atomic_load(&luna_log_threshold) || level >= LUNA_LOG_OFF)
        return;
    log_line l;
    l.len = 0;
    l.full = false;
    bool truncated = false;

    line_puts(&l, "{\"ts\":");
    line_put_timestamp(&l);
    line_puts(&l, ",\"level\":\"");
    line_puts(&l, luna_log_level_name(level));
    line_puts(&l, "\",\"component\":");
    line_put_json_string(&l, component != NULL ? component : "?");
    line_puts(&l, ",\"msg\":");
    line_put_json_string(&l, msg != NULL ? msg : "?");
    if (l.full)
        return; /* cannot happen with the caps above; never emit half a head */

    if (fields == NULL)
        n_fields = 0;
    if (n_fields > LUNA_LOG_MAX_FIELDS) {
        n_fields = LUNA_LOG_MAX_FIELDS;
        truncated = true;
    }
    for (size_t i = 0; i < n_fields; i++) {
        size_t mark = l.len;
        line_put(&l, ",", 1);
        line_put_json_string(&l, fields[i].key != NULL ? fields[i].key : "?");
        line_put(&l, ":", 1);
        line_put_field_value(&l, &fields[i]);
        if (l.full) {
            /* Roll back to the last complete field. */
            l.len = mark;
            l.full = false;
            truncated = true;
            break;
        }
    }
    /* LOG_TAIL_RESERVE guarantees these fit. */
    static const char trunc_tail[] = ",\"truncated\":true}\n";
    static const char tail[] = "}\n";
    if (truncated) {
        memcpy(l.buf + l.len, trunc_tail, sizeof(trunc_tail) - 1);
        l.len += sizeof(trunc_tail) - 1;
    } else {
        memcpy(l.buf + l.len, tail, sizeof(tail) - 1);
        l.len += sizeof(tail) - 1;
    }
    write_all(atomic_load(&luna_log_fd), l.buf, l.len);
}

void luna_log_set_level(luna_log_level level)
{
    if ((int)level < (int)LUNA_LOG_DEBUG || level > LUNA_LOG_OFF)
        return;
    atomic_store(&luna_log_threshold, (int)level);
}

luna_log_level luna_log_get_level(void)
{
    return (luna_log_level)atomic_load(&luna_log_threshold);
}

static const char *const luna_log_names[] = {"debug", "info", "warn", "error", "off"};

luna_err luna_log_level_parse(const char *name, luna_log_level *out)
{
    if (name == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    for (size_t i = 0; i < sizeof(luna_log_names) / sizeof(luna_log_names[0]); i++) {
        if (strcmp(name, luna_log_names[i]) == 0) {
            *out = (luna_log_level)i;
            return LUNA_OK;
        }
    }
    return LUNA_ERR_INVALID_ARG;
}

const char *luna_log_level_name(luna_log_level level)
{
    if ((int)level < 0 || (size_t)level >= sizeof(luna_log_names) / sizeof(luna_log_names[0]))
        return "unknown";
    return luna_log_names[level];
}

void luna_log_set_fd(int fd)
{
    if (fd >= 0)
        atomic_store(&luna_log_fd, fd);
}
