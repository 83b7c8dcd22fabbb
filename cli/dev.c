/*
 * dev.c - `lunal dev up|down|status`: the embedded default that runs the
 * whole platform on one machine (docs/operations.md).
 *
 * Owns: the order components start in, waiting for /readyz, the demo
 * tenant's bootstrap, and the human report of what runs where.  Must
 * never: report a component as up that did not answer /readyz, leave a
 * process behind when `up` fails or after `down`, or print a secret (the
 * API keys stay in 0600 files; only their paths are printed).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "dev.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "dev_state.h"
#include "luna/http.h"

#define READY_TIMEOUT_MS 30000u
#define STOP_GRACE_MS 10000u
#define PORT_BASE_MAX 65000u

static void usage(FILE *f)
{
    fputs("usage: lunal dev up     [--dir DIR] [--port-base N]\n"
          "       lunal dev down   [--dir DIR]\n"
          "       lunal dev status [--dir DIR] [--json]\n"
          "\n"
          "Runs the whole platform on this machine for development: a platform CA,\n"
          "every component on 127.0.0.1 with SQLite, SoftHSM2, two SIMULATED TEEs,\n"
          "a demo tenant, developer and deployment `demo`.\n"
          "State folder: --dir, else $LUNAL_DEV_DIR, else ./" DEV_DEFAULT_DIR " (mode 0700).\n"
          "Ports: the gateway on --port-base (else $LUNAL_DEV_PORT_BASE, else 8443),\n"
          "the others after it (docs/operations.md).  A second `up` reuses the state.\n"
          "Exit status: 0 success, 1 a step failed or a component is unhealthy, 2 usage.\n",
          f);
}

/* ---- context ---- */

static luna_err parse_port_base(const char *s, unsigned *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < 1024 || v > PORT_BASE_MAX)
        return LUNA_ERR_INVALID_ARG;
    *out = (unsigned)v;
    return LUNA_OK;
}

static luna_err ctx_init(dev_ctx *c, const char *dir_opt, const char *port_opt)
{
    memset(c, 0, sizeof *c);
    const char *dir = dir_opt != NULL ? dir_opt : secure_getenv("LUNAL_DEV_DIR");
    if (dir == NULL || dir[0] == '\0')
        dir = DEV_DEFAULT_DIR;
    if (dir[0] == '/') {
        LUNA_ENSURE(strlen(dir) < sizeof c->dir, LUNA_ERR_TOO_LARGE);
        memcpy(c->dir, dir, strlen(dir) + 1);
    } else {
        char cwd[DEV_PATH_MAX];
        LUNA_ENSURE(getcwd(cwd, sizeof cwd) != NULL, LUNA_ERR_IO);
        int n = snprintf(c->dir, sizeof c->dir, "%s/%s", cwd, dir);
        LUNA_ENSURE(n > 0 && (size_t)n < sizeof c->dir, LUNA_ERR_TOO_LARGE);
    }
    size_t len = strlen(c->dir);
    while (len > 1 && c->dir[len - 1] == '/')
        c->dir[--len] = '\0';
    /* Where lunal runs from: the other executables are found next to it. */
    ssize_t n = readlink("/proc/self/exe", c->bindir, sizeof c->bindir - 1);
    LUNA_ENSURE(n > 0 && (size_t)n < sizeof c->bindir - 1, LUNA_ERR_IO);
    c->bindir[n] = '\0';
    char *slash = strrchr(c->bindir, '/');
    if (slash != NULL)
        *slash = '\0';
    c->port_base = DEV_DEFAULT_PORT_BASE;
    const char *port = port_opt != NULL ? port_opt : secure_getenv("LUNAL_DEV_PORT_BASE");
    if (port != NULL)
        LUNA_GUARD(parse_port_base(port, &c->port_base));
    return LUNA_OK;
}

/* The port base is fixed at the first `up` (run/ports) so later commands agree. */
static luna_err ports_load_or_save(dev_ctx *c, bool save)
{
    char path[DEV_PATH_MAX];
    LUNA_GUARD(dev_path(c, "run/ports", path, sizeof path));
    FILE *f = fopen(path, "re");
    if (f != NULL) {
        char line[32];
        bool ok = fgets(line, sizeof line, f) != NULL;
        (void)fclose(f);
        if (ok) {
            line[strcspn(line, "\n")] = '\0';
            unsigned base = 0;
            if (parse_port_base(line, &base) == LUNA_OK) {
                c->port_base = base;
                return LUNA_OK;
            }
        }
        return LUNA_ERR_FORMAT;
    }
    if (!save)
        return LUNA_OK;
    char line[32];
    int len = snprintf(line, sizeof line, "%u\n", c->port_base);
    return dev_write_file(path, line, (size_t)len, 0600);
}

/* One `dev` command at a time per state folder. */
static int lock_state(const dev_ctx *c)
{
    char path[DEV_PATH_MAX];
    if (dev_path(c, "run/lock", path, sizeof path) != LUNA_OK)
        return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "lunal dev: another `lunal dev` command is running on %s\n", c->dir);
        (void)close(fd);
        return -1;
    }
    return fd;
}

/* ---- HTTP to the components, as lunal://svc/dev ---- */

static luna_err fetch(const dev_ctx *c, unsigned port, const char *identity, const char *method,
                      const char *path, const char *body, unsigned timeout_sec,
                      luna_http_result *out)
{
    dev_tls_paths tp;
    LUNA_GUARD(dev_tls_paths_get(c, &tp));
    luna_http_client_opts o = {
        .tls = {.ca_file = tp.ca, .cert_file = tp.cert, .key_file = tp.key,
                .tee_ca_file = dev_exists(tp.tee_ca) ? tp.tee_ca : NULL},
        .host = "127.0.0.1",
        .port = (uint16_t)port,
        .expected_identity = identity,
        .timeout_sec = timeout_sec,
    };
    return luna_http_fetch(&o, method, path, body != NULL ? "application/json" : NULL, body,
                           body != NULL ? strlen(body) : 0, out);
}

static bool ready(const dev_ctx *c, const dev_comp *comp)
{
    luna_http_result r;
    memset(&r, 0, sizeof r);
    luna_err err = fetch(c, dev_port(c, comp), comp->identity, "GET", "/readyz", NULL, 2, &r);
    bool ok = err == LUNA_OK && r.status == 200;
    luna_http_result_free(&r);
    return ok;
}

/* GET path from comp and store the body as jwks/<name>.json. */
static luna_err save_jwks(const dev_ctx *c, const dev_comp *comp, const char *path,
                          dev_why *why)
{
    char file[DEV_PATH_MAX];
    LUNA_GUARD(dev_file(c, "jwks", comp->name, ".json", file, sizeof file));
    luna_http_result r;
    memset(&r, 0, sizeof r);
    luna_err err = fetch(c, dev_port(c, comp), comp->identity, "GET", path, NULL, 5, &r);
    if (err == LUNA_OK && r.status != 200)
        err = LUNA_ERR_UNAVAILABLE;
    if (err == LUNA_OK)
        err = dev_write_file(file, r.body, r.body_len, 0644);
    if (err != LUNA_OK)
        dev_why_set(why, "%s: GET %s failed (status %d, %s)", comp->name, path, r.status,
                    luna_strerror(err));
    luna_http_result_free(&r);
    return err;
}

/* ---- processes ---- */

static luna_err pid_path(const dev_ctx *c, const char *name, char *out, size_t cap)
{
    return dev_file(c, "run", name, ".pid", out, cap);
}

static bool comp_running(const dev_ctx *c, const dev_comp *comp, dev_pidrec *rec)
{
    char pp[DEV_PATH_MAX];
    return pid_path(c, comp->name, pp, sizeof pp) == LUNA_OK &&
           dev_proc_read_pidfile(pp, rec) == LUNA_OK && dev_proc_alive(rec);
}

static luna_err start_comp(const dev_ctx *c, const dev_comp *comp, dev_why *why)
{
    dev_pidrec rec;
    if (comp_running(c, comp, &rec))
        return LUNA_OK; /* a second `up` reuses what runs */
    char bin[DEV_PATH_MAX], cfg[DEV_PATH_MAX], log[DEV_PATH_MAX], pp[DEV_PATH_MAX],
        conf[DEV_PATH_MAX], envv[DEV_PATH_MAX + 32];
    luna_err err = dev_find_binary(c, comp->binary, comp->subdir, bin, sizeof bin);
    if (err != LUNA_OK) {
        dev_why_set(why, "%s: executable %s not found (not built yet? looked in "
                         "$LUNAL_BIN_DIR, %s/../%s/ and %s/)",
                    comp->name, comp->binary, c->bindir, comp->subdir, c->bindir);
        return err;
    }
    /* Stopped for sure: its files may be handed over (and its database moved). */
    if (strcmp(comp->name, "kms") == 0)
        LUNA_GUARD(dev_kms_prepare(c, why));
    LUNA_GUARD(dev_config_write(c, comp, why));
    LUNA_GUARD(dev_file(c, "config", comp->name, ".json", cfg, sizeof cfg));
    LUNA_GUARD(dev_file(c, "logs", comp->name, ".log", log, sizeof log));
    LUNA_GUARD(pid_path(c, comp->name, pp, sizeof pp));
    LUNA_GUARD(dev_path(c, "hsm/softhsm2.conf", conf, sizeof conf));
    int n = snprintf(envv, sizeof envv, "SOFTHSM2_CONF=%s", conf);
    LUNA_ENSURE(n > 0 && (size_t)n < sizeof envv, LUNA_ERR_TOO_LARGE);
    char *argv[8] = {bin};
    size_t k = 1;
    for (size_t i = 0; comp->args[i] != NULL && k + 1 < 8; i++)
        argv[k++] = strcmp(comp->args[i], "@CONFIG@") == 0 ? cfg : (char *)comp->args[i];
    argv[k] = NULL;
    char *env[] = {envv, NULL};
    err = dev_proc_spawn(argv, env, c->dir, log, pp, &rec);
    if (err != LUNA_OK) {
        dev_why_set(why, "%s: cannot start %s: %s", comp->name, bin, luna_strerror(err));
        return err;
    }
    uint64_t end = dev_now_ms() + READY_TIMEOUT_MS;
    for (;;) {
        if (!dev_proc_alive(&rec)) {
            dev_why_set(why, "%s exited during start-up; see %s", comp->name, log);
            return LUNA_ERR_UNAVAILABLE;
        }
        if (ready(c, comp))
            return LUNA_OK;
        if (dev_now_ms() >= end) {
            dev_why_set(why, "%s did not become ready (GET /readyz on port %u) within %u s; "
                             "see %s",
                        comp->name, dev_port(c, comp), READY_TIMEOUT_MS / 1000u, log);
            return LUNA_ERR_TIMEOUT;
        }
        dev_sleep_ms(200);
    }
}

/*
 * The gateway is ready once it has probed its TEEs once, but a TEE's
 * admission can finish after that probe on a loaded machine: "up" means
 * the gateway counts every TEE healthy (GET /v1/health), so the first
 * request after `dev up` never meets no_tee_available.
 */
static luna_err wait_tees(const dev_ctx *c, const dev_comp *gw, dev_why *why)
{
    uint64_t end = dev_now_ms() + READY_TIMEOUT_MS;
    json_int_t healthy = -1;
    for (;;) {
        luna_http_result r;
        memset(&r, 0, sizeof r);
        if (fetch(c, dev_port(c, gw), gw->identity, "GET", "/v1/health", NULL, 2, &r) ==
                LUNA_OK &&
            r.status == 200) {
            json_t *o = json_loadb((const char *)r.body, r.body_len, 0, NULL);
            const json_t *n = json_object_get(o, "healthy_tees");
            healthy = json_is_integer(n) ? json_integer_value(n) : -1;
            json_decref(o);
        }
        luna_http_result_free(&r);
        if (healthy >= (json_int_t)DEV_N_TEES)
            return LUNA_OK;
        if (dev_now_ms() >= end) {
            dev_why_set(why, "the gateway counts %lld of %u TEEs healthy after %u s; see the "
                             "logs of tee-host and attestation",
                        (long long)(healthy < 0 ? 0 : healthy), (unsigned)DEV_N_TEES,
                        READY_TIMEOUT_MS / 1000u);
            return LUNA_ERR_TIMEOUT;
        }
        dev_sleep_ms(200);
    }
}

static int stop_all(const dev_ctx *c, bool quiet)
{
    int rc = 0;
    for (size_t i = dev_n_comps; i-- > 0;) {
        const dev_comp *comp = &dev_comps[i];
        char pp[DEV_PATH_MAX];
        dev_pidrec rec;
        if (pid_path(c, comp->name, pp, sizeof pp) != LUNA_OK)
            continue;
        luna_err err = dev_proc_read_pidfile(pp, &rec);
        if (err == LUNA_ERR_NOT_FOUND)
            continue;
        if (err != LUNA_OK) {
            fprintf(stderr, "lunal dev down: %s: unreadable pidfile %s, left alone\n",
                    comp->name, pp);
            rc = 1;
            continue;
        }
        bool was = dev_proc_alive(&rec);
        err = dev_proc_stop(&rec, STOP_GRACE_MS);
        if (err != LUNA_OK) {
            fprintf(stderr, "lunal dev down: %s (pid %ld) did not stop\n", comp->name,
                    (long)rec.pid);
            rc = 1;
            continue;
        }
        (void)unlink(pp);
        if (!quiet && was)
            printf("stopped %-12s pid %ld\n", comp->name, (long)rec.pid);
    }
    return rc;
}

/* ---- the demo tenant (IAM bootstrap) ---- */

static luna_err bootstrap_tenant(const dev_ctx *c, dev_why *why)
{
    char key[DEV_PATH_MAX], cfg[DEV_PATH_MAX], bin[DEV_PATH_MAX], log[DEV_PATH_MAX];
    LUNA_GUARD(dev_path(c, "client/admin_api_key", key, sizeof key));
    if (dev_exists(key))
        return LUNA_OK;
    LUNA_GUARD(dev_file(c, "config", "iam", ".json", cfg, sizeof cfg));
    LUNA_GUARD(dev_path(c, "logs/setup.log", log, sizeof log));
    if (dev_find_binary(c, "luna-iam", "iam", bin, sizeof bin) != LUNA_OK) {
        dev_why_set(why, "luna-iam not found");
        return LUNA_ERR_NOT_FOUND;
    }
    LUNA_GUARD(dev_config_write(c, &dev_comps[0], why));
    char *argv[] = {bin, (char *)"bootstrap", (char *)"--config", cfg, (char *)"--tenant",
                    (char *)DEV_TENANT, (char *)"--out", key, NULL};
    int st = -1;
    luna_err err = dev_proc_run(argv, NULL, log, NULL, 0, 30000, &st);
    if (err != LUNA_OK || st != 0) {
        dev_why_set(why, "luna-iam bootstrap --tenant %s failed (exit %d); see %s", DEV_TENANT,
                    st, log);
        return err != LUNA_OK ? err : LUNA_ERR_INTERNAL;
    }
    return LUNA_OK;
}

static const dev_comp *comp_named(const char *name)
{
    for (size_t i = 0; i < dev_n_comps; i++)
        if (strcmp(dev_comps[i].name, name) == 0)
            return &dev_comps[i];
    return NULL;
}

/* ---- commands ---- */

static void print_table(const dev_ctx *c)
{
    printf("%-12s %-8s %-6s %-8s %s\n", "COMPONENT", "PID", "PORT", "HEALTH", "LOG");
    for (size_t i = 0; i < dev_n_comps; i++) {
        const dev_comp *comp = &dev_comps[i];
        dev_pidrec rec;
        char log[DEV_PATH_MAX];
        bool run = comp_running(c, comp, &rec);
        bool ok = run && ready(c, comp);
        if (dev_file(c, "logs", comp->name, ".log", log, sizeof log) != LUNA_OK)
            log[0] = '\0';
        char pid[24];
        if (run)
            (void)snprintf(pid, sizeof pid, "%ld", (long)rec.pid);
        else
            (void)snprintf(pid, sizeof pid, "-");
        printf("%-12s %-8s %-6u %-8s %s\n", comp->name, pid, dev_port(c, comp),
               !run ? "stopped" : ok ? "ready" : "unready", log);
    }
}

static int cmd_up(dev_ctx *c)
{
    dev_why why;
    memset(&why, 0, sizeof why);
    luna_err err = dev_mkdir(c->dir);
    char run[DEV_PATH_MAX];
    if (err == LUNA_OK)
        err = dev_path(c, "run", run, sizeof run);
    if (err == LUNA_OK)
        err = dev_mkdir(run);
    if (err != LUNA_OK) {
        fprintf(stderr, "lunal dev up: state folder %s: %s (it must be ours, mode 0700)\n",
                c->dir, luna_strerror(err));
        return 1;
    }
    int lock = lock_state(c);
    if (lock < 0)
        return 1;
    int rc = 1;
    const char *step = "prepare";
    if (ports_load_or_save(c, true) != LUNA_OK) {
        dev_why_set(&why, "run/ports is unreadable");
        goto fail;
    }
    printf("lunal dev: state %s, ports %u..%u\n", c->dir, c->port_base,
           dev_tee_port(c, DEV_N_TEES - 1));
    fflush(stdout);
    step = "certificates, keys, sim platform, demo deployment";
    if (dev_prepare(c, &why) != LUNA_OK)
        goto fail;
    step = "iam bootstrap";
    if (bootstrap_tenant(c, &why) != LUNA_OK)
        goto fail;
    for (size_t i = 0; i < dev_n_comps; i++) {
        const dev_comp *comp = &dev_comps[i];
        static char stepbuf[64];
        (void)snprintf(stepbuf, sizeof stepbuf, "start %s", comp->name);
        step = stepbuf;
        if (start_comp(c, comp, &why) != LUNA_OK)
            goto fail;
        printf("ready %-12s port %u\n", comp->name, dev_port(c, comp));
        fflush(stdout);
        /* The JWKS files the next components verify tokens and reports with. */
        if (strcmp(comp->name, "iam") == 0 &&
            save_jwks(c, comp, "/v1/iam/jwks", &why) != LUNA_OK)
            goto fail;
        if (strcmp(comp->name, "attestation") == 0 &&
            save_jwks(c, comp, "/v1/attestation/jwks", &why) != LUNA_OK)
            goto fail;
        if (strcmp(comp->name, "kms") == 0) {
            step = "demo principals and TEE registration";
            if (dev_bootstrap_demo(c, &why) != LUNA_OK)
                goto fail;
        }
    }
    step = "TEEs healthy at the gateway";
    if (comp_named("gateway") == NULL || wait_tees(c, comp_named("gateway"), &why) != LUNA_OK)
        goto fail;
    step = "client config";
    if (dev_client_config_write(c, &why) != LUNA_OK)
        goto fail;
    print_table(c);
    printf("client config: %s/client/client.json (export LUNAL_CONFIG=%s/client/client.json)\n",
           c->dir, c->dir);
    printf("SIMULATED TEEs: development only, no hardware protection.\n");
    rc = 0;
    (void)close(lock);
    return rc;
fail:
    fprintf(stderr, "lunal dev up: FAILED at step \"%s\": %s\n", step,
            why.msg[0] != '\0' ? why.msg : "(no detail)");
    fprintf(stderr, "lunal dev up: stopping what was started\n");
    (void)stop_all(c, true);
    (void)close(lock);
    return rc;
}

static int cmd_down(dev_ctx *c)
{
    if (!dev_exists(c->dir)) {
        printf("lunal dev: nothing to stop (%s does not exist)\n", c->dir);
        return 0;
    }
    int lock = lock_state(c);
    if (lock < 0)
        return 1;
    (void)ports_load_or_save(c, false);
    int rc = stop_all(c, false);
    (void)close(lock);
    if (rc == 0)
        printf("lunal dev: platform stopped (state kept in %s)\n", c->dir);
    return rc;
}

static int cmd_status(dev_ctx *c, bool as_json)
{
    if (!dev_exists(c->dir)) {
        fprintf(stderr, "lunal dev status: no dev platform in %s (run `lunal dev up`)\n",
                c->dir);
        return 1;
    }
    (void)ports_load_or_save(c, false);
    int rc = 0;
    if (as_json) {
        json_t *arr = json_array();
        for (size_t i = 0; arr != NULL && i < dev_n_comps; i++) {
            const dev_comp *comp = &dev_comps[i];
            dev_pidrec rec;
            bool run = comp_running(c, comp, &rec);
            bool ok = run && ready(c, comp);
            rc |= ok ? 0 : 1;
            (void)json_array_append_new(
                arr, json_pack("{s:s,s:I,s:i,s:s}", "component", comp->name, "pid",
                               (json_int_t)(run ? rec.pid : 0), "port",
                               (json_int_t)dev_port(c, comp), "health",
                               !run ? "stopped" : ok ? "ready" : "unready"));
        }
        char *s = arr != NULL ? json_dumps(arr, JSON_COMPACT) : NULL;
        json_decref(arr);
        if (s == NULL)
            return 1;
        printf("%s\n", s);
        free(s);
        return rc;
    }
    print_table(c);
    for (size_t i = 0; i < dev_n_comps; i++) {
        dev_pidrec rec;
        if (!comp_running(c, &dev_comps[i], &rec) || !ready(c, &dev_comps[i]))
            rc = 1;
    }
    return rc;
}

int lunal_cmd_dev(int argc, char **argv)
{
    /* argv[0] is "dev" (or the program), argv[1] the subcommand. */
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        usage(stdout);
        return 0;
    }
    const char *dir = NULL, *port = NULL;
    bool as_json = false;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--port-base") == 0 && i + 1 < argc &&
                 strcmp(sub, "up") == 0)
            port = argv[++i];
        else if (strcmp(argv[i], "--json") == 0 && strcmp(sub, "status") == 0)
            as_json = true;
        else {
            fprintf(stderr, "lunal dev %s: unknown or incomplete option '%s'\n", sub, argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (strcmp(sub, "up") != 0 && strcmp(sub, "down") != 0 && strcmp(sub, "status") != 0) {
        fprintf(stderr, "lunal dev: unknown command '%s'\n", sub);
        usage(stderr);
        return 2;
    }
    dev_ctx c;
    luna_err err = ctx_init(&c, dir, port);
    if (err == LUNA_ERR_INVALID_ARG) {
        fprintf(stderr, "lunal dev: the port base must be 1024..%u\n", PORT_BASE_MAX);
        return 2;
    }
    if (err != LUNA_OK) {
        fprintf(stderr, "lunal dev: %s\n", luna_strerror(err));
        return 1;
    }
    if (strcmp(sub, "up") == 0)
        return cmd_up(&c);
    if (strcmp(sub, "down") == 0)
        return cmd_down(&c);
    return cmd_status(&c, as_json);
}
