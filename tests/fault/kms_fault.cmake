# fault.kms_fault: the KMS process under faults: bad HSM root at start, the
# HSM process killed, audit sink down, kill -9 of the KMS during releases,
# and no key in plaintext in the database files.
include(${CMAKE_CURRENT_SOURCE_DIR}/support/kms_test.cmake)
luna_add_kms_test(fault kms_fault ${CMAKE_CURRENT_SOURCE_DIR}/fault/test_kms_fault.c)
target_link_libraries(test_fault_kms_fault PRIVATE Threads::Threads)
