/*
 * What every sync primitive shares: the owner check and the "granted"
 * token. Each primitive records the hub of the thread that created it and
 * refuses calls from any other thread, since the hub's wait queues are not
 * thread-safe.
 */
#include "hub/sync_priv.h"

const char gev__sync_granted = 1;

int gev__sync_check(const void *obj, unsigned magic, unsigned want, void *hub) {
  if (!obj || magic != want) {
    errno = EINVAL;
    return -1;
  }
  if (hub != (void *)gev__hub_peek()) {
    errno = EXDEV;
    return -1;
  }
  return 0;
}

void *gev__sync_hub(void) { return gev__hub_get(); }

size_t gev__sync_wake_all_err(gev__waitq_storage *q, int err) {
  return gev__waitq_wake_all(gev__wq(q), NULL, err);
}
