#include "testutil.h"

#include <dirent.h>

#include "gev/coro.h"

int gev_test_fd_count(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  if (!d)
    return -1;
  while (readdir(d))
    n++;
  closedir(d);
  return n - 3; /* ".", ".." and the DIR's own fd */
}

void gev_test_coro_clean(void) {
  gev_coro_stats st;
  gev_coro_get_stats(&st);
  ck_assert_uint_eq(st.live, 0);
  ck_assert_int_eq(gev_coro_thread_cleanup(), 0);
  gev_coro_get_stats(&st);
  ck_assert_uint_eq(st.stacks_mapped, 0);
  ck_assert_uint_eq(st.shared_saved, 0);
}

int gev_test_run(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
