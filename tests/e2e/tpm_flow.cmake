# e2e.tpm_flow: the live TPM path in the full flow (docs/tpm-live.md):
# two swtpm (started and killed by the test), luna-kms with luna-kms-hsm on
# SoftHSM2, luna-audit, luna-attestation and luna-tee-host in platform
# "tpm" running luna-tee: TPM evidence admitted, a one-time key released
# after the KMS's own verification, an unenrolled TPM and a changed PCR
# refused, a changed runtime quarantined.
include(${CMAKE_CURRENT_SOURCE_DIR}/support/kms_test.cmake)
if(TARGET luna-attestation AND TARGET luna-tee-host AND TARGET luna-audit)
  luna_add_kms_test(e2e tpm_flow ${CMAKE_CURRENT_SOURCE_DIR}/e2e/test_tpm_flow.c)
  target_sources(test_e2e_tpm_flow PRIVATE
    ${CMAKE_CURRENT_SOURCE_DIR}/support/platform_harness.c)
  target_link_libraries(test_e2e_tpm_flow PRIVATE luna-tee-common luna-tee-tpm)
  target_compile_definitions(test_e2e_tpm_flow PRIVATE
    LUNA_ATT_BIN="$<TARGET_FILE:luna-attestation>"
    LUNA_AUDIT_BIN="$<TARGET_FILE:luna-audit>")
  add_dependencies(test_e2e_tpm_flow luna-attestation luna-audit luna-tee-host luna-tee
    lunal-demo-jobs)
  set_property(TEST e2e.tpm_flow APPEND PROPERTY LABELS attestation tee tpm attack)
  set_property(TEST e2e.tpm_flow PROPERTY TIMEOUT 120)
endif()
