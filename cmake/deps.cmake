# Every third-party library comes from a Debian -dev package through pkg-config
# (scripts/install-deps.sh installs them).
find_package(PkgConfig REQUIRED)
pkg_check_modules(OPENSSL REQUIRED IMPORTED_TARGET libssl>=3.0 libcrypto>=3.0)
pkg_check_modules(LIBEVENT REQUIRED IMPORTED_TARGET libevent>=2.1 libevent_openssl>=2.1 libevent_pthreads>=2.1)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson>=2.14) # json_object_getn, keylen_foreach
pkg_check_modules(SQLITE REQUIRED IMPORTED_TARGET sqlite3>=3.35)
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
find_package(Threads REQUIRED)
# tpm2-tss (libtss2-dev): only the TEE host's live TPM path links it (tee/host_tpm.c).
pkg_check_modules(TSS2 REQUIRED IMPORTED_TARGET tss2-esys tss2-mu tss2-tctildr)
