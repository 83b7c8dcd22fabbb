# e2e.gateway_http_public: the public listener mode of luna_http (server
# authentication only), added for the gateway (labels e2e, gateway).
include(${CMAKE_CURRENT_LIST_DIR}/../support/http_test.cmake)
luna_add_http_test(e2e gateway_http_public ${CMAKE_CURRENT_LIST_DIR}/test_gateway_http_public.c)
set_property(TEST e2e.gateway_http_public APPEND PROPERTY LABELS gateway)
