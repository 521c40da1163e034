/*
 * Sleeps: nanosleep, clock_nanosleep, usleep, sleep, as gev_sleep().
 *
 * A sleep of 0 yields: the caller runs again after the greenlets already
 * queued. A kill or an expired gev_timeout scope ends the sleep early with
 * ECANCELED or ETIMEDOUT and the time left where the call reports it
 * (nanosleep's rem, clock_nanosleep's rem, sleep's return value).
 */
#include "coop.h"

#include <math.h>

/* Sleeps seconds cooperatively, never less than asked on gev_monotonic()
 * (gev_sleep is re-entered for any rest: libev's timers run on its cached
 * loop time). 0, or -1 with errno and *left set. */
static int coop_sleep(double seconds, double *left) {
  double start = gev_monotonic(), rest = seconds;
  int err;
  do {
    if (gev_sleep(rest) < 0)
      goto interrupted;
    rest = seconds - (gev_monotonic() - start);
  } while (rest > 0);
  return 0;
interrupted:
  err = errno;
  *left = seconds - (gev_monotonic() - start);
  if (*left < 0)
    *left = 0;
  errno = err;
  return -1;
}

static int valid_timespec(const struct timespec *ts) {
  return ts && ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000L;
}

static double seconds_of(const struct timespec *ts) {
  return (double)ts->tv_sec + (double)ts->tv_nsec / 1e9;
}

static void set_timespec(struct timespec *ts, double seconds) {
  if (!ts)
    return;
  ts->tv_sec = (time_t)seconds;
  ts->tv_nsec = (long)((seconds - (double)ts->tv_sec) * 1e9);
}

GEV_PATCH_EXPORT int nanosleep(const struct timespec *req,
                               struct timespec *rem) {
  double left;
  if (!valid_timespec(req) || !gev__patch_coop())
    return GEV_REAL(nanosleep)(req, rem);
  if (coop_sleep(seconds_of(req), &left) == 0)
    return 0;
  set_timespec(rem, left);
  return -1;
}

/* Clocks a deadline can be computed on; CPU-time clocks are not. */
static int sleepable_clock(clockid_t clk) {
  return clk == CLOCK_REALTIME || clk == CLOCK_MONOTONIC ||
         clk == CLOCK_BOOTTIME || clk == CLOCK_TAI;
}

/* Sleeps until the absolute time req on clk, checking that clock after
 * each wake (the wall clock may have been set meanwhile). */
static int sleep_until(clockid_t clk, const struct timespec *req) {
  struct timespec now;
  double left;
  for (;;) {
    if (clock_gettime(clk, &now) < 0)
      return errno;
    left = seconds_of(req) - ((double)now.tv_sec + (double)now.tv_nsec / 1e9);
    if (left <= 0)
      return 0;
    if (coop_sleep(left, &left) < 0)
      return errno;
  }
}

/* Returns an error number and leaves errno alone, as clock_nanosleep. */
GEV_PATCH_EXPORT int clock_nanosleep(clockid_t clk, int flags,
                                     const struct timespec *req,
                                     struct timespec *rem) {
  int saved = errno, rc = 0;
  double left;
  if (!sleepable_clock(clk) || !valid_timespec(req) || !gev__patch_coop())
    return GEV_REAL(clock_nanosleep)(clk, flags, req, rem);
  if (flags & TIMER_ABSTIME) {
    rc = sleep_until(clk, req);
  } else if (coop_sleep(seconds_of(req), &left) < 0) {
    rc = errno;
    set_timespec(rem, left);
  }
  errno = saved;
  return rc;
}

GEV_PATCH_EXPORT int usleep(useconds_t usec) {
  double left;
  if (!gev__patch_coop())
    return GEV_REAL(usleep)(usec);
  return coop_sleep((double)usec / 1e6, &left);
}

GEV_PATCH_EXPORT unsigned int sleep(unsigned int seconds) {
  double left;
  if (!gev__patch_coop())
    return GEV_REAL(sleep)(seconds);
  if (coop_sleep(seconds, &left) == 0)
    return 0;
  return (unsigned int)ceil(left);
}
