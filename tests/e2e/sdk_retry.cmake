# e2e.sdk_retry: the SDK's pause between attempts against the stub gateway
# (tests/support/sdk_stub_gateway.c): Retry-After honoured (capped) with
# jitter, a 429 asking for too long not retried, the whole request inside
# the client's timeout (docs/sdk.md "Retries").  About 4 s.
include(${CMAKE_CURRENT_LIST_DIR}/../support/http_test.cmake)
luna_add_c_test(e2e sdk_retry
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sdk_retry.c
          ${CMAKE_SOURCE_DIR}/tests/support/sdk_fixture.c
          ${CMAKE_SOURCE_DIR}/tests/support/sdk_stub_gateway.c
          ${CMAKE_SOURCE_DIR}/tests/support/http_test_util.c
  LIBS lunal-static
  TIMEOUT 120
  EXTRA_LABELS sdk)
target_include_directories(test_e2e_sdk_retry PRIVATE
  ${CMAKE_SOURCE_DIR}/sdk/src ${CMAKE_SOURCE_DIR}/tests/support)
target_compile_definitions(test_e2e_sdk_retry PRIVATE
  LUNA_CA_BIN="$<TARGET_FILE:luna-ca>"
  LUNA_HTTP_TEST_SERVER="$<TARGET_FILE:luna-http-test-server>")
add_dependencies(test_e2e_sdk_retry luna-ca luna-http-test-server)
