# fault.audit_pg: luna-audit on PostgreSQL (appends, proofs, restart
# recovery, kill -9 during appends, a rewritten row refused) against a
# throwaway server from tests/support/pg_server.sh.  Required: fails when
# PostgreSQL is not installed.
if(TARGET luna-audit AND EXISTS ${CMAKE_CURRENT_LIST_DIR}/test_audit_pg.c)
  include(${CMAKE_CURRENT_LIST_DIR}/../support/audit_test.cmake)
  set(_aud_sup ${CMAKE_CURRENT_LIST_DIR}/../support)
  add_executable(test_fault_audit_pg ${CMAKE_CURRENT_LIST_DIR}/test_audit_pg.c
    ${_aud_sup}/audit_test_util.c ${_aud_sup}/http_test_util.c)
  target_link_libraries(test_fault_audit_pg PRIVATE luna-test-support)
  target_include_directories(test_fault_audit_pg PRIVATE ${CMAKE_SOURCE_DIR}/core/src ${_aud_sup})
  target_compile_definitions(test_fault_audit_pg PRIVATE
    LUNA_CA_BIN="$<TARGET_FILE:luna-ca>"
    LUNA_HTTP_TEST_SERVER="$<TARGET_FILE:luna-http-test-server>"
    LUNA_AUDIT_BIN="$<TARGET_FILE:luna-audit>"
    LUNA_AUDIT_WITNESS_BIN="$<TARGET_FILE:luna-audit-witness>")
  add_dependencies(test_fault_audit_pg luna-ca luna-http-test-server luna-audit luna-audit-witness)
  luna_add_script_test(fault audit_pg
    COMMAND bash ${_aud_sup}/pg_server.sh $<TARGET_FILE:test_fault_audit_pg>
    TIMEOUT 300
    EXTRA_LABELS audit)
endif()
