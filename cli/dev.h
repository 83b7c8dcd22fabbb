/*
 * dev.h - `lunal dev up|down|status`: the embedded, single-machine
 * development platform (docs/operations.md).  Internal to cli/dev*.c.
 *
 * Owns: the dev state folder (certificates, configs, databases, logs,
 * pidfiles), starting each component as a detached process, waiting for
 * it to be ready, and stopping it.  Must never: run anything with a
 * secret on its command line (passphrases, PINs and keys go through files
 * of mode 0600), signal a process it cannot prove it started (a pidfile
 * names a pid AND its kernel start time, so a recycled pid is left alone),
 * or claim a platform is up that did not answer /readyz.
 *
 * Not thread-safe: a CLI command runs on one thread.
 */
#ifndef LUNAL_CLI_DEV_H
#define LUNAL_CLI_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "luna/err.h"

/* Entry point called by cli/main.c: `lunal dev <up|down|status> [options]`.
   Exit status 0 success, 1 failure (a step failed, a process is unhealthy),
   2 usage error. */
int lunal_cmd_dev(int argc, char **argv);

#define DEV_PATH_MAX 4096
#define DEV_NAME_MAX 32

/* ---- processes (dev_proc.c) ---- */

/* What a pidfile records: the pid and its start time in clock ticks since
   boot (field 22 of /proc/<pid>/stat), which a recycled pid cannot match. */
typedef struct dev_pidrec {
    pid_t pid;
    unsigned long long start;
} dev_pidrec;

/*
 * Starts argv[0] (an absolute path) detached: its own session and process
 * group, stdin /dev/null, stdout and stderr appended to log_path (created
 * 0600), working directory cwd, no other inherited descriptor.  Writes
 * the pidfile (0600, atomically) before returning.  The child's environment
 * is the caller's plus env_extra (NULL-terminated "K=V" list, may be NULL).
 */
luna_err dev_proc_spawn(char *const argv[], char *const env_extra[], const char *cwd,
                        const char *log_path, const char *pid_path,
                        dev_pidrec *out) LUNA_MUST_CHECK;

/* Reads a pidfile.  LUNA_ERR_NOT_FOUND when absent, LUNA_ERR_FORMAT when
   it is not exactly "<pid> <start>\n". */
luna_err dev_proc_read_pidfile(const char *pid_path, dev_pidrec *out) LUNA_MUST_CHECK;

/* True when the recorded process still runs (not a zombie) and its start
   time matches (so it is the process we started, not a recycled pid). */
bool dev_proc_alive(const dev_pidrec *rec);

/*
 * Stops the process group led by rec: SIGTERM, then SIGKILL when the
 * group has not gone within grace_ms.  Reaps it when it is our child.
 * Does nothing when rec is not alive (a stale pidfile).  Returns
 * LUNA_ERR_TIMEOUT when something survived SIGKILL for 5 s.
 */
luna_err dev_proc_stop(const dev_pidrec *rec, unsigned grace_ms) LUNA_MUST_CHECK;

/*
 * Runs argv to completion (bounded by timeout_ms, then SIGKILL), output
 * appended to log_path; when out is not NULL stdout is captured there
 * (NUL-terminated, truncated to cap - 1) instead.  *status gets the exit
 * status, or -1 when it died by a signal or timed out.
 */
luna_err dev_proc_run(char *const argv[], char *const env_extra[], const char *log_path,
                      char *out, size_t cap, unsigned timeout_ms, int *status) LUNA_MUST_CHECK;

/* Monotonic milliseconds. */
uint64_t dev_now_ms(void);
void dev_sleep_ms(unsigned ms);

#endif
