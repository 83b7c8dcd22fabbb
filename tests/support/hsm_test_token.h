/*
 * hsm_test_token.h - a throwaway SoftHSM2 token per test case for the HSM
 * tests (tests/unit/test_hsm_client.c, tests/fault/test_hsm_ipc.c).
 *
 * hsm_token_create makes a private temporary folder, runs
 * tests/support/softhsm_token.sh there and points SOFTHSM2_CONF at it (the
 * client passes that one variable to the HSM process), so no test ever
 * touches the system's tokens or another test's.  Missing SoftHSM2 is a
 * failure.
 *
 * Run as root (CI), the client starts the HSM process as the unprivileged
 * user "lunal-hsm" (hsm_client.h): hsm_token_create creates that system
 * user if it is absent and gives it the folder (token, conf, PIN file).
 * Anything a test does to the token as root must be followed by
 * hsm_token_chown so the HSM user can still read every file.
 */
#ifndef LUNA_HSM_TEST_TOKEN_H
#define LUNA_HSM_TEST_TOKEN_H

#include <sys/types.h>

#include "hsm_client.h"

#define HSM_TEST_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define HSM_TEST_LABEL "luna-test"

typedef struct hsm_token {
    char dir[64];
    char pin_file[128];
    char pin[64];
    uid_t uid; /* owner of everything in dir: lunal-hsm under root, else us */
    gid_t gid;
} hsm_token;

#define HSM_TEST_USER "lunal-hsm"

/* Creates the token with this user PIN; aborts the test on failure. */
void hsm_token_create(hsm_token *t, const char *pin);
/* Gives dir and everything in it to t->uid:t->gid (a no-op unless root). */
void hsm_token_chown(const hsm_token *t);
/* Same, to an explicit owner (tests of other HSM uids). */
void hsm_token_chown_to(const hsm_token *t, uid_t uid, gid_t gid);
/* Removes the folder and everything in it. */
void hsm_token_destroy(hsm_token *t);
/* A client config for this token with short test timeouts and backoff. */
luna_hsm_config hsm_token_config(const hsm_token *t);
/* Runs argv (NULL-terminated) and returns its exit status, -1 on spawn failure. */
int hsm_run(char *const argv[]);
/* Creates a key in the token with pkcs11-tool (extra flags appended); asserts success. */
void hsm_token_pkcs11_keygen(const hsm_token *t, const char *label, const char *const *flags);

#endif
