/*
 * Internal: what the sync primitives (event.c, lock.c, queue.c, channel.c,
 * pool.c) share: the view of a public wait-queue slot as gev's wait queue,
 * the magic numbers that tell a live object from a destroyed one, the
 * owner check, and the "you got it" value a releaser hands to a waiter.
 */
#ifndef GEV_SRC_HUB_SYNC_PRIV_H
#define GEV_SRC_HUB_SYNC_PRIV_H

#include <errno.h>
#include <stdalign.h>
#include <stdint.h>

#include "gev/sync.h"
#include "hub/park.h"

_Static_assert(sizeof(gev__waitq_storage) == sizeof(gev__waitq),
               "gev: public wait-queue storage must match gev__waitq");
_Static_assert(alignof(gev__waitq_storage) == alignof(gev__waitq),
               "gev: public wait-queue storage must match gev__waitq");

/* The public storage is only ever accessed through this view. */
static inline gev__waitq *gev__wq(gev__waitq_storage *s) {
  return (gev__waitq *)(void *)s;
}

static inline size_t gev__wq_len(const gev__waitq_storage *s) {
  return ((const gev__waitq *)(const void *)s)->len;
}

/* One magic number per kind of object; 0 after destroy. */
enum {
  GEV__MAGIC_EVENT = 0x67657645u,
  GEV__MAGIC_RESULT = 0x67657652u,
  GEV__MAGIC_SEM = 0x67657653u,
  GEV__MAGIC_RLOCK = 0x6765764cu,
  GEV__MAGIC_QUEUE = 0x67657651u,
  GEV__MAGIC_POOL = 0x67657650u,
};

/* The value a releaser wakes a waiter with to say "the resource is now
 * yours" (a semaphore unit, a lock, a pool slot). */
extern const char gev__sync_granted;
#define GEV__GRANTED ((void *)&gev__sync_granted)

/* Checks that obj is a live object of the given kind owned by the calling
 * thread's hub. 0, or -1 with EINVAL (NULL, destroyed, wrong kind) or
 * EXDEV (another thread's hub, or a hub destroyed since). */
int gev__sync_check(const void *obj, unsigned magic, unsigned want, void *hub);

/* The token naming the calling thread's hub, for a new object's hub_
 * field; NULL with ENOMEM. The token is the hub's id (gev__hub_id), never
 * reused, stored in the pointer-sized field; it is never dereferenced. */
void *gev__sync_hub(void);
static inline void *gev__sync_hub_token(unsigned long long id) {
  return (void *)(uintptr_t)id;
}

/* Wakes every task on q with err, returning how many. */
size_t gev__sync_wake_all_err(gev__waitq_storage *q, int err);

#endif
