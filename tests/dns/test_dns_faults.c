/* gev DNS against a misbehaving server written with gev (responder.c):
 * delayed answers interrupted by Timeout scopes and kill, dropped queries,
 * truncation and TCP fallback, garbage, mismatched IDs, error rcodes. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gev/dns.h"
#include "gev/prefork.h"
#include "responder.h"
#include "testutil.h"

static responder resp;
static int fds_before;

/* Every test: a fresh responder (before any gev use), the resolver
 * pointed at it with the given per-try timeout and tries. */
static void begin(double timeout, int tries) {
  char s[64];
  ck_assert_int_eq(responder_start(&resp), 0);
  fds_before = gev_test_fd_count();
  responder_server(&resp, s, sizeof s);
  ck_assert_int_eq(gev_dns_set_servers(s), 0);
  ck_assert_int_eq(gev_dns_set_timeout(timeout), 0);
  ck_assert_int_eq(gev_dns_set_tries(tries), 0);
}

static void end(void) {
  gev_test_all_clean(fds_before);
  responder_stop(&resp);
}

static void expect_addr(const char *name, const char *want) {
  struct in_addr a;
  char got[INET_ADDRSTRLEN];
  int eai = gev_gethostbyname(name, &a);
  ck_assert_msg(eai == 0, "%s: %s", name, gev_dns_strerror(eai));
  ck_assert_str_eq(inet_ntop(AF_INET, &a, got, sizeof got), want);
}

static void expect_watchers(size_t n) {
  gev_hub_stats st;
  gev_hub_get_stats(&st);
  ck_assert_uint_eq(st.watchers, n);
}

START_TEST(plain_answer) {
  struct hostent *h;
  begin(1, 2);
  expect_addr("www.example", "10.1.2.3");
  ck_assert_int_eq(gev_gethostbyname_ex("www.example", AF_INET6, &h), 0);
  ck_assert_int_eq(h->h_length, 16);
  gev_freehostent(h);
  ck_assert_int_eq(resp.counts->udp, 2);
  end();
}
END_TEST

START_TEST(timeout_scope_interrupts_lookup) {
  struct in_addr a;
  begin(5, 1);
  gev_timeout *t = gev_timeout_start(0.1);
  ck_assert_int_eq(gev_gethostbyname("slow2000.example", &a), EAI_SYSTEM);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert(gev_timeout_expired(t));
  gev_timeout_cancel(t);
  /* Nothing waits any more: the detached query is cancelled at once. */
  expect_watchers(0);
  /* The resolver still works afterwards. */
  expect_addr("after.example", "10.1.2.3");
  end();
}
END_TEST

typedef struct lookup_job {
  const char *name;
  int eai, err;
  struct in_addr addr;
} lookup_job;

static void *lookup_fn(void *arg) {
  lookup_job *j = arg;
  j->eai = gev_gethostbyname(j->name, &j->addr);
  j->err = errno;
  return NULL;
}

START_TEST(kill_interrupts_lookup) {
  lookup_job *j = calloc(1, sizeof *j);
  j->name = "slow3000.example";
  begin(5, 1);
  gev_greenlet *g = gev_spawn(lookup_fn, j);
  ck_assert_int_eq(gev_sleep(0.05), 0);
  ck_assert_int_eq(gev_greenlet_kill(g, 1, 1.0), 0);
  ck_assert(gev_greenlet_ready(g));
  ck_assert_int_eq(j->eai, EAI_SYSTEM);
  ck_assert_int_eq(j->err, ECANCELED);
  expect_watchers(0);
  gev_greenlet_unref(g);
  free(j);
  end();
}
END_TEST

/* Killing one of two lookups leaves the other to finish normally, and the
 * killed one's late answer is dropped without harm. */
START_TEST(kill_one_of_two) {
  lookup_job *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
  a->name = "slow300.example";
  b->name = "slow600.example";
  begin(5, 1);
  gev_greenlet *ga = gev_spawn(lookup_fn, a), *gb = gev_spawn(lookup_fn, b);
  ck_assert_int_eq(gev_sleep(0.05), 0);
  ck_assert_int_eq(gev_greenlet_kill(ga, 1, 1.0), 0);
  ck_assert_int_eq(a->err, ECANCELED);
  ck_assert_int_eq(gev_greenlet_join(gb, 5), 0);
  ck_assert_int_eq(b->eai, 0);
  ck_assert_str_eq(inet_ntoa(b->addr), "10.1.2.3");
  expect_watchers(0);
  gev_greenlet_unref(ga);
  gev_greenlet_unref(gb);
  free(a);
  free(b);
  end();
}
END_TEST

/* More lookups than the resolver hands to c-ares at once: the rest wait
 * for a slot, and one killed while waiting never sends its query. */
START_TEST(window_of_queries) {
  enum { N = 300 };
  lookup_job *jobs = calloc(N, sizeof *jobs);
  gev_greenlet **gs = calloc(N, sizeof *gs);
  char(*names)[32] = calloc(N, sizeof *names);
  begin(5, 1);
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof names[i], "slow200-%d.example", i);
    jobs[i].name = names[i];
    gs[i] = gev_spawn(lookup_fn, &jobs[i]);
  }
  ck_assert_int_eq(gev_sleep(0.05), 0);
  gev_hub_verify(); /* with lookups parked on the slot queue */
  ck_assert_int_eq(gev_greenlet_kill(gs[N - 1], 1, 1.0), 0);
  ck_assert_int_eq(jobs[N - 1].err, ECANCELED);
  ck_assert_int_eq(gev_joinall(gs, N, 10, 0, 0), N);
  for (int i = 0; i < N - 1; i++) {
    ck_assert_msg(jobs[i].eai == 0, "%s: %s", names[i],
                  gev_dns_strerror(jobs[i].eai));
    gev_greenlet_unref(gs[i]);
  }
  gev_greenlet_unref(gs[N - 1]);
  ck_assert_int_eq(resp.counts->udp, N - 1);
  free(names);
  free(gs);
  free(jobs);
  end();
}
END_TEST

START_TEST(dropped_queries_honour_tries) {
  struct in_addr a;
  begin(0.1, 3);
  ck_assert_int_eq(gev_gethostbyname("drop.example", &a), EAI_SYSTEM);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(resp.counts->drops, 3);
  end();
}
END_TEST

START_TEST(truncated_answer_falls_back_to_tcp) {
  begin(1, 2);
  expect_addr("trunc.example", "10.9.9.9");
  ck_assert_int_ge(resp.counts->tcp, 1);
  end();
}
END_TEST

START_TEST(garbage_and_wrong_ids_are_ignored) {
  struct in_addr a;
  begin(0.2, 2);
  expect_addr("garbage.example", "10.1.2.3");
  ck_assert_int_eq(gev_gethostbyname("onlygarbage.example", &a), EAI_SYSTEM);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(gev_gethostbyname("badanswer.example", &a), EAI_SYSTEM);
  ck_assert_int_eq(errno, EBADMSG);
  end();
}
END_TEST

START_TEST(error_rcodes) {
  struct in_addr a;
  struct addrinfo *ai;
  begin(1, 1);
  ck_assert_int_eq(gev_gethostbyname("servfail.example", &a), EAI_AGAIN);
  ck_assert_int_eq(gev_gethostbyname("refused.example", &a), EAI_FAIL);
  ck_assert_int_eq(gev_gethostbyname("nx.example", &a), EAI_NONAME);
  ck_assert_int_eq(gev_getaddrinfo("servfail.example", "80", NULL, &ai),
                   EAI_AGAIN);
  end();
}
END_TEST

/* ---- Bad callers ------------------------------------------------------- */

static int from_hub_eai, from_hub_errno;

static void lookup_from_hub(void *arg) {
  struct in_addr a;
  from_hub_eai = gev_gethostbyname("www.example", &a);
  from_hub_errno = errno;
}

START_TEST(bad_callers) {
  struct in_addr a;
  struct hostent *h;
  begin(1, 1);
  ck_assert_int_eq(gev_gethostbyname(NULL, &a), EAI_SYSTEM);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_gethostbyname("x.example", NULL), EAI_SYSTEM);
  ck_assert_int_eq(gev_gethostbyname_ex("x.example", AF_UNIX, &h), EAI_FAMILY);
  ck_assert_int_eq(gev_gethostbyname_ex(NULL, AF_INET, &h), EAI_SYSTEM);
  ck_assert_int_eq(gev_run_callback(lookup_from_hub, NULL), 0);
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert_int_eq(from_hub_eai, EAI_SYSTEM);
  ck_assert_int_eq(from_hub_errno, EPERM);
  ck_assert_int_eq(resp.counts->udp, 0);
  end();
}
END_TEST

START_TEST(configuration) {
  char buf[128];
  lookup_job *j = calloc(1, sizeof *j);
  begin(1, 1);
  ck_assert_int_eq(gev_dns_set_servers("not-an-ip"), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_dns_set_servers("127.0.0.1:0"), -1);
  ck_assert_int_eq(gev_dns_set_servers(","), -1);
  ck_assert_int_eq(gev_dns_set_timeout(-1), -1);
  ck_assert_int_eq(gev_dns_set_tries(0), -1);
  ck_assert_int_eq(gev_dns_get_servers(NULL, 10), -1);
  ck_assert_int_eq(gev_dns_set_servers("127.0.0.1:5300,[::1]:5301,::2"), 0);
  ck_assert_int_eq(gev_dns_get_servers(buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "127.0.0.1:5300,[::1]:5301,[::2]:53");
  ck_assert_int_eq(gev_dns_get_servers(buf, 8), -1);
  ck_assert_int_eq(errno, ERANGE);
  ck_assert_int_eq(gev_dns_set_rotate(1), 0);
  /* Settings cannot change under a lookup in flight. */
  responder_server(&resp, buf, sizeof buf);
  ck_assert_int_eq(gev_dns_set_servers(buf), 0);
  j->name = "slow200.example";
  gev_greenlet *g = gev_spawn(lookup_fn, j);
  ck_assert_int_eq(gev_sleep(0.05), 0);
  ck_assert_int_eq(gev_dns_set_tries(2), -1);
  ck_assert_int_eq(errno, EBUSY);
  ck_assert_int_eq(gev_greenlet_join(g, 5), 0);
  ck_assert_int_eq(j->eai, 0);
  ck_assert_int_eq(gev_dns_set_tries(2), 0);
  gev_greenlet_unref(g);
  free(j);
  end();
}
END_TEST

START_TEST(environment_defaults) {
  char want[64], buf[128];
  ck_assert_int_eq(responder_start(&resp), 0);
  fds_before = gev_test_fd_count();
  responder_server(&resp, want, sizeof want);
  setenv("GEV_DNS_SERVERS", want, 1);
  setenv("GEV_DNS_TIMEOUT", "0.1", 1);
  setenv("GEV_DNS_TRIES", "2", 1);
  ck_assert_int_eq(gev_dns_get_servers(buf, sizeof buf), 0);
  ck_assert_str_eq(buf, want);
  struct in_addr a;
  ck_assert_int_eq(gev_gethostbyname("drop.example", &a), EAI_SYSTEM);
  ck_assert_int_eq(resp.counts->drops, 2);
  /* Back to the default after an override: the environment again. */
  ck_assert_int_eq(gev_dns_set_servers("127.0.0.9"), 0);
  ck_assert_int_eq(gev_dns_set_servers(NULL), 0);
  ck_assert_int_eq(gev_dns_get_servers(buf, sizeof buf), 0);
  ck_assert_str_eq(buf, want);
  /* Settings belong to the thread: a new hub keeps them. */
  gev_test_all_clean(fds_before);
  ck_assert_int_eq(gev_dns_get_servers(buf, sizeof buf), 0);
  ck_assert_str_eq(buf, want);
  unsetenv("GEV_DNS_SERVERS");
  unsetenv("GEV_DNS_TIMEOUT");
  unsetenv("GEV_DNS_TRIES");
  end();
}
END_TEST

START_TEST(invalid_environment_is_ignored) {
  char buf[256];
  ck_assert_int_eq(responder_start(&resp), 0);
  fds_before = gev_test_fd_count();
  setenv("GEV_DNS_SERVERS", "bogus:53", 1);
  setenv("GEV_DNS_TIMEOUT", "-3", 1);
  setenv("GEV_DNS_TRIES", "many", 1);
  ck_assert_int_eq(gev_dns_get_servers(buf, sizeof buf), 0);
  ck_assert_ptr_null(strstr(buf, "bogus"));
  ck_assert_int_eq(gev_dns_set_tries(2), 0);
  unsetenv("GEV_DNS_SERVERS");
  unsetenv("GEV_DNS_TIMEOUT");
  unsetenv("GEV_DNS_TRIES");
  end();
}
END_TEST

/* The hub goes away while a lookup is parked: the lookup is cancelled and
 * the resolver goes with the hub, leaving no fd behind. */
START_TEST(hub_destroyed_during_lookup) {
  lookup_job *j = calloc(1, sizeof *j);
  j->name = "slow5000.example";
  begin(5, 1);
  gev_greenlet *g = gev_spawn(lookup_fn, j);
  for (int i = 0; i < 500 && resp.counts->udp == 0; i++)
    ck_assert_int_eq(gev_sleep(0.01), 0); /* until the query is out */
  ck_assert_int_eq(resp.counts->udp, 1);
  gev_greenlet_unref(g);
  ck_assert_int_eq(gev_hub_destroy(), 0);
  ck_assert_int_eq(j->err, ECANCELED);
  ck_assert_int_eq(gev_test_fd_count(), fds_before);
  free(j);
  end();
}
END_TEST

/* ---- fork -------------------------------------------------------------- */

/* Exit codes of the child, so the parent can tell what went wrong. */
enum { CHILD_OK = 0, CHILD_OLD_LOOKUP = 3, CHILD_NEW_LOOKUP = 4 };

/* A lookup is in flight when the process forks. The parent's lookup still
 * gets its answer (the child never reads the shared socket); in the child,
 * a kept greenlet's lookup fails with ECANCELED and new lookups work. */
static char child_verdict(gev_fork_mode mode, gev_greenlet *g, lookup_job *j) {
  struct in_addr a;
  if (mode == GEV_FORK_KEEP &&
      (gev_greenlet_join(g, 5) < 0 || j->err != ECANCELED))
    return CHILD_OLD_LOOKUP;
  if (gev_gethostbyname("child.example", &a) != 0 ||
      a.s_addr != inet_addr("10.1.2.3"))
    return CHILD_NEW_LOOKUP;
  return CHILD_OK;
}

static void fork_with_lookup_in_flight(gev_fork_mode mode) {
  lookup_job *j = calloc(1, sizeof *j);
  int verdict[2];
  char v = 'x';
  j->name = "slow300.example";
  begin(5, 1);
  gev_greenlet *g = gev_spawn(lookup_fn, j);
  ck_assert_int_eq(gev_sleep(0.05), 0);
  /* The hub's default loop reaps children itself: the child reports
   * through a pipe instead of its exit status. */
  ck_assert_int_eq(pipe2(verdict, O_CLOEXEC | O_NONBLOCK), 0);
  pid_t pid = gev_fork(mode);
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    v = child_verdict(mode, g, j);
    _exit(write(verdict[1], &v, 1) == 1 ? 0 : 1);
  }
  close(verdict[1]);
  ck_assert_int_eq(gev_greenlet_join(g, 5), 0);
  ck_assert_int_eq(j->eai, 0);
  ck_assert_str_eq(inet_ntoa(j->addr), "10.1.2.3");
  ck_assert_int_eq(gev_wait_read(verdict[0], 5), 0);
  ck_assert_int_eq(read(verdict[0], &v, 1), 1);
  ck_assert_int_eq(v, CHILD_OK);
  close(verdict[0]);
  gev_greenlet_unref(g);
  free(j);
  end();
}

START_TEST(fork_keeping_the_hub) { fork_with_lookup_in_flight(GEV_FORK_KEEP); }
END_TEST

START_TEST(fork_discarding_the_hub) {
  fork_with_lookup_in_flight(GEV_FORK_DISCARD);
}
END_TEST

static Suite *dns_faults_suite(void) {
  Suite *s = suite_create("dns_faults");
  TCase *tc = tcase_create("faults");
  tcase_set_timeout(tc, 20);
  tcase_add_test(tc, plain_answer);
  tcase_add_test(tc, timeout_scope_interrupts_lookup);
  tcase_add_test(tc, kill_interrupts_lookup);
  tcase_add_test(tc, kill_one_of_two);
  tcase_add_test(tc, window_of_queries);
  tcase_add_test(tc, dropped_queries_honour_tries);
  tcase_add_test(tc, truncated_answer_falls_back_to_tcp);
  tcase_add_test(tc, garbage_and_wrong_ids_are_ignored);
  tcase_add_test(tc, error_rcodes);
  tcase_add_test(tc, bad_callers);
  tcase_add_test(tc, configuration);
  tcase_add_test(tc, environment_defaults);
  tcase_add_test(tc, invalid_environment_is_ignored);
  tcase_add_test(tc, hub_destroyed_during_lookup);
  tcase_add_test(tc, fork_keeping_the_hub);
  tcase_add_test(tc, fork_discarding_the_hub);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(dns_faults_suite)
