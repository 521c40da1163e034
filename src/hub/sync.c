/*
 * What every sync primitive shares (see sync_priv.h): setting up,
 * checking, destroying and freeing an object, the "granted" token, and
 * gev_wait's view of them. Each primitive records the hub of the thread
 * that created it; only that hub touches its wait queues, which are not
 * thread-safe. Most kinds refuse calls from any other thread; those that
 * other threads may use ask the owning hub instead (xsync.c). It records
 * the hub's id, not its address: a hub's memory is reused once it is
 * destroyed, by this thread's next hub or another thread's, and an object
 * of a hub that is gone must not pass for one of the hub that took its
 * place.
 */
#include <stdlib.h>
#include <string.h>

#include "hub/hub_internal.h"
#include "hub/sync_priv.h"
#include "hub/xthread.h"

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

/* Destroys obj, a live object of kind k, in its own hub. */
static void destroy_here(void *obj, const gev__sync_kind *k) {
  gev__sync_head *h = gev__head(obj);
  gev__hub *hub = gev__hub_peek();
  h->magic_ = 0;
  gev__rawlink_fire_all(&h->links_, EIDRM);
  gev__sync_wake_all_err(&h->waiters_, EIDRM);
  if (k->x) {
    gev__xsync_obj_gone(hub, obj);
    gev__xhub_purge(hub, obj);
  }
  if (k->teardown)
    k->teardown(obj);
}

/* The end of an object whose hub is gone: nothing of that hub waits on it
 * any more, and nothing else may touch its queues. */
static void destroy_orphan(void *obj, const gev__sync_kind *k) {
  gev__head(obj)->magic_ = 0;
  if (k->teardown)
    k->teardown(obj);
}

static void destroy_and_free(void *obj, uintptr_t kind, int err) {
  const gev__sync_kind *k = (const gev__sync_kind *)kind;
  if (err)
    return; /* destroyed in its hub first (that call owns it), or a forked
               child, where the object is its parent's */
  if (gev__sync_where(obj, k) > 0)
    destroy_here(obj, k);
  free(obj);
}

/* From another thread: an object of a kind other threads may use is
 * destroyed by its hub (its waiters there wake with EIDRM); one whose hub
 * is gone has nobody waiting. free_it: and its memory freed, after the
 * destruction, wherever it happens. Other kinds refuse (nothing is
 * done). */
static void destroy_foreign(void *obj, const gev__sync_kind *k, int free_it) {
  gev_hub *x;
  if (!k->x) {
    if (free_it)
      free(obj);
    return;
  }
  if (!(x = gev__xhub_find(gev__sync_hub_id(obj)))) {
    destroy_orphan(obj, k);
    if (free_it)
      free(obj);
    return;
  }
  gev__xhub_unref(x);
  if (!free_it) {
    gev__log(GEV_LOG_ERROR,
             "gev: an embedded sync object was destroyed from another thread "
             "while its hub runs; nothing was done (destroy it in its own "
             "thread, or use the _new/_free forms)");
    return;
  }
  if (gev__xsync_call(obj, destroy_and_free, (uintptr_t)k) < 0 &&
      errno == EXDEV) { /* its hub went meanwhile */
    destroy_orphan(obj, k);
    free(obj);
  }
}

void gev__sync_destroy(void *obj, const gev__sync_kind *k) {
  int where = gev__sync_where(obj, k);
  if (where > 0)
    destroy_here(obj, k);
  else if (where == 0)
    destroy_foreign(obj, k, 0);
}

void gev__sync_free(void *obj, const gev__sync_kind *k) {
  int where;
  if (!obj)
    return;
  where = gev__sync_where(obj, k);
  if (where == 0) {
    destroy_foreign(obj, k, 1);
    return;
  }
  if (where > 0)
    destroy_here(obj, k);
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

/* An object of another hub may be waited on when its kind allows it and
 * its hub lives. */
int gev__sync_wait_check(const gev_waitable *w) {
  const gev__sync_kind *k = kind_of(w);
  gev_hub *x;
  int where;
  if (!k->ready) { /* a kind gev_wait cannot wait on */
    errno = EINVAL;
    return -1;
  }
  if ((where = gev__sync_where(w->obj_, k)) != 0)
    return where > 0 ? 0 : -1;
  if (!k->x || !(x = gev__xhub_find(gev__sync_hub_id(w->obj_)))) {
    errno = EXDEV;
    return -1;
  }
  gev__xhub_unref(x);
  return gev__hub_get() ? 0 : -1;
}

/* Another hub's object is read with the kind's atomic peek. */
int gev__sync_wait_ready(const gev_waitable *w) {
  const gev__sync_kind *k = kind_of(w);
  if (gev__sync_where(w->obj_, k) > 0)
    return k->ready(w->obj_);
  return k->x->peek(w->obj_);
}

static void rawlink_fired(gev__rawlink *l, int err) {
  gev__wait_entry_fire((gev__wait_entry *)(void *)l, err, 0);
}

int gev__sync_wait_arm(gev__wait_entry *e) {
  if (gev__sync_where(e->w->obj_, kind_of(e->w)) == 0)
    return gev__xsync_watch_arm(e);
  e->link.fire = rawlink_fired;
  gev__rawlink_add(&gev__head(e->w->obj_)->links_, &e->link);
  return 0;
}

void gev__sync_wait_disarm(gev__wait_entry *e) {
  if (e->xproxy)
    gev__xsync_watch_disarm(e);
  else
    gev__rawlink_del(&e->link);
}
