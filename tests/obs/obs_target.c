/* The program tests/obs/test_gdb.sh looks at with gdb: three greenlets
 * with dedicated stacks parked in three functions, each with a name, two
 * shared-mode ones (the second of which is left the shared region's
 * occupant, the first copied out), and the main coroutine parked in
 * gev_run. It lets any process trace it (the machine may restrict ptrace
 * to ancestors), prints "ready <pid> <id>..." with the coroutine ids of
 * the greenlets in alpha, beta, gamma, shared-1, shared-2 order, then
 * waits until killed (or 120 s).
 *
 * "obs_target switch" instead switches between two coroutines a few times
 * and exits: gdb steps through the switches there. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "gev.h"
#include "obs_common.h"

static unsigned long long ids[5];

static void *alpha(void *arg) {
  ids[0] = gev_coro_id(gev_coro_current());
  obs_park_in_alpha(120);
  return arg;
}
static void *beta(void *arg) {
  ids[1] = gev_coro_id(gev_coro_current());
  obs_park_in_beta(arg);
  return NULL;
}
static void *gamma_(void *arg) {
  ids[2] = gev_coro_id(gev_coro_current());
  obs_park_in_gamma(120);
  return arg;
}

static void *shared_one(void *arg) {
  ids[3 + (int)(intptr_t)arg] = gev_coro_id(gev_coro_current());
  obs_park_in_gamma(120);
  return NULL;
}

static void *announce(void *arg) {
  (void)arg;
  printf("ready %d %llu %llu %llu %llu %llu\n", (int)getpid(), ids[0], ids[1],
         ids[2], ids[3], ids[4]);
  fflush(stdout);
  return NULL;
}

static gev_coro *main_coro;

static void *bounce(void *arg) {
  for (int i = 0; i < 20; i++)
    gev_coro_switch(main_coro, arg, NULL);
  return arg;
}

static int switch_only(void) {
  gev_coro *c;
  main_coro = gev_coro_main();
  c = gev_coro_new(bounce, NULL, NULL);
  while (!gev_coro_dead(c))
    gev_coro_switch(c, NULL, NULL);
  gev_coro_free(c);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "switch") == 0)
    return switch_only();
  gev_spawn_opts o = {.stack_mode = GEV_STACK_DEDICATED};
  gev_event *ev = gev_event_new();
  prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
  /* As the examples do; it also links the dump support, which reads
   * GEV_DUMP_SIGNAL, into this statically linked program. */
  gev_dump_on_signal(SIGUSR1);
  o.name = "in-alpha";
  gev_spawn_ex(&o, alpha, NULL);
  o.name = "in-beta";
  gev_spawn_ex(&o, beta, ev);
  o.name = "in-gamma";
  gev_spawn_ex(&o, gamma_, NULL);
  o.stack_mode = GEV_STACK_SHARED;
  o.name = "shared-1";
  gev_spawn_ex(&o, shared_one, (void *)0);
  o.name = "shared-2";
  gev_spawn_ex(&o, shared_one, (void *)1);
  o.stack_mode = GEV_STACK_DEDICATED;
  o.name = "announce";
  gev_spawn_ex(&o, announce, NULL);
  gev_run();
  return 0;
}
