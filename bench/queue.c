/*
 * Hand-off costs of the sync primitives, measured against a plain
 * coroutine switch in the same run:
 *   switch.gev  one gev_coro_switch (half of a ping-pong between two
 *               coroutines, no hub involved);
 *   queue.gev   one item through a bounded Queue from a producer greenlet
 *               to a consumer greenlet;
 *   sem.gev     one ping-pong between two greenlets over two Semaphores
 *               (each side releases the other's semaphore, then waits on
 *               its own): two hand-offs, each resumed in the hub's order.
 *   sem.handoff.switches  one hand-off (sem.gev / 2) in switch.gev units.
 * The three are measured in interleaved rounds and each figure is its best
 * round, so that all three see the same machine: on a shared machine one
 * slow round says nothing. The ratios to the switch go to stderr.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "gev/sync.h"

enum { ROUNDS = 7, SWITCHES = 2000000, ITEMS = 1000000, PINGS = 300000 };

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

/* ---- Plain switch ping-pong ------------------------------------------ */

static gev_coro *main_coro;

/* Bounces every switch back; returns when freed (thrown the kill). */
static void *bouncer(void *arg) {
  while (gev_coro_switch(main_coro, NULL, NULL) == 0)
    ;
  return NULL;
}

static double bench_switch(void) {
  main_coro = gev_coro_current();
  gev_coro *b = gev_coro_new(bouncer, NULL, NULL);
  if (!b)
    die("gev_coro_new");
  double t0 = now_ns();
  for (int i = 0; i < SWITCHES / 2; i++)
    gev_coro_switch(b, NULL, NULL);
  double per = (now_ns() - t0) / SWITCHES;
  gev_coro_free(b);
  return per;
}

/* ---- Queue: producer -> consumer ---------------------------------------- */

static gev_queue *q;

static void *producer(void *arg) {
  for (intptr_t i = 0; i < ITEMS; i++)
    if (gev_queue_put(q, (void *)i, -1) < 0)
      die("gev_queue_put");
  return NULL;
}

static void *consumer(void *arg) {
  void *it;
  for (intptr_t i = 0; i < ITEMS; i++)
    if (gev_queue_get(q, -1, &it) < 0 || (intptr_t)it != i)
      die("gev_queue_get");
  return NULL;
}

static double bench_queue(void) {
  gev_queue_opts o = {.order = GEV_QUEUE_FIFO, .maxsize = 64};
  if (!(q = gev_queue_new(&o)))
    die("gev_queue_new");
  gev_spawn_raw(consumer, NULL);
  gev_spawn_raw(producer, NULL);
  double t0 = now_ns();
  if (gev_run() < 0)
    die("gev_run");
  double per = (now_ns() - t0) / ITEMS;
  gev_queue_free(q);
  return per;
}

/* ---- Semaphore ping-pong --------------------------------------------- */

static gev_semaphore *ping, *pong;

static void *pinger(void *arg) {
  for (int i = 0; i < PINGS; i++)
    if (gev_semaphore_release(ping) < 0 || gev_semaphore_acquire(pong, -1) < 0)
      die("pinger");
  return NULL;
}

static void *ponger(void *arg) {
  for (int i = 0; i < PINGS; i++)
    if (gev_semaphore_acquire(ping, -1) < 0 || gev_semaphore_release(pong) < 0)
      die("ponger");
  return NULL;
}

static double bench_sem(void) {
  if (!(ping = gev_semaphore_new(0)) || !(pong = gev_semaphore_new(0)))
    die("gev_semaphore_new");
  gev_spawn_raw(ponger, NULL);
  gev_spawn_raw(pinger, NULL);
  double t0 = now_ns();
  if (gev_run() < 0)
    die("gev_run");
  double per = (now_ns() - t0) / PINGS;
  gev_semaphore_free(ping);
  gev_semaphore_free(pong);
  return per;
}

static void keep_best(double *best, double t) {
  if (*best == 0 || t < *best)
    *best = t;
}

int main(void) {
  double sw = 0, qu = 0, se = 0;
  for (int r = 0; r < ROUNDS; r++) {
    keep_best(&sw, bench_switch());
    keep_best(&qu, bench_queue());
    keep_best(&se, bench_sem());
  }
  printf("bench: queue.gev %.1f ns\n", qu);
  printf("bench: sem.gev %.1f ns\n", se);
  printf("bench: switch.gev %.1f ns\n", sw);
  printf("bench: sem.handoff.switches %.2f x\n", se / sw / 2);
  fprintf(stderr,
          "queue item = %.2f switches; semaphore ping-pong = %.2f switches "
          "(%.2f per hand-off)\n",
          qu / sw, se / sw, se / sw / 2);
  gev_hub_destroy();
  return 0;
}
