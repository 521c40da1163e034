/*
 * Internal: the hub's deadlines, a timer wheel for parked tasks.
 *
 * Every park with a timeout (sleep, a recv with a socket timeout, a wait
 * in a Timeout scope) arms a deadline and every wake that comes first
 * disarms it, so a busy server arms and disarms millions. One libev timer
 * per deadline puts them all in libev's heap, where an insertion or a
 * removal walks log(n) levels and writes the heap index of every watcher it
 * moves: at a million parked greenlets that is a dozen cache misses per
 * timer, more than everything else a wake costs. Here:
 *
 *   - A deadline `at` (on gev_monotonic()'s clock) falls in tick
 *     k = ceil(at * 4096): ticks of 1/4096 s (244 us), an exact power of
 *     two, so the arithmetic is exact and a deadline is never served in a
 *     tick that ends before it.
 *   - The near ticks, the next four to eight seconds, each have a slot of
 *     the first level: an array of (deadline, task) entries. Arming
 *     appends; a disarm moves the slot's last entry into the hole (that
 *     entry's task learns its new place). Later seconds have a slot each in
 *     the second level (1024 of them: 17 minutes); beyond that one far
 *     slot. As time advances, a second's slot is spread over the first
 *     level's ticks four seconds before they are due, and the far slot
 *     over the second level.
 *   - One libev timer, armed for the end of the first non-empty tick (or
 *     the next cascade), serves them all. When it fires, every tick that
 *     has ended is served in order, each slot's entries sorted by deadline
 *     without touching the tasks (they are in the array), then woken one
 *     by one, the next tasks' memory prefetched meanwhile: tasks are woken
 *     in deadline order, never before their deadline, at most a tick after
 *     it plus the loop's own delay.
 *
 * Each armed deadline counts as one of the hub's watchers (gev_hub_stats),
 * as the libev timer it replaces did. Lives in the hub; a task's place in
 * the wheel is in the task.
 */
#ifndef GEV_SRC_HUB_DEADLINES_H
#define GEV_SRC_HUB_DEADLINES_H

#include <stdint.h>

typedef struct gev__hub gev__hub;
typedef struct gev__task gev__task;
typedef struct gev__deadlines gev__deadlines;

/* An armed deadline. */
typedef struct gev__dl_entry {
  double at;
  gev__task *task;
} gev__dl_entry;

/* A slot: the entries of one tick (first level), one second (second
 * level) or all the later ones. */
typedef struct gev__dl_slot {
  gev__dl_entry *e;
  uint32_t n, cap;
} gev__dl_slot;

/* A task's place in the wheel: its slot (NULL when no deadline is armed)
 * and its entry's index there. */
typedef struct gev__dl_place {
  gev__dl_slot *slot;
  uint32_t pos;
} gev__dl_place;

/* Arms t's deadline for at (t->deadline_at is set to it); t must not have
 * one armed. When it is due, gev__task_deadline_due(t) runs from the hub's
 * loop, the deadline disarmed. 0, or -1 with ENOMEM (a slot could not
 * grow). */
int gev__deadline_arm(gev__hub *h, gev__task *t, double at);

/* Disarms t's deadline if armed. */
void gev__deadline_disarm(gev__hub *h, gev__task *t);

/* Whether the task whose place is p has a deadline armed. */
static inline int gev__deadline_armed(const gev__dl_place *p) {
  return p->slot != 0;
}

/* Makes h's wheel (with the hub): 0, or -1 (no memory). */
int gev__deadlines_init(gev__hub *h);

/* Frees h's wheel, once h's loop is destroyed (the wheel's timer went
 * with it). */
void gev__deadlines_free(gev__hub *h);

/* hub.c: a deadline came due (see gev__deadline_arm). */
void gev__task_deadline_due(gev__task *t);

#endif
