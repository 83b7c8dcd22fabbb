# attack.gateway_routes: the gateway's relayed admin and query routes
# (gateway/src/gw_relay.c) attacked through the real luna-gateway and
# luna-iam processes and the test stubs (gateway/test/gw_harness.c): role
# boundaries, cross-tenant reach, tenants in bodies and queries, path
# traversal, encoded slashes, overlong ids, unknown query parameters.
if(TARGET luna-gateway AND TARGET luna-iam AND TARGET luna-gw-stub)
  include(${CMAKE_CURRENT_LIST_DIR}/../support/http_test.cmake)
  luna_add_c_test(attack gateway_routes
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_gateway_routes.c
            ${CMAKE_SOURCE_DIR}/gateway/test/gw_harness.c
            ${CMAKE_SOURCE_DIR}/tests/support/iam_harness.c
            ${CMAKE_SOURCE_DIR}/tests/support/http_test_util.c
    TIMEOUT 180
    EXTRA_LABELS gateway)
  target_include_directories(test_attack_gateway_routes PRIVATE ${CMAKE_SOURCE_DIR}/gateway/test)
  target_compile_definitions(test_attack_gateway_routes PRIVATE
    LUNA_CA_BIN="$<TARGET_FILE:luna-ca>"
    LUNA_HTTP_TEST_SERVER="$<TARGET_FILE:luna-http-test-server>"
    LUNA_IAM_BIN="$<TARGET_FILE:luna-iam>"
    LUNA_GATEWAY_BIN="$<TARGET_FILE:luna-gateway>"
    LUNA_GW_STUB_BIN="$<TARGET_FILE:luna-gw-stub>")
  add_dependencies(test_attack_gateway_routes luna-ca luna-iam luna-gateway luna-gw-stub
    luna-http-test-server)
  # tests/support/iam_harness.c (not ours) ignores a system() result that
  # glibc's fortified headers flag in optimized builds.
  target_compile_options(test_attack_gateway_routes PRIVATE -Wno-unused-result)
endif()
