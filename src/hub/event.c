/*
 * Event and AsyncResult: a flag, or a one-time result, that any number of
 * coroutines wait for. Both wake all their waiters at once; a woken waiter
 * learns everything it needs from the wake itself and never reads the
 * object again, so the object may be destroyed before the waiters run.
 */
#include <stdlib.h>

#include "hub/sync_priv.h"

/* ---- Event ----------------------------------------------------------- */

static int event_check(const gev_event *e) {
  return gev__sync_check(e, e ? e->magic_ : 0, GEV__MAGIC_EVENT,
                         e ? e->hub_ : NULL);
}

int gev_event_init(gev_event *e) {
  if (!e) {
    errno = EINVAL;
    return -1;
  }
  void *hub = gev__sync_hub();
  if (!hub)
    return -1;
  *e = (gev_event){.hub_ = hub, .magic_ = GEV__MAGIC_EVENT};
  return 0;
}

gev_event *gev_event_new(void) {
  gev_event *e = malloc(sizeof *e);
  if (!e) {
    errno = ENOMEM;
    return NULL;
  }
  if (gev_event_init(e) < 0) {
    free(e);
    return NULL;
  }
  return e;
}

void gev_event_destroy(gev_event *e) {
  if (event_check(e) < 0)
    return;
  e->magic_ = 0;
  gev__sync_wake_all_err(&e->waiters_, EIDRM);
}

void gev_event_free(gev_event *e) {
  if (!e)
    return;
  gev_event_destroy(e);
  free(e);
}

int gev_event_set(gev_event *e) {
  if (event_check(e) < 0)
    return -1;
  e->flag_ = 1;
  gev__waitq_wake_all(gev__wq(&e->waiters_), GEV__GRANTED, 0);
  return 0;
}

int gev_event_clear(gev_event *e) {
  if (event_check(e) < 0)
    return -1;
  e->flag_ = 0;
  return 0;
}

int gev_event_is_set(const gev_event *e) {
  if (event_check(e) < 0)
    return -1;
  return e->flag_;
}

int gev_event_wait(gev_event *e, double timeout) {
  if (event_check(e) < 0 || gev__bad_timeout(timeout))
    return -1;
  if (e->flag_)
    return 0;
  if (timeout == 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  return gev__waitq_wait(gev__wq(&e->waiters_), timeout, "Event.wait", NULL);
}

/* ---- AsyncResult ------------------------------------------------------ */

/* A stored error reaches waiters as the wake error RESULT_ERR_BASE + err,
 * so that a waiter can tell "the result is an error" from a failure of its
 * own wait (a kill is ECANCELED too) without reading the object again. */
enum { RESULT_ERR_BASE = 1 << 20 };

enum { RESULT_PENDING, RESULT_VALUE, RESULT_ERROR };

static int result_check(const gev_async_result *r) {
  return gev__sync_check(r, r ? r->magic_ : 0, GEV__MAGIC_RESULT,
                         r ? r->hub_ : NULL);
}

int gev_async_result_init(gev_async_result *r) {
  if (!r) {
    errno = EINVAL;
    return -1;
  }
  void *hub = gev__sync_hub();
  if (!hub)
    return -1;
  *r = (gev_async_result){.hub_ = hub, .magic_ = GEV__MAGIC_RESULT};
  return 0;
}

gev_async_result *gev_async_result_new(void) {
  gev_async_result *r = malloc(sizeof *r);
  if (!r) {
    errno = ENOMEM;
    return NULL;
  }
  if (gev_async_result_init(r) < 0) {
    free(r);
    return NULL;
  }
  return r;
}

void gev_async_result_destroy(gev_async_result *r) {
  if (result_check(r) < 0)
    return;
  r->magic_ = 0;
  gev__sync_wake_all_err(&r->waiters_, EIDRM);
}

void gev_async_result_free(gev_async_result *r) {
  if (!r)
    return;
  gev_async_result_destroy(r);
  free(r);
}

int gev_async_result_set(gev_async_result *r, void *value) {
  if (result_check(r) < 0)
    return -1;
  if (r->state_ != RESULT_PENDING) {
    errno = EALREADY;
    return -1;
  }
  r->state_ = RESULT_VALUE;
  r->value_ = value;
  gev__waitq_wake_all(gev__wq(&r->waiters_), value, 0);
  return 0;
}

int gev_async_result_set_error(gev_async_result *r, int err) {
  if (result_check(r) < 0)
    return -1;
  if (err <= 0 || err >= RESULT_ERR_BASE) {
    errno = EINVAL;
    return -1;
  }
  if (r->state_ != RESULT_PENDING) {
    errno = EALREADY;
    return -1;
  }
  r->state_ = RESULT_ERROR;
  r->err_ = err;
  gev__waitq_wake_all(gev__wq(&r->waiters_), NULL, RESULT_ERR_BASE + err);
  return 0;
}

/* Waits for the result. 0 with *value, or -1 with errno; *stored tells
 * whether errno is the stored error rather than a failed wait. */
static int result_wait(gev_async_result *r, double timeout, void **value,
                       int *stored) {
  *stored = 0;
  if (result_check(r) < 0 || gev__bad_timeout(timeout))
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
  if (gev__waitq_wait(gev__wq(&r->waiters_), timeout, "AsyncResult.get",
                      value) == 0) {
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
  if (result_check(r) < 0)
    return -1;
  return r->state_ != RESULT_PENDING;
}

int gev_async_result_successful(const gev_async_result *r) {
  if (result_check(r) < 0)
    return -1;
  return r->state_ == RESULT_VALUE;
}
