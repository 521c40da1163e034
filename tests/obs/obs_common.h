/* Helpers of the obs suite: capturing the log hook, and functions whose
 * names the backtraces must show. */
#ifndef GEV_TESTS_OBS_COMMON_H
#define GEV_TESTS_OBS_COMMON_H

#include <stddef.h>

/* Installs a log hook that keeps every message (thread-safe), dropping
 * what it kept before. */
void obs_log_capture(void);
/* A copy of everything captured so far, one message per line (free it). */
char *obs_log_text(void);
/* How many captured messages contain needle. */
int obs_log_count(const char *needle);
/* Restores the default hook. */
void obs_log_release(void);

/* Spins on the CPU for seconds without yielding (blocks the hub). */
void obs_busy_spin(double seconds);
/* Park in gev_sleep(seconds) / an Event wait, each in a function of its
 * own that backtraces must name. */
void obs_park_in_alpha(double seconds);
void obs_park_in_beta(void *event);
void obs_park_in_gamma(double seconds);

#endif
