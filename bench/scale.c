/*
 * Whether costs stay flat as the number of live greenlets grows.
 *
 *   scale.spawn.<n>    spawn + run + join + release of a trivial greenlet
 *                      (in batches of 1000, as bench/spawn) while n other
 *                      greenlets are alive, parked on an event: ns each.
 *   scale.wake.<n>     wake latency with n others parked: from
 *                      gev_event_set() in one greenlet to the greenlet that
 *                      waited on the event running (the setter then parks,
 *                      as it would in a server); ns each.
 *   scale.spawn.ratio  scale.spawn.1m / scale.spawn.1k; likewise
 *   scale.wake.ratio   for wake. Flat costs give 1.
 *   scale.timers.*     1,000,000 greenlets each sleep until a common start
 *                      plus a random 0-1 s: .lateness.median, .p99 and .max
 *                      in ms (how long after its deadline each greenlet
 *                      ran), .inversions (wake-ups that came after one with
 *                      a deadline later by more than 5 ms: 0 means
 *                      deadline order; each greenlet computes its timeout
 *                      from its deadline a moment before gev arms it, and
 *                      the OS may preempt it in between, for milliseconds
 *                      on a loaded machine, so closer ones may swap) and
 *                      .n.
 *   scale.timers.inorder.*  the same, but the deadlines grow with the
 *                      order of spawning (so of the greenlets' memory):
 *                      the same number of wake-ups in the same second,
 *                      each touching memory next to the previous one's.
 *                      Against scale.timers.*, what the random order costs:
 *                      each wake-up then reaches cold memory (the greenlet,
 *                      its coroutine, its saved stack, the allocator's
 *                      neighbours of what it frees) spread over the
 *                      million greenlets' gigabyte or so.
 *
 * n is 1k, 10k, 100k and 1m; everything runs in the default configuration
 * (auto stack mode), each n in a fresh child process forked before gev is
 * touched, so one measurement's memory cannot hide in another's. Timed
 * figures are the best of several rounds (a shared machine is noisy); the
 * timers' lateness is what it is, measured once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "gev/hub.h"
#include "gev/sync.h"

enum {
  BATCH = 1000,
  SPAWN_ROUNDS = 30,
  SPAWN_PER_ROUND = 10000,
  WAKE_ROUNDS = 30,
  WAKES_PER_ROUND = 5000,
  SLEEPERS = 1000000,
};

static const size_t sizes[] = {1000, 10000, 100000, 1000000};
static const char *const size_names[] = {"1k", "10k", "100k", "1m"};
#define NSIZES (sizeof sizes / sizeof sizes[0])

/* ---- The crowd: n greenlets parked on one event ------------------------ */

static gev_event *hold;

static void *parked(void *arg) {
  if (gev_event_wait(hold, -1) < 0)
    return gev_fail(errno, "gev_event_wait");
  return arg;
}

static gev_greenlet **crowd_start(size_t n) {
  gev_greenlet **gs = calloc(n, sizeof *gs);
  gev_hub_stats st;
  if (!gs || !(hold = gev_event_new()))
    bench_die("crowd");
  for (size_t i = 0; i < n; i++)
    if (!(gs[i] = gev_spawn(parked, NULL)))
      bench_die("gev_spawn");
  if (gev_sleep(0) < 0)
    bench_die("gev_sleep");
  gev_hub_get_stats(&st);
  if (st.parked != n) {
    fprintf(stderr, "scale: %zu of %zu greenlets parked\n", st.parked, n);
    exit(1);
  }
  return gs;
}

static void crowd_end(gev_greenlet **gs, size_t n) {
  if (gev_event_set(hold) < 0 ||
      gev_joinall(gs, n, -1, GEV_JOIN_RAISE_ERROR, 0) != (int)n)
    bench_die("crowd_end");
  for (size_t i = 0; i < n; i++)
    gev_greenlet_unref(gs[i]);
  free(gs);
  gev_event_free(hold);
}

/* ---- Spawn + join ------------------------------------------------------ */

__attribute__((noinline)) static void *trivial(void *arg) {
  return (void *)((uintptr_t)arg + 1);
}

static double spawn_round(void) {
  gev_greenlet *gs[BATCH];
  double t0 = bench_now_ns();
  for (int b = 0; b < SPAWN_PER_ROUND / BATCH; b++) {
    for (uintptr_t i = 0; i < BATCH; i++)
      if (!(gs[i] = gev_spawn(trivial, (void *)i)))
        bench_die("gev_spawn");
    if (gev_joinall(gs, BATCH, -1, 0, 0) != BATCH)
      bench_die("gev_joinall");
    for (uintptr_t i = 0; i < BATCH; i++) {
      if (gev_greenlet_value(gs[i]) != (void *)(i + 1)) {
        fputs("scale: a trivial greenlet returned the wrong value\n", stderr);
        exit(1);
      }
      gev_greenlet_unref(gs[i]);
    }
  }
  return (bench_now_ns() - t0) / SPAWN_PER_ROUND;
}

/* ---- Wake latency ------------------------------------------------------ */

static gev_event *go, *back;
static double set_at, latency_sum;
static int wakes_left;

/* The woken side: each time go is set, adds the time since the set and
 * answers on back. */
static void *wakee(void *arg) {
  (void)arg;
  while (wakes_left > 0) {
    if (gev_event_wait(go, -1) < 0)
      return gev_fail(errno, "wait go");
    latency_sum += bench_now_ns() - set_at;
    wakes_left--;
    gev_event_clear(go);
    gev_event_set(back);
  }
  return NULL;
}

static double wake_round(void) {
  gev_greenlet *w;
  latency_sum = 0;
  wakes_left = WAKES_PER_ROUND;
  if (!(w = gev_spawn(wakee, NULL)) || gev_sleep(0) < 0)
    bench_die("gev_spawn");
  for (int i = 0; i < WAKES_PER_ROUND; i++) {
    set_at = bench_now_ns();
    if (gev_event_set(go) < 0 || gev_event_wait(back, -1) < 0)
      bench_die("wake");
    gev_event_clear(back);
  }
  if (gev_greenlet_join(w, -1) < 0)
    bench_die("gev_greenlet_join");
  gev_greenlet_unref(w);
  return latency_sum / WAKES_PER_ROUND;
}

/* ---- One size, in a child ---------------------------------------------- */

typedef struct figures {
  double spawn, wake;
} figures;

static void measure_size(size_t n, figures *out) {
  gev_greenlet **gs = crowd_start(n);
  double spawn = 0, wake = 0;
  if (!(go = gev_event_new()) || !(back = gev_event_new()))
    bench_die("gev_event_new");
  spawn_round(); /* warm: the stack cache, the free lists */
  for (int r = 0; r < SPAWN_ROUNDS || r < WAKE_ROUNDS; r++) {
    if (r < SPAWN_ROUNDS)
      bench_keep_min(&spawn, spawn_round());
    if (r < WAKE_ROUNDS)
      bench_keep_min(&wake, wake_round());
  }
  gev_event_free(go);
  gev_event_free(back);
  crowd_end(gs, n);
  out->spawn = spawn;
  out->wake = wake;
}

/* Runs fn(arg, out) in a forked child and copies its figures back through
 * a pipe. */
static void in_child(void (*fn)(size_t, figures *), size_t arg, figures *out) {
  int fds[2], status;
  pid_t pid;
  if (pipe(fds) < 0)
    bench_die("pipe");
  fflush(stdout);
  if ((pid = fork()) < 0)
    bench_die("fork");
  if (pid == 0) {
    figures f;
    close(fds[0]);
    fn(arg, &f);
    if (gev_hub_destroy() < 0)
      bench_die("gev_hub_destroy");
    if (write(fds[1], &f, sizeof f) != (ssize_t)sizeof f)
      bench_die("write");
    _exit(0);
  }
  close(fds[1]);
  if (read(fds[0], out, sizeof *out) != (ssize_t)sizeof *out)
    memset(out, 0, sizeof *out);
  close(fds[0]);
  if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0) {
    fprintf(stderr, "scale: the measurement with %zu greenlets failed\n", arg);
    exit(1);
  }
}

/* ---- Timers: a million sleepers ---------------------------------------- */

static double start_at;       /* gev_monotonic() time all deadlines follow */
static double *deadlines;     /* per sleeper */
static double *lateness;      /* in wake order */
static double *woke_deadline; /* in wake order */
static size_t nwoken;
static int timers_in_order; /* deadlines in spawn order, not random */

static void *sleeper(void *arg) {
  size_t i = (size_t)(uintptr_t)arg;
  double deadline = start_at + deadlines[i];
  if (gev_sleep(deadline - gev_monotonic()) < 0)
    return gev_fail(errno, "gev_sleep");
  lateness[nwoken] = gev_monotonic() - deadline;
  woke_deadline[nwoken] = deadline;
  nwoken++;
  return NULL;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static const char *timers_name(void) {
  return timers_in_order ? "scale.timers.inorder" : "scale.timers";
}

static void measure_timers(size_t n, figures *out) {
  size_t inversions = 0;
  double latest = 0;
  deadlines = calloc(n, sizeof *deadlines);
  lateness = calloc(n, sizeof *lateness);
  woke_deadline = calloc(n, sizeof *woke_deadline);
  if (!deadlines || !lateness || !woke_deadline)
    bench_die("calloc");
  srandom(1);
  for (size_t i = 0; i < n; i++)
    deadlines[i] = timers_in_order
                       ? (double)i / (double)n
                       : (double)random() / ((double)RAND_MAX + 1.0);
  /* Two seconds to spawn and start them all before the first is due. */
  start_at = gev_monotonic() + 2.0;
  for (size_t i = 0; i < n; i++) {
    gev_greenlet *g = gev_spawn(sleeper, (void *)(uintptr_t)i);
    if (!g)
      bench_die("gev_spawn");
    gev_greenlet_unref(g);
  }
  fprintf(stderr, "scale: %.0f ms left to start when all were spawned\n",
          (start_at - gev_monotonic()) * 1e3);
  if (gev_sleep(0) < 0)
    bench_die("gev_sleep");
  fprintf(stderr, "scale: %.0f ms left when all were started\n",
          (start_at - gev_monotonic()) * 1e3);
  if (gev_run() < 0)
    bench_die("gev_run");
  if (gev_monotonic() < start_at)
    bench_die("the timers fired before their start");
  for (size_t i = 0; i < nwoken; i++) {
    if (woke_deadline[i] < latest - 5e-3)
      inversions++;
    else
      latest = woke_deadline[i];
  }
  qsort(lateness, nwoken, sizeof *lateness, cmp_double);
  printf("bench: %s.lateness.median %.3f ms\n", timers_name(),
         lateness[nwoken / 2] * 1e3);
  printf("bench: %s.lateness.p99 %.3f ms\n", timers_name(),
         lateness[nwoken * 99 / 100] * 1e3);
  printf("bench: %s.lateness.max %.3f ms\n", timers_name(),
         lateness[nwoken - 1] * 1e3);
  printf("bench: %s.inversions %zu wakeups\n", timers_name(), inversions);
  printf("bench: %s.n %zu greenlets\n", timers_name(), nwoken);
  fflush(stdout);
  free(deadlines);
  free(lateness);
  free(woke_deadline);
  out->spawn = out->wake = 0;
}

/* With an argument "timers" (or "sizes"), runs only that part. */
int main(int argc, char **argv) {
  figures f[NSIZES], unused;
  char name[64];
  const char *only = argc > 1 ? argv[1] : "";
  if (strcmp(only, "timers") == 0) {
    in_child(measure_timers, SLEEPERS, &unused);
    timers_in_order = 1;
    in_child(measure_timers, SLEEPERS, &unused);
    return 0;
  }
  for (size_t i = 0; i < NSIZES; i++) {
    in_child(measure_size, sizes[i], &f[i]);
    snprintf(name, sizeof name, "scale.spawn.%s", size_names[i]);
    bench_print(name, f[i].spawn, 1, "ns");
    snprintf(name, sizeof name, "scale.wake.%s", size_names[i]);
    bench_print(name, f[i].wake, 1, "ns");
  }
  bench_print("scale.spawn.ratio", f[NSIZES - 1].spawn / f[0].spawn, 2, "x");
  bench_print("scale.wake.ratio", f[NSIZES - 1].wake / f[0].wake, 2, "x");
  if (strcmp(only, "sizes") != 0) {
    in_child(measure_timers, SLEEPERS, &unused);
    timers_in_order = 1;
    in_child(measure_timers, SLEEPERS, &unused);
  }
  return 0;
}
