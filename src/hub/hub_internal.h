/*
 * Internal to src/hub: the hub, its callback queue, tasks and greenlets.
 * Other layers use park.h.
 */
#ifndef GEV_SRC_HUB_INTERNAL_H
#define GEV_SRC_HUB_INTERNAL_H

#include <ev.h>
#include <stdarg.h>

#include "coro/coro_ext.h"
#include "coro/log_internal.h"
#include "gev/thread.h"
#include "hub/deadlines.h"
#include "hub/park.h"

/* A node of the hub's callback queue (FIFO, intrusive). */
typedef struct gev__cb gev__cb;
struct gev__cb {
  gev__cb *next;            /* private: queue link */
  void (*run)(gev__cb *cb); /* called from the hub */
  /* Optional, for a callback whose work is a switch into a coroutine (a
   * parked task's resume, a greenlet's start): called instead of run by a
   * coroutine that leaves on the hub's behalf (gev__hub_take_switch), with
   * cb dequeued. Returns 1 after doing all run would do before its switch,
   * with the coroutine to switch to in *to (a switch into it cannot fail)
   * and the value in *value; 0 when run would switch to nothing (a stale
   * resume), cb being done; -1, having changed nothing, to leave cb to the
   * hub (it goes back to the head of the queue). */
  int (*take)(gev__cb *cb, gev_coro **to, void **value);
  unsigned char queued; /* ro: on the queue now */
};

/* Per-coroutine blocking state; see park.h. Always on the heap. A task
 * hangs from its coroutine's slot for the layer above (coro_ext.h). */
struct gev__task {
  gev__cb resume;         /* queued by gev__wake to switch back in */
  gev_coro *coro;         /* ro */
  gev__hub *hub;          /* ro */
  gev_greenlet *greenlet; /* ro: NULL for the main or a plain coroutine */
  const char *what;       /* ro: what it is parked on, NULL if running */
  void *wake_value;
  int wake_err;
  unsigned park_gen;         /* private: counts parks; see park_current */
  unsigned resume_gen;       /* private: the park the queued resume is for */
  unsigned char parked;      /* inside gev__park */
  unsigned char woken;       /* this park's wake has been delivered */
  unsigned char killed;      /* sticky cancellation */
  unsigned char scope_fired; /* the deadline that fired was a scope's */
  unsigned char orphan;      /* plain task whose coroutine is gone; its
                                queued resume frees it */
  gev__task *plain_prev, *plain_next; /* private: hub->plain_tasks */
  gev__waitq *wq;                     /* wait queue it sits on, or NULL */
  gev__task *wq_prev, *wq_next;
  gev__dl_place dl;         /* armed while parked with a deadline */
  double deadline_at;       /* when it is due, on gev_monotonic()'s clock */
  double parked_at;         /* ro: the hub's turn_time when it parked */
  gev_timeout *scopes;      /* innermost first */
  gev_timeout *armed_scope; /* scope whose deadline is armed, or NULL */
};

struct gev_timeout {
  gev__task *task;
  gev_timeout *next;
  double deadline; /* gev_monotonic() based; HUGE_VAL for never */
  int expired;
};

/* The hub layer's per-thread block, hung from the coroutine layer's
 * thread root (head->upper); libgev has no other thread-local variable.
 * Created with the thread's first hub, freed when the thread exits. */
struct gev__hthread {
  gev__hthread_head head;  /* first: the thread's hub (park.h) */
  gev_greenlet *free_head; /* greenlet.c's recycled objects, */
  gev_greenlet *free_tail; /* reused oldest first */
  size_t nfree_greenlets;
  void *slot[GEV__NSLOTS];              /* see park.h */
  gev__hub_state *states[GEV__NSTATES]; /* see park.h */
  void (*slot_release[GEV__NSLOTS])(void *);
};

/* The calling thread's hub layer block if it exists. */
static inline gev__hthread *gev__hthread_peek(void) {
  gev__thread_head *r = gev__thread_root;
  return r ? (gev__hthread *)r->upper : NULL;
}

struct gev__hub {
  /* Read by the blocking monitor's thread (relaxed atomics) and by
   * debuggers; written by the hub's thread only. */
  unsigned long turns; /* ro: hub turns so far (see hub_main) */
  double turn_time;    /* ro: gev_monotonic() at the start of this turn */
  int in_poll;         /* inside a blocking ev_run */
  struct ev_loop *loop;
  gev_coro *coro;
  gev__thread_head *thr; /* ro: the thread's coroutine state */
  gev__hthread *ht;      /* ro: the thread's hub layer block */
  unsigned long long id; /* ro: never reused (see gev__hub_id) */
  gev__task main_task;   /* the thread's main coroutine's task */
  gev__cb *head, *tail;  /* callback queue */
  size_t ncallbacks;
  int draining;            /* inside a callback pass (drain) */
  int pass_over;           /* this pass has used its time budget */
  unsigned pass_n;         /* callbacks run in this pass */
  double pass_start;       /* when the pass's budget started counting */
  gev_greenlet *greenlets; /* every greenlet object alive, for run info */
  size_t ngreenlets, nrunning, nparked, nwatchers;
  unsigned long next_id;
  int running_until_idle;       /* main is in gev_run */
  int destroying;               /* gev_hub_destroy waits for greenlets */
  int stopping;                 /* the hub coroutine is being unwound */
  int is_default;               /* loop is libev's default loop */
  struct gev__fdwaits *fdwaits; /* fdwait.c's state, NULL until used */
  gev__deadlines *deadlines;    /* parked tasks' deadlines (deadlines.c) */
  gev__task *plain_tasks;       /* tasks of plain coroutines, to detach */
  double destroy_grace_end;     /* gev_monotonic() time killed greenlets
                                   have to finish in gev_hub_destroy */
  /* The process-wide list of hubs (registry.c), for the monitor, for
   * debuggers and for other threads (xthread.h); under the registry's
   * lock. */
  gev__hub *reg_prev, *reg_next;
  int tid;              /* ro: the kernel's id of the hub's thread */
  unsigned char listed; /* on the list */
  /* The monitor thread's own view of the hub (monitor.c). */
  unsigned char mon_reported; /* this stall has been reported */
  unsigned long mon_turns;    /* turns when it last looked */
  double mon_since;           /* since when turns has not moved */
  gev_hub *xhub;              /* its handle and inbox (xthread.h); set
                                 before it is listed, cleared under the
                                 registry's lock */
  struct gev__proxy *proxies; /* waits of other hubs on its objects */
};

struct gev_greenlet {
  gev__task task;            /* first: the greenlet's own task */
  gev__cb start;             /* starts the greenlet */
  gev__cb done;              /* runs links once finished */
  gev__hub *hub;             /* ro */
  unsigned long long hub_id; /* ro: gev__hub_id(hub), for identity checks */
  unsigned magic;            /* private: live or released (see greenlet.c) */
  gev_coro *coro;            /* NULL once finished and released */
  gev_greenlet_fn fn;
  void *arg;
  void *value;
  int err;
  char *errmsg;
  char *name;
  unsigned long id;
  unsigned refs;
  unsigned char started, ready, killed, reported, alive_ref, detached;
  unsigned char scheduled; /* a start is queued or timed (start/_later) */
  int fail_err;            /* set by gev_fail while running */
  struct gev__link *links; /* in link order */
  gev__waitq joiners;
  ev_timer later;            /* spawn_later */
  double later_at;           /* when to start, on gev_monotonic()'s clock */
  gev_greenlet *prev, *next; /* hub->greenlets */
  struct gev__link {
    struct gev__link *next;
    gev_link_fn fn;
    void *arg;
    int flags; /* GEV__LINK_OWN_NODE, GEV__LINK_QUIET */
    int when;  /* GEV__LINK_ALWAYS, _VALUE or _EXCEPTION */
  } own_link;  /* used by one GEV__LINK_OWN_NODE link at a time */
  unsigned char own_link_used;
};

/* hub.c */
/* Appends cb to the hub's callback queue (gevent's run_callback): it runs
 * from the hub in FIFO order, in the drain pass under way if there is one.
 * (Named apart from the public gev_queue, which is unrelated.) */
void gev__run_soon(gev__hub *h, gev__cb *cb);
/* Starts the one-shot timer w (initialised, inactive) to fire seconds
 * from now, refreshing libev's cached time first, and counts it in
 * nwatchers (its callback must uncount it). */
void gev__timer_start(gev__hub *h, ev_timer *w, double seconds);
gev__task *gev__task_of(gev_coro *c);
void gev__task_init(gev__task *t, gev__hub *h, gev_coro *c);
/* As gev__task_init, for a task in memory already zeroed. */
void gev__task_init_zeroed(gev__task *t, gev__hub *h, gev_coro *c);
void gev__task_fini(gev__task *t);
void gev__hub_count_greenlet(gev__hub *h, gev_greenlet *g, int add);
/* The value the hub resumes a parked task with (see park_current). */
extern const char gev__resume_token;
#define GEV__RESUME_TOKEN ((void *)&gev__resume_token)

void gev__task_resume_failed(gev__task *t);

/* Whether t's queued resume is for its current park: one left over from a
 * park that ended otherwise (a throw, an invalid switch) is stale. */
static inline int gev__task_resume_due(const gev__task *t) {
  return t->parked && t->woken && t->resume_gen == t->park_gen;
}

/* Hub: switches into t for the wake its resume was queued for. A stale
 * resume is dropped; one that cannot switch for lack of memory is queued
 * again. */
static inline void gev__task_resume(gev__task *t) {
  if (!gev__task_resume_due(t))
    return;
  if (__builtin_expect(gev__coro_switch_to(t->coro, GEV__RESUME_TOKEN, NULL) ==
                           GEV__SWITCH_FAILED,
                       0))
    gev__task_resume_failed(t);
}

/* The take of a task's resume (see gev__cb), greenlets' included: 0 if
 * stale, -1 if the switch could fail (left to the hub, which handles
 * that), else 1. */
int gev__task_take(gev__cb *cb, gev_coro **to, void **value);

/* Switching on the hub's behalf. When the running coroutine parks, or a
 * greenlet ends, during a callback pass of the hub, and the callbacks at
 * the head of the queue are switches into coroutines (resumes, greenlet
 * starts), the hub would do nothing but those switches next. The coroutine
 * that leaves does them itself: this runs the head's take (see gev__cb),
 * dropping stale ones, and returns 1 with the coroutine to switch to, or
 * 0 when the hub must run (the head is another kind of callback, the queue
 * is empty, the pass has used its time budget, the hub stops). Order and
 * budget are the hub's: the switch is counted in its pass, and only a
 * callback at the head of the queue is taken, so parked greenlets are
 * still resumed in wake order, after everything queued before. It saves
 * the switch into the hub and back. */
int gev__hub_take_switch(gev__hub *h, gev_coro **to, void **value);
int gev__yield(void);

/* Forgets the calling thread's hub after fork (the hub's discard hook,
 * hooks.c): releases the stacks and control blocks of its greenlets and
 * of the hub coroutine without running them, destroys its loop, frees the
 * hub. The next gev call makes a new hub. Must be called from the
 * thread's main coroutine. 0, or -1 with EPERM (not the main coroutine).
 * 0 when there is no hub. */
int gev__hub_forget_after_fork(void);

/* registry.c: the list of every hub of the process (see registry.c). */
void gev__registry_add(gev__hub *h);
void gev__registry_remove(gev__hub *h);
void gev__registry_lock(void);
void gev__registry_unlock(void);
gev__hub *gev__registry_first(void); /* under the lock */
/* Reads a small file (of /proc) into buf, NUL-terminated: its length, or
 * -1 with errno. */
ssize_t gev__read_proc(const char *path, char *buf, size_t size);

/* monitor.c: a hub was created (starts the monitor the environment asks
 * for, once per process). */
void gev__monitor_hub_created(void);
/* Runs fn once, in the thread that creates the process's first hub, right
 * after (the dump signal of the environment, src/proc/dump.c). Only the
 * first registration counts; call before any hub exists. */
void gev__on_first_hub(void (*fn)(void));

/* runinfo.c: a greenlet's state in words ("parked", "running" ...). */
const char *gev__greenlet_state(const gev_greenlet *g);

/* wait.c: gev_wait_watcher's body for a vetted watcher, started as is on
 * the hub's loop. */
int gev__wait_raw_watcher(void *watcher, gev_watcher_kind kind, double timeout);

/* greenlet.c */
/* When a link runs: always, only on success, only on failure. */
enum { GEV__LINK_ALWAYS, GEV__LINK_VALUE, GEV__LINK_EXCEPTION };
/* 0, or -1 with EINVAL (NULL) or EXDEV (another thread's); aborts on a
 * released handle. */
int gev__greenlet_check(const gev_greenlet *g);
/* Ready, and no link of it left to run: what waiters wait for. */
int gev__greenlet_finished(const gev_greenlet *g);
/* Kills g without waiting (see gev_greenlet_kill). */
void gev__greenlet_kill_now(gev_greenlet *g);
/* flags of gev__greenlet_link: */
#define GEV__LINK_OWN_NODE 1 /* may use the node embedded in the greenlet */
#define GEV__LINK_QUIET 2    /* bookkeeping (see gev__greenlet_link_quiet) */
int gev__greenlet_link(gev_greenlet *g, gev_link_fn fn, void *arg, int flags);
void gev__greenlet_kill_all(gev__hub *h);
void gev__greenlet_detach_all(gev__hub *h);
void gev__greenlet_free_links(gev_greenlet *g);
void gev__greenlet_release_memory(gev_greenlet *g);
void gev__greenlet_free_cache(gev__hthread *ht);
void gev__greenlet_abandon(gev_greenlet *g);
/* Runs fn(arg) in the running coroutine as the body of a greenlet would
 * run: a gev_fail() inside it makes *err its error (and the value NULL)
 * instead of marking the caller's greenlet failed; ECANCELED counts as
 * success, as for a greenlet. With msg, *msg gets the failure's message
 * (heap, the caller's; NULL if none). Returns fn's value. */
void *gev__greenlet_run_inline(gev_greenlet_fn fn, void *arg, int *err,
                               char **msg);

/* threadpool.c: gev_fail from a pool job (not in a greenlet): records
 * err and the message as the job's error. 1 if the thread runs a job. */
int gev__job_fail(int err, const char *fmt, va_list ap);

/* timeout.c */
double gev__scopes_deadline(gev__task *t, gev_timeout **which);
int gev__scopes_expired(gev__task *t);
void gev__scopes_drop(gev__task *t);

#endif
