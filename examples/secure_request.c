/*
 * secure_request.c - the two steps of DESIGN.md section 1, nothing more:
 * a client for a tenant (API key from the environment, everything else
 * from the client config in $LUNAL_CONFIG) and one request.  The SDK
 * authenticates, picks a TEE, verifies its attestation here, seals the
 * double envelope and checks the signed result.
 *
 *   cc secure_request.c $(pkg-config --cflags --libs lunal) -o secure_request
 *   LUNAL_CONFIG=.lunal/dev/client.json ./secure_request wordstats "some text"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lunal.h>

int main(int argc, char **argv)
{
    const char *job = argc > 1 ? argv[1] : "wordstats";
    const char *data = argc > 2 ? argv[2] : "The quick brown fox jumps over the lazy dog.";

    /* tenant_id NULL: LUNAL_TENANT, else the config's tenant_id. */
    luna_client *c = luna_client_new(&(luna_client_opts){
        .tenant_id = getenv("LUNAL_TENANT"), .api_key = getenv("LUNAL_API_KEY")});
    if (c == NULL) {
        fprintf(stderr, "client configuration failed (see LUNAL_CONFIG)\n");
        return 2;
    }
    luna_result *r = luna_request(c, job, data, strlen(data)); /* job + data */

    int rc = 0;
    if (r == NULL || r->err != LUNA_OK) {
        fprintf(stderr, "request failed: %s\n", r != NULL ? r->reason : "out of memory");
        rc = r != NULL && r->err == LUNA_ERR_VERIFY ? 1 : 2;
    } else {
        fwrite(r->data, 1, r->len, stdout);
        fprintf(stdout, "\n(verified: TEE %s%s, request %s)\n", r->receipt.tee_id,
                r->receipt.simulated ? ", SIMULATED" : "", r->receipt.request_id);
    }
    luna_result_free(r);
    luna_client_free(c);
    return rc;
}
