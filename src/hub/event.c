/*
 * Event and AsyncResult: a flag, or a one-time result, that any number of
 * coroutines wait for. Both wake all their waiters at once; a woken waiter
 * learns everything it needs from the wake itself and never reads the
 * object again, so the object may be destroyed before the waiters run.
 *
 * Other threads (sync_priv.h): a set or clear from another thread runs in
 * the owning hub; waits of other hubs are proxies there; reads are atomic
 * loads of what the owning hub stores. An AsyncResult is claimed by its
 * setter with a compare-and-swap, so that of two sets from any threads
 * exactly one wins, at once, and the other sees EALREADY.
 */
#define _GNU_SOURCE /* vasprintf */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/sync_priv.h"

/* ---- Event ----------------------------------------------------------- */

static int event_ready(const void *obj) {
  return ((const gev_event *)obj)->flag_;
}

static int event_peek(const void *obj) {
  return GEV__LOAD(((const gev_event *)obj)->flag_);
}

/* A wait of another hub, decided in the owning hub. */
static int event_take(void *obj, unsigned long long coro, int nowait,
                      void **value, int *err) {
  (void)coro;
  if (event_ready(obj) || nowait) {
    *value = GEV__GRANTED;
    *err = event_ready(obj) ? 0 : ETIMEDOUT;
    return 1;
  }
  return 0;
}

static const gev__sync_xops event_xops = {.peek = event_peek,
                                          .take = event_take};

static GEV__SYNC_KIND_X(event_kind, GEV__MAGIC_EVENT, NULL, event_ready,
                        &event_xops);

int gev_event_init(gev_event *e) {
  return gev__sync_setup(e, sizeof *e, &event_kind);
}

gev_event *gev_event_new(void) {
  gev_event *e = gev__sync_alloc(sizeof *e);
  return gev__sync_made(e, e ? gev_event_init(e) : -1);
}

void gev_event_destroy(gev_event *e) { gev__sync_destroy(e, &event_kind); }

void gev_event_free(gev_event *e) { gev__sync_free(e, &event_kind); }

gev_waitable gev_waitable_event(gev_event *e) {
  return gev__sync_waitable(e, &event_kind);
}

static void event_set_here(void *obj, uintptr_t arg, int err) {
  if (err)
    return;
  if (arg)
    gev_event_set(obj);
  else
    gev_event_clear(obj);
}

int gev_event_set(gev_event *e) {
  int where = gev__sync_where(e, &event_kind);
  if (where <= 0)
    return where < 0 ? -1 : gev__xsync_call(e, event_set_here, 1);
  GEV__STORE(e->flag_, 1);
  gev__waitq_wake_all(gev__head_wq(e), GEV__GRANTED, 0);
  gev__sync_notify(e);
  return 0;
}

int gev_event_clear(gev_event *e) {
  int where = gev__sync_where(e, &event_kind);
  if (where <= 0)
    return where < 0 ? -1 : gev__xsync_call(e, event_set_here, 0);
  GEV__STORE(e->flag_, 0);
  return 0;
}

int gev_event_is_set(const gev_event *e) {
  if (gev__sync_where(e, &event_kind) < 0)
    return -1;
  return event_peek(e);
}

int gev_event_wait(gev_event *e, double timeout) {
  int where = gev__sync_where(e, &event_kind);
  if (where < 0 || gev__bad_timeout(timeout))
    return -1;
  if (event_peek(e))
    return 0;
  if (timeout == 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  if (!where)
    return gev__xsync_wait(e, &event_kind, timeout, 0, "Event.wait", NULL);
  return gev__waitq_wait(gev__head_wq(e), timeout, "Event.wait", NULL);
}

/* ---- AsyncResult ------------------------------------------------------ */

/* A stored error reaches waiters as the wake error RESULT_ERR_BASE + err,
 * so that a waiter can tell "the result is an error" from a failure of its
 * own wait (a kill is ECANCELED too) without reading the object again. */
enum { RESULT_ERR_BASE = 1 << 20 };

/* CLAIMED: a setter won the result and is storing it (from another
 * thread: until the owning hub has run the set). */
enum { RESULT_PENDING, RESULT_VALUE, RESULT_ERROR, RESULT_CLAIMED };

/* The state, read by any thread; a ready one's fields are stored before
 * it (release), so a reader that saw it ready may read them. */
static int result_state(const gev_async_result *r) {
  return __atomic_load_n(&r->state_, __ATOMIC_ACQUIRE);
}

static int state_ready(int st) {
  return st == RESULT_VALUE || st == RESULT_ERROR;
}

static int result_ready(const void *obj) {
  return state_ready(result_state(obj));
}

static void result_teardown(void *obj) {
  gev_async_result *r = obj;
  free(r->errmsg_);
  r->errmsg_ = NULL;
}

/* What a ready result gives a waiter: its value (0) or stored error. */
static int result_outcome(const gev_async_result *r, void **value) {
  *value = r->state_ == RESULT_VALUE ? r->value_ : NULL;
  return r->state_ == RESULT_VALUE ? 0 : RESULT_ERR_BASE + r->err_;
}

static int result_take(void *obj, unsigned long long coro, int nowait,
                       void **value, int *err) {
  (void)coro;
  if (result_ready(obj)) {
    *err = result_outcome(obj, value);
    return 1;
  }
  if (nowait) {
    *value = NULL;
    *err = ETIMEDOUT;
    return 1;
  }
  return 0;
}

static const gev__sync_xops result_xops = {.peek = result_ready,
                                           .take = result_take};

static GEV__SYNC_KIND_X(result_kind, GEV__MAGIC_RESULT, result_teardown,
                        result_ready, &result_xops);

int gev_async_result_init(gev_async_result *r) {
  return gev__sync_setup(r, sizeof *r, &result_kind);
}

gev_async_result *gev_async_result_new(void) {
  gev_async_result *r = gev__sync_alloc(sizeof *r);
  return gev__sync_made(r, r ? gev_async_result_init(r) : -1);
}

void gev_async_result_destroy(gev_async_result *r) {
  gev__sync_destroy(r, &result_kind);
}

void gev_async_result_free(gev_async_result *r) {
  gev__sync_free(r, &result_kind);
}

gev_waitable gev_waitable_async_result(gev_async_result *r) {
  return gev__sync_waitable(r, &result_kind);
}

/* Checks that r may still be given its result: 1 in its own hub, 0 in
 * another thread, -1 with errno. */
static int result_settable(gev_async_result *r) {
  int where = gev__sync_where(r, &result_kind);
  if (where < 0)
    return -1;
  if (result_state(r) != RESULT_PENDING) {
    errno = EALREADY;
    return -1;
  }
  return where;
}

/* A result on its way to the owning hub. */
typedef struct result_set {
  void *value;
  int err; /* 0 for a value */
  char *msg;
} result_set;

/* Stores what rs holds (in r's hub, r claimed) and wakes every waiter. */
static void result_publish(gev_async_result *r, const result_set *rs) {
  r->value_ = rs->err ? NULL : rs->value;
  r->err_ = rs->err;
  r->errmsg_ = rs->msg;
  __atomic_store_n(&r->state_, rs->err ? RESULT_ERROR : RESULT_VALUE,
                   __ATOMIC_RELEASE);
  gev__waitq_wake_all(gev__head_wq(r), rs->err ? NULL : rs->value,
                      rs->err ? RESULT_ERR_BASE + rs->err : 0);
  gev__sync_notify(r);
}

static void result_publish_here(void *obj, uintptr_t arg, int err) {
  result_set *rs = (result_set *)arg;
  if (!err)
    result_publish(obj, rs);
  else
    free(rs->msg);
  free(rs);
}

/* Claims r and stores rs there (where: as result_settable returned).
 * 0, or -1: EALREADY (another setter won), ENOMEM, EXDEV. msg is taken
 * over either way. */
static int result_store(gev_async_result *r, int where, result_set rs) {
  int pending = RESULT_PENDING;
  result_set *copy;
  if (!__atomic_compare_exchange_n(&r->state_, &pending, RESULT_CLAIMED, 0,
                                   __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
    free(rs.msg);
    errno = EALREADY;
    return -1;
  }
  if (where) {
    result_publish(r, &rs);
    return 0;
  }
  if (!(copy = malloc(sizeof *copy))) {
    errno = ENOMEM;
  } else {
    *copy = rs;
    if (gev__xsync_call(r, result_publish_here, (uintptr_t)copy) == 0)
      return 0;
    free(copy);
  }
  __atomic_store_n(&r->state_, RESULT_PENDING, __ATOMIC_RELEASE);
  free(rs.msg);
  return -1;
}

int gev_async_result_set(gev_async_result *r, void *value) {
  int where = result_settable(r);
  if (where < 0)
    return -1;
  return result_store(r, where, (result_set){.value = value});
}

static int bad_error(int err) {
  if (err > 0 && err < RESULT_ERR_BASE)
    return 0;
  errno = EINVAL;
  return 1;
}

int gev_async_result_set_error(gev_async_result *r, int err) {
  int where = result_settable(r);
  if (where < 0 || bad_error(err))
    return -1;
  return result_store(r, where, (result_set){.err = err});
}

int gev_async_result_set_error_msg(gev_async_result *r, int err,
                                   const char *fmt, ...) {
  char *msg = NULL;
  va_list ap;
  int where = result_settable(r);
  if (where < 0 || bad_error(err))
    return -1;
  if (fmt) {
    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0) {
      errno = ENOMEM;
      return -1;
    }
  }
  return result_store(r, where, (result_set){.err = err, .msg = msg});
}

const char *gev_async_result_errmsg(const gev_async_result *r) {
  if (gev__sync_where(r, &result_kind) < 0 || result_state(r) != RESULT_ERROR)
    return NULL;
  return r->errmsg_ ? r->errmsg_ : strerror(r->err_);
}

/* Waits for the result. 0 with *value, or -1 with errno; *stored tells
 * whether errno is the stored error rather than a failed wait. */
static int result_wait(gev_async_result *r, double timeout, void **value,
                       int *stored) {
  int where = gev__sync_where(r, &result_kind), rc;
  *stored = 0;
  if (where < 0 || gev__bad_timeout(timeout))
    return -1;
  if (result_ready(r)) {
    *stored = 1;
    *value = r->value_;
    errno = r->err_;
    return r->state_ == RESULT_VALUE ? 0 : -1;
  }
  if (timeout == 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  if (where)
    rc = gev__waitq_wait(gev__head_wq(r), timeout, "AsyncResult.get", value);
  else
    rc = gev__xsync_wait(r, &result_kind, timeout, 0, "AsyncResult.get", value);
  if (rc == 0) {
    *stored = 1;
    return 0;
  }
  if (errno > RESULT_ERR_BASE) {
    *stored = 1;
    errno -= RESULT_ERR_BASE;
  }
  return -1;
}

int gev_async_result_get(gev_async_result *r, double timeout, void **value) {
  void *v = NULL;
  int stored;
  if (result_wait(r, timeout, &v, &stored) < 0)
    return -1;
  if (value)
    *value = v;
  return 0;
}

int gev_async_result_wait(gev_async_result *r, double timeout) {
  void *v;
  int stored;
  if (result_wait(r, timeout, &v, &stored) < 0 && !stored)
    return -1;
  return 0;
}

int gev_async_result_ready(const gev_async_result *r) {
  if (gev__sync_where(r, &result_kind) < 0)
    return -1;
  return result_ready(r);
}

int gev_async_result_successful(const gev_async_result *r) {
  if (gev__sync_where(r, &result_kind) < 0)
    return -1;
  return result_state(r) == RESULT_VALUE;
}
