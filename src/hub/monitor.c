/*
 * The blocking monitor and the memory watch (gev/monitor.h).
 *
 * One thread for the process. It wakes several times per threshold,
 * and, under the registry's lock (so that no hub goes away meanwhile),
 * compares each hub's turn counter with what it saw last. The per-hub
 * bookkeeping (mon_*) belongs to this thread.
 *
 * The report of a blocked hub is made in two halves. In the hub's thread,
 * interrupted by GEV_MONITOR_SIGNAL, the handler only reads: the running
 * coroutine's id and name (copied byte by byte) and backtrace(3), whose
 * first call (which loads the unwinder's library) was made when the
 * monitor started, so that in the handler it allocates nothing. Then, in
 * the monitor's thread, the frames are named and logged: nothing
 * async-signal-unsafe runs in the handler, and the log hook is called
 * from an ordinary thread. The request is one static record that the
 * monitor hands to one handler at a time; its state moves IDLE -> PENDING
 * (monitor) -> CAPTURING -> DONE (handler), and a handler that finds it
 * anything but PENDING (a late signal the monitor gave up on) does
 * nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <execinfo.h>
#include <math.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "gev/monitor.h"
#include "hub/hooks.h"
#include "hub/hub_internal.h"

#define MAX_FRAMES 64
#define NAME_MAX_LEN 64
#define MEMORY_PERIOD 1.0 /* seconds between two reads of the RSS */
#define ANSWER_WAIT 1.0   /* seconds a handler has to answer */

enum { REQ_IDLE, REQ_PENDING, REQ_CAPTURING, REQ_DONE };

/* One capture request (see above). */
static struct {
  int state;           /* atomic */
  const gev__hub *hub; /* the hub asked about */
  sem_t done;
  unsigned long long coro_id;
  unsigned long greenlet_id; /* of an unnamed greenlet, else 0 */
  char name[NAME_MAX_LEN];
  const char *kind; /* "greenlet", "main", "hub" or "coroutine" */
  void *pc;         /* where the thread was interrupted */
  void *frames[MAX_FRAMES];
  int nframes;
} req;

/* The monitor's configuration and thread; under mon.lock. */
static struct {
  pthread_mutex_t lock;
  pthread_cond_t wake;
  int running, stop, handler_installed;
  pid_t pid; /* the process the thread runs in */
  pthread_t thread;
  double max_blocking; /* 0: blocking watch off */
  size_t max_memory;   /* 0: memory watch off */
  int wanted;          /* started (by call or environment): a forked
                          child starts its own with its first hub */
  struct sigaction old_action;
} mon = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t cond_once = PTHREAD_ONCE_INIT;

/* Fork: the child has no monitor thread, and none of the locks or the
 * request may be left as that thread had them. The child's first new
 * hub starts a thread again if the monitor was wanted. */
static void atfork_prepare(void) { pthread_mutex_lock(&mon.lock); }
static void atfork_parent(void) { pthread_mutex_unlock(&mon.lock); }
static void make_cond(void) {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&mon.wake, &attr);
  pthread_condattr_destroy(&attr);
}

static void atfork_child(void) {
  pthread_mutex_init(&mon.lock, NULL);
  make_cond();
  mon.running = 0;
  __atomic_store_n(&req.state, REQ_IDLE, __ATOMIC_RELAXED);
  sem_destroy(&req.done);
  sem_init(&req.done, 0, 0);
}
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

/* ---- In the hub's thread: the signal handler ---------------------------- */

static void copy_name(const char *s) {
  size_t i = 0;
  for (; s && s[i] && i < NAME_MAX_LEN - 1; i++)
    req.name[i] = s[i];
  req.name[i] = '\0';
}

static void *interrupted_pc(void *ucv) {
  ucontext_t *uc = ucv;
#if defined(__x86_64__)
  return (void *)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
  return (void *)uc->uc_mcontext.pc;
#else
  (void)uc;
  return NULL;
#endif
}

/* Records who runs in this thread's hub: id, name, and the stack. */
static void capture(const gev__hub *h, void *ucv) {
  gev_coro *cur = h->thr->current;
  gev__task *t = gev__coro_upper(cur);
  req.coro_id = gev_coro_id(cur);
  req.greenlet_id = 0;
  if (cur == h->coro) {
    req.kind = "hub";
    copy_name("hub");
  } else if (t && t->greenlet) {
    req.kind = "greenlet";
    copy_name(t->greenlet->name);
    if (!t->greenlet->name)
      req.greenlet_id = t->greenlet->id;
  } else {
    req.kind = cur == h->thr->main ? "main" : "coroutine";
    copy_name(gev_coro_name(cur));
  }
  req.pc = interrupted_pc(ucv);
  req.nframes = backtrace(req.frames, MAX_FRAMES);
}

static void monitor_handler(int sig, siginfo_t *si, void *ucv) {
  int saved = errno;
  int expected = REQ_PENDING;
  (void)sig;
  if (si->si_code == SI_TKILL && si->si_pid == getpid() &&
      __atomic_compare_exchange_n(&req.state, &expected, REQ_CAPTURING, 0,
                                  __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    const gev__hub *h = gev__hub_peek();
    req.nframes = 0;
    if (h && h == req.hub)
      capture(h, ucv);
    __atomic_store_n(&req.state, REQ_DONE, __ATOMIC_RELEASE);
    sem_post(&req.done);
  }
  errno = saved;
}

/* ---- In the monitor's thread -------------------------------------------- */

/* Waits up to ANSWER_WAIT for the handler; 1 when it answered. */
static int await_answer(void) {
  struct timespec until;
  int expected = REQ_PENDING;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += (time_t)ANSWER_WAIT;
  while (sem_clockwait(&req.done, CLOCK_MONOTONIC, &until) < 0) {
    if (errno == EINTR)
      continue;
    /* No answer: withdraw, unless the handler is at it right now. */
    if (__atomic_compare_exchange_n(&req.state, &expected, REQ_IDLE, 0,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
      return 0;
    while (sem_wait(&req.done) < 0 && errno == EINTR)
      ;
    break;
  }
  __atomic_store_n(&req.state, REQ_IDLE, __ATOMIC_RELEASE);
  return 1;
}

/* The frames from the interrupted one on (the handler's own and the
 * signal trampoline's go). */
static int first_frame(void) {
  for (int i = 0; i < req.nframes; i++)
    if (req.frames[i] == req.pc)
      return i;
  return 0;
}

static void log_capture(const gev__hub *h, double blocked) {
  char name[NAME_MAX_LEN + 48], where[256];
  int first = first_frame();
  if (req.greenlet_id)
    snprintf(name, sizeof name, "greenlet Greenlet-%lu", req.greenlet_id);
  else if (strcmp(req.kind, "main") == 0)
    snprintf(name, sizeof name, "the main coroutine");
  else if (strcmp(req.kind, "hub") == 0)
    snprintf(name, sizeof name, "the hub (a callback or watcher)");
  else
    snprintf(name, sizeof name, "%s %s", req.kind, req.name);
  gev__log(GEV_LOG_WARNING,
           "gev monitor: hub %llu (thread %d) blocked for %.3f s by %s "
           "(id %llu)",
           gev__hub_id(h), h->tid, blocked, name, req.coro_id);
  for (int i = first; i < req.nframes; i++)
    gev__log(
        GEV_LOG_WARNING, "gev monitor:   #%-2d %s", i - first,
        gev_describe_address(req.frames[i], i == first, where, sizeof where));
}

static void report_blocked(gev__hub *h, double blocked) {
  req.hub = h;
  __atomic_store_n(&req.state, REQ_PENDING, __ATOMIC_RELEASE);
  if (syscall(SYS_tgkill, getpid(), h->tid, GEV_MONITOR_SIGNAL) == 0 &&
      await_answer() && req.nframes > 0) {
    log_capture(h, blocked);
    return;
  }
  __atomic_store_n(&req.state, REQ_IDLE, __ATOMIC_RELEASE);
  gev__log(GEV_LOG_WARNING,
           "gev monitor: hub %llu (thread %d) blocked for %.3f s (its "
           "thread did not answer the monitor's signal: no backtrace)",
           gev__hub_id(h), h->tid, blocked);
}

static int has_work(const gev__hub *h) {
  return __atomic_load_n(&h->nrunning, __ATOMIC_RELAXED) > 0 ||
         __atomic_load_n(&h->ncallbacks, __ATOMIC_RELAXED) > 0;
}

/* One look at every hub. */
static void check_hubs(double now, double max_blocking) {
  gev__registry_lock();
  for (gev__hub *h = gev__registry_first(); h; h = h->reg_next) {
    unsigned long turns = __atomic_load_n(&h->turns, __ATOMIC_RELAXED);
    if (turns != h->mon_turns || h->mon_since == 0 ||
        __atomic_load_n(&h->in_poll, __ATOMIC_RELAXED) || !has_work(h)) {
      /* It came round, or waits for I/O, or has nothing to do. */
      h->mon_turns = turns;
      h->mon_since = now;
      h->mon_reported = 0;
      continue;
    }
    if (!h->mon_reported && now - h->mon_since > max_blocking) {
      h->mon_reported = 1;
      report_blocked(h, now - h->mon_since);
    }
  }
  gev__registry_unlock();
}

/* Resident set size in bytes, or 0 if unknown. */
static size_t resident_bytes(void) {
  char buf[128];
  unsigned long size, resident;
  if (gev__read_proc("/proc/self/statm", buf, sizeof buf) <= 0 ||
      sscanf(buf, "%lu %lu", &size, &resident) != 2)
    return 0;
  return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static void check_memory(size_t limit, int *reported) {
  size_t rss = resident_bytes();
  if (rss <= limit) {
    *reported = 0;
    return;
  }
  if (*reported)
    return;
  *reported = 1;
  gev__log(GEV_LOG_WARNING,
           "gev monitor: memory usage %zu bytes exceeds the limit of %zu "
           "bytes (resident set size)",
           rss, limit);
}

/* How long the thread sleeps between two looks. */
static double period(double max_blocking, size_t max_memory) {
  double p = max_memory ? MEMORY_PERIOD : 1.0;
  if (max_blocking > 0 && max_blocking / 4 < p)
    p = max_blocking / 4;
  return p < 0.001 ? 0.001 : p;
}

static void *monitor_main(void *arg) {
  double next_memory = 0;
  int memory_reported = 0;
  (void)arg;
  pthread_mutex_lock(&mon.lock);
  while (!mon.stop) {
    double max_blocking = mon.max_blocking, now;
    size_t max_memory = mon.max_memory;
    struct timespec until;
    double p = period(max_blocking, max_memory);
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)p;
    until.tv_nsec += (long)((p - floor(p)) * 1e9);
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&mon.wake, &mon.lock, &until);
    if (mon.stop)
      break;
    pthread_mutex_unlock(&mon.lock);
    now = gev_monotonic();
    if (max_blocking > 0)
      check_hubs(now, max_blocking);
    if (max_memory && now >= next_memory) {
      check_memory(max_memory, &memory_reported);
      next_memory = now + MEMORY_PERIOD;
    }
    pthread_mutex_lock(&mon.lock);
  }
  pthread_mutex_unlock(&mon.lock);
  return NULL;
}

/* ---- Starting and stopping (under mon.lock) ------------------------------ */

static void restart_in_child(void);
static const gev__fork_hooks monitor_fork_hooks = {.layer = GEV__LAYER_HUB,
                                                   .keep = restart_in_child};

static void init_cond(void) {
  make_cond();
  sem_init(&req.done, 0, 0);
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
  gev__at_fork(&monitor_fork_hooks);
}

static int install_handler(void) {
  struct sigaction sa, old;
  if (sigaction(GEV_MONITOR_SIGNAL, NULL, &old) < 0)
    return -1;
  if ((old.sa_flags & SA_SIGINFO)
          ? old.sa_sigaction != NULL
          : old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) {
    errno = EBUSY;
    return -1;
  }
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = monitor_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigfillset(&sa.sa_mask);
  if (sigaction(GEV_MONITOR_SIGNAL, &sa, &mon.old_action) < 0)
    return -1;
  mon.handler_installed = 1;
  return 0;
}

static void remove_handler(void) {
  if (!mon.handler_installed)
    return;
  sigaction(GEV_MONITOR_SIGNAL, &mon.old_action, NULL);
  mon.handler_installed = 0;
}

/* Starts the thread if this process has none. 0 or -1 with errno. */
static int ensure_thread(void) {
  sigset_t all, old;
  void *warm[2];
  int rc;
  if (mon.running && mon.pid == getpid())
    return 0;
  pthread_once(&cond_once, init_cond);
  mon.running = 0;
  if (!mon.handler_installed && install_handler() < 0)
    return -1;
  backtrace(warm, 2); /* loads the unwinder now, not in the handler */
  mon.stop = 0;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  rc = pthread_create(&mon.thread, NULL, monitor_main, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    remove_handler();
    errno = rc;
    return -1;
  }
  mon.running = 1;
  mon.pid = getpid();
  return 0;
}

static int configure(double max_blocking, int set_blocking, size_t max_memory,
                     int set_memory) {
  int rc;
  pthread_mutex_lock(&mon.lock);
  rc = ensure_thread();
  if (rc == 0) {
    if (set_blocking)
      mon.max_blocking = max_blocking;
    if (set_memory)
      mon.max_memory = max_memory;
    __atomic_store_n(&mon.wanted, 1, __ATOMIC_RELAXED);
    pthread_cond_signal(&mon.wake);
  }
  pthread_mutex_unlock(&mon.lock);
  return rc;
}

GEV_EXTERN int gev_monitor_start(double max_blocking_seconds) {
  if (!(max_blocking_seconds > 0) || isinf(max_blocking_seconds)) {
    errno = EINVAL;
    return -1;
  }
  return configure(max_blocking_seconds, 1, 0, 0);
}

GEV_EXTERN int gev_monitor_set_memory_limit(size_t max_rss_bytes) {
  return configure(0, 0, max_rss_bytes, 1);
}

GEV_EXTERN int gev_monitor_stop(void) {
  pthread_t thread;
  pthread_mutex_lock(&mon.lock);
  __atomic_store_n(&mon.wanted, 0, __ATOMIC_RELAXED);
  mon.max_blocking = 0;
  mon.max_memory = 0;
  if (!mon.running || mon.pid != getpid()) {
    mon.running = 0;
    remove_handler();
    pthread_mutex_unlock(&mon.lock);
    return 0;
  }
  mon.stop = 1;
  thread = mon.thread;
  pthread_cond_signal(&mon.wake);
  pthread_mutex_unlock(&mon.lock);
  pthread_join(thread, NULL);
  pthread_mutex_lock(&mon.lock);
  mon.running = 0;
  remove_handler();
  pthread_mutex_unlock(&mon.lock);
  return 0;
}

GEV_EXTERN int gev_monitor_running(void) {
  int r;
  pthread_mutex_lock(&mon.lock);
  r = mon.running && mon.pid == getpid();
  pthread_mutex_unlock(&mon.lock);
  return r;
}

/* ---- The environment ------------------------------------------------------
 */

static int parse_bytes(const char *s, size_t *out) {
  char *end;
  double v = strtod(s, &end);
  double unit = 1;
  switch (*end) {
  case 'k':
  case 'K':
    unit = 1024.0;
    end++;
    break;
  case 'm':
  case 'M':
    unit = 1024.0 * 1024;
    end++;
    break;
  case 'g':
  case 'G':
    unit = 1024.0 * 1024 * 1024;
    end++;
    break;
  default:
    break;
  }
  if (end == s || *end || !(v > 0) || v * unit > 1e18)
    return -1;
  *out = (size_t)(v * unit);
  return 0;
}

static void read_environment(void) {
  const char *b = getenv("GEV_MONITOR"), *m = getenv("GEV_MONITOR_MEMORY");
  size_t bytes;
  if (b && *b) {
    char *end;
    double v = strtod(b, &end);
    errno = EINVAL;
    if (end == b || *end || gev_monitor_start(v) < 0)
      gev__log(GEV_LOG_WARNING,
               "gev: GEV_MONITOR=%s ignored (want seconds > 0): %s", b,
               strerror(errno ? errno : EINVAL));
  }
  if (m && *m) {
    if (parse_bytes(m, &bytes) < 0)
      gev__log(GEV_LOG_WARNING,
               "gev: GEV_MONITOR_MEMORY=%s ignored (want bytes, with an "
               "optional K, M or G)",
               m);
    else if (gev_monitor_set_memory_limit(bytes) < 0)
      gev__log(GEV_LOG_WARNING, "gev: GEV_MONITOR_MEMORY ignored: %s",
               strerror(errno));
  }
}

static void (*first_hub_fn)(void);

void gev__on_first_hub(void (*fn)(void)) {
  if (!first_hub_fn)
    first_hub_fn = fn;
}

static void first_hub(void) {
  read_environment();
  if (first_hub_fn)
    first_hub_fn();
}

/* A child that keeps its parent's hub (gev_fork, gev_fork_reinit) gets
 * its monitor thread here, as one that makes a new hub does below. */
static void restart_in_child(void) {
  if (!__atomic_load_n(&mon.wanted, __ATOMIC_RELAXED))
    return;
  pthread_mutex_lock(&mon.lock);
  if (mon.wanted && mon.pid != getpid())
    ensure_thread();
  pthread_mutex_unlock(&mon.lock);
}

void gev__monitor_hub_created(void) {
  pthread_once(&env_once, first_hub);
  restart_in_child(); /* a forked child's first hub */
}
