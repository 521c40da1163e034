/*
 * What every sync primitive shares: the owner check and the "granted"
 * token. Each primitive records the hub of the thread that created it and
 * refuses calls from any other thread, since the hub's wait queues are not
 * thread-safe. It records the hub's id, not its address: a hub's memory is
 * reused once it is destroyed, by this thread's next hub or another
 * thread's, and an object of a hub that is gone must not pass for one of
 * the hub that took its place.
 */
#include <stdint.h>

#include "hub/sync_priv.h"

const char gev__sync_granted = 1;

int gev__sync_check(const void *obj, unsigned magic, unsigned want, void *hub) {
  if (!obj || magic != want) {
    errno = EINVAL;
    return -1;
  }
  if (hub != gev__sync_hub_token(gev__hub_current_id())) {
    errno = EXDEV;
    return -1;
  }
  return 0;
}

void *gev__sync_hub(void) {
  gev__hub *h = gev__hub_get();
  return h ? gev__sync_hub_token(gev__hub_id(h)) : NULL;
}

size_t gev__sync_wake_all_err(gev__waitq_storage *q, int err) {
  return gev__waitq_wake_all(gev__wq(q), NULL, err);
}
