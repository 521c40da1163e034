/* The seed's shape in gev: spawn jobs, joinall them with a timeout, read
 * their values. Each job sleeps cooperatively; together they take as long
 * as the slowest, not the sum. */
#include <errno.h>
#include <gev.h>
#include <stdint.h>
#include <stdio.h>

static void *job(void *arg) {
  double seconds = (double)(intptr_t)arg / 10;
  if (gev_sleep(seconds) < 0)
    return gev_fail(errno, "sleep interrupted");
  return arg;
}

int main(void) {
  gev_greenlet *jobs[3];
  for (intptr_t i = 0; i < 3; i++)
    jobs[i] = gev_spawn(job, (void *)(i + 1));
  int done = gev_join_all(jobs, 3, 2.0);
  printf("%d of 3 jobs finished\n", done);
  for (int i = 0; i < 3; i++) {
    void *v;
    if (gev_greenlet_get(jobs[i], 0, &v) == 0)
      printf("job %d slept %.1f s\n", i, (double)(intptr_t)v / 10);
    gev_greenlet_unref(jobs[i]);
  }
  gev_hub_destroy();
  return done == 3 ? 0 : 1;
}
