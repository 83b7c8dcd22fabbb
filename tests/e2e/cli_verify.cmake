# e2e.cli_verify: the `lunal` binary against the stub gateway: the human
# report's every line, --json with the DESIGN.md section 6 fields, a
# quarantined TEE, batch and --all, request, exit statuses.
include(${CMAKE_CURRENT_LIST_DIR}/../support/http_test.cmake)
if(TARGET lunal)
  luna_add_c_test(e2e cli_verify
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cli_verify.c
            ${CMAKE_SOURCE_DIR}/tests/support/sdk_fixture.c
            ${CMAKE_SOURCE_DIR}/tests/support/sdk_stub_gateway.c
            ${CMAKE_SOURCE_DIR}/tests/support/http_test_util.c
    LIBS lunal-static
    TIMEOUT 180
    EXTRA_LABELS cli sdk)
  target_include_directories(test_e2e_cli_verify PRIVATE ${CMAKE_SOURCE_DIR}/tests/support)
  target_compile_definitions(test_e2e_cli_verify PRIVATE
    LUNA_CA_BIN="$<TARGET_FILE:luna-ca>"
    LUNA_HTTP_TEST_SERVER="$<TARGET_FILE:luna-http-test-server>"
    LUNAL_BIN="$<TARGET_FILE:lunal>"
    LUNAL_EXAMPLE_BIN="$<TARGET_FILE:lunal-example>")
  add_dependencies(test_e2e_cli_verify luna-ca luna-http-test-server lunal lunal-example)
endif()
