/*
 * Queue: FIFO, LIFO or priority order, bounded or not, joinable, closable;
 * and the engine of Channel, which is a queue of capacity zero.
 *
 * Waiters. Getters park on the head's `waiters_` and are woken with the
 * item itself,
 * so a woken getter never reads the queue again. Putters park on
 * `putters_`, but their item has to reach whoever frees a slot, so each
 * parked putter also links a heap record {task, item} into the queue's
 * `put_head_` list, in the same FIFO order. A getter that frees a slot
 * takes the first record whose task it can still wake (gev__wake says
 * whether the wake counted: a putter that was killed or timed out has
 * already been woken and is skipped), moves its item into the queue and
 * unlinks the record. The record belongs to the putter, which frees it
 * when it resumes, unlinking it first if nobody did.
 *
 * Invariants: getters wait only while the queue is empty (a put hands its
 * item to a parked getter directly); putters wait only while it is full.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub/queue_priv.h"
#include "hub/sync_priv.h"

typedef struct slot {
  void *item;
  uint64_t seq; /* put order, to keep equal priorities FIFO */
} slot;

typedef struct put_rec {
  struct put_rec *prev, *next;
  gev__task *task;
  void *item;
  int linked;
} put_rec;

static void queue_teardown(void *obj);
static int queue_ready(const void *obj);
static GEV__SYNC_KIND(queue_kind, GEV__MAGIC_QUEUE, queue_teardown,
                      queue_ready);

static int queue_check(const gev_queue *q) {
  return gev__sync_check(q, &queue_kind);
}

/* Parked getters. */
static gev__waitq *getters(gev_queue *q) { return gev__head_wq(q); }

/* ---- Item storage ---------------------------------------------------- */

static slot *slots(const gev_queue *q) { return q->slots_; }

static int before(const gev_queue *q, const slot *a, const slot *b) {
  int c = q->cmp_(a->item, b->item);
  return c < 0 || (c == 0 && a->seq < b->seq);
}

static void heap_up(gev_queue *q, size_t i) {
  slot *s = slots(q);
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!before(q, &s[i], &s[parent]))
      break;
    slot t = s[i];
    s[i] = s[parent];
    s[parent] = t;
    i = parent;
  }
}

static void heap_down(gev_queue *q, size_t i) {
  slot *s = slots(q);
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, min = i;
    if (l < q->count_ && before(q, &s[l], &s[min]))
      min = l;
    if (r < q->count_ && before(q, &s[r], &s[min]))
      min = r;
    if (min == i)
      return;
    slot t = s[i];
    s[i] = s[min];
    s[min] = t;
    i = min;
  }
}

/* Makes room for one more item, keeping the logical order. */
static int store_grow(gev_queue *q) {
  size_t ncap = q->cap_ ? q->cap_ * 2 : 16;
  if (ncap > q->maxsize_)
    ncap = q->maxsize_;
  if (ncap <= q->cap_ || ncap > SIZE_MAX / sizeof(slot)) {
    errno = ENOMEM;
    return -1;
  }
  slot *n = malloc(ncap * sizeof(slot));
  if (!n) {
    errno = ENOMEM;
    return -1;
  }
  for (size_t i = 0; i < q->count_; i++) {
    size_t from = q->order_ == GEV_QUEUE_FIFO ? (q->first_ + i) % q->cap_ : i;
    n[i] = slots(q)[from];
  }
  free(q->slots_);
  q->slots_ = n;
  q->cap_ = ncap;
  q->first_ = 0;
  return 0;
}

static int store_push(gev_queue *q, void *item) {
  if (q->count_ == q->cap_ && store_grow(q) < 0)
    return -1;
  slot e = {item, q->seq_++};
  switch (q->order_) {
  case GEV_QUEUE_FIFO:
    slots(q)[(q->first_ + q->count_) % q->cap_] = e;
    q->count_++;
    break;
  case GEV_QUEUE_LIFO:
    slots(q)[q->count_++] = e;
    break;
  default:
    slots(q)[q->count_++] = e;
    heap_up(q, q->count_ - 1);
  }
  return 0;
}

static void *store_head(const gev_queue *q) {
  switch (q->order_) {
  case GEV_QUEUE_FIFO:
    return slots(q)[q->first_].item;
  case GEV_QUEUE_LIFO:
    return slots(q)[q->count_ - 1].item;
  default:
    return slots(q)[0].item;
  }
}

static void *store_pop(gev_queue *q) {
  void *item = store_head(q);
  switch (q->order_) {
  case GEV_QUEUE_FIFO:
    q->first_ = (q->first_ + 1) % q->cap_;
    q->count_--;
    break;
  case GEV_QUEUE_LIFO:
    q->count_--;
    break;
  default:
    slots(q)[0] = slots(q)[--q->count_];
    heap_down(q, 0);
  }
  return item;
}

/* ---- Parked putters ---------------------------------------------------- */

static void rec_append(gev_queue *q, put_rec *r) {
  put_rec *tail = q->put_tail_;
  r->prev = tail;
  r->next = NULL;
  r->linked = 1;
  if (tail)
    tail->next = r;
  else
    q->put_head_ = r;
  q->put_tail_ = r;
}

static void rec_unlink(gev_queue *q, put_rec *r) {
  if (r->prev)
    r->prev->next = r->next;
  else
    q->put_head_ = r->next;
  if (r->next)
    r->next->prev = r->prev;
  else
    q->put_tail_ = r->prev;
  r->linked = 0;
}

/* Takes the item of the first putter still waiting and wakes it (err 0:
 * "your item was taken"). 1 with *item, 0 if no putter waits. */
static int take_from_putter(gev_queue *q, void **item) {
  put_rec *r;
  while ((r = q->put_head_) != NULL) {
    rec_unlink(q, r);
    if (gev__wake(r->task, NULL, 0)) {
      *item = r->item;
      q->unfinished_++;
      return 1;
    }
  }
  return 0;
}

/* Wakes every parked putter with err; their items are not added. */
static void fail_putters(gev_queue *q, int err) {
  put_rec *r;
  while ((r = q->put_head_) != NULL) {
    rec_unlink(q, r);
    gev__wake(r->task, NULL, err);
  }
}

/* ---- Life cycle -------------------------------------------------------- */

int gev__queue_setup(gev_queue *q, const gev_queue_opts *opts,
                     size_t capacity) {
  gev_queue_opts o = opts ? *opts : (gev_queue_opts){0};
  if ((unsigned)o.order > GEV_QUEUE_PRIORITY ||
      (o.order == GEV_QUEUE_PRIORITY && !o.cmp)) {
    errno = EINVAL;
    return -1;
  }
  if (gev__sync_setup(q, sizeof *q, &queue_kind) < 0)
    return -1;
  q->maxsize_ = capacity;
  q->cmp_ = o.cmp;
  q->item_free_ = o.item_free;
  q->order_ = o.order;
  return 0;
}

int gev_queue_init(gev_queue *q, const gev_queue_opts *opts) {
  size_t max = opts && opts->maxsize ? opts->maxsize : SIZE_MAX;
  return gev__queue_setup(q, opts, max);
}

gev_queue *gev_queue_new(const gev_queue_opts *opts) {
  gev_queue *q = gev__sync_alloc(sizeof *q);
  return gev__sync_made(q, q ? gev_queue_init(q, opts) : -1);
}

/* Destroy, after the getters were woken: the other waiters, then the
 * items still stored (to item_free, in get order). */
static void queue_teardown(void *obj) {
  gev_queue *q = obj;
  fail_putters(q, EIDRM);
  gev__sync_wake_all_err(&q->peekers_, EIDRM);
  gev__sync_wake_all_err(&q->joiners_, EIDRM);
  while (q->count_ > 0) {
    void *item = store_pop(q);
    if (q->item_free_)
      q->item_free_(item);
  }
  free(q->slots_);
  q->slots_ = NULL;
  q->cap_ = 0;
}

void gev_queue_destroy(gev_queue *q) { gev__sync_destroy(q, &queue_kind); }

void gev_queue_free(gev_queue *q) { gev__sync_free(q, &queue_kind); }

/* A get would not wait: an item, a parked putter, or closed. */
static int queue_ready(const void *obj) {
  const gev_queue *q = obj;
  return q->count_ > 0 || q->put_head_ || q->closed_;
}

gev_waitable gev_waitable_queue(gev_queue *q) {
  return gev__sync_waitable(q, &queue_kind);
}

gev_waitable gev_waitable_channel(gev_channel *c) {
  return gev__sync_waitable(c ? &c->q_ : NULL, &queue_kind);
}

/* ---- Put ----------------------------------------------------------- */

/* Delivers item without waiting: to a parked getter, else into free
 * space. 1 delivered, 0 the caller must wait, -1 on error. */
static int put_now(gev_queue *q, void *item) {
  if (q->closed_) {
    errno = EPIPE;
    return -1;
  }
  if (gev__wq_len(&q->peekers_) > 0)
    gev__waitq_wake_all(gev__wq(&q->peekers_), item, 0);
  if (gev__waitq_wake_one(getters(q), item, 0)) {
    q->unfinished_++;
    return 1;
  }
  if (q->count_ >= q->maxsize_)
    return 0;
  if (store_push(q, item) < 0)
    return -1;
  q->unfinished_++;
  gev__sync_notify(q);
  return 1;
}

/* Parks until a getter takes item (it then unlinks our record). */
static int put_wait(gev_queue *q, void *item, double timeout) {
  put_rec *r = malloc(sizeof *r);
  if (!r) {
    errno = ENOMEM;
    return -1;
  }
  r->task = gev__task_current();
  r->item = item;
  if (!r->task)
    goto out_free_rec;
  rec_append(q, r);
  gev__sync_notify(q); /* a get would now take our item (a Channel) */
  int rc = gev__waitq_wait(gev__wq(&q->putters_), timeout,
                           q->maxsize_ ? "Queue.put" : "Channel.put", NULL);
  /* Still linked only if we left on our own (kill, timeout): then the
   * queue is still alive, since destroying it unlinks every record. */
  if (r->linked)
    rec_unlink(q, r);
  free(r);
  return rc;

out_free_rec:
  free(r);
  return -1;
}

int gev__queue_put(gev_queue *q, void *item, double timeout, int try) {
  if (queue_check(q) < 0 || gev__bad_timeout(timeout))
    return -1;
  int rc = put_now(q, item);
  if (rc != 0)
    return rc < 0 ? -1 : 0;
  if (timeout == 0) {
    errno = try ? EAGAIN : ETIMEDOUT;
    return -1;
  }
  return put_wait(q, item, timeout);
}

int gev_queue_put(gev_queue *q, void *item, double timeout) {
  return gev__queue_put(q, item, timeout, 0);
}

int gev_queue_try_put(gev_queue *q, void *item) {
  return gev__queue_put(q, item, 0, 1);
}

/* ---- Get and peek ------------------------------------------------------ */

/* Takes the next item without waiting: 1 with *item, 0 the caller must
 * wait, -1 on error (closed and empty). */
static int get_now(gev_queue *q, void **item) {
  if (q->count_ > 0) {
    *item = store_pop(q);
    void *moved;
    if (q->put_head_ && take_from_putter(q, &moved))
      store_push(q, moved); /* cannot fail: a slot was just freed */
    return 1;
  }
  if (q->put_head_ && take_from_putter(q, item))
    return 1;
  if (q->closed_) {
    errno = EPIPE;
    return -1;
  }
  return 0;
}

int gev__queue_get(gev_queue *q, double timeout, void **item, int try) {
  if (queue_check(q) < 0 || gev__bad_timeout(timeout))
    return -1;
  if (!item) {
    errno = EINVAL;
    return -1;
  }
  int rc = get_now(q, item);
  if (rc != 0)
    return rc < 0 ? -1 : 0;
  if (timeout == 0) {
    errno = try ? EAGAIN : ETIMEDOUT;
    return -1;
  }
  return gev__waitq_wait(getters(q), timeout,
                         q->maxsize_ ? "Queue.get" : "Channel.get", item);
}

int gev_queue_get(gev_queue *q, double timeout, void **item) {
  return gev__queue_get(q, timeout, item, 0);
}

int gev_queue_try_get(gev_queue *q, void **item) {
  return gev__queue_get(q, 0, item, 1);
}

static int queue_peek(gev_queue *q, double timeout, void **item, int try) {
  if (queue_check(q) < 0 || gev__bad_timeout(timeout))
    return -1;
  if (!item) {
    errno = EINVAL;
    return -1;
  }
  if (q->count_ > 0) {
    *item = store_head(q);
    return 0;
  }
  if (q->put_head_) {
    *item = ((put_rec *)q->put_head_)->item;
    return 0;
  }
  if (q->closed_) {
    errno = EPIPE;
    return -1;
  }
  if (timeout == 0) {
    errno = try ? EAGAIN : ETIMEDOUT;
    return -1;
  }
  return gev__waitq_wait(gev__wq(&q->peekers_), timeout, "Queue.peek", item);
}

int gev_queue_peek(gev_queue *q, double timeout, void **item) {
  return queue_peek(q, timeout, item, 0);
}

int gev_queue_try_peek(gev_queue *q, void **item) {
  return queue_peek(q, 0, item, 1);
}

/* ---- State --------------------------------------------------------- */

long gev_queue_size(const gev_queue *q) {
  if (queue_check(q) < 0)
    return -1;
  return (long)q->count_;
}

int gev_queue_empty(const gev_queue *q) {
  if (queue_check(q) < 0)
    return -1;
  return q->count_ == 0;
}

int gev_queue_full(const gev_queue *q) {
  if (queue_check(q) < 0)
    return -1;
  return q->maxsize_ != SIZE_MAX && q->count_ >= q->maxsize_;
}

/* ---- Joinable -------------------------------------------------------- */

int gev_queue_task_done(gev_queue *q) {
  if (queue_check(q) < 0)
    return -1;
  if (q->unfinished_ == 0) {
    errno = EOVERFLOW;
    return -1;
  }
  if (--q->unfinished_ == 0)
    gev__waitq_wake_all(gev__wq(&q->joiners_), GEV__GRANTED, 0);
  return 0;
}

int gev_queue_join(gev_queue *q, double timeout) {
  if (queue_check(q) < 0 || gev__bad_timeout(timeout))
    return -1;
  if (q->unfinished_ == 0)
    return 0;
  if (timeout == 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  return gev__waitq_wait(gev__wq(&q->joiners_), timeout, "Queue.join", NULL);
}

long gev_queue_unfinished(const gev_queue *q) {
  if (queue_check(q) < 0)
    return -1;
  return (long)q->unfinished_;
}

/* ---- Close ---------------------------------------------------------- */

int gev_queue_close(gev_queue *q) {
  if (queue_check(q) < 0)
    return -1;
  if (q->closed_)
    return 0;
  q->closed_ = 1;
  fail_putters(q, EPIPE);
  gev__waitq_wake_all(getters(q), NULL, EPIPE);
  gev__sync_wake_all_err(&q->peekers_, EPIPE);
  gev__sync_notify(q); /* a get now fails at once */
  return 0;
}

int gev_queue_closed(const gev_queue *q) {
  if (queue_check(q) < 0)
    return -1;
  return q->closed_;
}
