# attack.mtls: refusals of the mTLS transport, against a separate server process.
include(${CMAKE_CURRENT_SOURCE_DIR}/support/http_test.cmake)
luna_add_http_test(attack mtls ${CMAKE_CURRENT_SOURCE_DIR}/attack/test_mtls.c)
