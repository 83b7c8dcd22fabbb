# e2e.store_pg: the shared store suite (tests/support/store_suite.c) against
# a throwaway PostgreSQL server that tests/support/pg_server.sh starts and
# removes.  Required: it fails when PostgreSQL is not installed.
add_executable(test_e2e_store_pg
  ${CMAKE_CURRENT_SOURCE_DIR}/e2e/test_store_pg.c
  ${CMAKE_CURRENT_SOURCE_DIR}/support/store_suite.c)
target_link_libraries(test_e2e_store_pg PRIVATE luna-test-support)
target_include_directories(test_e2e_store_pg PRIVATE ${CMAKE_SOURCE_DIR}/core/src)
luna_add_script_test(e2e store_pg
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/support/pg_server.sh
          $<TARGET_FILE:test_e2e_store_pg>
  TIMEOUT 300)
