# e2e.audit_webhook: luna-audit's webhook sink against a real HTTPS
# receiver that goes down and comes back (and answers 503 for a while),
# with a service restart in between: every matching entry arrives, none
# other, appends never wait (docs/audit.md section 9).
if(TARGET luna-audit AND EXISTS ${CMAKE_CURRENT_LIST_DIR}/test_audit_webhook.c)
  include(${CMAKE_CURRENT_LIST_DIR}/../support/audit_test.cmake)
  luna_add_audit_test(e2e audit_webhook ${CMAKE_CURRENT_LIST_DIR}/test_audit_webhook.c)
endif()
