/*
 * cli_api.c - the administrative commands (keys, tee, deployment, tenant,
 * apikey, client, audit, data): each maps to one authenticated call to the
 * platform API through the gateway (luna_client_call) and prints the JSON
 * answer.  Must never take a secret on the command line: key material is
 * read from files given by path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

/* One subcommand: method, path (":id" is replaced by --id's value), the
   options copied into the JSON body. */
typedef struct api_cmd {
    const char *group, *sub, *method, *path;
    const char *const *body_opts; /* NULL-terminated */
    const char *help;
} api_cmd;

static const char *const o_none[] = {NULL};
static const char *const o_reason[] = {"reason", NULL};
static const char *const o_tee[] = {"tee_id", "deployment_id", "tenant_id", "evidence_type", NULL};
static const char *const o_tenant[] = {"tenant_id", "name", NULL};
static const char *const o_apikey[] = {"principal", "expires_in", NULL};
static const char *const o_client[] = {"name", "public_key", NULL};

static const api_cmd cmds[] = {
    {"keys", "list", "GET", "/v1/keys", o_none, "list the tenant's keys"},
    {"keys", "rotate", "POST", "/v1/keys/:id/rotate", o_none, "--id KEY: rotate now"},
    {"keys", "revoke", "POST", "/v1/keys/:id/revoke", o_reason, "--id KEY [--reason R]"},
    {"tee", "list", "GET", "/v1/tees", o_none, "list TEEs and their registry status"},
    {"tee", "register", "POST", "/v1/tees", o_tee,
     "--tee_id ID --deployment_id D --tenant_id T --evidence_type sim"},
    {"tee", "quarantine", "POST", "/v1/tees/:id/quarantine", o_reason, "--id TEE --reason R"},
    {"deployment", "sign", "-", "-", o_none, "--spec FILE --key FILE [--out FILE] (offline)"},
    {"deployment", "list", "GET", "/v1/deployments", o_none, "list deployments"},
    {"deployment", "register", "POST", "/v1/deployments", o_none,
     "--manifest FILE: register a developer-signed manifest"},
    {"tenant", "list", "GET", "/v1/tenants", o_none, "list tenants"},
    {"tenant", "create", "POST", "/v1/tenants", o_tenant, "--tenant_id ID [--name N]"},
    {"apikey", "list", "GET", "/v1/apikeys", o_none, "list API keys (never the secrets)"},
    {"apikey", "create", "POST", "/v1/apikeys", o_apikey,
     "[--principal P] [--expires_in S]: the new key is printed once"},
    {"apikey", "revoke", "POST", "/v1/apikeys/:id/revoke", o_none, "--id KEY_ID"},
    {"client", "register", "POST", "/v1/clients", o_client,
     "--name N --public_key HEX: register a client X25519 public key"},
    {"audit", "tail", "GET", "/v1/audit/entries", o_none, "the latest audit entries"},
    {"audit", "proof", "GET", "/v1/audit/proof/:id", o_none, "--id INDEX: inclusion proof"},
    {"audit", "checkpoint", "GET", "/v1/audit/checkpoint", o_none, "the signed checkpoint"},
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

int cli_cmd_api(const cli_global *g, const char *group, int argc, char **argv)
{
    const api_cmd *cmd = NULL;
    json_t *body = NULL;
    char path[512], *text = NULL, *ans = NULL, why[LUNAL_REASON_MAX];
    const char *id = NULL;
    long status = 0;
    luna_client *c = NULL;
    int rc = CLI_USAGE;

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
    if (strcmp(group, "audit") == 0 && argc >= 2 && strcmp(argv[1], "verify") == 0)
        return cli_usage_error("audit verify: not available in this build of lunal "
                               "(use `lunal audit checkpoint` and `lunal audit proof`)");
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
        if (strcmp(opt, "id") == 0) {
            id = argv[++i];
            known = true;
        } else if (strcmp(opt, "manifest") == 0 && strcmp(cmd->group, "deployment") == 0) {
            char *m = read_text_file(argv[++i]);
            if (m == NULL) {
                cli_usage_error("deployment register: cannot read the manifest %s", argv[i]);
                goto out;
            }
            json_object_set_new(body, "manifest", json_string(m));
            free(m);
            known = true;
        } else {
            for (size_t k = 0; cmd->body_opts[k] != NULL; k++)
                if (strcmp(cmd->body_opts[k], opt) == 0) {
                    if (!value_ok(argv[i + 1])) {
                        cli_usage_error("%s %s: bad value for --%s", group, cmd->sub, opt);
                        goto out;
                    }
                    json_object_set_new(body, opt, json_string(argv[++i]));
                    known = true;
                    break;
                }
        }
        if (!known) {
            cli_usage_error("%s %s: unknown option --%s", group, cmd->sub, opt);
            goto out;
        }
    }
    {
        const char *ph = strstr(cmd->path, ":id");
        if (ph != NULL) {
            if (id == NULL || !value_ok(id)) {
                cli_usage_error("%s %s: --id is required", group, cmd->sub);
                goto out;
            }
            snprintf(path, sizeof path, "%.*s%s%s", (int)(ph - cmd->path), cmd->path, id,
                     ph + 3);
        } else {
            snprintf(path, sizeof path, "%s", cmd->path);
        }
    }
    if (strcmp(cmd->method, "POST") == 0) {
        text = json_dumps(body, JSON_COMPACT);
        if (text == NULL)
            goto out;
    }
    if ((c = cli_client(g)) == NULL)
        goto out;
    if (luna_client_call(c, cmd->method, path, text, &status, &ans, NULL, why) != LUNA_OK) {
        fprintf(stderr, "lunal: %s %s: %s\n", group, cmd->sub, why);
        goto out;
    }
    if (status < 200 || status > 299) {
        fprintf(stderr, "lunal: %s %s: HTTP %ld %s\n", group, cmd->sub, status, ans);
        goto out;
    }
    puts(ans);
    rc = CLI_OK;
out:
    free(text);
    free(ans);
    json_decref(body);
    luna_client_free(c);
    return rc;
}
