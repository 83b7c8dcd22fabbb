/*
 * measure.c - the SIMULATED platform's outside view of a runtime: hashes
 * of what the process maps, read through /proc, and the measurement and
 * memory-state formulas (measure.h).  Must never measure a path on disk
 * for a live process, and never read more than its caps.
 */
#include "measure.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "luna/bytes.h"
#include "luna/crypto.h"

luna_err luna_tee_hash_fd(int fd, uint8_t out[32])
{
    struct stat st;
    if (fd < 0 || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return LUNA_ERR_IO;
    if (st.st_size < 0 || (uint64_t)st.st_size > LUNA_TEE_MEASURE_FILE_MAX)
        return LUNA_ERR_TOO_LARGE;
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size > 0 ? size : 1);
    if (buf == NULL)
        return LUNA_ERR_NOMEM;
    size_t got = 0;
    luna_err err = LUNA_OK;
    while (got < size) {
        ssize_t n = pread(fd, buf + got, size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err = LUNA_ERR_IO; /* changed under us: refuse rather than guess */
            break;
        }
        got += (size_t)n;
    }
    if (err == LUNA_OK)
        err = luna_sha256(buf, size, out);
    free(buf);
    return err;
}

luna_err luna_tee_hash_path(const char *path, uint8_t out[32])
{
    if (path == NULL)
        return LUNA_ERR_INVALID_ARG;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? LUNA_ERR_NOT_FOUND : LUNA_ERR_IO;
    luna_err err = luna_tee_hash_fd(fd, out);
    close(fd);
    return err;
}

luna_err luna_tee_measure_exe(pid_t pid, uint8_t out[32])
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
    /* open() follows the magic link to the mapped inode itself. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? LUNA_ERR_NOT_FOUND : LUNA_ERR_PERMISSION;
    luna_err err = luna_tee_hash_fd(fd, out);
    close(fd);
    return err;
}

luna_err luna_tee_measure_mapping(pid_t pid, uint64_t addr, uint8_t out[32])
{
    char path[96];
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    FILE *maps = fopen(path, "re");
    if (maps == NULL)
        return LUNA_ERR_NOT_FOUND;
    char line[4096 + 128];
    uint64_t lo = 0, hi = 0;
    bool found = false;
    while (fgets(line, sizeof(line), maps) != NULL) {
        uint64_t a, b, off;
        char perms[8];
        if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64, &a, &b, perms, &off) != 4)
            continue;
        if (a == addr && off == 0) {
            lo = a;
            hi = b;
            found = true;
            break;
        }
    }
    fclose(maps);
    if (!found)
        return LUNA_ERR_NOT_FOUND;
    snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)pid, lo, hi);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? LUNA_ERR_NOT_FOUND : LUNA_ERR_PERMISSION;
    luna_err err = luna_tee_hash_fd(fd, out);
    close(fd);
    return err;
}

static void put_u64be(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

luna_err luna_tee_config_hash(const luna_tee_config *config, uint8_t out[32])
{
    if (config == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    size_t dl = strlen(config->deployment_id), vl = strlen(config->developer_id);
    if (dl > LUNA_TEE_CONFIG_ID_MAX || vl > LUNA_TEE_CONFIG_ID_MAX || dl > 255 || vl > 255)
        return LUNA_ERR_INVALID_ARG;
    uint8_t msg[sizeof(LUNA_TEE_CONFIG_LABEL) - 1 + 2 * (1 + LUNA_TEE_CONFIG_ID_MAX) + 32 + 5 * 8];
    size_t l = sizeof(LUNA_TEE_CONFIG_LABEL) - 1;
    memcpy(msg, LUNA_TEE_CONFIG_LABEL, l);
    msg[l++] = (uint8_t)dl;
    memcpy(msg + l, config->deployment_id, dl);
    l += dl;
    msg[l++] = (uint8_t)vl;
    memcpy(msg + l, config->developer_id, vl);
    l += vl;
    memcpy(msg + l, config->developer_pk, 32);
    l += 32;
    put_u64be(msg + l, config->limits.cpu_seconds);
    put_u64be(msg + l + 8, config->limits.wall_ms);
    put_u64be(msg + l + 16, config->limits.mem_bytes);
    put_u64be(msg + l + 24, config->limits.result_max);
    put_u64be(msg + l + 32, config->limits.scratch_bytes);
    l += 40;
    return luna_sha256(msg, l, out);
}

luna_err luna_tee_mr_enclave(const uint8_t exe[32], const uint8_t bundle[32],
                             const uint8_t config_hash[32], uint8_t out[32])
{
    if (exe == NULL || bundle == NULL || config_hash == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    uint8_t msg[sizeof(LUNA_TEE_MR_ENCLAVE_LABEL) - 1 + 3 * 32];
    size_t l = sizeof(LUNA_TEE_MR_ENCLAVE_LABEL) - 1;
    memcpy(msg, LUNA_TEE_MR_ENCLAVE_LABEL, l);
    memcpy(msg + l, exe, 32);
    memcpy(msg + l + 32, bundle, 32);
    memcpy(msg + l + 64, config_hash, 32);
    return luna_sha256(msg, sizeof(msg), out);
}

static luna_err digest_bytes(const uint8_t *bytes, uint64_t len, uint8_t out[32])
{
    size_t l = sizeof(LUNA_TEE_MEMORY_LABEL) - 1;
    if (len > SIZE_MAX - l - 8)
        return LUNA_ERR_TOO_LARGE;
    uint8_t *msg = malloc(l + 8 + (size_t)len);
    if (msg == NULL)
        return LUNA_ERR_NOMEM;
    memcpy(msg, LUNA_TEE_MEMORY_LABEL, l);
    for (int i = 0; i < 8; i++)
        msg[l + (size_t)i] = (uint8_t)(len >> (56 - 8 * i));
    if (bytes != NULL)
        memcpy(msg + l + 8, bytes, (size_t)len);
    else
        memset(msg + l + 8, 0, (size_t)len);
    luna_err err = luna_sha256(msg, l + 8 + (size_t)len, out);
    luna_wipe(msg, l + 8 + (size_t)len);
    free(msg);
    return err;
}

luna_err luna_tee_memory_digest_zero(uint64_t len, uint8_t out[32])
{
    if (out == NULL || len == 0 || len > LUNA_TEE_MEASURE_FILE_MAX)
        return LUNA_ERR_INVALID_ARG;
    return digest_bytes(NULL, len, out);
}

luna_err luna_tee_memory_digest(pid_t pid, uint64_t addr, uint64_t len, uint8_t out[32])
{
    if (out == NULL || len == 0 || len > LUNA_TEE_MEASURE_FILE_MAX || addr > INT64_MAX - len)
        return LUNA_ERR_INVALID_ARG;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return LUNA_ERR_PERMISSION;
    uint8_t *buf = malloc((size_t)len);
    luna_err err = buf == NULL ? LUNA_ERR_NOMEM : LUNA_OK;
    size_t got = 0;
    while (err == LUNA_OK && got < len) {
        ssize_t n = pread(fd, buf + got, (size_t)len - got, (off_t)(addr + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            err = LUNA_ERR_IO;
        else
            got += (size_t)n;
    }
    close(fd);
    if (err == LUNA_OK)
        err = digest_bytes(buf, len, out);
    if (buf != NULL) {
        luna_wipe(buf, (size_t)len);
        free(buf);
    }
    return err;
}
