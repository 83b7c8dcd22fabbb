/*
 * devplat.h - a real embedded platform (`lunal dev up`) for the load tests
 * and the end-to-end benchmark: started in a private temporary state
 * folder on random loopback ports (or an existing state folder reused),
 * stopped with `lunal dev down`, its temporary folder removed.
 *
 * Must never stop or remove a platform it did not start (a reused state
 * folder is left running and untouched), and never signal a process it
 * cannot tie to that platform (the TEE runtimes are found as children of
 * the platform's own tee-host, read from its pidfile).
 *
 * Not thread-safe: call from one thread, before and after the load.
 */
#ifndef LUNA_DEVPLAT_H
#define LUNA_DEVPLAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "luna/err.h"

#define LUNA_DEVPLAT_PATH_MAX 512
#define LUNA_DEVPLAT_WHY_MAX 768
#define LUNA_DEVPLAT_MAX_ENV 16

typedef struct luna_devplat {
    char root[LUNA_DEVPLAT_PATH_MAX];   /* our temporary folder; "" when reused */
    char state[LUNA_DEVPLAT_PATH_MAX];  /* the LUNAL_DEV_DIR of the platform */
    char config[LUNA_DEVPLAT_PATH_MAX]; /* its client config (client/client.json) */
    char lunal[LUNA_DEVPLAT_PATH_MAX];  /* the lunal executable */
    bool owned;                         /* started here: down() stops it */
} luna_devplat;

/*
 * Brings a platform up.  reuse_state non-NULL: that state folder's
 * platform must be running already (its client config is used, nothing is
 * started).  Otherwise `lunal_bin dev up` runs in a fresh folder under
 * $TMPDIR (mode 0711 so the KMS's HSM user can pass through) with extra_env
 * ("NAME=value" strings, at most LUNA_DEVPLAT_MAX_ENV, may be NULL) added
 * to the environment every component inherits; `dev up` gets 60 s, and a
 * quick failure (a taken port range) is retried twice on other random
 * ports.  The output of `dev up` goes to
 * <root>/devup.log.  why (LUNA_DEVPLAT_WHY_MAX bytes) says what failed.
 * LUNA_ERR_UNAVAILABLE when the platform did not come up, LUNA_ERR_IO on a
 * file or process error.
 */
luna_err luna_devplat_up(luna_devplat *p, const char *lunal_bin, const char *reuse_state,
                         const char *const *extra_env, char *why) LUNA_MUST_CHECK;

/* Stops an owned platform (`lunal dev down`) and removes its folder; a
   reused one is left alone.  Safe to call twice. */
void luna_devplat_down(luna_devplat *p);

/* The pid in the platform's pidfile run/<component>.pid. */
luna_err luna_devplat_component_pid(const luna_devplat *p, const char *component,
                                    pid_t *pid) LUNA_MUST_CHECK;

/* Live children of parent whose command name (/proc/PID/comm) is comm,
   at most cap of them into out; returns how many were found. */
size_t luna_devplat_children(pid_t parent, const char *comm, pid_t *out, size_t cap);

/* Which of cands[0..n) holds the IPv4 socket listening on port (a TEE
   runtime's, found through /proc/net/tcp and /proc/PID/fd): NOT_FOUND
   when none does. */
luna_err luna_devplat_listener(uint16_t port, const pid_t *cands, size_t n,
                               pid_t *out) LUNA_MUST_CHECK;

/* The lunal executable of this build tree: $LUNA_BINARY_DIR/cli/lunal when
   set (CTest sets it), else fallback. */
const char *luna_devplat_default_lunal(const char *fallback);

#endif
