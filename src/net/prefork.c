/*
 * The prefork master (gunicorn's arbiter) and its workers' side. See
 * gev/prefork.h for the contract.
 *
 * The master is a plain poll(2) loop on purpose: it forks, so it must run
 * on the thread's main stack with no hub in the way, and supervising a few
 * processes needs no coroutines. Its signal handlers only write the signal
 * number into a non-blocking self-pipe; the loop reads them and acts
 * outside the signal context. One turn of the loop, in order:
 *   1. act on the signals received (stop, HUP, TTIN/TTOU; CHLD only wakes);
 *   2. reap exited workers (waitpid, WNOHANG) and log why they went;
 *   3. read heartbeats and messages from every worker's socket;
 *   4. SIGKILL workers that missed their heartbeat or overran their
 *      graceful stop;
 *   5. while running, bring the workers to the wanted count: retire HUP'd
 *      workers once their replacements are ready, retire the oldest when
 *      there are too many, start new ones (at a backoff after boot
 *      failures); while stopping, return once no worker is left;
 *   6. poll the self-pipe and the heartbeat sockets until the next
 *      deadline (at most 1 s).
 *
 * Fork hygiene: all signals are blocked around fork() so that a signal
 * meant for the master can never run the master's handler in a new worker
 * (it would write to the master's pipe). The worker then puts the master's
 * signals back to SIG_DFL, drops any hub it inherited (gev_fork_discard),
 * closes the master's descriptors and only then unblocks signals.
 *
 * A worker talks to the master over a SOCK_DGRAM socket pair: one byte per
 * datagram, '.' for a heartbeat and 'R' when it retires at max_requests.
 * Datagrams keep messages whole, and MSG_NOSIGNAL keeps a worker whose
 * master died from SIGPIPE.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "gev/prefork.h"
#include "gev/server.h"
#include "gev/signal.h"
#include "hub/park.h"

#define BACKOFF_FIRST 0.1  /* s: delay after the first boot failure */
#define BACKOFF_MAX 5.0    /* s: the delay stops doubling here */
#define POLL_MAX 1.0       /* s: longest master poll */
#define EXIT_BOOT_FAILED 3 /* worker status when it could not start */
#define MSG_BEAT '.'
#define MSG_RETIRING 'R'

/* The signals the master handles, in the order of its saved actions. */
static const int master_signals[] = {SIGHUP,  SIGINT,  SIGQUIT, SIGTERM,
                                     SIGTTIN, SIGTTOU, SIGCHLD};
#define NSIGNALS (sizeof master_signals / sizeof master_signals[0])

/* The master's record of one worker, on its list oldest first. */
typedef struct wrec {
  pid_t pid;
  int fd; /* master's end of the heartbeat socket pair */
  unsigned serial;
  double last_beat;       /* when it was last heard from (or started) */
  double kill_at;         /* SIGKILL deadline once asked to stop; 0: none */
  unsigned char booted;   /* its first heartbeat arrived */
  unsigned char retiring; /* asked to stop, or stopping by itself */
  unsigned char old;      /* to be replaced (HUP) */
  unsigned char killed;   /* the master sent SIGKILL */
  char cause[96];         /* why the master killed it */
  struct wrec *next;
} wrec;

enum { RUNNING, STOP_GRACEFUL, STOP_QUICK };

typedef struct master {
  gev_prefork_opts o; /* copied, defaults applied */
  pid_t pid;
  int listen_fd;  /* shared listener, or -1 with reuseport */
  int own_listen; /* the master opened listen_fd */
  int reserve_fd; /* reuseport: bound socket holding the port */
  struct sockaddr_storage addr;
  socklen_t addrlen;
  char addr_text[80];
  int sigpipe[2];
  struct sigaction saved[NSIGNALS];
  wrec *workers;
  size_t wanted;   /* worker count to keep */
  unsigned serial; /* of the last worker started */
  int state;       /* RUNNING, STOP_GRACEFUL, STOP_QUICK */
  int ready_reported;
  unsigned boot_failures; /* in a row */
  double spawn_after;     /* backoff: no start before this */
} master;

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
  gev__waitq waiters; /* in gev_worker_wait_stop */
  gev_server *serving; /* in gev_worker_serve: closed on a stop request */
  int closed;          /* the worker function returned */
};

static int master_sig_fd = -1; /* the running master's self-pipe */

static double mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- Logging ------------------------------------------------------------- */

static void mlog(const gev_prefork_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void mlog(const gev_prefork_opts *o, const char *fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (o->log)
    o->log(line, o->arg);
  else
    gev__log(GEV_LOG_INFO, "gev prefork[%d]: %s", (int)getpid(), line);
}

/* "exited with status 3", "killed by signal 9" ... */
static void describe_status(int status, char *buf, size_t len) {
  if (WIFEXITED(status))
    snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
             strsignal(WTERMSIG(status)));
  else
    snprintf(buf, len, "ended with wait status %#x", status);
}

/* ---- Listening socket ---------------------------------------------------- */

static int set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void format_addr(master *m) {
  char host[64] = "?", port[16] = "?";
  getnameinfo((struct sockaddr *)&m->addr, m->addrlen, host, sizeof host, port,
              sizeof port, NI_NUMERICHOST | NI_NUMERICSERV);
  snprintf(m->addr_text, sizeof m->addr_text,
           m->addr.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

static int adopt_listen_fd(master *m) {
  int type;
  socklen_t len = sizeof type;
  if (getsockopt(m->o.listen_fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
      type != SOCK_STREAM) {
    errno = EINVAL;
    return -1;
  }
  m->addrlen = sizeof m->addr;
  if (getsockname(m->o.listen_fd, (struct sockaddr *)&m->addr, &m->addrlen) <
          0 ||
      set_nonblock(m->o.listen_fd) < 0)
    return -1;
  m->listen_fd = m->o.listen_fd;
  return 0;
}

/* A TCP socket bound to addr with SO_REUSEADDR (and SO_REUSEPORT). */
static int bound_socket(const struct sockaddr *addr, socklen_t len,
                        int reuseport) {
  int one = 1, saved;
  int fd =
      socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      (reuseport &&
       setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
      bind(fd, addr, len) < 0)
    goto out_close;
  return fd;
out_close:
  saved = errno;
  close(fd);
  errno = saved;
  return -1;
}

static int resolve(master *m, struct addrinfo **res) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC,
                           .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
  char port[16];
  int rc;
  snprintf(port, sizeof port, "%d", m->o.port);
  rc = getaddrinfo(m->o.host ? m->o.host : "127.0.0.1", port, &hints, res);
  if (rc == 0)
    return 0;
  errno = rc == EAI_SYSTEM ? errno : rc == EAI_MEMORY ? ENOMEM : ENOENT;
  return -1;
}

/* Opens the shared listener, or with reuseport the port-holding socket. */
static int open_listener(master *m) {
  struct addrinfo *res;
  int fd, saved;
  if (m->o.use_listen_fd)
    return adopt_listen_fd(m);
  if (resolve(m, &res) < 0)
    return -1;
  fd = bound_socket(res->ai_addr, res->ai_addrlen, m->o.reuseport);
  freeaddrinfo(res);
  if (fd < 0)
    return -1;
  if (!m->o.reuseport && listen(fd, m->o.backlog) < 0)
    goto out_close;
  m->addrlen = sizeof m->addr;
  if (getsockname(fd, (struct sockaddr *)&m->addr, &m->addrlen) < 0)
    goto out_close;
  if (m->o.reuseport) {
    m->reserve_fd = fd;
  } else {
    m->listen_fd = fd;
    m->own_listen = 1;
  }
  return 0;
out_close:
  saved = errno;
  close(fd);
  errno = saved;
  return -1;
}

/* ---- Master signals ------------------------------------------------------ */

static void on_master_signal(int signum) {
  int saved = errno;
  unsigned char b = (unsigned char)signum;
  if (master_sig_fd >= 0 && write(master_sig_fd, &b, 1) < 0) {
    /* The pipe is full: enough wake-ups are queued already. */
  }
  errno = saved;
}

static int install_signals(master *m) {
  struct sigaction sa = {.sa_handler = on_master_signal,
                         .sa_flags = SA_RESTART};
  sigemptyset(&sa.sa_mask);
  if (pipe2(m->sigpipe, O_CLOEXEC | O_NONBLOCK) < 0)
    return -1;
  master_sig_fd = m->sigpipe[1];
  for (size_t i = 0; i < NSIGNALS; i++)
    sigaction(master_signals[i], &sa, &m->saved[i]);
  return 0;
}

static void restore_signals(master *m) {
  for (size_t i = 0; i < NSIGNALS; i++)
    sigaction(master_signals[i], &m->saved[i], NULL);
  master_sig_fd = -1;
  close(m->sigpipe[0]);
  close(m->sigpipe[1]);
}

/* ---- Worker side --------------------------------------------------------- */

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
    worker_send(w, MSG_RETIRING);
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
    worker_send(w, MSG_BEAT);
}

static void on_term(int signum, void *arg) {
  worker_request_stop(arg, GEV_WORKER_STOP_TERM);
}

static void on_quick(int signum, void *arg) {
  fflush(NULL);
  _exit(0);
}

static double beat_interval(const gev_prefork_opts *o) {
  double iv = o->timeout > 0 ? o->timeout / 4 : POLL_MAX;
  return iv < POLL_MAX ? iv : POLL_MAX;
}

static unsigned long draw_limit(const gev_prefork_opts *o) {
  unsigned long r = (unsigned long)getpid() * 2654435761UL ^
                    (unsigned long)(mono_now() * 1e6);
  if (o->max_requests == 0)
    return 0;
  r ^= r >> 13;
  return o->max_requests +
         (o->max_requests_jitter ? r % (o->max_requests_jitter + 1) : 0);
}

/* Sets up the worker's hub: heartbeat timer and signal handlers. */
static gev_worker *worker_new(master *m, int listen_fd, int beat_fd,
                              unsigned serial) {
  gev_worker *w = calloc(1, sizeof *w);
  if (!w || !(w->loop = gev_hub_loop()))
    goto out_free;
  w->o = m->o;
  w->master_pid = m->pid;
  w->listen_fd = listen_fd;
  w->beat_fd = beat_fd;
  w->serial = serial;
  w->limit = draw_limit(&m->o);
  ev_timer_init(&w->heartbeat, heartbeat_cb, 0, beat_interval(&m->o));
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

/* In a new worker: forget everything of the master's. */
static void child_reset(master *m) {
  for (size_t i = 0; i < NSIGNALS; i++)
    signal(master_signals[i], SIG_DFL);
  signal(SIGTTIN, SIG_IGN); /* the master's business, not ours */
  signal(SIGTTOU, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  master_sig_fd = -1;
  close(m->sigpipe[0]);
  close(m->sigpipe[1]);
  for (wrec *r = m->workers; r; r = r->next)
    close(r->fd);
  if (m->reserve_fd >= 0)
    close(m->reserve_fd);
}

static int worker_listener(master *m) {
  int fd;
  if (!m->o.reuseport)
    return m->listen_fd;
  fd = bound_socket((struct sockaddr *)&m->addr, m->addrlen, 1);
  if (fd >= 0 && listen(fd, m->o.backlog) < 0) {
    close(fd);
    fd = -1;
  }
  return fd;
}

static void worker_process(master *m, int beat_fd, unsigned serial,
                           const sigset_t *mask) __attribute__((noreturn));
static void worker_process(master *m, int beat_fd, unsigned serial,
                           const sigset_t *mask) {
  gev_worker *w;
  int listen_fd, rc;
  child_reset(m);
  if (gev_fork_discard() < 0)
    goto out_boot_failed;
  if ((listen_fd = worker_listener(m)) < 0)
    goto out_boot_failed;
  if (!(w = worker_new(m, listen_fd, beat_fd, serial)))
    goto out_boot_failed;
  /* Only now: a TERM that came early finds the worker's handler. */
  sigprocmask(SIG_SETMASK, mask, NULL);
  rc = m->o.worker(w, m->o.arg);
  worker_close(w);
  gev_hub_destroy(); /* unwinds what the worker function left running */
  free(w);
  fflush(NULL);
  _exit(rc & 0xff);
out_boot_failed:
  gev__log(GEV_LOG_ERROR, "gev prefork[%d]: worker %u cannot start: %s",
           (int)getpid(), serial, strerror(errno));
  fflush(NULL);
  _exit(EXIT_BOOT_FAILED);
}

/* ---- Master: workers ----------------------------------------------------- */

static void worker_link(master *m, wrec *r) {
  wrec **p = &m->workers;
  while (*p)
    p = &(*p)->next;
  *p = r;
}

static void worker_unlink(master *m, wrec *r) {
  for (wrec **p = &m->workers; *p; p = &(*p)->next) {
    if (*p == r) {
      *p = r->next;
      return;
    }
  }
}

static int spawn_worker(master *m, double now) {
  sigset_t all, old;
  int sv[2];
  pid_t pid;
  wrec *r = calloc(1, sizeof *r);
  if (!r)
    return -1;
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
    goto out_free;
  r->serial = ++m->serial;
  fflush(NULL); /* or buffered output would be written twice */
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  pid = fork();
  if (pid == 0) {
    close(sv[0]);
    worker_process(m, sv[1], r->serial, &old);
  }
  sigprocmask(SIG_SETMASK, &old, NULL);
  close(sv[1]);
  if (pid < 0)
    goto out_close;
  set_nonblock(sv[0]);
  r->pid = pid;
  r->fd = sv[0];
  r->last_beat = now;
  worker_link(m, r);
  mlog(&m->o, "worker %u (pid %d) started", r->serial, (int)pid);
  return 0;
out_close:
  close(sv[0]);
out_free:
  mlog(&m->o, "cannot start a worker: %s", strerror(errno));
  free(r);
  return -1;
}

static void retire(master *m, wrec *r, double now, const char *why) {
  if (r->retiring || r->killed)
    return;
  kill(r->pid, SIGTERM);
  r->retiring = 1;
  r->kill_at = now + m->o.graceful_timeout;
  mlog(&m->o, "retiring worker %u (pid %d): %s", r->serial, (int)r->pid, why);
}

static void kill_worker(master *m, wrec *r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void kill_worker(master *m, wrec *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->cause, sizeof r->cause, fmt, ap);
  va_end(ap);
  kill(r->pid, SIGKILL);
  r->killed = 1;
  mlog(&m->o, "killing worker %u (pid %d): %s", r->serial, (int)r->pid,
       r->cause);
}

static void note_boot_failure(master *m, wrec *r, double now) {
  double delay = BACKOFF_FIRST * pow(2, m->boot_failures);
  if (delay > BACKOFF_MAX)
    delay = BACKOFF_MAX;
  m->boot_failures++;
  m->spawn_after = now + delay;
  mlog(&m->o, "worker %u failed to boot (%u in a row); next start in %.1f s",
       r->serial, m->boot_failures, delay);
}

static void read_worker(master *m, wrec *r, double now);

/* Step 2: reaps every exited worker. Its last messages are read first:
 * they say why it left. Only the workers' own pids are waited for, so
 * other children of the program keep their exit status for it. */
static void reap_workers(master *m, double now) {
  wrec *r = m->workers, *next;
  for (; r; r = next) {
    int status;
    char how[96];
    next = r->next;
    if (waitpid(r->pid, &status, WNOHANG) != r->pid)
      continue;
    read_worker(m, r, now);
    describe_status(status, how, sizeof how);
    mlog(&m->o, "worker %u (pid %d) %s%s%s", r->serial, (int)r->pid, how,
         r->killed ? ": " : "", r->killed ? r->cause : "");
    if (!r->booted && !r->retiring && m->state == RUNNING)
      note_boot_failure(m, r, now);
    worker_unlink(m, r);
    close(r->fd);
    free(r);
  }
}

/* Reads one worker's heartbeats and messages. */
static void read_worker(master *m, wrec *r, double now) {
  char msg[64];
  while (recv(r->fd, msg, sizeof msg, MSG_DONTWAIT) > 0) {
    r->last_beat = now;
    if (!r->booted) {
      r->booted = 1;
      m->boot_failures = 0;
    }
    if (msg[0] == MSG_RETIRING && !r->retiring) {
      r->retiring = 1;
      r->kill_at = now + m->o.graceful_timeout;
      mlog(&m->o, "worker %u (pid %d) served its max_requests; retiring",
           r->serial, (int)r->pid);
    }
  }
}

/* Step 3: heartbeats and messages of all workers. */
static void read_beats(master *m, double now) {
  for (wrec *r = m->workers; r; r = r->next)
    read_worker(m, r, now);
}

/* Step 4: the watchdog. */
static void check_deadlines(master *m, double now) {
  for (wrec *r = m->workers; r; r = r->next) {
    if (r->killed)
      continue;
    if (m->o.timeout > 0 && now - r->last_beat > m->o.timeout)
      kill_worker(m, r, "no heartbeat for %.1f s (timeout %.1f s)",
                  now - r->last_beat, m->o.timeout);
    else if (r->kill_at > 0 && now >= r->kill_at)
      kill_worker(m, r, "still running %.1f s after it was asked to stop",
                  m->o.graceful_timeout);
  }
}

/* Step 5: keep the wanted number of current workers. */
static void manage_workers(master *m, double now) {
  size_t current = 0, ready = 0, old = 0;
  for (wrec *r = m->workers; r; r = r->next) {
    if (r->retiring || r->killed)
      continue;
    if (r->old) {
      old++;
      continue;
    }
    current++;
    ready += r->booted;
  }
  if (old > 0 && ready >= m->wanted) {
    for (wrec *r = m->workers; r; r = r->next)
      if (r->old)
        retire(m, r, now, "replaced after HUP");
  }
  for (wrec *r = m->workers; r && current > m->wanted; r = r->next) {
    if (!r->retiring && !r->killed && !r->old) {
      retire(m, r, now, "one worker fewer (TTOU)");
      current--;
    }
  }
  if (!m->ready_reported && ready >= m->wanted) {
    m->ready_reported = 1;
    mlog(&m->o, "%zu workers ready, listening on %s", ready, m->addr_text);
    if (m->o.on_ready)
      m->o.on_ready((struct sockaddr *)&m->addr, m->addrlen, m->o.arg);
  }
  if (current < m->wanted && now >= m->spawn_after) {
    /* After boot failures, one at a time: each failure pushes the next
     * start further (note_boot_failure). */
    size_t n = m->boot_failures ? 1 : m->wanted - current;
    for (; n > 0; n--) {
      if (spawn_worker(m, now) < 0) {
        m->spawn_after = now + 1; /* fork failed: try again in a second */
        break;
      }
    }
  }
}

static void start_stop(master *m, int how, double now) {
  int sig = how == STOP_GRACEFUL ? SIGTERM : SIGQUIT;
  size_t n = 0;
  m->state = how;
  for (wrec *r = m->workers; r; r = r->next) {
    if (r->killed)
      continue;
    kill(r->pid, sig);
    r->retiring = 1;
    if (r->kill_at == 0 || r->kill_at > now + m->o.graceful_timeout)
      r->kill_at = now + m->o.graceful_timeout;
    n++;
  }
  mlog(&m->o, "%s stop: %zu workers asked to exit",
       how == STOP_GRACEFUL ? "graceful" : "quick", n);
}

/* Step 1: the signals received since the last turn. */
static void handle_signals(master *m, double now) {
  unsigned char sigs[64];
  ssize_t n;
  while ((n = read(m->sigpipe[0], sigs, sizeof sigs)) > 0) {
    for (ssize_t i = 0; i < n; i++) {
      int sig = sigs[i];
      if (sig == SIGTERM && m->state == RUNNING) {
        start_stop(m, STOP_GRACEFUL, now);
      } else if ((sig == SIGINT || sig == SIGQUIT) && m->state != STOP_QUICK) {
        start_stop(m, STOP_QUICK, now);
      } else if (m->state != RUNNING) {
        continue; /* stopping: HUP, TTIN, TTOU no longer apply */
      } else if (sig == SIGHUP) {
        mlog(&m->o, "HUP: starting %zu new workers", m->wanted);
        for (wrec *r = m->workers; r; r = r->next)
          r->old = 1;
      } else if (sig == SIGTTIN) {
        m->wanted++;
        mlog(&m->o, "TTIN: %zu workers wanted", m->wanted);
      } else if (sig == SIGTTOU && m->wanted > 1) {
        m->wanted--;
        mlog(&m->o, "TTOU: %zu workers wanted", m->wanted);
      }
    }
  }
}

/* Step 6: poll until something happens or the next deadline. */
static void wait_events(master *m, double now) {
  struct pollfd fds[256];
  nfds_t n = 0;
  double until = now + POLL_MAX;
  fds[n++] = (struct pollfd){.fd = m->sigpipe[0], .events = POLLIN};
  for (wrec *r = m->workers; r; r = r->next) {
    if (n < sizeof fds / sizeof fds[0])
      fds[n++] = (struct pollfd){.fd = r->fd, .events = POLLIN};
    if (!r->killed && m->o.timeout > 0 && r->last_beat + m->o.timeout < until)
      until = r->last_beat + m->o.timeout;
    if (!r->killed && r->kill_at > 0 && r->kill_at < until)
      until = r->kill_at;
  }
  if (m->state == RUNNING && m->spawn_after > now && m->spawn_after < until)
    until = m->spawn_after;
  poll(fds, n, (int)ceil((until > now ? until - now : 0) * 1000) + 1);
}

static int master_loop(master *m) {
  for (;;) {
    double now = mono_now();
    handle_signals(m, now);
    reap_workers(m, now);
    read_beats(m, now);
    check_deadlines(m, now);
    if (m->state == RUNNING)
      manage_workers(m, now);
    else if (!m->workers)
      break;
    wait_events(m, mono_now());
  }
  mlog(&m->o, "stopped");
  return 0;
}

/* ---- gev_prefork_run ----------------------------------------------------- */

static int check_opts(const gev_prefork_opts *o) {
  if (!o || !o->worker || o->graceful_timeout < 0 || o->port < 0 ||
      o->port > 65535) {
    errno = EINVAL;
    return -1;
  }
  if (gev_in_hub() || gev_coro_current() != gev_coro_main()) {
    errno = EPERM;
    return -1;
  }
  if (master_sig_fd >= 0) {
    errno = EBUSY;
    return -1;
  }
  return 0;
}

static void apply_defaults(master *m, const gev_prefork_opts *o) {
  m->o = *o;
  if (m->o.backlog <= 0)
    m->o.backlog = 1024;
  if (m->o.workers <= 0)
    m->o.workers = 1;
  if (m->o.timeout == 0)
    m->o.timeout = 30;
  if (m->o.graceful_timeout == 0)
    m->o.graceful_timeout = 30;
  m->wanted = (size_t)m->o.workers;
  m->pid = getpid();
  m->listen_fd = m->reserve_fd = -1;
}

static void close_master(master *m) {
  if (m->own_listen)
    close(m->listen_fd);
  if (m->reserve_fd >= 0)
    close(m->reserve_fd);
}

GEV_EXTERN int gev_prefork_run(const gev_prefork_opts *opts) {
  master m;
  int rc;
  if (check_opts(opts) < 0)
    return -1;
  memset(&m, 0, sizeof m);
  apply_defaults(&m, opts);
  if (open_listener(&m) < 0)
    return -1;
  format_addr(&m);
  if (install_signals(&m) < 0)
    goto out_close;
  mlog(&m.o, "master started: %zu workers on %s%s", m.wanted, m.addr_text,
       m.o.reuseport ? " (SO_REUSEPORT)" : "");
  rc = master_loop(&m);
  restore_signals(&m);
  close_master(&m);
  return rc;
out_close:
  rc = errno;
  close_master(&m);
  errno = rc;
  return -1;
}

/* ---- Worker API ---------------------------------------------------------- */

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
