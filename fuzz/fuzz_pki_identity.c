/*
 * fuzz_pki_identity - certificate DER -> luna_pki_identity_from_cert, and
 * the raw bytes as an identity string -> luna_pki_identity_valid.  Owns
 * no state; aborts when an accepted identity breaks the grammar or the
 * output contract (NUL-terminated, within the buffer).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "luna/pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > LUNA_PKI_FILE_MAX)
        return 0;
    const unsigned char *p = data;
    X509 *x = d2i_X509(NULL, &p, (long)size);
    if (x != NULL) {
        char id[LUNA_PKI_IDENTITY_MAX];
        luna_err err = luna_pki_identity_from_cert(x, id, sizeof(id));
        if (err == LUNA_OK && (memchr(id, '\0', sizeof(id)) == NULL || !luna_pki_identity_valid(id)))
            abort();
        if (err != LUNA_OK && id[0] != '\0')
            abort();
        /* A one-byte-short buffer must refuse, never truncate. */
        if (err == LUNA_OK) {
            size_t n = strlen(id);
            char small[LUNA_PKI_IDENTITY_MAX];
            if (luna_pki_identity_from_cert(x, small, n) != LUNA_ERR_TOO_LARGE || small[0] != '\0')
                abort();
        }
        X509_free(x);
    }
    char s[LUNA_PKI_IDENTITY_MAX + 8];
    size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
    memcpy(s, data, n);
    s[n] = '\0';
    (void)luna_pki_identity_valid(s);
    return 0;
}
