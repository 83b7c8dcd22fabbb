/*
 * luna_test.h - what every C test shares: cmocka, vector-file lookup and
 * a helper to assert a luna_err.  Tests are cmocka groups; a suite that
 * cannot run here (vectors folder absent) says so on stderr and exits 77,
 * which CTest reports as skipped, never as passed.
 */
#ifndef LUNA_TEST_H
#define LUNA_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "luna/err.h"

#define LUNA_TEST_SKIP 77

#define assert_luna_ok(expr) assert_int_equal(LUNA_OK, (expr))
#define assert_luna_err(code, expr) assert_int_equal((code), (expr))

/*
 * Path of a file under the shared vectors folder (LUNA_VECTORS_DIR, default
 * ../shared/vectors).  Returns a malloc'd string; exits 77 with a loud
 * message when the folder is absent.
 */
char *luna_test_vector_path(const char *relative);

/* Reads a whole file (at most 64 MiB); aborts the test on failure. */
uint8_t *luna_test_read_file(const char *path, size_t *len);

/* Decodes hex into a malloc'd buffer; aborts on bad hex. */
uint8_t *luna_test_unhex(const char *hex, size_t *len);

#endif
