/*
 * A prefork worker process: the worker's side of gev/prefork.h.
 *
 * A worker is a process the master (prefork_master.c) has forked and
 * stripped of its own state; gev__prefork_worker_run takes it from there.
 * It drops the hub it may have inherited (gev_fork_discard) and runs the
 * user's worker function in a fresh hub, in which gev keeps two things of
 * its own:
 *   - the heartbeat, a repeating timer (timeout/4, at most every second)
 *     that sends the master a datagram, and notices when the master is
 *     gone (getppid changed) to stop as an orphan;
 *   - the stop request: TERM, max_requests or the orphan check set the
 *     worker's stop reason, close the server it serves (gev_worker_serve)
 *     in the same callback, wake gev_worker_wait_stop and arm the graceful
 *     deadline, after which the process exits whatever it is doing.
 * INT and QUIT end the worker at once. When the worker function returns,
 * the heartbeat and signal handlers go, the hub is destroyed (unwinding
 * what the function left running) and the process exits with the
 * function's status.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "gev/log.h"
#include "gev/prefork.h"
#include "gev/server.h"
#include "gev/signal.h"
#include "hub/park.h"
#include "net/listener.h"
#include "proc/prefork_internal.h"

struct gev_worker {
  gev_prefork_opts o; /* the master's options */
  pid_t master_pid;
  int listen_fd;
  int beat_fd;
  unsigned serial;
  unsigned long requests, limit;
  gev_worker_stop stop;
  struct ev_loop *loop;
  ev_timer heartbeat; /* repeating, in the hub */
  ev_timer deadline;  /* graceful_timeout once asked to stop */
  gev_signal *on_term, *on_int, *on_quit;
  gev__waitq waiters;  /* in gev_worker_wait_stop */
  gev_server *serving; /* in gev_worker_serve: closed on a stop request */
  int closed;          /* the worker function returned */
};

/* ---- Heartbeat and stop requests ------------------------------------------
 */

static void worker_send(gev_worker *w, char msg) {
  /* Dropped if the master's buffer is full or the master is gone. */
  if (send(w->beat_fd, &msg, 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
    return;
}

static void deadline_cb(struct ev_loop *loop, ev_timer *t, int revents) {
  gev_worker *w = t->data;
  (void)loop, (void)revents;
  gev__log(GEV_LOG_WARNING,
           "gev prefork[%d]: worker %u still busy %.1f s after it "
           "was asked to stop; exiting",
           (int)getpid(), w->serial, w->o.graceful_timeout);
  fflush(NULL);
  _exit(EXIT_FAILURE);
}

/* Asks the worker to stop: closes the server it serves (so that it stops
 * accepting and its handlers see gev_server_stopping from now on, not from
 * the worker function's next turn), wakes gev_worker_wait_stop and arms
 * the graceful deadline. Callable from the hub and from greenlets. */
static void worker_request_stop(gev_worker *w, gev_worker_stop why) {
  if (w->stop != GEV_WORKER_RUNNING || w->closed)
    return;
  w->stop = why;
  if (w->serving)
    gev_server_close(w->serving);
  if (why == GEV_WORKER_STOP_MAX_REQUESTS)
    worker_send(w, GEV__PREFORK_MSG_RETIRING);
  /* The loop's cached time may be stale after a busy handler: the graceful
   * timeout counts from now, never from the last poll. */
  ev_now_update(w->loop);
  ev_timer_set(&w->deadline, w->o.graceful_timeout, 0);
  ev_timer_start(w->loop, &w->deadline);
  ev_unref(w->loop); /* the deadline alone must not keep the hub running */
  gev__watcher_started();
  gev__waitq_wake_all(&w->waiters, NULL, 0);
}

static void heartbeat_cb(struct ev_loop *loop, ev_timer *t, int revents) {
  gev_worker *w = t->data;
  (void)loop, (void)revents;
  if (getppid() != w->master_pid)
    worker_request_stop(w, GEV_WORKER_STOP_ORPHANED);
  else
    worker_send(w, GEV__PREFORK_MSG_BEAT);
}

static void on_term(int signum, void *arg) {
  worker_request_stop(arg, GEV_WORKER_STOP_TERM);
}

static void on_quick(int signum, void *arg) {
  fflush(NULL);
  _exit(0);
}

static double beat_interval(const gev_prefork_opts *o) {
  double iv = o->timeout > 0 ? o->timeout / 4 : GEV__PREFORK_BEAT_MAX;
  return iv < GEV__PREFORK_BEAT_MAX ? iv : GEV__PREFORK_BEAT_MAX;
}

static unsigned long draw_limit(const gev_prefork_opts *o) {
  unsigned long r = (unsigned long)getpid() * 2654435761UL ^
                    (unsigned long)(gev_monotonic() * 1e6);
  if (o->max_requests == 0)
    return 0;
  r ^= r >> 13;
  return o->max_requests +
         (o->max_requests_jitter ? r % (o->max_requests_jitter + 1) : 0);
}

/* Sets up the worker's hub: heartbeat timer and signal handlers. */
static gev_worker *worker_new(const gev__worker_start *ws, int listen_fd) {
  gev_worker *w = calloc(1, sizeof *w);
  if (!w || !(w->loop = gev_hub_loop()))
    goto out_free;
  w->o = *ws->opts;
  w->master_pid = ws->master_pid;
  w->listen_fd = listen_fd;
  w->beat_fd = ws->beat_fd;
  w->serial = ws->serial;
  w->limit = draw_limit(&w->o);
  ev_timer_init(&w->heartbeat, heartbeat_cb, 0, beat_interval(&w->o));
  w->heartbeat.data = w;
  ev_init(&w->deadline, deadline_cb);
  w->deadline.data = w;
  w->on_term = gev_signal_handler(SIGTERM, on_term, w);
  w->on_int = gev_signal_handler(SIGINT, on_quick, w);
  w->on_quit = gev_signal_handler(SIGQUIT, on_quick, w);
  if (!w->on_term || !w->on_int || !w->on_quit)
    goto out_signals;
  ev_timer_start(w->loop, &w->heartbeat); /* first beat: first hub turn */
  gev__watcher_started();
  return w;
out_signals:
  gev_signal_cancel(w->on_term);
  gev_signal_cancel(w->on_int);
  gev_signal_cancel(w->on_quit);
out_free:
  free(w);
  return NULL;
}

/* The worker function has returned: stops the worker's watchers. w stays
 * allocated until the hub is gone, since handler greenlets that are still
 * unwinding may use it; it only ignores stop requests from now on. */
static void worker_close(gev_worker *w) {
  sigset_t stops;
  /* The worker is on its way out: a stop signal the master sends now (it
   * may not have heard yet that this worker retired by itself) must not
   * kill it with the default action once the handlers below are gone. */
  sigemptyset(&stops);
  sigaddset(&stops, SIGTERM);
  sigaddset(&stops, SIGINT);
  sigaddset(&stops, SIGQUIT);
  sigprocmask(SIG_BLOCK, &stops, NULL);
  w->closed = 1;
  ev_timer_stop(w->loop, &w->heartbeat);
  gev__watcher_stopped();
  if (ev_is_active(&w->deadline)) {
    ev_ref(w->loop);
    ev_timer_stop(w->loop, &w->deadline);
    gev__watcher_stopped();
  }
  gev_signal_cancel(w->on_term);
  gev_signal_cancel(w->on_int);
  gev_signal_cancel(w->on_quit);
}

/* ---- The worker process
 * ------------------------------------------------------ */

/* The shared listener, or with reuseport one of the worker's own on the
 * master's address (the kernel spreads connections over them). */
static int worker_listener(const gev__worker_start *ws) {
  if (!ws->opts->reuseport)
    return ws->listen_fd;
  return gev__listener_open(ws->addr, ws->addrlen, SOCK_STREAM,
                            GEV__LISTEN_REUSEADDR | GEV__LISTEN_REUSEPORT,
                            ws->opts->backlog);
}

void gev__prefork_worker_run(const gev__worker_start *ws) {
  gev_worker *w;
  int listen_fd, rc;
  if (gev_fork_discard() < 0)
    goto out_boot_failed;
  if ((listen_fd = worker_listener(ws)) < 0)
    goto out_boot_failed;
  if (!(w = worker_new(ws, listen_fd)))
    goto out_boot_failed;
  /* Only now: a TERM that came early finds the worker's handler. */
  sigprocmask(SIG_SETMASK, ws->mask, NULL);
  rc = w->o.worker(w, w->o.arg);
  worker_close(w);
  gev_hub_destroy(); /* unwinds what the worker function left running */
  free(w);
  fflush(NULL);
  _exit(rc & 0xff);
out_boot_failed:
  gev__log(GEV_LOG_ERROR, "gev prefork[%d]: worker %u cannot start: %s",
           (int)getpid(), ws->serial, strerror(errno));
  fflush(NULL);
  _exit(GEV__PREFORK_EXIT_BOOT_FAILED);
}

/* ---- Worker API ------------------------------------------------------------
 */

GEV_EXTERN int gev_worker_listen_fd(const gev_worker *w) {
  if (!w) {
    errno = EINVAL;
    return -1;
  }
  return w->listen_fd;
}

GEV_EXTERN int gev_worker_wait_stop(gev_worker *w, double timeout) {
  if (!w) {
    errno = EINVAL;
    return -1;
  }
  if (w->stop == GEV_WORKER_RUNNING &&
      gev__waitq_wait(&w->waiters, timeout, "worker stop", NULL) < 0)
    return -1;
  return (int)w->stop;
}

GEV_EXTERN int gev_worker_serve(gev_worker *w, gev_server *srv) {
  int rc;
  if (!w || !srv) {
    errno = EINVAL;
    return -1;
  }
  if (w->serving) {
    errno = EBUSY;
    return -1;
  }
  if (!gev_server_started(srv) && !gev_server_stopping(srv) &&
      gev_server_start(srv) < 0)
    return -1;
  w->serving = srv;
  if (w->stop != GEV_WORKER_RUNNING)
    gev_server_close(srv);
  rc = gev_worker_wait_stop(w, -1);
  w->serving = NULL;
  if (rc < 0) {
    int err = errno;
    gev_server_close(srv);
    errno = err;
    return -1;
  }
  return gev_server_stop(srv, w->o.graceful_timeout);
}

GEV_EXTERN gev_worker_stop gev_worker_stopping(const gev_worker *w) {
  return w ? w->stop : GEV_WORKER_RUNNING;
}

GEV_EXTERN int gev_worker_request_done(gev_worker *w) {
  if (!w) {
    errno = EINVAL;
    return -1;
  }
  w->requests++;
  if (w->limit == 0 || w->requests < w->limit || w->stop != GEV_WORKER_RUNNING)
    return 0;
  worker_request_stop(w, GEV_WORKER_STOP_MAX_REQUESTS);
  return 1;
}

GEV_EXTERN unsigned long gev_worker_requests(const gev_worker *w) {
  return w ? w->requests : 0;
}

GEV_EXTERN double gev_worker_graceful_timeout(const gev_worker *w) {
  return w ? w->o.graceful_timeout : 0;
}

GEV_EXTERN unsigned gev_worker_serial(const gev_worker *w) {
  return w ? w->serial : 0;
}
