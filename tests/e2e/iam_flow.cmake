# e2e.iam_flow: the real luna-iam over mTLS with SQLite: bootstrap, admin
# API, authenticate/authorize, API key life cycle, anonymous policy and
# signing key rollover.
if(TARGET luna-iam)
  include(${CMAKE_CURRENT_SOURCE_DIR}/support/iam_test.cmake)
  luna_add_iam_process_test(e2e iam_flow ${CMAKE_CURRENT_SOURCE_DIR}/e2e/test_iam_flow.c)
endif()
