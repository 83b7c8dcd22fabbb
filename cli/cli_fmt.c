/*
 * cli_fmt.c - the human form of an attestation report, in exactly the
 * shape of DESIGN.md section 7, with the honest labels of section 3a for
 * simulated TEEs.  Must never print hardware wording ("Memory Encryption:
 * Active", "Secure Boot: Verified", "genuine TEE environment") for
 * simulated evidence or for a report that did not verify.
 */
#include <string.h>

#include "cli.h"

#define GREEN "\033[32m"
#define RED "\033[31m"
#define BOLD "\033[1m"
#define RESET "\033[0m"

const char *cli_tcb_words(const char *s)
{
    if (strcmp(s, "up_to_date") == 0) return "Up to date";
    if (strcmp(s, "out_of_date") == 0) return "Out of date";
    if (strcmp(s, "revoked") == 0) return "Revoked";
    if (strcmp(s, "sw_hardening_needed") == 0) return "SW hardening needed";
    if (strcmp(s, "configuration_needed") == 0) return "Configuration needed";
    return "Unknown";
}

const char *cli_qe_words(const char *s)
{
    if (strcmp(s, "valid") == 0) return "Valid";
    if (strcmp(s, "out_of_date") == 0) return "Out of date";
    if (strcmp(s, "revoked") == 0) return "Revoked";
    if (strcmp(s, "not_applicable") == 0) return "Not applicable";
    return "Unknown";
}

/* " ✓" or " ✗" after a line, coloured on a terminal. */
static const char *mark(luna_check c, bool color)
{
    if (c == LUNA_CHECK_PASS)
        return color ? " " GREEN "✓" RESET : " ✓";
    if (c == LUNA_CHECK_FAIL)
        return color ? " " RED "✗" RESET : " ✗";
    return "";
}

/* Only a failing line gets a mark where the sample shape has none. */
static const char *fail_mark(luna_check c, bool color)
{
    return c == LUNA_CHECK_FAIL ? mark(c, color) : "";
}

int cli_print_report(FILE *out, const luna_attestation_report *r, bool color)
{
    bool ok = r->verified;
    bool sim = r->simulated || strcmp(r->evidence_type, "sim") == 0;
    const char *dev = r->developer_id[0] ? r->developer_id : "unknown";

    if (ok)
        fprintf(out, "✅ Attestation verification complete for deployment: %s\n",
                r->deployment_id);
    else
        fprintf(out, "%s❌ Attestation verification FAILED for deployment: %s%s\n",
                color ? BOLD RED : "", r->deployment_id, color ? RESET : "");
    fprintf(out, "Deployment ID: %s%s\n", r->deployment_id,
            fail_mark(r->check_registry, color));
    fprintf(out, "Build Hash: %s%s\n", r->build_hash[0] ? r->build_hash : "unknown",
            fail_mark(r->check_build_hash, color));
    fprintf(out, "Verification Time: %s\n", r->verified_at);
    fprintf(out, "TEE Measurements:\n");
    fprintf(out, "MR_ENCLAVE: %s%s\n", r->mr_enclave[0] ? r->mr_enclave : "unknown",
            fail_mark(r->check_measurement, color));
    fprintf(out, "MR_SIGNER: %s%s\n", r->mr_signer[0] ? r->mr_signer : "unknown",
            fail_mark(r->check_signer, color));
    fprintf(out, "Developer Signature: %s%s\n",
            r->check_manifest == LUNA_CHECK_PASS ? "VALID" : "INVALID",
            mark(r->check_manifest, color));
    if (r->developer_name[0])
        fprintf(out, "Developer: %s (%s)\n", r->developer_name, dev);
    else
        fprintf(out, "Developer: %s\n", dev);
    fprintf(out, "Key Fingerprint: %s\n", r->key_id[0] ? r->key_id : "unknown");
    if (r->check_platform != LUNA_CHECK_PASS)
        fprintf(out, "Platform Verification: FAILED%s\n", mark(LUNA_CHECK_FAIL, color));
    else if (sim)
        fprintf(out, "Platform Verification: SIMULATED (development only)%s\n",
                mark(LUNA_CHECK_PASS, color));
    else
        fprintf(out, "Platform Verification: SECURE%s\n", mark(LUNA_CHECK_PASS, color));
    fprintf(out, "TCB Status: %s%s\n", cli_tcb_words(r->tcb_status),
            strcmp(r->tcb_status, "up_to_date") != 0 ? mark(LUNA_CHECK_FAIL, color) : "");
    fprintf(out, "QE Identity: %s\n", cli_qe_words(r->qe_identity_status));
    if (sim) {
        fprintf(out, "Memory Encryption: Not available (simulated TEE, development only)\n");
        fprintf(out, "Secure Boot: Not available (simulated)\n");
    } else if (ok) {
        fprintf(out, "Memory Encryption: Active\n");
        fprintf(out, "Secure Boot: Verified\n");
    } else {
        fprintf(out, "Memory Encryption: Not verified\n");
        fprintf(out, "Secure Boot: Not verified\n");
    }
    if (!ok) {
        fprintf(out, "Reason: %s\n", r->reason[0] ? r->reason : "verification failed");
        fprintf(out, "The deployment could NOT be verified: do not send it data.\n");
        return CLI_FAILED;
    }
    if (sim)
        fprintf(out, "The deployment is running in a SIMULATED TEE for development only: it has "
                     "no hardware protection.\n");
    else
        fprintf(out, "The deployment is running in a genuine TEE environment.\n");
    return CLI_OK;
}
