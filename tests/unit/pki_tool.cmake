# unit.pki_tool: the luna-ca command line end to end (usage errors exit 2,
# init/issue/renew/show happy paths, refusals), driven by pki_tool.sh.
luna_add_script_test(unit pki_tool
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/unit/pki_tool.sh $<TARGET_FILE:luna-ca>
  TIMEOUT 120)
