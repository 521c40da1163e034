/*
 * Internal: what gev_wait / gev_iwait (joinall.c) need from each kind of
 * object they can wait on.
 *
 * A gev_waitable (gev/hub.h) names an object and carries the ops of its
 * kind, set by the kind's constructor (gev_waitable_event, _socket ...).
 * Each kind implements the same four ops; the waiting code knows nothing
 * else about it, so a layer above the hub (sockets) adds a kind without
 * the hub knowing of it.
 *
 * One wait makes one heap entry per object. arm() starts watching: the
 * kind calls gev__wait_entry_fire(e, err, failed) exactly once when the
 * object turns ready (err 0) or is destroyed (err EIDRM); later calls are
 * ignored. The fire itself stops what the entry still watches with (its
 * rawlink is unlinked, its io watcher stopped), so disarm() is called only
 * for entries that have not fired when the wait ends. Neither may block.
 */
#ifndef GEV_SRC_HUB_WAITABLE_H
#define GEV_SRC_HUB_WAITABLE_H

#include <ev.h>

#include "gev/hub.h"
#include "hub/rawlink.h"

typedef struct gev__wait_entry gev__wait_entry;

struct gev__waitable_ops {
  /* 0 if w names a live object of this kind usable from this thread, else
   * -1 with errno (EINVAL, EXDEV, EBADF ...). */
  int (*check)(const gev_waitable *w);
  /* Non-zero if a wait on w would end at once. */
  int (*ready)(const gev_waitable *w);
  /* Starts watching for e->w. 0, or -1 with errno (ENOMEM). */
  int (*arm)(gev__wait_entry *e);
  /* Stops watching, if e has not fired. */
  void (*disarm)(gev__wait_entry *e);
  /* Optional: non-zero for a ready object that counts as failed (a
   * greenlet that failed: GEV_JOIN_RAISE_ERROR). */
  int (*failed)(const gev_waitable *w);
  /* Optional: keep the object's memory alive while a wait holds it (a
   * greenlet or socket reference), and let it go. */
  void (*hold)(const gev_waitable *w);
  void (*release)(const gev_waitable *w);
};

struct gev__wait_entry {
  gev__rawlink link;         /* rw: for kinds that watch through a rawlink */
  ev_io *io;                 /* rw: for kinds that watch an fd (heap) */
  const gev_waitable *w;     /* ro: the object (the wait's array) */
  struct gev__multiwait *m;  /* private */
  size_t index;              /* ro: its place in the caller's array */
  unsigned char armed;       /* private: arm() was called */
  unsigned char fired;       /* private: ready, or gone */
  unsigned char gone;        /* private: fired by the object's destruction */
  struct gev__proxy *xproxy; /* private: watching an object of another hub
                                (xsync.c) */
};

/* Reports that e's object turned ready (err 0) or went away (EIDRM);
 * failed marks a greenlet that failed (for GEV_JOIN_RAISE_ERROR). */
void gev__wait_entry_fire(gev__wait_entry *e, int err, int failed);

/* The ops of kinds that live in src/hub (sync.c defines the sync kinds'). */
extern const gev__waitable_ops gev__greenlet_waitable_ops;
extern const gev__waitable_ops gev__fd_waitable_ops;

/* Helpers for kinds that watch an fd: start an io watcher of e for fd and
 * events (GEV_WAIT_READ | GEV_WAIT_WRITE); it fires e once and stops.
 * 0, or -1 with ENOMEM. */
int gev__wait_entry_watch_fd(gev__wait_entry *e, int fd, int events);
void gev__wait_entry_unwatch_fd(gev__wait_entry *e);
/* poll(2) with timeout 0: non-zero if fd is ready for events (an error or
 * a hang-up counts as ready, since the next call on it returns at once). */
int gev__fd_ready_now(int fd, int events);

#endif
