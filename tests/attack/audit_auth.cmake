# attack.audit_auth: the auditor API against tokens shaped like luna-iam's
# (roles, iss, aud, auth), IAM signing-key rotation (JWKS file and IAM over
# mTLS), and a checkpoint key file owned by another user.
if(TARGET luna-audit AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/attack/test_audit_auth.c)
  include(${CMAKE_CURRENT_SOURCE_DIR}/support/audit_test.cmake)
  luna_add_audit_test(attack audit_auth ${CMAKE_CURRENT_SOURCE_DIR}/attack/test_audit_auth.c)
endif()
