/* The thread resolver: libc's lookups in the default threadpool, chosen
 * per call, per thread or by GEV_DNS_RESOLVER; answers from /etc/hosts,
 * from a local dnsmasq, and a caller killed while libc still waits. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../dns/dnsmasq_run.h"
#include "gev/dns.h"
#include "threadtest.h"

static const char *ntop4(const struct sockaddr *sa, char *buf) {
  return inet_ntop(AF_INET,
                   &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                   buf, INET_ADDRSTRLEN);
}

/* ---- /etc/hosts ------------------------------------------------------------
 */

START_TEST(hosts_entries_through_libc) {
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM},
                  *res = NULL;
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(80)};
  struct in_addr a;
  struct hostent *he = NULL;
  char buf[INET_ADDRSTRLEN], host[NI_MAXHOST], serv[NI_MAXSERV];
  thread_test_begin();
  ck_assert_int_eq(
      gev_getaddrinfo_ex(GEV_DNS_THREAD, "localhost", "80", &hints, &res), 0);
  ck_assert_ptr_nonnull(res);
  ck_assert_str_eq(ntop4(res->ai_addr, buf), "127.0.0.1");
  ck_assert_int_eq(
      ntohs(((struct sockaddr_in *)(void *)res->ai_addr)->sin_port), 80);
  gev_freeaddrinfo(res);
  /* The thread's setting routes every lookup. */
  ck_assert_int_eq(gev_dns_get_resolver(), GEV_DNS_ARES);
  ck_assert_int_eq(gev_dns_set_resolver(GEV_DNS_THREAD), 0);
  ck_assert_int_eq(gev_dns_get_resolver(), GEV_DNS_THREAD);
  ck_assert_int_eq(gev_gethostbyname("localhost", &a), 0);
  ck_assert_str_eq(inet_ntop(AF_INET, &a, buf, sizeof buf), "127.0.0.1");
  ck_assert_int_eq(gev_gethostbyname_ex("localhost", AF_INET, &he), 0);
  ck_assert_int_eq(he->h_addrtype, AF_INET);
  gev_freehostent(he);
  inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
  ck_assert_int_eq(gev_gethostbyaddr(&sin.sin_addr, 4, AF_INET, &he), 0);
  ck_assert_str_eq(he->h_name, "localhost");
  gev_freehostent(he);
  ck_assert_int_eq(gev_getnameinfo((struct sockaddr *)&sin, sizeof sin, host,
                                   sizeof host, serv, sizeof serv,
                                   NI_NUMERICSERV),
                   0);
  ck_assert_str_eq(host, "localhost");
  ck_assert_str_eq(serv, "80");
  ck_assert_int_eq(
      gev_getnameinfo((struct sockaddr *)&sin, sizeof sin, host, 4, NULL, 0, 0),
      EAI_OVERFLOW);
  ck_assert_int_eq(gev_dns_set_resolver(GEV_DNS_DEFAULT), 0);
  ck_assert_int_eq(gev_dns_get_resolver(), GEV_DNS_ARES);
  ck_assert_int_eq(gev_dns_set_resolver((gev_dns_resolver)7), -1);
  ck_assert_int_eq(errno, EINVAL);
  thread_test_end();
}
END_TEST

static void *resolver_of_a_new_thread(void *arg) {
  (void)arg;
  return P(gev_dns_get_resolver());
}

START_TEST(environment_chooses_the_resolver) {
  void *which;
  thread_test_begin();
  setenv("GEV_DNS_RESOLVER", "thread", 1);
  pthread_t tid = plain_thread_start(resolver_of_a_new_thread, NULL);
  ck_assert_int_eq(pthread_join(tid, &which), 0);
  ck_assert_int_eq(I(which), GEV_DNS_THREAD);
  unsetenv("GEV_DNS_RESOLVER");
  thread_test_end();
}
END_TEST

/* ---- A local dnsmasq
 * --------------------------------------------------------- */

/* The default pool is made one thread that never retires, and that
 * thread's libc resolver is pointed at 127.0.0.1:port: every lookup of the
 * thread resolver then asks that server (glibc keeps a thread's _res as
 * set while resolv.conf does not change). */
static void *point_resolver(void *arg) {
  res_init();
  _res.nscount = 1;
  _res.nsaddr_list[0].sin_family = AF_INET;
  _res.nsaddr_list[0].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  _res.nsaddr_list[0].sin_port = htons((uint16_t)I(arg));
  _res.retrans = 1;
  _res.retry = 1;
  return NULL;
}

static void resolver_thread_at(int port) {
  gev_threadpool *pool = gev_threadpool_default();
  ck_assert_int_eq(gev_threadpool_set_size(pool, 1), 0);
  ck_assert_int_eq(gev_threadpool_set_idle_timeout(pool, -1), 0);
  ck_assert_int_eq(gev_threadpool_apply(pool, point_resolver, P(port), NULL),
                   0);
}

START_TEST(answers_from_a_local_dnsmasq) {
  static const char hosts[] = "127.0.0.5 alpha.test\n"
                              "10.0.0.1 multi.test\n"
                              "10.0.0.2 multi.test\n";
  dnsmasq_run dns;
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM},
                  *res = NULL;
  struct hostent *he = NULL;
  struct in_addr a;
  char buf[INET_ADDRSTRLEN];
  int n = 0;
  thread_test_begin();
  ck_assert_int_eq(dnsmasq_start(&dns, hosts, NULL), 0);
  resolver_thread_at(dns.port);
  ck_assert_int_eq(
      gev_getaddrinfo_ex(GEV_DNS_THREAD, "alpha.test", NULL, &hints, &res), 0);
  ck_assert_str_eq(ntop4(res->ai_addr, buf), "127.0.0.5");
  gev_freeaddrinfo(res);
  ck_assert_int_eq(
      gev_getaddrinfo_ex(GEV_DNS_THREAD, "multi.test", "443", &hints, &res), 0);
  for (struct addrinfo *e = res; e; e = e->ai_next)
    n++;
  ck_assert_int_eq(n, 2);
  gev_freeaddrinfo(res);
  ck_assert_int_eq(
      gev_getaddrinfo_ex(GEV_DNS_THREAD, "nowhere.test", NULL, &hints, &res),
      EAI_NONAME);
  ck_assert_ptr_null(res);
  ck_assert_int_eq(gev_dns_set_resolver(GEV_DNS_THREAD), 0);
  ck_assert_int_eq(gev_gethostbyname("alpha.test", &a), 0);
  ck_assert_str_eq(inet_ntop(AF_INET, &a, buf, sizeof buf), "127.0.0.5");
  ck_assert_int_eq(gev_gethostbyname_ex("multi.test", AF_INET, &he), 0);
  ck_assert_ptr_nonnull(he->h_addr_list[1]);
  gev_freehostent(he);
  inet_pton(AF_INET, "127.0.0.5", &a);
  ck_assert_int_eq(gev_gethostbyaddr(&a, 4, AF_INET, &he), 0);
  ck_assert_str_eq(he->h_name, "alpha.test");
  gev_freehostent(he);
  dnsmasq_stop(&dns);
  thread_test_end();
}
END_TEST

/* ---- A caller killed while libc waits
 * ---------------------------------------- */

static void *lookup_silent(void *arg) {
  struct addrinfo hints = {.ai_family = AF_INET}, *res = NULL;
  (void)arg;
  int eai =
      gev_getaddrinfo_ex(GEV_DNS_THREAD, "silent.test", NULL, &hints, &res);
  gev_freeaddrinfo(res);
  return P(eai == EAI_SYSTEM ? errno : 0);
}

START_TEST(killed_caller_returns_at_once) {
  gev_threadpool_stats st;
  thread_test_begin();
  /* A server that reads and never answers. */
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sin;
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
  resolver_thread_at(ntohs(sin.sin_port));
  gev_greenlet *g = gev_spawn(lookup_silent, NULL);
  ck_assert_int_eq(gev_sleep(0.1), 0); /* libc waits for the server */
  double t0 = now();
  ck_assert_int_eq(gev_greenlet_kill(g, 1, 5), 0);
  ck_assert(now() - t0 < 0.5);
  ck_assert_int_eq(I(gev_greenlet_value(g)), ECANCELED);
  gev_greenlet_unref(g);
  /* The lookup gives up in its thread; its job and results are freed. */
  ck_assert_int_eq(gev_threadpool_join(gev_threadpool_default(), 30), 0);
  gev_threadpool_get_stats(gev_threadpool_default(), &st);
  ck_assert_uint_eq(st.busy, 0);
  close(fd);
  thread_test_end();
}
END_TEST

static Suite *thread_dns_suite(void) {
  Suite *s = suite_create("thread_dns");
  TCase *tc = tcase_create("thread_dns");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, hosts_entries_through_libc);
  tcase_add_test(tc, environment_chooses_the_resolver);
  tcase_add_test(tc, answers_from_a_local_dnsmasq);
  tcase_add_test(tc, killed_caller_returns_at_once);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(thread_dns_suite)
