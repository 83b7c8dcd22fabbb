/*
 * luna_test.c - shared test helpers.  Test-only; never linked into a
 * component.
 */
#include "luna_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "luna/bytes.h"

char *luna_test_vector_path(const char *relative)
{
    const char *dir = getenv("LUNA_VECTORS_DIR");
    struct stat st;

    if (dir == NULL || dir[0] == '\0')
        dir = "../shared/vectors";
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr,
                "\n*** SKIPPED: shared test vectors not found at '%s'.\n"
                "*** Set LUNA_VECTORS_DIR to the vectors folder; this suite did NOT run.\n\n",
                dir);
        exit(LUNA_TEST_SKIP);
    }
    size_t n = strlen(dir) + strlen(relative) + 2;
    char *path = malloc(n);
    if (path == NULL)
        abort();
    snprintf(path, n, "%s/%s", dir, relative);
    return path;
}

uint8_t *luna_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        abort();
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        abort();
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        if (cap >= (64u << 20))
            abort();
        cap *= 2;
        uint8_t *nb = realloc(buf, cap);
        if (nb == NULL)
            abort();
        buf = nb;
    }
    fclose(f);
    *len = n;
    return buf;
}

uint8_t *luna_test_unhex(const char *hex, size_t *len)
{
    size_t hl = strlen(hex);
    uint8_t *out = malloc(hl / 2 + 1);
    if (out == NULL)
        abort();
    if (luna_hex_decode(hex, hl, out, hl / 2 + 1, len) != LUNA_OK) {
        fprintf(stderr, "bad hex in test data: %.40s\n", hex);
        abort();
    }
    return out;
}
