# e2e.audit_canary: a full `lunal dev up` run with canary secrets (a test
# API key, the client's private key, a gateway token, a job's plaintext),
# then every database (WAL files included) and every log file of the state
# folder searched raw/hex/base64 for each; the search is proven on a
# control planted on purpose first (tests/e2e/audit_canary.sh; ~40 s).
option(LUNA_AUDIT_CANARY_E2E "Register e2e.audit_canary (a full platform run)" ON)
if(LUNA_AUDIT_CANARY_E2E AND TARGET lunal AND TARGET luna-audit AND TARGET luna-audit-witness
   AND TARGET luna-gateway AND TARGET luna-kms AND TARGET luna-iam)
  luna_add_script_test(e2e audit_canary
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/audit_canary.sh ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR}
    TIMEOUT 300
    EXTRA_LABELS audit attack)
endif()
