# e2e.tpm_live: a real software TPM (swtpm, started and killed by the
# test, state in a temporary folder) against the verifier side of
# luna/tpm.h: AK-to-EK enrolment through MakeCredential/ActivateCredential
# and quote appraisal with its refusals (docs/tpm-live.md).
luna_add_c_test(e2e tpm_live
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_tpm_live.c
  LIBS luna-tee-tpm
  EXTRA_LABELS tpm attack
  TIMEOUT 180)
