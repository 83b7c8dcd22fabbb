# attack.kms_otk: every refusal of the one-time key release (issue 4 "Done
# when"), the registry MAC, cross-tenant and token abuse, 64 concurrent
# releases, against the real KMS process with SoftHSM2 and SQLite.
include(${CMAKE_CURRENT_SOURCE_DIR}/support/kms_test.cmake)
luna_add_kms_test(attack kms_otk ${CMAKE_CURRENT_SOURCE_DIR}/attack/test_kms_otk.c)
target_link_libraries(test_attack_kms_otk PRIVATE Threads::Threads)
