/*
 * The threadpool's round trip, against the same hand-off written by hand
 * in the same run:
 *   threadpool.roundtrip  a greenlet runs an empty job on a pool of one
 *                         thread and waits for its result
 *                         (gev_threadpool_apply: spawn, the pool thread
 *                         wakes, runs, posts the completion to the hub's
 *                         inbox, the hub wakes and resumes the greenlet);
 *   threadpool.baseline   a bare pthread and libev: the main thread hands
 *                         the job over with a mutex and a condition
 *                         variable, the thread answers with ev_async_send,
 *                         the main thread waits in ev_run.
 * Both are nanoseconds per round trip, best of interleaved rounds (the
 * machine is shared; one slow round says nothing). Both sides' threads
 * sleep between jobs, so each round trip includes two thread wake-ups:
 * that, not gev's bookkeeping, is most of the figure. A round whose
 * counters show that not every job ran prints nothing.
 */
#include <ev.h>
#include <pthread.h>
#include <stdint.h>

#include "bench.h"
#include "gev/thread.h"

enum { ROUNDS = 7, TRIPS = 20000 };

/* ---- gev ------------------------------------------------------------------
 */

static gev_threadpool *pool;

static void *empty_job(void *arg) { return arg; }

static void *apply_loop(void *arg) {
  (void)arg;
  for (intptr_t i = 0; i < TRIPS; i++) {
    void *v = NULL;
    if (gev_threadpool_apply(pool, empty_job, (void *)i, &v) != 0 ||
        v != (void *)i)
      bench_die("gev_threadpool_apply");
  }
  return NULL;
}

static double bench_gev(void) {
  gev_threadpool_stats before, after;
  gev_threadpool_get_stats(pool, &before);
  double t0 = bench_now_ns();
  gev_greenlet *g = gev_spawn(apply_loop, NULL);
  if (!g || gev_greenlet_join(g, -1) != 0)
    bench_die("join");
  double per = (bench_now_ns() - t0) / TRIPS;
  gev_greenlet_unref(g);
  /* The last job's thread counts it just after its result went out. */
  if (gev_threadpool_join(pool, 10) != 0)
    bench_die("gev_threadpool_join");
  gev_threadpool_get_stats(pool, &after);
  if (after.completed - before.completed != TRIPS)
    bench_die("threadpool: not every job ran");
  return per;
}

/* ---- A bare pthread and ev_async ---------------------------------------- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int job_waiting, stopping;
static struct ev_loop *loop;
static ev_async back;
static long answered;

static void *bare_worker(void *arg) {
  (void)arg;
  pthread_mutex_lock(&mu);
  for (;;) {
    while (!job_waiting && !stopping)
      pthread_cond_wait(&cv, &mu);
    if (stopping)
      break;
    job_waiting = 0;
    pthread_mutex_unlock(&mu);
    empty_job(NULL);
    ev_async_send(loop, &back);
    pthread_mutex_lock(&mu);
  }
  pthread_mutex_unlock(&mu);
  return NULL;
}

static void back_cb(struct ev_loop *l, ev_async *w, int revents) {
  (void)w, (void)revents;
  answered++;
  ev_break(l, EVBREAK_ONE);
}

static double bench_bare(void) {
  long before = answered;
  double t0 = bench_now_ns();
  for (int i = 0; i < TRIPS; i++) {
    pthread_mutex_lock(&mu);
    job_waiting = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    ev_run(loop, 0); /* until back_cb */
  }
  double per = (bench_now_ns() - t0) / TRIPS;
  if (answered - before != TRIPS)
    bench_die("baseline: not every job was answered");
  return per;
}

int main(void) {
  pthread_t tid;
  double gev = 0, bare = 0;
  if (!(loop = ev_loop_new(0)))
    bench_die("ev_loop_new");
  ev_async_init(&back, back_cb);
  ev_async_start(loop, &back);
  if (pthread_create(&tid, NULL, bare_worker, NULL) != 0)
    bench_die("pthread_create");
  if (!(pool = gev_threadpool_new(1)) ||
      gev_threadpool_set_idle_timeout(pool, -1) != 0)
    bench_die("gev_threadpool_new");
  for (int r = 0; r < ROUNDS; r++) {
    bench_keep_min(&gev, bench_gev());
    bench_keep_min(&bare, bench_bare());
  }
  bench_print("threadpool.roundtrip", gev, 0, "ns");
  bench_print("threadpool.baseline", bare, 0, "ns");
  fprintf(stderr, "threadpool round trip = %.2fx the bare pthread + ev_async\n",
          gev / bare);
  pthread_mutex_lock(&mu);
  stopping = 1;
  pthread_cond_signal(&cv);
  pthread_mutex_unlock(&mu);
  pthread_join(tid, NULL);
  ev_async_stop(loop, &back);
  ev_loop_destroy(loop);
  gev_threadpool_free(pool, 0, 10);
  gev_hub_destroy();
  return 0;
}
