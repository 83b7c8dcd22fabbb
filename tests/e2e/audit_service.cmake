# e2e.audit_service: the real luna-audit process over mTLS on loopback with
# SQLite: appends, signed checkpoints, proofs, refusals, tenant isolation,
# tamper detection by a verifier that keeps a checkpoint.
if(TARGET luna-audit AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/e2e/test_audit_service.c)
  include(${CMAKE_CURRENT_SOURCE_DIR}/support/audit_test.cmake)
  luna_add_audit_test(e2e audit_service ${CMAKE_CURRENT_SOURCE_DIR}/e2e/test_audit_service.c)
endif()
