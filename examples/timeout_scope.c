/*
 * timeout_scope — one Timeout scope around several blocking calls
 * (gevent.Timeout; gev/hub.h).
 *
 * A scope gives the running greenlet a deadline: every blocking call it
 * makes fails with ETIMEDOUT once the deadline has passed, until the
 * scope is cancelled. Here three steps share one budget of 0.2 s: the
 * first fits, the second (a get on a queue nobody fills) is cut short by
 * the deadline, and the third is refused at once without waiting. After
 * the cancel, calls wait normally again. Prints one line per step; exits 0.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gev/hub.h"
#include "gev/sync.h"

static void step(const char *what, int rc, double t0) {
  printf("%-22s %-28s at %.1f s\n", what, rc == 0 ? "ok" : strerror(errno),
         gev_monotonic() - t0);
}

int main(void) {
  gev_queue *q = gev_queue_new(NULL);
  double t0 = gev_monotonic();
  void *item;

  gev_timeout *budget = gev_timeout_start(0.2); /* for everything below */
  step("sleep 0.1", gev_sleep(0.1), t0);
  step("get from empty queue", gev_queue_get(q, -1, &item), t0);
  step("sleep 0.1 again", gev_sleep(0.1), t0); /* expired: fails at once */
  printf("scope expired: %s\n", gev_timeout_expired(budget) ? "yes" : "no");
  gev_timeout_cancel(budget);

  step("sleep 0.1 after cancel", gev_sleep(0.1), t0);
  gev_queue_free(q);
  gev_hub_destroy();
  return 0;
}
