# fault.audit_kill: kill -9 of luna-audit during concurrent appends loses
# no acknowledged entry; the restarted log verifies.
if(TARGET luna-audit AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/fault/test_audit_kill.c)
  include(${CMAKE_CURRENT_SOURCE_DIR}/support/audit_test.cmake)
  luna_add_audit_test(fault audit_kill ${CMAKE_CURRENT_SOURCE_DIR}/fault/test_audit_kill.c)
endif()
