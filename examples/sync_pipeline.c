/*
 * sync_pipeline — producers and consumers around a bounded Queue, and an
 * Event that tells everyone to stop (gev/sync.h).
 *
 *   sync_pipeline [ITEMS]
 *
 * Two producers put ITEMS numbers each (default 20) into a queue that
 * holds at most 4, so they park whenever the consumers fall behind. Three
 * consumers add up what they get. When the producers are done, main waits
 * until every item has been processed (the queue's task counter), then
 * sets the "stop" Event; consumers waiting on an empty queue notice it
 * within their poll interval and return. Prints the total and exits 0.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "gev/hub.h"
#include "gev/sync.h"

/* Objects other greenlets use live in static storage (or on the heap),
 * never on a stack: gev/coro.h's shared-stack rule. */
static gev_queue *queue;
static gev_event *stop;
static long items = 20, total;

static void *producer(void *arg) {
  long first = (long)(intptr_t)arg;
  for (long i = first; i < first + items; i++)
    if (gev_queue_put(queue, (void *)(intptr_t)i, -1) < 0) /* parks when full */
      return gev_fail(errno, "put");
  return NULL;
}

static void *consumer(void *arg) {
  void *item;
  while (gev_event_is_set(stop) == 0) {
    /* Wait a little for an item; ETIMEDOUT just means "none yet". */
    if (gev_queue_get(queue, 0.05, &item) < 0) {
      if (errno == ETIMEDOUT)
        continue;
      return gev_fail(errno, "get");
    }
    total += (long)(intptr_t)item;
    gev_queue_task_done(queue);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc > 1)
    items = atol(argv[1]);
  gev_queue_opts opts = {.maxsize = 4}; /* bounded: producers wait */
  queue = gev_queue_new(&opts);
  stop = gev_event_new();
  gev_greenlet *g[5] = {
      gev_spawn(producer, (void *)(intptr_t)0),
      gev_spawn(producer, (void *)(intptr_t)1000),
      gev_spawn(consumer, NULL),
      gev_spawn(consumer, NULL),
      gev_spawn(consumer, NULL),
  };
  gev_join_all(g, 2, -1);           /* the producers are done ... */
  gev_queue_join(queue, -1);        /* ... and every item processed */
  gev_event_set(stop);              /* now the consumers may go */
  int done = gev_join_all(g, 5, 5); /* all five, within 5 s */
  printf("consumed %ld items, total %ld, %d greenlets finished\n", 2 * items,
         total, done);
  for (int i = 0; i < 5; i++)
    gev_greenlet_unref(g[i]);
  gev_queue_free(queue);
  gev_event_free(stop);
  gev_hub_destroy();
  return done == 5 ? 0 : 1;
}
