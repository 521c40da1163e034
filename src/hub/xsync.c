/*
 * Sync objects used from other threads (see sync_priv.h, "Other
 * threads"): calls posted to the owning hub, and proxies, the owning
 * hub's stand-ins for waits of other hubs.
 *
 * A proxy's life, between the waiting hub W and the owning hub O:
 *
 *   W: the waiter posts `reg` and parks;
 *   O: reg runs: the kind's take() answers at once, or the proxy's task is
 *      queued on the object's wait queue (a watch: its rawlink on the
 *      object's links) and the proxy is listed in O;
 *   O: the object wakes the task (fires the rawlink) as it would a local
 *      waiter; the proxy answers: `reply` carries value and error to W;
 *   W: reply runs: it wakes the waiter with the answer.
 *   A waiter that leaves first (timeout, kill) posts `cancel`; O takes a
 *   still queued proxy off the queue (answering ECANCELED).
 *   Grants (a Semaphore unit, an RLock) must be acknowledged: O keeps the
 *   proxy listed until W posts `done`, which also hands the grant back
 *   when the waiter had left (xops.give_back, run in O). Until then O
 *   knows which of its proxies concern an object it destroys, and a late
 *   give-back never touches a freed object.
 *
 * Each side touches only its own fields (O: task, link, listing; W:
 * waiter, entry, replied, delivered, left); the answer is written by O
 * before it posts the reply, whose lock orders it for W. Every posted
 * message, every listing in O and the waiter each hold a reference; the
 * last one frees the proxy.
 */
#include <stdlib.h>
#include <string.h>

#include "hub/sync_priv.h"
#include "hub/xthread.h"

/* ---- Calls run in the owning hub ---------------------------------------- */

typedef struct call_msg {
  gev__xmsg m;
  gev__xsync_fn fn;
  void *obj;
  uintptr_t arg;
} call_msg;

static void run_call(gev__xmsg *m, int err) {
  call_msg *c = (call_msg *)m;
  c->fn(c->obj, c->arg, err);
  free(c);
}

int gev__xsync_call(void *obj, gev__xsync_fn fn, uintptr_t arg) {
  gev_hub *x = gev__xhub_find(gev__sync_hub_id(obj));
  call_msg *c;
  int rc = -1;
  if (!x) {
    errno = EXDEV;
    return -1;
  }
  if (!(c = calloc(1, sizeof *c))) {
    errno = ENOMEM;
    goto out_unref;
  }
  c->m.run = run_call;
  c->m.about = obj;
  c->fn = fn;
  c->obj = obj;
  c->arg = arg;
  if ((rc = gev__xhub_post(x, &c->m)) < 0) {
    free(c);
    errno = EXDEV;
  }
out_unref:
  gev__xhub_unref(x);
  return rc;
}

/* ---- Proxies ------------------------------------------------------------ */

struct gev__proxy {
  gev__task task; /* first: the stand-in waiter (O) */
  gev__xmsg reg, reply, cancel, done;
  unsigned refs; /* atomic */
  void *obj;
  const gev__sync_kind *kind;
  unsigned long long coro; /* the waiter's coroutine id */
  gev_hub *owner, *home;   /* O's and W's handles (references) */
  unsigned char nowait;    /* answer at once */
  unsigned char watch;     /* a gev_wait watch rather than a wait */
  /* O's side. */
  gev__proxy *prev, *next; /* O's hub->proxies while listed */
  gev__rawlink link;       /* a watch's stand-in rawlink */
  unsigned char listed, queued, obj_gone;
  /* The answer, written in O before the reply is posted. */
  void *value;
  int err;
  /* W's side. */
  gev__task *waiter;      /* a wait's task */
  gev__wait_entry *entry; /* a watch's entry, until it fired or left */
  unsigned char replied, delivered, left;
};

static gev__proxy *proxy_hold(gev__proxy *p) {
  __atomic_fetch_add(&p->refs, 1, __ATOMIC_RELAXED);
  return p;
}

static void proxy_unref(gev__proxy *p) {
  if (__atomic_fetch_sub(&p->refs, 1, __ATOMIC_ACQ_REL) != 1)
    return;
  gev__xhub_unref(p->owner);
  gev__xhub_unref(p->home);
  free(p);
}

/* Posts one of p's messages, which holds a reference while in flight;
 * a failed post drops it again. 0 or -1 (ESHUTDOWN). */
static int proxy_post(gev__proxy *p, gev_hub *to, gev__xmsg *m) {
  proxy_hold(p);
  if (gev__xhub_post(to, m) == 0)
    return 0;
  proxy_unref(p);
  return -1;
}

/* A grant needs W's acknowledgement (see above). */
static int needs_ack(const gev__proxy *p) {
  return !p->err && !p->watch && p->kind->x->give_back;
}

/* ---- The owning hub's side ---------------------------------------------- */

static void list_add(gev__hub *h, gev__proxy *p) {
  p->prev = NULL;
  p->next = h->proxies;
  if (h->proxies)
    h->proxies->prev = p;
  h->proxies = p;
  p->listed = 1;
  proxy_hold(p);
}

static void list_remove(gev__hub *h, gev__proxy *p) {
  if (!p->listed)
    return;
  if (p->prev)
    p->prev->next = p->next;
  else
    h->proxies = p->next;
  if (p->next)
    p->next->prev = p->prev;
  p->prev = p->next = NULL;
  p->listed = 0;
  proxy_unref(p);
}

/* Sends the answer to W. A grant stays listed until W's done; when W's
 * hub is gone, nobody will acknowledge it, so it is handed back here. */
static void answer(gev__hub *h, gev__proxy *p, void *value, int err) {
  int ack;
  p->queued = 0;
  p->value = value;
  p->err = err;
  if ((ack = needs_ack(p)) && !p->listed)
    list_add(h, p);
  if (proxy_post(p, p->home, &p->reply) < 0 && ack) {
    if (!p->obj_gone)
      p->kind->x->give_back(p->obj, p->coro);
    ack = 0;
  }
  if (!ack)
    list_remove(h, p); /* may free p */
}

/* The object woke the stand-in task as it wakes a waiter. */
static void proxy_resume(gev__cb *cb) {
  gev__proxy *p = (gev__proxy *)(void *)cb; /* resume is the task's first */
  gev__hub *h = p->task.hub;
  int err = p->task.wake_err;
  if (!err && p->kind->x->granted)
    p->kind->x->granted(p->obj, p->coro);
  answer(h, p, p->task.wake_value, err);
}

static void proxy_link_fired(gev__rawlink *l, int err) {
  gev__proxy *p =
      (gev__proxy *)(void *)((char *)l - offsetof(gev__proxy, link));
  answer(p->task.hub, p, NULL, err);
}

/* Queues the stand-in of p on its object (a task on the wait queue, or a
 * rawlink for a watch) and lists it. */
static void proxy_queue(gev__hub *h, gev__proxy *p) {
  memset(&p->task, 0, sizeof p->task);
  p->task.resume.run = proxy_resume;
  p->task.hub = h;
  if (p->watch) {
    p->link.fire = proxy_link_fired;
    gev__rawlink_add(&gev__head(p->obj)->links_, &p->link);
  } else {
    p->task.parked = 1; /* what gev__wake looks for */
    gev__waitq_append(gev__head_wq(p->obj), &p->task);
  }
  p->queued = 1;
  list_add(h, p);
}

static void proxy_register(gev__xmsg *m, int err) {
  gev__proxy *p = (gev__proxy *)(void *)((char *)m - offsetof(gev__proxy, reg));
  gev__hub *h = gev__hub_peek();
  void *value = NULL;
  int took, werr = 0;
  if (err == ESHUTDOWN || !h) {
    proxy_unref(p);
    return;
  }
  if (err || gev__xhub_closed(h)) {
    answer(h, p, NULL, err == EIDRM ? EIDRM : EXDEV);
  } else if (p->watch) {
    if (p->kind->ready(p->obj))
      answer(h, p, NULL, 0);
    else
      proxy_queue(h, p);
  } else {
    took = p->kind->x->take(p->obj, p->coro, p->nowait, &value, &werr);
    if (took)
      answer(h, p, value, werr);
    else
      proxy_queue(h, p);
  }
  proxy_unref(p); /* the message's */
}

/* W's waiter left before an answer: take a queued stand-in off its
 * object. One already woken answers as it was woken. */
static void proxy_cancel(gev__xmsg *m, int err) {
  gev__proxy *p =
      (gev__proxy *)(void *)((char *)m - offsetof(gev__proxy, cancel));
  gev__hub *h = gev__hub_peek();
  if (!err && h && p->queued) {
    if (p->watch) {
      gev__rawlink_del(&p->link);
      answer(h, p, NULL, ECANCELED);
    } else {
      gev__wake(&p->task, NULL, ECANCELED);
    }
  }
  proxy_unref(p);
}

/* W acknowledged a grant, or hands it back (its waiter had left). */
static void proxy_done(gev__xmsg *m, int err) {
  gev__proxy *p =
      (gev__proxy *)(void *)((char *)m - offsetof(gev__proxy, done));
  gev__hub *h = gev__hub_peek();
  if (!err && h) {
    if (p->left && !p->obj_gone)
      p->kind->x->give_back(p->obj, p->coro);
    list_remove(h, p);
  }
  proxy_unref(p);
}

/* obj is being destroyed in its hub h: its proxies must not touch it any
 * more (those still queued were just woken with EIDRM). */
void gev__xsync_obj_gone(gev__hub *h, const void *obj) {
  for (gev__proxy *p = h->proxies; p; p = p->next)
    if (p->obj == obj)
      p->obj_gone = 1;
}

/* The hub h closes: every proxy still queued is answered EXDEV (its
 * object belongs to a hub that is going away); grants waiting for W's
 * acknowledgement are forgotten. */
void gev__proxies_close(gev__hub *h) {
  gev__proxy *p, *next;
  for (p = h->proxies; p; p = next) {
    next = p->next;
    p->obj_gone = 1;
    if (!p->queued)
      continue;
    if (p->watch) {
      gev__rawlink_del(&p->link);
      answer(h, p, NULL, EXDEV);
    } else {
      gev__wake(&p->task, NULL, EXDEV);
    }
  }
}

/* After the teardown's drain: drops what is still listed. */
void gev__proxies_finish(gev__hub *h) {
  while (h->proxies)
    list_remove(h, h->proxies);
}

/* ---- The waiting hub's side --------------------------------------------- */

/* A watch's entry lets go of its proxy (it fired, or the wait ended):
 * the entry's reference and the hub's expectation go. */
static void watch_detach(gev__proxy *p) {
  gev__hub *h = gev__hub_peek();
  p->entry->xproxy = NULL;
  p->entry = NULL;
  if (h)
    gev__hub_expect(h, -1);
  proxy_unref(p);
}

static void proxy_reply(gev__xmsg *m, int err) {
  gev__proxy *p =
      (gev__proxy *)(void *)((char *)m - offsetof(gev__proxy, reply));
  if (err) { /* a forked child dropping its hub */
    proxy_unref(p);
    return;
  }
  p->replied = 1;
  if (p->watch) {
    if (!p->left && p->entry) {
      gev__wait_entry *e = p->entry;
      watch_detach(p);
      gev__wait_entry_fire(e, p->err ? EIDRM : 0, 0);
    }
  } else if (!p->left) {
    p->delivered = (unsigned char)gev__wake(p->waiter, p->value, p->err);
    if (p->delivered && needs_ack(p))
      proxy_post(p, p->owner, &p->done);
  } else if (needs_ack(p)) {
    proxy_post(p, p->owner, &p->done); /* hands it back */
  }
  proxy_unref(p);
}

/* A new proxy of the running coroutine (or of a watch) for obj, holding
 * the waiter's reference; NULL with errno (EXDEV, ENOMEM). */
static gev__proxy *proxy_new(void *obj, const gev__sync_kind *k) {
  gev_hub *owner = gev__xhub_find(gev__sync_hub_id(obj)), *home;
  gev__proxy *p;
  if (!owner) {
    errno = EXDEV;
    return NULL;
  }
  if (!(home = gev__xhub_self()) || !(p = calloc(1, sizeof *p))) {
    gev__xhub_unref(owner);
    errno = ENOMEM;
    return NULL;
  }
  p->refs = 1;
  p->obj = obj;
  p->kind = k;
  p->owner = owner;
  p->home = gev__xhub_ref(home);
  p->reg.run = proxy_register;
  p->reg.about = obj;
  p->reply.run = proxy_reply;
  p->cancel.run = proxy_cancel;
  p->done.run = proxy_done;
  return p;
}

int gev__xsync_wait(void *obj, const gev__sync_kind *k, double timeout,
                    int nowait, const char *what, void **value) {
  gev__task *t;
  gev__proxy *p;
  void *v = NULL;
  int rc, err;
  if (gev__bad_timeout(timeout) || !(t = gev__blocking_task()))
    return -1;
  if (!nowait && timeout == 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  if (!(p = proxy_new(obj, k)))
    return -1;
  p->coro = gev_coro_id(t->coro);
  p->nowait = (unsigned char)(nowait != 0);
  p->waiter = t;
  if (proxy_post(p, p->owner, &p->reg) < 0) {
    proxy_unref(p);
    errno = EXDEV;
    return -1;
  }
  gev__hub_expect(t->hub, +1);
  rc = gev__park_task(t, nowait ? -1 : timeout, what, &v);
  err = rc < 0 ? errno : EINTR;
  gev__hub_expect(t->hub, -1);
  if (!p->delivered) {
    /* The park ended otherwise: leave, and hand back what may come. */
    p->left = 1;
    if (p->replied) {
      if (needs_ack(p))
        proxy_post(p, p->owner, &p->done);
    } else {
      proxy_post(p, p->owner, &p->cancel);
    }
    rc = -1;
  }
  proxy_unref(p);
  if (rc < 0) {
    errno = err;
    return -1;
  }
  if (value)
    *value = v;
  return 0;
}

/* ---- gev_wait on an object of another hub ------------------------------- */

int gev__xsync_watch_arm(gev__wait_entry *e) {
  gev__hub *h = gev__hub_get();
  gev__proxy *p;
  if (!h || !(p = proxy_new(e->w->obj_, (const void *)e->w->ops_)))
    return -1;
  p->watch = 1;
  p->entry = e;
  if (proxy_post(p, p->owner, &p->reg) < 0) {
    proxy_unref(p);
    errno = EXDEV;
    return -1;
  }
  e->xproxy = p;
  gev__hub_expect(h, +1);
  return 0;
}

void gev__xsync_watch_disarm(gev__wait_entry *e) {
  gev__proxy *p = e->xproxy;
  if (!p)
    return;
  p->left = 1;
  if (!p->replied)
    proxy_post(p, p->owner, &p->cancel);
  watch_detach(p);
}
