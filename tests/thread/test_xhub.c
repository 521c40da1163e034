/* Cross-thread wake-ups: handles on hubs, gev_run_callback_threadsafe,
 * a hub's teardown under posting threads, and a hub that waits for other
 * threads instead of reporting EDEADLK. */
#include <stdlib.h>
#include <unistd.h>

#include "threadtest.h"

/* ---- Callbacks from many threads ---------------------------------------- */

enum { POSTERS = 4, POSTS = 2000 };

static gev_hub *target;
static int received;
static int last_seq[POSTERS];
static int out_of_order;
static int wrong_thread;

static void count_cb(void *arg) {
  int who = I(arg) / POSTS, seq = I(arg) % POSTS;
  if (seq != last_seq[who] + 1)
    out_of_order++;
  last_seq[who] = seq;
  if (!gev_hub_is_current(target))
    wrong_thread++;
  count_add(&received, 1);
}

static void *poster(void *arg) {
  int who = I(arg);
  for (int i = 0; i < POSTS; i++)
    if (gev_run_callback_threadsafe(target, count_cb, P(who * POSTS + i)) < 0)
      abort();
  return NULL;
}

START_TEST(callbacks_from_threads_run_in_order) {
  pthread_t tids[POSTERS];
  thread_test_begin();
  target = gev_hub_current();
  ck_assert_ptr_nonnull(target);
  ck_assert_int_eq(gev_hub_is_current(target), 1);
  ck_assert_int_eq(gev_hub_alive(target), 1);
  received = out_of_order = wrong_thread = 0;
  for (int i = 0; i < POSTERS; i++) {
    last_seq[i] = -1;
    tids[i] = plain_thread_start(poster, P(i));
  }
  ck_assert(wait_for_count(&received, POSTERS * POSTS, 30));
  for (int i = 0; i < POSTERS; i++)
    ck_assert_int_eq(pthread_join(tids[i], NULL), 0);
  ck_assert_int_eq(out_of_order, 0);
  ck_assert_int_eq(wrong_thread, 0);
  gev_hub_unref(target);
  thread_test_end();
}
END_TEST

/* ---- A handle outlives its hub ------------------------------------------ */

static void noop_cb(void *arg) { (void)arg; }

static void *make_and_destroy_hub(void *arg) {
  gev_hub **out = arg;
  *out = gev_hub_current();
  gev_hub_destroy();
  return NULL;
}

START_TEST(posting_to_a_destroyed_hub_fails) {
  gev_hub *h = NULL;
  thread_test_begin();
  pthread_t tid = plain_thread_start(make_and_destroy_hub, &h);
  ck_assert_int_eq(pthread_join(tid, NULL), 0);
  ck_assert_ptr_nonnull(h);
  ck_assert_int_eq(gev_hub_alive(h), 0);
  ck_assert_int_eq(gev_hub_is_current(h), 0);
  ck_assert_int_eq(gev_run_callback_threadsafe(h, noop_cb, NULL), -1);
  ck_assert_int_eq(errno, ESHUTDOWN);
  ck_assert_ptr_eq(gev_hub_ref(h), h);
  gev_hub_unref(h);
  gev_hub_unref(h);
  /* The same for this thread's own hub, and for bad arguments. */
  h = gev_hub_current();
  ck_assert_int_eq(gev_hub_destroy(), 0);
  ck_assert_int_eq(gev_run_callback_threadsafe(h, noop_cb, NULL), -1);
  ck_assert_int_eq(errno, ESHUTDOWN);
  gev_hub_unref(h);
  ck_assert_int_eq(gev_run_callback_threadsafe(NULL, noop_cb, NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_hub_alive(NULL), -1);
  ck_assert_ptr_null(gev_hub_ref(NULL));
  gev_hub_unref(NULL);
  thread_test_end();
}
END_TEST

/* ---- Accepted callbacks run, also when the hub goes first ---------------- */

static int ran_at_teardown;
static pthread_mutex_t handoff_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t handoff_cond = PTHREAD_COND_INITIALIZER;
static gev_hub *handed;
static int posted;

static void teardown_cb(void *arg) {
  (void)arg;
  ran_at_teardown++;
}

/* Hands its hub over, waits (blocking the thread: the hub does not run)
 * until the other side has posted, then exits without gev_hub_destroy. */
static void *exit_with_posts(void *arg) {
  (void)arg;
  pthread_mutex_lock(&handoff_lock);
  handed = gev_hub_current();
  pthread_cond_broadcast(&handoff_cond);
  while (!posted)
    pthread_cond_wait(&handoff_cond, &handoff_lock);
  pthread_mutex_unlock(&handoff_lock);
  return P(ran_at_teardown); /* 0: nothing ran yet */
}

START_TEST(callbacks_accepted_before_teardown_run) {
  void *before;
  thread_test_begin();
  ran_at_teardown = posted = 0;
  handed = NULL;
  pthread_t tid = plain_thread_start(exit_with_posts, NULL);
  pthread_mutex_lock(&handoff_lock);
  while (!handed)
    pthread_cond_wait(&handoff_cond, &handoff_lock);
  for (int i = 0; i < 10; i++)
    ck_assert_int_eq(gev_run_callback_threadsafe(handed, teardown_cb, NULL), 0);
  posted = 1;
  pthread_cond_broadcast(&handoff_cond);
  pthread_mutex_unlock(&handoff_lock);
  ck_assert_int_eq(pthread_join(tid, &before), 0);
  ck_assert_int_eq(I(before), 0);
  ck_assert_int_eq(ran_at_teardown, 10); /* run as the thread exited */
  ck_assert_int_eq(gev_hub_alive(handed), 0);
  gev_hub_unref(handed);
  thread_test_end();
}
END_TEST

/* ---- Waiting for another thread instead of EDEADLK ---------------------- */

static void *set_later(void *arg) {
  usleep(50000);
  gev_event_set(arg);
  return NULL;
}

START_TEST(main_waits_for_an_event_another_thread_sets) {
  thread_test_begin();
  gev_event *ev = gev_event_new();
  double t0 = now();
  pthread_t tid = plain_thread_start(set_later, ev);
  ck_assert_int_eq(gev_event_wait(ev, 10), 0);
  ck_assert(now() - t0 >= 0.04);
  ck_assert_int_eq(pthread_join(tid, NULL), 0);
  ck_assert_int_eq(gev_event_is_set(ev), 1);
  gev_event_free(ev);
  thread_test_end();
}
END_TEST

static void *exit_soon(void *arg) {
  (void)arg;
  usleep(20000);
  return NULL;
}

/* A thread that only exits is no reason to wait: once it is gone the
 * wait fails as it always did. (A ThreadSanitizer runtime keeps a thread
 * of its own, so there the wait can only end by its timeout.) */
START_TEST(edeadlk_once_no_other_thread_is_left) {
  thread_test_begin();
  gev_event *ev = gev_event_new();
  int base = process_threads();
  pthread_t tid = plain_thread_start(exit_soon, NULL);
  ck_assert_int_eq(pthread_detach(tid), 0);
  int rc = gev_event_wait(ev, base == 1 ? -1 : 0.3);
  ck_assert_int_eq(rc, -1);
  ck_assert_int_eq(errno, base == 1 ? EDEADLK : ETIMEDOUT);
  gev_event_free(ev);
  thread_test_end();
}
END_TEST

/* A thread that posts and exits at once: its message must still end the
 * wait, even when the hub finds the thread gone before it has polled the
 * message in. */
static void *release_and_exit(void *arg) {
  gev_semaphore_release(arg);
  return NULL;
}

START_TEST(a_message_outlives_its_thread) {
  thread_test_begin();
  gev_semaphore *sem = gev_semaphore_new(0);
  for (int i = 0; i < 300; i++) {
    pthread_t tid = plain_thread_start(release_and_exit, sem);
    ck_assert_int_eq(pthread_detach(tid), 0);
    ck_assert_msg(gev_semaphore_acquire(sem, -1) == 0, "round %d: errno %d", i,
                  errno);
  }
  gev_semaphore_free(sem);
  thread_test_end();
}
END_TEST

static Suite *xhub_suite(void) {
  Suite *s = suite_create("xhub");
  TCase *tc = tcase_create("xhub");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, callbacks_from_threads_run_in_order);
  tcase_add_test(tc, posting_to_a_destroyed_hub_fails);
  tcase_add_test(tc, callbacks_accepted_before_teardown_run);
  tcase_add_test(tc, main_waits_for_an_event_another_thread_sets);
  tcase_add_test(tc, edeadlk_once_no_other_thread_is_left);
  tcase_add_test(tc, a_message_outlives_its_thread);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(xhub_suite)
