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

/* ---- The threadpool (gevent.threadpool) ------------------------------ */

/*
 * A pool of OS threads that run blocking functions for greenlets. A
 * greenlet hands a job to the pool (gev_threadpool_spawn) and gets a
 * result handle back; waiting on it (gev_thread_result_get, or gev_wait
 * with gev_waitable_thread_result) parks the greenlet, never the hub,
 * which runs the other greenlets meanwhile. gev_threadpool_apply does both.
 *
 * Threads are started when jobs need them, up to the pool's size, and
 * retire after idle_timeout seconds without a job (default 5 s); jobs
 * beyond the size wait in a FIFO queue. The size may change at any time:
 * more threads start at once for queued jobs, surplus ones retire as they
 * finish their current job. Pool threads block every signal, so signals
 * go to the program's own threads.
 *
 * A job runs fn(arg) in a pool thread, where it may block as it likes.
 * It reports failure as a greenlet does: `return gev_fail(err, fmt, ...)`
 * makes err (> 0) and the message the job's error; otherwise what fn
 * returns is its value. A job may use gev in its thread (that thread then
 * has a hub of its own, torn down when the thread exits); a job that
 * waits for another job of the same pool can wait forever once every
 * thread of the pool does so, as with any pool.
 *
 * A result belongs to the hub of the thread that spawned the job: only
 * that thread waits on it (others get EXDEV), and its hub keeps running
 * while a job it spawned is out (gev_run does not return before the job
 * has finished). The completion comes back through the hub's inbox
 * (gev_run_callback_threadsafe's path).
 *
 * Lifetimes. A result is reference-counted: the spawner's handle is one
 * reference (gev_thread_result_unref it), and the job holds another until
 * it has finished. The result, and arg, stay valid until both are done:
 * a greenlet that stops waiting (killed, timed out) just lets go, and the
 * job finishes in its thread. A cleanup function (gev_threadpool_spawn_ex)
 * runs once then, with arg and the job's value (NULL if it failed or never
 * ran), in whichever thread lets go last: the place to free what arg and
 * the value hold when nobody may be left to take them. A value the waiter
 * took must not be freed by the cleanup too: arg can tell it.
 */
typedef struct gev_threadpool gev_threadpool;
typedef struct gev_thread_result gev_thread_result;
typedef void *(*gev_thread_fn)(void *arg);
typedef void (*gev_thread_cleanup_fn)(void *arg, void *value);

/* Seconds a pool thread waits for a job before it retires, by default. */
#define GEV_THREADPOOL_IDLE_TIMEOUT 5.0

/* A new pool of at most max_threads threads (none started yet). Any
 * thread. Errors: EINVAL (max_threads 0), ENOMEM. */
GEV_EXTERN gev_threadpool *gev_threadpool_new(size_t max_threads);

/* The process's default pool, made on first use with GEV_THREADPOOL_SIZE
 * threads (from the environment; default 10). The thread resolver and the
 * file helpers below use it. It is never freed; its threads retire when
 * idle. NULL with ENOMEM. A forked child gets a new default pool (the
 * parent's threads are not in the child). */
GEV_EXTERN gev_threadpool *gev_threadpool_default(void);

/* Changes the pool's size (>= 1): more threads start at once for queued
 * jobs; surplus threads retire when they finish their job. Any thread.
 * 0, or -1: EINVAL (NULL, 0), ESHUTDOWN (the pool is being freed). */
GEV_EXTERN int gev_threadpool_set_size(gev_threadpool *pool,
                                       size_t max_threads);
/* Seconds an idle thread waits for a job before it retires (< 0: never;
 * 0: at once). 0, or -1: EINVAL (NULL, NaN). */
GEV_EXTERN int gev_threadpool_set_idle_timeout(gev_threadpool *pool,
                                               double seconds);

typedef struct gev_threadpool_stats {
  size_t max_threads;           /* the size */
  size_t threads;               /* threads alive */
  size_t busy;                  /* threads running a job */
  size_t queued;                /* jobs waiting for a thread */
  unsigned long long completed; /* jobs finished since the pool was made */
} gev_threadpool_stats;
/* A snapshot of pool's counters (all zero for NULL). Any thread. */
GEV_EXTERN void gev_threadpool_get_stats(gev_threadpool *pool,
                                         gev_threadpool_stats *out);

/* Queues fn(arg) on pool (NULL: the default pool). Never blocks; callable
 * from any coroutine and from the hub. Returns a result handle the caller
 * owns, or NULL: EINVAL (fn NULL), ENOMEM, ESHUTDOWN (the pool is being
 * freed). */
GEV_EXTERN gev_thread_result *gev_threadpool_spawn(gev_threadpool *pool,
                                                   gev_thread_fn fn, void *arg);
/* As gev_threadpool_spawn, with a cleanup (may be NULL) that runs once
 * the job and every holder of the result are done (see "Lifetimes"). A
 * spawn that fails never calls it. */
GEV_EXTERN gev_thread_result *
gev_threadpool_spawn_ex(gev_threadpool *pool, gev_thread_fn fn, void *arg,
                        gev_thread_cleanup_fn cleanup);

/* Runs fn(arg) on pool (NULL: the default pool) and parks the caller
 * until it has finished (gevent's ThreadPool.apply). 0 with *value (value
 * may be NULL) when fn succeeded; -1 with errno = the job's error when it
 * failed (gev_fail); or -1: EINVAL, ENOMEM, ESHUTDOWN, and the
 * blocking-call errors of gev/hub.h (then the job still runs to its end
 * in its thread, and its value is dropped). Bound it with a gev_timeout
 * scope if needed. */
GEV_EXTERN int gev_threadpool_apply(gev_threadpool *pool, gev_thread_fn fn,
                                    void *arg, void **value);

/* Parks the caller until pool has no job queued or running (gevent's
 * ThreadPool.join), for up to timeout seconds. 0, or -1: EINVAL,
 * ESHUTDOWN, the blocking-call errors (ETIMEDOUT: "still busy"). */
GEV_EXTERN int gev_threadpool_join(gev_threadpool *pool, double timeout);

/* Flags of gev_threadpool_free. */
#define GEV_THREADPOOL_WAIT 0   /* queued jobs still run */
#define GEV_THREADPOOL_CANCEL 1 /* queued jobs end with ECANCELED unrun */

/* Stops and frees pool: later spawns fail with ESHUTDOWN; queued jobs run
 * (GEV_THREADPOOL_WAIT) or end at once with ECANCELED without running
 * (GEV_THREADPOOL_CANCEL); running jobs finish (a thread cannot be
 * interrupted). Parks the caller up to timeout seconds (0: not at all)
 * until every thread of the pool has exited. The pool's memory goes with
 * its last thread, so pool must not be used after the call, whatever it
 * returns. Returns 0 when no thread is left, or -1: ETIMEDOUT (threads
 * still finish their jobs; they free the pool when done), EINVAL (NULL,
 * the default pool, unknown flags), and the blocking-call errors. */
GEV_EXTERN int gev_threadpool_free(gev_threadpool *pool, int flags,
                                   double timeout);

/* ---- Results of pool jobs ----------------------------------------------- */

/* Waits up to timeout seconds for the job to finish. 0 with *value (value
 * may be NULL) if it succeeded; -1 with errno = its error (gev_fail, or
 * ECANCELED for a job cancelled before it ran) if it failed; or -1: EINVAL
 * (NULL), EXDEV (another thread's result), the blocking-call errors
 * (ETIMEDOUT: "not finished yet"). Getting again returns the same. */
GEV_EXTERN int gev_thread_result_get(gev_thread_result *r, double timeout,
                                     void **value);
/* Waits until the job has finished, whatever its outcome. 0, or -1:
 * EINVAL, EXDEV, the blocking-call errors (ETIMEDOUT: "not yet"). */
GEV_EXTERN int gev_thread_result_wait(gev_thread_result *r, double timeout);
/* 1 once the job has finished, 0 before, -1 with EINVAL. successful: 1
 * only for a job that finished without error. Any thread. */
GEV_EXTERN int gev_thread_result_ready(const gev_thread_result *r);
GEV_EXTERN int gev_thread_result_successful(const gev_thread_result *r);
/* The job's error (0: none or not finished) and its message (gev_fail's,
 * else strerror; NULL without an error), owned by r. Any thread, once
 * ready. */
GEV_EXTERN int gev_thread_result_error(const gev_thread_result *r);
GEV_EXTERN const char *gev_thread_result_errmsg(const gev_thread_result *r);
/* Takes a job that has not started off its queue: it finishes at once
 * with ECANCELED, without running. 0, or -1: EINVAL, EXDEV, EBUSY (it is
 * running or has finished). */
GEV_EXTERN int gev_thread_result_cancel(gev_thread_result *r);
/* Reference counting (any thread); unref of NULL does nothing. */
GEV_EXTERN gev_thread_result *gev_thread_result_ref(gev_thread_result *r);
GEV_EXTERN void gev_thread_result_unref(gev_thread_result *r);
/* For gev_wait / gev_iwait (gev/hub.h): ready when the job has finished;
 * failed (GEV_JOIN_RAISE_ERROR) when it finished with an error. An
 * iterator holds a reference. */
GEV_EXTERN gev_waitable gev_waitable_thread_result(gev_thread_result *r);

/* ---- Blocking calls through the default pool -------------------------- */

/*
 * Regular files never report "would block": read(2) on a slow disk or a
 * network filesystem stalls the whole thread, hub included. These run the
 * call in the default pool and park only the caller. They work on any fd,
 * but sockets and pipes are better served by gev/net.h. The data goes
 * through a buffer of the job's own, so a caller that is killed or times
 * out while the call runs leaves nothing behind that the thread could
 * still write into; a read or write moves at most GEV_FILE_IO_MAX bytes
 * per call (a short count, as read(2) may give). Returns as the call
 * (-1 with its errno), or -1 with ENOMEM, ESHUTDOWN, or a blocking-call
 * error (then the call may still complete in its thread; its outcome is
 * lost, and a write may have happened).
 */
#define GEV_FILE_IO_MAX (16u << 20)
GEV_EXTERN ssize_t gev_file_read(int fd, void *buf, size_t len);
GEV_EXTERN ssize_t gev_file_write(int fd, const void *buf, size_t len);
GEV_EXTERN ssize_t gev_file_pread(int fd, void *buf, size_t len, off_t offset);
GEV_EXTERN ssize_t gev_file_pwrite(int fd, const void *buf, size_t len,
                                   off_t offset);
GEV_EXTERN int gev_file_fsync(int fd);

#ifdef __cplusplus
}
#endif
#endif
