# e2e.dev_platform: the README's main command (scripts/run.sh) end to end
# on the embedded platform, then the checks of issue 8 (tests/e2e/
# dev_platform.sh).  Registered when every component it starts is built
# (default ON; about 15 s).  It starts real processes on random loopback
# ports and, as root, a SoftHSM token owned by the lunal-hsm user.
# e2e.dev_platform_admin: the admin commands through the gateway's relayed
# routes (tests/e2e/dev_platform_admin.sh; about 60 s).
option(LUNA_DEV_PLATFORM_E2E "Register e2e.dev_platform (the README main command end to end)" ON)
option(LUNA_DEV_PLATFORM_ADMIN_E2E "Register e2e.dev_platform_admin (the CLI admin commands end to end)" ON)
set(_luna_dev_parts lunal luna-ca luna-iam luna-audit luna-attestation luna-kms
    luna-kms-hsm luna-tee-host luna-tee lunal-demo-jobs luna-gateway)
set(_luna_dev_ok TRUE)
foreach(t ${_luna_dev_parts})
  if(NOT TARGET ${t})
    set(_luna_dev_ok FALSE)
  endif()
endforeach()
if(_luna_dev_ok AND LUNA_DEV_PLATFORM_E2E)
  luna_add_script_test(e2e dev_platform
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/dev_platform.sh ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR}
    TIMEOUT 280
    EXTRA_LABELS cli)
  if(LUNA_DEV_PLATFORM_ADMIN_E2E)
    luna_add_script_test(e2e dev_platform_admin
      COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/dev_platform_admin.sh ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR}
      TIMEOUT 240
      EXTRA_LABELS cli)
  endif()
else()
  message(STATUS "e2e.dev_platform not registered (LUNA_DEV_PLATFORM_E2E=OFF or a component is not built)")
endif()
