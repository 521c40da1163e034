/*
 * Resident memory per parked coroutine and per parked greenlet.
 *
 *   mem.coro.dedicated      100,000 coroutines, each suspended one call deep
 *   mem.coro.shared         from its function (fn -> park_here -> switch to
 *                           main), in each stack mode: RSS growth / count.
 *   mem.greenlet.dedicated  100,000 greenlets each parked in gev_waiter_get
 *   mem.greenlet.shared     on its own waiter (the waiters in a heap array
 *                           allocated before the first reading).
 *   mem.greenlet.default.1m 1,000,000 greenlets parked the same way in the
 *                           default configuration (auto stack mode, no
 *                           setting changed, vm.max_map_count as the system
 *                           has it); .n says how many parked, and the
 *                           share on dedicated stacks goes to stderr.
 *
 * RSS comes from /proc/self/statm. Every figure is measured in a fresh child
 * process, forked before the parent touches gev, so one measurement's heap
 * and stacks cannot hide in another's. The growth includes everything a
 * parked coroutine costs: its control block, the committed pages of a
 * dedicated stack (or the heap copy of a shared one's live bytes) and, for
 * greenlets, the greenlet object with its task.
 *
 * Dedicated stacks need two memory mappings each (guard page + stack). When
 * vm.max_map_count cannot hold 100,000 of them (Linux's default cannot),
 * the explicitly dedicated measurements park as many as fit and print the
 * count as the .n figure next to the result.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "gev/hub.h"

enum {
  WANTED = 100000,
  WANTED_DEFAULT = 1000000,
  MAPS_SPARE = 1024, /* mappings left for malloc, libev and the loader */
};

/* ---- Measuring --------------------------------------------------------- */

static size_t rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size, resident;
  if (!f)
    bench_die("/proc/self/statm");
  if (fscanf(f, "%lu %lu", &size, &resident) != 2)
    bench_die("reading /proc/self/statm");
  fclose(f);
  return resident * (size_t)sysconf(_SC_PAGESIZE);
}

static long read_long(const char *path) {
  FILE *f = fopen(path, "r");
  long v = -1;
  if (f) {
    if (fscanf(f, "%ld", &v) != 1)
      v = -1;
    fclose(f);
  }
  return v;
}

static long maps_in_use(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  long n = 0;
  int ch;
  if (!f)
    bench_die("/proc/self/maps");
  while ((ch = getc(f)) != EOF)
    n += ch == '\n';
  fclose(f);
  return n;
}

/* How many coroutines of this mode can be parked at once: all WANTED in
 * shared mode; in dedicated mode as many stacks as the mapping limit
 * leaves room for. */
static size_t how_many(gev_stack_mode mode) {
  long max = read_long("/proc/sys/vm/max_map_count");
  long room;
  if (mode == GEV_STACK_DEFAULT)
    return WANTED_DEFAULT;
  if (mode == GEV_STACK_SHARED || max < 0)
    return WANTED;
  room = (max - maps_in_use() - MAPS_SPARE) / 2;
  if (room < 1)
    return 1;
  return room < WANTED ? (size_t)room : WANTED;
}

static const char *mode_name(gev_stack_mode mode) {
  switch (mode) {
  case GEV_STACK_SHARED:
    return "shared";
  case GEV_STACK_DEDICATED:
    return "dedicated";
  default:
    return "default.1m";
  }
}

/* Prints the figure and its count; the share of it that is saved stack
 * bytes (shared mode) goes to stderr, to tell stack depth from bookkeeping. */
static void print_result(const char *what, gev_stack_mode mode, size_t before,
                         size_t after, size_t n) {
  char name[64];
  double per = after > before ? (double)(after - before) / (double)n : 0;
  gev_coro_stats st;
  gev_coro_get_stats(&st);
  if (mode == GEV_STACK_SHARED)
    fprintf(stderr, "mem: %s.shared: %.0f of %.0f bytes are saved stack\n",
            what, (double)st.shared_saved / (double)n, per);
  snprintf(name, sizeof name, "mem.%s.%s", what, mode_name(mode));
  bench_print(name, per, 0, "bytes");
  snprintf(name, sizeof name, "mem.%s.%s.n", what, mode_name(mode));
  bench_print(name, (double)n, 0, what[0] == 'c' ? "coroutines" : "greenlets");
}

/* Memory from calloc may not be resident until written; touching it before
 * the first reading keeps the bookkeeping arrays out of the figure. */
static void *resident_calloc(size_t n, size_t size) {
  void *p = calloc(n, size);
  if (!p)
    bench_die("calloc");
  memset(p, 0, n * size);
  return p;
}

/* ---- Coroutines -------------------------------------------------------- */

static volatile unsigned long resumed;

/* The one call between the coroutine's function and its switch. */
__attribute__((noinline)) static void park_here(void) {
  if (gev_coro_switch(gev_coro_main(), NULL, NULL) < 0 && errno != GEV_EKILL)
    bench_die("gev_coro_switch");
  resumed++; /* work after the switch: the call cannot become a jump */
}

static void *parked_coro(void *arg) {
  (void)arg;
  park_here();
  return NULL;
}

/* Creates and starts one coroutine that parks; NULL when its stack could
 * not be mapped. */
static gev_coro *park_one(void) {
  gev_coro *c = gev_coro_new(parked_coro, NULL, NULL);
  if (!c)
    bench_die("gev_coro_new");
  if (gev_coro_switch(c, NULL, NULL) < 0) {
    if (errno != ENOMEM)
      bench_die("gev_coro_switch");
    gev_coro_free(c);
    return NULL;
  }
  return c;
}

static void measure_coros(gev_stack_mode mode) {
  size_t want = how_many(mode), n = 0, before;
  gev_coro **cs = resident_calloc(want, sizeof *cs);
  gev_coro_free(park_one()); /* region, scratch, first cached stack */
  before = rss_bytes();
  while (n < want && (cs[n] = park_one()))
    n++;
  print_result("coro", mode, before, rss_bytes(), n);
  for (size_t i = 0; i < n; i++)
    gev_coro_free(cs[i]);
  free(cs);
}

/* ---- Greenlets --------------------------------------------------------- */

static size_t on_dedicated;

static void *parked_greenlet(void *arg) {
  void *v;
  if (gev_coro_stack_mode(gev_coro_current()) == GEV_STACK_DEDICATED)
    on_dedicated++;
  if (gev_waiter_get(arg, &v) < 0)
    return gev_fail(errno, "gev_waiter_get");
  return v;
}

static gev_waiter *waiters;
static size_t nwaiters;

/* A hub callback: gev_waiter_switch may only be called from the hub. */
static void wake_all(void *arg) {
  (void)arg;
  for (size_t i = 0; i < nwaiters; i++)
    gev_waiter_switch(&waiters[i], &waiters[i]);
}

static void spawn_and_join_one(void) {
  gev_greenlet *g = gev_spawn(parked_greenlet, &waiters[0]);
  if (!g || gev_run_callback(wake_all, NULL) < 0)
    bench_die("gev_spawn");
  if (gev_greenlet_join(g, -1) < 0)
    bench_die("gev_greenlet_join");
  gev_greenlet_unref(g);
  gev_waiter_init(&waiters[0]);
}

static void check_parked(size_t n) {
  gev_hub_stats st;
  gev_hub_get_stats(&st);
  if (st.parked < n) {
    fprintf(stderr, "mem: only %zu of %zu greenlets parked\n", st.parked, n);
    exit(1);
  }
}

static void finish_greenlets(gev_greenlet **gs, size_t n) {
  if (gev_run_callback(wake_all, NULL) < 0)
    bench_die("gev_run_callback");
  if (gev_joinall(gs, n, -1, GEV_JOIN_RAISE_ERROR, 0) != (int)n)
    bench_die("gev_joinall");
  for (size_t i = 0; i < n; i++) {
    if (gev_greenlet_value(gs[i]) != &waiters[i]) {
      fputs("mem: a greenlet got another's value\n", stderr);
      exit(1);
    }
    gev_greenlet_unref(gs[i]);
  }
}

static void measure_greenlets(gev_stack_mode mode) {
  size_t n = how_many(mode), before;
  gev_greenlet **gs = resident_calloc(n, sizeof *gs);
  waiters = resident_calloc(n, sizeof *waiters);
  nwaiters = 1;
  for (size_t i = 0; i < n; i++)
    gev_waiter_init(&waiters[i]);
  spawn_and_join_one(); /* the hub, its stack, a cached greenlet stack */
  before = rss_bytes();
  for (size_t i = 0; i < n; i++)
    if (!(gs[i] = gev_spawn(parked_greenlet, &waiters[i])))
      bench_die("gev_spawn");
  if (gev_sleep(0) < 0) /* runs every start queued before it */
    bench_die("gev_sleep");
  check_parked(n);
  print_result("greenlet", mode, before, rss_bytes(), n);
  if (mode == GEV_STACK_DEFAULT)
    fprintf(stderr,
            "mem: greenlet.default.1m: %zu on dedicated stacks (auto "
            "limit %zu), the rest shared\n",
            on_dedicated - 1, gev_coro_auto_limit());
  nwaiters = n;
  finish_greenlets(gs, n);
  free(gs);
  free(waiters);
}

/* ---- One fresh process per measurement -------------------------------- */

static void cleanup(void) {
  gev_coro_stats st;
  if (gev_hub_destroy() < 0)
    bench_die("gev_hub_destroy");
  gev_coro_get_stats(&st);
  if (st.live != 0) {
    fprintf(stderr, "mem: %zu coroutines left alive\n", st.live);
    exit(1);
  }
  if (gev_coro_thread_cleanup() < 0)
    bench_die("gev_coro_thread_cleanup");
}

static int in_child(void (*measure)(gev_stack_mode), gev_stack_mode mode) {
  int status;
  pid_t pid = fork();
  if (pid < 0)
    bench_die("fork");
  if (pid == 0) {
    if (mode != GEV_STACK_DEFAULT && gev_coro_set_default_stack_mode(mode) < 0)
      bench_die("gev_coro_set_default_stack_mode");
    measure(mode);
    cleanup();
    exit(0);
  }
  if (waitpid(pid, &status, 0) < 0)
    bench_die("waitpid");
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int main(void) {
  int failed = 0;
  fflush(stdout);
  failed |= in_child(measure_coros, GEV_STACK_DEDICATED);
  failed |= in_child(measure_coros, GEV_STACK_SHARED);
  failed |= in_child(measure_greenlets, GEV_STACK_DEDICATED);
  failed |= in_child(measure_greenlets, GEV_STACK_SHARED);
  failed |= in_child(measure_greenlets, GEV_STACK_DEFAULT);
  return failed ? 1 : 0;
}
