/*
 * Semaphore, BoundedSemaphore, Lock and RLock.
 *
 * Fairness: a release with waiters never raises the count; it hands the
 * unit straight to the first waiter (waking it with GEV__GRANTED), so a
 * coroutine arriving later cannot take the unit first. Conversely an
 * acquire takes a free unit only when nobody is queued. A waiter killed or
 * timed out is unlinked by its wake, so a release always reaches a waiter
 * that is still there.
 *
 * Other threads (sync_priv.h). A release from another thread runs in the
 * owning hub, but a bounded semaphore's bound is checked at once by the
 * releasing thread: it reserves its unit in xpending_ (compare-and-swap,
 * count_ + xpending_ never passing the bound) and the owning hub turns the
 * reservation into the release. An RLock's owner is a coroutine id that
 * any thread compares with its own; only the owner changes it (and the
 * depth), except the owning hub when it hands the lock on, so the owner's
 * own thread may re-enter and release without asking the hub. A last
 * release from another thread marks the lock in transit and posts the
 * hand-off to the owning hub.
 */
#include <limits.h>
#include <stdlib.h>

#include "hub/sync_priv.h"

/* ---- Semaphore ------------------------------------------------------- */

/* An acquire would not wait: a unit is free and nobody queues for one. */
static int sem_ready(const void *obj) {
  const gev_semaphore *s = obj;
  return s->count_ > 0 && gev__wq_len(&s->h_.waiters_) == 0;
}

static int sem_peek(const void *obj) {
  return GEV__LOAD(((const gev_semaphore *)obj)->count_) > 0;
}

static int sem_take(gev_semaphore *s);
static void sem_release_here(void *obj, uintptr_t reserved, int err);

/* A wait of another hub, decided in the owning hub. */
static int sem_xtake(void *obj, unsigned long long coro, int nowait,
                     void **value, int *err) {
  (void)coro;
  if (sem_take(obj)) {
    *value = GEV__GRANTED;
    *err = 0;
    return 1;
  }
  if (!nowait)
    return 0;
  *value = NULL;
  *err = EAGAIN;
  return 1;
}

/* A unit granted to a waiter of another hub that had left. */
static void sem_give_back(void *obj, unsigned long long coro) {
  (void)coro;
  sem_release_here(obj, 0, 0);
}

static const gev__sync_xops sem_xops = {
    .peek = sem_peek, .take = sem_xtake, .give_back = sem_give_back};

static GEV__SYNC_KIND_X(sem_kind, GEV__MAGIC_SEM, NULL, sem_ready, &sem_xops);

/* 1 in the owning hub, 0 in another thread, -1 with errno. */
static int sem_where(const gev_semaphore *s) {
  return gev__sync_where(s, &sem_kind);
}

static int sem_setup(gev_semaphore *s, unsigned long value,
                     unsigned long bound) {
  if (gev__sync_setup(s, sizeof *s, &sem_kind) < 0)
    return -1;
  s->count_ = value;
  s->bound_ = bound;
  return 0;
}

int gev_semaphore_init(gev_semaphore *s, unsigned long value) {
  return sem_setup(s, value, 0);
}

int gev_bounded_semaphore_init(gev_semaphore *s, unsigned long value) {
  if (value == 0) {
    errno = EINVAL;
    return -1;
  }
  return sem_setup(s, value, value);
}

gev_semaphore *gev_semaphore_new(unsigned long value) {
  gev_semaphore *s = gev__sync_alloc(sizeof *s);
  return gev__sync_made(s, s ? gev_semaphore_init(s, value) : -1);
}

gev_semaphore *gev_bounded_semaphore_new(unsigned long value) {
  gev_semaphore *s = gev__sync_alloc(sizeof *s);
  return gev__sync_made(s, s ? gev_bounded_semaphore_init(s, value) : -1);
}

void gev_semaphore_destroy(gev_semaphore *s) {
  gev__sync_destroy(s, &sem_kind);
}

void gev_semaphore_free(gev_semaphore *s) { gev__sync_free(s, &sem_kind); }

gev_waitable gev_waitable_semaphore(gev_semaphore *s) {
  return gev__sync_waitable(s, &sem_kind);
}

gev_waitable gev_waitable_lock(gev_lock *l) {
  return gev__sync_waitable(l ? &l->sem_ : NULL, &sem_kind);
}

/* Takes a unit without waiting: 1 if taken, 0 if acquire must wait. */
static int sem_take(gev_semaphore *s) {
  if (!sem_ready(s))
    return 0;
  GEV__STORE(s->count_, s->count_ - 1);
  return 1;
}

/* A wait from another hub: timeout 0 asks the owning hub (EAGAIN when no
 * unit is free). */
static int sem_acquire_foreign(gev_semaphore *s, double timeout,
                               const char *what) {
  int rc = gev__xsync_wait(s, &sem_kind, timeout, timeout == 0, what, NULL);
  if (rc < 0 && errno == EAGAIN && timeout == 0)
    errno = ETIMEDOUT;
  return rc;
}

static int sem_acquire(gev_semaphore *s, double timeout, const char *what) {
  int where = sem_where(s);
  if (where < 0 || gev__bad_timeout(timeout))
    return -1;
  if (!where)
    return sem_acquire_foreign(s, timeout, what);
  if (sem_take(s))
    return 0;
  if (timeout == 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  /* Success means a release handed its unit to us. */
  return gev__waitq_wait(gev__head_wq(s), timeout, what, NULL);
}

int gev_semaphore_acquire(gev_semaphore *s, double timeout) {
  return sem_acquire(s, timeout, "Semaphore.acquire");
}

int gev_semaphore_try_acquire(gev_semaphore *s) {
  int where = sem_where(s);
  if (where < 0)
    return -1;
  if (!where)
    return gev__xsync_wait(s, &sem_kind, 0, 1, "Semaphore.acquire", NULL);
  if (sem_take(s))
    return 0;
  errno = EAGAIN;
  return -1;
}

/* Hands a unit to the first waiter, else adds it to the count. */
static void sem_put(gev_semaphore *s) {
  if (gev__waitq_wake_one(gev__head_wq(s), GEV__GRANTED, 0))
    return;
  GEV__STORE(s->count_, s->count_ + 1);
  gev__sync_notify(s);
}

/* In the owning hub: a release from another thread (reserved: it holds a
 * reservation of a bounded semaphore's unit), or a unit handed back. */
static void sem_release_here(void *obj, uintptr_t reserved, int err) {
  gev_semaphore *s = obj;
  if (err)
    return;
  if (reserved)
    __atomic_fetch_sub(&s->xpending_, 1, __ATOMIC_RELAXED);
  sem_put(s);
}

/* Reserves a unit of a bounded semaphore for a release from another
 * thread. 0, or -1 with EOVERFLOW (it is at its bound). */
static int sem_reserve(gev_semaphore *s) {
  unsigned long pending = GEV__LOAD(s->xpending_);
  do {
    if (GEV__LOAD(s->count_) + pending >= s->bound_) {
      errno = EOVERFLOW;
      return -1;
    }
  } while (!__atomic_compare_exchange_n(&s->xpending_, &pending, pending + 1, 1,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  return 0;
}

static int sem_release_foreign(gev_semaphore *s) {
  if (s->bound_ && sem_reserve(s) < 0)
    return -1;
  if (gev__xsync_call(s, sem_release_here, s->bound_ != 0) == 0)
    return 0;
  if (s->bound_)
    __atomic_fetch_sub(&s->xpending_, 1, __ATOMIC_RELAXED);
  return -1;
}

int gev_semaphore_release(gev_semaphore *s) {
  int where = sem_where(s);
  if (where <= 0)
    return where < 0 ? -1 : sem_release_foreign(s);
  if (gev__waitq_wake_one(gev__head_wq(s), GEV__GRANTED, 0))
    return 0;
  if ((s->bound_ && s->count_ + GEV__LOAD(s->xpending_) >= s->bound_) ||
      s->count_ == ULONG_MAX) {
    errno = EOVERFLOW;
    return -1;
  }
  GEV__STORE(s->count_, s->count_ + 1);
  gev__sync_notify(s);
  return 0;
}

long gev_semaphore_value(const gev_semaphore *s) {
  unsigned long n;
  if (sem_where(s) < 0)
    return -1;
  n = GEV__LOAD(s->count_);
  return n > LONG_MAX ? LONG_MAX : (long)n;
}

/* From another thread the wait queue is not read: "no unit free". */
int gev_semaphore_locked(const gev_semaphore *s) {
  int where = sem_where(s);
  if (where < 0)
    return -1;
  return where ? !sem_ready(s) : !sem_peek(s);
}

/* ---- Lock ------------------------------------------------------------ */

int gev_lock_init(gev_lock *l) { return sem_setup(l ? &l->sem_ : NULL, 1, 1); }

gev_lock *gev_lock_new(void) {
  gev_lock *l = gev__sync_alloc(sizeof *l);
  return gev__sync_made(l, l ? gev_lock_init(l) : -1);
}

void gev_lock_destroy(gev_lock *l) {
  if (l)
    gev_semaphore_destroy(&l->sem_);
}

/* sem_ is the first member: the lock is freed as its semaphore. */
void gev_lock_free(gev_lock *l) { gev__sync_free(l, &sem_kind); }

int gev_lock_acquire(gev_lock *l, double timeout) {
  if (!l) {
    errno = EINVAL;
    return -1;
  }
  return sem_acquire(&l->sem_, timeout, "Lock.acquire");
}

int gev_lock_try_acquire(gev_lock *l) {
  if (!l) {
    errno = EINVAL;
    return -1;
  }
  return gev_semaphore_try_acquire(&l->sem_);
}

int gev_lock_release(gev_lock *l) {
  if (!l) {
    errno = EINVAL;
    return -1;
  }
  if (gev_semaphore_release(&l->sem_) == 0)
    return 0;
  if (errno == EOVERFLOW)
    errno = EPERM; /* releasing an unlocked lock */
  return -1;
}

int gev_lock_locked(const gev_lock *l) {
  if (!l) {
    errno = EINVAL;
    return -1;
  }
  return gev_semaphore_locked(&l->sem_);
}

/* ---- RLock ----------------------------------------------------------- */

/* Owners are coroutine ids (gev_coro_id), never reused, unlike control
 * block addresses: a greenlet that dies holding the lock must not hand it
 * to the next coroutine that gets its block. RLOCK_IN_TRANSIT marks the
 * lock handed to a woken waiter that has not run yet; it names itself as
 * owner when it resumes. */
#define RLOCK_IN_TRANSIT ULLONG_MAX

static unsigned long long rlock_me(void) {
  return gev_coro_id(gev_coro_current());
}

static int rlock_take(gev_rlock *l, unsigned long long me);
static void rlock_hand_on(gev_rlock *l);

/* An acquire of another hub's coroutine, decided in the owning hub. */
static int rlock_xtake(void *obj, unsigned long long coro, int nowait,
                       void **value, int *err) {
  int rc = rlock_take(obj, coro);
  if (rc == 0 && !nowait)
    return 0;
  *value = rc > 0 ? GEV__GRANTED : NULL;
  *err = rc > 0 ? 0 : rc < 0 ? errno : EAGAIN;
  return 1;
}

/* The owning hub handed the lock to a waiter of another hub. */
static void rlock_granted(void *obj, unsigned long long coro) {
  gev_rlock *l = obj;
  GEV__STORE(l->owner_, coro);
  l->depth_ = 1;
}

/* ... whose waiter had left: the lock goes on. */
static void rlock_give_back(void *obj, unsigned long long coro) {
  gev_rlock *l = obj;
  if (GEV__LOAD(l->owner_) == coro)
    rlock_hand_on(l);
}

static const gev__sync_xops rlock_xops = {.take = rlock_xtake,
                                          .granted = rlock_granted,
                                          .give_back = rlock_give_back};

static GEV__SYNC_KIND_X(rlock_kind, GEV__MAGIC_RLOCK, NULL, NULL, &rlock_xops);

static int rlock_where(const gev_rlock *l) {
  return gev__sync_where(l, &rlock_kind);
}

int gev_rlock_init(gev_rlock *l) {
  return gev__sync_setup(l, sizeof *l, &rlock_kind);
}

gev_rlock *gev_rlock_new(void) {
  gev_rlock *l = gev__sync_alloc(sizeof *l);
  return gev__sync_made(l, l ? gev_rlock_init(l) : -1);
}

void gev_rlock_destroy(gev_rlock *l) { gev__sync_destroy(l, &rlock_kind); }

void gev_rlock_free(gev_rlock *l) { gev__sync_free(l, &rlock_kind); }

/* Re-enters a lock me owns: 1, or -1 with EOVERFLOW. Any thread (only the
 * owner touches the depth). */
static int rlock_reenter(gev_rlock *l) {
  if (l->depth_ == ULONG_MAX) {
    errno = EOVERFLOW;
    return -1;
  }
  l->depth_++;
  return 1;
}

/* Acquires without waiting: 1 taken (or re-entered), 0 must wait, -1 on
 * error. In the owning hub. */
static int rlock_take(gev_rlock *l, unsigned long long me) {
  unsigned long long owner = GEV__LOAD(l->owner_);
  if (owner == me)
    return rlock_reenter(l);
  if (owner || gev__wq_len(&l->h_.waiters_) > 0)
    return 0;
  GEV__STORE(l->owner_, me);
  l->depth_ = 1;
  return 1;
}

/* From another thread: re-entered at once by the owner, else asked of the
 * owning hub (timeout 0 asks without queueing). */
static int rlock_acquire_foreign(gev_rlock *l, double timeout, int nowait) {
  int rc;
  if (GEV__LOAD(l->owner_) == rlock_me())
    return rlock_reenter(l) < 0 ? -1 : 0;
  rc = gev__xsync_wait(l, &rlock_kind, timeout, nowait || timeout == 0,
                       "RLock.acquire", NULL);
  if (rc < 0 && errno == EAGAIN && !nowait)
    errno = ETIMEDOUT;
  return rc;
}

int gev_rlock_acquire(gev_rlock *l, double timeout) {
  int where = rlock_where(l);
  if (where < 0 || gev__bad_timeout(timeout))
    return -1;
  if (!where)
    return rlock_acquire_foreign(l, timeout, 0);
  unsigned long long me = rlock_me();
  int rc = rlock_take(l, me);
  if (rc != 0)
    return rc < 0 ? -1 : 0;
  if (timeout == 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  if (gev__waitq_wait(gev__head_wq(l), timeout, "RLock.acquire", NULL) < 0)
    return -1;
  GEV__STORE(l->owner_, me); /* the releaser left it RLOCK_IN_TRANSIT */
  l->depth_ = 1;
  return 0;
}

int gev_rlock_try_acquire(gev_rlock *l) {
  int where = rlock_where(l);
  if (where < 0)
    return -1;
  if (!where)
    return rlock_acquire_foreign(l, 0, 1);
  int rc = rlock_take(l, rlock_me());
  if (rc == 0)
    errno = EAGAIN;
  return rc > 0 ? 0 : -1;
}

/* The last release, in the owning hub: to the first waiter, else free. */
static void rlock_hand_on(gev_rlock *l) {
  GEV__STORE(l->owner_, 0);
  if (gev__waitq_wake_one(gev__head_wq(l), GEV__GRANTED, 0))
    GEV__STORE(l->owner_, RLOCK_IN_TRANSIT);
}

static void rlock_release_here(void *obj, uintptr_t arg, int err) {
  (void)arg;
  if (!err)
    rlock_hand_on(obj);
}

int gev_rlock_release(gev_rlock *l) {
  int where = rlock_where(l);
  unsigned long long me;
  if (where < 0)
    return -1;
  me = rlock_me();
  if (GEV__LOAD(l->owner_) != me) {
    errno = EPERM;
    return -1;
  }
  if (--l->depth_ > 0)
    return 0;
  if (where) {
    rlock_hand_on(l);
    return 0;
  }
  /* From another thread: in transit until the owning hub hands it on. */
  GEV__STORE(l->owner_, RLOCK_IN_TRANSIT);
  if (gev__xsync_call(l, rlock_release_here, 0) == 0)
    return 0;
  GEV__STORE(l->owner_, me); /* its hub is gone: nothing changes */
  l->depth_ = 1;
  return -1;
}

int gev_rlock_locked(const gev_rlock *l) {
  if (rlock_where(l) < 0)
    return -1;
  return GEV__LOAD(l->owner_) != 0;
}

int gev_rlock_is_owned(const gev_rlock *l) {
  unsigned long long owner;
  if (rlock_where(l) < 0)
    return -1;
  owner = GEV__LOAD(l->owner_);
  return owner != 0 && owner == rlock_me();
}
