/*
 * Internal: how other threads reach a hub.
 *
 * A hub belongs to its thread: its loop, its queues and every object it
 * owns are touched by that thread only. Another thread reaches it by
 * posting a message to the hub's inbox; the hub runs the message in its
 * own thread, from an ev_async watcher. Nothing else crosses threads.
 *
 * The inbox sits in the hub's handle (struct gev_hub, public as an opaque
 * gev_hub in gev/thread.h), a small heap object that outlives the hub: it
 * holds the lock, the message list and the async watcher, and is
 * reference-counted, so a thread may keep a handle after the hub is gone
 * and posting to it then fails with ESHUTDOWN. The hub closes its inbox
 * when it is torn down, under the lock, before its loop goes: no other
 * thread ever touches a destroyed loop.
 *
 * Rules of a message:
 *   - run(m, 0) is called exactly once for every message a post accepted,
 *     in the hub's thread (from the async watcher, or while the hub is
 *     torn down), in posting order per poster; it must not block, and it
 *     owns m from then on;
 *   - run(m, EIDRM) instead when the sync object m->about was destroyed
 *     before the message ran (gev__xhub_purge), and run(m, ESHUTDOWN) in a
 *     forked child that drops the parent's hub: m is only released then;
 *   - a post that fails never calls run.
 *
 * The registry of hubs (registry.c) maps a hub's id (gev__hub_id, never
 * reused) to its handle while the hub lives, so that a sync object, which
 * records only the id of its hub, can be reached from any thread.
 *
 * Keeping the hub alive. The async watcher does not count as work of the
 * loop by itself: a hub with nothing else to do still runs out of work
 * (gev_run returns). A hub that waits for another thread's answer (a
 * threadpool job, a wait on an object of another hub) says so with
 * gev__hub_expect(+1 ... -1); while anything is expected the loop keeps
 * polling for messages. And when the main coroutine waits on something
 * the loop cannot deliver (it would fail with EDEADLK), the hub first
 * checks whether the process has other threads, which might post to it,
 * or whether a message waits in its inbox (its poster may have exited
 * since); if so it keeps polling, and checks again every
 * GEV__XHUB_RECHECK seconds.
 */
#ifndef GEV_SRC_HUB_XTHREAD_H
#define GEV_SRC_HUB_XTHREAD_H

#include <pthread.h>

#include "hub/hub_internal.h"

/* How often a hub that would report EDEADLK checks again for other
 * threads (seconds). */
#define GEV__XHUB_RECHECK 0.5

typedef struct gev__xmsg gev__xmsg;
struct gev__xmsg {
  gev__xmsg *next;                    /* private: the inbox's link */
  void (*run)(gev__xmsg *m, int err); /* see the rules above */
  const void *about; /* rw: the sync object it concerns, or NULL */
};

/* The calling thread's hub's handle (the hub is created if needed);
 * borrowed. NULL with ENOMEM. */
gev_hub *gev__xhub_self(void);
/* The handle of hub h; borrowed. */
gev_hub *gev__xhub_of(gev__hub *h);

/* A new reference to the handle of the live hub with that id, or NULL
 * (the hub is gone, or never had that id). */
gev_hub *gev__xhub_find(unsigned long long hub_id);
gev_hub *gev__xhub_ref(gev_hub *x);
void gev__xhub_unref(gev_hub *x);

/* Posts m to x's hub. 0, or -1 with ESHUTDOWN (the hub is closed). */
int gev__xhub_post(gev_hub *x, gev__xmsg *m);

/* In h's thread: runs run(m, EIDRM) for every message still queued for h
 * about obj (gev__sync_destroy calls it). */
void gev__xhub_purge(gev__hub *h, const void *obj);

/* In h's thread: counts delta (+1 / -1) answers h waits for from other
 * threads; while the count is positive the loop does not run out of
 * work. */
void gev__hub_expect(gev__hub *h, int delta);

/* Called by the hub's lifecycle (hub.c), in the hub's thread:
 *   open    when the hub is made (0, or -1 with ENOMEM);
 *   close   first thing of the teardown: later posts fail; messages
 *           already queued still run while the teardown drains the loop
 *           (gev__xhub_pending tells whether any is left);
 *   finish  once the loop is drained: stops the watcher, drops the hub's
 *           reference;
 *   forget  in a forked child dropping the hub (no message runs);
 *   exhausted  the loop ran out of work while the main coroutine waits
 *           outside gev_run: 1 if the hub keeps polling for other threads
 *           (see above), 0 if the wait should fail with EDEADLK. */
int gev__xhub_open(gev__hub *h);
void gev__xhub_close(gev__hub *h);
int gev__xhub_pending(gev__hub *h);
/* Non-zero once h's inbox is closed (h's thread only). */
int gev__xhub_closed(gev__hub *h);
void gev__xhub_finish(gev__hub *h);
void gev__xhub_forget(gev__hub *h);
int gev__xhub_exhausted(gev__hub *h);

/* Starts fn(arg) in a new thread of gev's own (a pool thread, a server
 * thread), joinable or detached. Such a thread blocks every signal except
 * the synchronous faults (SIGSEGV, SIGBUS, SIGILL, SIGFPE, so a stack
 * overflow is still reported): signals stay the program's threads'.
 * 0, or an error number as pthread_create returns (EAGAIN, ENOMEM). */
int gev__thread_spawn(pthread_t *tid, int detached, void *(*fn)(void *),
                      void *arg);

/* Proxies: the owning hub's side of waits of other hubs (xsync.c). A
 * proxy sits on the object's wait queue as a task; close() answers every
 * proxy still there with EXDEV. */
typedef struct gev__proxy gev__proxy;
void gev__proxies_close(gev__hub *h);
/* The teardown's end: forgets the proxies still listed. */
void gev__proxies_finish(gev__hub *h);
/* obj, of hub h, is being destroyed: its proxies leave it alone. */
void gev__xsync_obj_gone(gev__hub *h, const void *obj);

#endif
