# e2e.attestation_flow: the real luna-attestation against stub peers
# (tests/e2e/test_attestation_peers.c): admission, verification with every
# section 6 field, each refusal reason, history, quarantine by
# re-attestation, reinstatement (with tokens of the real luna-iam), history
# scoped to the token's tenant, the watchdog.
include(${CMAKE_CURRENT_SOURCE_DIR}/support/http_test.cmake)
include(${CMAKE_CURRENT_SOURCE_DIR}/e2e/attestation_peers.cmake)
if(TARGET luna-attestation AND TARGET luna-iam)
  luna_add_c_test(e2e attestation_flow
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/e2e/test_attestation_flow.c
            ${CMAKE_CURRENT_SOURCE_DIR}/support/http_test_util.c
            ${CMAKE_CURRENT_SOURCE_DIR}/support/iam_harness.c
    LIBS luna-attestation-core
    TIMEOUT 240
    EXTRA_LABELS attestation attack)
  target_compile_definitions(test_e2e_attestation_flow PRIVATE
    LUNA_CA_BIN="$<TARGET_FILE:luna-ca>"
    LUNA_HTTP_TEST_SERVER="$<TARGET_FILE:luna-http-test-server>"
    LUNA_ATT_BIN="$<TARGET_FILE:luna-attestation>"
    LUNA_ATT_PEERS_BIN="$<TARGET_FILE:luna-att-test-peers>"
    LUNA_IAM_BIN="$<TARGET_FILE:luna-iam>")
  add_dependencies(test_e2e_attestation_flow luna-ca luna-http-test-server luna-attestation
                   luna-att-test-peers luna-iam)
  # tests/support/iam_harness.c ignores a system() result that glibc's
  # fortified headers flag in optimized builds.
  target_compile_options(test_e2e_attestation_flow PRIVATE -Wno-unused-result)
endif()
