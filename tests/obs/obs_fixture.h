/* The fixture of the obs suite's Check tests: the log hook captured
 * (obs_common.h) for the test, and at its end the monitor stopped, the
 * default hook back, and gev_test_all_clean. */
#ifndef GEV_TESTS_OBS_FIXTURE_H
#define GEV_TESTS_OBS_FIXTURE_H

#include "gev/monitor.h"
#include "obs_common.h"
#include "testutil.h"

static int obs_fds_before;

static void obs_setup(void) {
  obs_fds_before = gev_test_fd_count();
  obs_log_capture();
}

static void obs_teardown(void) {
  gev_set_trace(NULL, NULL);
  gev_monitor_stop();
  obs_log_release();
  gev_test_all_clean(obs_fds_before);
}

#endif
