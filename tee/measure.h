/*
 * measure.h - how the SIMULATED platform measures a runtime from outside
 * (docs/tee.md, "Measurement").  Everything is read through /proc/<pid>:
 * the executable the process actually maps (/proc/<pid>/exe, which is the
 * mapped file even when the path on disk was replaced), the job bundle it
 * mapped (/proc/<pid>/map_files/<range> of the mapping the runtime names,
 * never a path on disk), and the runtime's memory-state region
 * (/proc/<pid>/mem).  Needs CAP_SYS_PTRACE and CAP_SYS_ADMIN over the
 * runtime (the host runs as root; the runtime is not dumpable).
 *
 *   mr_enclave = SHA-256("lunal sim mr_enclave v2" || SHA-256(exe)
 *                        || SHA-256(bundle) || config_hash)
 *   config_hash = SHA-256("lunal sim config v1" || u8 len || deployment_id
 *                        || u8 len || developer_id || developer_pk(32)
 *                        || u64be cpu_seconds || u64be wall_ms
 *                        || u64be mem_bytes || u64be result_max
 *                        || u64be scratch_bytes)
 *   Only what defines the deployment's code and behaviour is measured;
 *   per-instance fields (listen address/port, CA and KMS endpoints) are
 *   not, so every TEE of one deployment measures the same.
 *   memory_digest = SHA-256("lunal sim memory v1" || u64be(len) || bytes)
 *
 * Thread safety: no state.  Nothing here logs.
 */
#ifndef LUNA_TEE_MEASURE_H
#define LUNA_TEE_MEASURE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "luna/err.h"
#include "tee_config.h"

#define LUNA_TEE_MEASURE_FILE_MAX (256u * 1024u * 1024u)
#define LUNA_TEE_MR_ENCLAVE_LABEL "lunal sim mr_enclave v2"
#define LUNA_TEE_CONFIG_LABEL "lunal sim config v1"
#define LUNA_TEE_MEMORY_LABEL "lunal sim memory v1"

/* SHA-256 of a whole regular file read through fd (at most FILE_MAX bytes). */
luna_err luna_tee_hash_fd(int fd, uint8_t out[32]) LUNA_MUST_CHECK;
/* Same by path (the offline `measure` tool; never used on a live runtime). */
luna_err luna_tee_hash_path(const char *path, uint8_t out[32]) LUNA_MUST_CHECK;
/* SHA-256 of the executable mapped by pid. */
luna_err luna_tee_measure_exe(pid_t pid, uint8_t out[32]) LUNA_MUST_CHECK;
/*
 * SHA-256 of the file whose mapping in pid starts at addr with file
 * offset 0.  LUNA_ERR_NOT_FOUND when no such mapping exists.
 */
luna_err luna_tee_measure_mapping(pid_t pid, uint64_t addr, uint8_t out[32]) LUNA_MUST_CHECK;
/* config_hash of a parsed runtime config (formula above). */
luna_err luna_tee_config_hash(const luna_tee_config *config, uint8_t out[32]) LUNA_MUST_CHECK;
/* mr_enclave from the executable, bundle and config hashes (formula above). */
luna_err luna_tee_mr_enclave(const uint8_t exe[32], const uint8_t bundle[32],
                             const uint8_t config_hash[32], uint8_t out[32]) LUNA_MUST_CHECK;
/* memory_digest of pid's bytes [addr, addr + len) (formula above). */
luna_err luna_tee_memory_digest(pid_t pid, uint64_t addr, uint64_t len,
                                uint8_t out[32]) LUNA_MUST_CHECK;
/* memory_digest of len zero bytes: what a freshly reset region gives. */
luna_err luna_tee_memory_digest_zero(uint64_t len, uint8_t out[32]) LUNA_MUST_CHECK;

#endif
