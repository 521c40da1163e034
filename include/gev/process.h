/*
 * gev/process.h — child processes (gevent.os.waitpid).
 *
 * Waiting for a child parks the calling greenlet only, and gev never
 * takes a child's status behind the program's back.
 *
 * ---- Children, SIGCHLD and the hub ----------------------------------
 *
 * A program's children stay its own: gev reaps a child only when asked to
 * wait for it (gev_waitpid, gev_wait_watcher with GEV_WATCH_CHILD), and never
 * changes SIGCHLD's disposition unless asked to watch SIGCHLD. So popen/pclose,
 * system(), waitpid() and libraries that run children work as without gev, in
 * every thread.
 *
 * How gev watches one child: through a pidfd (Linux 5.3 and later), which
 * tells when that child ended without any signal, so it works in every
 * thread's hub and reaps only that child. On older kernels, gev falls back
 * to libev's reaper, which only the main thread's hub has (libev's default
 * loop): there, child waits in other threads fail with ENOTSUP.
 *
 * libev's reaper reaps every child of the process (waitpid(-1)) whenever
 * SIGCHLD arrives. gev keeps it off: creating the main thread's hub
 * installs libev's SIGCHLD handler, and gev puts the program's
 * disposition back at once (gevent does the same). It runs only while one
 * of these is active in the main thread's hub: a gev signal handler or
 * wait for SIGCHLD (libev has one handler per signal, shared by the reaper
 * and SIGCHLD watchers, so SIGCHLD cannot be watched without reaping); a
 * gev_wait_watcher(GEV_WATCH_CHILD) for any child (pid 0) or with the
 * trace flag; child waits on a kernel without pidfd. While it runs, a
 * plain waitpid() may find its child already reaped (ECHILD); gev keeps
 * each status the reaper collects that no gev wait claimed in a
 * process-wide cache (the newest 1024), so gev_waitpid still reports it.
 * SIGCHLD itself belongs to the main thread's hub: watching it in another
 * thread's hub fails with EBUSY.
 *
 * With SIGCHLD set to SIG_IGN (or SA_NOCLDWAIT) the kernel reaps children
 * itself and their statuses are gone: waits then fail with ECHILD.
 *
 * The prefork master (gev/prefork.h) runs its own poll(2) loop and reaps
 * its workers itself with waitpid().
 */
#ifndef GEV_PROCESS_H
#define GEV_PROCESS_H

#include <stddef.h>
#include <sys/types.h>

#include "gev/hub.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Waiting for a child of the program ------------------------------ */

/* Waits for the child pid (> 0) to end and reaps it, parking the calling
 * greenlet for at most timeout seconds (< 0 forever). flags is 0 or
 * WNOHANG (do not wait, as waitpid). Returns pid with the wait status in
 * *status (may be NULL; use the <sys/wait.h> macros), 0 with WNOHANG when
 * the child still runs, or -1 with errno: EINVAL (pid <= 0, other flags,
 * NaN timeout), ECHILD (not a child of this process, or reaped already),
 * ENOTSUP (a kernel without pidfd, outside the main thread's hub), EMFILE,
 * ENFILE, ENOMEM, and the blocking-call errors (ETIMEDOUT when timeout
 * ran out, ECANCELED, EPERM from the hub without WNOHANG; see gev/hub.h).
 * A child that ended before the call, even long before, is reported.
 * gevent's os.waitpid also takes pid -1 (any child); gev does not, since
 * "any child" would take statuses that belong to other parts of the
 * program (gev_process objects, libraries). */
GEV_EXTERN pid_t gev_waitpid(pid_t pid, int *status, int flags, double timeout);

#ifdef __cplusplus
}
#endif
#endif
