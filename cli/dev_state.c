/*
 * dev_state.c - paths, ports, executables and file writes of the dev
 * platform's state folder.
 *
 * Owns: the layout of the state folder (docs/operations.md) and the
 * component table.  Must never create a file or folder more permissive
 * than asked, follow a symlink when writing, or leave a half-written file
 * under a final name.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "dev_state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Ports: protocol.md's embedded defaults, all relative to the gateway's. */
const dev_comp dev_comps[] = {
    {"iam", "luna-iam", "iam", "lunal://svc/iam", 1, {"serve", "--config", "@CONFIG@", NULL}},
    /* Before the log: the log pushes every checkpoint to it. */
    {"witness", "luna-audit-witness", "audit", "lunal://svc/witness", 6,
     {"--config", "@CONFIG@", NULL}},
    {"audit", "luna-audit", "audit", "lunal://svc/audit", 4, {"--config", "@CONFIG@", NULL}},
    {"attestation", "luna-attestation", "attestation", "lunal://svc/attestation", 3,
     {"--config", "@CONFIG@", NULL}},
    {"kms", "luna-kms", "kms/service", "lunal://svc/kms", 2, {"--config", "@CONFIG@", NULL}},
    {"tee-host", "luna-tee-host", "tee", "lunal://svc/tee-host", 5,
     {"run", "--config", "@CONFIG@", NULL}},
    {"gateway", "luna-gateway", "gateway", "lunal://svc/gateway", 0,
     {"serve", "--config", "@CONFIG@", NULL}},
};
const size_t dev_n_comps = sizeof dev_comps / sizeof dev_comps[0];

luna_err dev_path(const dev_ctx *c, const char *rel, char *out, size_t cap)
{
    LUNA_ENSURE(c != NULL && rel != NULL && out != NULL && cap > 0, LUNA_ERR_INVALID_ARG);
    int n = snprintf(out, cap, "%s/%s", c->dir, rel);
    LUNA_ENSURE(n > 0 && (size_t)n < cap, LUNA_ERR_TOO_LARGE);
    return LUNA_OK;
}

luna_err dev_file(const dev_ctx *c, const char *folder, const char *name, const char *suffix,
                  char *out, size_t cap)
{
    LUNA_ENSURE(c != NULL && folder != NULL && name != NULL && suffix != NULL && out != NULL &&
                    cap > 0,
                LUNA_ERR_INVALID_ARG);
    int n = snprintf(out, cap, "%s/%s/%s%s", c->dir, folder, name, suffix);
    LUNA_ENSURE(n > 0 && (size_t)n < cap, LUNA_ERR_TOO_LARGE);
    return LUNA_OK;
}

unsigned dev_port(const dev_ctx *c, const dev_comp *comp)
{
    return c->port_base + comp->port_off;
}

unsigned dev_tee_port(const dev_ctx *c, unsigned n)
{
    return c->port_base + 7u + n;
}

static bool is_exec_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

luna_err dev_find_binary(const dev_ctx *c, const char *binary, const char *subdir, char *out,
                         size_t cap)
{
    LUNA_ENSURE(c != NULL && binary != NULL && subdir != NULL && out != NULL && cap > 0,
                LUNA_ERR_INVALID_ARG);
    const char *env = secure_getenv("LUNAL_BIN_DIR");
    int n;
    if (env != NULL && env[0] == '/') {
        n = snprintf(out, cap, "%s/%s", env, binary);
        if (n > 0 && (size_t)n < cap && is_exec_file(out))
            return LUNA_OK;
    }
    n = snprintf(out, cap, "%s/../%s/%s", c->bindir, subdir, binary);
    if (n > 0 && (size_t)n < cap && is_exec_file(out)) {
        char *real = realpath(out, NULL);
        if (real != NULL && strlen(real) < cap) {
            memcpy(out, real, strlen(real) + 1);
            free(real);
            return LUNA_OK;
        }
        free(real);
    }
    n = snprintf(out, cap, "%s/%s", c->bindir, binary);
    if (n > 0 && (size_t)n < cap && is_exec_file(out))
        return LUNA_OK;
    out[0] = '\0';
    return LUNA_ERR_NOT_FOUND;
}

luna_err dev_mkdir(const char *path)
{
    LUNA_ENSURE(path != NULL && path[0] != '\0', LUNA_ERR_INVALID_ARG);
    char buf[DEV_PATH_MAX];
    size_t len = strlen(path);
    LUNA_ENSURE(len < sizeof buf, LUNA_ERR_TOO_LARGE);
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        /* Parents made here are search-only for others (like /home): a root
           platform's HSM user must pass through them to reach hsm/. */
        if (mkdir(buf, i == len ? 0700 : 0711) != 0 && errno != EEXIST)
            return errno == EACCES ? LUNA_ERR_PERMISSION : LUNA_ERR_IO;
        buf[i] = saved;
    }
    struct stat st;
    if (lstat(path, &st) != 0)
        return LUNA_ERR_IO;
    if (!S_ISDIR(st.st_mode))
        return LUNA_ERR_CONFIG;
    /* The state folder holds the CA key and every component's key.  Search
       (x) alone is allowed: a root platform lets the HSM user reach hsm/. */
    if (st.st_uid != geteuid() || (st.st_mode & 0066) != 0)
        return LUNA_ERR_PERMISSION;
    return LUNA_OK;
}

luna_err dev_write_file(const char *path, const void *data, size_t len, unsigned mode)
{
    LUNA_ENSURE(path != NULL && (data != NULL || len == 0), LUNA_ERR_INVALID_ARG);
    char tmp[DEV_PATH_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
    LUNA_ENSURE(n > 0 && (size_t)n < sizeof tmp, LUNA_ERR_TOO_LARGE);
    (void)unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return LUNA_ERR_IO;
    bool ok = fchmod(fd, (mode_t)mode) == 0;
    const unsigned char *p = data;
    size_t left = len;
    while (ok && left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            ok = false;
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    ok = ok && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        (void)unlink(tmp);
        return LUNA_ERR_IO;
    }
    return LUNA_OK;
}

bool dev_exists(const char *path)
{
    struct stat st;
    return path != NULL && lstat(path, &st) == 0;
}
