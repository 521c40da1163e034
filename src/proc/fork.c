/*
 * Fork support: in a forked child, keep the hub (re-initialised) or drop
 * it. See gev/prefork.h for the two modes.
 *
 * What each subsystem does about a fork is its own business: the hub,
 * the resolver and the signal layer register fork hooks (hub/hooks.h),
 * and this file only runs them at the right moments, in layer order.
 *
 * Keeping: the hub's hook calls ev_loop_fork(), which makes the loop
 * rebuild, at its next iteration, what the kernel shares across fork (the
 * epoll set, the eventfd or pipe that wakes it for signals and async
 * watchers) and re-arm every watcher; the resolver's hook closes the
 * c-ares channel it shares with the parent (lookups the child inherited
 * in flight fail with ECANCELED; the next lookup opens a channel of the
 * child's own), so the child's loop never reads answers meant for the
 * parent.
 *
 * Dropping: the signal layer stops its watchers, then the hub forgets
 * itself (gev__hub_forget_after_fork in hub.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gev/prefork.h"
#include "hub/hooks.h"
#include "hub/park.h"

GEV_EXTERN int gev_fork_reinit(void) {
  if (!gev__hub_peek())
    return 0;
  if (gev_in_hub()) {
    errno = EPERM;
    return -1;
  }
  gev__fork_run_keep();
  return 0;
}

GEV_EXTERN int gev_fork_discard(void) {
  if (!gev__hub_peek())
    return 0;
  if (gev_coro_current() != gev_coro_main()) {
    errno = EPERM;
    return -1;
  }
  gev__fork_run_discard();
  return 0;
}

GEV_EXTERN pid_t gev_fork(gev_fork_mode mode) {
  pid_t pid;
  if (mode != GEV_FORK_KEEP && mode != GEV_FORK_DISCARD) {
    errno = EINVAL;
    return -1;
  }
  if (mode == GEV_FORK_DISCARD && gev_coro_current() != gev_coro_main()) {
    errno = EPERM;
    return -1;
  }
  if (mode == GEV_FORK_KEEP && gev_in_hub()) {
    errno = EPERM;
    return -1;
  }
  fflush(NULL); /* or buffered output would be written twice */
  gev__fork_run_prepare();
  pid = fork();
  if (pid != 0) {
    gev__fork_run_parent();
    return pid;
  }
  if ((mode == GEV_FORK_KEEP ? gev_fork_reinit() : gev_fork_discard()) < 0) {
    gev__log(GEV_LOG_ERROR, "gev: after fork: %s", strerror(errno));
    _exit(127);
  }
  return 0;
}
