# attack.mtls_tee_ca: the TEE CA may vouch only for lunal://tee/ identities.
include(${CMAKE_CURRENT_SOURCE_DIR}/support/http_test.cmake)
luna_add_http_test(attack mtls_tee_ca ${CMAKE_CURRENT_SOURCE_DIR}/attack/test_mtls_tee_ca.c)
