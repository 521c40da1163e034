/*
 * Internal: what the prefork master (prefork_master.c, gunicorn's arbiter)
 * and a worker process (prefork_worker.c) share. A worker talks to the
 * master over a SOCK_DGRAM socket pair: one byte per datagram, '.' for a
 * heartbeat and 'R' when it retires at max_requests. Datagrams keep
 * messages whole, and MSG_NOSIGNAL keeps a worker whose master died from
 * SIGPIPE. A worker that cannot start exits with EXIT_BOOT_FAILED, which
 * the master counts towards its boot-failure backoff.
 */
#ifndef GEV_SRC_PROC_PREFORK_INTERNAL_H
#define GEV_SRC_PROC_PREFORK_INTERNAL_H

#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "gev/prefork.h"

#define GEV__PREFORK_MSG_BEAT '.'
#define GEV__PREFORK_MSG_RETIRING 'R'
#define GEV__PREFORK_EXIT_BOOT_FAILED 3
#define GEV__PREFORK_BEAT_MAX 1.0 /* s: the longest heartbeat interval */

/* What a new worker process is handed by the master that forked it. */
typedef struct gev__worker_start {
  const gev_prefork_opts *opts; /* the master's, defaults applied */
  pid_t master_pid;
  int listen_fd;               /* the shared listener; -1 with reuseport */
  const struct sockaddr *addr; /* reuseport: where to bind its own */
  socklen_t addrlen;
  int beat_fd;          /* its end of the heartbeat socket pair */
  unsigned serial;      /* 1 for the master's first worker, then 2 ... */
  const sigset_t *mask; /* the signal mask to run the worker with */
} gev__worker_start;

/* Runs a worker in a process the master has just forked, once it has
 * dropped the master's signal handlers and descriptors: drops the hub it
 * inherited, opens its own listener with reuseport, runs the worker
 * function and exits with its status (EXIT_BOOT_FAILED if it could not
 * start). */
void gev__prefork_worker_run(const gev__worker_start *ws)
    __attribute__((noreturn));

#endif
