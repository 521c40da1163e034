/*
 * Cost of one coroutine switch, against glibc's swapcontext in the same run.
 *
 *   switch.gev       two dedicated-stack coroutines ping-pong with
 *                    gev_coro_switch; every switch counts (ns per switch).
 *                    They switch from different functions, as the hub and
 *                    a greenlet do, so each switch returns to another place
 *                    than the one the CPU's return predictor expects.
 *   switch.gev.samesite  the same, but both coroutines run one function:
 *                    every switch returns to the instruction the other side
 *                    switched from and the return predictor is always right.
 *                    The difference to switch.gev is the price of that one
 *                    mispredicted return, not of gev's code.
 *   switch.ucontext  the same ping-pong between two ucontexts with
 *                    swapcontext (which also saves and restores the signal
 *                    mask with a system call: that is what it costs).
 *   switch.ratio     ucontext / gev.
 *   switch.traced    switch.gev's ping-pong with a trace hook installed
 *                    (gev_set_trace) that counts the switches it is told
 *                    of: what tracing costs when on. Without a hook, the
 *                    switch pays one predicted branch for it, which
 *                    switch.gev includes.
 *   switch.shared0   a shared-mode coroutine and the main coroutine switch
 *                    back and forth; the coroutine stays the occupant of the
 *                    shared region, so nothing is copied (ns per switch).
 *   switch.shared1k  two shared-mode coroutines, each holding about 1 KiB
 *                    of live stack, are resumed in turn from the main
 *                    coroutine: every resume saves the other's bytes and
 *                    restores its own. Counted like shared0 (ns per
 *                    switch, both directions), so a copying resume costs
 *                    about 2 * shared1k - shared0; that figure and the
 *                    bytes moved per copy go to stderr.
 *
 * The five are measured in interleaved rounds and each figure is its best
 * round. The copy counters of gev_coro_get_stats() confirm that shared0
 * copies nothing and shared1k copies on every resume; a benchmark that does
 * not measure what it says fails instead of printing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>

#include "bench.h"
#include "gev/coro.h"

/* Many short rounds: on a shared machine a round of a few milliseconds
 * often runs without being preempted, a long one rarely does. */
enum {
  ROUNDS = 100,
  GEV_SWITCHES = 100000,
  UC_SWITCHES = 20000,
  SHARED0_SWITCHES = 100000,
  SHARED1K_RESUMES = 20000, /* main -> coroutine switches, half of them */
  LIVE_BYTES = 1024,
  UC_STACK = 64 * 1024,
};

/* ---- gev: two coroutines ping-ponging -------------------------------- */

static gev_coro *ping_coro, *pong_coro;
static double ping_elapsed;

/* Answers every switch by switching back; ends when freed (thrown the
 * kill error). */
static void *ponger(void *arg) {
  (void)arg;
  while (gev_coro_switch(ping_coro, NULL, NULL) == 0)
    ;
  return NULL;
}

/* Starts the ponger with one untimed round trip, then times
 * GEV_SWITCHES switches (two per iteration). */
static void *pinger(void *arg) {
  double t0;
  (void)arg;
  if (gev_coro_switch(pong_coro, NULL, NULL) < 0)
    bench_die("gev_coro_switch");
  t0 = bench_now_ns();
  for (int i = 0; i < GEV_SWITCHES / 2; i++)
    if (gev_coro_switch(pong_coro, NULL, NULL) < 0)
      bench_die("gev_coro_switch");
  ping_elapsed = bench_now_ns() - t0;
  return NULL;
}

static double round_gev(void) {
  gev_coro_opts o = {.stack_mode = GEV_STACK_DEDICATED};
  ping_coro = gev_coro_new(pinger, NULL, &o);
  pong_coro = gev_coro_new(ponger, NULL, &o);
  if (!ping_coro || !pong_coro)
    bench_die("gev_coro_new");
  if (gev_coro_switch(ping_coro, NULL, NULL) < 0)
    bench_die("gev_coro_switch");
  gev_coro_free(pong_coro);
  gev_coro_free(ping_coro);
  return ping_elapsed / GEV_SWITCHES;
}

/* ---- gev: the same ping-pong, traced --------------------------------- */

static unsigned long traced_switches;

static void count_switch(gev_trace_event ev, gev_coro *from, gev_coro *to,
                         void *arg) {
  (void)ev, (void)from, (void)to, (void)arg;
  traced_switches++;
}

static double round_traced(void) {
  double ns;
  unsigned long before = traced_switches;
  if (gev_set_trace(count_switch, NULL) < 0)
    bench_die("gev_set_trace");
  ns = round_gev();
  gev_set_trace(NULL, NULL);
  /* Every timed switch (and the untimed ones around them) was seen. */
  if (traced_switches - before < GEV_SWITCHES) {
    fprintf(stderr, "switch.traced: the hook saw %lu of %d switches\n",
            traced_switches - before, GEV_SWITCHES);
    exit(1);
  }
  return ns;
}

/* ---- gev: both sides switching from the same place -------------------- */

typedef struct side {
  gev_coro *coro;
  struct side *other;
} side;

static side side_a, side_b;
static double same_site_elapsed;

/* Both coroutines run this: each sends the other its side and switches.
 * Side a starts b with its first switch and times the whole exchange; b
 * leaves the loop when it is freed (thrown the kill error). */
static void *same_site(void *arg) {
  side *s = arg;
  double t0 = bench_now_ns();
  for (int i = 0; i < GEV_SWITCHES / 2; i++)
    if (gev_coro_switch(s->other->coro, s->other, NULL) < 0)
      break;
  if (s == &side_a)
    same_site_elapsed = bench_now_ns() - t0;
  return NULL;
}

static double round_same_site(void) {
  gev_coro_opts o = {.stack_mode = GEV_STACK_DEDICATED};
  side_a = (side){gev_coro_new(same_site, NULL, &o), &side_b};
  side_b = (side){gev_coro_new(same_site, NULL, &o), &side_a};
  if (!side_a.coro || !side_b.coro)
    bench_die("gev_coro_new");
  if (gev_coro_switch(side_a.coro, &side_a, NULL) < 0)
    bench_die("gev_coro_switch");
  gev_coro_free(side_b.coro);
  gev_coro_free(side_a.coro);
  return same_site_elapsed / GEV_SWITCHES;
}

/* ---- ucontext: the same ping-pong with swapcontext -------------------- */

static ucontext_t uc_main, uc_ping, uc_pong;
static double uc_elapsed;

static void uc_ponger(void) {
  for (;;)
    swapcontext(&uc_pong, &uc_ping);
}

static void uc_pinger(void) {
  double t0;
  swapcontext(&uc_ping, &uc_pong);
  t0 = bench_now_ns();
  for (int i = 0; i < UC_SWITCHES / 2; i++)
    swapcontext(&uc_ping, &uc_pong);
  uc_elapsed = bench_now_ns() - t0;
  /* Returning follows uc_link back to uc_main. */
}

static void uc_prepare(ucontext_t *uc, void *stack, ucontext_t *link,
                       void (*fn)(void)) {
  if (getcontext(uc) < 0)
    bench_die("getcontext");
  uc->uc_stack.ss_sp = stack;
  uc->uc_stack.ss_size = UC_STACK;
  uc->uc_link = link;
  makecontext(uc, fn, 0);
}

static double round_ucontext(void) {
  void *ping_stack = malloc(UC_STACK), *pong_stack = malloc(UC_STACK);
  if (!ping_stack || !pong_stack)
    bench_die("malloc");
  uc_prepare(&uc_ping, ping_stack, &uc_main, uc_pinger);
  uc_prepare(&uc_pong, pong_stack, NULL, uc_ponger);
  if (swapcontext(&uc_main, &uc_ping) < 0)
    bench_die("swapcontext");
  /* The ponger stays suspended; its stack simply goes. */
  free(ping_stack);
  free(pong_stack);
  return uc_elapsed / UC_SWITCHES;
}

/* ---- shared mode ------------------------------------------------------- */

static size_t shared_copies(void) {
  gev_coro_stats st;
  gev_coro_get_stats(&st);
  return st.shared_copies;
}

static gev_coro *new_shared(gev_coro_fn fn) {
  gev_coro_opts o = {.stack_mode = GEV_STACK_SHARED};
  gev_coro *c = gev_coro_new(fn, NULL, &o);
  if (!c)
    bench_die("gev_coro_new");
  return c;
}

/* Switches back to the main coroutine until freed. */
static void *bounce_to_main(void *arg) {
  (void)arg;
  while (gev_coro_switch(gev_coro_main(), NULL, NULL) == 0)
    ;
  return NULL;
}

static double round_shared0(void) {
  gev_coro *c = new_shared(bounce_to_main);
  size_t copies;
  double t0, elapsed;
  if (gev_coro_switch(c, NULL, NULL) < 0) /* maps and enters the region */
    bench_die("gev_coro_switch");
  copies = shared_copies();
  t0 = bench_now_ns();
  for (int i = 0; i < SHARED0_SWITCHES / 2; i++)
    if (gev_coro_switch(c, NULL, NULL) < 0)
      bench_die("gev_coro_switch");
  elapsed = bench_now_ns() - t0;
  if (shared_copies() != copies) {
    fprintf(stderr,
            "switch.shared0: stacks were copied; not a 0-byte switch\n");
    exit(1);
  }
  gev_coro_free(c);
  return elapsed / SHARED0_SWITCHES;
}

/* Holds LIVE_BYTES of live stack across every switch back to main. The
 * buffer is filled before the loop and checked after it, so it must
 * survive each save and restore intact. */
static void *bounce_with_live_bytes(void *arg) {
  volatile unsigned char live[LIVE_BYTES];
  unsigned char tag = (unsigned char)(uintptr_t)arg;
  for (size_t i = 0; i < sizeof live; i++)
    live[i] = (unsigned char)(tag + i);
  while (gev_coro_switch(gev_coro_main(), NULL, NULL) == 0)
    ;
  for (size_t i = 0; i < sizeof live; i++)
    if (live[i] != (unsigned char)(tag + i)) {
      fputs("switch.shared1k: live stack bytes were corrupted\n", stderr);
      abort();
    }
  return NULL;
}

static size_t shared1k_bytes_per_copy;

static double round_shared1k(void) {
  gev_coro *a = new_shared(bounce_with_live_bytes);
  gev_coro *b = new_shared(bounce_with_live_bytes);
  gev_coro_stats before, after;
  double t0, elapsed;
  if (gev_coro_switch(a, (void *)1, NULL) < 0 ||
      gev_coro_switch(b, (void *)2, NULL) < 0)
    bench_die("gev_coro_switch");
  gev_coro_get_stats(&before);
  t0 = bench_now_ns();
  for (int i = 0; i < SHARED1K_RESUMES / 2; i++)
    if (gev_coro_switch(a, NULL, NULL) < 0 ||
        gev_coro_switch(b, NULL, NULL) < 0)
      bench_die("gev_coro_switch");
  elapsed = bench_now_ns() - t0;
  gev_coro_get_stats(&after);
  if (after.shared_copies - before.shared_copies != 2 * SHARED1K_RESUMES) {
    fprintf(stderr,
            "switch.shared1k: expected a save and a restore per "
            "resume, counted %zu copies for %d resumes\n",
            after.shared_copies - before.shared_copies, SHARED1K_RESUMES);
    exit(1);
  }
  /* Each coroutine's saved buffer is exactly its live size. */
  shared1k_bytes_per_copy = after.shared_saved / 2;
  gev_coro_free(a);
  gev_coro_free(b);
  return elapsed / (2.0 * SHARED1K_RESUMES);
}

int main(void) {
  double gev = 0, same = 0, uc = 0, sh0 = 0, sh1k = 0, traced = 0;
  /* One untimed pass maps the stacks, the region and the scratch stack. */
  round_gev();
  round_same_site();
  round_shared0();
  round_shared1k();
  for (int r = 0; r < ROUNDS; r++) {
    bench_keep_min(&gev, round_gev());
    bench_keep_min(&traced, round_traced());
    bench_keep_min(&same, round_same_site());
    bench_keep_min(&uc, round_ucontext());
    bench_keep_min(&sh0, round_shared0());
    bench_keep_min(&sh1k, round_shared1k());
  }
  bench_print("switch.gev", gev, 2, "ns");
  bench_print("switch.gev.samesite", same, 2, "ns");
  bench_print("switch.ucontext", uc, 2, "ns");
  bench_print("switch.ratio", uc / gev, 1, "x");
  bench_print("switch.shared0", sh0, 2, "ns");
  bench_print("switch.shared1k", sh1k, 2, "ns");
  bench_print("switch.traced", traced, 2, "ns");
  fprintf(stderr,
          "switch: shared0/gev = %.2f; a copying shared resume = %.1f ns, "
          "%zu bytes saved and %zu restored\n",
          sh0 / gev, 2 * sh1k - sh0, shared1k_bytes_per_copy,
          shared1k_bytes_per_copy);
  if (gev_coro_thread_cleanup() < 0)
    bench_die("gev_coro_thread_cleanup");
  return 0;
}
