/*
 * Fork support: in a forked child, keep the hub (re-initialised) or drop
 * it. See gev/prefork.h for the two modes.
 *
 * Keeping: libev's ev_loop_fork() makes the loop rebuild, at its next
 * iteration, what the kernel shares across fork (the epoll set, the
 * eventfd or pipe that wakes it for signals and async watchers) and re-arm
 * every watcher. The c-ares channel's sockets are shared with the parent
 * too, so a lookup in one process could read the other's answers; the
 * channel is closed here so the next lookup opens a fresh one. dns.c has
 * no fork hook, so this goes through the public configuration calls, which
 * close the channel when settings change: the servers in use are read and
 * set again. With lookups in flight at the time of fork the resolver
 * refuses (EBUSY) and keeps its channel; those lookups finish on the shared
 * sockets.
 *
 * Dropping: see gev__hub_forget_after_fork() in hub.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "gev/dns.h"
#include "gev/prefork.h"
#include "hub/park.h"
#include "hub/signal_internal.h"

/* Makes the resolver open a new channel at its next lookup. */
static void resolver_reopen(void) {
  char servers[1024];
  int saved = errno;
  if (gev_dns_get_servers(servers, sizeof servers) == 0)
    gev_dns_set_servers(servers); /* EBUSY: lookups in flight, see above */
  errno = saved;
}

GEV_EXTERN int gev_fork_reinit(void) {
  gev__hub *h = gev__hub_peek();
  if (!h)
    return 0;
  if (gev_in_hub()) {
    errno = EPERM;
    return -1;
  }
  ev_loop_fork(gev__hub_evloop(h));
  resolver_reopen();
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
    fprintf(stderr, "gev: after fork: %s\n", strerror(errno));
    _exit(127);
  }
  return 0;
}
