# attack.iam_escalation: the real luna-iam against privilege escalation
# (keys minted for a stronger principal, self-granted roles, locking out the
# last platform admin), a bootstrap whose key cannot be handed out, and a
# key ring with an unreadable row.
if(TARGET luna-iam)
  include(${CMAKE_CURRENT_SOURCE_DIR}/support/iam_test.cmake)
  luna_add_iam_process_test(attack iam_escalation
    ${CMAKE_CURRENT_SOURCE_DIR}/attack/test_iam_escalation.c)
endif()
