/* Fork support: a child that keeps the hub (re-initialised) and one that
 * discards it, with greenlets, timers, sockets and signal handlers alive
 * in the parent at the time of fork. Children report through their exit
 * status (CHILD_CHECK). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dnsmasq_run.h"
#include "gev/dns.h"
#include "gev/net.h"
#include "gev/prefork.h"
#include "gev/process.h"
#include "gev/signal.h"
#include "gev/sync.h"
#include "hub/hooks.h"
#include "pftest.h"
#include "testutil.h"

static int fds_before;
static void setup(void) { fds_before = gev_test_fd_count(); }
static void teardown(void) { gev_test_all_clean(fds_before); }

static void *sleep_then_value(void *arg) {
  if (gev_sleep(0.05) < 0)
    return NULL;
  return arg;
}

static void *wait_event(void *arg) {
  gev_event_wait(arg, -1);
  return NULL;
}

static void count_signal(int signum, void *arg) { (*(int *)arg)++; }

/* KEEP: the child goes on with the parent's greenlets and hub, and its
 * loop serves new timers, io and signals after ev_loop_fork. */
START_TEST(test_keep_child_continues_the_hub) {
  static int signals;
  int sv[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  gev_greenlet *g = gev_spawn(sleep_then_value, (void *)(intptr_t)7);
  ck_assert_int_eq(gev_sleep(0.001), 0); /* g is parked in its sleep */
  gev_signal *h = gev_signal_handler(SIGUSR1, count_signal, &signals);
  pid_t pid = gev_fork(GEV_FORK_KEEP);
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    void *v = NULL;
    /* The parent's greenlet finishes here too. */
    CHILD_CHECK(gev_greenlet_get(g, 5, &v) == 0 && v == (void *)(intptr_t)7);
    /* io on the child's loop: read what the parent writes. */
    gev_socket *s = gev_socket_wrap(sv[1]);
    char c = 0;
    CHILD_CHECK(s && gev_socket_settimeout(s, 5) == 0);
    CHILD_CHECK(gev_socket_recv(s, &c, 1, 0) == 1 && c == 'x');
    /* Signals still reach the kept handler. */
    raise(SIGUSR1);
    for (int i = 0; i < 200 && signals == 0; i++)
      gev_sleep(0.005);
    CHILD_CHECK(signals == 1);
    gev_signal_cancel(h);
    gev_greenlet_unref(g);
    gev_socket_close(s);
    close(sv[0]);
    gev_hub_destroy();
    _exit(0);
  }
  /* The parent's hub is unaffected. */
  void *v = NULL;
  ck_assert_int_eq(write(sv[0], "x", 1), 1);
  ck_assert_int_eq(gev_greenlet_get(g, 5, &v), 0);
  ck_assert_ptr_eq(v, (void *)(intptr_t)7);
  ck_assert_int_eq(pf_hub_wait_child(pid, 10), 0);
  ck_assert_int_eq(signals, 0);
  gev_greenlet_unref(g);
  gev_signal_cancel(h);
  close(sv[0]);
  close(sv[1]);
}
END_TEST

/* DISCARD: the child drops the parent's parked greenlets without running
 * them, frees their stacks, stops the parent's signal handlers, and gets
 * a fresh hub on its next gev call. */
START_TEST(test_discard_child_starts_fresh) {
  static int signals, ran_in_child;
  gev_event *e = gev_event_new();
  gev_greenlet *gs[8];
  for (int i = 0; i < 8; i++)
    gs[i] = gev_spawn(i % 2 ? wait_event : sleep_then_value, e);
  gev_greenlet *unstarted = gev_spawn(sleep_then_value, NULL);
  ck_assert_int_eq(gev_sleep(0), 0); /* the 8 run and park */
  gev_signal *h = gev_signal_handler(SIGUSR1, count_signal, &signals);
  gev_coro_stats cs;
  gev_coro_get_stats(&cs);
  ck_assert_uint_ge(cs.live, 9);

  pid_t pid = gev_fork(GEV_FORK_DISCARD);
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    gev_hub_stats hs;
    gev_hub_get_stats(&hs); /* no hub: all zero, and none is created */
    CHILD_CHECK(hs.greenlets == 0 && hs.watchers == 0);
    gev_coro_get_stats(&cs);
    CHILD_CHECK(cs.live == 0); /* every parent coroutine released */
    struct sigaction sa;
    sigaction(SIGUSR1, NULL, &sa);
    CHILD_CHECK(sa.sa_handler == SIG_DFL);
    /* A fresh hub works: greenlets, timers, signals. */
    gev_greenlet *g = gev_spawn(sleep_then_value, (void *)(intptr_t)3);
    void *v = NULL;
    CHILD_CHECK(gev_greenlet_get(g, 5, &v) == 0 && v == (void *)(intptr_t)3);
    gev_greenlet_unref(g);
    gev_signal *h2 = gev_signal_handler(SIGUSR1, count_signal, &ran_in_child);
    raise(SIGUSR1);
    for (int i = 0; i < 200 && ran_in_child == 0; i++)
      gev_sleep(0.005);
    CHILD_CHECK(ran_in_child == 1 && signals == 0);
    gev_signal_cancel(h2);
    gev_hub_get_stats(&hs);
    CHILD_CHECK(hs.greenlets == 0 && hs.watchers == 0 && hs.parked == 0);
    CHILD_CHECK(gev_hub_destroy() == 0);
    gev_coro_get_stats(&cs);
    CHILD_CHECK(cs.live == 0);
    CHILD_CHECK(gev_coro_thread_cleanup() == 0);
    gev_coro_get_stats(&cs);
    CHILD_CHECK(cs.stacks_mapped == 0 && cs.shared_saved == 0);
    _exit(0);
  }
  ck_assert_int_eq(pf_hub_wait_child(pid, 10), 0);
  /* The parent's greenlets are untouched: finish them. */
  ck_assert_int_eq(gev_event_set(e), 0);
  ck_assert_int_eq(gev_joinall(gs, 8, 5, 0, 0), 8);
  ck_assert_int_eq(gev_greenlet_join(unstarted, 5), 0);
  for (int i = 0; i < 8; i++)
    gev_greenlet_unref(gs[i]);
  gev_greenlet_unref(unstarted);
  gev_signal_cancel(h);
  gev_event_free(e);
}
END_TEST

/* Discard in a child without any hub, and reinit without one: no-ops. */
START_TEST(test_fork_without_a_hub) {
  ck_assert_int_eq(gev_hub_destroy(), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    CHILD_CHECK(gev_fork_discard() == 0);
    CHILD_CHECK(gev_fork_reinit() == 0);
    CHILD_CHECK(gev_sleep(0.001) == 0);
    gev_hub_destroy();
    _exit(0);
  }
  ck_assert_int_eq(pf_wait_pid(pid, 10), 0);
}
END_TEST

static void *fork_discard_in_greenlet(void *arg) {
  pid_t pid = gev_fork(GEV_FORK_DISCARD);
  *(int *)arg = pid < 0 ? errno : 0;
  if (pid == 0)
    _exit(1); /* must not happen: nothing is forked */
  return NULL;
}

static int hub_err;
static void reinit_from_hub(void *arg) {
  hub_err = gev_fork_reinit() < 0 ? errno : 0;
}

START_TEST(test_bad_input) {
  static int err;
  ck_assert_int_eq(gev_fork(0), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_fork((gev_fork_mode)9), -1);
  ck_assert_int_eq(errno, EINVAL);
  gev_greenlet *g = gev_spawn(fork_discard_in_greenlet, &err);
  ck_assert_int_eq(gev_greenlet_join(g, 5), 0);
  gev_greenlet_unref(g);
  ck_assert_int_eq(err, EPERM);
  ck_assert_int_eq(pf_zombies(getpid()), 0);
  ck_assert_int_eq(gev_run_callback(reinit_from_hub, NULL), 0);
  ck_assert_int_eq(gev_run(), 0);
  ck_assert_int_eq(hub_err, EPERM);
}
END_TEST

/* A greenlet may fork with KEEP; the child runs on in that greenlet. */
static void *fork_keep_in_greenlet(void *arg) {
  pid_t pid = gev_fork(GEV_FORK_KEEP);
  if (pid == 0) {
    CHILD_CHECK(gev_sleep(0.001) == 0);
    _exit(0);
  }
  return (void *)(intptr_t)pid;
}

START_TEST(test_keep_from_a_greenlet) {
  gev_greenlet *g = gev_spawn(fork_keep_in_greenlet, NULL);
  void *v = NULL;
  ck_assert_int_eq(gev_greenlet_get(g, 5, &v), 0);
  pid_t pid = (pid_t)(intptr_t)v;
  ck_assert_int_gt(pid, 0);
  gev_greenlet_unref(g);
  /* Nothing reaps the child behind the program's back: it stays a zombie
   * until waited for, however late. */
  for (int i = 0; i < 400 && pf_alive(pid); i++)
    gev_sleep(0.005);
  ck_assert(!pf_alive(pid));
  ck_assert_int_eq(pf_zombies(getpid()), 1);
  int status = -1;
  ck_assert_int_eq(gev_waitpid(pid, &status, 0, 5), pid);
  ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ck_assert_int_eq(pf_zombies(getpid()), 0);
}
END_TEST

static void *lookup(void *arg) {
  struct in_addr a;
  if (gev_gethostbyname("box.test", &a) < 0)
    return (void *)(intptr_t)-errno;
  return (void *)(intptr_t)(a.s_addr == inet_addr("127.0.0.9") ? 1 : 2);
}

/* KEEP with a lookup in flight: the child closes the channel it shares
 * with the parent at once (its copy of the query fails, the parent's
 * answer stays the parent's), and resolves on a channel of its own. */
START_TEST(test_keep_child_gets_its_own_resolver_channel) {
  dnsmasq_run d;
  char server[64];
  ck_assert_int_eq(dnsmasq_start(&d, "127.0.0.9 box.test\n", NULL), 0);
  dnsmasq_server(&d, server, sizeof server);
  ck_assert_int_eq(gev_dns_set_servers(server), 0);
  gev_greenlet *g = gev_spawn(lookup, NULL);
  ck_assert_int_eq(gev_sleep(0), 0); /* the query is sent, not answered */
  int fds_at_fork = gev_test_fd_count();
  pid_t pid = gev_fork(GEV_FORK_KEEP);
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    void *v = NULL;
    CHILD_CHECK(gev_test_fd_count() < fds_at_fork); /* socket closed */
    CHILD_CHECK(gev_greenlet_get(g, 5, &v) == 0 && (intptr_t)v < 0);
    gev_greenlet *again = gev_spawn(lookup, NULL);
    CHILD_CHECK(gev_greenlet_get(again, 5, &v) == 0 && (intptr_t)v == 1);
    gev_greenlet_unref(again);
    gev_greenlet_unref(g);
    gev_hub_destroy();
    _exit(0);
  }
  void *v = NULL;
  ck_assert_int_eq(gev_greenlet_get(g, 5, &v), 0);
  ck_assert_int_eq((int)(intptr_t)v, 1);
  gev_greenlet_unref(g);
  ck_assert_int_eq(pf_hub_wait_child(pid, 10), 0);
  dnsmasq_stop(&d);
}
END_TEST

/* Subsystems' fork hooks run in layer order whatever order they were
 * registered in: prepare and discard from the top layer down, parent and
 * keep from the bottom up, each set once however often registered. The
 * layers below a discard hook are still intact when it runs. */
static char order[128];
static void note(const char *what) {
  strncat(order, what, sizeof order - strlen(order) - 1);
}
static void net_prepare(void) { note("net-prepare "); }
static void net_parent(void) { note("net-parent "); }
static void net_keep(void) { note("net-keep "); }
static void net_discard(void) {
  note(gev_hub_coro() ? "net-discard " : "net-discard-without-hub ");
}
static void proc_prepare(void) { note("proc-prepare "); }
static void proc_parent(void) { note("proc-parent "); }
static void proc_keep(void) { note("proc-keep "); }
static void proc_discard(void) { note("proc-discard "); }
static const gev__fork_hooks net_hooks = {GEV__LAYER_NET, net_prepare,
                                          net_parent, net_keep, net_discard};
static const gev__fork_hooks proc_hooks = {
    GEV__LAYER_PROC, proc_prepare, proc_parent, proc_keep, proc_discard};

START_TEST(test_fork_hooks_run_in_layer_order) {
  gev__at_fork(&proc_hooks);
  gev__at_fork(&net_hooks);
  gev__at_fork(&net_hooks);
  ck_assert_int_eq(gev_sleep(0), 0);
  order[0] = '\0';
  pid_t pid = gev_fork(GEV_FORK_KEEP);
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    CHILD_CHECK(!strcmp(order, "proc-prepare net-prepare net-keep proc-keep "));
    order[0] = '\0';
    CHILD_CHECK(gev_fork_discard() == 0);
    CHILD_CHECK(!strcmp(order, "proc-discard net-discard "));
    _exit(0);
  }
  ck_assert_str_eq(order, "proc-prepare net-prepare net-parent proc-parent ");
  ck_assert_int_eq(pf_wait_pid(pid, 10), 0);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("fork");
  TCase *tc = tcase_create("fork");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_keep_child_continues_the_hub);
  tcase_add_test(tc, test_discard_child_starts_fresh);
  tcase_add_test(tc, test_fork_without_a_hub);
  tcase_add_test(tc, test_bad_input);
  tcase_add_test(tc, test_keep_from_a_greenlet);
  tcase_add_test(tc, test_keep_child_gets_its_own_resolver_channel);
  tcase_add_test(tc, test_fork_hooks_run_in_layer_order);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(suite)
