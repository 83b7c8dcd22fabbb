# e2e.kms_flow: the one-time key flow against the real KMS process.
include(${CMAKE_CURRENT_SOURCE_DIR}/support/kms_test.cmake)
luna_add_kms_test(e2e kms_flow ${CMAKE_CURRENT_SOURCE_DIR}/e2e/test_kms_flow.c)
