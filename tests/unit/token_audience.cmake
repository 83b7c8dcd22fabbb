# unit.token_audience: the audience table and config check, the
# single-audience rule of luna_jws_verify and the SDK's downstream route
# table (sdk/src, linked from the static SDK).
luna_add_c_test(unit token_audience
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_token_audience.c
  LIBS lunal-static
  EXTRA_LABELS sdk)
target_include_directories(test_unit_token_audience PRIVATE ${CMAKE_SOURCE_DIR}/sdk/src)
