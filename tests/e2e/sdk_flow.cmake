# e2e.sdk_flow: luna_request end to end over HTTPS against the stub gateway
# (tests/support/sdk_stub_gateway.c): verification, one-time key, double
# envelope, signed result, retry on a dead TEE, refusals, threads.
include(${CMAKE_CURRENT_LIST_DIR}/../support/http_test.cmake)
luna_add_c_test(e2e sdk_flow
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sdk_flow.c
          ${CMAKE_SOURCE_DIR}/tests/support/sdk_fixture.c
          ${CMAKE_SOURCE_DIR}/tests/support/sdk_stub_gateway.c
          ${CMAKE_SOURCE_DIR}/tests/support/http_test_util.c
  LIBS lunal-static
  TIMEOUT 180
  EXTRA_LABELS sdk)
target_include_directories(test_e2e_sdk_flow PRIVATE
  ${CMAKE_SOURCE_DIR}/sdk/src ${CMAKE_SOURCE_DIR}/tests/support)
target_compile_definitions(test_e2e_sdk_flow PRIVATE
  LUNA_CA_BIN="$<TARGET_FILE:luna-ca>"
  LUNA_HTTP_TEST_SERVER="$<TARGET_FILE:luna-http-test-server>")
add_dependencies(test_e2e_sdk_flow luna-ca luna-http-test-server)
