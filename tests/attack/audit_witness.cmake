# attack.audit_witness: luna-audit-witness cosigns only checkpoints
# consistent with the last one it cosigned; split view, rollback, forged
# signature and bad proofs refused.
if(TARGET luna-audit-witness AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/attack/test_audit_witness.c)
  include(${CMAKE_CURRENT_SOURCE_DIR}/support/audit_test.cmake)
  luna_add_audit_test(attack audit_witness ${CMAKE_CURRENT_SOURCE_DIR}/attack/test_audit_witness.c)
endif()
