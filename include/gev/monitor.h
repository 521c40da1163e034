/*
 * gev/monitor.h — what blocks the hub, memory use, and state dumps
 * (gevent's monitor thread, max_blocking_time, max_memory_usage, and
 * Java's kill -3).
 *
 * The blocking monitor. A cooperative runtime works only while every
 * greenlet gives the hub back its turn soon: a greenlet that computes for
 * long, or calls something that blocks without gev (a plain read(2), a
 * lock, sleep(3)), stalls every other greenlet of its hub. The monitor is
 * a thread of its own, off by default, started with gev_monitor_start()
 * or by GEV_MONITOR=<seconds> in the environment (read when the first hub
 * is created). It watches every hub of the process: each hub bumps a
 * counter once per turn (the only cost the monitor puts on the hub, and
 * one that is paid whether or not it runs), and the monitor looks at the
 * counters several times per threshold. A hub whose counter has not
 * moved for longer than the threshold while it is not waiting for I/O and
 * has work (greenlets alive or callbacks queued) is blocked. The monitor
 * then reports, once per stall, through the log hook (gev/log.h) at
 * GEV_LOG_WARNING:
 *
 *   gev monitor: hub 1 (thread 4242) blocked for 0.152 s by greenlet
 *       fetcher (id 3)
 *   gev monitor:   #0  crunch+0x1d (app+0x1a2d)
 *   gev monitor:   #1  handle+0x3e (app+0x1b0e)
 *   ...
 *
 * naming the coroutine that runs in the hub's thread (a greenlet by name,
 * "the main coroutine", or "the hub" running a callback or watcher) with
 * its id (gev_coro_id, as gdb's `gev bt` takes it), and where it is: the
 * monitor interrupts the hub's thread with GEV_MONITOR_SIGNAL, whose handler
 * (it only reads and calls backtrace(3)) records the running coroutine and its
 * stack; the monitor's thread then names the frames (gev_describe_address,
 * gev/coro.h) and logs. The signal restarts whatever system call it interrupts
 * (SA_RESTART). A thread that blocks the signal is reported without a
 * backtrace. The durations are wall-clock (monotonic) time, so a hub
 * whose thread the system does not schedule counts as blocked too: choose
 * a threshold well above the scheduling noise of the machine (gevent's
 * default is 0.1 s).
 *
 * The memory watch (gevent's max_memory_usage): with a limit set (by
 * gev_monitor_set_memory_limit or GEV_MONITOR_MEMORY=<bytes>[K|M|G]), the
 * monitor reads the process's resident set size (/proc/self/statm) once a
 * second and reports once when it exceeds the limit ("gev monitor: memory
 * usage ... exceeds the limit ..."), and again only after it has been
 * back under the limit.
 *
 * Process-wide state. Until the monitor is started nothing is touched.
 * Starting it installs gev's handler for GEV_MONITOR_SIGNAL and starts one
 * thread (with every signal blocked); gev_monitor_stop() stops the thread
 * and puts the signal's previous disposition back. The signal is the
 * realtime signal SIGRTMAX - 4, which no other part of gev, glibc or
 * libev uses; a program that uses it itself cannot run the monitor
 * (EBUSY). After fork the child has no monitor thread; if the monitor ran
 * in the parent, the child's first new hub starts one (prefork workers are
 * watched as their master was).
 *
 * Differences from gevent: gevent's monitor is a Python thread that
 * prints the blocking greenlet's Python stack from that thread; gev
 * interrupts the blocked thread for a native backtrace. gevent reports
 * memory through events; gev logs.
 */
#ifndef GEV_MONITOR_H
#define GEV_MONITOR_H

#include <signal.h>
#include <stddef.h>

#include "gev/log.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The signal the monitor interrupts a blocked hub's thread with. */
#define GEV_MONITOR_SIGNAL (SIGRTMAX - 4)

/* Starts the monitor (or changes its threshold if it runs): any hub of
 * the process that does not come round for more than max_blocking_seconds
 * is reported. Callable from any thread, with or without a hub.
 * Errors: EINVAL (not a positive finite number), EBUSY (the program has a
 * handler for GEV_MONITOR_SIGNAL), EAGAIN or ENOMEM (no thread). */
GEV_EXTERN int gev_monitor_start(double max_blocking_seconds);

/* Sets the memory watch's limit in bytes of resident memory (0 turns the
 * watch off), starting the monitor thread if it does not run (then with
 * the blocking watch off until gev_monitor_start). Errors: as
 * gev_monitor_start's, but EINVAL never. */
GEV_EXTERN int gev_monitor_set_memory_limit(size_t max_rss_bytes);

/* Stops the monitor: joins its thread and restores the previous
 * disposition of GEV_MONITOR_SIGNAL. Returns 0 (also when it was not
 * running). Must not be called from a log hook. */
GEV_EXTERN int gev_monitor_stop(void);

/* Non-zero while the monitor runs. */
GEV_EXTERN int gev_monitor_running(void);

/* Makes signum dump the calling thread's hub state: when it arrives, the
 * hub spawns a greenlet that logs gev_log_run_info(GEV_LOG_INFO), every
 * coroutine with its backtrace (gev/hub.h), as a JVM prints its threads on
 * kill -3. The handler is a gev signal handler (gev/signal.h: the signal
 * is acted on in the hub's next turn, never in the signal context; it
 * does not keep the hub alive) and lives as long as the hub. Setting
 * GEV_DUMP_SIGNAL=SIGUSR2 (a name, with or without SIG, or a number) in
 * the environment does the same for the first hub of the process. It is
 * read when libgev is loaded: always with the shared library; a program
 * linked with the static one reads it only if it calls (links)
 * gev_dump_on_signal somewhere.
 * Calling it again for the same signal does nothing. Returns 0, or -1:
 * EINVAL (not a catchable signal), EBUSY (another thread's hub watches
 * signum), ENOMEM. */
GEV_EXTERN int gev_dump_on_signal(int signum);

#ifdef __cplusplus
}
#endif
#endif
