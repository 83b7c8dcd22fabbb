/*
 * jws_tool.c - the project's side of the JWS interoperability test
 * (tests/interop/jws_interop.mjs drives it against the npm `jose`).
 * Test helper only: never installed, never linked into a component.
 *
 *   jws_tool mint <kid> <iss> <aud> <ttl-seconds>
 *       new Ed25519 key; prints {"jwks":<published set>,"token":"<JWT>"}
 *   jws_tool verify <jwks-file> <iss> <aud>      (token on stdin)
 *       exit 0 and the claims as compact JSON on success; exit 2 and the
 *       luna_errname of the refusal on failure; exit 1 on usage/IO errors.
 * It must never print a private key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "luna/jws.h"

#define TOOL_MAX_INPUT (LUNA_JWS_MAX_JWKS_LEN + 1u)

/* Reads at most TOOL_MAX_INPUT bytes; a longer input is passed on
   truncated-but-over-cap so the library's own cap decides. */
static char *read_all(FILE *f, size_t *len)
{
    char *buf = malloc(TOOL_MAX_INPUT + 1);
    if (buf == NULL)
        return NULL;
    *len = fread(buf, 1, TOOL_MAX_INPUT, f);
    buf[*len] = '\0';
    return buf;
}

static int cmd_mint(const char *kid, const char *iss, const char *aud, const char *ttl_s)
{
    luna_jws_signer *s = NULL;
    luna_jws_keyset *ks = NULL;
    json_t *claims = NULL, *jwks = NULL, *out = NULL;
    char *token = NULL, *doc = NULL, *text = NULL;
    int rc = 1;
    char *end;
    long ttl = strtol(ttl_s, &end, 10);
    time_t now = time(NULL);

    if (*end != '\0' || ttl <= 0 || ttl > 86400 || now == (time_t)-1)
        return 1;
    claims = json_pack("{s:s,s:s,s:s,s:I,s:I,s:{s:s}}", "iss", iss, "sub", "luna-interop-subject",
                       "aud", aud, "iat", (json_int_t)now, "exp", (json_int_t)(now + ttl),
                       "luna", "tenant", "t-1");
    if (claims == NULL || luna_jws_signer_generate(kid, &s) != LUNA_OK ||
        luna_jws_keyset_new(&ks) != LUNA_OK || luna_jws_signer_publish(s, ks) != LUNA_OK ||
        luna_jws_keyset_export(ks, &doc, NULL) != LUNA_OK ||
        luna_jws_sign(s, claims, &token, NULL) != LUNA_OK)
        goto out;
    jwks = json_loads(doc, 0, NULL);
    if (jwks == NULL)
        goto out;
    out = json_pack("{s:O,s:s}", "jwks", jwks, "token", token);
    if (out == NULL || (text = json_dumps(out, JSON_COMPACT)) == NULL)
        goto out;
    printf("%s\n", text);
    rc = 0;
out:
    free(text);
    json_decref(out);
    json_decref(jwks);
    json_decref(claims);
    free(token);
    free(doc);
    luna_jws_keyset_free(ks);
    luna_jws_signer_free(s);
    return rc;
}

static int cmd_verify(const char *jwks_path, const char *iss, const char *aud)
{
    luna_jws_keyset *ks = NULL;
    luna_jws_verify_opts opts;
    json_t *claims = NULL;
    char *doc = NULL, *token = NULL, *text = NULL;
    size_t doc_len, token_len;
    luna_err err;
    int rc = 1;
    FILE *f = fopen(jwks_path, "rb");

    if (f == NULL)
        return 1;
    doc = read_all(f, &doc_len);
    fclose(f);
    token = read_all(stdin, &token_len);
    if (doc == NULL || token == NULL)
        goto out;
    while (token_len > 0 && (token[token_len - 1] == '\n' || token[token_len - 1] == '\r'))
        token[--token_len] = '\0';
    err = luna_jws_keyset_load(doc, doc_len, &ks);
    if (err != LUNA_OK) {
        fprintf(stderr, "jws_tool: key set refused: %s\n", luna_errname(err));
        goto out;
    }
    luna_jws_verify_opts_init(&opts);
    opts.issuer = iss;
    opts.audience = aud;
    opts.audience_any_of = true; /* RFC 7519 interop: jose mints an aud array */
    err = luna_jws_verify(ks, token, token_len, &opts, &claims, NULL);
    if (err != LUNA_OK) {
        printf("%s\n", luna_errname(err));
        rc = 2;
        goto out;
    }
    text = json_dumps(claims, JSON_COMPACT);
    if (text == NULL)
        goto out;
    printf("%s\n", text);
    rc = 0;
out:
    free(text);
    json_decref(claims);
    free(token);
    free(doc);
    luna_jws_keyset_free(ks);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "mint") == 0)
        return cmd_mint(argv[2], argv[3], argv[4], argv[5]);
    if (argc == 5 && strcmp(argv[1], "verify") == 0)
        return cmd_verify(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: jws_tool mint <kid> <iss> <aud> <ttl>\n"
                    "       jws_tool verify <jwks-file> <iss> <aud> < token\n");
    return 1;
}
