# attack.token_audience: a token is good at the one service it was minted
# for.  Real luna-iam + luna-gateway (gw_harness), luna-kms with its HSM
# child (kms_harness) and luna-audit (audit_test_util), all at once.
include(${CMAKE_CURRENT_LIST_DIR}/../support/http_test.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/../support/kms_test.cmake)
luna_add_c_test(attack token_audience
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_token_audience.c
          ${CMAKE_SOURCE_DIR}/gateway/test/gw_harness.c
          ${CMAKE_SOURCE_DIR}/tests/support/iam_harness.c
          ${CMAKE_SOURCE_DIR}/tests/support/kms_harness.c
          ${CMAKE_SOURCE_DIR}/tests/support/hsm_test_token.c
          ${CMAKE_SOURCE_DIR}/tests/support/audit_test_util.c
          ${CMAKE_SOURCE_DIR}/tests/support/http_test_util.c
  LIBS luna-kms-service-core
  TIMEOUT 300
  EXTRA_LABELS iam kms audit gateway)
target_include_directories(test_attack_token_audience PRIVATE ${CMAKE_SOURCE_DIR}/gateway/test)
target_compile_definitions(test_attack_token_audience PRIVATE
  LUNA_CA_BIN="$<TARGET_FILE:luna-ca>"
  LUNA_HTTP_TEST_SERVER="$<TARGET_FILE:luna-http-test-server>"
  LUNA_IAM_BIN="$<TARGET_FILE:luna-iam>"
  LUNA_GATEWAY_BIN="$<TARGET_FILE:luna-gateway>"
  LUNA_GW_STUB_BIN="$<TARGET_FILE:luna-gw-stub>"
  LUNA_KMS_BIN="$<TARGET_FILE:luna-kms>"
  LUNA_TEST_HSM_BIN="$<TARGET_FILE:luna-kms-hsm>"
  LUNA_AUDIT_BIN="$<TARGET_FILE:luna-audit>"
  LUNA_AUDIT_WITNESS_BIN="$<TARGET_FILE:luna-audit-witness>"
  LUNA_TEST_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
add_dependencies(test_attack_token_audience luna-ca luna-iam luna-gateway luna-gw-stub
  luna-http-test-server luna-kms luna-kms-hsm luna-audit luna-audit-witness)
# tests/support/iam_harness.c ignores a system() result that glibc's
# fortified headers flag in optimized builds.
target_compile_options(test_attack_token_audience PRIVATE -Wno-unused-result)
