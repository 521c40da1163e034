#include "testutil.h"

#include "gev/hub.h"

void gev_test_all_clean(int fds_before) {
  gev_hub_stats hs;
  /* Let queued completions and links run before counting. */
  ck_assert_int_eq(gev_run(), 0);
  gev_hub_verify();
  gev_hub_get_stats(&hs);
  ck_assert_uint_eq(hs.greenlets, 0);
  ck_assert_uint_eq(hs.running, 0);
  ck_assert_uint_eq(hs.parked, 0);
  ck_assert_uint_eq(hs.callbacks, 0);
  ck_assert_uint_eq(hs.watchers, 0);
  ck_assert_int_eq(gev_hub_destroy(), 0);
  gev_test_coro_clean();
  ck_assert_int_eq(gev_test_fd_count(), fds_before);
}
