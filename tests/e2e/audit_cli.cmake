# e2e.audit_cli: `lunal audit verify|proof|tail` against the real
# luna-audit (pushing to the real luna-audit-witness) through a gateway
# stand-in relaying /v1/audit/...; tampered history, split view seen by
# a fresh auditor, rollback.
if(TARGET luna-audit AND TARGET lunal AND EXISTS ${CMAKE_CURRENT_LIST_DIR}/test_audit_cli.c)
  include(${CMAKE_CURRENT_LIST_DIR}/../support/audit_test.cmake)
  luna_add_audit_test(e2e audit_cli ${CMAKE_CURRENT_LIST_DIR}/test_audit_cli.c)
  target_compile_definitions(test_e2e_audit_cli PRIVATE LUNAL_BIN="$<TARGET_FILE:lunal>")
  add_dependencies(test_e2e_audit_cli lunal)
  set_tests_properties(e2e.audit_cli PROPERTIES LABELS "e2e;audit;cli")
endif()
