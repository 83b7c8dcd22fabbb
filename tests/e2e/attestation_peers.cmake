# luna-att-test-peers: stub KMS registry, audit log, webhook receiver and sim
include_guard(GLOBAL)
# TEEs for the attestation e2e test (not a test by itself).
if(TARGET luna-attestation)
  add_executable(luna-att-test-peers ${CMAKE_CURRENT_SOURCE_DIR}/e2e/test_attestation_peers.c)
  target_link_libraries(luna-att-test-peers PRIVATE luna-core)
endif()
