# Shared by tests/*/kms_*.cmake: registers a test that drives the real
# luna-kms process (and through it the real luna-kms-hsm on a throwaway
# SoftHSM2 token) via tests/support/kms_harness.c, with the label kms.
include_guard(GLOBAL)
set(LUNA_KMS_TEST_SUPPORT_DIR ${CMAKE_CURRENT_LIST_DIR})

# luna_add_kms_test(<label> <name> <source>)
function(luna_add_kms_test label name source)
  luna_add_c_test(${label} ${name}
    SOURCES ${source} ${LUNA_KMS_TEST_SUPPORT_DIR}/kms_harness.c
            ${LUNA_KMS_TEST_SUPPORT_DIR}/http_test_util.c
            ${LUNA_KMS_TEST_SUPPORT_DIR}/hsm_test_token.c
    LIBS luna-kms-service-core
    TIMEOUT 300
    EXTRA_LABELS kms)
  target_compile_definitions(test_${label}_${name} PRIVATE
    LUNA_CA_BIN="$<TARGET_FILE:luna-ca>"
    LUNA_HTTP_TEST_SERVER="/nonexistent"
    LUNA_KMS_BIN="$<TARGET_FILE:luna-kms>"
    LUNA_TEST_HSM_BIN="$<TARGET_FILE:luna-kms-hsm>"
    LUNA_TEST_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  add_dependencies(test_${label}_${name} luna-ca luna-kms luna-kms-hsm)
endfunction()
