# attack.iam_attack: the real luna-iam attacked: cross-tenant access,
# credentials at rest (database and WAL searched), malformed bodies.
if(TARGET luna-iam)
  include(${CMAKE_CURRENT_SOURCE_DIR}/support/iam_test.cmake)
  luna_add_iam_process_test(attack iam_attack ${CMAKE_CURRENT_SOURCE_DIR}/attack/test_iam_attack.c)
endif()
