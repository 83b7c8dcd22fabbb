/*
 * fuzz_tee_config.c - the TEE runtime's measured config parser
 * (tee/tee_config.c).  Property: no crash, and an accepted config has its
 * limits inside the sandbox's ranges.  The module is compiled in directly:
 * the fuzz build links only luna-core.
 */
#include <stdlib.h>

#include "../tee/tee_config.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    luna_tee_config c;
    char msg[256];
    if (luna_tee_config_parse(data, size, &c, msg, sizeof(msg)) != LUNA_OK)
        return 0;
    if (c.limits.cpu_seconds < 1 || c.limits.cpu_seconds > 3600 || c.limits.result_max < 1 ||
        c.limits.result_max > LUNA_TEE_RESULT_MAX_CAP || c.limits.scratch_bytes < 4096 ||
        c.limits.scratch_bytes > LUNA_TEE_SCRATCH_MAX_CAP || c.listen_port == 0 ||
        c.kms_port == 0)
        abort();
    return 0;
}
