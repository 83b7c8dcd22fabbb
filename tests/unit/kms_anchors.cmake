# unit.kms_anchors: the KMS's trust anchors are per evidence type
# (kms_verify.c, linked from luna-kms-service-core): a sim vendor root
# never certifies a TPM attestation key (labels unit, kms, tpm).
if(TARGET luna-kms-service-core)
  luna_add_c_test(unit kms_anchors
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_kms_anchors.c
    LIBS luna-kms-service-core
    EXTRA_LABELS kms tpm)
endif()
