/* Children stay the program's own: SIGCHLD's disposition and the
 * program's own waits (popen/pclose, system, waitpid) are untouched by
 * the main thread's hub, child waits work from any thread's hub, and
 * gev_waitpid never loses a status, also when libev's reaper runs. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>

#include "gev/process.h"
#include "gev/signal.h"
#include "hub/child.h"
#include "pftest.h"
#include "testutil.h"

static int fds_before;
static void setup(void) { fds_before = gev_test_fd_count(); }
static void teardown(void) {
  gev__child_use_pidfd(1);
  gev_test_all_clean(fds_before);
  ck_assert_int_eq(pf_zombies(getpid()), 0);
}

static pid_t child_exiting(int code) {
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0)
    _exit(code);
  return pid;
}

/* A child that waits for a signal. */
static pid_t child_pausing(void) {
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    pause();
    _exit(0);
  }
  return pid;
}

static sighandler_t disposition(void) {
  struct sigaction sa;
  sigaction(SIGCHLD, NULL, &sa);
  return sa.sa_handler;
}

static void on_sigchld(int signum) { (void)signum; }

/* ---- The program's own children --------------------------------------- */

/* The hub on the main thread leaves popen's child to pclose. */
START_TEST(test_popen_keeps_its_status) {
  ck_assert_int_eq(gev_sleep(0), 0); /* the main thread's hub exists */
  FILE *f = popen("exit 3", "r");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(gev_sleep(0.1), 0); /* SIGCHLD arrives meanwhile */
  int status = pclose(f);
  ck_assert_int_ne(status, -1);
  ck_assert(WIFEXITED(status));
  ck_assert_int_eq(WEXITSTATUS(status), 3);
  ck_assert_int_eq(WEXITSTATUS(system("exit 4")), 4);
}
END_TEST

/* A plain waitpid finds its child after the hub ran while it ended. */
START_TEST(test_waitpid_of_the_program) {
  int status = -1;
  ck_assert_int_eq(gev_sleep(0), 0);
  pid_t pid = child_exiting(5);
  ck_assert_int_eq(gev_sleep(0.1), 0);
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_int_eq(WEXITSTATUS(status), 5);
}
END_TEST

/* Creating and destroying the hub leaves SIGCHLD's disposition as the
 * program set it, and does not eat a SIGCHLD the program keeps blocked
 * (for sigwait or signalfd). */
START_TEST(test_sigchld_disposition_untouched) {
  sigset_t chld, old;
  struct sigaction sa = {.sa_handler = on_sigchld};
  ck_assert_int_eq(gev_hub_destroy(), 0);
  ck_assert(disposition() == SIG_DFL);
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert(disposition() == SIG_DFL);
  ck_assert_int_eq(gev_hub_destroy(), 0);
  ck_assert(disposition() == SIG_DFL); /* destroy does not set it either */
  sigaction(SIGCHLD, &sa, NULL);
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert(disposition() == on_sigchld);
  ck_assert_int_eq(gev_hub_destroy(), 0);
  ck_assert(disposition() == on_sigchld);
  signal(SIGCHLD, SIG_DFL);

  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &old);
  pid_t pid = child_exiting(0);
  int sig = 0;
  for (int i = 0; i < 400 && pf_alive(pid); i++)
    usleep(5000);
  ck_assert_int_eq(gev_sleep(0.01), 0); /* hub created with it pending */
  ck_assert_int_eq(gev_hub_destroy(), 0);
  ck_assert_int_eq(sigwait(&chld, &sig), 0);
  ck_assert_int_eq(sig, SIGCHLD);
  sigprocmask(SIG_SETMASK, &old, NULL);
  ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
}
END_TEST

/* ---- gev_waitpid ----------------------------------------------------------
 */

/* A child that ended while the hub ran, long before anyone asked. */
START_TEST(test_status_of_an_early_exit_is_kept) {
  int status = -1;
  pid_t pid = child_exiting(9);
  ck_assert_int_eq(gev_sleep(0.2), 0);
  ck_assert_int_eq(gev_waitpid(pid, &status, 0, 5), pid);
  ck_assert(WIFEXITED(status));
  ck_assert_int_eq(WEXITSTATUS(status), 9);
  ck_assert_int_eq(gev_waitpid(pid, &status, 0, 5), -1); /* reaped once */
  ck_assert_int_eq(errno, ECHILD);
}
END_TEST

START_TEST(test_waitpid_nohang_timeout_and_signals) {
  int status = -1;
  pid_t pid = child_pausing();
  ck_assert_int_eq(gev_waitpid(pid, &status, WNOHANG, -1), 0);
  double t0 = gev_monotonic();
  ck_assert_int_eq(gev_waitpid(pid, &status, 0, 0.05), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert(gev_monotonic() - t0 >= 0.05); /* never early */
  ck_assert_int_eq(kill(pid, SIGUSR1), 0);
  ck_assert_int_eq(gev_waitpid(pid, &status, 0, 5), pid);
  ck_assert(WIFSIGNALED(status));
  ck_assert_int_eq(WTERMSIG(status), SIGUSR1);
}
END_TEST

static void *wait_forever(void *arg) {
  int status;
  pid_t pid = (pid_t)(intptr_t)arg;
  return gev_waitpid(pid, &status, 0, -1) < 0 ? gev_fail(errno, "waitpid")
                                              : NULL;
}

/* A killed waiter leaves the child waitable, and nothing behind. */
START_TEST(test_killed_waiter) {
  int status = -1;
  pid_t pid = child_pausing();
  gev_greenlet *g = gev_spawn(wait_forever, (void *)(intptr_t)pid);
  ck_assert_int_eq(gev_sleep(0.01), 0);
  ck_assert_int_eq(gev_greenlet_kill(g, 1, 5), 0);
  ck_assert_int_eq(gev_greenlet_error(g), 0); /* ended by the kill */
  gev_greenlet_unref(g);
  kill(pid, SIGKILL);
  ck_assert_int_eq(gev_waitpid(pid, &status, 0, 5), pid);
  ck_assert_int_eq(WTERMSIG(status), SIGKILL);
}
END_TEST

static void *wait_in_greenlet(void *arg) {
  int status = -1;
  pid_t pid = (pid_t)(intptr_t)arg;
  if (gev_waitpid(pid, &status, 0, 5) != pid)
    return gev_fail(errno, "waitpid");
  return (void *)(intptr_t)WEXITSTATUS(status);
}

START_TEST(test_waitpid_bad_input) {
  int status;
  ck_assert_int_eq(gev_waitpid(0, &status, 0, 1), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_waitpid(-1, &status, 0, 1), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_waitpid(1, &status, WUNTRACED, 1), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_waitpid(1, &status, 0, 0.0 / 0.0), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_waitpid(getppid(), &status, 0, 1), -1);
  ck_assert_int_eq(errno, ECHILD); /* not a child */
  ck_assert_int_eq(gev_waitpid(getpid(), &status, WNOHANG, 1), -1);
  ck_assert_int_eq(errno, ECHILD);
}
END_TEST

/* ---- Other threads' hubs --------------------------------------------------
 */

typedef struct thread_job {
  pid_t pid;
  int status; /* the wait status, or -errno */
  int use_watcher;
} thread_job;

static void *thread_waits(void *arg) {
  thread_job *j = arg;
  if (j->use_watcher) {
    ev_child *w = malloc(sizeof *w);
    ev_child_init(w, NULL, j->pid, 0);
    j->status =
        gev_wait_watcher(w, GEV_WATCH_CHILD, 5) > 0 ? w->rstatus : -errno;
    free(w);
  } else {
    int st;
    j->status = gev_waitpid(j->pid, &st, 0, 5) == j->pid ? st : -errno;
  }
  gev_hub_destroy();
  gev_coro_thread_cleanup();
  return NULL;
}

static int wait_in_thread(pid_t pid, int use_watcher) {
  thread_job j = {.pid = pid, .use_watcher = use_watcher};
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, thread_waits, &j), 0);
  pthread_join(th, NULL);
  return j.status;
}

/* Child watching works in any thread's hub (pidfd), also through an
 * ev_child watcher, which libev itself supports on the default loop
 * only. */
START_TEST(test_child_waits_in_another_thread) {
  ck_assert_int_eq(gev_sleep(0), 0); /* the main hub exists too */
  int status = wait_in_thread(child_exiting(11), 1);
  ck_assert_int_ge(status, 0);
  ck_assert_int_eq(WEXITSTATUS(status), 11);
  status = wait_in_thread(child_exiting(12), 0);
  ck_assert_int_ge(status, 0);
  ck_assert_int_eq(WEXITSTATUS(status), 12);
}
END_TEST

/* ---- libev's reaper -------------------------------------------------------
 */

static void count_sigchld(int signum, void *arg) { (*(int *)arg)++; }

/* Watching SIGCHLD in the main hub turns libev's reaper on (and only
 * then): its handler runs, statuses it collects are kept for
 * gev_waitpid, and cancelling it puts the program's disposition back. */
START_TEST(test_sigchld_handler_and_the_reaper) {
  static int seen;
  int status = -1;
  seen = 0;
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert(disposition() == SIG_DFL);
  gev_signal *h = gev_signal_handler(SIGCHLD, count_sigchld, &seen);
  ck_assert_ptr_nonnull(h);
  ck_assert(disposition() != SIG_DFL);
  pid_t a = child_exiting(21), b = child_exiting(22);
  for (int i = 0; i < 400 && (pf_alive(a) || pf_alive(b) ||
                              pf_zombies(getpid()) > 0 || seen == 0);
       i++)
    ck_assert_int_eq(gev_sleep(0.005), 0);
  ck_assert_int_ge(seen, 1);
  ck_assert_int_eq(pf_zombies(getpid()), 0); /* the reaper took them */
  ck_assert_int_eq(waitpid(a, NULL, WNOHANG), -1);
  ck_assert_int_eq(errno, ECHILD);
  ck_assert_int_eq(gev_waitpid(b, &status, 0, 5), b); /* from the cache */
  ck_assert_int_eq(WEXITSTATUS(status), 22);
  ck_assert_int_eq(gev_waitpid(a, &status, 0, 5), a);
  ck_assert_int_eq(WEXITSTATUS(status), 21);
  ck_assert_int_eq(gev_signal_cancel(h), 0);
  ck_assert(disposition() == SIG_DFL);
}
END_TEST

static void *sigchld_in_thread(void *arg) {
  gev_signal *h = gev_signal_handler(SIGCHLD, count_sigchld, arg);
  int err = h ? 0 : errno;
  gev_signal_cancel(h);
  gev_hub_destroy();
  gev_coro_thread_cleanup();
  return (void *)(intptr_t)err;
}

START_TEST(test_sigchld_belongs_to_the_main_hub) {
  static int seen;
  pthread_t th;
  void *err = NULL;
  ck_assert_int_eq(pthread_create(&th, NULL, sigchld_in_thread, &seen), 0);
  pthread_join(th, &err);
  ck_assert_int_eq((int)(intptr_t)err, EBUSY);
}
END_TEST

/* A wait for any child (pid 0) needs the reaper: main hub only. A child
 * that ended before the wait began is found. */
START_TEST(test_wait_for_any_child) {
  ev_child *w = malloc(sizeof *w);
  pid_t pid = child_exiting(31);
  for (int i = 0; i < 400 && pf_alive(pid); i++)
    usleep(5000);
  ev_child_init(w, NULL, 0, 0);
  ck_assert_int_eq(gev_wait_watcher(w, GEV_WATCH_CHILD, 5), EV_CHILD);
  ck_assert_int_eq(w->rpid, pid);
  ck_assert_int_eq(WEXITSTATUS(w->rstatus), 31);
  ck_assert(disposition() == SIG_DFL); /* the reaper is off again */
  free(w);
  int status;
  ck_assert_int_eq(gev_waitpid(pid, &status, WNOHANG, 0), -1);
  ck_assert_int_eq(errno, ECHILD); /* reported once only */
}
END_TEST

/* Without pidfd (an old kernel), child waits go through the reaper in
 * the main hub and are refused elsewhere. */
START_TEST(test_without_pidfd) {
  int status = -1;
  void *v = NULL;
  gev__child_use_pidfd(0);
  pid_t early = child_exiting(41);
  for (int i = 0; i < 400 && pf_alive(early); i++)
    usleep(5000);
  ck_assert_int_eq(gev_waitpid(early, &status, 0, 5), early);
  ck_assert_int_eq(WEXITSTATUS(status), 41);
  pid_t late = child_exiting(42);
  gev_greenlet *g = gev_spawn(wait_in_greenlet, (void *)(intptr_t)late);
  ck_assert_int_eq(gev_greenlet_get(g, 5, &v), 0);
  ck_assert_int_eq((int)(intptr_t)v, 42);
  gev_greenlet_unref(g);
  ck_assert(disposition() == SIG_DFL);
  pid_t other = child_exiting(43);
  ck_assert_int_eq(wait_in_thread(other, 0), -ENOTSUP);
  ck_assert_int_eq(gev_waitpid(other, &status, 0, 5), other);
  ck_assert_int_eq(WEXITSTATUS(status), 43);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("children");
  TCase *tc = tcase_create("children");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_popen_keeps_its_status);
  tcase_add_test(tc, test_waitpid_of_the_program);
  tcase_add_test(tc, test_sigchld_disposition_untouched);
  tcase_add_test(tc, test_status_of_an_early_exit_is_kept);
  tcase_add_test(tc, test_waitpid_nohang_timeout_and_signals);
  tcase_add_test(tc, test_killed_waiter);
  tcase_add_test(tc, test_waitpid_bad_input);
  tcase_add_test(tc, test_child_waits_in_another_thread);
  tcase_add_test(tc, test_sigchld_handler_and_the_reaper);
  tcase_add_test(tc, test_sigchld_belongs_to_the_main_hub);
  tcase_add_test(tc, test_wait_for_any_child);
  tcase_add_test(tc, test_without_pidfd);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(suite)
