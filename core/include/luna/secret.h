/*
 * luna/secret.h - the one type for secrets held in memory.
 *
 * A luna_secret lives in its own mmap'd pages, flush against a trailing
 * guard page (an overrun faults) with a leading one too, mlock'ed (kept
 * out of swap; luna_secret_is_locked says whether that worked) and marked
 * MADV_DONTDUMP (kept out of core dumps); luna_secret_free wipes it before
 * unmapping.  Short-lived
 * fixed-size secrets on the stack use luna_wipe() on every path instead.
 * Nothing here ever logs or prints the bytes.
 */
#ifndef LUNA_SECRET_H
#define LUNA_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "luna/err.h"

typedef struct luna_secret luna_secret;

/* Allocates len zeroed bytes (1 <= len <= LUNA_SECRET_MAX). */
#define LUNA_SECRET_MAX (64u * 1024u * 1024u)
luna_err luna_secret_new(size_t len, luna_secret **out) LUNA_MUST_CHECK;
/* Copies len bytes from src into a new secret. */
luna_err luna_secret_from(const void *src, size_t len, luna_secret **out) LUNA_MUST_CHECK;
uint8_t *luna_secret_data(luna_secret *s);
const uint8_t *luna_secret_cdata(const luna_secret *s);
size_t luna_secret_len(const luna_secret *s);
/* Whether mlock succeeded (false under a too small RLIMIT_MEMLOCK). */
bool luna_secret_is_locked(const luna_secret *s);
/* Wipes, unlocks and unmaps; NULL is a no-op. */
void luna_secret_free(luna_secret *s);

/*
 * Process hardening every daemon calls first: no core dumps
 * (RLIMIT_CORE=0, PR_SET_DUMPABLE=0, which also forbids ptrace attach by
 * non-root peers).
 */
luna_err luna_process_harden(void) LUNA_MUST_CHECK;

#ifdef LUNA_TESTING
/*
 * Test hook: called by luna_secret_free after the wipe and before the
 * unmap with the secret's bytes as they are at free time, so a test can
 * prove they are all zero without reading freed memory.
 */
typedef void (*luna_secret_free_hook)(const uint8_t *bytes, size_t len);
void luna_secret_set_free_hook(luna_secret_free_hook hook);
#endif

#endif
