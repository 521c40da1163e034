/*
 * The log hook and the monotonic clock (gev/log.h).
 *
 * The hook is a (fn, arg) pair that any thread may read at any time,
 * including a signal handler, while another thread may replace it. Two
 * slots and an atomic index make that safe without a lock on the reading
 * side: a writer fills the slot not in use, then publishes it. Writers
 * serialise on a mutex; a reader sees either the old pair or the new one,
 * never a mix, unless two replacements complete while one message is being
 * delivered (replacing the hook is a start-up affair).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "coro/coro_internal.h"
#include "coro/log_internal.h"

#define MESSAGE_MAX 1024

typedef struct hook {
  gev_log_fn fn;
  void *arg;
} hook;

static hook hooks[2] = {{gev_log_stderr, NULL}, {gev_log_stderr, NULL}};
static int active; /* index into hooks, read and written atomically */
static pthread_mutex_t writers = PTHREAD_MUTEX_INITIALIZER;

GEV_EXTERN void gev_log_stderr(gev_log_level level, const char *msg,
                               void *arg) {
  struct iovec iov[2] = {{(void *)msg, strlen(msg)}, {"\n", 1}};
  (void)level, (void)arg;
  /* One writev so that lines of several threads do not interleave. */
  while (writev(STDERR_FILENO, iov, 2) < 0 && errno == EINTR)
    ;
}

GEV_EXTERN void gev_set_log_fn(gev_log_fn fn, void *arg) {
  pthread_mutex_lock(&writers);
  int next = !__atomic_load_n(&active, __ATOMIC_RELAXED);
  hooks[next].fn = fn ? fn : gev_log_stderr;
  hooks[next].arg = fn ? arg : NULL;
  __atomic_store_n(&active, next, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&writers);
}

static void deliver(gev_log_level level, const char *msg) {
  const hook *h = &hooks[__atomic_load_n(&active, __ATOMIC_ACQUIRE)];
  int saved = errno; /* a message never changes the caller's errno */
  h->fn(level, msg, h->arg);
  errno = saved;
}

void gev__log(gev_log_level level, const char *fmt, ...) {
  char msg[MESSAGE_MAX];
  va_list ap;
  int saved = errno;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  errno = saved;
  deliver(level, msg);
}

static size_t append(char *dst, size_t at, const char *s) {
  while (s && *s && at < MESSAGE_MAX - 1)
    dst[at++] = *s++;
  return at;
}

void gev__log_parts(gev_log_level level, const char *a, const char *b,
                    const char *c) {
  char msg[MESSAGE_MAX];
  size_t n = append(msg, 0, a);
  n = append(msg, n, b);
  n = append(msg, n, c);
  msg[n] = '\0';
  deliver(level, msg);
}

GEV_EXTERN double gev_monotonic(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
