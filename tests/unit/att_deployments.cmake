# unit.att_deployments: registered deployments of the attestation service
# (attestation/src/att_deployments.c): version order, the manifest kid,
# loading stored rows (each re-verified; a tampered one is not appraised),
# lookups and the tenant-scoped listing (labels unit, attestation).
if(TARGET luna-attestation-core)
  luna_add_c_test(unit att_deployments
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_att_deployments.c
    LIBS luna-attestation-core
    EXTRA_LABELS attestation)
endif()
