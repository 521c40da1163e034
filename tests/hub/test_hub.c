/* The hub itself: callbacks, Waiter, watcher waits, misuse from the hub,
 * hubs in two threads, run info, teardown. */
#include <errno.h>
#include <ev.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gev/hub.h"
#include "testutil.h"

static int fds_before;
static void setup(void) { fds_before = gev_test_fd_count(); }
static void teardown(void) { gev_test_all_clean(fds_before); }

static int cb_log[16], ncb;
static void log_cb(void *arg) {
  cb_log[ncb++] = (int)(intptr_t)arg;
  if ((intptr_t)arg == 1)
    gev_run_callback(log_cb, (void *)3); /* queued while draining */
}

START_TEST(test_callbacks_fifo_same_pass) {
  ncb = 0;
  ck_assert_int_eq(gev_run_callback(log_cb, (void *)1), 0);
  ck_assert_int_eq(gev_run_callback(log_cb, (void *)2), 0);
  ck_assert_int_eq(gev_sleep(0), 0); /* resumes behind 1 and 2, before 3 */
  ck_assert_int_eq(ncb, 2);
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert_int_eq(ncb, 3);
  ck_assert_int_eq(cb_log[0], 1);
  ck_assert_int_eq(cb_log[1], 2);
  ck_assert_int_eq(cb_log[2], 3);
  ck_assert_int_eq(gev_run_callback(NULL, NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
}
END_TEST

static int hub_errs[4];
static void blocking_from_hub(void *arg) {
  hub_errs[0] = gev_sleep(0.01) < 0 ? errno : 0;
  hub_errs[1] = gev_wait_read(0, 0.01) < 0 ? errno : 0;
  hub_errs[2] = gev_in_hub();
  hub_errs[3] = gev_timeout_start(1) == NULL ? errno : 0;
}

START_TEST(test_blocking_from_hub_fails_clearly) {
  ck_assert(!gev_in_hub());
  gev_run_callback(blocking_from_hub, NULL);
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert_int_eq(hub_errs[0], EPERM);
  ck_assert_int_eq(hub_errs[1], EPERM);
  ck_assert_int_eq(hub_errs[2], 1);
  ck_assert_int_eq(hub_errs[3], EPERM);
}
END_TEST

typedef struct waiter_box {
  gev_waiter w;
  int value;
  ev_timer t;
} waiter_box;

static void fire_waiter(struct ev_loop *loop, ev_timer *t, int revents) {
  waiter_box *b = t->data;
  gev_waiter_switch(&b->w, &b->value);
}

static void *waiter_getter(void *arg) {
  void *v;
  if (gev_waiter_get(arg, &v) < 0)
    return gev_fail(errno, "get");
  return v;
}

START_TEST(test_waiter_rules) {
  waiter_box *b = calloc(1, sizeof *b);
  void *v;
  gev_waiter_init(&b->w);
  /* switch before get stores the value */
  ev_timer_init(&b->t, fire_waiter, 0.01, 0);
  b->t.data = b;
  ev_timer_start(gev_hub_loop(), &b->t);
  ck_assert_int_eq(gev_waiter_get(&b->w, &v), 0);
  ck_assert_ptr_eq(v, &b->value);
  /* a second concurrent get is refused */
  gev_waiter_clear(&b->w);
  gev_greenlet *g1 = gev_spawn(waiter_getter, &b->w);
  gev_greenlet *g2 = gev_spawn(waiter_getter, &b->w);
  ck_assert_int_eq(gev_sleep(0.005), 0);
  ck_assert(gev_greenlet_ready(g2));
  ck_assert_int_eq(gev_greenlet_error(g2), EBUSY);
  ev_timer_set(&b->t, 0.01, 0);
  ev_timer_start(gev_hub_loop(), &b->t);
  ck_assert_int_eq(gev_greenlet_get(g1, 1, &v), 0);
  ck_assert_ptr_eq(v, &b->value);
  gev_greenlet_unref(g1);
  gev_greenlet_unref(g2);
  free(b);
}
END_TEST

START_TEST(test_waiter_switch_outside_hub_aborts) {
  int st;
  pid_t pid = fork();
  if (pid == 0) {
    gev_waiter w;
    close(2);
    gev_waiter_init(&w);
    gev_waiter_switch(&w, NULL);
    _exit(0);
  }
  waitpid(pid, &st, 0);
  ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
}
END_TEST

START_TEST(test_wait_any_watcher) {
  ev_timer *t = calloc(1, sizeof *t);
  ev_timer_init(t, NULL, 0.01, 0);
  int revents = gev_wait_watcher(t, GEV_WATCH_TIMER, 1);
  ck_assert_int_eq(revents, EV_TIMER);
  ck_assert(!ev_is_active(t));
  ev_timer_set(t, 5, 0);
  ck_assert_int_eq(gev_wait_watcher(t, GEV_WATCH_TIMER, 0.01), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(gev_wait_watcher(NULL, GEV_WATCH_TIMER, 1), -1);
  ck_assert_int_eq(errno, EINVAL);
  free(t);
  /* a child watcher: wait for a forked process */
  pid_t pid = fork();
  if (pid == 0)
    _exit(7);
  ev_child *c = calloc(1, sizeof *c);
  ev_child_init(c, NULL, pid, 0);
  ck_assert_int_eq(gev_wait_watcher(c, GEV_WATCH_CHILD, 5), EV_CHILD);
  ck_assert(WIFEXITED(c->rstatus) && WEXITSTATUS(c->rstatus) == 7);
  free(c);
}
END_TEST

static void *in_thread(void *arg) {
  int *n = arg;
  for (int i = 0; i < 100; i++)
    gev_spawn_raw(waiter_getter, NULL);
  (void)n;
  return NULL;
}

static void *count_job(void *arg) {
  gev_sleep(0.001);
  __atomic_add_fetch((int *)arg, 1, __ATOMIC_RELAXED);
  return NULL;
}

static void *thread_hub(void *arg) {
  gev_greenlet *gs[50];
  struct ev_loop *loop = gev_hub_loop();
  for (int i = 0; i < 50; i++)
    gs[i] = gev_spawn(count_job, arg);
  int k = gev_joinall(gs, 50, 5, 0, 0);
  for (int i = 0; i < 50; i++)
    gev_greenlet_unref(gs[i]);
  gev_hub_destroy();
  gev_coro_thread_cleanup();
  return k == 50 && loop != ev_default_loop(EVFLAG_NOENV) ? loop : NULL;
}

START_TEST(test_hub_per_thread) {
  pthread_t a, b;
  void *ra, *rb;
  int n = 0;
  (void)in_thread;
  pthread_create(&a, NULL, thread_hub, &n);
  pthread_create(&b, NULL, thread_hub, &n);
  pthread_join(a, &ra);
  pthread_join(b, &rb);
  ck_assert_ptr_nonnull(ra);
  ck_assert_ptr_nonnull(rb); /* each ran on its own loop, not the default */
  ck_assert_int_eq(n, 100);
  ck_assert_ptr_eq(gev_hub_loop(), ev_default_loop(0)); /* main thread */
}
END_TEST

/* gev_hub_exists asks without creating; a destroyed hub is gone. */
START_TEST(test_hub_exists_never_creates) {
  int fds = gev_test_fd_count();
  ck_assert(!gev_hub_exists());
  ck_assert(!gev_hub_exists());
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert(gev_hub_exists());
  ck_assert_int_eq(gev_hub_destroy(), 0);
  ck_assert(!gev_hub_exists());
  gev_test_all_clean(fds);
}
END_TEST

static gev_greenlet *g_foreign;
static void *foreign_join(void *arg) {
  int *err = arg;
  *err = gev_greenlet_join(g_foreign, 0.1) < 0 ? errno : 0;
  gev_hub_destroy();
  gev_coro_thread_cleanup();
  return NULL;
}

START_TEST(test_greenlet_of_other_hub_refused) {
  pthread_t th;
  int err = 0;
  g_foreign = gev_spawn(count_job, &err);
  pthread_create(&th, NULL, foreign_join, &err);
  pthread_join(th, NULL);
  ck_assert_int_eq(err, EXDEV);
  ck_assert_int_eq(gev_greenlet_join(g_foreign, 1), 0);
  gev_greenlet_unref(g_foreign);
}
END_TEST

static void *named_sleeper(void *arg) {
  gev_sleep(10);
  return NULL;
}

START_TEST(test_run_info_names_parked_greenlets) {
  gev_spawn_opts o = {.name = "sleepy"};
  gev_greenlet *g = gev_spawn_ex(&o, named_sleeper, NULL);
  char *buf = NULL;
  size_t len = 0;
  ck_assert_int_eq(gev_sleep(0.001), 0);
  FILE *f = open_memstream(&buf, &len);
  gev_print_run_info(f);
  fclose(f);
  ck_assert_msg(strstr(buf, "sleepy: parked on sleep"), "%s", buf);
  free(buf);
  ck_assert_str_eq(gev_greenlet_name(g), "sleepy");
  ck_assert_int_eq(gev_hub_verify(), 0);
  gev_greenlet_kill(g, 1, 1);
  gev_greenlet_unref(g);
}
END_TEST

static void *fail_unlinked(void *arg) { return gev_fail(EIO, "disk on fire"); }

START_TEST(test_unlinked_failure_reported_hub_survives) {
  int pipefd[2], saved = dup(2);
  char buf[256] = {0};
  ck_assert_int_eq(pipe(pipefd), 0);
  dup2(pipefd[1], 2);
  gev_greenlet *g = gev_spawn(fail_unlinked, NULL);
  gev_greenlet_set_name(g, "burner");
  /* Not joined: a failure someone waits for is theirs, not the log's. */
  for (int i = 0; i < 1000 && !gev_greenlet_ready(g); i++)
    gev_sleep(0.001);
  gev_sleep(0);
  gev_sleep(0);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(pipefd[1]);
  ck_assert(read(pipefd[0], buf, sizeof buf - 1) > 0);
  close(pipefd[0]);
  ck_assert_msg(strstr(buf, "burner failed: disk on fire"), "%s", buf);
  gev_greenlet_unref(g);
  /* the hub keeps working */
  g = gev_spawn(count_job, &(int){0});
  ck_assert_int_eq(gev_greenlet_join(g, 1), 0);
  gev_greenlet_unref(g);
}
END_TEST

static void never_called(struct ev_loop *loop, ev_io *w, int revents) {
  ck_abort_msg("the io watcher fired");
}

/* A watcher the program left active on the default loop must not keep a
 * later hub from going idle. */
START_TEST(test_destroy_with_foreign_watcher_then_new_hub_idles) {
  static ev_io w;
  int p[2];
  ck_assert_int_eq(pipe(p), 0);
  ev_io_init(&w, never_called, p[0], EV_READ);
  ev_io_start(gev_hub_loop(), &w);
  ck_assert_int_eq(gev_hub_destroy(), 0);
  alarm(10);
  ck_assert_int_eq(gev_run(), 0); /* would hang with a stale count */
  ck_assert_int_eq(gev_sleep(0.001), 0);
  alarm(0);
  close(p[0]);
  close(p[1]);
}
END_TEST

static Suite *hub_suite(void) {
  Suite *s = suite_create("hub");
  TCase *tc = tcase_create("hub");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_callbacks_fifo_same_pass);
  tcase_add_test(tc, test_blocking_from_hub_fails_clearly);
  tcase_add_test(tc, test_waiter_rules);
  tcase_add_test(tc, test_waiter_switch_outside_hub_aborts);
  tcase_add_test(tc, test_wait_any_watcher);
  tcase_add_test(tc, test_hub_per_thread);
  tcase_add_test(tc, test_hub_exists_never_creates);
  tcase_add_test(tc, test_greenlet_of_other_hub_refused);
  tcase_add_test(tc, test_run_info_names_parked_greenlets);
  tcase_add_test(tc, test_unlinked_failure_reported_hub_survives);
  tcase_add_test(tc, test_destroy_with_foreign_watcher_then_new_hub_idles);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(hub_suite)
