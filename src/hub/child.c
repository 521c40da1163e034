/*
 * Child processes and SIGCHLD: the default loop without libev's reaper,
 * the reaper when something needs it, the status cache, and watching one
 * child through a pidfd or the reaper. See hub/child.h for the rules.
 *
 * Linux notes. A pidfd polls readable once its process has exited (not
 * once it is reaped), so a pidfd opened on a zombie is readable at once;
 * waitid(P_PIDFD) reaps exactly that process and fails with ECHILD when it
 * is not our child or someone else reaped it first. A zombie keeps its
 * pid, so pidfd_open(pid) on a child nobody reaped cannot name another
 * process. Setting SIGCHLD to SIG_DFL discards a pending SIGCHLD (its
 * default action is to ignore it).
 *
 * libev notes (4.33). The default loop's SIGCHLD watcher runs at the
 * highest priority, reaps one child per call and feeds itself again until
 * none is left; ev_child watchers of the reaped pid (and of pid 0) are fed
 * meanwhile. A watcher fed twice before it runs sees only the last status,
 * so the pid-0 watcher that fills the cache runs at the same highest
 * priority: pending watchers of one priority run last-fed first, so it
 * runs right after each reap, before the next one. ev_child watchers live
 * on a process-wide list that ev_loop_destroy() does not clear: every
 * watcher gev starts there is stopped before the loop is destroyed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hub/child.h"
#include "hub/hub_internal.h"

#ifndef P_PIDFD
#define P_PIDFD 3 /* LCOV_EXCL_LINE: glibc < 2.36 headers */
#endif

#define CACHE_SIZE 1024

/* ---- SIGCHLD's disposition ---------------------------------------------- */

static int sigchld_pending(void) {
  sigset_t set;
  return sigpending(&set) == 0 && sigismember(&set, SIGCHLD) == 1;
}

/* Raises SIGCHLD again if it was pending and a change of disposition
 * discarded it. */
static void sigchld_repend(int was_pending) {
  if (was_pending && !sigchld_pending())
    kill(getpid(), SIGCHLD);
}

static void sigchld_set(const struct sigaction *act, struct sigaction *old) {
  int pending = sigchld_pending();
  sigaction(SIGCHLD, act, old);
  sigchld_repend(pending);
}

/* ---- The status cache (process-wide) ------------------------------------ */

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
  pid_t pid; /* 0: free */
  int status;
} cache[CACHE_SIZE];
static unsigned cache_next; /* ring index of the next entry */

static void cache_put(pid_t pid, int status) {
  pthread_mutex_lock(&cache_lock);
  cache[cache_next % CACHE_SIZE].pid = pid;
  cache[cache_next % CACHE_SIZE].status = status;
  cache_next++;
  pthread_mutex_unlock(&cache_lock);
}

/* Takes the newest entry of pid; 1 if there was one. */
static int cache_take(pid_t pid, int *status) {
  int found = 0;
  pthread_mutex_lock(&cache_lock);
  for (unsigned k = 1; k <= CACHE_SIZE && !found; k++) {
    unsigned i = (cache_next - k) % CACHE_SIZE;
    if (cache[i].pid == pid) {
      *status = cache[i].status;
      cache[i].pid = 0;
      found = 1;
    }
  }
  pthread_mutex_unlock(&cache_lock);
  return found;
}

/* ---- The default loop and its reaper ------------------------------------ */

/* Touched by the main thread's hub only, except reaper_on. */
static struct {
  struct ev_loop *loop;      /* the default loop gev opened, or NULL */
  struct sigaction libev;    /* libev's SIGCHLD handler */
  struct sigaction program;  /* the program's, saved while the reaper runs */
  unsigned holds;            /* gev__reaper_hold count */
  ev_child any;              /* pid 0, highest priority: fills the cache */
  gev__child_watch *watches; /* watches of the main thread's hub */
} dflt;
static atomic_int reaper_on;

static void watch_finish(gev__child_watch *cw, int status, int err);

static gev__child_watch *find_watch(pid_t pid) {
  gev__child_watch *cw = dflt.watches;
  while (cw && cw->pid != pid)
    cw = cw->next;
  return cw;
}

/* The reaper collected a status: it belongs to a watch of this hub, or
 * goes to the cache. */
static void any_child_cb(struct ev_loop *loop, ev_child *w, int revents) {
  gev__child_watch *cw = find_watch(w->rpid);
  (void)loop, (void)revents;
  if (!cw) {
    cache_put(w->rpid, w->rstatus);
    return;
  }
  watch_finish(cw, w->rstatus, 0);
  if (cw->on_done)
    cw->on_done(cw);
}

struct ev_loop *gev__default_loop_open(void) {
  sigset_t chld, old_mask;
  struct sigaction before;
  struct ev_loop *loop = ev_default_loop_uc_();
  if (loop)
    return loop; /* open already (by gev, or by the program's libev code) */
  /* A SIGCHLD caught by libev's handler before the disposition is back
   * would make the reaper run once: keep it pending meanwhile. */
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  pthread_sigmask(SIG_BLOCK, &chld, &old_mask);
  sigaction(SIGCHLD, NULL, &before);
  loop = ev_default_loop(0);
  if (loop) {
    sigchld_set(&before, &dflt.libev);
    dflt.loop = loop;
    dflt.holds = 0;
    ev_child_init(&dflt.any, any_child_cb, 0, 0);
    ev_set_priority(&dflt.any, EV_MAXPRI);
    ev_child_start(loop, &dflt.any);
    ev_unref(loop); /* the cache watcher does not keep the loop running */
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
  return loop;
}

void gev__loop_destroy(struct ev_loop *loop) {
  struct sigaction program;
  int pending;
  if (!ev_is_default_loop(loop) || loop != dflt.loop) {
    ev_loop_destroy(loop);
    return;
  }
  if (dflt.holds > 0)
    program = dflt.program;
  else
    sigaction(SIGCHLD, NULL, &program);
  dflt.holds = 0; /* releases from the loop's cleanup watchers: no-ops */
  atomic_store(&reaper_on, 0);
  ev_ref(loop);
  ev_child_stop(loop, &dflt.any);
  pending = sigchld_pending();
  ev_loop_destroy(loop); /* sets SIGCHLD to SIG_DFL */
  sigaction(SIGCHLD, &program, NULL);
  sigchld_repend(pending);
  dflt.loop = NULL;
  dflt.watches = NULL;
}

int gev__reaper_hold(struct ev_loop *loop) {
  if (!loop || loop != dflt.loop) {
    errno = ENOTSUP;
    return -1;
  }
  if (dflt.holds++ == 0) {
    sigchld_set(&dflt.libev, &dflt.program);
    atomic_store(&reaper_on, 1);
  }
  return 0;
}

void gev__reaper_release(void) {
  struct sigaction now;
  if (dflt.holds == 0 || --dflt.holds > 0)
    return;
  atomic_store(&reaper_on, 0);
  sigaction(SIGCHLD, NULL, &now);
  if (now.sa_handler == dflt.libev.sa_handler) /* else the program's own */
    sigchld_set(&dflt.program, NULL);
}

/* ---- pidfd --------------------------------------------------------------- */

static atomic_int pidfd_mode = -1; /* -1 not probed yet, 0 no, 1 yes */

static int pidfd_open(pid_t pid) {
  return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int use_pidfd(void) {
  int mode = atomic_load(&pidfd_mode);
  if (mode < 0) {
    int fd = pidfd_open(getpid());
    mode = fd >= 0 || errno != ENOSYS;
    if (fd >= 0)
      close(fd);
    atomic_store(&pidfd_mode, mode);
  }
  return mode;
}

void gev__child_use_pidfd(int on) { atomic_store(&pidfd_mode, on ? -1 : 0); }

/* A wait status built from waitid's report of an ended child. */
static int status_of(const siginfo_t *si) {
  switch (si->si_code) {
  case CLD_EXITED:
    return (si->si_status & 0xff) << 8;
  case CLD_DUMPED:
    return (si->si_status & 0x7f) | 0x80;
  default: /* CLD_KILLED */
    return si->si_status & 0x7f;
  }
}

/* Reaps the pidfd's process if it has ended: 1 with *status, 0 while it
 * runs, -1 with errno (ECHILD: not our child, or reaped elsewhere). */
static int pidfd_reap(int pidfd, int *status) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED | WNOHANG) < 0) {
    if (errno != EINTR)
      return -1;
  }
  if (si.si_pid == 0)
    return 0;
  *status = status_of(&si);
  return 1;
}

/* ---- Watching one child ------------------------------------------------- */

void gev__child_watch_init(gev__child_watch *cw) {
  memset(cw, 0, sizeof *cw);
  cw->pidfd = -1;
  cw->keep_alive = 1;
}

static void watch_link(gev__child_watch *cw) {
  if (cw->loop != dflt.loop)
    return; /* only the default loop's reaper looks watches up */
  cw->prev = NULL;
  cw->next = dflt.watches;
  if (dflt.watches)
    dflt.watches->prev = cw;
  dflt.watches = cw;
}

static void watch_unlink(gev__child_watch *cw) {
  if (cw->prev)
    cw->prev->next = cw->next;
  else if (dflt.watches == cw)
    dflt.watches = cw->next;
  if (cw->next)
    cw->next->prev = cw->prev;
  cw->prev = cw->next = NULL;
}

/* Stops whatever watches cw and closes its pidfd. */
static void watch_detach(gev__child_watch *cw) {
  if (ev_is_active(&cw->io)) {
    if (!cw->keep_alive)
      ev_ref(cw->loop);
    ev_io_stop(cw->loop, &cw->io);
    gev__watcher_stopped();
  }
  if (cw->pidfd >= 0) {
    close(cw->pidfd);
    cw->pidfd = -1;
  }
  if (cw->reaper) {
    cw->reaper = 0;
    if (cw->keep_alive)
      ev_unref(cw->loop);
    gev__watcher_stopped();
    gev__reaper_release();
  }
  watch_unlink(cw);
}

static void watch_finish(gev__child_watch *cw, int status, int err) {
  watch_detach(cw);
  cw->status = status;
  cw->err = err;
  cw->done = 1;
}

/* In the hub: the pidfd became readable (the child ended). */
static void pidfd_ready(struct ev_loop *loop, ev_io *w, int revents) {
  gev__child_watch *cw = w->data;
  int status = 0, rc = pidfd_reap(cw->pidfd, &status);
  (void)loop, (void)revents;
  if (rc == 0)
    return; /* not ended after all */
  if (rc < 0 && cache_take(cw->pid, &status))
    rc = 1; /* the reaper of the main thread's hub was first */
  watch_finish(cw, status, rc > 0 ? 0 : ECHILD);
  if (cw->on_done)
    cw->on_done(cw);
}

static int watch_pidfd(gev__child_watch *cw, int pidfd) {
  int status = 0, rc;
  cw->pidfd = pidfd;
  rc = pidfd_reap(pidfd, &status);
  if (rc < 0 && cache_take(cw->pid, &status))
    rc = 1;
  if (rc < 0) {
    watch_detach(cw);
    errno = ECHILD;
    return -1;
  }
  if (rc > 0) {
    watch_finish(cw, status, 0);
    return 0;
  }
  ev_io_init(&cw->io, pidfd_ready, pidfd, EV_READ);
  cw->io.data = cw;
  ev_io_start(cw->loop, &cw->io);
  gev__watcher_started();
  if (!cw->keep_alive)
    ev_unref(cw->loop);
  watch_link(cw);
  return 0;
}

static int watch_reaper(gev__child_watch *cw) {
  int status;
  pid_t r;
  if (gev__reaper_hold(cw->loop) < 0)
    return -1;
  cw->reaper = 1;
  if (cw->keep_alive)
    ev_ref(cw->loop);
  gev__watcher_started();
  watch_link(cw);
  /* It may have ended before the reaper was on. */
  while ((r = waitpid(cw->pid, &status, WNOHANG)) < 0 && errno == EINTR)
    ;
  if (r == cw->pid) {
    watch_finish(cw, status, 0);
    return 0;
  }
  if (r < 0) {
    watch_detach(cw);
    errno = ECHILD;
    return -1;
  }
  return 0;
}

int gev__child_watch_start(gev__child_watch *cw, pid_t pid, int pidfd) {
  gev__hub *h = gev__hub_get();
  int status;
  if (pid <= 0 || !h) {
    if (pidfd >= 0)
      close(pidfd);
    if (pid <= 0)
      errno = EINVAL;
    return -1;
  }
  cw->pid = pid;
  cw->loop = gev__hub_evloop(h);
  cw->done = 0;
  cw->err = 0;
  if (pidfd < 0 && cache_take(pid, &status)) {
    watch_finish(cw, status, 0);
    return 0;
  }
  if (pidfd < 0 && use_pidfd()) {
    pidfd = pidfd_open(pid);
    if (pidfd < 0) {
      if (errno == ESRCH)
        errno = ECHILD; /* no such process: not ours, or reaped */
      return -1;
    }
  }
  return pidfd >= 0 ? watch_pidfd(cw, pidfd) : watch_reaper(cw);
}

void gev__child_watch_stop(gev__child_watch *cw) {
  if (cw->loop)
    watch_detach(cw);
}

void gev__child_watch_forget(gev__child_watch *cw) {
  if (cw->loop && !cw->done)
    watch_finish(cw, 0, ECHILD);
}

void gev__child_watch_poll(gev__child_watch *cw) {
  int status = 0, rc;
  pid_t r;
  if (!cw->loop || cw->done)
    return;
  if (cw->pidfd >= 0) {
    if ((rc = pidfd_reap(cw->pidfd, &status)) < 0 &&
        cache_take(cw->pid, &status))
      rc = 1;
    if (rc != 0)
      watch_finish(cw, status, rc > 0 ? 0 : ECHILD);
    return;
  }
  while ((r = waitpid(cw->pid, &status, WNOHANG)) < 0 && errno == EINTR)
    ;
  if (r != 0)
    watch_finish(cw, status, r == cw->pid ? 0 : ECHILD);
}

int gev__child_watch_kill(gev__child_watch *cw, int sig) {
  if (!cw->loop || cw->done || (cw->pidfd < 0 && !cw->reaper)) {
    errno = ESRCH;
    return -1;
  }
  if (cw->pidfd >= 0)
    return (int)syscall(SYS_pidfd_send_signal, cw->pidfd, sig, NULL, 0);
  return kill(cw->pid, sig);
}

int gev__child_watch_settle(gev__child_watch *cw) {
  for (int i = 0; i < 200 && cw->done && cw->err == ECHILD; i++) {
    if (cw->loop == dflt.loop || !atomic_load(&reaper_on))
      break; /* no reaper elsewhere could have taken it */
    if (cache_take(cw->pid, &cw->status))
      cw->err = 0;
    else if (gev_sleep(0.001) < 0)
      break;
  }
  return cw->done && cw->err == 0;
}

/* ---- Blocking waits ----------------------------------------------------- */

typedef struct child_wait {
  gev__child_watch cw; /* first: on_done finds the wait from it */
  gev__task *task;
} child_wait;

static void child_wait_done(gev__child_watch *cw) {
  gev__wake(((child_wait *)cw)->task, NULL, 0);
}

int gev__child_wait(pid_t pid, int *status, double timeout) {
  child_wait *w;
  int rc = 0;
  if (timeout != 0 && gev__may_block() < 0)
    return -1;
  if (!(w = malloc(sizeof *w)))
    return -1;
  gev__child_watch_init(&w->cw);
  w->cw.on_done = child_wait_done;
  w->task = timeout != 0 ? gev__task_current() : NULL;
  if (gev__child_watch_start(&w->cw, pid, -1) < 0) {
    rc = -1;
  } else if (!w->cw.done) {
    if (timeout == 0)
      errno = ETIMEDOUT;
    rc = timeout == 0 ? -1 : gev__park(timeout, "child", NULL);
  }
  gev__child_watch_stop(&w->cw);
  if (rc == 0 && !gev__child_watch_settle(&w->cw)) {
    errno = w->cw.err;
    rc = -1;
  }
  if (rc == 0)
    *status = w->cw.status;
  free(w);
  return rc;
}

/* A wait for any child or for stops: libev's own watcher, which needs the
 * reaper. Zombies that ended before the reaper was on are collected by
 * feeding the loop a SIGCHLD. */
static int wait_any_child(ev_child *w, double timeout) {
  struct ev_loop *loop = gev_hub_loop();
  int rc, status;
  if (gev__reaper_hold(loop) < 0)
    return -1;
  ev_feed_signal_event(loop, SIGCHLD);
  rc = gev__wait_raw_watcher(w, GEV_WATCH_CHILD, timeout);
  if (rc > 0 && !WIFSTOPPED(w->rstatus) && !WIFCONTINUED(w->rstatus))
    cache_take(w->rpid, &status); /* reported here: not for later waits */
  gev__reaper_release();
  return rc;
}

int gev__child_wait_watcher(ev_child *w, double timeout) {
  int status;
  if (w->pid <= 0 || (w->flags & 1))
    return wait_any_child(w, timeout);
  if (gev__child_wait(w->pid, &status, timeout) < 0)
    return -1;
  w->rpid = w->pid;
  w->rstatus = status;
  return EV_CHILD;
}
