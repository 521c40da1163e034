/*
 * Fork support: in a forked child, keep the hub (re-initialised) or drop
 * it. See gev/prefork.h for the two modes.
 *
 * Keeping: libev's ev_loop_fork() makes the loop rebuild, at its next
 * iteration, what the kernel shares across fork (the epoll set, the
 * eventfd or pipe that wakes it for signals and async watchers) and re-arm
 * every watcher. The c-ares channel's sockets are shared with the parent
 * too, and their io watchers are re-armed with the rest: left alone, the
 * child's loop could read answers meant for the parent. The resolver
 * notices a fork by itself (dns.c counts forks with pthread_atfork) but
 * only when it is next used, so reinit calls gev__dns_fork_child() at
 * once: the shared channel is closed (lookups the child inherited in
 * flight fail with ECANCELED) and the next lookup opens one of the child's
 * own. A child that had no resolver gets none.
 *
 * Dropping: see gev__hub_forget_after_fork() in hub.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "gev/prefork.h"
#include "hub/park.h"
#include "net/dns_internal.h"
#include "proc/signal_internal.h"

GEV_EXTERN int gev_fork_reinit(void) {
  gev__hub *h = gev__hub_peek();
  if (!h)
    return 0;
  if (gev_in_hub()) {
    errno = EPERM;
    return -1;
  }
  ev_loop_fork(gev__hub_evloop(h));
  gev__dns_fork_child();
  return 0;
}

GEV_EXTERN int gev_fork_discard(void) {
  if (!gev__hub_peek())
    return 0;
  if (gev_coro_current() != gev_coro_main()) {
    errno = EPERM;
    return -1;
  }
  gev__signal_forget_all();
  return gev__hub_forget_after_fork();
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
  pid = fork();
  if (pid != 0)
    return pid;
  if ((mode == GEV_FORK_KEEP ? gev_fork_reinit() : gev_fork_discard()) < 0) {
    gev__log(GEV_LOG_ERROR, "gev: after fork: %s", strerror(errno));
    _exit(127);
  }
  return 0;
}
