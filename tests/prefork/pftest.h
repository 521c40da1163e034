/* Helpers shared by the prefork suite's tests. */
#ifndef GEV_TESTS_PREFORK_PFTEST_H
#define GEV_TESTS_PREFORK_PFTEST_H

#include <stdio.h>
#include <sys/types.h>
#include <unistd.h>

/* A check inside a forked child: Check's asserts belong to the test
 * process, so a child reports on stderr and exits with a status the
 * parent asserts on. */
#define CHILD_CHECK(cond)                                                      \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "child %d: check failed at %s:%d: %s\n", (int)getpid(),  \
              __FILE__, __LINE__, #cond);                                      \
      fflush(stderr);                                                          \
      _exit(100);                                                              \
    }                                                                          \
  } while (0)

/* Monotonic seconds. */
double pf_now(void);

/* Waits (polling every 5 ms, up to timeout seconds) for pid to end; returns
 * its wait status, or -1 if it did not end in time (it is then killed with
 * SIGKILL and reaped). */
int pf_wait_pid(pid_t pid, double timeout);

/* As pf_wait_pid, parking in the hub (gev_waitpid) instead of polling. A
 * child that ended before the call is reported too. */
int pf_hub_wait_child(pid_t pid, double timeout);

/* Non-zero while a process pid exists and is not a zombie. */
int pf_alive(pid_t pid);

/* The pids of the live (non-zombie) children of parent, up to max; returns
 * how many. Read from /proc. */
int pf_children(pid_t parent, pid_t *out, int max);

/* How many zombie children parent has. */
int pf_zombies(pid_t parent);

#endif
