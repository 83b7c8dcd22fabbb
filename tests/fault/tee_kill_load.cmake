# fault.tee_kill_load (also labelled e2e): the real embedded platform
# (`lunal dev up`) under 16 concurrent SDK clients while one TEE runtime is
# killed with SIGKILL; no request the client was told succeeded is lost,
# wrong or duplicated (tests/fault/test_tee_kill_load.c).  About 50 s; it
# fails and stops the platform itself after 110 s (CTest's timeout, later,
# would leave the platform's detached processes behind).
set(_luna_tkl_parts lunal luna-ca luna-iam luna-audit luna-attestation luna-kms
    luna-kms-hsm luna-tee-host luna-tee lunal-demo-jobs luna-gateway lunal-static)
set(_luna_tkl_ok TRUE)
foreach(t ${_luna_tkl_parts})
  if(NOT TARGET ${t})
    set(_luna_tkl_ok FALSE)
  endif()
endforeach()
if(_luna_tkl_ok)
  luna_add_c_test(fault tee_kill_load
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_tee_kill_load.c
            ${CMAKE_SOURCE_DIR}/tests/support/devplat.c
    LIBS lunal-static PkgConfig::SQLITE Threads::Threads
    TIMEOUT 150
    EXTRA_LABELS e2e gateway sdk)
  target_include_directories(test_fault_tee_kill_load PRIVATE ${CMAKE_SOURCE_DIR}/tests/support)
  # The platform it starts is this build's: build it first.
  add_dependencies(test_fault_tee_kill_load ${_luna_tkl_parts})
else()
  message(STATUS "fault.tee_kill_load not registered (a platform component is not built)")
endif()
