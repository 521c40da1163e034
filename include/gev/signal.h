/*
 * gev/signal.h — POSIX signals delivered through the hub
 * (gevent.signal_handler, and waiting for a signal).
 *
 * Both calls are built on libev's ev_signal watchers in the calling
 * thread's hub: the kernel's signal handler only notes the arrival and
 * wakes the loop, and gev acts on it in the hub's next turn. So nothing gev
 * runs for a signal runs in the asynchronous signal context: a handler is
 * an ordinary greenlet and may block, lock, allocate and print.
 *
 * Delivery rules, those of libev:
 *   - Arrivals of one signal between two turns of the hub are coalesced:
 *     a burst of three SIGCHLDs may run the handler once.
 *   - While any gev (or libev) watcher of a signal is active, its
 *     disposition is libev's handler. When the last one stops, the
 *     disposition goes back to SIG_DFL (so a SIGTERM arriving after the
 *     handler was cancelled terminates the process, as without gev).
 *   - A signal belongs to one hub at a time: watching it from a second
 *     thread's hub while the first still watches it fails with EBUSY.
 *     Which thread the kernel interrupts does not matter. SIGCHLD belongs
 *     to the main thread's hub (libev's default loop keeps it for its
 *     child reaper; another thread's hub gets EBUSY). While a gev handler
 *     or wait of SIGCHLD is active, libev's reaper runs and reaps every
 *     child as it ends: gev_waitpid still reports their statuses, a plain
 *     waitpid() gets ECHILD. See gev/process.h.
 *   - A handler does not keep the hub alive (gevent's ref=False):
 *     gev_run() returns when only signal handlers remain. A waiter does
 *     keep it alive, since the signal is what it waits for.
 *
 * Teardown: gev_hub_destroy() stops the thread's handlers (their handles
 * stay valid until gev_signal_cancel frees them). After fork, see
 * gev_fork_reinit / gev_fork_discard in gev/prefork.h.
 */
#ifndef GEV_SIGNAL_H
#define GEV_SIGNAL_H

#include <stddef.h>

#include "gev/hub.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gev_signal gev_signal;

/* A signal handler: runs in a new greenlet of the hub for each (coalesced)
 * arrival of signum. It may block. */
typedef void (*gev_signal_fn)(int signum, void *arg);

/* Installs fn(signum, arg) as a handler of signum: each time the signal
 * arrives, the hub spawns a greenlet running it. Several handlers of one
 * signal may coexist; each runs. Callable from any coroutine of the thread
 * and from the hub (it does not block). The caller owns the returned
 * handle and releases it with gev_signal_cancel.
 * Errors: EINVAL (fn NULL; signum not a catchable signal: out of range,
 * SIGKILL, SIGSTOP), EBUSY (signum is watched by another thread's hub;
 * SIGCHLD outside the main thread's hub), ENOMEM. SIGCHLD: see the
 * delivery rules above. */
GEV_EXTERN gev_signal *gev_signal_handler(int signum, gev_signal_fn fn,
                                          void *arg);

/* Stops the handler and frees the handle. Handler greenlets already
 * spawned run to their end. NULL does nothing and returns 0.
 * Errors: EXDEV (a handle of another thread's hub; nothing is done). */
GEV_EXTERN int gev_signal_cancel(gev_signal *s);

/* The signal number a handle watches, or -1 (EINVAL) for NULL. */
GEV_EXTERN int gev_signal_signum(const gev_signal *s);

/* Parks until signum arrives, for at most timeout seconds (< 0: forever).
 * Only arrivals after the call count. Returns signum, or -1 with errno:
 * EINVAL (not a catchable signal), EBUSY (watched by another thread's hub),
 * ENOMEM, or a blocking-call error (ETIMEDOUT when the timeout ran out,
 * ECANCELED, EPERM from the hub, see gev/hub.h). */
GEV_EXTERN int gev_signal_wait(int signum, double timeout);

/* As gev_signal_wait for any of the n signals in signums (1 <= n <= 64);
 * returns the one that arrived (the lowest of those that arrived in the
 * same turn). Errors as gev_signal_wait, EINVAL also for signums NULL or n
 * out of range. */
GEV_EXTERN int gev_signal_wait_any(const int *signums, size_t n,
                                   double timeout);

#ifdef __cplusplus
}
#endif
#endif
