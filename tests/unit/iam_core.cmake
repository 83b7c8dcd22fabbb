# unit.iam_core: the IAM building blocks in process (API key format and
# hash, dudect-style timing of the key check, roles, paths, fingerprints,
# the master key file and the signing key ring).
if(TARGET luna-iam-core)
  luna_add_c_test(unit iam_core SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_iam_core.c
    LIBS luna-iam-core m EXTRA_LABELS iam TIMEOUT 300)
endif()
