#include "synctest.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int log_v[SYNCTEST_MAX_LOG];
static int log_n;
static char log_buf[SYNCTEST_MAX_LOG * 12];
static gev_greenlet *kept[SYNCTEST_MAX_GREENLETS];
static int nkept;

void log_add(int v) {
  ck_assert_int_lt(log_n, SYNCTEST_MAX_LOG);
  log_v[log_n++] = v;
}

const char *log_str(void) {
  size_t off = 0;
  log_buf[0] = '\0';
  for (int i = 0; i < log_n; i++)
    off += (size_t)snprintf(log_buf + off, sizeof log_buf - off, "%s%d",
                            i ? " " : "", log_v[i]);
  return log_buf;
}

const char *strf(const char *fmt, ...) {
  static char buf[SYNCTEST_MAX_LOG * 12];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

void log_reset(void) { log_n = 0; }

gev_greenlet *spawn_kept(gev_greenlet_fn fn, void *arg) {
  ck_assert_int_lt(nkept, SYNCTEST_MAX_GREENLETS);
  gev_greenlet *g = gev_spawn(fn, arg);
  ck_assert_ptr_nonnull(g);
  kept[nkept++] = g;
  return g;
}

void spawned_unref_all(void) {
  for (int i = 0; i < nkept; i++)
    gev_greenlet_unref(kept[i]);
  nkept = 0;
}

static int fds_at_begin;

void sync_test_begin(void) {
  fds_at_begin = gev_test_fd_count();
  log_reset();
}

void sync_test_end(void) {
  spawned_unref_all();
  gev_test_all_clean(fds_at_begin);
}

void run_hub(void) { ck_assert_int_eq(gev_run(), 0); }
