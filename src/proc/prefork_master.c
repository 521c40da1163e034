/*
 * The prefork master, gunicorn's arbiter. See gev/prefork.h for the
 * contract; the worker's side is prefork_worker.c, and what the two share
 * (the heartbeat messages, what a new worker is handed) is
 * prefork_internal.h.
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
 * (it would write to the master's pipe). The new worker puts the master's
 * signals back to SIG_DFL and closes the master's descriptors here
 * (child_reset); prefork_worker.c then drops any hub it inherited
 * (gev_fork_discard) and only then unblocks signals.
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
#include <unistd.h>

#include "gev/log.h"
#include "gev/prefork.h"
#include "hub/park.h"
#include "net/listener.h"
#include "proc/prefork_internal.h"

#define BACKOFF_FIRST 0.1 /* s: delay after the first boot failure */
#define BACKOFF_MAX 5.0   /* s: the delay stops doubling here */
#define POLL_MAX 1.0      /* s: longest master poll */

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

static int master_sig_fd = -1; /* the running master's self-pipe */

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

static void format_addr(master *m) {
  char host[64] = "?", port[16] = "?";
  getnameinfo((struct sockaddr *)&m->addr, m->addrlen, host, sizeof host, port,
              sizeof port, NI_NUMERICHOST | NI_NUMERICSERV);
  snprintf(m->addr_text, sizeof m->addr_text,
           m->addr.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
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

/* Opens the shared listener, or with reuseport the port-holding socket
 * (bound, not listening: the workers listen on sockets of their own). */
static int open_listener(master *m) {
  struct addrinfo *res;
  int fd, flags = GEV__LISTEN_REUSEADDR;
  m->addrlen = sizeof m->addr;
  if (m->o.use_listen_fd) {
    if (gev__listener_check(m->o.listen_fd, SOCK_STREAM, &m->addr,
                            &m->addrlen) < 0)
      return -1;
    m->listen_fd = m->o.listen_fd;
    return 0;
  }
  if (resolve(m, &res) < 0)
    return -1;
  if (m->o.reuseport)
    flags |= GEV__LISTEN_REUSEPORT;
  fd = gev__listener_open(res->ai_addr, res->ai_addrlen, SOCK_STREAM, flags,
                          m->o.reuseport ? 0 : m->o.backlog);
  freeaddrinfo(res);
  if (fd < 0)
    return -1;
  if (getsockname(fd, (struct sockaddr *)&m->addr, &m->addrlen) < 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  if (m->o.reuseport) {
    m->reserve_fd = fd;
  } else {
    m->listen_fd = fd;
    m->own_listen = 1;
  }
  return 0;
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

/* ---- Master: workers ----------------------------------------------------- */

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

/* In the new worker process: drops the master's state and runs the
 * worker (prefork_worker.c); never returns. */
static void start_worker(master *m, int beat_fd, unsigned serial,
                         const sigset_t *mask) __attribute__((noreturn));
static void start_worker(master *m, int beat_fd, unsigned serial,
                         const sigset_t *mask) {
  gev__worker_start ws = {.opts = &m->o,
                          .master_pid = m->pid,
                          .listen_fd = m->listen_fd,
                          .addr = (struct sockaddr *)&m->addr,
                          .addrlen = m->addrlen,
                          .beat_fd = beat_fd,
                          .serial = serial,
                          .mask = mask};
  child_reset(m);
  gev__prefork_worker_run(&ws);
}

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
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
    goto out_free;
  r->serial = ++m->serial;
  fflush(NULL); /* or buffered output would be written twice */
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  pid = fork();
  if (pid == 0) {
    close(sv[0]);
    start_worker(m, sv[1], r->serial, &old);
  }
  sigprocmask(SIG_SETMASK, &old, NULL);
  close(sv[1]);
  if (pid < 0)
    goto out_close;
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
    if (msg[0] == GEV__PREFORK_MSG_RETIRING && !r->retiring) {
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
    double now = gev_monotonic();
    handle_signals(m, now);
    reap_workers(m, now);
    read_beats(m, now);
    check_deadlines(m, now);
    if (m->state == RUNNING)
      manage_workers(m, now);
    else if (!m->workers)
      break;
    wait_events(m, gev_monotonic());
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
