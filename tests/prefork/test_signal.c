/* Signals through the hub: handlers run as greenlets, waits with
 * timeouts, coalescing-safe counting, teardown, bad input. Signals come
 * from raise(), from a timer greenlet and from a real child process. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gev/signal.h"
#include "pftest.h"
#include "testutil.h"

static int fds_before;
static void setup(void) { fds_before = gev_test_fd_count(); }
static void teardown(void) { gev_test_all_clean(fds_before); }

typedef struct seen {
  int count;
  int signum;
  int in_greenlet;
  int slept_ok;
} seen;

static void record(int signum, void *arg) {
  seen *s = arg;
  s->signum = signum;
  s->in_greenlet = gev_getcurrent() != NULL;
  s->slept_ok = gev_sleep(0.001) == 0; /* a handler may block */
  s->count++;
}

/* Sleeps in small steps until *count reaches want (at most 2 s). */
static void wait_count(const int *count, int want) {
  for (int i = 0; i < 400 && *count < want; i++)
    ck_assert_int_eq(gev_sleep(0.005), 0);
}

static sighandler_t disposition(int signum) {
  struct sigaction sa;
  sigaction(signum, NULL, &sa);
  return sa.sa_handler;
}

START_TEST(test_handler_runs_in_a_greenlet) {
  static seen s; /* static: the handler reads it while main parks */
  s = (seen){0};
  gev_signal *h = gev_signal_handler(SIGUSR1, record, &s);
  ck_assert_ptr_nonnull(h);
  ck_assert_int_eq(gev_signal_signum(h), SIGUSR1);
  ck_assert_int_eq(raise(SIGUSR1), 0);
  ck_assert_int_eq(s.count, 0); /* never inside the signal context */
  wait_count(&s.count, 1);
  ck_assert_int_eq(s.count, 1);
  ck_assert_int_eq(s.signum, SIGUSR1);
  ck_assert(s.in_greenlet);
  ck_assert(s.slept_ok);
  ck_assert_int_eq(gev_signal_cancel(h), 0);
  ck_assert(disposition(SIGUSR1) == SIG_DFL);
}
END_TEST

START_TEST(test_two_handlers_of_one_signal_both_run) {
  static seen a, b;
  a = b = (seen){0};
  gev_signal *ha = gev_signal_handler(SIGUSR2, record, &a);
  gev_signal *hb = gev_signal_handler(SIGUSR2, record, &b);
  ck_assert(ha && hb);
  raise(SIGUSR2);
  wait_count(&b.count, 1);
  wait_count(&a.count, 1);
  ck_assert_int_eq(a.count, 1);
  ck_assert_int_eq(b.count, 1);
  /* Cancelling one leaves the other installed. */
  ck_assert_int_eq(gev_signal_cancel(ha), 0);
  ck_assert(disposition(SIGUSR2) != SIG_DFL);
  raise(SIGUSR2);
  wait_count(&b.count, 2);
  ck_assert_int_eq(b.count, 2);
  ck_assert_int_eq(a.count, 1);
  ck_assert_int_eq(gev_signal_cancel(hb), 0);
  ck_assert(disposition(SIGUSR2) == SIG_DFL);
}
END_TEST

START_TEST(test_handler_does_not_keep_the_hub_alive) {
  static seen s;
  s = (seen){0};
  gev_signal *h = gev_signal_handler(SIGUSR1, record, &s);
  ck_assert_ptr_nonnull(h);
  ck_assert_int_eq(gev_run(), 0); /* returns: nothing else to do */
  ck_assert_int_eq(gev_signal_cancel(h), 0);
}
END_TEST

START_TEST(test_signal_from_another_process) {
  static seen s;
  s = (seen){0};
  gev_signal *h = gev_signal_handler(SIGUSR1, record, &s);
  pid_t parent = getpid();
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    kill(parent, SIGUSR1);
    _exit(0);
  }
  ck_assert_int_eq(pf_hub_wait_child(pid, 5), 0);
  wait_count(&s.count, 1);
  ck_assert_int_eq(s.count, 1);
  ck_assert_int_eq(gev_signal_cancel(h), 0);
}
END_TEST

static void *raise_later(void *arg) {
  gev_sleep(0.02);
  raise((int)(intptr_t)arg);
  return NULL;
}

START_TEST(test_wait_returns_the_signal) {
  ck_assert_int_eq(gev_spawn_raw(raise_later, (void *)(intptr_t)SIGUSR2), 0);
  ck_assert_int_eq(gev_signal_wait(SIGUSR2, 5), SIGUSR2);
  ck_assert(disposition(SIGUSR2) == SIG_DFL);
}
END_TEST

START_TEST(test_wait_times_out) {
  double t0 = pf_now();
  ck_assert_int_eq(gev_signal_wait(SIGUSR1, 0.05), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert(pf_now() - t0 >= 0.04);
  ck_assert_int_eq(gev_signal_wait(SIGUSR1, 0), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
}
END_TEST

START_TEST(test_wait_any_reports_which) {
  int sigs[] = {SIGUSR1, SIGUSR2, SIGWINCH};
  ck_assert_int_eq(gev_spawn_raw(raise_later, (void *)(intptr_t)SIGWINCH), 0);
  ck_assert_int_eq(gev_signal_wait_any(sigs, 3, 5), SIGWINCH);
  ck_assert_int_eq(gev_spawn_raw(raise_later, (void *)(intptr_t)SIGUSR1), 0);
  ck_assert_int_eq(gev_signal_wait_any(sigs, 3, 5), SIGUSR1);
}
END_TEST

static void *waiter(void *arg) {
  return (void *)(intptr_t)gev_signal_wait(SIGUSR1, -1);
}

START_TEST(test_killed_waiter_stops_its_watcher) {
  gev_greenlet *g = gev_spawn(waiter, NULL);
  ck_assert_int_eq(gev_sleep(0.01), 0);
  ck_assert(disposition(SIGUSR1) != SIG_DFL);
  ck_assert_int_eq(gev_greenlet_kill(g, 1, 1), 0);
  ck_assert(gev_greenlet_successful(g));
  ck_assert(disposition(SIGUSR1) == SIG_DFL);
  gev_greenlet_unref(g);
}
END_TEST

static int hub_errno;
static void from_hub(void *arg) {
  hub_errno = gev_signal_wait(SIGUSR1, 1) < 0 ? errno : 0;
}

START_TEST(test_bad_input) {
  int sigs[] = {SIGUSR1, SIGKILL};
  ck_assert_ptr_null(gev_signal_handler(SIGUSR1, NULL, NULL));
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_ptr_null(gev_signal_handler(0, record, NULL));
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_ptr_null(gev_signal_handler(SIGKILL, record, NULL));
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_ptr_null(gev_signal_handler(SIGSTOP, record, NULL));
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_ptr_null(gev_signal_handler(4096, record, NULL));
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_signal_wait(-1, 1), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_signal_wait_any(NULL, 1, 1), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_signal_wait_any(sigs, 0, 1), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_signal_wait_any(sigs, 2, 1), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_signal_signum(NULL), -1);
  ck_assert_int_eq(gev_signal_cancel(NULL), 0);
  hub_errno = 0;
  ck_assert_int_eq(gev_run_callback(from_hub, NULL), 0);
  ck_assert_int_eq(gev_run(), 0);
  ck_assert_int_eq(hub_errno, EPERM);
}
END_TEST

static void *other_thread(void *arg) {
  int *err = arg;
  gev_signal *h = gev_signal_handler(SIGUSR1, record, NULL);
  *err = h ? 0 : errno;
  gev_signal_cancel(h);
  gev_hub_destroy();
  gev_coro_thread_cleanup();
  return NULL;
}

START_TEST(test_one_hub_per_signal) {
  static seen s;
  pthread_t th;
  int err = -1;
  gev_signal *h = gev_signal_handler(SIGUSR1, record, &s);
  ck_assert_int_eq(pthread_create(&th, NULL, other_thread, &err), 0);
  pthread_join(th, NULL);
  ck_assert_int_eq(err, EBUSY);
  ck_assert_int_eq(gev_signal_cancel(h), 0);
  /* Free again: the other thread may have it now. */
  ck_assert_int_eq(pthread_create(&th, NULL, other_thread, &err), 0);
  pthread_join(th, NULL);
  ck_assert_int_eq(err, 0);
}
END_TEST

START_TEST(test_hub_destroy_stops_handlers) {
  static seen s;
  s = (seen){0};
  gev_signal *h = gev_signal_handler(SIGUSR1, record, &s);
  ck_assert_ptr_nonnull(h);
  ck_assert_int_eq(gev_hub_destroy(), 0);
  ck_assert(disposition(SIGUSR1) == SIG_DFL);
  ck_assert_int_eq(gev_signal_signum(h), SIGUSR1);
  /* A new hub takes the signal again; the old handle only frees. */
  gev_signal *h2 = gev_signal_handler(SIGUSR1, record, &s);
  ck_assert_ptr_nonnull(h2);
  ck_assert_int_eq(gev_signal_cancel(h), 0);
  raise(SIGUSR1);
  wait_count(&s.count, 1);
  ck_assert_int_eq(s.count, 1);
  ck_assert_int_eq(gev_signal_cancel(h2), 0);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("signal");
  TCase *tc = tcase_create("signal");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 20);
  tcase_add_test(tc, test_handler_runs_in_a_greenlet);
  tcase_add_test(tc, test_two_handlers_of_one_signal_both_run);
  tcase_add_test(tc, test_handler_does_not_keep_the_hub_alive);
  tcase_add_test(tc, test_signal_from_another_process);
  tcase_add_test(tc, test_wait_returns_the_signal);
  tcase_add_test(tc, test_wait_times_out);
  tcase_add_test(tc, test_wait_any_reports_which);
  tcase_add_test(tc, test_killed_waiter_stops_its_watcher);
  tcase_add_test(tc, test_bad_input);
  tcase_add_test(tc, test_one_hub_per_signal);
  tcase_add_test(tc, test_hub_destroy_stops_handlers);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(suite)
