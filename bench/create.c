/*
 * Whole life of a short coroutine with a warm stack cache:
 *
 *   create.gev     gev_coro_new + first switch into it + its function
 *                  returning to the creator + gev_coro_free, dedicated stack
 *                  (ns per coroutine);
 *   create.shared  the same in shared-stack mode (for comparison).
 *
 * After a warm-up the dedicated stack comes from the thread's cache with its
 * top page already committed, so no round maps or faults anything; the
 * benchmark checks that no stack was mapped while timing. Rounds of the two
 * modes are interleaved, each figure is its best round.
 */
#include <stdint.h>

#include "bench.h"
#include "gev/coro.h"

/* Many short rounds: on a shared machine a round of a few milliseconds
 * often runs without being preempted, a long one rarely does. */
enum { ROUNDS = 60, COROS = 20000 };

/* The trivial body: hands its argument straight back. */
static void *echo(void *arg) { return arg; }

static void one_life(const gev_coro_opts *o, intptr_t i) {
  void *back = NULL;
  gev_coro *c = gev_coro_new(echo, NULL, o);
  if (!c)
    bench_die("gev_coro_new");
  if (gev_coro_switch(c, (void *)i, &back) < 0)
    bench_die("gev_coro_switch");
  if (back != (void *)i || !gev_coro_dead(c)) {
    fputs("create: the coroutine did not run to completion\n", stderr);
    exit(1);
  }
  if (gev_coro_free(c) < 0)
    bench_die("gev_coro_free");
}

static size_t stacks_mapped(void) {
  gev_coro_stats st;
  gev_coro_get_stats(&st);
  return st.stacks_mapped;
}

static double round_of(gev_stack_mode mode) {
  gev_coro_opts o = {.stack_mode = mode};
  size_t mapped = stacks_mapped();
  double t0 = bench_now_ns();
  for (intptr_t i = 0; i < COROS; i++)
    one_life(&o, i + 1);
  double per = (bench_now_ns() - t0) / COROS;
  if (stacks_mapped() != mapped) {
    fputs("create: a stack was mapped while timing; cache not warm\n", stderr);
    exit(1);
  }
  return per;
}

int main(void) {
  gev_coro_opts dedicated = {.stack_mode = GEV_STACK_DEDICATED};
  gev_coro_opts shared = {.stack_mode = GEV_STACK_SHARED};
  double best_dedicated = 0, best_shared = 0;
  one_life(&dedicated, 1); /* warm the stack cache */
  one_life(&shared, 1);    /* map the region and the scratch stack */
  for (int r = 0; r < ROUNDS; r++) {
    bench_keep_min(&best_dedicated, round_of(GEV_STACK_DEDICATED));
    bench_keep_min(&best_shared, round_of(GEV_STACK_SHARED));
  }
  bench_print("create.gev", best_dedicated, 1, "ns");
  bench_print("create.shared", best_shared, 1, "ns");
  if (gev_coro_thread_cleanup() < 0)
    bench_die("gev_coro_thread_cleanup");
  return 0;
}
