# Shared by tests/*/iam_*.cmake: registers a test that drives the real
# luna-iam process (through tests/support/iam_harness.c) with the label iam.
include_guard(GLOBAL)
include(${CMAKE_CURRENT_LIST_DIR}/http_test.cmake)
set(LUNA_IAM_TEST_SUPPORT_DIR ${CMAKE_CURRENT_LIST_DIR})

# luna_add_iam_process_test(<label> <name> <source>)
function(luna_add_iam_process_test label name source)
  luna_add_c_test(${label} ${name}
    SOURCES ${source} ${LUNA_IAM_TEST_SUPPORT_DIR}/http_test_util.c
            ${LUNA_IAM_TEST_SUPPORT_DIR}/iam_harness.c
    LIBS luna-iam-core
    TIMEOUT 240
    EXTRA_LABELS iam)
  target_compile_definitions(test_${label}_${name} PRIVATE
    LUNA_CA_BIN="$<TARGET_FILE:luna-ca>"
    LUNA_HTTP_TEST_SERVER="$<TARGET_FILE:luna-http-test-server>"
    LUNA_IAM_BIN="$<TARGET_FILE:luna-iam>")
  add_dependencies(test_${label}_${name} luna-ca luna-iam)
endfunction()
