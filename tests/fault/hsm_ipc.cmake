# fault.hsm_ipc: the HSM privilege-separation boundary under faults:
# malformed, short and long messages kill the HSM process (exit 3) and the
# client reports LUNA_ERR_UNAVAILABLE; kill -9 and a hung (stopped) HSM give
# LUNA_ERR_UNAVAILABLE and recover after the automatic restart.
luna_add_c_test(fault hsm_ipc
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fault/test_hsm_ipc.c
          ${CMAKE_CURRENT_SOURCE_DIR}/support/hsm_test_token.c
  LIBS luna-kms-hsm-client
  TIMEOUT 180)
target_compile_definitions(test_fault_hsm_ipc PRIVATE
  LUNA_TEST_HSM_BIN="$<TARGET_FILE:luna-kms-hsm>"
  LUNA_TEST_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
add_dependencies(test_fault_hsm_ipc luna-kms-hsm)
