/* gev_wait and gev_iwait over any waitable: greenlets, Events,
 * AsyncResults, Semaphores, Locks, Queues, Channels, raw fds and sockets;
 * counts, "not yet" on timeout, destruction while waiting, misuse. */
#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gev/net.h"
#include "gev/sync.h"
#include "testutil.h"

#define P(i) ((void *)(intptr_t)(i))

static int fds;
static gev_event *ev;
static gev_async_result *ar;
static gev_semaphore *sem;
static gev_queue *q;

static void begin(void) { fds = gev_test_fd_count(); }
static void end(void) { gev_test_all_clean(fds); }

static void *set_event_later(void *arg) {
  gev_sleep(0.02);
  gev_event_set(arg);
  return NULL;
}

static void *put_later(void *arg) {
  gev_sleep(0.02);
  gev_queue_put(arg, P(7), -1);
  return NULL;
}

static void *release_later(void *arg) {
  gev_sleep(0.02);
  gev_semaphore_release(arg);
  return NULL;
}

static void *result_later(void *arg) {
  gev_sleep(0.04);
  gev_async_result_set_error_msg(arg, EIO, "disk %d", 3);
  return NULL;
}

START_TEST(wait_for_one_of_many_kinds) {
  begin();
  ev = gev_event_new();
  ar = gev_async_result_new();
  sem = gev_semaphore_new(0);
  q = gev_queue_new(NULL);
  gev_waitable w[4] = {gev_waitable_event(ev), gev_waitable_async_result(ar),
                       gev_waitable_semaphore(sem), gev_waitable_queue(q)};
  /* Nothing is ready: "not yet" is a count of 0, not an error. */
  ck_assert_int_eq(gev_wait(w, 4, 0, 1), 0);
  ck_assert_int_eq(gev_wait(w, 4, 0.01, 1), 0);
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(w[i].ready, 0);
  gev_greenlet *g = gev_spawn(put_later, q);
  ck_assert_int_eq(gev_wait(w, 4, 5, 1), 1);
  ck_assert_int_eq(w[3].ready, 1);
  ck_assert_int_eq(w[0].ready + w[1].ready + w[2].ready, 0);
  /* Waiting took nothing: the item is still there. */
  ck_assert_int_eq(gev_queue_size(q), 1);
  gev_greenlet_unref(g);
  g = gev_spawn(release_later, sem);
  ck_assert_int_eq(gev_wait(&w[2], 1, 5, 0), 1);
  ck_assert_int_eq(gev_semaphore_value(sem), 1); /* not acquired */
  gev_greenlet_unref(g);
  g = gev_spawn(set_event_later, ev);
  gev_greenlet *g2 = gev_spawn(result_later, ar);
  /* count 0: all of them. */
  ck_assert_int_eq(gev_wait(w, 4, 5, 0), 4);
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(w[i].ready, 1);
  ck_assert_str_eq(gev_async_result_errmsg(ar), "disk 3");
  gev_greenlet_unref(g);
  gev_greenlet_unref(g2);
  gev_event_free(ev);
  gev_async_result_free(ar);
  gev_semaphore_free(sem);
  gev_queue_free(q);
  end();
}
END_TEST

static void *finish_after(void *arg) {
  gev_sleep((double)(intptr_t)arg / 100);
  return arg;
}

START_TEST(wait_mixes_greenlets_and_objects) {
  begin();
  ev = gev_event_new();
  gev_greenlet *g = gev_spawn(finish_after, P(2));
  gev_waitable w[2] = {gev_waitable_greenlet(g), gev_waitable_event(ev)};
  ck_assert_int_eq(gev_wait(w, 2, 5, 1), 1);
  ck_assert_int_eq(w[0].ready, 1);
  ck_assert_int_eq(w[1].ready, 0);
  /* The timeout passes first: the ready ones are reported, no error. */
  double t0 = gev_monotonic();
  ck_assert_int_eq(gev_wait(w, 2, 0.05, 0), 1);
  ck_assert(gev_monotonic() - t0 >= 0.05);
  gev_greenlet_unref(g);
  gev_event_free(ev);
  end();
}
END_TEST

static void *destroy_later(void *arg) {
  gev_sleep(0.02);
  gev_event_free(arg);
  return NULL;
}

START_TEST(destroyed_while_waited_is_eidrm) {
  begin();
  ev = gev_event_new();
  gev_event *other = gev_event_new();
  gev_waitable w[2] = {gev_waitable_event(ev), gev_waitable_event(other)};
  gev_greenlet *g = gev_spawn(destroy_later, ev);
  ck_assert_int_eq(gev_wait(w, 2, 5, 0), -1);
  ck_assert_int_eq(errno, EIDRM);
  ck_assert_int_eq(w[0].ready, 0);
  ck_assert_int_eq(w[1].ready, 0);
  gev_greenlet_unref(g);
  /* The same through an iterator: the index comes back with EIDRM. */
  ev = gev_event_new();
  w[0] = gev_waitable_event(ev);
  gev_iwait *it = gev_iwait_new_any(w, 2, 5);
  ck_assert_ptr_nonnull(it);
  g = gev_spawn(destroy_later, ev);
  size_t i = 99;
  ck_assert_int_eq(gev_iwait_next_index(it, &i), -1);
  ck_assert_int_eq(errno, EIDRM);
  ck_assert_uint_eq(i, 0);
  gev_event_set(other);
  ck_assert_int_eq(gev_iwait_next_index(it, &i), 1);
  ck_assert_uint_eq(i, 1);
  ck_assert_int_eq(gev_iwait_next_index(it, &i), 0);
  gev_iwait_free(it);
  gev_greenlet_unref(g);
  gev_event_free(other);
  end();
}
END_TEST

static void *write_later(void *arg) {
  gev_sleep(0.02);
  ck_assert_int_eq(write((int)(intptr_t)arg, "x", 1), 1);
  return NULL;
}

static void *close_later(void *arg) {
  gev_sleep(0.02);
  gev_socket_close(arg);
  return NULL;
}

START_TEST(fds_and_sockets) {
  begin();
  int p[2];
  ck_assert_int_eq(pipe(p), 0);
  gev_waitable w[2] = {gev_waitable_fd(p[0], GEV_WAIT_READ),
                       gev_waitable_fd(p[1], GEV_WAIT_WRITE)};
  /* A pipe's write end is writable at once. */
  ck_assert_int_eq(gev_wait(w, 2, 0, 1), 1);
  ck_assert_int_eq(w[1].ready, 1);
  gev_greenlet *g = gev_spawn(write_later, P(p[1]));
  ck_assert_int_eq(gev_wait(w, 1, 5, 0), 1);
  ck_assert_int_eq(w[0].ready, 1);
  gev_greenlet_unref(g);
  close(p[0]);
  close(p[1]);

  int sv[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  gev_socket *a = gev_socket_wrap(sv[0]), *b = gev_socket_wrap(sv[1]);
  gev_waitable ws = gev_waitable_socket(a, GEV_WAIT_READ);
  ck_assert_int_eq(gev_wait(&ws, 1, 0.01, 0), 0);
  ck_assert_int_eq(gev_socket_send(b, "y", 1, 0), 1);
  ck_assert_int_eq(gev_wait(&ws, 1, 5, 0), 1);
  char c;
  ck_assert_int_eq(gev_socket_recv(a, &c, 1, 0), 1);
  /* Closing a socket that is waited on ends the wait: it is ready, and
   * its next call says EBADF. The wait's reference keeps it valid. */
  gev_socket_ref(a);
  g = gev_spawn(close_later, a);
  ck_assert_int_eq(gev_wait(&ws, 1, 5, 0), 1);
  ck_assert_int_eq(gev_socket_recv(a, &c, 1, 0), -1);
  ck_assert_int_eq(errno, EBADF);
  ck_assert_int_eq(gev_wait(&ws, 1, 0, 0), -1); /* closed: refused now */
  ck_assert_int_eq(errno, EBADF);
  gev_socket_unref(a);
  gev_greenlet_unref(g);
  gev_socket_close(b);
  end();
}
END_TEST

START_TEST(iwait_any_in_ready_order) {
  begin();
  gev_event *e[3];
  gev_waitable w[3];
  for (int i = 0; i < 3; i++) {
    e[i] = gev_event_new();
    w[i] = gev_waitable_event(e[i]);
  }
  gev_event_set(e[1]); /* ready before the iterator starts */
  gev_iwait *it = gev_iwait_new_any(w, 3, 2);
  gev_greenlet *g2 = gev_spawn(set_event_later, e[2]);
  size_t i;
  ck_assert_int_eq(gev_iwait_next_index(it, &i), 1);
  ck_assert_uint_eq(i, 1);
  ck_assert_int_eq(gev_iwait_next_index(it, &i), 1);
  ck_assert_uint_eq(i, 2);
  /* e[0] is never set: the iterator's own deadline says "not yet". */
  ck_assert_int_eq(gev_iwait_next_index(it, &i), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  /* A greenlet-returning next() refuses an iterator over other objects. */
  ck_assert_ptr_null(gev_iwait_next(it));
  ck_assert_int_eq(errno, EINVAL);
  gev_iwait_free(it);
  gev_greenlet_unref(g2);
  for (int k = 0; k < 3; k++)
    gev_event_free(e[k]);
  end();
}
END_TEST

START_TEST(locks_and_channels) {
  begin();
  gev_lock *l = gev_lock_new();
  gev_channel *c = gev_channel_new();
  gev_waitable w[2] = {gev_waitable_lock(l), gev_waitable_channel(c)};
  ck_assert_int_eq(gev_wait(w, 2, 0, 0), 1); /* the lock is free */
  ck_assert_int_eq(w[0].ready, 1);
  ck_assert_int_eq(gev_lock_acquire(l, 0), 0);
  ck_assert_int_eq(gev_wait(w, 1, 0, 0), 0);
  ck_assert_int_eq(gev_lock_release(l), 0);
  ck_assert_int_eq(gev_wait(w, 1, 0, 0), 1);
  /* A channel is ready when a putter waits; closing also makes it so. */
  ck_assert_int_eq(gev_wait(&w[1], 1, 0, 0), 0);
  ck_assert_int_eq(gev_channel_close(c), 0);
  ck_assert_int_eq(gev_wait(&w[1], 1, 0, 0), 1);
  gev_lock_free(l);
  gev_channel_free(c);
  end();
}
END_TEST

static void *scope_body(void *arg) {
  gev_event *e = arg;
  gev_waitable w = gev_waitable_event(e);
  gev_timeout *t = gev_timeout_start(0.02);
  int rc = gev_wait(&w, 1, 5, 0);
  int err = errno;
  gev_timeout_cancel(t);
  ck_assert_int_eq(rc, -1);
  ck_assert_int_eq(err, ETIMEDOUT); /* a scope's expiry is an error */
  return NULL;
}

static void *killed_body(void *arg) {
  gev_waitable w = gev_waitable_event(arg);
  ck_assert_int_eq(gev_wait(&w, 1, -1, 0), -1);
  ck_assert_int_eq(errno, ECANCELED);
  return NULL;
}

START_TEST(scopes_kills_and_misuse) {
  begin();
  ev = gev_event_new();
  gev_greenlet *g = gev_spawn(scope_body, ev);
  ck_assert_int_eq(gev_greenlet_join(g, 5), 0);
  ck_assert(gev_greenlet_successful(g));
  gev_greenlet_unref(g);
  g = gev_spawn(killed_body, ev);
  gev_sleep(0);
  ck_assert_int_eq(gev_greenlet_kill(g, 1, 5), 0);
  ck_assert(gev_greenlet_successful(g));
  gev_greenlet_unref(g);

  gev_waitable w = gev_waitable_event(NULL);
  ck_assert_int_eq(gev_wait(&w, 1, 0, 0), -1);
  ck_assert_int_eq(errno, EINVAL);
  w = (gev_waitable){0};
  ck_assert_int_eq(gev_wait(&w, 1, 0, 0), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_wait(NULL, 1, 0, 0), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_wait(NULL, 0, 0, 0), 0);
  w = gev_waitable_fd(-1, GEV_WAIT_READ);
  ck_assert_int_eq(gev_wait(&w, 1, 0, 0), -1);
  ck_assert_int_eq(errno, EBADF);
  w = gev_waitable_fd(0, 0);
  ck_assert_int_eq(gev_wait(&w, 1, 0, 0), -1);
  ck_assert_int_eq(errno, EINVAL);
  w = gev_waitable_event(ev);
  ck_assert_int_eq(gev_wait(&w, 1, 0.0 / 0.0, 0), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_ptr_null(gev_iwait_new_any(&w, 1, 0.0 / 0.0));
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_iwait_next_index(NULL, NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  gev_event_free(ev);
  /* A destroyed (embedded) object is refused. */
  static gev_event embedded;
  ck_assert_int_eq(gev_event_init(&embedded), 0);
  gev_event_destroy(&embedded);
  w = gev_waitable_event(&embedded);
  ck_assert_int_eq(gev_wait(&w, 1, 0, 0), -1);
  ck_assert_int_eq(errno, EINVAL);
  /* Nothing else could wake the waiter: EDEADLK, not a hang. */
  ev = gev_event_new();
  w = gev_waitable_event(ev);
  ck_assert_int_eq(gev_wait(&w, 1, -1, 0), -1);
  ck_assert_int_eq(errno, EDEADLK);
  gev_event_free(ev);
  end();
}
END_TEST

static void *fail_job(void *arg) { return gev_fail(EIO, "job %d", 1); }

START_TEST(joinall_flags_and_join_all) {
  begin();
  gev_greenlet *gs[3] = {gev_spawn(finish_after, P(1)),
                         gev_spawn(fail_job, NULL),
                         gev_spawn(finish_after, P(50))};
  ck_assert_int_eq(gev_joinall(gs, 3, 5, 4, 0), -1); /* unknown flag */
  ck_assert_int_eq(errno, EINVAL);
  /* The failure comes first: only it has finished. */
  ck_assert_int_eq(gev_joinall(gs, 3, 5, GEV_JOIN_RAISE_ERROR, 0), 1);
  ck_assert_int_eq(gev_joinall(gs, 3, 5, GEV_JOIN_ALL, 2), 2);
  ck_assert_int_eq(gev_join_all(gs, 3, 0.01), 2); /* "not yet" */
  ck_assert_int_eq(gev_join_all(gs, 3, 5), 3);
  for (int i = 0; i < 3; i++)
    gev_greenlet_unref(gs[i]);
  end();
}
END_TEST

/* From the hub, timeout 0 only asks: no EPERM, nothing allocated. */
static int hub_answer = -2;
static void from_hub(void *arg) {
  gev_waitable w = gev_waitable_event(arg);
  hub_answer = gev_wait(&w, 1, 0, 0);
}

START_TEST(timeout_zero_asks_without_waiting) {
  begin();
  ev = gev_event_new();
  ck_assert_int_eq(gev_run_callback(from_hub, ev), 0);
  gev_sleep(0);
  ck_assert_int_eq(hub_answer, 0);
  gev_event_set(ev);
  ck_assert_int_eq(gev_run_callback(from_hub, ev), 0);
  gev_sleep(0);
  ck_assert_int_eq(hub_answer, 1);
  gev_event_free(ev);
  end();
}
END_TEST

static Suite *wait_suite(void) {
  Suite *s = suite_create("wait");
  TCase *tc = tcase_create("wait");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, wait_for_one_of_many_kinds);
  tcase_add_test(tc, wait_mixes_greenlets_and_objects);
  tcase_add_test(tc, destroyed_while_waited_is_eidrm);
  tcase_add_test(tc, fds_and_sockets);
  tcase_add_test(tc, iwait_any_in_ready_order);
  tcase_add_test(tc, locks_and_channels);
  tcase_add_test(tc, scopes_kills_and_misuse);
  tcase_add_test(tc, joinall_flags_and_join_all);
  tcase_add_test(tc, timeout_zero_asks_without_waiting);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(wait_suite)
