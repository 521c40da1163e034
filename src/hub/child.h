/*
 * Internal: child processes and SIGCHLD, the contract every piece of gev
 * that waits for a child follows (gev_wait_watcher's GEV_WATCH_CHILD,
 * gev_waitpid, gev_process).
 *
 * The rule: a program's children stay its own. gev reaps a child only
 * when it is asked to wait for that child, and leaves SIGCHLD's
 * disposition as the program set it unless the program asks gev to watch
 * SIGCHLD itself.
 *
 * Two ways to watch one child:
 *   pidfd   (Linux 5.3+) pidfd_open(pid) gives a descriptor that becomes
 *           readable when the child exits; waitid(P_PIDFD) then reaps that
 *           child and no other. No signal is involved, so it works in any
 *           thread's hub. This is the way whenever the kernel has it.
 *   reaper  libev's own: the default loop (the main thread's hub) has a
 *           SIGCHLD watcher that reaps every exited child with
 *           waitpid(-1) and hands each status to the ev_child watchers of
 *           its pid. Only the default loop has it.
 *
 * The default loop and SIGCHLD. ev_default_loop() installs libev's
 * SIGCHLD handler, which would reap every child of the process from then
 * on (popen/pclose, system, waitpid and every library that runs children
 * would get ECHILD). gev__default_loop_open() therefore puts back the
 * disposition the program had, and the reaper stays off. It is switched
 * on while something holds it (gev__reaper_hold): a gev signal handler or
 * wait for SIGCHLD in the main thread's hub (libev has one handler per
 * signal, shared by the reaper and every SIGCHLD watcher, so SIGCHLD
 * cannot be watched without reaping), a wait for any child (pid 0) or for
 * stops and continues (ev_child's trace flag), and every child wait on a
 * kernel without pidfd. While the reaper runs, a status it collects for a
 * child nobody in this hub waits for goes to a small process-wide cache
 * (the newest 1024), where the next gev wait for that pid finds it.
 *
 * Destroying the default loop would set SIGCHLD to SIG_DFL (libev's
 * ev_signal_stop); gev__loop_destroy() puts the program's disposition
 * back. Changing SIGCHLD's disposition to SIG_DFL discards a pending
 * (blocked) SIGCHLD; gev raises it again so a program that waits for it
 * with sigwait or signalfd does not miss it.
 */
#ifndef GEV_SRC_HUB_CHILD_H
#define GEV_SRC_HUB_CHILD_H

#include <sys/types.h>

#include <ev.h>

/* ---- The default loop ------------------------------------------------- */

/* ev_default_loop(0) without taking SIGCHLD (see above), or NULL. */
struct ev_loop *gev__default_loop_open(void);

/* ev_loop_destroy(loop); for the default loop, first stops what gev
 * started on it and then keeps SIGCHLD's disposition as the program had
 * it. */
void gev__loop_destroy(struct ev_loop *loop);

/* ---- The reaper (default loop only) ------------------------------------ */

/* Switches libev's reaper on (first hold) for the default loop. 0, or -1
 * with ENOTSUP when loop is not the default loop. */
int gev__reaper_hold(struct ev_loop *loop);
/* Drops a hold; the last one puts the program's SIGCHLD disposition back
 * (unless the program changed it meanwhile). */
void gev__reaper_release(void);

/* ---- Watching one child ------------------------------------------------ */

typedef struct gev__child_watch gev__child_watch;
struct gev__child_watch {
  pid_t pid;                /* ro */
  int status;               /* ro: the wait status, once done without err */
  int err;                  /* ro: once done: 0, or ECHILD (reaped elsewhere) */
  unsigned char done;       /* ro: reaped, or known to be lost (err) */
  unsigned char keep_alive; /* rw before start: keeps the loop running
                               while watched (1 after init) */
  /* Called in the hub when the watch completes after start returned. */
  void (*on_done)(gev__child_watch *cw); /* rw */
  void *data;                            /* rw: for on_done */
  /* private */
  int pidfd;                     /* -1 when watched through the reaper */
  unsigned char reaper;          /* holds the reaper */
  struct ev_loop *loop;          /* the hub's loop */
  ev_io io;                      /* pidfd readability */
  gev__child_watch *prev, *next; /* on the default loop's list */
};

/* Prepares cw (on the heap: the shared-stack rule). */
void gev__child_watch_init(gev__child_watch *cw);

/* Starts watching child pid in the calling thread's hub. pidfd is a
 * pidfd of pid that cw takes over (closed by cw, also on error), or -1
 * to open one. The child may turn out to be done at once (cw->done is
 * then set and on_done is not called). Returns 0, or -1: EINVAL (pid <=
 * 0), ECHILD (not a child of this process, or already reaped and not in
 * the cache), ENOTSUP (no pidfd and not the main thread's hub), EMFILE,
 * ENFILE, ENOMEM. */
int gev__child_watch_start(gev__child_watch *cw, pid_t pid, int pidfd);

/* Stops watching without reaping (if not done) and closes the pidfd.
 * Harmless when not started or already stopped. */
void gev__child_watch_stop(gev__child_watch *cw);

/* Stops watching and marks the watch done with ECHILD: in a forked
 * process, the parent's children are not its own. */
void gev__child_watch_forget(gev__child_watch *cw);

/* Checks once, without waiting, whether a watched child has ended, and
 * reaps it if so (cw->done is then set; on_done is not called). */
void gev__child_watch_poll(gev__child_watch *cw);

/* Sends sig to a watched child that is not done: through the pidfd when
 * there is one (never to a process that reused its pid). 0, or -1 with
 * errno: ESRCH (done, or not started), EINVAL, EPERM. */
int gev__child_watch_kill(gev__child_watch *cw, int sig);

/* After a watch ended with ECHILD while the reaper runs in another
 * thread's hub: waits briefly (parks, up to ~0.2 s) for the reaper to
 * file the status in the cache. Updates cw; returns cw->err == 0. */
int gev__child_watch_settle(gev__child_watch *cw);

/* Parks until child pid ends, for at most timeout (< 0 forever, 0 just
 * checks). 0 with *status, or -1: ETIMEDOUT (also timeout 0 and still
 * running), the start errors, the blocking-call errors. */
int gev__child_wait(pid_t pid, int *status, double timeout);

/* gev_wait_watcher for GEV_WATCH_CHILD (see gev/hub.h). */
int gev__child_wait_watcher(ev_child *w, double timeout);

/* For tests: 0 makes gev behave as on a kernel without pidfd (the reaper
 * path); 1 restores detection. */
void gev__child_use_pidfd(int on);

#endif
