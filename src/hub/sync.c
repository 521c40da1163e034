/*
 * What every sync primitive shares (see sync_priv.h): setting up,
 * checking, destroying and freeing an object, the "granted" token, and
 * gev_wait's view of them. Each primitive records the hub of the thread
 * that created it and refuses calls from any other thread, since the hub's
 * wait queues are not thread-safe. It records the hub's id, not its
 * address: a hub's memory is reused once it is destroyed, by this thread's
 * next hub or another thread's, and an object of a hub that is gone must
 * not pass for one of the hub that took its place.
 */
#include <stdlib.h>
#include <string.h>

#include "hub/sync_priv.h"

const char gev__sync_granted = 1;

int gev__sync_setup(void *obj, size_t size, const gev__sync_kind *k) {
  if (!obj) {
    errno = EINVAL;
    return -1;
  }
  gev__hub *hub = gev__hub_get();
  if (!hub)
    return -1;
  memset(obj, 0, size);
  gev__head(obj)->hub_ = gev__sync_hub_token(gev__hub_id(hub));
  gev__head(obj)->magic_ = k->magic;
  return 0;
}

void *gev__sync_alloc(size_t size) {
  void *obj = malloc(size);
  if (!obj)
    errno = ENOMEM;
  return obj;
}

void *gev__sync_made(void *obj, int rc) {
  if (rc == 0)
    return obj;
  int err = errno;
  free(obj);
  errno = err;
  return NULL;
}

int gev__sync_check_failed(const void *obj, const gev__sync_kind *k) {
  if (!obj || gev__head(obj)->magic_ != k->magic)
    errno = EINVAL;
  else
    errno = EXDEV;
  return -1;
}

void gev__sync_destroy(void *obj, const gev__sync_kind *k) {
  gev__sync_head *h = gev__head(obj);
  if (gev__sync_check(obj, k) < 0)
    return;
  h->magic_ = 0;
  gev__rawlink_fire_all(&h->links_, EIDRM);
  gev__sync_wake_all_err(&h->waiters_, EIDRM);
  if (k->teardown)
    k->teardown(obj);
}

void gev__sync_free(void *obj, const gev__sync_kind *k) {
  if (!obj)
    return;
  gev__sync_destroy(obj, k);
  free(obj);
}

void gev__sync_notify(void *obj) {
  gev__rawlink_fire_all(&gev__head(obj)->links_, 0);
}

size_t gev__sync_wake_all_err(gev__waitq_storage *q, int err) {
  return gev__waitq_wake_all(gev__wq(q), NULL, err);
}

/* ---- gev_wait's view --------------------------------------------------- */

static const gev__sync_kind *kind_of(const gev_waitable *w) {
  return (const gev__sync_kind *)(const void *)w->ops_;
}

gev_waitable gev__sync_waitable(void *obj, const gev__sync_kind *k) {
  return (gev_waitable){.ops_ = &k->ops, .obj_ = obj, .fd_ = -1};
}

int gev__sync_wait_check(const gev_waitable *w) {
  if (!kind_of(w)->ready) { /* a kind gev_wait cannot wait on */
    errno = EINVAL;
    return -1;
  }
  return gev__sync_check(w->obj_, kind_of(w));
}

int gev__sync_wait_ready(const gev_waitable *w) {
  return kind_of(w)->ready(w->obj_);
}

static void rawlink_fired(gev__rawlink *l, int err) {
  gev__wait_entry_fire((gev__wait_entry *)(void *)l, err, 0);
}

int gev__sync_wait_arm(gev__wait_entry *e) {
  e->link.fire = rawlink_fired;
  gev__rawlink_add(&gev__head(e->w->obj_)->links_, &e->link);
  return 0;
}

void gev__sync_wait_disarm(gev__wait_entry *e) { gev__rawlink_del(&e->link); }
