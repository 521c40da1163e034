/* gev DNS against a real dnsmasq on loopback: records of every kind,
 * CNAME chains, NXDOMAIN, reverse lookups, getaddrinfo/getnameinfo, and
 * thousands of lookups in flight at once. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsmasq_run.h"
#include "gev/dns.h"
#include "testutil.h"

#define MANY 2000

static dnsmasq_run dns;

static void many_addr(int i, char *buf, size_t len) {
  snprintf(buf, len, "10.4.%d.%d", i / 256, i % 256);
}

static void start_dnsmasq(void) {
  static const char fixed[] = "127.0.0.5 alpha.test\n"
                              "::5 alpha.test\n"
                              "10.0.0.1 multi.test\n"
                              "10.0.0.2 multi.test\n"
                              "10.0.0.3 beta.test\n"
                              "::7 six.test\n";
  size_t cap = sizeof fixed + MANY * 40;
  char *hosts = malloc(cap);
  size_t at = (size_t)snprintf(hosts, cap, "%s", fixed);
  for (int i = 0; i < MANY; i++) {
    char a[32];
    many_addr(i, a, sizeof a);
    at += (size_t)snprintf(hosts + at, cap - at, "%s n%d.test\n", a, i);
  }
  static const char *const extra[] = {"--cname=c1.test,c2.test",
                                      "--cname=c2.test,alpha.test",
                                      "--listen-address=::1", NULL};
  int rc = dnsmasq_start(&dns, hosts, extra);
  free(hosts);
  if (rc < 0)
    abort();
}

static void stop_dnsmasq(void) { dnsmasq_stop(&dns); }

static void use_dnsmasq(void) {
  char s[64];
  dnsmasq_server(&dns, s, sizeof s);
  ck_assert_int_eq(gev_dns_set_servers(s), 0);
  ck_assert_int_eq(gev_dns_set_timeout(1.0), 0);
  ck_assert_int_eq(gev_dns_set_tries(3), 0);
}

static const char *ntop(int family, const void *a, char *buf) {
  return inet_ntop(family, a, buf, INET6_ADDRSTRLEN);
}

START_TEST(a_record) {
  int fds = gev_test_fd_count();
  struct in_addr a;
  char buf[INET6_ADDRSTRLEN];
  use_dnsmasq();
  ck_assert_int_eq(gev_gethostbyname("alpha.test", &a), 0);
  ck_assert_str_eq(ntop(AF_INET, &a, buf), "127.0.0.5");
  ck_assert_int_eq(gev_gethostbyname("beta.test", &a), 0);
  ck_assert_str_eq(ntop(AF_INET, &a, buf), "10.0.0.3");
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(aaaa_and_all_addresses) {
  int fds = gev_test_fd_count();
  struct hostent *h;
  char buf[INET6_ADDRSTRLEN];
  use_dnsmasq();
  ck_assert_int_eq(gev_gethostbyname_ex("alpha.test", AF_INET6, &h), 0);
  ck_assert_int_eq(h->h_addrtype, AF_INET6);
  ck_assert_int_eq(h->h_length, 16);
  ck_assert_str_eq(ntop(AF_INET6, h->h_addr_list[0], buf), "::5");
  ck_assert_ptr_null(h->h_addr_list[1]);
  gev_freehostent(h);
  ck_assert_int_eq(gev_gethostbyname_ex("multi.test", AF_INET, &h), 0);
  ck_assert_str_eq(h->h_name, "multi.test");
  int seen1 = 0, seen2 = 0, n = 0;
  for (char **p = h->h_addr_list; *p; p++, n++) {
    seen1 |= strcmp(ntop(AF_INET, *p, buf), "10.0.0.1") == 0;
    seen2 |= strcmp(ntop(AF_INET, *p, buf), "10.0.0.2") == 0;
  }
  ck_assert_int_eq(n, 2);
  ck_assert(seen1 && seen2);
  gev_freehostent(h);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(cname_chain) {
  int fds = gev_test_fd_count();
  struct hostent *h;
  struct addrinfo hints = {.ai_flags = AI_CANONNAME,
                           .ai_socktype = SOCK_STREAM},
                  *ai;
  char buf[INET6_ADDRSTRLEN];
  use_dnsmasq();
  ck_assert_int_eq(gev_gethostbyname_ex("c1.test", AF_INET, &h), 0);
  ck_assert_str_eq(h->h_name, "alpha.test");
  int c1 = 0, c2 = 0;
  for (char **p = h->h_aliases; *p; p++) {
    c1 |= strcmp(*p, "c1.test") == 0;
    c2 |= strcmp(*p, "c2.test") == 0;
  }
  ck_assert(c1 && c2);
  ck_assert_str_eq(ntop(AF_INET, h->h_addr_list[0], buf), "127.0.0.5");
  gev_freehostent(h);
  ck_assert_int_eq(gev_getaddrinfo("c1.test", "80", &hints, &ai), 0);
  ck_assert_ptr_nonnull(ai->ai_canonname);
  ck_assert_str_eq(ai->ai_canonname, "alpha.test");
  gev_freeaddrinfo(ai);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(nxdomain_and_nodata) {
  int fds = gev_test_fd_count();
  struct in_addr a;
  struct hostent *h = (void *)1;
  struct addrinfo *ai = (void *)1;
  use_dnsmasq();
  ck_assert_int_eq(gev_gethostbyname("nosuch.test", &a), EAI_NONAME);
  ck_assert_int_eq(gev_gethostbyname_ex("nosuch.test", AF_INET6, &h),
                   EAI_NONAME);
  ck_assert_ptr_null(h);
  ck_assert_int_eq(gev_getaddrinfo("nosuch.test", NULL, NULL, &ai), EAI_NONAME);
  ck_assert_ptr_null(ai);
  /* six.test has only an AAAA record, beta.test only an A record. */
  ck_assert_int_eq(gev_gethostbyname("six.test", &a), EAI_NODATA);
  ck_assert_int_eq(gev_gethostbyname_ex("beta.test", AF_INET6, &h), EAI_NODATA);
  ck_assert_str_ne(gev_dns_strerror(EAI_NONAME), gev_dns_strerror(EAI_NODATA));
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(reverse_lookups) {
  int fds = gev_test_fd_count();
  struct hostent *h;
  struct in_addr a4;
  struct in6_addr a6;
  use_dnsmasq();
  inet_pton(AF_INET, "10.0.0.3", &a4);
  ck_assert_int_eq(gev_gethostbyaddr(&a4, sizeof a4, AF_INET, &h), 0);
  ck_assert_str_eq(h->h_name, "beta.test");
  ck_assert_int_eq(memcmp(h->h_addr_list[0], &a4, 4), 0);
  gev_freehostent(h);
  inet_pton(AF_INET6, "::7", &a6);
  ck_assert_int_eq(gev_gethostbyaddr(&a6, sizeof a6, AF_INET6, &h), 0);
  ck_assert_str_eq(h->h_name, "six.test");
  gev_freehostent(h);
  inet_pton(AF_INET, "10.99.0.1", &a4);
  ck_assert_int_eq(gev_gethostbyaddr(&a4, sizeof a4, AF_INET, &h), EAI_NONAME);
  ck_assert_int_eq(gev_gethostbyaddr(&a4, 3, AF_INET, &h), EAI_SYSTEM);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_gethostbyaddr(&a4, 4, AF_UNIX, &h), EAI_FAMILY);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(getnameinfo_names_and_numbers) {
  int fds = gev_test_fd_count();
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(80)};
  struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6, .sin6_port = htons(5555)};
  char host[64], serv[32];
  use_dnsmasq();
  inet_pton(AF_INET, "127.0.0.5", &sa.sin_addr);
  ck_assert_int_eq(gev_getnameinfo((void *)&sa, sizeof sa, host, sizeof host,
                                   serv, sizeof serv, 0),
                   0);
  ck_assert_str_eq(host, "alpha.test");
  ck_assert_str_eq(serv, "http");
  ck_assert_int_eq(gev_getnameinfo((void *)&sa, sizeof sa, host, sizeof host,
                                   serv, sizeof serv,
                                   NI_NOFQDN | NI_NUMERICSERV),
                   0);
  ck_assert_str_eq(host, "alpha");
  ck_assert_str_eq(serv, "80");
  ck_assert_int_eq(gev_getnameinfo((void *)&sa, sizeof sa, host, 5, NULL, 0, 0),
                   EAI_OVERFLOW);
  inet_pton(AF_INET, "10.99.0.1", &sa.sin_addr);
  ck_assert_int_eq(
      gev_getnameinfo((void *)&sa, sizeof sa, host, sizeof host, NULL, 0, 0),
      0);
  ck_assert_str_eq(host, "10.99.0.1");
  ck_assert_int_eq(gev_getnameinfo((void *)&sa, sizeof sa, host, sizeof host,
                                   NULL, 0, NI_NAMEREQD),
                   EAI_NONAME);
  inet_pton(AF_INET6, "::5", &sa6.sin6_addr);
  ck_assert_int_eq(gev_getnameinfo((void *)&sa6, sizeof sa6, host, sizeof host,
                                   serv, sizeof serv, 0),
                   0);
  ck_assert_str_eq(host, "alpha.test");
  ck_assert_str_eq(serv, "5555");
  ck_assert_int_eq(gev_getnameinfo((void *)&sa6, sizeof sa6, host, sizeof host,
                                   NULL, 0, NI_NUMERICHOST),
                   0);
  ck_assert_str_eq(host, "::5");
  ck_assert_int_eq(
      gev_getnameinfo((void *)&sa, 3, host, sizeof host, NULL, 0, 0),
      EAI_FAMILY);
  ck_assert_int_eq(gev_getnameinfo((void *)&sa, sizeof sa, NULL, 0, NULL, 0, 0),
                   EAI_NONAME);
  ck_assert_int_eq(gev_getnameinfo((void *)&sa, sizeof sa, host, sizeof host,
                                   NULL, 0, 1 << 20),
                   EAI_BADFLAGS);
  gev_test_all_clean(fds);
}
END_TEST

/* Counts the entries of an addrinfo list by family and socket type. */
static int count_ai(const struct addrinfo *ai, int family, int socktype) {
  int n = 0;
  for (; ai; ai = ai->ai_next)
    n += (!family || ai->ai_family == family) &&
         (!socktype || ai->ai_socktype == socktype);
  return n;
}

static int port_of(const struct addrinfo *ai) {
  if (ai->ai_family == AF_INET)
    return ntohs(((struct sockaddr_in *)ai->ai_addr)->sin_port);
  return ntohs(((struct sockaddr_in6 *)ai->ai_addr)->sin6_port);
}

START_TEST(getaddrinfo_families) {
  int fds = gev_test_fd_count();
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
  char buf[INET6_ADDRSTRLEN];
  use_dnsmasq();
  ck_assert_int_eq(gev_getaddrinfo("alpha.test", "http", &hints, &ai), 0);
  ck_assert_int_eq(count_ai(ai, AF_INET, SOCK_STREAM), 1);
  ck_assert_int_eq(count_ai(ai, AF_INET6, SOCK_STREAM), 1);
  ck_assert_int_eq(count_ai(ai, 0, 0), 2);
  for (struct addrinfo *p = ai; p; p = p->ai_next) {
    ck_assert_int_eq(port_of(p), 80);
    ck_assert_int_eq(p->ai_protocol, IPPROTO_TCP);
  }
  gev_freeaddrinfo(ai);
  hints.ai_family = AF_INET;
  hints.ai_socktype = 0;
  ck_assert_int_eq(gev_getaddrinfo("multi.test", "53", &hints, &ai), 0);
  ck_assert_int_eq(count_ai(ai, AF_INET, 0), 6); /* 2 addrs x 3 types */
  ck_assert_int_eq(count_ai(ai, AF_INET, SOCK_DGRAM), 2);
  ck_assert_int_eq(ai->ai_addrlen, sizeof(struct sockaddr_in));
  gev_freeaddrinfo(ai);
  hints.ai_family = AF_INET6;
  ck_assert_int_eq(gev_getaddrinfo("beta.test", NULL, &hints, &ai), EAI_NODATA);
  hints.ai_flags = AI_V4MAPPED;
  hints.ai_socktype = SOCK_DGRAM;
  ck_assert_int_eq(gev_getaddrinfo("beta.test", NULL, &hints, &ai), 0);
  ck_assert_int_eq(count_ai(ai, 0, 0), 1);
  ck_assert_str_eq(
      ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, buf),
      "::ffff:10.0.0.3");
  gev_freeaddrinfo(ai);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(getaddrinfo_arguments) {
  int fds = gev_test_fd_count();
  struct addrinfo hints = {0}, *ai;
  char buf[INET6_ADDRSTRLEN];
  use_dnsmasq();
  ck_assert_int_eq(gev_getaddrinfo(NULL, NULL, NULL, &ai), EAI_NONAME);
  ck_assert_int_eq(gev_getaddrinfo("alpha.test", NULL, NULL, NULL), EAI_SYSTEM);
  ck_assert_int_eq(errno, EINVAL);
  hints.ai_family = 12345;
  ck_assert_int_eq(gev_getaddrinfo("alpha.test", NULL, &hints, &ai),
                   EAI_FAMILY);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = 999;
  ck_assert_int_eq(gev_getaddrinfo("alpha.test", NULL, &hints, &ai),
                   EAI_SOCKTYPE);
  hints.ai_socktype = 0;
  hints.ai_flags = 1 << 20;
  ck_assert_int_eq(gev_getaddrinfo("alpha.test", NULL, &hints, &ai),
                   EAI_BADFLAGS);
  hints.ai_flags = AI_NUMERICHOST;
  ck_assert_int_eq(gev_getaddrinfo("alpha.test", NULL, &hints, &ai),
                   EAI_NONAME);
  hints.ai_flags = AI_NUMERICSERV;
  ck_assert_int_eq(gev_getaddrinfo("127.0.0.1", "http", &hints, &ai),
                   EAI_NONAME);
  hints.ai_flags = 0;
  ck_assert_int_eq(gev_getaddrinfo("127.0.0.1", "no-such-service", &hints, &ai),
                   EAI_SERVICE);
  ck_assert_int_eq(gev_getaddrinfo("127.0.0.1", "70000", &hints, &ai),
                   EAI_SERVICE);
  hints.ai_family = AF_INET6;
  ck_assert_int_eq(gev_getaddrinfo("127.0.0.1", NULL, &hints, &ai),
                   EAI_ADDRFAMILY);
  /* NULL node: wildcard with AI_PASSIVE, loopback without. */
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  ck_assert_int_eq(gev_getaddrinfo(NULL, "8080", &hints, &ai), 0);
  ck_assert_str_eq(
      ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, buf),
      "0.0.0.0");
  ck_assert_int_eq(port_of(ai), 8080);
  gev_freeaddrinfo(ai);
  hints.ai_flags = 0;
  hints.ai_family = AF_UNSPEC;
  ck_assert_int_eq(gev_getaddrinfo(NULL, "8080", &hints, &ai), 0);
  ck_assert_int_eq(count_ai(ai, AF_INET6, 0), 1);
  ck_assert_int_eq(count_ai(ai, AF_INET, 0), 1);
  gev_freeaddrinfo(ai);
  gev_test_all_clean(fds);
}
END_TEST

/* The same dnsmasq asked over IPv6 loopback. */
START_TEST(ipv6_server) {
  int fds = gev_test_fd_count();
  char server[64], buf[128];
  struct in_addr a;
  snprintf(server, sizeof server, "[::1]:%d", dns.port);
  ck_assert_int_eq(gev_dns_set_servers(server), 0);
  ck_assert_int_eq(gev_dns_get_servers(buf, sizeof buf), 0);
  ck_assert_str_eq(buf, server);
  ck_assert_int_eq(gev_gethostbyname("beta.test", &a), 0);
  ck_assert_str_eq(inet_ntoa(a), "10.0.0.3");
  gev_test_all_clean(fds);
}
END_TEST

/* ---- Many lookups at once ---------------------------------------------- */

typedef struct many_job {
  int index;
  int eai;
  struct in_addr addr;
} many_job;

static void *many_lookup(void *arg) {
  many_job *j = arg;
  char name[32];
  snprintf(name, sizeof name, "n%d.test", j->index);
  j->eai = gev_gethostbyname(name, &j->addr);
  return NULL;
}

START_TEST(thousands_in_flight) {
  int fds = gev_test_fd_count();
  many_job *jobs = calloc(MANY, sizeof *jobs);
  gev_greenlet **gs = calloc(MANY, sizeof *gs);
  use_dnsmasq();
  for (int i = 0; i < MANY; i++) {
    jobs[i].index = i;
    gs[i] = gev_spawn(many_lookup, &jobs[i]);
    ck_assert_ptr_nonnull(gs[i]);
  }
  ck_assert_int_eq(gev_joinall(gs, MANY, 30, 0, 0), MANY);
  for (int i = 0; i < MANY; i++) {
    char want[32], got[INET6_ADDRSTRLEN];
    many_addr(i, want, sizeof want);
    ck_assert_msg(jobs[i].eai == 0, "n%d.test: %s", i,
                  gev_dns_strerror(jobs[i].eai));
    ck_assert_str_eq(ntop(AF_INET, &jobs[i].addr, got), want);
    gev_greenlet_unref(gs[i]);
  }
  free(gs);
  free(jobs);
  gev_test_all_clean(fds);
}
END_TEST

static Suite *dns_dnsmasq_suite(void) {
  Suite *s = suite_create("dns_dnsmasq");
  TCase *tc = tcase_create("dnsmasq");
  tcase_add_unchecked_fixture(tc, start_dnsmasq, stop_dnsmasq);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, a_record);
  tcase_add_test(tc, aaaa_and_all_addresses);
  tcase_add_test(tc, cname_chain);
  tcase_add_test(tc, nxdomain_and_nodata);
  tcase_add_test(tc, reverse_lookups);
  tcase_add_test(tc, getnameinfo_names_and_numbers);
  tcase_add_test(tc, getaddrinfo_families);
  tcase_add_test(tc, getaddrinfo_arguments);
  tcase_add_test(tc, ipv6_server);
  tcase_add_test(tc, thousands_in_flight);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(dns_dnsmasq_suite)
