/*
 * Group and Pool: a set of greenlets that leave it by themselves when they
 * finish, and, for a Pool, a limit on how many run at once.
 *
 * Each member has a heap node holding the set's own reference to the
 * greenlet; the node is also the argument of the greenlet's link, so the
 * link removes it in O(1). A Pool's slots work like a semaphore: when a
 * member leaves and spawners are parked, the slot is handed to the first
 * of them (counted in reserved_ until it resumes), so no newcomer can take
 * it first; otherwise wait_available waiters are told a slot is free.
 *
 * If a member's link is already scheduled when the set lets go of it
 * (discard, destroy), gev_greenlet_unlink() finds nothing to remove; the
 * node is then left to the link, which sees it orphaned and only frees it.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "hub/hub_internal.h"
#include "hub/sync_priv.h"

typedef struct member {
  struct member *prev, *next;
  gev_pool *pool; /* NULL once the set let go of it (orphaned) */
  gev_greenlet *g;
} member;

static void pool_teardown(void *obj);
static GEV__SYNC_KIND(pool_kind, GEV__MAGIC_POOL, pool_teardown, NULL);

static int pool_check(const gev_pool *p) {
  return gev__sync_check(p, &pool_kind);
}

/* Parked joiners. */
static gev__waitq *joiners(gev_pool *p) { return gev__head_wq(p); }

/* ---- Membership ------------------------------------------------------ */

static void member_unlink(gev_pool *p, member *m) {
  if (m->prev)
    m->prev->next = m->next;
  else
    p->members_ = m->next;
  if (m->next)
    m->next->prev = m->prev;
  p->count_--;
}

static member *member_find(const gev_pool *p, const gev_greenlet *g) {
  for (member *m = p->members_; m; m = m->next)
    if (m->g == g)
      return m;
  return NULL;
}

/* A free slot goes to the first parked spawner, else wait_available
 * waiters hear of it. */
static void slot_pass_on(gev_pool *p) {
  if (!p->size_)
    return;
  if (gev__waitq_wake_one(gev__wq(&p->slot_waiters_), GEV__GRANTED, 0)) {
    p->reserved_++;
    return;
  }
  gev__waitq_wake_all(gev__wq(&p->avail_waiters_), GEV__GRANTED, 0);
}

static void member_left(gev_pool *p) {
  slot_pass_on(p);
  if (p->count_ == 0)
    gev__waitq_wake_all(joiners(p), GEV__GRANTED, 0);
}

/* The link every member carries: runs in the hub when it finishes. */
static void member_done(gev_greenlet *g, void *arg) {
  member *m = arg;
  gev_pool *p = m->pool;
  if (p) {
    member_unlink(p, m);
    member_left(p);
  }
  gev_greenlet_unref(m->g);
  free(m);
}

/* Lets go of m: removes its link if it has not been scheduled yet, else
 * leaves m to the link as an orphan. */
static void member_release(gev_pool *p, member *m) {
  member_unlink(p, m);
  if (gev_greenlet_unlink(m->g, member_done, m) == 0) {
    gev_greenlet_unref(m->g);
    free(m);
  } else {
    m->pool = NULL;
  }
}

static int member_add(gev_pool *p, gev_greenlet *g) {
  member *m = malloc(sizeof *m);
  if (!m) {
    errno = ENOMEM;
    return -1;
  }
  *m = (member){.next = p->members_, .pool = p, .g = g};
  if (gev__greenlet_link_quiet(g, member_done, m) < 0) {
    free(m);
    return -1;
  }
  gev_greenlet_ref(g);
  if (m->next)
    m->next->prev = m;
  p->members_ = m;
  p->count_++;
  return 0;
}

/* ---- Life cycle -------------------------------------------------------- */

int gev_pool_init(gev_pool *p, size_t size) {
  if (gev__sync_setup(p, sizeof *p, &pool_kind) < 0)
    return -1;
  p->size_ = size;
  return 0;
}

gev_pool *gev_pool_new(size_t size) {
  gev_pool *p = gev__sync_alloc(sizeof *p);
  return gev__sync_made(p, p ? gev_pool_init(p, size) : -1);
}

gev_group *gev_group_new(void) { return gev_pool_new(0); }

/* Destroy, after the joiners were woken: let go of the members (they run
 * on) and wake the spawners. */
static void pool_teardown(void *obj) {
  gev_pool *p = obj;
  while (p->members_)
    member_release(p, p->members_);
  gev__sync_wake_all_err(&p->slot_waiters_, EIDRM);
  gev__sync_wake_all_err(&p->avail_waiters_, EIDRM);
}

void gev_pool_destroy(gev_pool *p) { gev__sync_destroy(p, &pool_kind); }

void gev_pool_free(gev_pool *p) { gev__sync_free(p, &pool_kind); }

/* ---- Slots ------------------------------------------------------------- */

static size_t free_slots(const gev_pool *p) {
  size_t used = p->count_ + p->reserved_;
  return used < p->size_ ? p->size_ - used : 0;
}

/* Gets a slot for one more member, parking (FIFO) while the pool is full.
 * On success the caller must fill the slot or pass it on. */
static int slot_acquire(gev_pool *p, double timeout, const char *what) {
  if (!p->size_)
    return 0;
  if (free_slots(p) > 0 && gev__wq_len(&p->slot_waiters_) == 0)
    return 0;
  if (timeout == 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  if (gev__waitq_wait(gev__wq(&p->slot_waiters_), timeout, what, NULL) < 0)
    return -1;
  p->reserved_--; /* the slot handed to us by slot_pass_on */
  return 0;
}

gev_greenlet *gev_pool_spawn(gev_pool *p, gev_greenlet_fn fn, void *arg,
                             double timeout) {
  if (pool_check(p) < 0 || gev__bad_timeout(timeout))
    return NULL;
  if (!fn) {
    errno = EINVAL;
    return NULL;
  }
  if (slot_acquire(p, timeout, "Pool.spawn") < 0)
    return NULL;
  gev_greenlet *g = gev_spawn(fn, arg);
  if (!g)
    goto out_pass_slot;
  if (member_add(p, g) < 0)
    goto out_kill;
  return g;

out_kill:
  gev_greenlet_kill(g, 0, 0);
  gev_greenlet_unref(g);
  errno = ENOMEM;
out_pass_slot:
  slot_pass_on(p);
  return NULL;
}

int gev_pool_spawn_raw(gev_pool *p, gev_greenlet_fn fn, void *arg,
                       double timeout) {
  gev_greenlet *g = gev_pool_spawn(p, fn, arg, timeout);
  if (!g)
    return -1;
  gev_greenlet_unref(g); /* the pool keeps its own reference */
  return 0;
}

int gev_pool_add(gev_pool *p, gev_greenlet *g, double timeout) {
  if (pool_check(p) < 0 || gev__bad_timeout(timeout))
    return -1;
  if (!g) {
    errno = EINVAL;
    return -1;
  }
  if (member_find(p, g) || gev_greenlet_ready(g))
    return 0;
  if (slot_acquire(p, timeout, "Pool.add") < 0)
    return -1;
  if (gev_greenlet_ready(g) || member_find(p, g)) {
    slot_pass_on(p); /* it finished or joined while we waited */
    return 0;
  }
  if (member_add(p, g) < 0) {
    int err = errno;
    slot_pass_on(p);
    errno = err;
    return -1;
  }
  return 0;
}

int gev_pool_discard(gev_pool *p, gev_greenlet *g) {
  if (pool_check(p) < 0)
    return -1;
  member *m = g ? member_find(p, g) : NULL;
  if (!m) {
    errno = g ? ENOENT : EINVAL;
    return -1;
  }
  member_release(p, m);
  member_left(p);
  return 0;
}

int gev_pool_contains(const gev_pool *p, const gev_greenlet *g) {
  if (pool_check(p) < 0)
    return -1;
  return g && member_find(p, g) != NULL;
}

long gev_pool_count(const gev_pool *p) {
  if (pool_check(p) < 0)
    return -1;
  return (long)p->count_;
}

long gev_pool_free_count(const gev_pool *p) {
  if (pool_check(p) < 0)
    return -1;
  if (!p->size_)
    return LONG_MAX;
  return (long)free_slots(p);
}

long gev_pool_wait_available(gev_pool *p, double timeout) {
  if (pool_check(p) < 0 || gev__bad_timeout(timeout))
    return -1;
  if (!p->size_)
    return LONG_MAX;
  /* A slot announced to us may be taken by a spawner that runs first;
   * then wait again. */
  while (free_slots(p) == 0 || gev__wq_len(&p->slot_waiters_) > 0) {
    if (timeout == 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    if (gev__waitq_wait(gev__wq(&p->avail_waiters_), timeout,
                        "Pool.wait_available", NULL) < 0)
      return -1;
  }
  return (long)free_slots(p);
}

/* ---- Join and kill ---------------------------------------------------- */

int gev_pool_join(gev_pool *p, double timeout) {
  if (pool_check(p) < 0 || gev__bad_timeout(timeout))
    return -1;
  if (p->count_ == 0)
    return 0;
  if (timeout == 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  return gev__waitq_wait(joiners(p), timeout, "Pool.join", NULL);
}

int gev_pool_kill(gev_pool *p, int block, double timeout) {
  if (pool_check(p) < 0 || gev__bad_timeout(timeout))
    return -1;
  size_t n = p->count_, i = 0;
  gev_greenlet **gs = malloc((n ? n : 1) * sizeof *gs);
  if (!gs) {
    errno = ENOMEM;
    return -1;
  }
  /* Snapshot first: a kill may run links that change the member list. */
  for (member *m = p->members_; m; m = m->next)
    gs[i++] = gev_greenlet_ref(m->g);
  for (i = 0; i < n; i++)
    gev_greenlet_kill(gs[i], 0, 0);
  for (i = 0; i < n; i++)
    gev_greenlet_unref(gs[i]);
  free(gs);
  return block ? gev_pool_join(p, timeout) : 0;
}

/* ---- Work from inside the pool ------------------------------------------ */

/* gevent's rule for apply: a greenlet that already holds a slot of the pool
 * (one of its members) runs such work itself. Waiting for another slot
 * could wait for itself: in a pool of one, or when every member does the
 * same, nobody would ever free one. */
static int caller_is_member(const gev_pool *p) {
  gev_greenlet *g = gev_getcurrent();
  if (!g)
    return 0;
  for (const struct gev__link *l = g->links; l; l = l->next)
    if (l->fn == member_done && ((const member *)l->arg)->pool == p)
      return 1;
  return 0;
}

/* Whether a spawn would get a slot without waiting. */
static int slot_free_now(const gev_pool *p) {
  return !p->size_ ||
         (free_slots(p) > 0 && gev__wq_len(&p->slot_waiters_) == 0);
}

int gev_pool_apply(gev_pool *p, gev_greenlet_fn fn, void *arg, void **result) {
  if (pool_check(p) < 0)
    return -1;
  if (!fn) {
    errno = EINVAL;
    return -1;
  }
  int err;
  void *value;
  if (caller_is_member(p)) {
    value = gev__greenlet_run_inline(fn, arg, &err, NULL);
  } else {
    gev_greenlet *g = gev_pool_spawn(p, fn, arg, -1);
    if (!g)
      return -1;
    err = gev_greenlet_get(g, -1, &value) < 0 ? errno : 0;
    if (err && !gev_greenlet_ready(g))
      gev_greenlet_kill(g, 0, 0); /* our wait failed: abandon the job */
    gev_greenlet_unref(g);
  }
  if (err) {
    errno = err;
    return -1;
  }
  if (result)
    *result = value;
  return 0;
}

/* ---- map ---------------------------------------------------------------- */

typedef struct map_job {
  gev_greenlet *g; /* NULL when it ran in the caller */
  void *value;
  int err;
} map_job;

/* Starts one job: in a slot of the pool, or in the caller when the caller
 * is a member and no slot is free (see caller_is_member). 0 or -1. */
static int map_start(gev_pool *p, gev_greenlet_fn fn, void *arg, int inside,
                     map_job *job) {
  if (inside && !slot_free_now(p)) {
    job->value = gev__greenlet_run_inline(fn, arg, &job->err, NULL);
    return 0;
  }
  job->g = gev_pool_spawn(p, fn, arg, -1);
  return job->g ? 0 : -1;
}

/* Waits for job's greenlet and takes its result. 0 or -1 (wait failed). */
static int map_finish(map_job *job) {
  if (!job->g)
    return 0;
  if (gev_greenlet_join(job->g, -1) < 0)
    return -1;
  job->err = gev_greenlet_error(job->g);
  job->value = job->err ? NULL : gev_greenlet_value(job->g);
  return 0;
}

static void map_release(map_job *jobs, size_t n, int kill) {
  for (size_t i = 0; i < n; i++) {
    if (!jobs[i].g)
      continue;
    if (kill)
      gev_greenlet_kill(jobs[i].g, 0, 0);
    gev_greenlet_unref(jobs[i].g);
  }
  free(jobs);
}

/* Runs every job and waits for them. 0, or -1 with errno when a spawn or a
 * wait failed (the jobs started are then killed). */
static int map_run(gev_pool *p, gev_greenlet_fn fn, void *const *args, size_t n,
                   map_job *jobs) {
  int inside = caller_is_member(p);
  for (size_t i = 0; i < n; i++)
    if (map_start(p, fn, args[i], inside, &jobs[i]) < 0)
      return -1;
  for (size_t i = 0; i < n; i++)
    if (map_finish(&jobs[i]) < 0)
      return -1;
  return 0;
}

int gev_pool_map_timeout(gev_pool *p, gev_greenlet_fn fn, void *const *args,
                         void **results, size_t n, double timeout) {
  if (pool_check(p) < 0 || gev__bad_timeout(timeout))
    return -1;
  if (!fn || (n && (!args || !results))) {
    errno = EINVAL;
    return -1;
  }
  map_job *jobs = calloc(n ? n : 1, sizeof *jobs);
  if (!jobs) {
    errno = ENOMEM;
    return -1;
  }
  /* One deadline for the whole call, jobs run in the caller included. */
  gev_timeout *scope = NULL;
  if (timeout >= 0 && !(scope = gev_timeout_start(timeout))) {
    free(jobs);
    return -1;
  }
  int rc = map_run(p, fn, args, n, jobs), err = errno, first_err = 0;
  gev_timeout_cancel(scope);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    results[i] = jobs[i].value;
    if (jobs[i].err && !first_err)
      first_err = jobs[i].err;
  }
  map_release(jobs, n, rc < 0);
  errno = rc < 0 ? err : first_err;
  return rc < 0 || first_err ? -1 : 0;
}

int gev_pool_map(gev_pool *p, gev_greenlet_fn fn, void *const *args,
                 void **results, size_t n) {
  return gev_pool_map_timeout(p, fn, args, results, n, -1);
}

/* ---- imap_unordered ------------------------------------------------------ */

/* Jobs are spawned into the pool as slots allow: whenever next() runs, and
 * from each job's link, right after the pool's own link has freed its
 * slot. Finished jobs queue up on a done list that next() drains. Each
 * running job holds the iterator alive through its link; an iterator freed
 * while a job's link is already scheduled is freed by the last such link. */
typedef struct imap_job {
  gev_pool_imap *it;
  struct imap_job *next_done;
  gev_greenlet *g; /* while running (our handle from spawn) */
  void *value;
  char *errmsg; /* a failed job's message (heap), until returned */
  int err;
} imap_job;

struct gev_pool_imap {
  void *hub;
  gev_pool *pool;
  gev_greenlet_fn fn;
  void *const *args;
  size_t n, fed, returned, running;
  imap_job *jobs;
  imap_job *done_head, *done_tail;
  gev__waitq waiters;
  char *errmsg; /* the message of the failed job returned last */
  int last_err; /* its error; 0 if the last job returned succeeded */
  int orphaned; /* freed by the user; the last link frees it */
};

static void imap_feed(gev_pool_imap *it, double timeout);

static void imap_destroy(gev_pool_imap *it) {
  for (size_t i = 0; i < it->n; i++)
    free(it->jobs[i].errmsg);
  free(it->jobs);
  free(it->errmsg);
  free(it);
}

/* Keeps a copy of a failed job's message (none if out of memory:
 * gev_pool_imap_errmsg then falls back to strerror). */
static void job_keep_errmsg(imap_job *job, const char *msg) {
  if (job->err && msg)
    job->errmsg = strdup(msg);
}

static void imap_push_done(gev_pool_imap *it, imap_job *job) {
  if (it->done_tail)
    it->done_tail->next_done = job;
  else
    it->done_head = job;
  it->done_tail = job;
  gev__waitq_wake_one(&it->waiters, GEV__GRANTED, 0);
}

static void imap_job_done(gev_greenlet *g, void *arg) {
  imap_job *job = arg;
  gev_pool_imap *it = job->it;
  job->value = gev_greenlet_value(g);
  job->err = gev_greenlet_error(g);
  job_keep_errmsg(job, gev_greenlet_errmsg(g));
  gev_greenlet_unref(job->g);
  job->g = NULL;
  it->running--;
  if (it->orphaned) {
    if (it->running == 0)
      imap_destroy(it);
    return;
  }
  imap_push_done(it, job);
  imap_feed(it, 0);
}

/* Spawns the next job, waiting up to timeout for a slot. 0 or -1. */
static int imap_spawn_one(gev_pool_imap *it, double timeout) {
  imap_job *job = &it->jobs[it->fed];
  gev_greenlet *g =
      gev_pool_spawn(it->pool, it->fn, it->args[it->fed], timeout);
  if (!g)
    return -1;
  if (gev_greenlet_link(g, imap_job_done, job) < 0) {
    gev_greenlet_kill(g, 0, 0);
    gev_greenlet_unref(g);
    return -1;
  }
  job->g = g;
  it->fed++;
  it->running++;
  return 0;
}

/* Runs the next job in the caller and queues its result. */
static void imap_run_inline(gev_pool_imap *it) {
  imap_job *job = &it->jobs[it->fed];
  void *arg = it->args[it->fed++];
  job->value = gev__greenlet_run_inline(it->fn, arg, &job->err, &job->errmsg);
  imap_push_done(it, job);
}

/* Spawns jobs while slots are free (timeout 0: without waiting). */
static void imap_feed(gev_pool_imap *it, double timeout) {
  while (it->fed < it->n && pool_check(it->pool) == 0 &&
         imap_spawn_one(it, timeout) == 0)
    timeout = 0;
}

gev_pool_imap *gev_pool_imap_unordered(gev_pool *p, gev_greenlet_fn fn,
                                       void *const *args, size_t n) {
  if (pool_check(p) < 0)
    return NULL;
  if (!fn || (n && !args)) {
    errno = EINVAL;
    return NULL;
  }
  gev_pool_imap *it = calloc(1, sizeof *it);
  if (!it)
    goto out_nomem;
  it->jobs = calloc(n ? n : 1, sizeof *it->jobs);
  if (!it->jobs)
    goto out_free_it;
  for (size_t i = 0; i < n; i++)
    it->jobs[i].it = it;
  it->hub = p->h_.hub_;
  it->pool = p;
  it->fn = fn;
  it->args = args;
  it->n = n;
  return it;

out_free_it:
  free(it);
out_nomem:
  errno = ENOMEM;
  return NULL;
}

/* Pops a finished job into *index / *value: 1, or -1 with the job's
 * error (its message kept for gev_pool_imap_errmsg). */
static int imap_pop(gev_pool_imap *it, size_t *index, void **value) {
  imap_job *job = it->done_head;
  it->done_head = job->next_done;
  if (!it->done_head)
    it->done_tail = NULL;
  it->returned++;
  if (index)
    *index = (size_t)(job - it->jobs);
  if (job->err) {
    it->errmsg = job->errmsg;
    it->last_err = job->err;
    job->errmsg = NULL;
    errno = job->err;
    return -1;
  }
  if (value)
    *value = job->value;
  return 1;
}

static int imap_check(const gev_pool_imap *it) {
  if (!it || it->orphaned) {
    errno = EINVAL;
    return -1;
  }
  if (it->hub != gev__sync_hub_token(gev__hub_current_id())) {
    errno = EXDEV;
    return -1;
  }
  return pool_check(it->pool);
}

/* One step of next(): 1 result ready or all returned, 0 go on after a
 * wait that succeeded, -1 the wait failed. */
static int imap_step(gev_pool_imap *it, double timeout) {
  imap_feed(it, 0);
  if (it->done_head || it->returned == it->n)
    return 1;
  if (it->running == 0 && caller_is_member(it->pool)) {
    /* No slot is free and the caller holds one: it does the next job
     * itself (waiting for a slot could wait for itself). */
    imap_run_inline(it);
    return 1;
  }
  if (it->running == 0) {
    /* Nothing of ours runs, so no link will feed: wait for a slot. */
    if (imap_spawn_one(it, timeout) < 0)
      return -1;
    return 0;
  }
  if (timeout == 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  return gev__waitq_wait(&it->waiters, timeout, "Pool.imap_unordered", NULL);
}

int gev_pool_imap_next(gev_pool_imap *it, double timeout, size_t *index,
                       void **value) {
  if (index)
    *index = GEV_POOL_NO_INDEX;
  if (imap_check(it) < 0 || gev__bad_timeout(timeout))
    return -1;
  free(it->errmsg);
  it->errmsg = NULL;
  it->last_err = 0;
  /* One deadline for the whole call, however many waits it takes. */
  gev_timeout *scope = NULL;
  if (timeout > 0 && !(scope = gev_timeout_start(timeout)))
    return -1;
  int rc;
  while ((rc = imap_step(it, scope ? -1 : timeout)) == 0)
    ;
  gev_timeout_cancel(scope);
  if (rc < 0)
    return -1;
  if (!it->done_head)
    return 0; /* all returned */
  return imap_pop(it, index, value);
}

const char *gev_pool_imap_errmsg(const gev_pool_imap *it) {
  if (!it || it->orphaned || !it->last_err)
    return NULL;
  return it->errmsg ? it->errmsg : strerror(it->last_err);
}

void gev_pool_imap_free(gev_pool_imap *it) {
  if (!it || it->orphaned)
    return;
  gev__waitq_wake_all(&it->waiters, NULL, EIDRM);
  for (size_t i = 0; i < it->fed; i++) {
    imap_job *job = &it->jobs[i];
    if (!job->g || gev_greenlet_unlink(job->g, imap_job_done, job) < 0)
      continue; /* finished, or its link is scheduled: it will count down */
    gev_greenlet_kill(job->g, 0, 0);
    gev_greenlet_unref(job->g);
    job->g = NULL;
    it->running--;
  }
  if (it->running == 0)
    imap_destroy(it);
  else
    it->orphaned = 1;
}
