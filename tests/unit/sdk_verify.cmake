# The SDK's own verification of attestation reports and the CLI's human
# form of them (cli/cli_fmt.c compiled in).
luna_add_c_test(unit sdk_verify
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sdk_verify.c
          ${CMAKE_SOURCE_DIR}/tests/support/sdk_fixture.c
          ${CMAKE_SOURCE_DIR}/cli/cli_fmt.c
  LIBS lunal-static
  EXTRA_LABELS sdk cli)
target_include_directories(test_unit_sdk_verify PRIVATE
  ${CMAKE_SOURCE_DIR}/sdk/src ${CMAKE_SOURCE_DIR}/cli ${CMAKE_SOURCE_DIR}/tests/support)
