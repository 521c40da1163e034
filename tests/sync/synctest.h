/* Helpers shared by the sync tests: an ordered log of what greenlets did,
 * spawning with the handle kept for cleanup, and running the hub. */
#ifndef GEV_TESTS_SYNCTEST_H
#define GEV_TESTS_SYNCTEST_H

#include <errno.h>

#include "gev/sync.h"
#include "testutil.h"

#define SYNCTEST_MAX_LOG 256
#define SYNCTEST_MAX_GREENLETS 64

/* Appends v to the log (static storage: safe in shared-stack mode). */
void log_add(int v);
/* The log as a string of decimal numbers separated by spaces. */
const char *log_str(void);
void log_reset(void);
/* printf into a static buffer, to build expected logs portably. */
const char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Spawns fn(arg) and keeps the handle; spawned_unref_all() drops them. */
gev_greenlet *spawn_kept(gev_greenlet_fn fn, void *arg);
void spawned_unref_all(void);

/* Test start and end: counts fds and clears the log; drops the kept
 * handles and checks that nothing leaked. */
void sync_test_begin(void);
void sync_test_end(void);

/* Runs the hub until idle and checks it returned 0. */
void run_hub(void);

/* Integers smuggled through void *. */
#define P(i) ((void *)(intptr_t)(i))
#define I(p) ((int)(intptr_t)(p))

#endif
