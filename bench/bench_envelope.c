/*
 * bench_envelope.c - seal + open of a 64 MiB double envelope against the
 * baseline measured in the same run: one AES-256-GCM seal + open of the
 * same 64 MiB through luna_aead.  The envelope encrypts twice, so 50% of
 * the baseline's throughput is the ceiling; the target is at least 45%.
 * Benchmark only: fixed keys, never a pattern for production code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "luna/crypto.h"
#include "luna/envelope.h"

#define PAYLOAD LUNA_ENVELOPE_MAX_PAYLOAD
#define ROUNDS 3

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, luna_err err)
{
    fprintf(stderr, "bench_envelope: %s failed: %s\n", what, luna_errname(err));
    exit(1);
}

int main(void)
{
    static const luna_envelope_ids ids = {"bench", "bulk", "tee-bench", "req-bench"};
    uint8_t client_sk[32], client_pk[32], tee_sk[32], tee_pk[32], otk[32], key[32], nonce[12];
    size_t env_len;
    luna_err err;
    double best_env = 1e9, best_base = 1e9;

    if ((err = luna_x25519_keygen(client_sk, client_pk)) != LUNA_OK ||
        (err = luna_x25519_keygen(tee_sk, tee_pk)) != LUNA_OK ||
        (err = luna_random(otk, sizeof(otk))) != LUNA_OK ||
        (err = luna_random(key, sizeof(key))) != LUNA_OK ||
        (err = luna_random(nonce, sizeof(nonce))) != LUNA_OK)
        die("keygen", err);
    if ((err = luna_envelope_sealed_len(&ids, PAYLOAD, &env_len)) != LUNA_OK)
        die("sealed_len", err);
    uint8_t *pt = malloc(PAYLOAD);
    uint8_t *env = malloc(env_len);
    uint8_t *base = malloc(PAYLOAD + LUNA_AEAD_TAG_LEN);
    if (pt == NULL || env == NULL || base == NULL)
        die("malloc", LUNA_ERR_NOMEM);
    for (size_t i = 0; i < PAYLOAD; i++)
        pt[i] = (uint8_t)(i * 31 + 7);

    luna_envelope_seal_params sp = {.ids = ids, .client_sk = client_sk, .tee_pk = tee_pk,
                                    .otk = otk};
    luna_envelope_open_params op = {.tee_id = ids.tee_id, .tenant = ids.tenant, .job = ids.job,
                                    .request_id = ids.request_id, .tee_sk = tee_sk, .otk = otk,
                                    .client_pk = client_pk};
    for (int r = 0; r < ROUNDS; r++) {
        /* Baseline: one AEAD layer, seal + open, in place (as the envelope does). */
        memcpy(base, pt, PAYLOAD);
        double t0 = now();
        if ((err = luna_aead_seal(LUNA_AEAD_AES256GCM, key, 32, nonce, 12, NULL, 0, base, PAYLOAD,
                                  base)) != LUNA_OK ||
            (err = luna_aead_open(LUNA_AEAD_AES256GCM, key, 32, nonce, 12, NULL, 0, base,
                                  PAYLOAD + LUNA_AEAD_TAG_LEN, base)) != LUNA_OK)
            die("baseline aead", err);
        double t1 = now();
        if (memcmp(base, pt, PAYLOAD) != 0)
            die("baseline round trip", LUNA_ERR_INTERNAL);

        /* Envelope: seal (copies pt once, two in-place passes) + open in place. */
        luna_wbuf w;
        luna_envelope_header h;
        uint8_t *out;
        size_t out_len;
        luna_wbuf_init(&w, env, env_len);
        double t2 = now();
        if ((err = luna_envelope_seal(&sp, pt, PAYLOAD, &w)) != LUNA_OK)
            die("envelope seal", err);
        if ((err = luna_envelope_open(env, env_len, &op, &h, &out, &out_len)) != LUNA_OK)
            die("envelope open", err);
        double t3 = now();
        if (out_len != PAYLOAD || memcmp(out, pt, PAYLOAD) != 0)
            die("envelope round trip", LUNA_ERR_INTERNAL);
        if (t1 - t0 < best_base)
            best_base = t1 - t0;
        if (t3 - t2 < best_env)
            best_env = t3 - t2;
    }
    double mib = (double)PAYLOAD / (1024.0 * 1024.0);
    double env_rate = mib / best_env, base_rate = mib / best_base;
    printf("payload: %.0f MiB, best of %d rounds, seal+open each\n", mib, ROUNDS);
    printf("baseline  AES-256-GCM seal+open (luna_aead): %8.1f MiB/s (%.3f s)\n", base_rate,
           best_base);
    printf("envelope  double envelope seal+open:         %8.1f MiB/s (%.3f s)\n", env_rate,
           best_env);
    printf("ratio envelope/baseline: %.1f%% (ceiling 50%%: two AEAD layers; target >= 45%%) %s\n",
           100.0 * env_rate / base_rate, env_rate / base_rate >= 0.45 ? "OK" : "BELOW TARGET");
    free(pt);
    free(env);
    free(base);
    return 0;
}
