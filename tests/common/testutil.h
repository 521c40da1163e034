/* Shared helpers for gev's Check tests: leak checks and a main(). */
#ifndef GEV_TESTUTIL_H
#define GEV_TESTUTIL_H

#ifdef GEV_MINICHECK
#include "minicheck.h"
#else
#include <check.h>
#endif
#include <stdlib.h>

/* Number of open fds of this process (from /proc/self/fd). */
int gev_test_fd_count(void);

/* Non-zero when the test runs under Valgrind (its preload is mapped). For
 * the few checks Valgrind cannot support: it virtualises RLIMIT_NOFILE and
 * keeps descriptors of its own, and lacks some newer system calls. */
int gev_test_under_valgrind(void);

/* Checks that the coroutine layer holds nothing: no live coroutines, and
 * after gev_coro_thread_cleanup() no mapped stacks. Fails the test. */
void gev_test_coro_clean(void);

/* Full end-of-test check: runs the hub verifier, requires no greenlet,
 * callback or gev watcher left, destroys the hub, then the coroutine check,
 * and requires the fd count to equal fds_before. Only in hub-enabled
 * builds. */
void gev_test_all_clean(int fds_before);

/* Runs misuse() in a forked child whose stderr goes to a pipe, checks that
 * the child died of SIGABRT (failing the test otherwise) and returns what
 * it printed (static storage, NUL-terminated). For the rules gev enforces
 * by aborting with "gev: <rule>". */
const char *gev_test_child_aborts(void (*misuse)(void));

/* Runs suite s and exits with the number of failed tests. */
int gev_test_run(Suite *s);

#define GEV_TEST_MAIN(make_suite)                                              \
  int main(void) { return gev_test_run(make_suite()); }

#endif
