# unit.gateway_units: the gateway's header parsers, token buckets and
# idempotency cache, linked from luna-gateway-core (labels unit, gateway).
luna_add_c_test(unit gateway_units
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_gateway_units.c
  LIBS luna-gateway-core
  EXTRA_LABELS gateway)
