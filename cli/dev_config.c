/*
 * dev_config.c - the one-time material and the JSON configs of the dev
 * platform.
 *
 * Owns: CA and TEE CA initialisation and certificate issue (through the
 * real luna-ca tool), the sim platform, the SoftHSM token, the developer
 * key and the signed demo manifest, every component's config file.
 * Also, as root, the system users the KMS's two halves run as (lunal-hsm,
 * lunal-kms) and what each may reach.
 * Must never: put a passphrase, PIN or key on a command line other than
 * softhsm2-util's (it has no other way; development only, and said so in
 * docs/operations.md), write a secret with a mode other than 0600, reuse
 * a passphrase across the two CAs, give the KMS's user anything beyond
 * the files it reads after dropping root, or chown through a path a
 * less-privileged user could redirect.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "dev_state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "luna/audience.h"
#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/manifest.h"

#define SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define HSM_TOKEN "lunal-dev"
/* The uid a root KMS runs its HSM process as (docs/kms-hsm.md, H2). */
#define HSM_USER "lunal-hsm"
/* The uid a root KMS switches to once its HSM process runs (kms.user,
   docs/kms.md "Privilege drop"); never root, never HSM_USER. */
#define KMS_USER "lunal-kms"
/* The KMS's own folder (its database), relative to the state folder. */
#define KMS_DIR "kms"
#define CERT_HOURS "720"
#define SEED_LEN 32u
#define SECRET_HEX_LEN 64u
#define DEV_AUDIT_ORIGIN "lunal.dev/audit"
#define DEV_WITNESS_NAME "lunal.dev/witness"
#define VKEY_MAX 512u

/* Every identity that gets a certificate from the platform CA. */
static const char *const svc_names[] = {"iam", "audit", "attestation", "kms",
                                        "tee-host", "gateway", "dev", "witness"};

void dev_why_set(dev_why *w, const char *fmt, ...)
{
    if (w == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(w->msg, sizeof w->msg, fmt, ap);
    va_end(ap);
}

/* Runs a tool to completion; its output goes to logs/setup.log. */
static luna_err run_tool(const dev_ctx *c, char *const argv[], char *const env[], char *out,
                         size_t cap, dev_why *why)
{
    char log[DEV_PATH_MAX];
    LUNA_GUARD(dev_path(c, "logs/setup.log", log, sizeof log));
    int st = -1;
    luna_err err = dev_proc_run(argv, env, log, out, cap, 60000, &st);
    if (err != LUNA_OK || st != 0) {
        dev_why_set(why, "%s %s failed (exit %d, %s); see %s", argv[0],
                    argv[1] != NULL ? argv[1] : "", st, luna_strerror(err), log);
        return err != LUNA_OK ? err : LUNA_ERR_INTERNAL;
    }
    return LUNA_OK;
}

static luna_err find(const dev_ctx *c, const char *binary, const char *subdir, char *out,
                     size_t cap, dev_why *why)
{
    luna_err err = dev_find_binary(c, binary, subdir, out, cap);
    if (err != LUNA_OK)
        dev_why_set(why, "%s not found (built to <build>/%s/%s; or set LUNAL_BIN_DIR)", binary,
                    subdir, binary);
    return err;
}

/* A fresh random secret written as hex (0600) unless the file exists. */
static luna_err ensure_secret_file(const char *path, size_t hex_len)
{
    if (dev_exists(path))
        return LUNA_OK;
    uint8_t raw[SECRET_HEX_LEN / 2];
    char hex[SECRET_HEX_LEN + 2];
    LUNA_ENSURE(hex_len <= SECRET_HEX_LEN && hex_len % 2 == 0, LUNA_ERR_INVALID_ARG);
    luna_err err = luna_random(raw, hex_len / 2);
    if (err == LUNA_OK)
        err = luna_hex_encode(raw, hex_len / 2, hex, sizeof hex);
    if (err == LUNA_OK) {
        size_t n = strlen(hex);
        hex[n] = '\n';
        err = dev_write_file(path, hex, n + 1, 0600);
    }
    luna_wipe(raw, sizeof raw);
    luna_wipe(hex, sizeof hex);
    return err;
}

static luna_err ensure_ca(const dev_ctx *c, const char *ca_tool, const char *folder,
                          const char *pass_name, dev_why *why)
{
    char dir[DEV_PATH_MAX], pass[DEV_PATH_MAX], crt[DEV_PATH_MAX];
    LUNA_GUARD(dev_path(c, folder, dir, sizeof dir));
    LUNA_GUARD(dev_path(c, pass_name, pass, sizeof pass));
    LUNA_GUARD(dev_file(c, folder, "ca", ".crt", crt, sizeof crt));
    LUNA_GUARD(ensure_secret_file(pass, SECRET_HEX_LEN));
    if (dev_exists(crt))
        return LUNA_OK;
    char *argv[] = {(char *)ca_tool, (char *)"init", (char *)"--dir", dir,
                    (char *)"--passphrase-file", pass, NULL};
    return run_tool(c, argv, NULL, NULL, 0, why);
}

/* Issues name's certificate when absent, renews it otherwise. */
static luna_err ensure_cert(const dev_ctx *c, const char *ca_tool, const char *name,
                            dev_why *why)
{
    char dir[DEV_PATH_MAX], pass[DEV_PATH_MAX], crt[DEV_PATH_MAX], key[DEV_PATH_MAX],
        id[96];
    LUNA_GUARD(dev_path(c, "ca", dir, sizeof dir));
    LUNA_GUARD(dev_path(c, "ca.pass", pass, sizeof pass));
    LUNA_GUARD(dev_file(c, "certs", name, ".crt", crt, sizeof crt));
    LUNA_GUARD(dev_file(c, "certs", name, ".key", key, sizeof key));
    int n = snprintf(id, sizeof id, "lunal://svc/%s", name);
    LUNA_ENSURE(n > 0 && (size_t)n < sizeof id, LUNA_ERR_TOO_LARGE);
    if (dev_exists(crt) && dev_exists(key)) {
        char *argv[] = {(char *)ca_tool, (char *)"renew", (char *)"--dir", dir,
                        (char *)"--cert", crt, (char *)"--key", key, (char *)"--hours",
                        (char *)CERT_HOURS, (char *)"--passphrase-file", pass, NULL};
        return run_tool(c, argv, NULL, NULL, 0, why);
    }
    char *argv[] = {(char *)ca_tool, (char *)"issue", (char *)"--dir", dir,
                    (char *)"--identity", id, (char *)"--key-out", key, (char *)"--cert-out",
                    crt, (char *)"--hours", (char *)CERT_HOURS, (char *)"--passphrase-file",
                    pass, NULL};
    return run_tool(c, argv, NULL, NULL, 0, why);
}

/*
 * A root KMS runs its HSM process as HSM_USER (docs/kms-hsm.md, "Privilege
 * separation by uid"), which must own the PIN file and the token and
 * reach them: the user is created when absent (system user, no shell),
 * hsm/ is handed to it, and the state folder gets o+x (traverse only, no
 * listing; everything in it stays 0700/0600).
 */
/* SoftHSM2 keeps hsm/tokens/<token>/<object>: a deeper tree is not ours. */
#define HSM_TREE_DEPTH 8u

/*
 * Gives the object open as fd (st: its fstat) to the HSM user.  Already
 * its own: nothing to do.  Otherwise it must be root's (what we created
 * before the hand-over), and a file must have one link (a second name
 * could be anywhere).
 */
static luna_err hsm_give_fd(int fd, const struct stat *st, uid_t uid, gid_t gid, dev_why *why)
{
    if (st->st_uid == uid && st->st_gid == gid)
        return LUNA_OK;
    if ((st->st_uid != 0 && st->st_uid != uid) || (S_ISREG(st->st_mode) && st->st_nlink != 1)) {
        dev_why_set(why, "the HSM folder holds an object (inode %lu) not owned by root or %s, "
                         "or with several links; left alone",
                    (unsigned long)st->st_ino, HSM_USER);
        return LUNA_ERR_PERMISSION;
    }
    if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH) != 0) {
        dev_why_set(why, "cannot hand the HSM folder to %s: %s", HSM_USER, strerror(errno));
        return LUNA_ERR_IO;
    }
    return LUNA_OK;
}

/*
 * Gives the folder open as dfd and everything below it to uid:gid.  The
 * HSM user owns this tree already on a second `up` and may swap any name
 * for a symlink at any moment, so nothing is done by path: each entry is
 * opened relative to its folder's descriptor without following links
 * (O_PATH for files: no open side effects), checked to be what was listed,
 * and changed through that descriptor.  Symlinks and special files are
 * skipped (never followed).
 */
static luna_err hsm_chown_tree(int dfd, unsigned depth, uid_t uid, gid_t gid, dev_why *why)
{
    struct stat st;
    if (fstat(dfd, &st) != 0 || !S_ISDIR(st.st_mode)) {
        dev_why_set(why, "the HSM folder changed while it was handed over");
        return LUNA_ERR_PERMISSION;
    }
    LUNA_GUARD(hsm_give_fd(dfd, &st, uid, gid, why));
    if (depth >= HSM_TREE_DEPTH) {
        dev_why_set(why, "the HSM folder is deeper than expected; left alone");
        return LUNA_ERR_PERMISSION;
    }
    int lfd = dup(dfd);
    DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
    if (d == NULL) {
        if (lfd >= 0)
            (void)close(lfd);
        dev_why_set(why, "cannot list the HSM folder: %s", strerror(errno));
        return LUNA_ERR_IO;
    }
    luna_err err = LUNA_OK;
    for (;;) {
        errno = 0;
        const struct dirent *de = readdir(d);
        if (de == NULL) {
            if (errno != 0) {
                dev_why_set(why, "cannot list the HSM folder: %s", strerror(errno));
                err = LUNA_ERR_IO;
            }
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat est, now;
        if (fstatat(dfd, de->d_name, &est, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT)
                continue; /* removed meanwhile: nothing to give */
            dev_why_set(why, "cannot inspect the HSM folder: %s", strerror(errno));
            err = LUNA_ERR_IO;
            break;
        }
        if (!S_ISDIR(est.st_mode) && !S_ISREG(est.st_mode))
            continue;
        int flags = S_ISDIR(est.st_mode) ? O_RDONLY | O_DIRECTORY | O_NONBLOCK : O_PATH;
        int efd = openat(dfd, de->d_name, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (efd < 0 || fstat(efd, &now) != 0 || now.st_dev != est.st_dev ||
            now.st_ino != est.st_ino || (now.st_mode & S_IFMT) != (est.st_mode & S_IFMT)) {
            dev_why_set(why, "the HSM folder changed while it was handed over");
            err = LUNA_ERR_PERMISSION;
        } else if (S_ISDIR(now.st_mode)) {
            err = hsm_chown_tree(efd, depth + 1, uid, gid, why);
        } else {
            err = hsm_give_fd(efd, &now, uid, gid, why);
        }
        if (efd >= 0)
            (void)close(efd);
        if (err != LUNA_OK)
            break;
    }
    (void)closedir(d);
    return err;
}

/* name's uid and gid, creating it as a system user (no home, no shell) when absent. */
static luna_err system_user_ids(const dev_ctx *c, const char *name, uid_t *uid, gid_t *gid,
                                dev_why *why)
{
    for (int tries = 0; tries < 2; tries++) {
        const struct passwd *pw = getpwnam(name);
        if (pw != NULL) {
            if (pw->pw_uid == 0 || pw->pw_gid == 0) {
                dev_why_set(why, "user %s must not be root", name);
                return LUNA_ERR_CONFIG;
            }
            *uid = pw->pw_uid;
            *gid = pw->pw_gid;
            return LUNA_OK;
        }
        if (tries == 0) {
            char *argv[] = {(char *)"/usr/sbin/useradd", (char *)"--system",
                            (char *)"--user-group", (char *)"--no-create-home",
                            (char *)"--home-dir", (char *)"/nonexistent", (char *)"--shell",
                            (char *)"/usr/sbin/nologin", (char *)name, NULL};
            /* Another `up` may create it at the same moment: look again. */
            (void)run_tool(c, argv, NULL, NULL, 0, why);
        }
    }
    dev_why_set(why, "cannot create the system user %s (useradd; see logs/setup.log)", name);
    return LUNA_ERR_NOT_FOUND;
}

static luna_err hsm_user_ids(const dev_ctx *c, uid_t *uid, gid_t *gid, dev_why *why)
{
    return system_user_ids(c, HSM_USER, uid, gid, why);
}

static luna_err hsm_hand_over(const dev_ctx *c, const char *hsm_dir, dev_why *why)
{
    if (geteuid() != 0)
        return LUNA_OK; /* the HSM process shares our uid */
    uid_t hsm_uid = 0;
    gid_t hsm_gid = 0;
    LUNA_GUARD(hsm_user_ids(c, &hsm_uid, &hsm_gid, why));
    /* hsm/ itself sits in root's state folder: only its contents can move. */
    int fd = open(hsm_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        dev_why_set(why, "cannot open %s: %s", hsm_dir, strerror(errno));
        return LUNA_ERR_IO;
    }
    luna_err err = hsm_chown_tree(fd, 0, hsm_uid, hsm_gid, why);
    (void)close(fd);
    LUNA_GUARD(err);
    if (chmod(c->dir, 0711) != 0) {
        dev_why_set(why, "cannot open %s to the HSM user %s: %s", c->dir, HSM_USER,
                    strerror(errno));
        return LUNA_ERR_IO;
    }
    /* Every folder above must let it through; we never widen one we did not make. */
    char up[DEV_PATH_MAX];
    (void)snprintf(up, sizeof up, "%s", c->dir);
    for (char *slash = strrchr(up, '/'); slash != NULL && slash != up; slash = strrchr(up, '/')) {
        *slash = '\0';
        struct stat st;
        if (stat(up, &st) != 0 || (st.st_mode & S_IXOTH) == 0) {
            dev_why_set(why, "the HSM user %s cannot pass through %s (needs o+x); choose a "
                             "state folder elsewhere (--dir) or chmod o+x it",
                        HSM_USER, up);
            return LUNA_ERR_PERMISSION;
        }
    }
    return LUNA_OK;
}

/* The SoftHSM2 token behind the KMS's HSM process. */
static luna_err ensure_hsm(const dev_ctx *c, dev_why *why)
{
    char dir[DEV_PATH_MAX], tokens[DEV_PATH_MAX], conf[DEV_PATH_MAX], pin[DEV_PATH_MAX];
    LUNA_GUARD(dev_path(c, "hsm", dir, sizeof dir));
    LUNA_GUARD(dev_path(c, "hsm/tokens", tokens, sizeof tokens));
    LUNA_GUARD(dev_path(c, "hsm/softhsm2.conf", conf, sizeof conf));
    LUNA_GUARD(dev_path(c, "hsm/pin", pin, sizeof pin));
    if (dev_exists(conf) && dev_exists(pin))
        return hsm_hand_over(c, dir, why);
    LUNA_GUARD(dev_mkdir(tokens));
    char text[DEV_PATH_MAX + 128];
    int n = snprintf(text, sizeof text,
                     "directories.tokendir = %s\nobjectstore.backend = file\n"
                     "log.level = ERROR\nslots.removable = false\n",
                     tokens);
    LUNA_ENSURE(n > 0 && (size_t)n < sizeof text, LUNA_ERR_TOO_LARGE);
    LUNA_GUARD(dev_write_file(conf, text, (size_t)n, 0600));
    uint8_t raw[8];
    char user_pin[17], so_pin[17];
    luna_err err = luna_random(raw, sizeof raw);
    if (err == LUNA_OK)
        err = luna_hex_encode(raw, sizeof raw, user_pin, sizeof user_pin);
    if (err == LUNA_OK)
        err = luna_random(raw, sizeof raw);
    if (err == LUNA_OK)
        err = luna_hex_encode(raw, sizeof raw, so_pin, sizeof so_pin);
    char util[] = "/usr/bin/softhsm2-util";
    char envv[DEV_PATH_MAX + 16];
    n = snprintf(envv, sizeof envv, "SOFTHSM2_CONF=%s", conf);
    if (err == LUNA_OK && (n <= 0 || (size_t)n >= sizeof envv))
        err = LUNA_ERR_TOO_LARGE;
    if (err == LUNA_OK && access(util, X_OK) != 0) {
        dev_why_set(why, "softhsm2-util not found (Debian package softhsm2; "
                         "scripts/install-deps.sh installs it)");
        err = LUNA_ERR_NOT_FOUND;
    }
    if (err == LUNA_OK) {
        char *env[] = {envv, NULL};
        /* softhsm2-util takes PINs only as arguments: the one place a dev
           secret is visible in the process list, for a moment, as root. */
        char *argv[] = {util, (char *)"--init-token", (char *)"--free", (char *)"--label",
                        (char *)HSM_TOKEN, (char *)"--pin", user_pin, (char *)"--so-pin",
                        so_pin, NULL};
        err = run_tool(c, argv, env, NULL, 0, why);
    }
    if (err == LUNA_OK)
        err = dev_write_file(pin, user_pin, strlen(user_pin), 0600);
    if (err == LUNA_OK)
        err = hsm_hand_over(c, dir, why);
    luna_wipe(raw, sizeof raw);
    luna_wipe(user_pin, sizeof user_pin);
    luna_wipe(so_pin, sizeof so_pin);
    return err;
}

/*
 * ---- what a root KMS reaches once it is KMS_USER (docs/operations.md) ----
 *
 * After the drop the KMS opens its database (and creates its -wal/-shm
 * files), reads its TLS key, and reads and reloads public files: the
 * platform and TEE CA certificates, its own certificate, the two JWKS
 * files, the sim vendor root and TCB collateral.  It gets exactly that:
 *   - KMS_DIR/ (the database folder): owner KMS_USER, 0700;
 *   - certs/kms.key: owner KMS_USER, 0600 (the loader refuses any group bit);
 *   - the public files: root:<KMS_USER's group>, 0640, in folders that are
 *     root:<group> 0710 (search, no listing: nothing else in them is named
 *     to it, and every other file there is 0600 root).  platform/ is
 *     setgid: the TEE host rewrites tcb.bin there and the new file must
 *     stay in reach; files rewritten elsewhere (renewed certificate, JWKS)
 *     are 0644 from their writers and reached through the same folders.
 * Its config is read before the drop and stays root's.  Every change goes
 * through a descriptor opened with O_NOFOLLOW in a folder only root can
 * write, so no other user can point it elsewhere.
 */
static const char *const kms_read_dirs[] = {"ca", "tee-ca", "certs", "jwks", "platform"};
static const char *const kms_read_files[] = {"ca/ca.crt",     "tee-ca/ca.crt",
                                             "certs/kms.crt", "jwks/iam.json",
                                             "jwks/attestation.json", "platform/vendor.crt",
                                             "platform/tcb.bin"};
static const char *const kms_db_suffixes[] = {"", "-wal", "-shm", "-journal"};

/*
 * Gives rel (a folder when dir) to uid:gid with mode.  It must be owned by
 * root or already by uid; a root-owned file must have one link (a second
 * name could be anywhere).  A missing file is LUNA_ERR_NOT_FOUND.
 */
static luna_err give(const dev_ctx *c, const char *rel, bool dir, uid_t uid, gid_t gid,
                     mode_t mode, dev_why *why)
{
    char path[DEV_PATH_MAX];
    struct stat st;
    LUNA_GUARD(dev_path(c, rel, path, sizeof path));
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
                            (dir ? O_DIRECTORY : 0));
    if (fd < 0) {
        if (errno == ENOENT)
            return LUNA_ERR_NOT_FOUND;
        dev_why_set(why, "cannot open %s to give it to %s: %s", path, KMS_USER,
                    strerror(errno));
        return LUNA_ERR_IO;
    }
    luna_err err = LUNA_OK;
    if (fstat(fd, &st) != 0 || (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) ||
        (st.st_uid != 0 && st.st_uid != uid) ||
        (!dir && st.st_uid == 0 && st.st_nlink != 1)) {
        dev_why_set(why, "%s is not a %s owned by root or %s with one link; left alone", path,
                    dir ? "folder" : "regular file", KMS_USER);
        err = LUNA_ERR_PERMISSION;
    } else if (fchown(fd, uid, gid) != 0 || fchmod(fd, mode) != 0) {
        dev_why_set(why, "cannot give %s to %s: %s", path, KMS_USER, strerror(errno));
        err = LUNA_ERR_IO;
    }
    (void)close(fd);
    return err;
}

/* Its group must hold no one else: membership is read access to the CA
   folders.  A member is a supplementary one (gr_mem) or any other user
   whose primary group it is (the passwd database). */
static luna_err kms_group_alone(gid_t gid, dev_why *why)
{
    const struct group *gr = getgrgid(gid);
    bool alone = gr != NULL && (gr->gr_mem == NULL || gr->gr_mem[0] == NULL ||
                                (strcmp(gr->gr_mem[0], KMS_USER) == 0 && gr->gr_mem[1] == NULL));
    if (alone) {
        setpwent();
        for (;;) {
            errno = 0;
            const struct passwd *pw = getpwent();
            if (pw == NULL) {
                /* A database we could not read to the end proves nothing. */
                if (errno != 0 && errno != ENOENT)
                    alone = false;
                break;
            }
            if (pw->pw_gid == gid && strcmp(pw->pw_name, KMS_USER) != 0) {
                alone = false;
                break;
            }
        }
        endpwent();
    }
    if (!alone) {
        dev_why_set(why, "the group of %s (gid %u) must exist and have no other member "
                         "(supplementary or primary)",
                    KMS_USER, (unsigned)gid);
        return LUNA_ERR_CONFIG;
    }
    return LUNA_OK;
}

/*
 * A state folder from before KMS_DIR kept the database as db/kms.db: it
 * moves (with its journal files) once, while the KMS is stopped, so a
 * second `up` keeps its keys and registry.  As root the files become
 * KMS_USER's first, while still in root's db/ folder.
 */
static luna_err kms_db_migrate(const dev_ctx *c, bool root, uid_t uid, gid_t gid, dev_why *why)
{
    char from[DEV_PATH_MAX], to[DEV_PATH_MAX], rel[64];
    LUNA_GUARD(dev_path(c, KMS_DIR "/kms.db", to, sizeof to));
    LUNA_GUARD(dev_path(c, "db/kms.db", from, sizeof from));
    if (dev_exists(to) || !dev_exists(from))
        return LUNA_OK;
    for (size_t i = 0; i < sizeof kms_db_suffixes / sizeof kms_db_suffixes[0]; i++) {
        const char *sfx = kms_db_suffixes[i];
        (void)snprintf(rel, sizeof rel, "db/kms.db%s", sfx);
        if (root) {
            luna_err err = give(c, rel, false, uid, gid, 0600, why);
            if (err == LUNA_ERR_NOT_FOUND)
                continue;
            LUNA_GUARD(err);
        }
        LUNA_GUARD(dev_path(c, rel, from, sizeof from));
        (void)snprintf(rel, sizeof rel, KMS_DIR "/kms.db%s", sfx);
        LUNA_GUARD(dev_path(c, rel, to, sizeof to));
        if (rename(from, to) != 0 && errno != ENOENT) {
            dev_why_set(why, "cannot move %s to %s: %s", from, to, strerror(errno));
            return LUNA_ERR_IO;
        }
    }
    return LUNA_OK;
}

luna_err dev_kms_prepare(const dev_ctx *c, dev_why *why)
{
    char dir[DEV_PATH_MAX];
    uid_t uid = 0, hsm_uid = 0;
    gid_t gid = 0, hsm_gid = 0;
    bool root = geteuid() == 0;

    LUNA_GUARD(dev_path(c, KMS_DIR, dir, sizeof dir));
    if (!root) {
        /* The KMS runs as us: a plain 0700 folder of ours. */
        luna_err err = dev_mkdir(dir);
        if (err != LUNA_OK) {
            dev_why_set(why, "cannot create %s: %s", dir, luna_strerror(err));
            return err;
        }
        return kms_db_migrate(c, false, 0, 0, why);
    }
    LUNA_GUARD(system_user_ids(c, KMS_USER, &uid, &gid, why));
    LUNA_GUARD(hsm_user_ids(c, &hsm_uid, &hsm_gid, why));
    if (uid == hsm_uid || gid == hsm_gid) {
        dev_why_set(why, "users %s and %s must have distinct uids and groups", KMS_USER,
                    HSM_USER);
        return LUNA_ERR_CONFIG;
    }
    LUNA_GUARD(kms_group_alone(gid, why));
    /* Made by root in root's 0711 state folder, then handed over whole. */
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        dev_why_set(why, "cannot create %s: %s", dir, strerror(errno));
        return LUNA_ERR_IO;
    }
    LUNA_GUARD(give(c, KMS_DIR, true, uid, gid, 0700, why));
    LUNA_GUARD(kms_db_migrate(c, true, uid, gid, why));
    for (size_t i = 0; i < sizeof kms_read_dirs / sizeof kms_read_dirs[0]; i++) {
        mode_t mode = strcmp(kms_read_dirs[i], "platform") == 0 ? 02710 : 0710;
        luna_err err = give(c, kms_read_dirs[i], true, 0, gid, mode, why);
        if (err == LUNA_ERR_NOT_FOUND)
            dev_why_set(why, "%s/%s is missing", c->dir, kms_read_dirs[i]);
        LUNA_GUARD(err);
    }
    for (size_t i = 0; i < sizeof kms_read_files / sizeof kms_read_files[0]; i++) {
        luna_err err = give(c, kms_read_files[i], false, 0, gid, 0640, why);
        if (err == LUNA_ERR_NOT_FOUND)
            dev_why_set(why, "%s/%s is missing", c->dir, kms_read_files[i]);
        LUNA_GUARD(err);
    }
    return give(c, "certs/kms.key", false, uid, gid, 0600, why);
}

/* Reads a 32-byte raw seed file (0600) or creates one. */
static luna_err ensure_seed(const char *path, uint8_t seed[SEED_LEN])
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        struct stat st;
        bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0077) == 0 &&
                  st.st_size == (off_t)SEED_LEN && read(fd, seed, SEED_LEN) == (ssize_t)SEED_LEN;
        (void)close(fd);
        return ok ? LUNA_OK : LUNA_ERR_PERMISSION;
    }
    if (errno != ENOENT)
        return LUNA_ERR_IO;
    uint8_t pk[LUNA_ED25519_PUB_LEN];
    LUNA_GUARD(luna_ed25519_keygen(seed, pk));
    return dev_write_file(path, seed, SEED_LEN, 0600);
}

luna_err dev_tls_paths_get(const dev_ctx *c, dev_tls_paths *out)
{
    LUNA_GUARD(dev_file(c, "ca", "ca", ".crt", out->ca, sizeof out->ca));
    LUNA_GUARD(dev_file(c, "tee-ca", "ca", ".crt", out->tee_ca, sizeof out->tee_ca));
    LUNA_GUARD(dev_file(c, "certs", "dev", ".crt", out->cert, sizeof out->cert));
    LUNA_GUARD(dev_file(c, "certs", "dev", ".key", out->key, sizeof out->key));
    return LUNA_OK;
}

/* ---- JSON helpers ---- */

static luna_err write_json(const char *path, json_t *doc)
{
    if (doc == NULL)
        return LUNA_ERR_NOMEM;
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(doc);
    if (text == NULL)
        return LUNA_ERR_NOMEM;
    size_t n = strlen(text);
    luna_err err = dev_write_file(path, text, n, 0600);
    free(text);
    return err;
}

static json_t *endpoint(const dev_ctx *c, const char *name)
{
    for (size_t i = 0; i < dev_n_comps; i++)
        if (strcmp(dev_comps[i].name, name) == 0)
            return json_pack("{s:s,s:i}", "host", "127.0.0.1", "port",
                             (json_int_t)dev_port(c, &dev_comps[i]));
    return NULL;
}

/* The keys every component's config shares (docs/config.md). */
static json_t *common(const dev_ctx *c, const dev_comp *comp)
{
    char crt[DEV_PATH_MAX], key[DEV_PATH_MAX], ca[DEV_PATH_MAX], db[DEV_PATH_MAX + 8],
        dbpath[DEV_PATH_MAX];
    if (dev_file(c, "certs", comp->name, ".crt", crt, sizeof crt) != LUNA_OK ||
        dev_file(c, "certs", comp->name, ".key", key, sizeof key) != LUNA_OK ||
        dev_file(c, "ca", "ca", ".crt", ca, sizeof ca) != LUNA_OK ||
        dev_file(c, "db", comp->name, ".db", dbpath, sizeof dbpath) != LUNA_OK)
        return NULL;
    int n = snprintf(db, sizeof db, "sqlite:%s", dbpath);
    if (n <= 0 || (size_t)n >= sizeof db)
        return NULL;
    return json_pack("{s:s,s:{s:s,s:i},s:{s:s,s:s,s:s},s:{s:s},s:{s:s}}", "profile",
                     "development", "listen", "address", "127.0.0.1", "port",
                     (json_int_t)dev_port(c, comp), "tls", "cert", crt, "key", key, "ca", ca,
                     "storage", "url", db, "log", "level", "info");
}

static json_t *svc_list(const char *const *names)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && names[i] != NULL; i++) {
        char id[64];
        (void)snprintf(id, sizeof id, "lunal://svc/%s", names[i]);
        if (json_array_append_new(a, json_string(id)) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* The measured demo deployment (demo/deployment.json, written by dev_prepare). */
static json_t *deployment(const dev_ctx *c)
{
    char p[DEV_PATH_MAX];
    if (dev_path(c, "demo/deployment.json", p, sizeof p) != LUNA_OK)
        return NULL;
    return json_load_file(p, JSON_REJECT_DUPLICATES, NULL);
}

static luna_err cfg_path(const dev_ctx *c, const char *name, char *out, size_t cap)
{
    return dev_file(c, "config", name, ".json", out, cap);
}

/* ---- the TEE runtime config and the measured, signed demo deployment ---- */

static luna_err tee_runtime_config(const dev_ctx *c, unsigned n, const uint8_t pk[32],
                                   dev_why *why)
{
    char path[DEV_PATH_MAX], name[16], ca[DEV_PATH_MAX], tee_ca[DEV_PATH_MAX], pk64[64];
    (void)snprintf(name, sizeof name, "tee-%u", n + 1);
    LUNA_GUARD(cfg_path(c, name, path, sizeof path));
    LUNA_GUARD(dev_file(c, "ca", "ca", ".crt", ca, sizeof ca));
    LUNA_GUARD(dev_file(c, "tee-ca", "ca", ".crt", tee_ca, sizeof tee_ca));
    LUNA_GUARD(luna_b64url_encode(pk, 32, pk64, sizeof pk64));
    json_t *kms = endpoint(c, "kms");
    json_t *doc = json_pack("{s:s,s:s,s:s,s:{s:s,s:i},s:{s:s,s:s},s:o,s:{s:i,s:i,s:i,s:i,s:i}}",
                            "deployment_id", DEV_DEPLOYMENT, "developer_id", DEV_DEVELOPER,
                            "developer_pk", pk64, "listen", "address", "127.0.0.1", "port",
                            (json_int_t)dev_tee_port(c, n), "tls", "ca", ca, "tee_ca", tee_ca,
                            "kms", kms, "limits", "cpu_seconds", 5, "wall_ms", 10000,
                            "memory_mib", 256, "result_kib", 4096, "scratch_kib", 4096);
    luna_err err = write_json(path, doc);
    if (err != LUNA_OK)
        dev_why_set(why, "cannot write %s: %s", path, luna_strerror(err));
    return err;
}

static luna_err hex_field(const json_t *o, const char *key, uint8_t *out, size_t len)
{
    const char *s = json_string_value(json_object_get(o, key));
    size_t n = 0;
    LUNA_ENSURE(s != NULL && strlen(s) == 2 * len, LUNA_ERR_FORMAT);
    LUNA_GUARD(luna_hex_decode(s, strlen(s), out, len, &n));
    LUNA_ENSURE(n == len, LUNA_ERR_FORMAT);
    return LUNA_OK;
}

/*
 * Measures the runtime + demo bundle + TEE config from outside (the way
 * the sim platform will), then signs the deployment manifest with the
 * developer key.  Writes demo/deployment.json (reference values) and
 * demo/demo.manifest (the JWS).
 */
static luna_err demo_deployment(const dev_ctx *c, dev_why *why)
{
    char seed_path[DEV_PATH_MAX], host[DEV_PATH_MAX], rt[DEV_PATH_MAX], bundle[DEV_PATH_MAX],
        cfg1[DEV_PATH_MAX], dep_path[DEV_PATH_MAX], man_path[DEV_PATH_MAX];
    uint8_t seed[SEED_LEN], pk[LUNA_ED25519_PUB_LEN];
    char out[1024];
    json_t *m = NULL;
    char *jws = NULL;
    luna_err err;
    LUNA_GUARD(dev_path(c, "keys/developer.seed", seed_path, sizeof seed_path));
    LUNA_GUARD(dev_path(c, "demo/deployment.json", dep_path, sizeof dep_path));
    LUNA_GUARD(dev_path(c, "demo/demo.manifest", man_path, sizeof man_path));
    LUNA_GUARD(cfg_path(c, "tee-1", cfg1, sizeof cfg1));
    LUNA_GUARD(find(c, "luna-tee-host", "tee", host, sizeof host, why));
    LUNA_GUARD(find(c, "luna-tee", "tee", rt, sizeof rt, why));
    LUNA_GUARD(find(c, "liblunal-demo-jobs.so", "tee", bundle, sizeof bundle, why));
    LUNA_TRY(ensure_seed(seed_path, seed), out);
    LUNA_TRY(luna_ed25519_public(seed, pk), out);
    for (unsigned i = 0; i < DEV_N_TEES; i++)
        LUNA_TRY(tee_runtime_config(c, i, pk, why), out);
    {
        char *argv[] = {host, (char *)"measure", (char *)"--runtime", rt, (char *)"--bundle",
                        bundle, (char *)"--config", cfg1, NULL};
        LUNA_TRY(run_tool(c, argv, NULL, out, sizeof out, why), out);
    }
    m = json_loads(out, JSON_REJECT_DUPLICATES, NULL);
    LUNA_TRY_ENSURE(m != NULL, LUNA_ERR_FORMAT, out);
    luna_manifest man;
    memset(&man, 0, sizeof man);
    (void)snprintf(man.name, sizeof man.name, "%s", DEV_DEPLOYMENT);
    (void)snprintf(man.version, sizeof man.version, "1");
    static const char *const jobs[] = {"wordstats", "sha256", "redact"};
    for (size_t i = 0; i < sizeof jobs / sizeof jobs[0]; i++)
        (void)snprintf(man.jobs[i], sizeof man.jobs[i], "%s", jobs[i]);
    man.n_jobs = sizeof jobs / sizeof jobs[0];
    LUNA_TRY(hex_field(m, "build_hash", man.build_hash, sizeof man.build_hash), out);
    LUNA_TRY(hex_field(m, "mr_enclave", man.mr_enclave, 32), out);
    man.mr_enclave_len = 32;
    LUNA_TRY(luna_manifest_mr_signer(pk, man.mr_signer), out);
    (void)snprintf(man.developer_id, sizeof man.developer_id, "%s", DEV_DEVELOPER);
    LUNA_TRY(luna_manifest_key_id(pk, man.key_id), out);
    size_t jws_len = 0;
    LUNA_TRY(luna_manifest_sign(&man, seed, &jws, &jws_len), out);
    LUNA_TRY(dev_write_file(man_path, jws, jws_len, 0644), out);
    char pkhex[65], bh[80];
    LUNA_TRY(luna_hex_encode(pk, sizeof pk, pkhex, sizeof pkhex), out);
    (void)snprintf(bh, sizeof bh, "sha256:%s", json_string_value(json_object_get(m, "build_hash")));
    json_t *dep = json_pack("{s:s,s:s,s:O,s:O,s:s,s:s,s:s,s:s,s:s}", "id", DEV_DEPLOYMENT,
                            "version", "1", "mr_enclave", json_object_get(m, "mr_enclave"),
                            "mr_signer", json_object_get(m, "mr_signer"), "build_hash", bh,
                            "developer_id", DEV_DEVELOPER, "developer_name",
                            DEV_DEVELOPER_NAME, "key_id", man.key_id, "developer_key", pkhex);
    err = write_json(dep_path, dep);
out:
    if (err != LUNA_OK && why->msg[0] == '\0')
        dev_why_set(why, "demo deployment: %s", luna_strerror(err));
    luna_wipe(seed, sizeof seed);
    json_decref(m);
    free(jws);
    return err;
}

luna_err dev_prepare(const dev_ctx *c, dev_why *why)
{
    static const char *const folders[] = {"certs", "config", "db", "logs",
                                          "run", "keys", "jwks", "demo", "client", NULL};
    for (size_t i = 0; folders[i] != NULL; i++) {
        char p[DEV_PATH_MAX];
        LUNA_GUARD(dev_path(c, folders[i], p, sizeof p));
        luna_err err = dev_mkdir(p);
        if (err != LUNA_OK) {
            dev_why_set(why, "cannot create %s: %s", p, luna_strerror(err));
            return err;
        }
    }
    char ca_tool[DEV_PATH_MAX], host[DEV_PATH_MAX], platform[DEV_PATH_MAX],
        audit[DEV_PATH_MAX], akey[DEV_PATH_MAX], vkey[DEV_PATH_MAX];
    LUNA_GUARD(find(c, "luna-ca", "ca", ca_tool, sizeof ca_tool, why));
    LUNA_GUARD(ensure_ca(c, ca_tool, "ca", "ca.pass", why));
    LUNA_GUARD(ensure_ca(c, ca_tool, "tee-ca", "tee-ca.pass", why));
    for (size_t i = 0; i < sizeof svc_names / sizeof svc_names[0]; i++)
        LUNA_GUARD(ensure_cert(c, ca_tool, svc_names[i], why));
    LUNA_GUARD(ensure_hsm(c, why));

    /* The SIMULATED vendor root and TCB collateral (insecure, dev only). */
    LUNA_GUARD(find(c, "luna-tee-host", "tee", host, sizeof host, why));
    LUNA_GUARD(dev_path(c, "platform", platform, sizeof platform));
    if (!dev_exists(platform)) {
        char *argv[] = {host, (char *)"init-platform", (char *)"--dir", platform,
                        (char *)"--tcb-level", (char *)"1", NULL};
        LUNA_GUARD(run_tool(c, argv, NULL, NULL, 0, why));
    }

    /* The audit log's checkpoint key; keygen prints the verifier key. */
    LUNA_GUARD(dev_path(c, "keys/audit.key", akey, sizeof akey));
    LUNA_GUARD(dev_path(c, "keys/audit.vkey", vkey, sizeof vkey));
    if (!dev_exists(akey)) {
        char out[512];
        LUNA_GUARD(find(c, "luna-audit", "audit", audit, sizeof audit, why));
        char *argv[] = {audit, (char *)"keygen", (char *)"--name", (char *)"lunal.dev/audit",
                        (char *)"--out", akey, NULL};
        LUNA_GUARD(run_tool(c, argv, NULL, out, sizeof out, why));
        LUNA_GUARD(dev_write_file(vkey, out, strlen(out), 0644));
    }
    /* The witness's cosigning key (the log pushes every checkpoint to it). */
    LUNA_GUARD(dev_path(c, "keys/witness.key", akey, sizeof akey));
    LUNA_GUARD(dev_path(c, "keys/witness.vkey", vkey, sizeof vkey));
    if (!dev_exists(akey)) {
        char out[512];
        LUNA_GUARD(find(c, "luna-audit-witness", "audit", audit, sizeof audit, why));
        char *argv[] = {audit, (char *)"keygen", (char *)"--name", (char *)DEV_WITNESS_NAME,
                        (char *)"--out", akey, NULL};
        LUNA_GUARD(run_tool(c, argv, NULL, out, sizeof out, why));
        LUNA_GUARD(dev_write_file(vkey, out, strlen(out), 0644));
    }
    return demo_deployment(c, why);
}

/* ---- component configs ---- */

static json_t *cfg_iam(const dev_ctx *c, json_t *doc)
{
    char mk[DEV_PATH_MAX];
    static const char *const auth[] = {"gateway", "dev", NULL};
    static const char *const authz[] = {"gateway", "kms", "audit", NULL};
    static const char *const jwks[] = {"gateway", "kms", "audit", "attestation", "dev", NULL};
    static const char *const devkeys[] = {"attestation", "kms", NULL};
    if (dev_path(c, "keys/iam-master.key", mk, sizeof mk) != LUNA_OK)
        return NULL;
    json_t *sec = json_pack("{s:s,s:{s:o,s:o,s:o,s:o,s:o}}", "master_key_file", mk, "callers",
                            "authenticate", svc_list(auth), "authorize", svc_list(authz),
                            "admin", svc_list(auth), "jwks", svc_list(jwks),
                            "developer_keys", svc_list(devkeys));
    return sec != NULL && json_object_set_new(doc, "iam", sec) == 0 ? doc : NULL;
}

/* A vkey file written by keygen (one line) as a JSON string. */
static json_t *vkey_json(const dev_ctx *c, const char *rel)
{
    char path[DEV_PATH_MAX], line[VKEY_MAX];
    if (dev_path(c, rel, path, sizeof path) != LUNA_OK)
        return NULL;
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return NULL;
    char *got = fgets(line, sizeof line, f);
    fclose(f);
    if (got == NULL)
        return NULL;
    line[strcspn(line, "\r\n")] = 0;
    return line[0] != 0 ? json_string(line) : NULL;
}

static json_t *cfg_witness(const dev_ctx *c, json_t *doc)
{
    char key[DEV_PATH_MAX];
    if (dev_path(c, "keys/witness.key", key, sizeof key) != LUNA_OK)
        return NULL;
    json_t *sec = json_pack("{s:s,s:s,s:s,s:o*}", "name", DEV_WITNESS_NAME, "key_file", key,
                            "log_origin", DEV_AUDIT_ORIGIN, "log_vkey",
                            vkey_json(c, "keys/audit.vkey"));
    if (sec != NULL && json_object_get(sec, "log_vkey") == NULL) {
        json_decref(sec);
        return NULL;
    }
    return sec != NULL && json_object_set_new(doc, "witness", sec) == 0 ? doc : NULL;
}

static json_t *cfg_audit(const dev_ctx *c, json_t *doc)
{
    char key[DEV_PATH_MAX];
    static const char *const writers[] = {"iam", "kms", "attestation", "gateway", "tee-host",
                                          NULL};
    static const char *const readers[] = {"gateway", "dev", NULL};
    if (dev_path(c, "keys/audit.key", key, sizeof key) != LUNA_OK)
        return NULL;
    /* IAM's key set straight from IAM (refreshed, follows its rotation)
       rather than the saved file; it accepts only tokens minted for it. */
    json_t *sec = json_pack("{s:s,s:s,s:o,s:s,s:s,s:o,s:o}", "origin", "lunal.dev/audit",
                            "key_file", key, "iam", endpoint(c, "iam"), "token_issuer",
                            "lunal://svc/iam", "token_audience", LUNA_AUD_AUDIT, "writers",
                            svc_list(writers), "readers", svc_list(readers));
    /* Every new checkpoint goes to the witness (docs/audit.md section 6). */
    if (sec != NULL && json_object_set_new(sec, "witness", endpoint(c, "witness")) != 0) {
        json_decref(sec);
        return NULL;
    }
    return sec != NULL && json_object_set_new(doc, "audit", sec) == 0 ? doc : NULL;
}

static json_t *sim_attestation(const dev_ctx *c)
{
    char root[DEV_PATH_MAX];
    if (dev_path(c, "platform/vendor.crt", root, sizeof root) != LUNA_OK)
        return NULL;
    return json_pack("{s:[s],s:[s]}", "allowed_evidence", "sim", "trust_anchors", root);
}

static json_t *cfg_attestation(const dev_ctx *c, json_t *doc)
{
    char col[DEV_PATH_MAX], rk[DEV_PATH_MAX], teeca[DEV_PATH_MAX], pass[DEV_PATH_MAX],
        jwks[DEV_PATH_MAX];
    if (dev_path(c, "platform/tcb.bin", col, sizeof col) != LUNA_OK ||
        dev_path(c, "keys/attestation-report.key", rk, sizeof rk) != LUNA_OK ||
        dev_path(c, "tee-ca", teeca, sizeof teeca) != LUNA_OK ||
        dev_path(c, "tee-ca.pass", pass, sizeof pass) != LUNA_OK ||
        dev_path(c, "jwks/iam.json", jwks, sizeof jwks) != LUNA_OK)
        return NULL;
    json_t *dep = deployment(c);
    if (dep == NULL)
        return NULL;
    json_object_del(dep, "developer_key");
    /* iam: developer keys for deployment registration (docs/attestation.md). */
    json_t *sec = json_pack("{s:i,s:i,s:i,s:s,s:o,s:o,s:o,s:s,s:s,s:s,s:s,s:[o]}",
                            "interval_seconds", 30, "grace_seconds", 60, "min_tcb_level", 1,
                            "sim_collateral", col, "kms", endpoint(c, "kms"), "audit",
                            endpoint(c, "audit"), "iam", endpoint(c, "iam"), "report_key", rk,
                            "tee_ca_dir", teeca, "tee_ca_passphrase_file", pass, "iam_jwks", jwks,
                            "deployments", dep);
    if (sec == NULL || json_object_set_new(doc, "attestation_service", sec) != 0)
        return NULL;
    return json_object_set_new(doc, "attestation", sim_attestation(c)) == 0 ? doc : NULL;
}

static json_t *cfg_kms(const dev_ctx *c, json_t *doc)
{
    char pin[DEV_PATH_MAX], iam[DEV_PATH_MAX], att[DEV_PATH_MAX], teeca[DEV_PATH_MAX],
        col[DEV_PATH_MAX], hsm[DEV_PATH_MAX], db[DEV_PATH_MAX + 8];
    int n = snprintf(db, sizeof db, "sqlite:%s/" KMS_DIR "/kms.db", c->dir);
    if (n <= 0 || (size_t)n >= sizeof db || dev_path(c, "hsm/pin", pin, sizeof pin) != LUNA_OK ||
        dev_path(c, "jwks/iam.json", iam, sizeof iam) != LUNA_OK ||
        dev_path(c, "jwks/attestation.json", att, sizeof att) != LUNA_OK ||
        dev_file(c, "tee-ca", "ca", ".crt", teeca, sizeof teeca) != LUNA_OK ||
        dev_path(c, "platform/tcb.bin", col, sizeof col) != LUNA_OK)
        return NULL;
    json_t *dep = deployment(c);
    if (dep == NULL)
        return NULL;
    static const char *const otk[] = {"gateway", NULL};
    static const char *const registry[] = {"attestation", "gateway", "dev", NULL};
    static const char *const keys[] = {"gateway", "dev", NULL};
    json_t *hsmo = json_pack("{s:s,s:s,s:s}", "module", SOFTHSM_MODULE, "token", HSM_TOKEN,
                             "pin_file", pin);
    if (hsmo != NULL && dev_find_binary(c, "luna-kms-hsm", "kms", hsm, sizeof hsm) == LUNA_OK)
        (void)json_object_set_new(hsmo, "hsm_path", json_string(hsm));
    json_t *au = endpoint(c, "audit");
    if (au != NULL)
        (void)json_object_set_new(au, "identity", json_string("lunal://svc/audit"));
    json_t *sec = json_pack(
        "{s:o,s:o,s:s,s:s,s:s,s:i,s:[{s:s,s:s,s:O,s:O}],s:[{s:s,s:s}],"
        "s:{s:o,s:o,s:o,s:s}}",
        "hsm", hsmo, "audit", au, "iam_jwks", iam, "attestation_jwks", att, "tee_ca", teeca,
        "min_tcb_level", 1, "references", "deployment_id", DEV_DEPLOYMENT, "evidence_type", "sim",
        "mr_enclave", json_object_get(dep, "mr_enclave"), "mr_signer",
        json_object_get(dep, "mr_signer"), "collateral", "evidence_type", "sim", "file", col,
        "callers", "otk", svc_list(otk), "registry", svc_list(registry), "keys", svc_list(keys),
        "attestation", "lunal://svc/attestation");
    json_decref(dep);
    /* Developer keys for registered deployments (POST /v1/kms/deployments,
       called by the attestation service only). */
    static const char *const deployments[] = {"attestation", NULL};
    json_t *iam_ep = endpoint(c, "iam");
    if (sec != NULL && (iam_ep == NULL ||
                        json_object_set_new(iam_ep, "identity", json_string("lunal://svc/iam")) !=
                            0 ||
                        json_object_set_new(sec, "iam", iam_ep) != 0 ||
                        json_object_set_new(json_object_get(sec, "callers"), "deployments",
                                            svc_list(deployments)) != 0)) {
        json_decref(sec);
        return NULL;
    }
    /* As root: shed root for KMS_USER once the HSM process runs. */
    if (sec != NULL && geteuid() == 0 &&
        json_object_set_new(sec, "user", json_string(KMS_USER)) != 0) {
        json_decref(sec);
        return NULL;
    }
    if (sec == NULL || json_object_set_new(doc, "kms", sec) != 0)
        return NULL;
    /* Its database lives in its own folder (dev_kms_prepare). */
    json_t *st = json_pack("{s:s}", "url", db);
    if (st == NULL || json_object_set_new(doc, "storage", st) != 0)
        return NULL;
    return json_object_set_new(doc, "attestation", sim_attestation(c)) == 0 ? doc : NULL;
}

static json_t *cfg_tee_host(const dev_ctx *c, json_t *doc)
{
    char platform[DEV_PATH_MAX], rt[DEV_PATH_MAX], bundle[DEV_PATH_MAX], man[DEV_PATH_MAX];
    if (dev_path(c, "platform", platform, sizeof platform) != LUNA_OK ||
        dev_find_binary(c, "luna-tee", "tee", rt, sizeof rt) != LUNA_OK ||
        dev_find_binary(c, "liblunal-demo-jobs.so", "tee", bundle, sizeof bundle) != LUNA_OK ||
        dev_path(c, "demo/demo.manifest", man, sizeof man) != LUNA_OK)
        return NULL;
    json_t *tees = json_array();
    for (unsigned i = 0; tees != NULL && i < DEV_N_TEES; i++) {
        char id[16], cfg[DEV_PATH_MAX];
        (void)snprintf(id, sizeof id, "tee-%u", i + 1);
        if (cfg_path(c, id, cfg, sizeof cfg) != LUNA_OK ||
            json_array_append_new(tees, json_pack("{s:s,s:s,s:s,s:s}", "id", id, "config", cfg,
                                                  "manifest", man, "bundle", bundle)) != 0) {
            json_decref(tees);
            return NULL;
        }
    }
    json_object_del(doc, "storage");
    json_t *sec = json_pack("{s:s,s:s,s:i,s:o,s:o}", "platform_dir", platform, "runtime", rt,
                            "tcb_level", 1, "attestation", endpoint(c, "attestation"), "tees",
                            tees);
    return sec != NULL && json_object_set_new(doc, "tee_host", sec) == 0 ? doc : NULL;
}

static json_t *cfg_gateway(const dev_ctx *c, json_t *doc)
{
    char teeca[DEV_PATH_MAX];
    if (dev_file(c, "tee-ca", "ca", ".crt", teeca, sizeof teeca) != LUNA_OK)
        return NULL;
    /* The TEEs it routes to (their certificates chain to the TEE CA). */
    json_t *tees = json_array();
    for (unsigned i = 0; tees != NULL && i < DEV_N_TEES; i++) {
        char id[16];
        (void)snprintf(id, sizeof id, "tee-%u", i + 1);
        if (json_array_append_new(tees, json_pack("{s:s,s:s,s:i}", "id", id, "host", "127.0.0.1",
                                                  "port", (json_int_t)dev_tee_port(c, i))) != 0) {
            json_decref(tees);
            return NULL;
        }
    }
    json_t *sec = json_pack("{s:o,s:o,s:o,s:o,s:o,s:s}", "iam", endpoint(c, "iam"), "kms",
                            endpoint(c, "kms"), "attestation", endpoint(c, "attestation"),
                            "audit", endpoint(c, "audit"), "tees", tees, "tee_ca", teeca);
    /* GET /v1/audit/witness relays the witness's state (lunal audit verify). */
    if (sec != NULL && json_object_set_new(sec, "witness", endpoint(c, "witness")) != 0) {
        json_decref(sec);
        return NULL;
    }
    return sec != NULL && json_object_set_new(doc, "gateway", sec) == 0 ? doc : NULL;
}

luna_err dev_config_write(const dev_ctx *c, const dev_comp *comp, dev_why *why)
{
    char path[DEV_PATH_MAX];
    LUNA_GUARD(cfg_path(c, comp->name, path, sizeof path));
    json_t *doc = common(c, comp);
    if (doc == NULL) {
        dev_why_set(why, "%s: cannot build its config", comp->name);
        return LUNA_ERR_NOMEM;
    }
    json_t *full = NULL;
    if (strcmp(comp->name, "iam") == 0)
        full = cfg_iam(c, doc);
    else if (strcmp(comp->name, "audit") == 0)
        full = cfg_audit(c, doc);
    else if (strcmp(comp->name, "witness") == 0)
        full = cfg_witness(c, doc);
    else if (strcmp(comp->name, "attestation") == 0)
        full = cfg_attestation(c, doc);
    else if (strcmp(comp->name, "kms") == 0)
        full = cfg_kms(c, doc);
    else if (strcmp(comp->name, "tee-host") == 0)
        full = cfg_tee_host(c, doc);
    else if (strcmp(comp->name, "gateway") == 0)
        full = cfg_gateway(c, doc);
    if (full == NULL) {
        json_decref(doc);
        dev_why_set(why, "%s: cannot build its config (a file it names is missing)",
                    comp->name);
        return LUNA_ERR_CONFIG;
    }
    luna_err err = write_json(path, full);
    if (err != LUNA_OK)
        dev_why_set(why, "cannot write %s: %s", path, luna_strerror(err));
    return err;
}

luna_err dev_client_config_write(const dev_ctx *c, dev_why *why)
{
    char path[DEV_PATH_MAX], ak[DEV_PATH_MAX], ck[DEV_PATH_MAX], ca[DEV_PATH_MAX],
        root[DEV_PATH_MAX], tcb[DEV_PATH_MAX], man[DEV_PATH_MAX], url[64];
    LUNA_GUARD(dev_path(c, "client/client.json", path, sizeof path));
    LUNA_GUARD(dev_path(c, "client/api_key", ak, sizeof ak));
    LUNA_GUARD(dev_path(c, "client/client.key", ck, sizeof ck));
    LUNA_GUARD(dev_file(c, "ca", "ca", ".crt", ca, sizeof ca));
    LUNA_GUARD(dev_path(c, "platform/vendor.crt", root, sizeof root));
    LUNA_GUARD(dev_path(c, "platform/tcb.bin", tcb, sizeof tcb));
    LUNA_GUARD(dev_path(c, "demo/demo.manifest", man, sizeof man));
    (void)snprintf(url, sizeof url, "https://127.0.0.1:%u", c->port_base);
    json_t *dep = deployment(c);
    if (dep == NULL) {
        dev_why_set(why, "the demo deployment is missing (demo/deployment.json)");
        return LUNA_ERR_NOT_FOUND;
    }
    json_t *doc = json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:s,s:s,s:s,s:[{s:s,s:s,s:O,s:s}]}",
                            "tenant_id", DEV_TENANT, "gateway_url", url, "api_key_file", ak,
                            "client_key_file", ck, "ca_file", ca, "development", 1,
                            "sim_root_file", root, "sim_tcb_file", tcb, "default_deployment",
                            DEV_DEPLOYMENT, "deployments", "deployment_id", DEV_DEPLOYMENT,
                            "developer_id", DEV_DEVELOPER, "developer_key",
                            json_object_get(dep, "developer_key"), "manifest_file", man);
    json_decref(dep);
    /* `lunal audit verify`: the pinned log and witness keys, the kept checkpoint. */
    char state[DEV_PATH_MAX];
    LUNA_GUARD(dev_path(c, "client/audit.checkpoint", state, sizeof state));
    if (doc != NULL &&
        (json_object_set_new(doc, "audit_log_key", vkey_json(c, "keys/audit.vkey")) != 0 ||
         json_object_set_new(doc, "audit_witness_key", vkey_json(c, "keys/witness.vkey")) != 0 ||
         json_object_set_new(doc, "audit_state_file", json_string(state)) != 0)) {
        json_decref(doc);
        doc = NULL;
    }
    luna_err err = write_json(path, doc);
    if (err != LUNA_OK)
        dev_why_set(why, "cannot write %s: %s", path, luna_strerror(err));
    return err;
}
