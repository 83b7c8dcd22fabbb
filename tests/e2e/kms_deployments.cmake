# e2e.kms_deployments: runtime deployment registration against the real
# luna-iam (developer-key lookup) and the real luna-kms (which fetches the
# key from that IAM over its own mTLS client and verifies the manifest).
if(TARGET luna-iam AND TARGET luna-kms)
  include(${CMAKE_CURRENT_SOURCE_DIR}/support/kms_test.cmake)
  include(${CMAKE_CURRENT_SOURCE_DIR}/support/http_test.cmake)
  set(_sup ${CMAKE_CURRENT_SOURCE_DIR}/support)
  luna_add_c_test(e2e kms_deployments
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/e2e/test_kms_deployments.c ${_sup}/kms_harness.c
            ${_sup}/iam_harness.c ${_sup}/http_test_util.c ${_sup}/hsm_test_token.c
    LIBS luna-kms-service-core
    TIMEOUT 300
    EXTRA_LABELS kms iam)
  target_compile_definitions(test_e2e_kms_deployments PRIVATE
    LUNA_CA_BIN="$<TARGET_FILE:luna-ca>"
    LUNA_HTTP_TEST_SERVER="/nonexistent"
    LUNA_IAM_BIN="$<TARGET_FILE:luna-iam>"
    LUNA_KMS_BIN="$<TARGET_FILE:luna-kms>"
    LUNA_TEST_HSM_BIN="$<TARGET_FILE:luna-kms-hsm>"
    LUNA_TEST_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  add_dependencies(test_e2e_kms_deployments luna-ca luna-iam luna-kms luna-kms-hsm)
endif()
