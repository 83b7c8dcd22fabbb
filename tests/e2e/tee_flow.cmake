# e2e.tee_flow: the real SIMULATED platform (luna-tee-host) starting real
# runtimes (luna-tee) on loopback, with an in-test stub attestation service
# and stub KMS (the real ones are other issues' processes): outside
# measurement and a swapped binary, manifest and bundle refusals, the
# admission, the whole /v1/tee/run path with the demo bundle, re-attestation
# evidence with the memory-state digest, sandbox escapes through the real
# runtime, and the memory scan of the runtime and its job child.
luna_add_c_test(e2e tee_flow
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_tee_flow.c
  LIBS luna-tee-common
  EXTRA_LABELS tee attack
  TIMEOUT 240)
add_dependencies(test_e2e_tee_flow luna-tee luna-tee-host lunal-demo-jobs lunal-test-jobs)
