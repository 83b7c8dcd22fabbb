/*
 * secret.c - guard-paged, locked, undumpable memory for secrets, and the
 * process hardening every daemon applies at start.  Must never copy a
 * secret anywhere it does not wipe, and never log one.
 *
 * Layout: the bytes sit flush against a trailing PROT_NONE guard page, so
 * any overrun faults at once; a leading guard page catches underruns.  The
 * bookkeeping lives in a separate small heap block, so a stray write near
 * the secret cannot corrupt the lengths later given to munmap.
 */
#include "luna/secret.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "luna/bytes.h"

struct luna_secret {
    uint8_t *data;   /* len bytes, ending at the trailing guard page */
    size_t len;
    uint8_t *base;   /* the whole mapping, guard pages included */
    size_t map_len;
    bool locked;
};

#ifdef LUNA_TESTING
static luna_secret_free_hook secret_free_hook;

void luna_secret_set_free_hook(luna_secret_free_hook hook)
{
    secret_free_hook = hook;
}
#endif

static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096u;
}

luna_err luna_secret_new(size_t len, luna_secret **out)
{
    if (out == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    if (len == 0 || len > LUNA_SECRET_MAX)
        return LUNA_ERR_INVALID_ARG;

    size_t pg = page_size();
    size_t body = (len + pg - 1) / pg * pg;
    size_t map_len = body + 2 * pg;
    struct luna_secret *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return LUNA_ERR_NOMEM;
    uint8_t *base = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
        free(s);
        return LUNA_ERR_NOMEM;
    }
    if (mprotect(base, pg, PROT_NONE) != 0 || mprotect(base + pg + body, pg, PROT_NONE) != 0) {
        munmap(base, map_len);
        free(s);
        return LUNA_ERR_NOMEM;
    }
    (void)madvise(base + pg, body, MADV_DONTDUMP);
    s->base = base;
    s->map_len = map_len;
    s->len = len;
    s->data = base + pg + body - len;
    /* mlock can fail under RLIMIT_MEMLOCK; the secret is still undumpable
     * and wiped, and luna_secret_is_locked() tells the caller, who decides
     * whether that is acceptable (a daemon can refuse to start). */
    s->locked = mlock(base + pg, body) == 0;
    *out = s;
    return LUNA_OK;
}

bool luna_secret_is_locked(const luna_secret *s)
{
    return s != NULL && s->locked;
}

luna_err luna_secret_from(const void *src, size_t len, luna_secret **out)
{
    if (src == NULL)
        return LUNA_ERR_INVALID_ARG;
    LUNA_GUARD(luna_secret_new(len, out));
    memcpy((*out)->data, src, len);
    return LUNA_OK;
}

uint8_t *luna_secret_data(luna_secret *s)
{
    return s != NULL ? s->data : NULL;
}

const uint8_t *luna_secret_cdata(const luna_secret *s)
{
    return s != NULL ? s->data : NULL;
}

size_t luna_secret_len(const luna_secret *s)
{
    return s != NULL ? s->len : 0;
}

void luna_secret_free(luna_secret *s)
{
    if (s == NULL)
        return;
    size_t pg = page_size();
    size_t body = s->map_len - 2 * pg;

    luna_wipe(s->data, s->len);
#ifdef LUNA_TESTING
    if (secret_free_hook != NULL)
        secret_free_hook(s->data, s->len);
#endif
    if (s->locked)
        (void)munlock(s->base + pg, body);
    munmap(s->base, s->map_len);
    luna_wipe(s, sizeof(*s));
    free(s);
}

luna_err luna_process_harden(void)
{
    struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0)
        return LUNA_ERR_INTERNAL;
    /* Not dumpable: no core file and no ptrace attach by same-uid peers. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        return LUNA_ERR_INTERNAL;
    return LUNA_OK;
}
