# vectors.audit_tree: the audit log's stored tree (luna-audit-lib) against
# the shared RFC 6962 vectors: roots, inclusion and consistency proofs read
# back from the database, before and after a reopen.
if(TARGET luna-audit-lib)
  luna_add_c_test(vectors audit_tree SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/vectors/test_audit_tree.c
    LIBS luna-audit-lib EXTRA_LABELS audit)
endif()
