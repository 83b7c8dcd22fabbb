# Shared by tests/e2e/http.cmake and tests/attack/mtls.cmake: the test
# server process and a helper registering a test that drives it with the
# real luna-ca tool.
include_guard(GLOBAL)
set(LUNA_HTTP_TEST_SUPPORT_DIR ${CMAKE_CURRENT_LIST_DIR})

add_executable(luna-http-test-server ${CMAKE_CURRENT_LIST_DIR}/http_test_server.c)
target_link_libraries(luna-http-test-server PRIVATE luna-core)

# luna_add_http_test(<label> <name> <source>)
function(luna_add_http_test label name source)
  luna_add_c_test(${label} ${name}
    SOURCES ${source} ${LUNA_HTTP_TEST_SUPPORT_DIR}/http_test_util.c
    TIMEOUT 180)
  target_compile_definitions(test_${label}_${name} PRIVATE
    LUNA_CA_BIN="$<TARGET_FILE:luna-ca>"
    LUNA_HTTP_TEST_SERVER="$<TARGET_FILE:luna-http-test-server>")
  add_dependencies(test_${label}_${name} luna-ca luna-http-test-server)
endfunction()
