/*
 * Internal: the queue engine that Channel reuses (queue.c). A channel is a
 * queue of capacity 0: every put waits for a getter to take its item.
 */
#ifndef GEV_SRC_HUB_QUEUE_PRIV_H
#define GEV_SRC_HUB_QUEUE_PRIV_H

#include "gev/sync.h"

/* Initialises q holding at most capacity items (SIZE_MAX: unbounded). */
int gev__queue_setup(gev_queue *q, const gev_queue_opts *opts, size_t capacity);
/* Put / get; try makes a call that would wait fail with EAGAIN. */
int gev__queue_put(gev_queue *q, void *item, double timeout, int try);
int gev__queue_get(gev_queue *q, double timeout, void **item, int try);

#endif
