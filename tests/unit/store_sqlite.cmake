# unit.store_sqlite: the shared store suite (tests/support/store_suite.c)
# against SQLite, plus SQLite-only checks.
luna_add_c_test(unit store_sqlite
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_store_sqlite.c
          ${CMAKE_CURRENT_SOURCE_DIR}/support/store_suite.c
  TIMEOUT 120)
