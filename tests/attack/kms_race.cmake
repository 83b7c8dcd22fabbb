# attack.kms_race: 64 concurrent releases of one OTK spread over two KMS
# processes sharing one database: exactly one succeeds.  On SQLite
# (attack.kms_race) and on a throwaway PostgreSQL (attack.kms_race_pg,
# through tests/support/pg_server.sh; PostgreSQL missing is a failure).
include(${CMAKE_CURRENT_SOURCE_DIR}/support/kms_test.cmake)
luna_add_kms_test(attack kms_race ${CMAKE_CURRENT_SOURCE_DIR}/attack/test_kms_race.c)
target_link_libraries(test_attack_kms_race PRIVATE Threads::Threads)
luna_add_script_test(attack kms_race_pg
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/support/pg_server.sh
          $<TARGET_FILE:test_attack_kms_race>
  TIMEOUT 300
  EXTRA_LABELS kms)
