/*
 * Channel: an unbuffered rendezvous. It is the queue engine of queue.c with
 * capacity zero, so nothing is ever stored: a put hands its item to a
 * parked getter, or parks until a getter takes it from the put's record.
 */
#include <stdlib.h>

#include "hub/queue_priv.h"
#include "hub/sync_priv.h"

int gev_channel_init(gev_channel *c) {
  return gev__queue_setup(c ? &c->q_ : NULL, NULL, 0);
}

gev_channel *gev_channel_new(void) {
  gev_channel *c = gev__sync_alloc(sizeof *c);
  return gev__sync_made(c, c ? gev_channel_init(c) : -1);
}

void gev_channel_destroy(gev_channel *c) {
  if (c)
    gev_queue_destroy(&c->q_);
}

/* q_ is the first member: the channel is freed as its queue. */
void gev_channel_free(gev_channel *c) { gev_queue_free(c ? &c->q_ : NULL); }

int gev_channel_put(gev_channel *c, void *item, double timeout) {
  if (!c) {
    errno = EINVAL;
    return -1;
  }
  return gev__queue_put(&c->q_, item, timeout, 0);
}

int gev_channel_try_put(gev_channel *c, void *item) {
  if (!c) {
    errno = EINVAL;
    return -1;
  }
  return gev__queue_put(&c->q_, item, 0, 1);
}

int gev_channel_get(gev_channel *c, double timeout, void **item) {
  if (!c) {
    errno = EINVAL;
    return -1;
  }
  return gev__queue_get(&c->q_, timeout, item, 0);
}

int gev_channel_try_get(gev_channel *c, void **item) {
  if (!c) {
    errno = EINVAL;
    return -1;
  }
  return gev__queue_get(&c->q_, 0, item, 1);
}

int gev_channel_close(gev_channel *c) {
  if (!c) {
    errno = EINVAL;
    return -1;
  }
  return gev_queue_close(&c->q_);
}
