#include "patchtest.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- Kept greenlets ------------------------------------------------------ */

#define MAX_KEPT 4096
static gev_greenlet *kept[MAX_KEPT];
static size_t nkept;

gev_greenlet *pt_spawn(gev_greenlet_fn fn, void *arg) {
  gev_greenlet *g = gev_spawn(fn, arg);
  ck_assert_ptr_nonnull(g);
  ck_assert_uint_lt(nkept, MAX_KEPT);
  kept[nkept++] = g;
  return g;
}

void pt_join_all(double timeout) {
  for (size_t i = 0; i < nkept; i++) {
    ck_assert_msg(gev_greenlet_join(kept[i], timeout) == 0,
                  "greenlet %s did not finish: %s", gev_greenlet_name(kept[i]),
                  strerror(errno));
    gev_greenlet_unref(kept[i]);
  }
  nkept = 0;
}

/* ---- Greenlets acting later ---------------------------------------------- */

typedef struct later {
  int fd;
  double delay;
  size_t len;
  char data[];
} later;

static later *later_new(int fd, const void *data, size_t len, double delay) {
  later *l = malloc(sizeof *l + len);
  ck_assert_ptr_nonnull(l);
  l->fd = fd;
  l->delay = delay;
  l->len = len;
  if (data)
    memcpy(l->data, data, len);
  return l;
}

static void *write_later(void *arg) {
  later *l = arg;
  ssize_t n = -1;
  if (gev_sleep(l->delay) == 0)
    n = write(l->fd, l->data, l->len);
  free(l);
  return P(n);
}

static void *close_later(void *arg) {
  later *l = arg;
  int rc = -1;
  if (gev_sleep(l->delay) == 0)
    rc = close(l->fd);
  free(l);
  return P(rc);
}

static void *drain_later(void *arg) {
  later *l = arg;
  size_t total = 0;
  char *buf = malloc(65536);
  if (buf && gev_sleep(l->delay) == 0) {
    ssize_t n;
    while (total < l->len &&
           (n = read(l->fd, buf,
                     l->len - total < 65536 ? l->len - total : 65536)) > 0)
      total += (size_t)n;
  }
  free(buf);
  free(l);
  return (void *)(uintptr_t)total;
}

gev_greenlet *pt_write_later(int fd, const void *data, size_t len,
                             double delay) {
  return pt_spawn(write_later, later_new(fd, data, len, delay));
}

gev_greenlet *pt_close_later(int fd, double delay) {
  return pt_spawn(close_later, later_new(fd, NULL, 0, delay));
}

gev_greenlet *pt_drain_later(int fd, size_t n, double delay) {
  later *l = later_new(fd, NULL, 0, delay);
  l->len = n;
  return pt_spawn(drain_later, l);
}

/* ---- Ticker
 * ------------------------------------------------------------------ */

struct pt_ticker {
  long ticks;
  int stop;
  gev_greenlet *g;
};

static void *tick(void *arg) {
  pt_ticker *t = arg;
  while (!t->stop && gev_sleep(0.005) == 0)
    t->ticks++;
  return NULL;
}

pt_ticker *pt_ticker_start(void) {
  pt_ticker *t = calloc(1, sizeof *t);
  ck_assert_ptr_nonnull(t);
  t->g = gev_spawn(tick, t);
  ck_assert_ptr_nonnull(t->g);
  return t;
}

long pt_ticks(const pt_ticker *t) { return t->ticks; }

long pt_ticker_stop(pt_ticker *t) {
  long n;
  t->stop = 1;
  ck_assert_int_eq(gev_greenlet_join(t->g, 5), 0);
  gev_greenlet_unref(t->g);
  n = t->ticks;
  free(t);
  return n;
}

/* ---- fds
 * ------------------------------------------------------------------------ */

void pt_socketpair(int sv[2]) {
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

void pt_close_pair(int fds[2]) {
  ck_assert_int_eq(close(fds[0]), 0);
  ck_assert_int_eq(close(fds[1]), 0);
}

int pt_kernel_nonblocking(int fd) {
  char path[64], line[128];
  unsigned long flags = 0;
  FILE *f;
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "flags: %lo", &flags) == 1)
      break;
  fclose(f);
  return (flags & O_NONBLOCK) != 0;
}

size_t pt_fill(int fd) {
  static char chunk[4096];
  size_t total = 0;
  ssize_t n;
  while ((n = send(fd, chunk, sizeof chunk, MSG_DONTWAIT)) > 0)
    total += (size_t)n;
  ck_assert_msg(errno == EAGAIN || errno == EWOULDBLOCK, "fill: %s",
                strerror(errno));
  return total;
}

double pt_now(void) { return gev_monotonic(); }

/* The patch library's counters. A program that only has it preloaded
 * (built with PT_PRELOADED) finds the call at run time; the others link
 * it, and this reference keeps a linker using --as-needed from dropping
 * the library. */
static void patch_stats(gev_patch_stats *st) {
#ifdef PT_PRELOADED
  void (*get)(gev_patch_stats *) =
      (void (*)(gev_patch_stats *))dlsym(RTLD_DEFAULT, "gev_patch_get_stats");
  ck_assert_msg(get != NULL, "libgev-patch is not preloaded");
  get(st);
#else
  gev_patch_get_stats(st);
#endif
}

void pt_all_clean(int fds_before) {
  gev_patch_stats st;
  pt_join_all(5);
  patch_stats(&st);
  ck_assert_uint_eq(st.parked, 0);
  ck_assert_uint_eq(st.watchers, 0);
  ck_assert_uint_eq(st.addrinfos, 0);
  gev_test_all_clean(fds_before);
}
