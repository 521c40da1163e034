/*
 * The hub's deadlines: a two-level timer wheel over one libev timer (see
 * deadlines.h for why and how).
 *
 * State. `tick` is the first tick not yet served; the first level holds
 * the ticks [tick, sec_end * TICKS_PER_SEC), four to eight seconds, in a
 * ring indexed by tick; the second level the seconds [sec_end, sec_end +
 * L1_SLOTS), in a ring indexed by second; the far slot everything later.
 * Before `tick` comes within four seconds of the first level's end, second
 * sec_end is spread over the first level (cascade). Bitmaps say which
 * slots of each level are non-empty, so finding the next due tick skips
 * empty ones 64 at a time.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hub/deadlines.h"
#include "hub/hub_internal.h"

#define TICK_BITS 12
#define TICKS_PER_SEC (1u << TICK_BITS) /* 4096: a tick is 244 us */
#define L0_SLOTS (8u * TICKS_PER_SEC)   /* eight seconds of ticks */
#define L0_AHEAD (4u * TICKS_PER_SEC)   /* always covered ahead of tick */
#define L1_SLOTS 1024u                  /* seconds */
#define FAR_SCAN 64u                    /* the far slot is spread every 64 s */
#define KEEP_CAP 64u /* a served slot keeps an array this small */

struct gev__deadlines {
  ev_timer timer;      /* fires at armed_tick's end; active iff count > 0 */
  gev__hub *hub;       /* ro */
  uint64_t tick;       /* the first tick not yet served */
  uint64_t sec_end;    /* the first second not yet in the first level */
  uint64_t armed_tick; /* the tick the timer was set for */
  size_t count;        /* armed deadlines */
  uint64_t l0_bits[L0_SLOTS / 64];
  uint64_t l1_bits[L1_SLOTS / 64];
  gev__dl_slot l0[L0_SLOTS];
  gev__dl_slot l1[L1_SLOTS];
  gev__dl_slot far;
};

static uint64_t tick_of(double at) {
  return at > 0 ? (uint64_t)ceil(at * TICKS_PER_SEC) : 0;
}

static uint64_t l0_end(const gev__deadlines *d) {
  return d->sec_end << TICK_BITS;
}

/* ---- Slots -------------------------------------------------------------- */

static void set_bit(uint64_t *bits, size_t i) {
  bits[i / 64] |= 1ull << (i % 64);
}
static void clear_bit(uint64_t *bits, size_t i) {
  bits[i / 64] &= ~(1ull << (i % 64));
}

/* The bitmap and index of a slot of a level, or NULL for the far slot. */
static uint64_t *bits_of(gev__deadlines *d, const gev__dl_slot *s, size_t *i) {
  if (s >= d->l0 && s < d->l0 + L0_SLOTS) {
    *i = (size_t)(s - d->l0);
    return d->l0_bits;
  }
  if (s >= d->l1 && s < d->l1 + L1_SLOTS) {
    *i = (size_t)(s - d->l1);
    return d->l1_bits;
  }
  return NULL;
}

static int slot_grow(gev__dl_slot *s) {
  uint32_t cap = s->cap ? 2 * s->cap : 4;
  gev__dl_entry *e = realloc(s->e, cap * sizeof *e);
  if (!e) {
    errno = ENOMEM;
    return -1;
  }
  s->e = e;
  s->cap = cap;
  return 0;
}

static int slot_push(gev__deadlines *d, gev__dl_slot *s, double at,
                     gev__task *t) {
  size_t i;
  uint64_t *bits;
  if (s->n == s->cap && slot_grow(s) < 0)
    return -1;
  s->e[s->n] = (gev__dl_entry){at, t};
  t->dl.slot = s;
  t->dl.pos = s->n;
  if (s->n++ == 0 && (bits = bits_of(d, s, &i)))
    set_bit(bits, i);
  return 0;
}

static void slot_remove(gev__deadlines *d, gev__task *t) {
  gev__dl_slot *s = t->dl.slot;
  uint32_t pos = t->dl.pos;
  size_t i;
  uint64_t *bits;
  if (pos != --s->n) {
    s->e[pos] = s->e[s->n];
    s->e[pos].task->dl.pos = pos;
  }
  t->dl.slot = NULL;
  if (s->n == 0 && (bits = bits_of(d, s, &i)))
    clear_bit(bits, i);
}

/* Takes slot s's entries out: *taken gets them (the caller frees e). */
static void slot_take_all(gev__deadlines *d, gev__dl_slot *s,
                          gev__dl_slot *taken) {
  size_t i;
  uint64_t *bits = bits_of(d, s, &i);
  *taken = *s;
  memset(s, 0, sizeof *s);
  if (bits && taken->n)
    clear_bit(bits, i);
}

/* Gives a served slot's array back to it if it is empty and small, so that
 * a busy tick does not allocate every time; frees it otherwise. */
static void slot_recycle(gev__dl_slot *s, gev__dl_slot *taken) {
  if (!s->e && taken->cap <= KEEP_CAP) {
    s->e = taken->e;
    s->cap = taken->cap;
    return;
  }
  free(taken->e);
}

/* The slot an entry due at at belongs to. */
static gev__dl_slot *slot_for(gev__deadlines *d, double at) {
  uint64_t k = tick_of(at), s;
  if (k < d->tick)
    k = d->tick; /* already due: the next tick served */
  if (k < l0_end(d))
    return &d->l0[k % L0_SLOTS];
  s = k >> TICK_BITS;
  if (s < d->sec_end + L1_SLOTS)
    return &d->l1[s % L1_SLOTS];
  return &d->far;
}

/* Files every entry of taken again (its task learns its new place) and
 * recycles taken's array into home, the slot it came from. An entry whose
 * new slot cannot grow for lack of memory is not kept: its task is woken
 * with ENOMEM, as a park that could not arm its deadline fails. */
static void place_all(gev__deadlines *d, gev__dl_slot *home,
                      gev__dl_slot *taken) {
  for (uint32_t i = 0; i < taken->n; i++) {
    gev__dl_entry *e = &taken->e[i];
    if (slot_push(d, slot_for(d, e->at), e->at, e->task) == 0)
      continue;
    e->task->dl.slot = NULL;
    d->count--;
    d->hub->nwatchers--;
    gev__wake(e->task, NULL, ENOMEM);
  }
  slot_recycle(home, taken);
}

/* ---- Advancing ------------------------------------------------------------
 */

/* Keeps the first level L0_AHEAD ahead of tick: spreads the next second
 * of the second level over it, and the far slot over the second level
 * every FAR_SCAN seconds. A second that cannot be spread for lack of
 * memory stays (and is spread when its ticks come due). */
static void cascade(gev__deadlines *d) {
  while (l0_end(d) - d->tick < L0_AHEAD) {
    gev__dl_slot *s = &d->l1[d->sec_end % L1_SLOTS], taken;
    slot_take_all(d, s, &taken);
    d->sec_end++;
    place_all(d, s, &taken);
    if (d->sec_end % FAR_SCAN == 0 && d->far.n) {
      slot_take_all(d, &d->far, &taken);
      place_all(d, &d->far, &taken);
    }
  }
}

/* Moves an empty wheel to now: the next tick to serve is now's. */
static void rebase(gev__deadlines *d, double now) {
  d->tick = (uint64_t)floor(now * TICKS_PER_SEC);
  d->sec_end = (d->tick >> TICK_BITS) + 1;
  cascade(d);
}

/* Index of the first set bit of bits[] (n bits, a multiple of 64) at or
 * after from, wrapping, within count bits, as an offset from from; -1 if
 * none. */
static long next_set(const uint64_t *bits, size_t n, size_t from,
                     size_t count) {
  size_t done = 0;
  while (done < count) {
    size_t i = (from + done) % n, off = i % 64;
    uint64_t w = bits[i / 64] >> off;
    if (w) {
      size_t k = done + (size_t)__builtin_ctzll(w);
      return k < count ? (long)k : -1;
    }
    done += 64 - off;
  }
  return -1;
}

/* Sorts a slot's entries by deadline, in place and without allocating
 * (glibc's qsort may allocate): a Shell sort, whose last pass is the
 * insertion sort that suffices for the few entries a tick usually holds. */
static void sort_entries(gev__dl_entry *e, uint32_t n) {
  static const uint32_t gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};
  for (size_t g = 0; g < sizeof gaps / sizeof gaps[0]; g++) {
    uint32_t gap = gaps[g];
    for (uint32_t i = gap; i < n; i++) {
      gev__dl_entry x = e[i];
      uint32_t j = i;
      for (; j >= gap && e[j - gap].at > x.at; j -= gap)
        e[j] = e[j - gap];
      e[j] = x;
    }
  }
}

/* Serves slot s: its tasks in deadline order. The tasks are in memory
 * nothing else touched lately: the next ones are prefetched while one is
 * woken. */
static void serve_slot(gev__deadlines *d, gev__dl_slot *s) {
  gev__dl_slot taken;
  slot_take_all(d, s, &taken);
  sort_entries(taken.e, taken.n);
  for (uint32_t i = 0; i < taken.n && i < 4; i++)
    __builtin_prefetch(taken.e[i].task);
  for (uint32_t i = 0; i < taken.n; i++) {
    gev__task *t = taken.e[i].task;
    if (i + 4 < taken.n)
      __builtin_prefetch(taken.e[i + 4].task);
    if (i + 2 < taken.n && taken.e[i + 2].task->coro)
      __builtin_prefetch(taken.e[i + 2].task->coro);
    t->dl.slot = NULL;
    d->count--;
    d->hub->nwatchers--;
    gev__task_deadline_due(t);
  }
  slot_recycle(s, &taken);
}

/* Serves every tick that has ended by now. */
static void serve(gev__deadlines *d, double now) {
  uint64_t last = (uint64_t)floor(now * TICKS_PER_SEC); /* ended ticks */
  while (d->tick <= last && d->count > 0) {
    uint64_t end, span;
    long k;
    cascade(d);
    end = l0_end(d);
    span = (last + 1 < end ? last + 1 : end) - d->tick;
    k = next_set(d->l0_bits, L0_SLOTS, d->tick % L0_SLOTS, span);
    if (k < 0) {
      d->tick += span;
      continue;
    }
    d->tick += (uint64_t)k;
    serve_slot(d, &d->l0[d->tick % L0_SLOTS]);
    d->tick++;
  }
  if (d->count == 0)
    rebase(d, now); /* nothing armed: skip the empty ticks */
}

/* ---- The libev timer ------------------------------------------------------
 */

/* The tick the timer must fire at: the first non-empty tick of the first
 * level, or the moment the first non-empty later second (or the far slot)
 * is to be spread (empty seconds are spread in passing). */
static uint64_t next_tick(gev__deadlines *d) {
  long k =
      next_set(d->l0_bits, L0_SLOTS, d->tick % L0_SLOTS, l0_end(d) - d->tick);
  uint64_t at = UINT64_MAX;
  if (k >= 0)
    return d->tick + (uint64_t)k;
  k = next_set(d->l1_bits, L1_SLOTS, d->sec_end % L1_SLOTS, L1_SLOTS);
  if (k >= 0)
    at = ((d->sec_end + (uint64_t)k) << TICK_BITS) - L0_AHEAD;
  else if (d->far.n)
    at = (((d->sec_end / FAR_SCAN + 1) * FAR_SCAN) << TICK_BITS) - L0_AHEAD;
  return at > d->tick ? at : d->tick;
}

static void set_timer(gev__deadlines *d) {
  struct ev_loop *loop = d->hub->loop;
  uint64_t k;
  double in;
  if (d->count == 0) {
    if (ev_is_active(&d->timer))
      ev_timer_stop(loop, &d->timer);
    return;
  }
  k = next_tick(d);
  if (ev_is_active(&d->timer)) {
    if (k == d->armed_tick)
      return;
    ev_timer_stop(loop, &d->timer);
  }
  d->armed_tick = k;
  ev_now_update(loop);
  in = (double)k / TICKS_PER_SEC - gev_monotonic();
  ev_timer_set(&d->timer, in > 0 ? in : 0, 0);
  ev_timer_start(loop, &d->timer);
}

static void timer_fired(struct ev_loop *loop, ev_timer *w, int revents) {
  gev__deadlines *d = w->data;
  (void)loop, (void)revents;
  serve(d, gev_monotonic());
  set_timer(d);
}

/* ---- Arming ---------------------------------------------------------------
 */

int gev__deadlines_init(gev__hub *h) {
  gev__deadlines *d = calloc(1, sizeof *d);
  if (!d)
    return -1;
  d->hub = h;
  rebase(d, gev_monotonic());
  ev_init(&d->timer, timer_fired);
  d->timer.data = d;
  h->deadlines = d;
  return 0;
}

int gev__deadline_arm(gev__hub *h, gev__task *t, double at) {
  gev__deadlines *d = h->deadlines; /* made with the hub */
  if (d->count == 0)
    rebase(d, gev_monotonic()); /* the wheel may have idled for long */
  if (slot_push(d, slot_for(d, at), at, t) < 0)
    return -1;
  t->deadline_at = at;
  d->count++;
  h->nwatchers++;
  if (!ev_is_active(&d->timer) || tick_of(at) < d->armed_tick)
    set_timer(d);
  return 0;
}

void gev__deadline_disarm(gev__hub *h, gev__task *t) {
  gev__deadlines *d = h->deadlines;
  if (!t->dl.slot)
    return;
  slot_remove(d, t);
  d->count--;
  h->nwatchers--;
  if (d->count == 0)
    set_timer(d);
}

static void free_slots(gev__dl_slot *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(s[i].e);
}

void gev__deadlines_free(gev__hub *h) {
  gev__deadlines *d = h->deadlines;
  if (!d)
    return;
  free_slots(d->l0, L0_SLOTS);
  free_slots(d->l1, L1_SLOTS);
  free_slots(&d->far, 1);
  free(d);
  h->deadlines = NULL;
}
