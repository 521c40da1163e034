/*
 * Event and AsyncResult: a flag, or a one-time result, that any number of
 * coroutines wait for. Both wake all their waiters at once; a woken waiter
 * learns everything it needs from the wake itself and never reads the
 * object again, so the object may be destroyed before the waiters run.
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

static GEV__SYNC_KIND(event_kind, GEV__MAGIC_EVENT, NULL, event_ready);

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

int gev_event_set(gev_event *e) {
  if (gev__sync_check(e, &event_kind) < 0)
    return -1;
  e->flag_ = 1;
  gev__waitq_wake_all(gev__head_wq(e), GEV__GRANTED, 0);
  gev__sync_notify(e);
  return 0;
}

int gev_event_clear(gev_event *e) {
  if (gev__sync_check(e, &event_kind) < 0)
    return -1;
  e->flag_ = 0;
  return 0;
}

int gev_event_is_set(const gev_event *e) {
  if (gev__sync_check(e, &event_kind) < 0)
    return -1;
  return e->flag_;
}

int gev_event_wait(gev_event *e, double timeout) {
  if (gev__sync_check(e, &event_kind) < 0 || gev__bad_timeout(timeout))
    return -1;
  if (e->flag_)
    return 0;
  if (timeout == 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  return gev__waitq_wait(gev__head_wq(e), timeout, "Event.wait", NULL);
}

/* ---- AsyncResult ------------------------------------------------------ */

/* A stored error reaches waiters as the wake error RESULT_ERR_BASE + err,
 * so that a waiter can tell "the result is an error" from a failure of its
 * own wait (a kill is ECANCELED too) without reading the object again. */
enum { RESULT_ERR_BASE = 1 << 20 };

enum { RESULT_PENDING, RESULT_VALUE, RESULT_ERROR };

static int result_ready(const void *obj) {
  return ((const gev_async_result *)obj)->state_ != RESULT_PENDING;
}

static void result_teardown(void *obj) {
  gev_async_result *r = obj;
  free(r->errmsg_);
  r->errmsg_ = NULL;
}

static GEV__SYNC_KIND(result_kind, GEV__MAGIC_RESULT, result_teardown,
                      result_ready);

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

/* Checks that r may still be given its result. */
static int result_settable(gev_async_result *r) {
  if (gev__sync_check(r, &result_kind) < 0)
    return -1;
  if (r->state_ != RESULT_PENDING) {
    errno = EALREADY;
    return -1;
  }
  return 0;
}

int gev_async_result_set(gev_async_result *r, void *value) {
  if (result_settable(r) < 0)
    return -1;
  r->state_ = RESULT_VALUE;
  r->value_ = value;
  gev__waitq_wake_all(gev__head_wq(r), value, 0);
  gev__sync_notify(r);
  return 0;
}

/* Stores error err with message msg (owned; may be NULL). */
static void result_store_error(gev_async_result *r, int err, char *msg) {
  r->state_ = RESULT_ERROR;
  r->err_ = err;
  r->errmsg_ = msg;
  gev__waitq_wake_all(gev__head_wq(r), NULL, RESULT_ERR_BASE + err);
  gev__sync_notify(r);
}

static int bad_error(int err) {
  if (err > 0 && err < RESULT_ERR_BASE)
    return 0;
  errno = EINVAL;
  return 1;
}

int gev_async_result_set_error(gev_async_result *r, int err) {
  if (result_settable(r) < 0 || bad_error(err))
    return -1;
  result_store_error(r, err, NULL);
  return 0;
}

int gev_async_result_set_error_msg(gev_async_result *r, int err,
                                   const char *fmt, ...) {
  char *msg = NULL;
  va_list ap;
  if (result_settable(r) < 0 || bad_error(err))
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
  result_store_error(r, err, msg);
  return 0;
}

const char *gev_async_result_errmsg(const gev_async_result *r) {
  if (gev__sync_check(r, &result_kind) < 0 || r->state_ != RESULT_ERROR)
    return NULL;
  return r->errmsg_ ? r->errmsg_ : strerror(r->err_);
}

/* Waits for the result. 0 with *value, or -1 with errno; *stored tells
 * whether errno is the stored error rather than a failed wait. */
static int result_wait(gev_async_result *r, double timeout, void **value,
                       int *stored) {
  *stored = 0;
  if (gev__sync_check(r, &result_kind) < 0 || gev__bad_timeout(timeout))
    return -1;
  if (r->state_ != RESULT_PENDING) {
    *stored = 1;
    *value = r->value_;
    errno = r->err_;
    return r->state_ == RESULT_VALUE ? 0 : -1;
  }
  if (timeout == 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  if (gev__waitq_wait(gev__head_wq(r), timeout, "AsyncResult.get", value) ==
      0) {
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
  if (gev__sync_check(r, &result_kind) < 0)
    return -1;
  return r->state_ != RESULT_PENDING;
}

int gev_async_result_successful(const gev_async_result *r) {
  if (gev__sync_check(r, &result_kind) < 0)
    return -1;
  return r->state_ == RESULT_VALUE;
}
