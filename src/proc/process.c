/*
 * Child processes: spawn, wait, poll, kill, terminate, free. See
 * gev/process.h for the contract and proc/process_internal.h for the
 * object's lifetime.
 *
 * Spawning is posix_spawnp: glibc runs the child on the parent's memory
 * (clone with CLONE_VM and CLONE_VFORK) until it execs, so the cost does
 * not grow with the parent's size, and an exec failure comes back as
 * posix_spawn's result instead of a child exiting with 127. The child's
 * standard streams are set up with file actions, in order 0, 1, 2 (so
 * stderr can follow stdout), and then every other descriptor is closed
 * (closefrom, one close_range call) unless the caller wants them kept. A
 * descriptor that must become 0, 1 or 2 is first moved above 2 when it sits
 * there already, so that one dup2 cannot overwrite what the next reads, and
 * because dup2(fd, fd) would keep its close-on-exec flag.
 *
 * Right after the spawn the child is handed to a child watch (pidfd, see
 * hub/child.h). Nothing can reap it in between: gev's reaper is off
 * unless something in this hub holds it, and the hub does not run until
 * the spawning greenlet parks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>

#include "hub/hooks.h"
#include "proc/process_internal.h"

extern char **environ;

struct proc_state {
  gev__hub_state base; /* first: the hub's loop, and the exit hook */
  gev_process *procs;  /* private: every process of this hub */
};

/* The thread's proc_state is in its slot of the hub layer's thread block
 * (park.h): libgev's only thread-local variable is the coroutine layer's
 * root. */
static gev__hub_state *state_peek(void) {
  return gev__thread_hub_state_peek(GEV__STATE_PROCESSES);
}

/* ---- Lifetime ------------------------------------------------------------ */

static void proc_unlink(gev_process *p) {
  proc_state *st = p->state;
  if (!st)
    return;
  if (p->prev)
    p->prev->next = p->next;
  else
    st->procs = p->next;
  if (p->next)
    p->next->prev = p->prev;
  p->prev = p->next = NULL;
}

/* Frees p once nobody needs it any more (see process_internal.h). */
static void proc_maybe_free(gev_process *p) {
  if (!p->freed || p->refs > 0 || (p->state && !p->watch.done))
    return;
  gev__child_watch_stop(&p->watch);
  proc_unlink(p);
  free(p);
}

/* In the hub: the child was reaped (or is known lost). */
static void proc_done(gev__child_watch *cw) {
  gev_process *p = (gev_process *)cw;
  gev__waitq_wake_all(&p->waiters, NULL, 0);
  proc_maybe_free(p);
}

/* The hub's loop is being destroyed: its greenlets are gone, so nobody
 * waits. Each process learns what it can now and stops watching. */
static void state_gone(gev__hub_state *base) {
  proc_state *st = (proc_state *)base;
  while (st->procs) {
    gev_process *p = st->procs;
    gev__child_watch_poll(&p->watch);
    gev__child_watch_stop(&p->watch);
    proc_unlink(p);
    p->state = NULL;
    if (p->freed)
      free(p);
  }
}

/* The process layer's keep hook (hub/hooks.h): in a child that keeps the
 * hub, the parent's children are not ours. Their watches stop (closing
 * the inherited pidfds) and report ECHILD, to greenlets parked in wait
 * too. (Dropping the hub runs state_gone.) */
static void forget_after_fork(void) {
  proc_state *st = (proc_state *)state_peek();
  gev_process *p = st ? st->procs : NULL, *next;
  for (; p; p = next) {
    next = p->next;
    gev__child_watch_forget(&p->watch);
    gev__waitq_wake_all(&p->waiters, NULL, 0);
    proc_maybe_free(p);
  }
}

static const gev__fork_hooks fork_hooks = {.layer = GEV__LAYER_PROC,
                                           .keep = forget_after_fork};
static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

static void register_hooks(void) { gev__at_fork(&fork_hooks); }

static proc_state *state_get(void) {
  gev__hub_state **slot = gev__thread_hub_state(GEV__STATE_PROCESSES);
  pthread_once(&hooks_once, register_hooks);
  if (!slot)
    return NULL;
  return (proc_state *)gev__hub_state_get(slot, sizeof(proc_state), state_gone);
}

static void proc_link(proc_state *st, gev_process *p) {
  p->state = st;
  p->next = st->procs;
  if (st->procs)
    st->procs->prev = p;
  st->procs = p;
}

int gev__process_check(const gev_process *p) {
  if (!p) {
    errno = EINVAL;
    return -1;
  }
  if (p->hub_id != gev__hub_current_id()) { /* its hub may be gone */
    errno = EXDEV;
    return -1;
  }
  return 0;
}

void gev__process_enter(gev_process *p) { p->refs++; }

void gev__process_leave(gev_process *p) {
  int saved = errno;
  p->refs--;
  proc_maybe_free(p);
  errno = saved;
}

/* ---- Spawning ------------------------------------------------------------ */

/* Descriptors of one spawn, all close-on-exec in the parent. */
typedef struct spawn_fds {
  int parent[3]; /* the parent's pipe ends, or -1 */
  int temp[3];   /* to close once the child has its copies, or -1 */
} spawn_fds;

static void fds_close(int *fds, int n) {
  for (int i = 0; i < n; i++) {
    if (fds[i] >= 0)
      close(fds[i]);
    fds[i] = -1;
  }
}

static int stdio_valid(const gev_stdio *io, int i) {
  switch (io->mode) {
  case GEV_STDIO_INHERIT:
  case GEV_STDIO_PIPE:
  case GEV_STDIO_DEVNULL:
    return 1;
  case GEV_STDIO_FD:
    return io->fd >= 0;
  case GEV_STDIO_STDOUT:
    return i == 2;
  }
  return 0;
}

/* The descriptor the child gets as stream i: a pipe end, or the caller's
 * fd; moved above 2 if needed (see the file comment). -1 with errno. */
static int child_end(const gev_stdio *io, int i, spawn_fds *f) {
  int fds[2], fd = io->fd, high;
  if (io->mode == GEV_STDIO_PIPE) {
    if (pipe2(fds, O_CLOEXEC) < 0)
      return -1;
    f->parent[i] = fds[i == 0 ? 1 : 0];
    f->temp[i] = fd = fds[i == 0 ? 0 : 1];
  }
  if (fd > 2)
    return fd;
  if ((high = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0)
    return -1;
  if (f->temp[i] >= 0)
    close(f->temp[i]);
  return f->temp[i] = high;
}

/* Adds stream i's file action. 0, or an error number. */
static int stdio_action(posix_spawn_file_actions_t *fa, const gev_stdio *io,
                        int i, spawn_fds *f) {
  int fd;
  switch (io->mode) {
  case GEV_STDIO_INHERIT:
    return 0;
  case GEV_STDIO_DEVNULL:
    return posix_spawn_file_actions_addopen(fa, i, "/dev/null",
                                            i == 0 ? O_RDONLY : O_WRONLY, 0);
  case GEV_STDIO_STDOUT:
    return posix_spawn_file_actions_adddup2(fa, 1, 2);
  default:
    if ((fd = child_end(io, i, f)) < 0)
      return errno;
    return posix_spawn_file_actions_adddup2(fa, fd, i);
  }
}

/* Signals: none blocked, every one at its default action. */
static int spawn_attr(posix_spawnattr_t *attr, int new_session) {
  sigset_t none, all;
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  sigemptyset(&none);
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  if (new_session)
    flags |= POSIX_SPAWN_SETSID;
  if (posix_spawnattr_setsigmask(attr, &none) ||
      posix_spawnattr_setsigdefault(attr, &all) ||
      posix_spawnattr_setflags(attr, flags))
    return EINVAL; /* LCOV_EXCL_LINE: glibc accepts these */
  return 0;
}

/* Runs posix_spawnp with opts's actions. 0 with *pid, or an error number;
 * f holds the parent's pipe ends either way. */
static int spawn_child(const char *const argv[], const gev_process_opts *o,
                       spawn_fds *f, pid_t *pid) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  const gev_stdio *io[3] = {&o->in, &o->out, &o->err};
  int rc;
  if ((rc = posix_spawn_file_actions_init(&fa)))
    return rc;
  if ((rc = posix_spawnattr_init(&attr)))
    goto out_actions;
  if ((rc = spawn_attr(&attr, o->new_session)))
    goto out_attr;
  if (o->cwd && (rc = posix_spawn_file_actions_addchdir_np(&fa, o->cwd)))
    goto out_attr;
  for (int i = 0; i < 3 && rc == 0; i++)
    rc = stdio_action(&fa, io[i], i, f);
  if (rc == 0 && !o->inherit_fds)
    rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  if (rc == 0)
    rc = posix_spawnp(pid, argv[0], &fa, &attr, (char *const *)argv,
                      o->envp ? o->envp : environ);
out_attr:
  posix_spawnattr_destroy(&attr);
out_actions:
  posix_spawn_file_actions_destroy(&fa);
  fds_close(f->temp, 3);
  return rc;
}

/* Wraps the parent's pipe ends; the process holds a reference to each. */
static int wrap_pipes(gev_process *p, spawn_fds *f) {
  for (int i = 0; i < 3; i++) {
    if (f->parent[i] < 0)
      continue;
    if (!(p->stdio[i] = gev_socket_wrap(f->parent[i])))
      return -1;
    f->parent[i] = -1; /* the socket owns it now */
    gev_socket_ref(p->stdio[i]);
  }
  return 0;
}

static void close_pipes(gev_process *p) {
  for (int i = 0; i < 3; i++) {
    if (p->stdio[i]) {
      gev_socket_close(p->stdio[i]);
      gev_socket_unref(p->stdio[i]);
      p->stdio[i] = NULL;
    }
  }
}

/* A child gev cannot watch: kill it and reap it here (it is gone within
 * moments of SIGKILL). */
static void abandon_child(pid_t pid) {
  int saved = errno;
  kill(pid, SIGKILL);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
    ;
  errno = saved;
}

static int opts_valid(const char *const argv[], const gev_process_opts *o) {
  return argv && argv[0] && stdio_valid(&o->in, 0) && stdio_valid(&o->out, 1) &&
         stdio_valid(&o->err, 2);
}

GEV_EXTERN gev_process *gev_process_spawn(const char *const argv[],
                                          const gev_process_opts *opts) {
  static const gev_process_opts defaults;
  const gev_process_opts *o = opts ? opts : &defaults;
  spawn_fds f = {{-1, -1, -1}, {-1, -1, -1}};
  gev__hub *h;
  proc_state *st;
  gev_process *p;
  int rc;
  if (!opts_valid(argv, o)) {
    errno = EINVAL;
    return NULL;
  }
  if (!(st = state_get()) || !(h = gev__hub_get()) ||
      !(p = calloc(1, sizeof *p)))
    return NULL;
  p->hub = h;
  p->hub_id = gev__hub_id(h);
  gev__child_watch_init(&p->watch);
  p->watch.on_done = proc_done;
  if ((rc = spawn_child(argv, o, &f, &p->pid))) {
    errno = rc;
    goto out_free;
  }
  if (wrap_pipes(p, &f) < 0 ||
      gev__child_watch_start(&p->watch, p->pid, -1) < 0) {
    abandon_child(p->pid);
    goto out_free;
  }
  proc_link(st, p);
  return p;
out_free:
  fds_close(f.parent, 3);
  close_pipes(p);
  free(p);
  return NULL;
}

GEV_EXTERN pid_t gev_process_pid(const gev_process *p) {
  if (!p) {
    errno = EINVAL;
    return -1;
  }
  return p->pid;
}

static gev_socket *stream(gev_process *p, int i) {
  if (!p || !p->stdio[i]) {
    errno = EINVAL;
    return NULL;
  }
  return p->stdio[i];
}

GEV_EXTERN gev_socket *gev_process_stdin(gev_process *p) {
  return stream(p, 0);
}

GEV_EXTERN gev_socket *gev_process_stdout(gev_process *p) {
  return stream(p, 1);
}

GEV_EXTERN gev_socket *gev_process_stderr(gev_process *p) {
  return stream(p, 2);
}

/* ---- Waiting and signalling ---------------------------------------------- */

/* The status of a done watch, or -1 with errno ECHILD. may_park allows
 * waiting briefly for another thread's reaper (hub/child.h). */
static int done_status(gev_process *p, int may_park) {
  if (p->watch.err && may_park)
    gev__child_watch_settle(&p->watch);
  if (p->watch.err) {
    errno = p->watch.err;
    return -1;
  }
  return p->watch.status;
}

GEV_EXTERN int gev_process_poll(gev_process *p) {
  if (gev__process_check(p) < 0)
    return -1;
  if (!p->watch.done && p->state)
    gev__child_watch_poll(&p->watch);
  if (p->watch.done)
    return done_status(p, 0);
  errno = p->state ? EAGAIN : ECHILD;
  return -1;
}

GEV_EXTERN int gev_process_wait(gev_process *p, double timeout) {
  int rc;
  if (gev__process_check(p) < 0)
    return -1;
  if (isnan(timeout)) {
    errno = EINVAL;
    return -1;
  }
  if (timeout == 0) {
    if ((rc = gev_process_poll(p)) < 0 && errno == EAGAIN)
      errno = ETIMEDOUT;
    return rc;
  }
  gev__process_enter(p);
  rc = 0;
  if (!p->watch.done && p->state) {
    rc = gev__waitq_wait(&p->waiters, timeout, "process", NULL);
  }
  if (rc == 0)
    rc = p->watch.done ? done_status(p, 1) : (errno = ECHILD, -1);
  gev__process_leave(p);
  return rc;
}

GEV_EXTERN int gev_process_kill(gev_process *p, int sig) {
  if (gev__process_check(p) < 0)
    return -1;
  return gev__child_watch_kill(&p->watch, sig);
}

void gev__process_kill_now(gev_process *p) {
  int saved = errno;
  gev__child_watch_kill(&p->watch, SIGKILL);
  errno = saved;
}

GEV_EXTERN int gev_process_terminate(gev_process *p, double grace) {
  int rc, err;
  if (gev__process_check(p) < 0)
    return -1;
  if (isnan(grace) || grace < 0) {
    errno = EINVAL;
    return -1;
  }
  gev_process_kill(p, SIGTERM);
  if ((rc = gev_process_wait(p, grace)) >= 0 || errno == ECHILD)
    return rc;
  err = errno;
  gev__process_kill_now(p);
  if (err != ETIMEDOUT)
    goto out_err; /* killed: the hub reaps the child */
  if ((rc = gev_process_wait(p, -1)) >= 0)
    return rc; /* the grace ran out: SIGKILL did it */
  err = errno; /* a Timeout scope of the caller expired */
out_err:
  errno = err;
  return -1;
}

GEV_EXTERN void gev_process_free(gev_process *p) {
  if (!p || p->hub_id != gev__hub_current_id())
    return;
  close_pipes(p);
  p->freed = 1;
  proc_maybe_free(p);
}
