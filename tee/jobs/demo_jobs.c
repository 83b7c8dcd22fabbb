/*
 * demo_jobs.c - the demo job bundle (liblunal-demo-jobs.so): word
 * statistics of a text, SHA-256 of the input, and JSON field redaction.
 * Runs only inside the runtime's sandboxed child (job_abi.h).  Must never
 * keep plaintext outside io->in, io->out and io->scratch (all locked and
 * wiped by the runtime), never touch the network or the file system.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "job_abi.h"

const luna_tee_bundle_def *luna_tee_bundle_v1(void);

enum { JOB_OK = 0, JOB_BAD_INPUT = 1, JOB_NO_ROOM = 2 };

static bool is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int finish_text(luna_tee_job_io *io, int n)
{
    if (n < 0 || (size_t)n >= io->out_cap)
        return JOB_NO_ROOM;
    io->out_len = (size_t)n;
    return JOB_OK;
}

/* wordstats: counts of a UTF-8 (or any) text; words are runs of non-space bytes. */
static int job_wordstats(luna_tee_job_io *io)
{
    uint64_t lines = 0, words = 0, chars = 0, longest = 0, cur = 0;
    for (size_t i = 0; i < io->in_len; i++) {
        uint8_t c = io->in[i];
        if ((c & 0xc0u) != 0x80u)
            chars++;
        if (c == '\n')
            lines++;
        if (is_space(c)) {
            cur = 0;
        } else {
            if (cur == 0)
                words++;
            cur++;
            if (cur > longest)
                longest = cur;
        }
    }
    if (io->in_len > 0 && io->in[io->in_len - 1] != '\n')
        lines++;
    int n = snprintf((char *)io->out, io->out_cap,
                     "{\"bytes\":%zu,\"chars\":%llu,\"lines\":%llu,\"words\":%llu,"
                     "\"longest_word\":%llu}",
                     io->in_len, (unsigned long long)chars, (unsigned long long)lines,
                     (unsigned long long)words, (unsigned long long)longest);
    return finish_text(io, n);
}

/* sha256: the digest of the input, as lowercase hex in JSON. */
static int job_sha256(luna_tee_job_io *io)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t md[SHA256_DIGEST_LENGTH];
    char mdhex[2 * SHA256_DIGEST_LENGTH + 1];
    if (SHA256(io->in, io->in_len, md) == NULL)
        return JOB_BAD_INPUT;
    for (size_t i = 0; i < sizeof(md); i++) {
        mdhex[2 * i] = hex[md[i] >> 4];
        mdhex[2 * i + 1] = hex[md[i] & 0x0f];
    }
    mdhex[sizeof(mdhex) - 1] = '\0';
    int n = snprintf((char *)io->out, io->out_cap, "{\"bytes\":%zu,\"sha256\":\"%s\"}",
                     io->in_len, mdhex);
    return finish_text(io, n);
}

/*
 * redact: input {"fields":["name",...],"data":<JSON>}; output data with the
 * value of every object member named in fields (at any depth) replaced by
 * "[REDACTED]".  jansson allocates from io->scratch (a bump allocator), so
 * the parsed plaintext stays in locked memory.
 */
#define REDACT_MAX_FIELDS 64
#define REDACT_MAX_DEPTH 64

static uint8_t *bump_base;
static size_t bump_cap, bump_off;

static void *bump_alloc(size_t n)
{
    size_t need = (n + 15u) & ~(size_t)15u;
    if (need < n || need > bump_cap - bump_off)
        return NULL;
    void *p = bump_base + bump_off;
    bump_off += need;
    return p;
}

static void bump_free(void *p)
{
    (void)p; /* the child exits after the job; the runtime wipes scratch */
}

static bool field_listed(const char *key, json_t *fields)
{
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f) {
        if (strcmp(json_string_value(f), key) == 0)
            return true;
    }
    return false;
}

static int redact_walk(json_t *v, json_t *fields, int depth)
{
    if (depth > REDACT_MAX_DEPTH)
        return JOB_BAD_INPUT;
    if (json_is_object(v)) {
        const char *key;
        json_t *child;
        json_object_foreach(v, key, child) {
            if (field_listed(key, fields)) {
                if (json_object_set_new(v, key, json_string("[REDACTED]")) != 0)
                    return JOB_NO_ROOM;
            } else {
                int rc = redact_walk(child, fields, depth + 1);
                if (rc != JOB_OK)
                    return rc;
            }
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child) {
            int rc = redact_walk(child, fields, depth + 1);
            if (rc != JOB_OK)
                return rc;
        }
    }
    return JOB_OK;
}

static int job_redact(luna_tee_job_io *io)
{
    bump_base = io->scratch;
    bump_cap = io->scratch_cap;
    bump_off = 0;
    json_set_alloc_funcs(bump_alloc, bump_free);

    json_error_t jerr;
    json_t *root = json_loadb((const char *)io->in, io->in_len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL || !json_is_object(root) || json_object_size(root) != 2)
        return JOB_BAD_INPUT;
    json_t *fields = json_object_get(root, "fields");
    json_t *data = json_object_get(root, "data");
    if (!json_is_array(fields) || data == NULL || json_array_size(fields) > REDACT_MAX_FIELDS)
        return JOB_BAD_INPUT;
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f) {
        if (!json_is_string(f))
            return JOB_BAD_INPUT;
    }
    int rc = redact_walk(data, fields, 0);
    if (rc != JOB_OK)
        return rc;
    size_t n = json_dumpb(data, (char *)io->out, io->out_cap, JSON_COMPACT | JSON_ENCODE_ANY);
    if (n == 0 || n > io->out_cap)
        return JOB_NO_ROOM;
    io->out_len = n;
    return JOB_OK;
}

static const luna_tee_job_def demo_jobs[] = {
    {"wordstats", job_wordstats},
    {"sha256", job_sha256},
    {"redact", job_redact},
};

static const luna_tee_bundle_def demo_bundle = {
    LUNA_TEE_JOB_ABI_VERSION, sizeof(demo_jobs) / sizeof(demo_jobs[0]), demo_jobs};

__attribute__((visibility("default"))) const luna_tee_bundle_def *luna_tee_bundle_v1(void)
{
    return &demo_bundle;
}
