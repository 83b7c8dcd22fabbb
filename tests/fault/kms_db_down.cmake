# fault.kms_db_down: the real KMS with its SQLite database on a file system
# filled to the last byte mid-run; fault.kms_db_down_pg: the same against
# a throwaway PostgreSQL server stopped and started under the running KMS
# (tests/support/pg_server.sh; PostgreSQL missing is a failure).  503
# storage_unavailable with a JSON body, nothing released, nothing lost,
# recovery without a restart.
include(${CMAKE_CURRENT_SOURCE_DIR}/support/kms_test.cmake)
luna_add_kms_test(fault kms_db_down ${CMAKE_CURRENT_SOURCE_DIR}/fault/test_kms_db_down.c)
luna_add_script_test(fault kms_db_down_pg
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/support/pg_server.sh
          $<TARGET_FILE:test_fault_kms_db_down>
  TIMEOUT 300
  EXTRA_LABELS kms)
