# e2e.gateway_flow: the real luna-gateway and luna-iam processes with the
# test stubs of gateway/test/gw_stub.c for the KMS registry, attestation
# service, audit log and TEEs (labels e2e, gateway).
include(${CMAKE_CURRENT_LIST_DIR}/../support/http_test.cmake)
luna_add_c_test(e2e gateway_flow
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_gateway_flow.c
          ${CMAKE_SOURCE_DIR}/gateway/test/gw_harness.c
          ${CMAKE_SOURCE_DIR}/tests/support/iam_harness.c
          ${CMAKE_SOURCE_DIR}/tests/support/http_test_util.c
  TIMEOUT 240
  EXTRA_LABELS gateway)
target_include_directories(test_e2e_gateway_flow PRIVATE ${CMAKE_SOURCE_DIR}/gateway/test)
target_compile_definitions(test_e2e_gateway_flow PRIVATE
  LUNA_CA_BIN="$<TARGET_FILE:luna-ca>"
  LUNA_HTTP_TEST_SERVER="$<TARGET_FILE:luna-http-test-server>"
  LUNA_IAM_BIN="$<TARGET_FILE:luna-iam>"
  LUNA_GATEWAY_BIN="$<TARGET_FILE:luna-gateway>"
  LUNA_GW_STUB_BIN="$<TARGET_FILE:luna-gw-stub>")
add_dependencies(test_e2e_gateway_flow luna-ca luna-iam luna-gateway luna-gw-stub
  luna-http-test-server)
# tests/support/iam_harness.c (not ours) ignores a system() result that
# glibc's fortified headers flag in optimized builds.
target_compile_options(test_e2e_gateway_flow PRIVATE -Wno-unused-result)
