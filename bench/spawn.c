/*
 * Spawning trivial greenlets, against a plain libev program doing the same
 * bookkeeping with callbacks, in the same run.
 *
 *   spawn.gev     1,000,000 greenlets of a trivial function: spawned from
 *                 the main coroutine in batches of 1000, each batch run and
 *                 joined with gev_joinall, its handles released; ns per
 *                 greenlet (spawn + run + join + free).
 *   spawn.shared  the same with shared-stack greenlets (for comparison).
 *   spawn.ref     the baseline: a libev loop of its own whose ev_idle
 *                 callback takes one batch of 1000 per loop iteration, as
 *                 the hub takes one batch per turn: it allocates a job record
 *                 for each (function, argument, result), calls the trivial
 *                 function through it, checks the result and frees it; ns
 *                 per job.
 *   spawn.ratio   gev / ref: what a greenlet costs over a plain callback.
 *
 * Both sides call the same trivial function and check every result, so
 * neither can be optimised away. Rounds are interleaved; each figure is its
 * best round.
 */
#include <ev.h>
#include <stdint.h>

#include "bench.h"
#include "gev/hub.h"

/* 1,000,000 of each in all, timed in rounds of ten batches: on a shared
 * machine a round of a few milliseconds often runs without being
 * preempted, a long one rarely does. */
enum { ROUNDS = 100, PER_ROUND = 10000, BATCH = 1000 };

__attribute__((noinline)) static void *trivial(void *arg) {
  return (void *)((uintptr_t)arg + 1);
}

static void check_result(void *result, uintptr_t i) {
  if (result != (void *)(i + 1)) {
    fputs("spawn: a trivial function returned the wrong value\n", stderr);
    exit(1);
  }
}

/* ---- gev ------------------------------------------------------------- */

static void gev_batch(const gev_spawn_opts *o, gev_greenlet **gs) {
  for (uintptr_t i = 0; i < BATCH; i++)
    if (!(gs[i] = gev_spawn_ex(o, trivial, (void *)i)))
      bench_die("gev_spawn_ex");
  if (gev_joinall(gs, BATCH, -1, 0, 0) != BATCH)
    bench_die("gev_joinall");
  for (uintptr_t i = 0; i < BATCH; i++) {
    check_result(gev_greenlet_value(gs[i]), i);
    gev_greenlet_unref(gs[i]);
  }
}

static double round_gev(gev_stack_mode mode) {
  gev_spawn_opts o = {.stack_mode = mode};
  gev_greenlet *gs[BATCH];
  double t0 = bench_now_ns();
  for (int b = 0; b < PER_ROUND / BATCH; b++)
    gev_batch(&o, gs);
  return (bench_now_ns() - t0) / PER_ROUND;
}

/* ---- plain libev -------------------------------------------------------- */

typedef struct job {
  void *(*fn)(void *);
  void *arg;
  void *result;
} job;

static int ref_done;

static void ref_batch(struct ev_loop *loop, ev_idle *w, int revents) {
  job *jobs[BATCH];
  (void)revents;
  for (uintptr_t i = 0; i < BATCH; i++) {
    if (!(jobs[i] = malloc(sizeof *jobs[i])))
      bench_die("malloc");
    *jobs[i] = (job){.fn = trivial, .arg = (void *)i};
  }
  for (uintptr_t i = 0; i < BATCH; i++) {
    jobs[i]->result = jobs[i]->fn(jobs[i]->arg);
    check_result(jobs[i]->result, i);
    free(jobs[i]);
  }
  ref_done += BATCH;
  if (ref_done >= PER_ROUND) {
    ev_idle_stop(loop, w);
    ev_break(loop, EVBREAK_ALL);
  }
}

static double round_ref(void) {
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  ev_idle idle;
  double t0;
  if (!loop)
    bench_die("ev_loop_new");
  ev_idle_init(&idle, ref_batch);
  ev_idle_start(loop, &idle);
  ref_done = 0;
  t0 = bench_now_ns();
  ev_run(loop, 0);
  double per = (bench_now_ns() - t0) / PER_ROUND;
  ev_loop_destroy(loop);
  return per;
}

int main(void) {
  gev_spawn_opts shared = {.stack_mode = GEV_STACK_SHARED};
  gev_greenlet *warm[BATCH];
  double gev = 0, sh = 0, ref = 0;
  gev_batch(NULL, warm); /* the hub, its stack, the stack cache */
  gev_batch(&shared, warm);
  for (int r = 0; r < ROUNDS; r++) {
    bench_keep_min(&ref, round_ref());
    bench_keep_min(&gev, round_gev(GEV_STACK_DEDICATED));
    bench_keep_min(&sh, round_gev(GEV_STACK_SHARED));
  }
  bench_print("spawn.gev", gev, 1, "ns");
  bench_print("spawn.shared", sh, 1, "ns");
  bench_print("spawn.ref", ref, 1, "ns");
  bench_print("spawn.ratio", gev / ref, 1, "x");
  if (gev_hub_destroy() < 0)
    bench_die("gev_hub_destroy");
  return 0;
}
