# e2e.tee_quarantine: every real process of the quarantine path - luna-kms
# with luna-kms-hsm on SoftHSM2, luna-audit, luna-attestation, luna-tee-host
# running luna-tee with the demo bundle - and a TEE restarted from a
# swapped runtime binary: quarantined at the KMS, its OTKs revoked, the
# webhook alert and the audit entry, within one interval; then the audit
# service down refusing an admission (review L6).
include(${CMAKE_CURRENT_SOURCE_DIR}/support/kms_test.cmake)
if(TARGET luna-attestation AND TARGET luna-tee-host AND TARGET luna-audit)
  luna_add_kms_test(e2e tee_quarantine ${CMAKE_CURRENT_SOURCE_DIR}/e2e/test_tee_quarantine.c)
  target_sources(test_e2e_tee_quarantine PRIVATE
    ${CMAKE_CURRENT_SOURCE_DIR}/support/platform_harness.c)
  target_link_libraries(test_e2e_tee_quarantine PRIVATE luna-tee-common)
  target_compile_definitions(test_e2e_tee_quarantine PRIVATE
    LUNA_ATT_BIN="$<TARGET_FILE:luna-attestation>"
    LUNA_AUDIT_BIN="$<TARGET_FILE:luna-audit>")
  add_dependencies(test_e2e_tee_quarantine luna-attestation luna-audit luna-tee-host luna-tee
    lunal-demo-jobs)
  set_property(TEST e2e.tee_quarantine APPEND PROPERTY LABELS attestation tee attack)
endif()
