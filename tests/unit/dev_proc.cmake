# unit.dev_proc: the process supervision of `lunal dev` (cli/dev_proc.c):
# detached start with log and pidfile, liveness tied to the kernel start
# time, stop by SIGTERM then SIGKILL of the whole group, bounded runs.
luna_add_c_test(unit dev_proc
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_dev_proc.c ${CMAKE_SOURCE_DIR}/cli/dev_proc.c
  TIMEOUT 120
  EXTRA_LABELS cli)
target_include_directories(test_unit_dev_proc PRIVATE ${CMAKE_SOURCE_DIR}/cli)
