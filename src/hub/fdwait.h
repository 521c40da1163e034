/*
 * Internal: waiting for fd readiness, the one mechanism behind both
 * gev_wait_read/write (raw fds) and the socket layer.
 *
 * A gev__fdwait holds, per direction (read 0, write 1), an ev_io watcher
 * and the one task parked on it; a second task that would park in the same
 * direction is refused with EBUSY ("concurrent object use", as gevent).
 * Sockets embed one; gev_wait_read/write use one per fd that the hub keeps
 * (allocated on the fd's first wait, freed with the hub), so a wait
 * allocates nothing.
 *
 * Two ways to end a wait:
 *   - lazy (sockets): the watcher stays active after the wait, but without
 *     holding the loop alive (ev_unref), so a handler that reads, does
 *     something else, and waits again costs no epoll_ctl at all. An idle
 *     watcher is stopped only when its fd turns ready while nobody waits
 *     (otherwise level-triggered epoll would report it every turn), or
 *     when the socket is closed. libev's own advice: keep io watchers
 *     active, stop them late. This is only safe because the owner stops
 *     the watchers (gev__fdwait_stop) before the fd is closed or handed
 *     away, which a socket always does;
 *   - eager (raw fds, whose closing gev never sees): the watcher is
 *     stopped after every wait and re-armed with ev_io_set, which makes
 *     libev register the fd anew, since it may name another file by then.
 *
 * Everything lives on the heap (the shared-stack rule), and the hub's loop
 * going away (gev_hub_destroy, a fork that discards the hub) stops every
 * watcher still active, so a socket that outlives its hub never touches
 * the dead loop.
 */
#ifndef GEV_SRC_HUB_FDWAIT_H
#define GEV_SRC_HUB_FDWAIT_H

#include <ev.h>

#include "hub/park.h"

enum { GEV__FD_READ = 0, GEV__FD_WRITE = 1 };

typedef struct gev__fdwait gev__fdwait;
struct gev__fdwait {
  ev_io io[2];              /* private: per direction; data points to this */
  gev__task *parked[2];     /* private: the task waiting per direction */
  unsigned char idle[2];    /* private: active, unreferenced, nobody waits */
  unsigned char lazy;       /* ro: see above */
  unsigned char linked;     /* private: on the hub's list of lazy waits */
  gev__hub *hub;            /* ro */
  gev__fdwait *prev, *next; /* private: the hub's list of lazy waits */
};

/* Sets fw up for fd on hub h, lazy or eager. 0, or -1 with ENOMEM. */
int gev__fdwait_init(gev__fdwait *fw, gev__hub *h, int fd, int lazy);

/* Parks t, the running task as vetted by gev__blocking_task(), until fw's
 * fd is ready in direction dir or timeout (< 0: none, 0: fails at once
 * with ETIMEDOUT) passes. Returns 0, or -1: EBUSY (another task waits in
 * that direction), the waker's error (EBADF from gev__fdwait_stop), and
 * the errors of gev__park_task. */
int gev__fdwait_wait(gev__fdwait *fw, int dir, gev__task *t, double timeout,
                     const char *what);

/* Stops both watchers and wakes the tasks parked on fw with err. Call it
 * before the fd is closed. fw may be waited on again after a new
 * gev__fdwait_init only. Idempotent. */
void gev__fdwait_stop(gev__fdwait *fw, int err);

/* The hub's wait for raw fd fd (eager), created on first use; NULL with
 * ENOMEM. */
gev__fdwait *gev__fdwait_for_fd(gev__hub *h, int fd);

#endif
