# Shared by the audit e2e/attack/fault tests: they run the real luna-audit
# (and luna-audit-witness) processes over mTLS with certificates made by
# the real luna-ca, through tests/support/audit_test_util.c.
include_guard(GLOBAL)
include(${CMAKE_CURRENT_LIST_DIR}/http_test.cmake)
set(LUNA_AUDIT_TEST_SUPPORT_DIR ${CMAKE_CURRENT_LIST_DIR})

# luna_add_audit_test(<label> <name> <source>)
function(luna_add_audit_test label name source)
  luna_add_c_test(${label} ${name}
    SOURCES ${source} ${LUNA_AUDIT_TEST_SUPPORT_DIR}/audit_test_util.c
            ${LUNA_AUDIT_TEST_SUPPORT_DIR}/http_test_util.c
    TIMEOUT 300 EXTRA_LABELS audit)
  target_compile_definitions(test_${label}_${name} PRIVATE
    LUNA_CA_BIN="$<TARGET_FILE:luna-ca>"
    LUNA_HTTP_TEST_SERVER="$<TARGET_FILE:luna-http-test-server>"
    LUNA_AUDIT_BIN="$<TARGET_FILE:luna-audit>"
    LUNA_AUDIT_WITNESS_BIN="$<TARGET_FILE:luna-audit-witness>")
  add_dependencies(test_${label}_${name} luna-ca luna-http-test-server luna-audit
    luna-audit-witness)
endfunction()
