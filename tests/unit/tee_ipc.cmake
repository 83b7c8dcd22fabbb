# unit.tee_ipc: the host <-> runtime message codec (tee/ipc.c) and the
# runtime config parser (tee/tee_config.c).
luna_add_c_test(unit tee_ipc
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_tee_ipc.c
  LIBS luna-tee-common
  EXTRA_LABELS tee)
