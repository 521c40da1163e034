/* Helpers shared by the tests of the cooperative libc (libgev-patch):
 * greenlets that act later, a ticker that proves the hub kept running,
 * the kernel's own view of an fd, and the end-of-test leak check. */
#ifndef GEV_TESTS_PATCHTEST_H
#define GEV_TESTS_PATCHTEST_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "gev/hub.h"
#include "gev/patch.h"
#include "testutil.h"

/* Integers smuggled through void *. */
#define P(i) ((void *)(intptr_t)(i))
#define I(p) ((int)(intptr_t)(p))

/* Spawns fn(arg) and keeps the handle; pt_join_all() joins and drops them
 * (each must finish within timeout seconds). */
gev_greenlet *pt_spawn(gev_greenlet_fn fn, void *arg);
void pt_join_all(double timeout);

/* Spawned greenlets that act after delay seconds (gev_sleep): write len
 * bytes of data (copied) to fd with write(2), close fd, or read and
 * discard everything from fd until EOF or n bytes (returned as the
 * greenlet's value). */
gev_greenlet *pt_write_later(int fd, const void *data, size_t len,
                             double delay);
gev_greenlet *pt_close_later(int fd, double delay);
gev_greenlet *pt_drain_later(int fd, size_t n, double delay);

/* A greenlet counting turns of gev_sleep(0.005) until stopped: if it
 * ticked while a call was parked, the thread ran the hub meanwhile. */
typedef struct pt_ticker pt_ticker;
pt_ticker *pt_ticker_start(void);
/* Ticks so far. */
long pt_ticks(const pt_ticker *t);
/* Stops it and returns its ticks. */
long pt_ticker_stop(pt_ticker *t);

/* A connected AF_UNIX stream pair, blocking (as socketpair makes it). */
void pt_socketpair(int sv[2]);
/* Closes both fds of a pair (socketpair, pipe). */
void pt_close_pair(int fds[2]);
/* Non-zero when the kernel has O_NONBLOCK on fd (from
 * /proc/self/fdinfo, past gev's view of fcntl). */
int pt_kernel_nonblocking(int fd);
/* Fills fd's send buffer (and the peer's receive buffer) without
 * blocking; returns the bytes queued. */
size_t pt_fill(int fd);

/* Seconds on gev's clock. */
double pt_now(void);

/* End of every test: nothing parked in patched calls, no gev lists owed,
 * then gev_test_all_clean(fds_before). */
void pt_all_clean(int fds_before);

#endif
