/* The blocking monitor and the memory watch (gev/monitor.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gev/hub.h"
#include "gev/monitor.h"
#include "gev/prefork.h"
#include "obs_fixture.h"

static void *spin_300ms(void *arg) {
  (void)arg;
  gev_sleep(0.01);
  obs_busy_spin(0.3);
  return NULL;
}

static int is_default(int signum) {
  struct sigaction sa;
  sigaction(signum, NULL, &sa);
  return !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL;
}

/* GEV_MONITOR=0.1 and a greenlet that computes for 300 ms: one report,
 * naming the greenlet, its id and the busy function. */
START_TEST(test_busy_greenlet_reported_once) {
  char id[64], *log;
  gev_spawn_opts o = {.name = "spinner"};
  setenv("GEV_MONITOR", "0.1", 1); /* read when the first hub is made */
  gev_greenlet *g = gev_spawn_ex(&o, spin_300ms, NULL);
  ck_assert_ptr_nonnull(g);
  ck_assert(gev_monitor_running());
  ck_assert_int_eq(gev_sleep(0), 0); /* g starts and parks */
  gev_coro *c = gev_coro_current();  /* main; g's coroutine is below */
  (void)c;
  ck_assert_int_eq(gev_greenlet_join(g, -1), 0);
  log = obs_log_text();
  ck_assert_msg(obs_log_count("blocked for") == 1, "%s", log);
  ck_assert_msg(strstr(log, "by greenlet spinner (id "), "%s", log);
  ck_assert_msg(strstr(log, "obs_busy_spin"), "%s", log);
  ck_assert_msg(strstr(log, "spin_300ms"), "%s", log);
  snprintf(id, sizeof id, "(thread %d)", (int)gettid());
  ck_assert_msg(strstr(log, id), "%s", log);
  free(log);
  gev_greenlet_unref(g);
  unsetenv("GEV_MONITOR");
}
END_TEST

static void *sleeper(void *arg) {
  for (int i = 0; i < 40; i++)
    gev_sleep(0.01);
  return arg;
}

static void *yielder(void *arg) {
  double end = gev_monotonic() + 0.4;
  while (gev_monotonic() < end)
    gev_sleep(0);
  return arg;
}

/* Greenlets that always give the hub its turn: no report. */
START_TEST(test_no_report_without_blocking) {
  gev_greenlet *gs[3];
  ck_assert_int_eq(gev_monitor_start(0.25), 0);
  gs[0] = gev_spawn(sleeper, NULL);
  gs[1] = gev_spawn(yielder, NULL);
  gs[2] = gev_spawn(sleeper, NULL);
  ck_assert_int_eq(gev_join_all(gs, 3, -1), 3);
  ck_assert_int_eq(gev_sleep(0.3), 0); /* idle in the poll: not blocked */
  char *log = obs_log_text();
  ck_assert_msg(obs_log_count("gev monitor") == 0, "%s", log);
  free(log);
  for (int i = 0; i < 3; i++)
    gev_greenlet_unref(gs[i]);
}
END_TEST

static void *thread_with_busy_hub(void *arg) {
  gev_spawn_opts o = {.name = "thread-spinner"};
  gev_greenlet *g = gev_spawn_ex(&o, spin_300ms, NULL);
  (void)arg;
  gev_greenlet_join(g, -1);
  gev_greenlet_unref(g);
  gev_hub_destroy();
  gev_coro_thread_cleanup();
  return NULL;
}

/* One monitor watches every hub: the blocked one is named, with its
 * thread; the other, sleeping meanwhile, is not reported. */
START_TEST(test_several_hubs) {
  pthread_t th;
  char tid[64], *log;
  ck_assert_int_eq(gev_monitor_start(0.1), 0);
  ck_assert_int_eq(gev_sleep(0), 0); /* this thread has a hub too */
  ck_assert_int_eq(pthread_create(&th, NULL, thread_with_busy_hub, NULL), 0);
  ck_assert_int_eq(gev_sleep(0.5), 0);
  pthread_join(th, NULL);
  log = obs_log_text();
  ck_assert_msg(obs_log_count("blocked for") == 1, "%s", log);
  ck_assert_msg(strstr(log, "greenlet thread-spinner"), "%s", log);
  ck_assert_msg(strstr(log, "obs_busy_spin"), "%s", log);
  snprintf(tid, sizeof tid, "(thread %d)", (int)gettid());
  ck_assert_msg(!strstr(log, tid), "%s", log);
  free(log);
}
END_TEST

/* The main coroutine computing while greenlets wait is reported too. */
START_TEST(test_main_blocking_reported) {
  gev_greenlet *g = gev_spawn(sleeper, NULL);
  ck_assert_int_eq(gev_monitor_start(0.1), 0);
  ck_assert_int_eq(gev_sleep(0), 0);
  obs_busy_spin(0.3);
  ck_assert_int_eq(gev_greenlet_join(g, -1), 0);
  char *log = obs_log_text();
  ck_assert_msg(strstr(log, "blocked for") &&
                    strstr(log, "by the main coroutine (id "),
                "%s", log);
  ck_assert_msg(strstr(log, "obs_busy_spin"), "%s", log);
  free(log);
  gev_greenlet_unref(g);
}
END_TEST

/* The signal's disposition is gev's only while the monitor runs. */
START_TEST(test_signal_state_restored) {
  struct sigaction sa = {0};
  ck_assert(is_default(GEV_MONITOR_SIGNAL));
  ck_assert_int_eq(gev_sleep(0), 0); /* a hub alone changes nothing */
  ck_assert(is_default(GEV_MONITOR_SIGNAL));
  ck_assert_int_eq(gev_monitor_start(0.5), 0);
  ck_assert(!is_default(GEV_MONITOR_SIGNAL));
  ck_assert_int_eq(gev_monitor_start(0.2), 0); /* a new threshold */
  ck_assert_int_eq(gev_monitor_stop(), 0);
  ck_assert(is_default(GEV_MONITOR_SIGNAL));
  ck_assert(!gev_monitor_running());
  ck_assert_int_eq(gev_monitor_stop(), 0);
  /* The program's own handler: the monitor refuses to take it. */
  sa.sa_handler = SIG_IGN;
  sigaction(GEV_MONITOR_SIGNAL, &sa, NULL);
  ck_assert_int_eq(gev_monitor_start(0.5), 0); /* ignored: free to take */
  gev_monitor_stop();
  sigaction(GEV_MONITOR_SIGNAL, NULL, &sa);
  ck_assert(sa.sa_handler == SIG_IGN);
  sa.sa_handler = (void (*)(int))abort;
  sigaction(GEV_MONITOR_SIGNAL, &sa, NULL);
  ck_assert_int_eq(gev_monitor_start(0.5), -1);
  ck_assert_int_eq(errno, EBUSY);
  sa.sa_handler = SIG_DFL;
  sigaction(GEV_MONITOR_SIGNAL, &sa, NULL);
  ck_assert_int_eq(gev_monitor_start(0), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_monitor_start(NAN), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_monitor_start(INFINITY), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert(!gev_monitor_running());
}
END_TEST

static size_t rss_now(void) {
  unsigned long size = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
      resident = 0;
    fclose(f);
  }
  return resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* Resident memory over the limit: one report, and none while under. */
START_TEST(test_memory_watch) {
  size_t limit = rss_now() + 32 * 1024 * 1024;
  ck_assert_int_eq(gev_monitor_set_memory_limit(limit), 0);
  ck_assert_int_eq(gev_sleep(1.2), 0);
  ck_assert_int_eq(obs_log_count("memory usage"), 0);
  char *big = malloc(64 * 1024 * 1024);
  ck_assert_ptr_nonnull(big);
  memset(big, 1, 64 * 1024 * 1024);
  __asm__ volatile("" : : "r"(big) : "memory"); /* the pages are used */
  ck_assert_int_eq(gev_sleep(2.2), 0);
  char *log = obs_log_text();
  ck_assert_msg(obs_log_count("memory usage") == 1, "%s", log);
  ck_assert_msg(strstr(log, "exceeds the limit"), "%s", log);
  free(log);
  free(big);
}
END_TEST

/* GEV_MONITOR_MEMORY with a unit; nonsense is refused with a message. */
START_TEST(test_memory_environment) {
  setenv("GEV_MONITOR_MEMORY", "1K", 1);
  setenv("GEV_MONITOR", "soon", 1);
  ck_assert_int_eq(gev_sleep(1.1), 0);
  char *log = obs_log_text();
  ck_assert_msg(strstr(log, "GEV_MONITOR=soon ignored"), "%s", log);
  ck_assert_msg(obs_log_count("memory usage") == 1, "%s", log);
  free(log);
  unsetenv("GEV_MONITOR_MEMORY");
  unsetenv("GEV_MONITOR");
}
END_TEST

/* In a forked child (both ways gev forks), the monitor runs again and
 * reports the child's blocked hub. The child exits with the number of
 * the first check that failed. */
static int child_checks(gev_fork_mode mode) {
  if (mode == GEV_FORK_DISCARD && gev_sleep(0) < 0) /* the child's new hub */
    return 2;
  if (!gev_monitor_running())
    return 3;
  gev_spawn_opts o = {.name = "child-spinner"};
  gev_greenlet *g = gev_spawn_ex(&o, spin_300ms, NULL);
  if (!g || gev_greenlet_join(g, -1) < 0)
    return 4;
  gev_greenlet_unref(g);
  if (obs_log_count("by greenlet child-spinner") != 1)
    return 5;
  return 0;
}

static void fork_and_check(gev_fork_mode mode) {
  int status;
  ck_assert_int_eq(gev_monitor_start(0.1), 0);
  ck_assert_int_eq(gev_sleep(0), 0);
  pid_t pid = gev_fork(mode);
  ck_assert_int_ge(pid, 0);
  if (pid == 0)
    _exit(child_checks(mode));
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "child status %d", status);
  ck_assert_int_eq(obs_log_count("child-spinner"), 0); /* not here */
}

START_TEST(test_fork_keep) { fork_and_check(GEV_FORK_KEEP); }
END_TEST

START_TEST(test_fork_discard) { fork_and_check(GEV_FORK_DISCARD); }
END_TEST

static Suite *monitor_suite(void) {
  Suite *s = suite_create("monitor");
  TCase *tc = tcase_create("monitor");
  tcase_add_checked_fixture(tc, obs_setup, obs_teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_busy_greenlet_reported_once);
  tcase_add_test(tc, test_no_report_without_blocking);
  tcase_add_test(tc, test_several_hubs);
  tcase_add_test(tc, test_main_blocking_reported);
  tcase_add_test(tc, test_signal_state_restored);
  tcase_add_test(tc, test_memory_watch);
  tcase_add_test(tc, test_memory_environment);
  tcase_add_test(tc, test_fork_keep);
  tcase_add_test(tc, test_fork_discard);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(monitor_suite)
