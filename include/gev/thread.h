/*
 * gev/thread.h — gev among OS threads: handles on hubs that other threads
 * may hold, callbacks run in another thread's hub, the threadpool, and
 * blocking calls run in it.
 *
 * Each thread has its own hub (gev/hub.h), and a hub is used only by its
 * own thread. Other threads reach it in three ways:
 *   - gev_run_callback_threadsafe() runs a function in the hub's thread;
 *   - setting an Event or AsyncResult, and releasing a Semaphore, Lock or
 *     RLock, from any thread (gev/sync.h, "Threads");
 *   - the threadpool: a greenlet hands a blocking function to a pool
 *     thread and parks until its result comes back; the hub runs on.
 * Underneath all three is one ev_async watcher per hub: another thread
 * appends to the hub's inbox under a lock and wakes its loop; the hub
 * runs what was posted in its own thread.
 *
 * A hub waiting for another thread. A greenlet that waits for a pool job
 * or for an object of another hub keeps its hub running (gev_run does
 * not return while a job it spawned is out). A wait that nothing in the
 * hub can end (the loop runs out of work while the main coroutine waits:
 * gev/hub.h's EDEADLK) fails only when the process has no other thread;
 * while other threads exist the hub keeps polling for them (checking
 * again twice a second), since one of them may set the Event it waits
 * for. A thread that exits is no reason to wait any more.
 */
#ifndef GEV_THREAD_H
#define GEV_THREAD_H

#include <stddef.h>
#include <sys/types.h>

#include "gev/hub.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Handles on hubs -------------------------------------------------- */

/* A reference to one hub that any thread may hold, copy (gev_hub_ref)
 * and release (gev_hub_unref). The handle outlives the hub: once the hub
 * is destroyed (gev_hub_destroy, or its thread's exit) the handle stays
 * valid, and posting to it fails with ESHUTDOWN. */
typedef struct gev_hub gev_hub;

/* A new reference to the calling thread's hub, created if needed. NULL
 * with ENOMEM. */
GEV_EXTERN gev_hub *gev_hub_current(void);
/* Another reference to h (returned; NULL for NULL). Any thread. */
GEV_EXTERN gev_hub *gev_hub_ref(gev_hub *h);
/* Drops a reference; the last one frees the handle. NULL does nothing.
 * Any thread. */
GEV_EXTERN void gev_hub_unref(gev_hub *h);
/* 1 while h's hub still takes callbacks, 0 once it was destroyed (or is
 * being destroyed), -1 with EINVAL for NULL. Any thread; the answer may be
 * stale by the time it is read, so a post still checks. */
GEV_EXTERN int gev_hub_alive(const gev_hub *h);
/* Non-zero when h is the calling thread's hub. */
GEV_EXTERN int gev_hub_is_current(const gev_hub *h);

/* Runs fn(arg) in h's thread, from its hub (as gev_run_callback: fn must
 * not block), soon: h's loop is woken at once. Callable from any thread,
 * h's own included, and from signal-free contexts only (it takes a lock).
 * Callbacks one thread posts to one hub run in posting order. A callback
 * that was accepted always runs, once: when h is being destroyed, in its
 * teardown. Returns 0, or -1: EINVAL (h or fn NULL), ENOMEM, ESHUTDOWN
 * (h's hub was destroyed or is being destroyed; fn will never run). */
GEV_EXTERN int gev_run_callback_threadsafe(gev_hub *h, gev_callback_fn fn,
                                           void *arg);

#ifdef __cplusplus
}
#endif
#endif
