# unit.hsm_client: the KMS HSM process against a real SoftHSM2 token (one
# throwaway token per test case, tests/support/softhsm_token.sh): root
# creation and attribute check, refusal of bad roots, wrap/seal round
# trips, tampering, the registry MAC, wrong PIN, no PIN in any log; the
# root's unwrap template attacked over direct PKCS#11 (p11-kit's header),
# the HSM process's uid, groups and environment.
find_package(PkgConfig REQUIRED)
pkg_check_modules(HSM_TEST_P11KIT REQUIRED p11-kit-1)
luna_add_c_test(unit hsm_client
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_hsm_client.c
          ${CMAKE_CURRENT_SOURCE_DIR}/support/hsm_test_token.c
  LIBS luna-kms-hsm-client
  TIMEOUT 180)
target_compile_definitions(test_unit_hsm_client PRIVATE
  LUNA_TEST_HSM_BIN="$<TARGET_FILE:luna-kms-hsm>"
  LUNA_TEST_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
target_include_directories(test_unit_hsm_client PRIVATE ${HSM_TEST_P11KIT_INCLUDE_DIRS})
target_link_libraries(test_unit_hsm_client PRIVATE ${CMAKE_DL_LIBS})
add_dependencies(test_unit_hsm_client luna-kms-hsm)
