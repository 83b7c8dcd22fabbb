/*
 * Fuzz target: untrusted ECDSA signature and key bytes through
 * luna_ecdsa_verify (strict DER check, P1363 conversion, SEC1 point load).
 * Input: byte 0 picks curve (bit 0), format (bit 1) and whether the rest is
 * a public key (bit 2) or a signature under a fixed key.  Nothing may read
 * out of bounds, a fuzzed input must never verify under the fixed key
 * (finding a forgery would be a bug), and a P1363 input that converts to
 * DER must be accepted by the strict DER check.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "luna/bytes.h"
#include "luna/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* RFC 6979 A.2.5 / A.2.6 public keys. */
static const char p256_pub[] =
    "0460fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"
    "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299";
static const char p384_pub[] =
    "04ec3a4e415b4e19a4568618029f427fa5da9a8bc4ae92e02e06aae5286b300c64def8f0ea9055866064a254"
    "515480bc138015d9b72d7d57244ea8ef9ac0c621896708a59367f9dfb9f54ca84b3f1c9db1288b231c3ae0d4"
    "fe7344fd2533264720";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t msg[] = "fuzz";
    static const uint8_t fixed_sig[96] = {1};
    uint8_t pub[97];
    size_t pub_len = 0;
    luna_ec_curve curve;
    luna_sig_format fmt;
    const char *hex;
    luna_err err;

    if (size < 1)
        return 0;
    curve = (data[0] & 1) ? LUNA_EC_P384 : LUNA_EC_P256;
    fmt = (data[0] & 2) ? LUNA_SIG_P1363 : LUNA_SIG_DER;
    hex = curve == LUNA_EC_P384 ? p384_pub : p256_pub;
    if (luna_hex_decode(hex, strlen(hex), pub, sizeof(pub), &pub_len) != LUNA_OK)
        abort();
    data++;
    size--;

    if (data[-1] & 4) {
        /* Fuzzed key, fixed (garbage) P1363 signature: must never verify. */
        err = luna_ecdsa_verify(curve, data, size, LUNA_SIG_P1363, msg, sizeof(msg), fixed_sig,
                                curve == LUNA_EC_P384 ? 96 : 64);
        if (err == LUNA_OK)
            abort();
        return 0;
    }
    err = luna_ecdsa_verify(curve, pub, pub_len, fmt, msg, sizeof(msg), data, size);
    if (err == LUNA_OK)
        abort();
    if (err != LUNA_ERR_VERIFY && err != LUNA_ERR_FORMAT)
        abort();
    if (fmt == LUNA_SIG_P1363) {
        uint8_t der[2 * 48 + 9];
        size_t der_len = 0;
        if (luna_ecdsa_p1363_to_der(curve, data, size, der, sizeof(der), &der_len) == LUNA_OK) {
            /* Our own DER must pass the strict check: only VERIFY may come back. */
            if (luna_ecdsa_verify(curve, pub, pub_len, LUNA_SIG_DER, msg, sizeof(msg), der,
                                  der_len) != LUNA_ERR_VERIFY)
                abort();
        }
    }
    return 0;
}
