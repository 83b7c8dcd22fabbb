# e2e.kms_keys: tenant key lifecycle against the real KMS process.
include(${CMAKE_CURRENT_SOURCE_DIR}/support/kms_test.cmake)
luna_add_kms_test(e2e kms_keys ${CMAKE_CURRENT_SOURCE_DIR}/e2e/test_kms_keys.c)
