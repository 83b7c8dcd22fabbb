# vectors.cli_offline: the real `lunal` binary verifies every sample of
# vectors/evidence offline (`attestation verify --evidence`), with its
# collateral copied into a temporary folder under shuffled names, at its
# stated time; plus relaxations named, usage errors, an unrecognized
# collateral file, --json keys, the policy file, and TPM through the
# shared verifier's backends table.  Skipped (77) without the vectors.
if(TARGET lunal)
  luna_add_c_test(vectors cli_offline
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cli_offline.c
    TIMEOUT 300
    EXTRA_LABELS cli)
  target_compile_definitions(test_vectors_cli_offline PRIVATE
    LUNAL_BIN="$<TARGET_FILE:lunal>")
  add_dependencies(test_vectors_cli_offline lunal)
endif()
