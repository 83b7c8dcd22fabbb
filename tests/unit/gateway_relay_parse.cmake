# unit.gateway_relay_parse: the relay's path and query parsers
# (gateway/src/gw_relay_parse.c), linked from luna-gateway-core.
luna_add_c_test(unit gateway_relay_parse
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_gateway_relay_parse.c
  LIBS luna-gateway-core
  EXTRA_LABELS gateway)
