# attack.tee_sandbox: jobs that try to escape the sandbox (socket, file
# write/delete, exec), exceed CPU, wall-clock, memory and result limits, or
# read the runtime's keys; plus the demo jobs' outputs.
luna_add_c_test(attack tee_sandbox
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_tee_sandbox.c
  LIBS luna-tee-common
  EXTRA_LABELS tee unit
  TIMEOUT 120)
add_dependencies(test_attack_tee_sandbox lunal-demo-jobs lunal-test-jobs)
