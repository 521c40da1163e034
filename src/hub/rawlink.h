/*
 * Internal: rawlinks, the one way an object tells gev_wait / gev_iwait
 * (waitable.h) that it turned ready, without a coroutine parked on it
 * (gevent's rawlink).
 *
 * An object that can be waited on keeps a list of rawlinks; a watcher adds
 * one, and the object fires the whole list when it turns ready (an Event
 * set, a Semaphore released, a socket closed ...) or goes away (err
 * EIDRM). Firing unlinks each rawlink before calling it, so a fired rawlink
 * never touches the object again, and a watcher that stops watching just
 * deletes its rawlink if it is still linked. Callbacks run in whatever
 * context fired them (any coroutine of the thread, or the hub) and must
 * not block. Everything lives on the heap (the shared-stack rule).
 */
#ifndef GEV_SRC_HUB_RAWLINK_H
#define GEV_SRC_HUB_RAWLINK_H

#include <stddef.h>

typedef struct gev__rawlink gev__rawlink;
struct gev__rawlink {
  gev__rawlink *prev, *next;              /* private: on one object's list */
  gev__rawlink **head;                    /* private: that list, or NULL */
  void (*fire)(gev__rawlink *l, int err); /* ro: set by the watcher */
};

/* Appends l to the list at *head (FIFO: links fire in the order added). */
static inline void gev__rawlink_add(gev__rawlink **head, gev__rawlink *l) {
  gev__rawlink *last = *head ? (*head)->prev : NULL;
  l->head = head;
  l->next = NULL;
  if (!last) {
    l->prev = l; /* the first keeps the last in prev */
    *head = l;
    return;
  }
  l->prev = last;
  last->next = l;
  (*head)->prev = l;
}

/* Takes l off its list; does nothing if it is on none. */
static inline void gev__rawlink_del(gev__rawlink *l) {
  gev__rawlink **head = l->head;
  if (!head)
    return;
  if (l == *head)
    *head = l->next;
  else
    l->prev->next = l->next;
  if (l->next)
    l->next->prev = l->prev;
  else if (*head)
    (*head)->prev = l->prev;
  l->head = NULL;
  l->prev = l->next = NULL;
}

/* Fires every rawlink of the list, in order, each unlinked first. */
static inline void gev__rawlink_fire_all(gev__rawlink **head, int err) {
  gev__rawlink *l;
  while ((l = *head) != NULL) {
    gev__rawlink_del(l);
    l->fire(l, err);
  }
}

#endif
