# e2e.kms_audit_http: the KMS's audit sink against the real luna-audit
# service: entries land in the log; a wrong server identity or the service
# down makes the append fail (and so the audited operation).
include(${CMAKE_CURRENT_SOURCE_DIR}/support/audit_test.cmake)
luna_add_c_test(e2e kms_audit_http
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/e2e/test_kms_audit_http.c
          ${CMAKE_CURRENT_SOURCE_DIR}/support/audit_test_util.c
          ${CMAKE_CURRENT_SOURCE_DIR}/support/http_test_util.c
  LIBS luna-kms-service-core
  TIMEOUT 180
  EXTRA_LABELS kms)
target_compile_definitions(test_e2e_kms_audit_http PRIVATE
  LUNA_CA_BIN="$<TARGET_FILE:luna-ca>"
  LUNA_HTTP_TEST_SERVER="$<TARGET_FILE:luna-http-test-server>"
  LUNA_AUDIT_BIN="$<TARGET_FILE:luna-audit>"
  LUNA_AUDIT_WITNESS_BIN="$<TARGET_FILE:luna-audit-witness>")
add_dependencies(test_e2e_kms_audit_http luna-ca luna-http-test-server luna-audit
  luna-audit-witness)
