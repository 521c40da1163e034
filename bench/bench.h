/*
 * Helpers shared by the benchmark programs: a monotonic clock, keeping the
 * best of several rounds, and the one output format bench/run collects:
 *
 *     bench: <name> <value> <unit>
 *
 * On a shared, noisy machine a slow round says nothing about the code, so
 * every timed figure is the minimum over rounds. Header-only and static:
 * each benchmark is a single translation unit.
 */
#ifndef GEV_BENCH_BENCH_H
#define GEV_BENCH_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* A benchmark that cannot do what it measures has no figure to give. */
static inline void bench_die(const char *what) {
  perror(what);
  exit(1);
}

/* Keeps the smallest positive value seen in *best (0 = none yet). */
static inline void bench_keep_min(double *best, double value) {
  if (*best == 0 || value < *best)
    *best = value;
}

/* Prints one figure; decimals is how many digits after the point. */
static inline void bench_print(const char *name, double value, int decimals,
                               const char *unit) {
  printf("bench: %s %.*f %s\n", name, decimals, value, unit);
  fflush(stdout);
}

#endif
