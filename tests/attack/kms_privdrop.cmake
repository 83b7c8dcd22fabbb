# attack.kms_privdrop: the real luna-kms started as root drops to kms.user
# after spawning its HSM process (uids checked in /proc), exits when that
# process dies, refuses the HSM user, root, and root in production.
include(${CMAKE_CURRENT_SOURCE_DIR}/support/kms_test.cmake)
luna_add_kms_test(attack kms_privdrop ${CMAKE_CURRENT_SOURCE_DIR}/attack/test_kms_privdrop.c)
