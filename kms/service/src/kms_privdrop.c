/*
 * kms_privdrop.c - the KMS sheds root once it holds what it needs.
 *
 * Owns: resolving kms.user, refusing users that would undo the privilege
 * separation (root, the HSM process's uid), and the irreversible switch of
 * every uid and gid (real, effective, saved, no supplementary groups).
 * Must never: return success while any id is still the old one, or leave
 * a way back to root (saved ids are switched too).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kms.h"
#include "luna/log.h"
#include "luna/secret.h"

#define PWBUF_MAX (1L << 20)

luna_err kms_user_resolve(const char *name, uid_t *uid, gid_t *gid)
{
    struct passwd pw, *res = NULL;
    unsigned long v = 0;
    size_t i, n;
    bool numeric;
    long sz = sysconf(_SC_GETPW_R_SIZE_MAX);
    char *buf;

    if (name == NULL || uid == NULL || gid == NULL)
        return LUNA_ERR_INVALID_ARG;
    n = strlen(name);
    numeric = n >= 1 && n <= 9;
    for (i = 0; i < n && numeric; i++)
        numeric = name[i] >= '0' && name[i] <= '9';
    for (i = 0; numeric && i < n; i++)
        v = v * 10 + (unsigned long)(name[i] - '0');
    if (sz <= 0 || sz > PWBUF_MAX)
        sz = 16384;
    buf = malloc((size_t)sz);
    if (buf == NULL)
        return LUNA_ERR_NOMEM;
    if (numeric)
        (void)getpwuid_r((uid_t)v, &pw, buf, (size_t)sz, &res);
    else
        (void)getpwnam_r(name, &pw, buf, (size_t)sz, &res);
    luna_err err = LUNA_OK;
    if (res != NULL) {
        *uid = res->pw_uid;
        *gid = res->pw_gid;
    } else if (numeric) {
        *uid = (uid_t)v;
        *gid = (gid_t)v;
    } else {
        err = LUNA_ERR_CONFIG;
    }
    free(buf);
    if (err != LUNA_OK)
        return err;
    /* A "user" that is root in any way is no drop at all. */
    return *uid == 0 || *gid == 0 ? LUNA_ERR_CONFIG : LUNA_OK;
}

luna_err kms_drop_privileges(uid_t uid, gid_t gid)
{
    uid_t ru, eu, su;
    gid_t rg, eg, sg;

    if (uid == 0 || gid == 0)
        return LUNA_ERR_CONFIG;
    /* Groups first: once the uid is gone they could not be dropped. */
    if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 ||
        setresuid(uid, uid, uid) != 0)
        return LUNA_ERR_PERMISSION;
    if (getresuid(&ru, &eu, &su) != 0 || ru != uid || eu != uid || su != uid ||
        getresgid(&rg, &eg, &sg) != 0 || rg != gid || eg != gid || sg != gid ||
        getgroups(0, NULL) != 0)
        return LUNA_ERR_PERMISSION;
    /* No way back: a process that was root must not regain it. */
    if (setuid(0) == 0 || seteuid(0) == 0)
        return LUNA_ERR_PERMISSION;
    /* A credential change resets dumpability to the system default. */
    return luna_process_harden();
}
