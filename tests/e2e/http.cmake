# e2e.http: the mTLS server and client between processes (routes, limits,
# metrics, request ids, certificate reload, graceful shutdown).
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/e2e/test_http.c)
  include(${CMAKE_CURRENT_SOURCE_DIR}/support/http_test.cmake)
  luna_add_http_test(e2e http ${CMAKE_CURRENT_SOURCE_DIR}/e2e/test_http.c)
endif()
