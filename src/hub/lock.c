/*
 * Semaphore, BoundedSemaphore, Lock and RLock.
 *
 * Fairness: a release with waiters never raises the count; it hands the
 * unit straight to the first waiter (waking it with GEV__GRANTED), so a
 * coroutine arriving later cannot take the unit first. Conversely an
 * acquire takes a free unit only when nobody is queued. A waiter killed or
 * timed out is unlinked by its wake, so a release always reaches a waiter
 * that is still there.
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

static GEV__SYNC_KIND(sem_kind, GEV__MAGIC_SEM, NULL, sem_ready);

static int sem_check(const gev_semaphore *s) {
  return gev__sync_check(s, &sem_kind);
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
  s->count_--;
  return 1;
}

static int sem_acquire(gev_semaphore *s, double timeout, const char *what) {
  if (sem_check(s) < 0 || gev__bad_timeout(timeout))
    return -1;
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
  if (sem_check(s) < 0)
    return -1;
  if (sem_take(s))
    return 0;
  errno = EAGAIN;
  return -1;
}

int gev_semaphore_release(gev_semaphore *s) {
  if (sem_check(s) < 0)
    return -1;
  if (gev__waitq_wake_one(gev__head_wq(s), GEV__GRANTED, 0))
    return 0;
  if ((s->bound_ && s->count_ >= s->bound_) || s->count_ == ULONG_MAX) {
    errno = EOVERFLOW;
    return -1;
  }
  s->count_++;
  gev__sync_notify(s);
  return 0;
}

long gev_semaphore_value(const gev_semaphore *s) {
  if (sem_check(s) < 0)
    return -1;
  return s->count_ > LONG_MAX ? LONG_MAX : (long)s->count_;
}

int gev_semaphore_locked(const gev_semaphore *s) {
  if (sem_check(s) < 0)
    return -1;
  return !sem_ready(s);
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

static GEV__SYNC_KIND(rlock_kind, GEV__MAGIC_RLOCK, NULL, NULL);

static int rlock_check(const gev_rlock *l) {
  return gev__sync_check(l, &rlock_kind);
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

/* Acquires without waiting: 1 taken (or re-entered), 0 must wait, -1 on
 * error. */
static int rlock_take(gev_rlock *l, unsigned long long me) {
  if (l->owner_ == me) {
    if (l->depth_ == ULONG_MAX) {
      errno = EOVERFLOW;
      return -1;
    }
    l->depth_++;
    return 1;
  }
  if (l->owner_ || gev__wq_len(&l->h_.waiters_) > 0)
    return 0;
  l->owner_ = me;
  l->depth_ = 1;
  return 1;
}

int gev_rlock_acquire(gev_rlock *l, double timeout) {
  if (rlock_check(l) < 0 || gev__bad_timeout(timeout))
    return -1;
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
  l->owner_ = me; /* the releaser left it RLOCK_IN_TRANSIT for us */
  l->depth_ = 1;
  return 0;
}

int gev_rlock_try_acquire(gev_rlock *l) {
  if (rlock_check(l) < 0)
    return -1;
  int rc = rlock_take(l, rlock_me());
  if (rc == 0)
    errno = EAGAIN;
  return rc > 0 ? 0 : -1;
}

int gev_rlock_release(gev_rlock *l) {
  if (rlock_check(l) < 0)
    return -1;
  if (l->owner_ != rlock_me()) {
    errno = EPERM;
    return -1;
  }
  if (--l->depth_ > 0)
    return 0;
  l->owner_ = 0;
  if (gev__waitq_wake_one(gev__head_wq(l), GEV__GRANTED, 0))
    l->owner_ = RLOCK_IN_TRANSIT;
  return 0;
}

int gev_rlock_locked(const gev_rlock *l) {
  if (rlock_check(l) < 0)
    return -1;
  return l->owner_ != 0;
}

int gev_rlock_is_owned(const gev_rlock *l) {
  if (rlock_check(l) < 0)
    return -1;
  return l->owner_ != 0 && l->owner_ == rlock_me();
}
