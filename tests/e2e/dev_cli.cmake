# e2e.dev_cli: `lunal dev up|down|status` driven as a user would, in a
# clean state folder (tests/e2e/dev_cli.sh).  Built components are found
# next to lunal in the build tree.
if(TARGET lunal)
  luna_add_script_test(e2e dev_cli
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/dev_cli.sh $<TARGET_FILE:lunal>
    TIMEOUT 300
    EXTRA_LABELS cli)
endif()
