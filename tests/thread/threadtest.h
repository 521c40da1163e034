/* Helpers shared by the thread tests: threads with a hub of their own,
 * waiting for a condition while the hub runs, and the end-of-test check. */
#ifndef GEV_TESTS_THREADTEST_H
#define GEV_TESTS_THREADTEST_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>

#include "gev/hub.h"
#include "gev/sync.h"
#include "gev/thread.h"
#include "testutil.h"

#define P(i) ((void *)(intptr_t)(i))
#define I(p) ((int)(intptr_t)(p))

/* Test start and end: the fd count, and the full leak check. */
void thread_test_begin(void);
void thread_test_end(void);

/* A thread running body(arg) in its main coroutine, with a hub of its
 * own. After body returns the thread checks that its hub holds nothing
 * (no greenlet, callback or watcher) and destroys it; a failed check is
 * counted in hub_thread_join's result. */
typedef struct hub_thread {
  pthread_t tid;
  void (*body)(void *arg);
  void *arg;
  int leaks; /* out: what the thread's end check found */
  int done;  /* out: set when it has finished */
} hub_thread;
void hub_thread_start(hub_thread *t, void (*body)(void *arg), void *arg);
/* Joins t; returns its leaks (0 when clean). The caller's hub keeps
 * running until t has finished, since t may wait on the caller's objects,
 * which only the caller's hub serves. */
int hub_thread_join(hub_thread *t);

/* A plain thread (no hub) running fn(arg) after sleeping delay seconds. */
pthread_t plain_thread_start(void *(*fn)(void *), void *arg);

/* Sleeps in the hub (gev_sleep) until *flag (read atomically) reaches
 * want, or timeout seconds pass. Returns 1 if it did. */
int wait_for_count(const int *flag, int want, double timeout);

/* Atomic helpers for counters shared between threads. */
static inline void count_add(int *c, int n) {
  __atomic_fetch_add(c, n, __ATOMIC_SEQ_CST);
}
static inline int count_get(const int *c) {
  return __atomic_load_n(c, __ATOMIC_SEQ_CST);
}

/* Threads of this process (from /proc). */
int process_threads(void);

/* Seconds since an arbitrary point (gev_monotonic). */
double now(void);

#endif
