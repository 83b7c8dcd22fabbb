# fault.audit_recovery: the audit log's store damaged between runs (a row
# rewritten, the tail truncated, a node altered, an unacknowledged tail
# beyond the head) and what reopening it does about each.
if(TARGET luna-audit-lib)
  luna_add_c_test(fault audit_recovery SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fault/test_audit_recovery.c
    LIBS luna-audit-lib EXTRA_LABELS audit)
endif()
