/*
 * cli_api.c - the administrative commands (keys, tee, deployment, tenant,
 * apikey, client, data): each maps to one authenticated call to the
 * platform API through the gateway (luna_client_call) and prints the JSON
 * answer.  Must never take a secret on the command line: key material is
 * read from files given by path.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"

/* How an option travels: a JSON string, a JSON integer, or a query parameter. */
typedef enum opt_kind { OPT_STR = 0, OPT_INT = 1, OPT_QUERY = 2 } opt_kind;

typedef struct api_opt {
    const char *name;
    opt_kind kind;
} api_opt;

/* One subcommand: method, gateway path (":id" is replaced by --id's value),
   the options it takes (docs/cli.md; the gateway's schemas decide). */
typedef struct api_cmd {
    const char *group, *sub, *method, *path;
    const api_opt *opts; /* terminated by a NULL name */
    const char *help;
} api_cmd;

static const api_opt o_none[] = {{NULL, OPT_STR}};
static const api_opt o_reason[] = {{"reason", OPT_STR}, {NULL, OPT_STR}};
static const api_opt o_key[] = {{"key_id", OPT_STR}, {"rotation_period_sec", OPT_INT},
                                {NULL, OPT_STR}};
static const api_opt o_tee[] = {{"tee_id", OPT_STR},     {"deployment_id", OPT_STR},
                                {"tee_type", OPT_STR},   {"mr_enclave", OPT_STR},
                                {"mr_signer", OPT_STR},  {NULL, OPT_STR}};
static const api_opt o_tenant[] = {{"tenant_id", OPT_STR},
                                   {"display_name", OPT_STR},
                                   {"admin_principal_id", OPT_STR},
                                   {"api_key_ttl_sec", OPT_INT},
                                   {NULL, OPT_STR}};
static const api_opt o_apikey[] = {{"principal", OPT_STR}, {"expires_in_sec", OPT_INT},
                                   {NULL, OPT_STR}};
static const api_opt o_principal[] = {{"principal", OPT_STR}, {NULL, OPT_STR}};
static const api_opt o_principal_q[] = {{"principal", OPT_QUERY}, {NULL, OPT_STR}};
static const api_opt o_client[] = {{"principal_id", OPT_STR}, {"display_name", OPT_STR},
                                   {NULL, OPT_STR}};

static const api_cmd cmds[] = {
    {"keys", "list", "GET", "/v1/keys", o_none, "list the tenant's keys"},
    {"keys", "create", "POST", "/v1/keys", o_key, "--key_id ID [--rotation_period_sec S]"},
    {"keys", "rotate", "POST", "/v1/keys/:id/rotate", o_none, "--id KEY: rotate now"},
    {"keys", "revoke", "POST", "/v1/keys/:id/revoke", o_none, "--id KEY: revoke at once"},
    {"tee", "list", "GET", "/v1/tees", o_none, "list TEEs and their registry status"},
    {"tee", "register", "POST", "/v1/tees", o_tee,
     "--tee_id ID --deployment_id D --tee_type sim --mr_enclave HEX [--mr_signer HEX]"},
    {"tee", "quarantine", "POST", "/v1/tees/:id/quarantine", o_reason, "--id TEE [--reason R]"},
    {"deployment", "sign", "-", "-", o_none, "--spec FILE --key FILE [--out FILE] (offline)"},
    {"deployment", "list", "GET", "/v1/attestation/deployments", o_none,
     "configured and registered deployments (the attestation service's)"},
    {"deployment", "tees", "GET", "/v1/deployments", o_none,
     "deployments with registered TEEs (from the KMS registry)"},
    {"deployment", "register", "POST", "/v1/deployments", o_none,
     "--manifest FILE: register a manifest `deployment sign` wrote, signed with your key"},
    {"tenant", "list", "GET", "/v1/tenants", o_none, "your tenant and its settings"},
    {"tenant", "create", "POST", "/v1/tenants", o_tenant,
     "--tenant_id ID [--display_name N] [--admin_principal_id P] [--api_key_ttl_sec S]\n"
     "                    (platform admin; the owner's API key is printed once)"},
    {"apikey", "list", "GET", "/v1/apikeys", o_principal_q,
     "[--principal P]: key metadata (never the secrets)"},
    {"apikey", "create", "POST", "/v1/apikeys", o_apikey,
     "[--principal P] [--expires_in_sec S]: the new key is printed once"},
    {"apikey", "revoke", "POST", "/v1/apikeys/:id/revoke", o_principal,
     "--id KEY_ID [--principal P]: revoke at once"},
    {"client", "register", "POST", "/v1/clients", o_client,
     "--principal_id ID [--display_name N] --out FILE: the client key file, once"},
};

static void group_help(FILE *f, const char *group)
{
    fprintf(f, "usage: lunal %s <subcommand> [--option value ...] [--json]\n\n", group);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(cmds[i].group, group) == 0)
            fprintf(f, "  %s %-10s %s\n", group, cmds[i].sub, cmds[i].help);
    fprintf(f, "\nExit status: 0 ok, 2 usage, connection or platform error.\n");
}

static bool value_ok(const char *v)
{
    size_t n = strlen(v);
    return n > 0 && n <= 256 &&
           strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:") == n;
}

static char *read_text_file(const char *path)
{
    FILE *f = fopen(path, "re");
    char *buf;
    size_t n;

    if (f == NULL)
        return NULL;
    buf = calloc(1, 16385);
    n = buf != NULL ? fread(buf, 1, 16384, f) : 0;
    fclose(f);
    if (buf == NULL || n == 0 || n == 16384) {
        free(buf);
        return NULL;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = 0;
    return buf;
}

/* What a developer does about each refusal of `deployment register`
   (docs/cli.md); NULL for codes without advice. */
static const char *register_hint(const char *code)
{
    static const struct {
        const char *code, *hint;
    } hints[] = {
        {"bad_manifest", "the file is not a manifest `lunal deployment sign` wrote (or was edited)"},
        {"bad_signature", "the signature does not verify under the developer key IAM holds for "
                          "its key id: the manifest was altered or signed with another key"},
        {"unknown_developer_key", "IAM knows no developer with this signing key: register the "
                                  "developer (and its public key) first"},
        {"developer_key_revoked", "the signing key is revoked: sign with the developer's "
                                  "current key"},
        {"deployment_conflict", "this id is configured, owned by another developer, or "
                                "registered with a different manifest of this or a higher "
                                "version: raise \"version\" and sign again"},
        {"forbidden", "a developer registers only manifests signed with its own key"},
        {"permission_denied", "registration needs the developer role (deployments.register)"},
    };
    for (size_t i = 0; i < sizeof hints / sizeof hints[0]; i++)
        if (strcmp(hints[i].code, code) == 0)
            return hints[i].hint;
    return NULL;
}

/* `lunal deployment sign --spec FILE --key FILE [--out FILE]`: no network. */
static int deployment_sign(int argc, char **argv)
{
    const char *spec = NULL, *key = NULL, *outf = NULL;
    char *jws = NULL, kid[48], why[LUNAL_REASON_MAX];
    FILE *f;

    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            puts("usage: lunal deployment sign --spec FILE --key FILE [--out FILE]\n\n"
                 "Signs the deployment described by FILE ({\"name\",\"version\",\"jobs\","
                 "\"build_hash\",\"mr_enclave\",\"developer_id\"}) with the developer's\n"
                 "Ed25519 seed file (32 raw bytes or 64 hex, mode 0600).");
            return CLI_OK;
        } else if (strcmp(argv[i], "--spec") == 0 && i + 1 < argc) {
            spec = argv[++i];
        } else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
            key = argv[++i];
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            outf = argv[++i];
        } else {
            return cli_usage_error("deployment sign: unexpected %s", argv[i]);
        }
    }
    if (spec == NULL || key == NULL)
        return cli_usage_error("deployment sign: --spec and --key are required");
    if (luna_deployment_sign(spec, key, &jws, kid, why) != LUNA_OK)
        return cli_usage_error("deployment sign: %s", why);
    f = outf != NULL ? fopen(outf, "w") : stdout;
    if (f == NULL) {
        free(jws);
        return cli_usage_error("deployment sign: cannot write %s", outf);
    }
    fprintf(f, "%s\n", jws);
    if (f != stdout)
        fclose(f);
    fprintf(stderr, "signed with key %s\n", kid);
    free(jws);
    return CLI_OK;
}

/* The CLI sees only lunal.h: a wipe the compiler cannot drop. */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n-- > 0)
        *v++ = 0;
}

/* Free text (a reason, a display name): printable ASCII, 1..200 bytes. */
static bool text_ok(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 200)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
            return false;
    return true;
}

static bool int_ok(const char *v, json_int_t *out)
{
    size_t n = strlen(v);
    if (n == 0 || n > 10 || strspn(v, "0123456789") != n)
        return false;
    *out = (json_int_t)strtoll(v, NULL, 10);
    return true;
}

/*
 * `client register`: the answer carries the client's private key file
 * (shown once).  It goes to a new 0600 file and never to the terminal;
 * the rest of the answer is printed.  The answer buffer is wiped.
 */
static int write_client_key(const char *out_path, char *ans)
{
    json_t *root = json_loads(ans, JSON_REJECT_DUPLICATES, NULL);
    const char *kf = json_string_value(json_object_get(root, "key_file"));
    int rc = CLI_USAGE;
    if (kf == NULL) {
        fprintf(stderr, "lunal: client register: the answer has no key file\n");
        goto out;
    }
    int fd = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "lunal: client register: cannot create %s: %s (the client exists now; "
                        "rotate its key to get a new file)\n",
                out_path, strerror(errno));
        goto out;
    }
    size_t n = strlen(kf), off = 0;
    while (off < n) {
        ssize_t w = write(fd, kf + off, n - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    bool ok = off == n && write(fd, "\n", 1) == 1;
    if (close(fd) != 0)
        ok = false;
    if (!ok) {
        (void)unlink(out_path); /* never leave half a key behind */
        fprintf(stderr, "lunal: client register: writing %s failed\n", out_path);
        goto out;
    }
    /* Wipe the jansson copy before it is dropped from the printed answer. */
    wipe((void *)kf, n);
    json_object_del(root, "key_file");
    json_object_set_new(root, "key_file_written", json_string(out_path));
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (text != NULL)
        puts(text);
    free(text);
    rc = CLI_OK;
out:
    json_decref(root);
    return rc;
}

int cli_cmd_api(const cli_global *g, const char *group, int argc, char **argv)
{
    const api_cmd *cmd = NULL;
    json_t *body = NULL;
    char path[1024], query[512], *text = NULL, *ans = NULL, why[LUNAL_REASON_MAX];
    const char *id = NULL, *out_file = NULL;
    long status = 0;
    size_t ans_len = 0, qoff = 0;
    luna_client *c = NULL;
    int rc = CLI_USAGE;

    query[0] = '\0';
    if (strcmp(group, "data") == 0) {
        if (argc >= 2 && cli_is_help(argv[1])) {
            puts("usage: lunal data put|get|list|rm\n\nNot available: this platform has no "
                 "data store yet.");
            return CLI_OK;
        }
        return cli_usage_error("data: not available: this platform has no data store yet");
    }
    if (strcmp(group, "deployment") == 0 && argc >= 2 && strcmp(argv[1], "sign") == 0)
        return deployment_sign(argc - 1, argv + 1);
    if (argc < 2 || cli_is_help(argv[1])) {
        group_help(argc < 2 ? stderr : stdout, group);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(cmds[i].group, group) == 0 && strcmp(cmds[i].sub, argv[1]) == 0)
            cmd = &cmds[i];
    if (cmd == NULL) {
        group_help(stderr, group);
        return cli_usage_error("%s: unknown subcommand %s", group, argv[1]);
    }
    body = json_object();
    if (body == NULL)
        return CLI_USAGE;
    for (int i = 2; i < argc; i++) {
        const char *opt = argv[i];
        bool known = false;
        if (cli_is_help(opt)) {
            group_help(stdout, group);
            rc = CLI_OK;
            goto out;
        }
        if (strcmp(opt, "--json") == 0)
            continue;
        if (strncmp(opt, "--", 2) != 0 || i + 1 >= argc) {
            cli_usage_error("%s %s: unexpected %s", group, cmd->sub, opt);
            goto out;
        }
        opt += 2;
        if (strcmp(opt, "id") == 0 && strstr(cmd->path, ":id") != NULL) {
            id = argv[++i];
            known = true;
        } else if (strcmp(opt, "out") == 0 && strcmp(cmd->group, "client") == 0) {
            out_file = argv[++i];
            known = true;
        } else if (strcmp(opt, "manifest") == 0 && strcmp(cmd->group, "deployment") == 0 &&
                   strcmp(cmd->sub, "register") == 0) {
            char *m = read_text_file(argv[++i]);
            if (m == NULL) {
                cli_usage_error("deployment register: cannot read the manifest %s", argv[i]);
                goto out;
            }
            json_object_set_new(body, "manifest", json_string(m));
            free(m);
            known = true;
        } else {
            for (size_t k = 0; cmd->opts[k].name != NULL; k++) {
                const api_opt *o = &cmd->opts[k];
                const char *v = argv[i + 1];
                json_int_t num = 0;
                if (strcmp(o->name, opt) != 0)
                    continue;
                bool free_text = strcmp(opt, "reason") == 0 || strcmp(opt, "display_name") == 0;
                if ((o->kind == OPT_INT && !int_ok(v, &num)) ||
                    (o->kind != OPT_INT && !(free_text ? text_ok(v) : value_ok(v)))) {
                    cli_usage_error("%s %s: bad value for --%s", group, cmd->sub, opt);
                    goto out;
                }
                if (o->kind == OPT_QUERY) {
                    int n = snprintf(query + qoff, sizeof query - qoff, "%s%s=%s",
                                     qoff == 0 ? "?" : "&", opt, v);
                    if (n < 0 || (size_t)n >= sizeof query - qoff) {
                        cli_usage_error("%s %s: options too long", group, cmd->sub);
                        goto out;
                    }
                    qoff += (size_t)n;
                } else {
                    json_object_set_new(body, opt,
                                        o->kind == OPT_INT ? json_integer(num) : json_string(v));
                }
                i++;
                known = true;
                break;
            }
        }
        if (!known) {
            cli_usage_error("%s %s: unknown option --%s", group, cmd->sub, opt);
            goto out;
        }
    }
    if (strcmp(cmd->group, "client") == 0 && out_file == NULL) {
        cli_usage_error("client register: --out FILE is required (the key file is shown once)");
        goto out;
    }
    {
        const char *ph = strstr(cmd->path, ":id");
        if (ph != NULL) {
            if (id == NULL || !value_ok(id)) {
                cli_usage_error("%s %s: --id is required", group, cmd->sub);
                goto out;
            }
            /* ids are at most 256 bytes (value_ok), the query < 512: it fits. */
            snprintf(path, sizeof path, "%.*s%s%s%s", (int)(ph - cmd->path), cmd->path, id,
                     ph + 3, query);
        } else {
            snprintf(path, sizeof path, "%s%s", cmd->path, query);
        }
    }
    if (strcmp(cmd->method, "POST") == 0) {
        text = json_dumps(body, JSON_COMPACT);
        if (text == NULL)
            goto out;
    }
    if ((c = cli_client(g)) == NULL)
        goto out;
    if (luna_client_call(c, cmd->method, path, text, &status, &ans, &ans_len, why) != LUNA_OK) {
        fprintf(stderr, "lunal: %s %s: %s\n", group, cmd->sub, why);
        goto out;
    }
    if (status < 200 || status > 299) {
        json_t *e = json_loads(ans, 0, NULL);
        const json_t *eo = json_object_get(e, "error");
        const char *code = json_string_value(json_object_get(eo, "code"));
        const char *msg = json_string_value(json_object_get(eo, "message"));
        fprintf(stderr, "lunal: %s %s: refused (HTTP %ld): %s%s%s\n", group, cmd->sub, status,
                code != NULL ? code : "error", msg != NULL ? ": " : "", msg != NULL ? msg : "");
        if (strcmp(cmd->group, "deployment") == 0 && code != NULL && register_hint(code) != NULL)
            fprintf(stderr, "lunal: %s\n", register_hint(code));
        json_decref(e);
        goto out;
    }
    if (strcmp(cmd->group, "client") == 0) {
        rc = write_client_key(out_file, ans);
        goto out;
    }
    puts(ans);
    rc = CLI_OK;
out:
    free(text);
    if (ans != NULL)
        wipe(ans, ans_len); /* new API keys and key files pass through here */
    free(ans);
    json_decref(body);
    luna_client_free(c);
    return rc;
}
