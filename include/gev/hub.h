/*
 * gev/hub.h — the hub (a libev loop in a coroutine), greenlets, waiting,
 * timeouts.
 *
 * Each thread has one hub, created on first use: a dedicated-stack
 * coroutine whose parent is the thread's main coroutine and which runs the
 * libev loop (ev_default_loop on the main thread, ev_loop_new elsewhere).
 * Greenlets are coroutines whose parent is the hub. A greenlet that would
 * block parks: it switches to the hub, and the hub switches it back when the
 * thing it waits for happens. The thread's main coroutine may block too
 * (it parks the same way).
 *
 * The hub's turn, in order:
 *   1. run queued callbacks (gev_run_callback, greenlet starts, wake-ups) in
 *      FIFO order; callbacks queued while draining run in the same pass, but
 *      a pass stops after about 5 ms so that I/O is never starved (the rest
 *      run in the next turn, and the poll then does not block);
 *   2. poll for I/O, blocking only when no callback is queued;
 *   3. run the watchers that fired (timers, io, signals, children), which
 *      wake parked greenlets by queueing them (back to 1).
 *
 * Blocking calls. Every call documented as blocking parks the caller and
 * fails with:
 *   ECANCELED  the greenlet was killed (sticky: every later blocking call of
 *              that greenlet fails the same way until it returns);
 *   ETIMEDOUT  the call's own timeout, or an expired gev_timeout scope of the
 *              caller (sticky until the scope is cancelled);
 *   EPERM      called from the hub itself or a loop callback, which must
 *              never block;
 *   EDEADLK    "would block forever": the loop ran out of work while the
 *              caller still waited (gevent's LoopExit), and the process
 *              has no other thread that could end the wait (gev/thread.h);
 *   EINTR      (GEV_EINVALID_SWITCH) an invalid switch: something other
 *              than the hub switched into the parked coroutine with
 *              gev_coro_switch (gevent's InvalidSwitchError). gev logs
 *              "gev: invalid switch into <name> parked in <what>"; the call
 *              is over (it left its wait queue, its timer is stopped) and
 *              later wake-ups of the object go to others or to the next
 *              call, none lost or delivered twice;
 *   ENOMEM     no memory to arm the call's timeout (or, for a plain
 *              coroutine, its first blocking call's task);
 *   EINVAL     the timeout is NaN (see below).
 * An error thrown into a parked coroutine with gev_coro_throw (or the kill
 * gev_coro_free throws) ends the call with that error; GEV_EKILL then
 * cancels as a greenlet kill does (ECANCELED, sticky). If the call had
 * already been woken when either came (its resume was queued but had not
 * run), the wake decides the call's result instead, so that nothing a
 * waker handed over (a semaphore unit, a queue item) is lost; the invalid
 * switch is still logged and a thrown GEV_EKILL still cancels every later
 * blocking call.
 * Timeouts are seconds as double: < 0 means wait forever, 0 means do not
 * wait (poll), > 0 bounds the wait. NaN is refused with EINVAL by every
 * call that takes a timeout or a number of seconds, even one that would
 * not have waited.
 *
 * "Not yet" is -1 with ETIMEDOUT. When a call's own timeout runs out
 * before what it waits for happened (a greenlet not finished, an Event not
 * set, a Queue still empty, a socket with no data), it fails with
 * ETIMEDOUT and nothing changed: that is the C way of saying "not yet"
 * (sem_timedwait, pthread_cond_timedwait), where gevent returns False or
 * None or raises Timeout. The calls over many objects differ: gev_joinall,
 * gev_join_all and gev_wait return how many were ready, since "some of
 * them" is an answer, not an error; their iterators' next calls report
 * "nothing more in time" as ETIMEDOUT.
 *
 * The clock. Every timeout and deadline (sleep, each call's timeout, Timeout
 * scopes, spawn_later, joinall/iwait, sockets, DNS, pools) is measured on
 * CLOCK_MONOTONIC (gev_monotonic() in gev/log.h) and counted from the
 * moment of the call: a wait of T seconds never returns its timeout before
 * T seconds have passed since the call, whatever the caller did before it.
 * (libev counts its timers from a loop time cached at the last poll, which
 * a greenlet that computes without yielding leaves behind; gev refreshes it
 * before arming a timer, as gevent's loop.update_now(), and re-arms a timer
 * that fired before its deadline.) A step of the wall clock (NTP, a resumed
 * VM) neither expires nor extends any wait.
 *
 * Threads. Each thread has its own hub, and everything a hub owns
 * (greenlets, Timeout scopes, sockets, servers, queues, pools, results of
 * pool jobs) is used from that thread only: a call from another thread,
 * or after that hub was destroyed, fails with EXDEV (a hub is told apart
 * by an id that is never reused, not by its address, which a later hub
 * may get). The calls other threads may make, exactly:
 *   - gev/thread.h: gev_run_callback_threadsafe and the calls on gev_hub
 *     handles; the threadpool's calls, from any thread (a result is waited
 *     on in the thread that spawned the job); the gev_file_* calls;
 *   - gev/sync.h, "Threads": every call on an Event, AsyncResult,
 *     Semaphore / BoundedSemaphore, Lock or RLock except _init/_destroy;
 *   - gev_fail from a pool job (it fails the job);
 *   - calls that concern no hub: gev_monotonic, gev_hub_exists, and
 *     those on a thread's own hub from that thread.
 * A blocking call's EDEADLK needs one more condition when threads are
 * about: gev/thread.h says how a hub waits for other threads.
 *
 * Child processes stay the program's own. The main thread's hub runs
 * libev's default loop, whose SIGCHLD handler would reap every child of
 * the process; gev puts the program's SIGCHLD disposition back as soon as
 * it has created the loop, so popen/pclose, system() and waitpid() work
 * as without gev. To wait for a child cooperatively use gev_waitpid or a
 * gev_process (gev/process.h), or gev_wait_watcher() with an ev_child
 * watcher (GEV_WATCH_CHILD): for one pid it works in every thread's hub
 * (through a pidfd, reaping that child only) and reports the status in
 * rstatus even when the child ended before the call; for any child (pid
 * 0) or with the trace flag it needs libev's reaper, which only the main
 * thread's hub has and which then reaps every child while the wait lasts.
 * gev/process.h says when the reaper runs and how statuses are kept.
 *
 * Shared-stack mode (see gev/coro.h): nothing handed to the hub may live on
 * a shared-mode coroutine's stack while the caller is parked (watchers,
 * objects waited on). Everything gev allocates itself is on the heap.
 */
#ifndef GEV_HUB_H
#define GEV_HUB_H

#include <stdio.h>

#include "gev/coro.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ev_loop;

/* The error a blocking call reports after an invalid switch (see above). */
#define GEV_EINVALID_SWITCH EINTR

/* Seconds gev_hub_destroy gives the greenlets it kills to return. */
#define GEV_HUB_DESTROY_GRACE 1.0

/* ---- The hub ---------------------------------------------------------- */

/* The calling thread's libev loop, creating the hub if needed, so other
 * libev code can share it: its watchers run from the hub's poll, and it
 * may call ev_break (the hub then simply polls again while watchers are
 * active; it never ends the hub's work early). NULL with ENOMEM on
 * failure (the loop, or the hub's stack, which is mapped when the hub is
 * created). */
GEV_EXTERN struct ev_loop *gev_hub_loop(void);

/* The calling thread's hub coroutine (created if needed), or NULL. It
 * belongs to the hub: gev_coro_free refuses it (EPERM). */
GEV_EXTERN gev_coro *gev_hub_coro(void);

/* Non-zero when called from the hub: its coroutine or a loop callback. */
GEV_EXTERN int gev_in_hub(void);

/* Non-zero when the calling thread has a hub. Unlike gev_hub_loop() and
 * gev_hub_coro() it never creates one, so code that must not change a
 * program without a hub (the cooperative libc of gev/patch.h) can ask.
 * A thread-local read: cheap enough for every call. */
GEV_EXTERN int gev_hub_exists(void);

/* Runs the hub until it has nothing left to do: no greenlet alive, no
 * callback queued, no active watcher (gevent's wait() / hub.join()). Must be
 * called from the thread's main coroutine (or a plain coroutine), not from a
 * greenlet. Returns 0. Errors: EPERM (from the hub), EDEADLK (from a
 * greenlet, which would wait for itself), ECANCELED/ETIMEDOUT as any
 * blocking call. */
GEV_EXTERN int gev_run(void);

/* Tears down the calling thread's hub: kills every greenlet still alive
 * (they get ECANCELED and are run until they return), runs their links,
 * stops gev's watchers, frees everything. A later gev call creates a new
 * hub. Must be called from the main coroutine. A thread that exits without
 * calling it has its hub torn down the same way as it exits.
 * A killed greenlet that is still making blocking calls (each failing with
 * ECANCELED) GEV_HUB_DESTROY_GRACE seconds after the teardown began
 * ignores its kill: gev logs "gev: greenlet <name> ignored kill; abandoning
 * it", ends it as failed with ECANCELED, and never runs it again; its
 * coroutine and stack are leaked on purpose (its frames cannot be unwound,
 * and may hold addresses the program still uses). A greenlet that never
 * calls gev again cannot be interrupted at all.
 * Errors: EPERM (from the hub or a greenlet), EBUSY (a plain coroutine,
 * not a greenlet, is parked in the hub: free it first with gev_coro_free,
 * which unwinds it). Returns 0 when there was nothing to tear down too. */
GEV_EXTERN int gev_hub_destroy(void);

/* Debug verifier: walks the callback queue, the greenlet list, wait queues
 * and parked greenlets and checks their invariants. Returns 0, or aborts
 * with "gev: <rule>" naming the broken invariant. */
GEV_EXTERN int gev_hub_verify(void);

typedef struct gev_hub_stats {
  size_t greenlets; /* greenlet objects alive (not yet freed) */
  size_t running;   /* greenlets started and not finished */
  size_t parked;    /* coroutines parked in the hub */
  size_t callbacks; /* queued callbacks */
  size_t watchers;  /* gev-owned libev watchers active (an open socket's
                       may stay active, idle, between its waits) */
} gev_hub_stats;
/* Counters of the calling thread's hub (all zero when it has none). */
GEV_EXTERN void gev_hub_get_stats(gev_hub_stats *out);

/* Prints the calling thread's hub and every coroutine it knows (gevent's
 * print_run_info): the main coroutine, plain coroutines that blocked,
 * every greenlet object alive. Per coroutine: name, id (gev_coro_id),
 * state, what it is parked on ("sleep", "Queue.get", ...) and since when
 * (to the hub's last turn), and, for a started coroutine that has not
 * finished, its backtrace, one frame per line, innermost first, as
 * gev_coro_backtrace unwinds it and gev_describe_address names it
 * ("function+0xoff (object+0xoff)"; `addr2line -e object 0xoff` gives the
 * source line when the object has debug information).
 *
 * How the backtraces are made: from the registers the coroutine's last
 * switch saved, the system unwinder (backtrace(3)) follows the code's
 * DWARF unwind tables (.eh_frame, present in every C object built by GCC
 * or Clang on Linux unless -fno-asynchronous-unwind-tables is given), so
 * frame pointers are not needed. Names come from each object's symbol
 * table: static functions are named unless the object is stripped, in
 * which case only exported functions are (build with -rdynamic to export
 * a program's). A shared-mode coroutine whose stack is copied out is
 * unwound from the shared region after bringing its bytes back (as a
 * switch into it would) when the caller does not itself run on the
 * region, else shown as "stack saved (N bytes)". The ucontext build
 * (-Dswitch=ucontext) has no backtraces of parked coroutines. Does
 * nothing with out NULL. */
GEV_EXTERN void gev_print_run_info(FILE *out);
/* The same lines through the log hook (gev/log.h), one message each at
 * level. */
GEV_EXTERN void gev_log_run_info(gev_log_level level);

/* ---- Callbacks ------------------------------------------------------- */

typedef void (*gev_callback_fn)(void *arg);

/* Queues fn(arg) to run in the hub (FIFO). Callable from any coroutine of
 * the thread and from loop callbacks. fn must not block.
 * Errors: EINVAL (fn NULL), ENOMEM. */
GEV_EXTERN int gev_run_callback(gev_callback_fn fn, void *arg);

/* ---- Waiter (gevent's Waiter) ----------------------------------------- */

/* A one-shot rendezvous between one parked coroutine and the hub.
 * Embed it in a heap struct (never on a shared-mode stack) and
 * gev_waiter_init() it. */
typedef struct gev_waiter {
  /* private */
  gev_coro *waiting; /* coroutine parked in get, or NULL */
  void *value;
  int err;
  int state;                /* 0 empty, 1 value or error stored */
  unsigned long long owner; /* gev_coro_id of waiting */
} gev_waiter;

GEV_EXTERN void gev_waiter_init(gev_waiter *w);
/* Delivers value. Only from the hub (anything else aborts with "gev:
 * Waiter.switch must be called from the hub"). If a coroutine waits in get,
 * it is resumed; otherwise the value is stored for the next get. */
GEV_EXTERN void gev_waiter_switch(gev_waiter *w, void *value);
/* Delivers error err (> 0) the same way. Only from the hub. */
GEV_EXTERN void gev_waiter_throw(gev_waiter *w, int err);
/* Returns the stored value, or parks until one is delivered. 0 with *value,
 * or -1: the thrown error, EBUSY ("concurrent object use": another
 * coroutine already waits), or a blocking-call error. */
GEV_EXTERN int gev_waiter_get(gev_waiter *w, void **value);
GEV_EXTERN int gev_waiter_ready(const gev_waiter *w);
/* Forgets a stored value/error so the waiter can be reused. */
GEV_EXTERN void gev_waiter_clear(gev_waiter *w);

/* ---- Waiting on watchers and fds ------------------------------------- */

/* Kinds of libev watcher gev_wait_watcher() accepts. */
typedef enum gev_watcher_kind {
  GEV_WATCH_IO,
  GEV_WATCH_TIMER,
  GEV_WATCH_PERIODIC,
  GEV_WATCH_SIGNAL,
  GEV_WATCH_CHILD,
  GEV_WATCH_STAT,
  GEV_WATCH_IDLE,
  GEV_WATCH_ASYNC,
} gev_watcher_kind;

/* Parks until watcher w (an initialised, inactive libev watcher of the
 * given kind, e.g. from ev_io_init) fires, then stops it. Its callback and
 * data fields are used by gev while waiting and restored afterwards.
 * GEV_WATCH_CHILD watchers are served as "Child processes" above says
 * (one for a single pid is never started on the loop itself: gev fills
 * its rpid and rstatus).
 * Returns the revents mask (> 0), or -1: EINVAL (NULL, unknown kind,
 * already active), or a blocking-call error; for GEV_WATCH_CHILD also
 * ECHILD (not a child of this process, or reaped already), ENOTSUP (any
 * child, the trace flag, or a kernel without pidfd, outside the main
 * thread's hub), EMFILE, ENOMEM. */
GEV_EXTERN int gev_wait_watcher(void *w, gev_watcher_kind kind, double timeout);

/* Parks until fd is readable / writable. Returns 0, or -1: EBADF (fd < 0),
 * EBUSY (another coroutine waits on the same fd and direction), or a
 * blocking-call error. */
GEV_EXTERN int gev_wait_read(int fd, double timeout);
GEV_EXTERN int gev_wait_write(int fd, double timeout);

/* Parks for seconds. gev_sleep(0) yields: the caller runs again after the
 * callbacks already queued. Returns 0 or a blocking-call error. */
GEV_EXTERN int gev_sleep(double seconds);

/* ---- Greenlets (gevent.Greenlet) ------------------------------------- */

/*
 * Ordering guarantees (as gevent's):
 *   - spawn order: greenlets spawned in a row start in spawn order (each
 *     starts from a callback, and callbacks run FIFO);
 *   - wake order: waiters of one object (a join, an Event, a Queue, a
 *     Semaphore ...) are woken first-come first-served, and woken
 *     greenlets resume in the order they were woken;
 *   - link order: a finished greenlet's links run from the hub in the
 *     order they were added (links added after it finished run soon after,
 *     in order too);
 *   - join after links: a wait for a greenlet is a link appended last, so
 *     gev_greenlet_join, _get, _kill with block, gev_joinall and gev_iwait
 *     report a greenlet finished only once every link added to it before
 *     has run: link a cleanup, then join, and the cleanup has run when the
 *     join returns. gev_greenlet_ready() turns true as soon as the function
 *     has returned, which may be before its links have run.
 */

typedef struct gev_greenlet gev_greenlet;
typedef void *(*gev_greenlet_fn)(void *arg);
typedef void (*gev_link_fn)(gev_greenlet *g, void *arg);

typedef struct gev_spawn_opts {
  const char *name;          /* copied; default "Greenlet-N" */
  size_t stack_size;         /* as gev_coro_opts */
  gev_stack_mode stack_mode; /* as gev_coro_opts */
} gev_spawn_opts;

/* Spawns fn(arg) as a greenlet of this thread's hub. It starts from a
 * callback, so greenlets spawned in a row start in spawn order. Never
 * blocks: callable from any coroutine of the thread, from the hub and from
 * loop callbacks (a server's accept watcher spawns its handlers so).
 * Returns a handle the caller owns (release with gev_greenlet_unref); the
 * greenlet runs whether or not anyone holds a handle.
 * Errors: EINVAL (fn NULL, bad opts), ENOMEM. */
GEV_EXTERN gev_greenlet *gev_spawn(gev_greenlet_fn fn, void *arg);
GEV_EXTERN gev_greenlet *gev_spawn_ex(const gev_spawn_opts *opts,
                                      gev_greenlet_fn fn, void *arg);
/* As gev_spawn, starting after seconds (>= 0; EINVAL otherwise, NaN
 * included). */
GEV_EXTERN gev_greenlet *gev_spawn_later(double seconds, gev_greenlet_fn fn,
                                         void *arg);
/* Fire and forget: no handle. Returns 0 or -1 (EINVAL, ENOMEM). */
GEV_EXTERN int gev_spawn_raw(gev_greenlet_fn fn, void *arg);

/* Creates a greenlet without starting it (gevent's Greenlet(fn, arg)
 * before start()): it runs only once gev_greenlet_start or
 * gev_greenlet_start_later is called. Until then it is "not started": a
 * join waits for it (and ends in EDEADLK if nothing else could start it),
 * a kill makes it finish without ever running (its links fire). Dropping
 * the last handle of a greenlet that was never started and is not
 * scheduled kills it so (nobody could start it any more). Returns a
 * handle the caller owns, or NULL: EINVAL (fn NULL), ENOMEM. */
GEV_EXTERN gev_greenlet *gev_greenlet_new(gev_greenlet_fn fn, void *arg);
GEV_EXTERN gev_greenlet *gev_greenlet_new_ex(const gev_spawn_opts *opts,
                                             gev_greenlet_fn fn, void *arg);
/* Schedules g to start, as gev_spawn does (from a callback, in order).
 * Starting a greenlet that is already started, scheduled or finished
 * (killed) does nothing, as gevent's start(). Never blocks. Returns 0, or
 * -1: EINVAL (NULL), EXDEV. */
GEV_EXTERN int gev_greenlet_start(gev_greenlet *g);
/* As gev_greenlet_start, after seconds (>= 0). Returns 0, or -1: EINVAL
 * (NULL, seconds < 0 or NaN), EXDEV. */
GEV_EXTERN int gev_greenlet_start_later(gev_greenlet *g, double seconds);

/* Makes the running greenlet end with error err (> 0) and message fmt when
 * its function returns, and returns NULL, so that
 *     return gev_fail(ECONNREFUSED, "connect to %s", host);
 * reads naturally. err == ECANCELED (the kill error) ends it successfully
 * with value NULL, as gevent's GreenletExit. Called by a threadpool job
 * (gev/thread.h), outside any greenlet of its thread, it makes err and the
 * message the job's error instead. Elsewhere outside a greenlet it only
 * returns NULL.
 *
 * Unobserved failures are reported. When a greenlet fails (an error other
 * than the kill error), the hub logs "gev: greenlet <name> failed: <message>
 * (<strerror>)" at GEV_LOG_ERROR through the log hook (gev/log.h), unless
 * someone observed the failure as it happened: a greenlet or the main
 * coroutine was waiting for it (join, get, kill with block, joinall, iwait,
 * gev_wait), or a link of the program's ran for it (gev_greenlet_link,
 * link_exception). Being a member of a Pool or a server's handler does not
 * count: those report their failures like any other. gevent prints every
 * failure at the moment of death, with its traceback; gev is quieter
 * because a C error code has no traceback to lose, and whoever observed it
 * has the code and the message (gev_greenlet_error, gev_greenlet_errmsg). */
GEV_EXTERN void *gev_fail(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parks until g finishes and the links added to it so far have run. 0
 * when finished, -1: EINVAL (NULL), EXDEV, EDEADLK (joining itself), or a
 * blocking-call error (ETIMEDOUT: "not finished yet", gevent's join()
 * returning with the greenlet still running). */
GEV_EXTERN int gev_greenlet_join(gev_greenlet *g, double timeout);
/* Joins, then: 0 with *value if g succeeded; -1 with errno = g's error if it
 * failed (its message: gev_greenlet_errmsg); or the join errors. */
GEV_EXTERN int gev_greenlet_get(gev_greenlet *g, double timeout, void **value);
/* Kills g: if it has not started it never runs; otherwise its current
 * blocking call and every later one fail with ECANCELED until it returns.
 * With block, waits up to timeout for it to finish (ETIMEDOUT otherwise).
 * Killing a finished greenlet does nothing. From the hub only block == 0 is
 * allowed (EPERM otherwise). Returns 0 or -1 (EINVAL, EXDEV, join errors). */
GEV_EXTERN int gev_greenlet_kill(gev_greenlet *g, int block, double timeout);

/* Links fn(g, arg) to run in the hub when g finishes, in link order; if g
 * has already finished it is scheduled at once. Errors: EINVAL, ENOMEM. */
GEV_EXTERN int gev_greenlet_link(gev_greenlet *g, gev_link_fn fn, void *arg);
/* As gev_greenlet_link, but fn runs only if g succeeds (link_value) or
 * only if it fails (link_exception), as gevent's; otherwise the link is
 * dropped unrun. A link_value does not count as observing a failure: a
 * greenlet that fails with only such links is still reported (see
 * gev_fail). Errors: EINVAL, EXDEV, ENOMEM. */
GEV_EXTERN int gev_greenlet_link_value(gev_greenlet *g, gev_link_fn fn,
                                       void *arg);
GEV_EXTERN int gev_greenlet_link_exception(gev_greenlet *g, gev_link_fn fn,
                                           void *arg);
/* Removes the first link (of any of the three kinds) with the same fn and
 * arg. -1 ENOENT if none. */
GEV_EXTERN int gev_greenlet_unlink(gev_greenlet *g, gev_link_fn fn, void *arg);

GEV_EXTERN int gev_greenlet_started(const gev_greenlet *g);
GEV_EXTERN int gev_greenlet_ready(const gev_greenlet *g);      /* finished */
GEV_EXTERN int gev_greenlet_successful(const gev_greenlet *g); /* no error */
GEV_EXTERN void *gev_greenlet_value(const gev_greenlet *g);
GEV_EXTERN int gev_greenlet_error(const gev_greenlet *g); /* 0 if none */
GEV_EXTERN const char *gev_greenlet_errmsg(const gev_greenlet *g);
GEV_EXTERN const char *gev_greenlet_name(const gev_greenlet *g);
GEV_EXTERN int gev_greenlet_set_name(gev_greenlet *g, const char *name);

/* Reference counting: a handle from spawn holds one reference. */
GEV_EXTERN gev_greenlet *gev_greenlet_ref(gev_greenlet *g);
GEV_EXTERN void gev_greenlet_unref(gev_greenlet *g);

/* The running greenlet, or NULL in the main coroutine or the hub. */
GEV_EXTERN gev_greenlet *gev_getcurrent(void);

/* ---- Many greenlets at once ----------------------------------------- */

/* Flags of gev_joinall. */
#define GEV_JOIN_ALL 0         /* wait for all of them (or count) */
#define GEV_JOIN_RAISE_ERROR 1 /* stop at the first failed greenlet */

/* Waits until count of the n greenlets have finished (count 0: all of
 * them), or, with GEV_JOIN_RAISE_ERROR, one of them has failed, or
 * timeout passes. Does not kill the rest. Returns how many of gs have
 * finished (also when the timeout passed first: compare with n, as gevent
 * returns the finished ones), or -1: EINVAL (gs NULL with n > 0, a NULL
 * greenlet, unknown flags, timeout NaN), EXDEV, ENOMEM, or a blocking-call
 * error (ECANCELED; ETIMEDOUT only from an expired gev_timeout scope, not
 * from timeout). */
GEV_EXTERN int gev_joinall(gev_greenlet **gs, size_t n, double timeout,
                           int flags, size_t count);
/* The common case: gev_joinall(gs, n, timeout, GEV_JOIN_ALL, 0). Returns
 * how many finished (n unless the timeout passed first), or -1 as
 * gev_joinall. */
GEV_EXTERN int gev_join_all(gev_greenlet **gs, size_t n, double timeout);
/* Kills them all; with block waits up to timeout for all to finish.
 * Returns 0, or -1 (EINVAL, ETIMEDOUT, blocking-call errors). */
GEV_EXTERN int gev_killall(gev_greenlet **gs, size_t n, int block,
                           double timeout);

/* ---- Waiting on any object (gevent's wait / iwait) ------------------- */

/*
 * A gev_waitable names one thing gev_wait and gev_iwait can wait for:
 *   gev_waitable_greenlet(g)      g finished (and its earlier links ran);
 *   gev_waitable_fd(fd, events)   fd readable / writable (GEV_WAIT_READ,
 *                                 GEV_WAIT_WRITE, or both: either one);
 * and, in the other headers, gev_waitable_event (set),
 * gev_waitable_async_result (ready, value or error), gev_waitable_semaphore
 * and gev_waitable_lock (an acquire would not wait),
 * gev_waitable_queue and gev_waitable_channel (a get would not wait: an
 * item, a parked putter, or closed), gev_waitable_socket (readable /
 * writable, or closed). Waiting does not consume anything: a ready
 * semaphore is not acquired, a ready queue still holds its item; so
 * another greenlet may take it first, as with gevent's wait.
 *
 * The constructors only fill the struct (no allocation, no error); a bad
 * object (NULL, destroyed, another thread's) is reported by the wait.
 * Every object must stay valid for the whole wait (an iterator's whole
 * life), except that a sync object destroyed meanwhile is reported with
 * EIDRM and never touched again, and greenlets and sockets are held by a
 * reference of the iterator. An fd must stay open while it is waited on
 * (as with libev).
 */
typedef struct gev__waitable_ops gev__waitable_ops;
typedef struct gev_waitable {
  const gev__waitable_ops *ops_; /* private: the kind, set by constructors */
  void *obj_;                    /* private */
  int fd_;                       /* private */
  int events_;                   /* private */
  int ready; /* out: set to 1 by gev_wait when the object was ready */
} gev_waitable;

#define GEV_WAIT_READ 1
#define GEV_WAIT_WRITE 2

GEV_EXTERN gev_waitable gev_waitable_greenlet(gev_greenlet *g);
GEV_EXTERN gev_waitable gev_waitable_fd(int fd, int events);

/* Waits until count of the n objects are ready (count 0: all of them), or
 * timeout passes (gevent's wait(objects, timeout, count)). Sets
 * objs[i].ready to 1 for each object that was ready when the call
 * returned or turned ready during it, 0 for the others, and returns how
 * many are ready: at least count (n for 0), or fewer when the timeout
 * passed first ("not yet" is not an error, as in gevent). Timeout 0 only
 * asks (never parks, so it may be called from the hub). Returns -1 with
 * errno: EINVAL (objs NULL with n > 0, an object that is NULL or
 * destroyed, fd < 0, events 0, timeout NaN), EXDEV, EBADF (a closed
 * socket), ENOMEM, EIDRM (a sync object was destroyed during the wait; the
 * ready flags are still set), or a blocking-call error (ETIMEDOUT only
 * from an expired gev_timeout scope). */
GEV_EXTERN int gev_wait(gev_waitable *objs, size_t n, double timeout,
                        size_t count);

/* Iterates objects as they turn ready (gevent's iwait). The timeout
 * (< 0 none) is one deadline for the whole iteration, counted from _new. */
typedef struct gev_iwait gev_iwait;
/* Over greenlets: each is returned once it has finished. Errors: EINVAL
 * (gs NULL with n > 0, a NULL greenlet, timeout NaN), EXDEV, ENOMEM. */
GEV_EXTERN gev_iwait *gev_iwait_new(gev_greenlet **gs, size_t n,
                                    double timeout);
/* Over any objects (copied; the array may be freed): each index is
 * returned once its object turned ready. Errors: those of gev_wait's
 * checks, ENOMEM. */
GEV_EXTERN gev_iwait *gev_iwait_new_any(const gev_waitable *objs, size_t n,
                                        double timeout);
/* The next finished greenlet of a gev_iwait_new iterator (a borrowed
 * pointer, valid until gev_iwait_free), or NULL: errno 0 when all were
 * returned, ETIMEDOUT when the iterator's timeout ran out ("not yet":
 * nothing else finished in time), EINVAL (NULL, or an iterator over
 * other objects), or another blocking-call error. */
GEV_EXTERN gev_greenlet *gev_iwait_next(gev_iwait *it);
/* The next ready object of any iterator: 1 with *index (its place in the
 * array given to _new); 0 when all were returned; -1 with errno:
 * ETIMEDOUT when the iterator's timeout ran out ("not yet"), EIDRM with
 * *index when that sync object was destroyed (it is not returned again;
 * iteration may go on), EINVAL, or a blocking-call error. */
GEV_EXTERN int gev_iwait_next_index(gev_iwait *it, size_t *index);
/* Stops watching and frees the iterator. NULL does nothing. */
GEV_EXTERN void gev_iwait_free(gev_iwait *it);

/* ---- Timeout scopes (gevent.Timeout) ---------------------------------- */

/* A deadline for the running coroutine: once it has passed, the pending
 * blocking call and every later one fail with ETIMEDOUT until the scope is
 * cancelled. Scopes nest; the earliest deadline wins. It cannot interrupt
 * code that never blocks (a CPU-bound loop runs on). seconds < 0 makes a
 * scope that never expires. The scope is heap state owned by the caller.
 * Errors: EINVAL (seconds NaN), EPERM (from the hub), ENOMEM. */
typedef struct gev_timeout gev_timeout;
GEV_EXTERN gev_timeout *gev_timeout_start(double seconds);
/* Non-zero once the deadline has passed (also before any call noticed). */
GEV_EXTERN int gev_timeout_expired(const gev_timeout *t);
/* Ends the scope and frees it. Must be called by the coroutine that
 * started it. NULL does nothing. */
GEV_EXTERN void gev_timeout_cancel(gev_timeout *t);

#ifdef __cplusplus
}
#endif
#endif
