# attack.kms_errors: issue 4's bad inputs against the real KMS in one
# table, each a JSON error with its own documented code; nothing released.
include(${CMAKE_CURRENT_SOURCE_DIR}/support/kms_test.cmake)
luna_add_kms_test(attack kms_errors ${CMAKE_CURRENT_SOURCE_DIR}/attack/test_kms_errors.c)
