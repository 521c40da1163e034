/* Answers that need no query (/etc/hosts, IP literals), server rotation,
 * and one resolver per thread's hub. A responder (responder.c) counts the
 * queries that do reach a server. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gev/dns.h"
#include "gev/net.h"
#include "net/dns_internal.h"
#include "responder.h"
#include "testutil.h"

static responder resp, resp2;
static int fds_before;

static void begin(void) {
  char s[64];
  ck_assert_int_eq(responder_start(&resp), 0);
  fds_before = gev_test_fd_count();
  responder_server(&resp, s, sizeof s);
  ck_assert_int_eq(gev_dns_set_servers(s), 0);
  ck_assert_int_eq(gev_dns_set_timeout(1), 0);
  ck_assert_int_eq(gev_dns_set_tries(1), 0);
}

static void end(void) {
  gev_test_all_clean(fds_before);
  responder_stop(&resp);
}

/* This machine's /etc/hosts maps localhost to 127.0.0.1 (checked, so the
 * test says so instead of failing obscurely elsewhere). */
static void require_localhost_in_hosts(void) {
  FILE *f = fopen("/etc/hosts", "r");
  char line[256];
  int found = 0;
  ck_assert_ptr_nonnull(f);
  while (!found && fgets(line, sizeof line, f))
    found = strncmp(line, "127.0.0.1", 9) == 0 && strstr(line, "localhost");
  fclose(f);
  ck_assert_msg(found, "/etc/hosts has no 127.0.0.1 localhost line");
}

START_TEST(hosts_file_and_literals_need_no_query) {
  struct in_addr a;
  struct hostent *h;
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
  char host[64];
  require_localhost_in_hosts();
  begin();
  ck_assert_int_eq(gev_gethostbyname("localhost", &a), 0);
  ck_assert_str_eq(inet_ntoa(a), "127.0.0.1");
  ck_assert_int_eq(gev_gethostbyname("192.0.2.7", &a), 0);
  ck_assert_str_eq(inet_ntoa(a), "192.0.2.7");
  ck_assert_int_eq(gev_gethostbyname_ex("192.0.2.8", AF_INET, &h), 0);
  ck_assert_str_eq(inet_ntoa(*(struct in_addr *)h->h_addr_list[0]),
                   "192.0.2.8");
  gev_freehostent(h);
  hints.ai_family = AF_INET;
  ck_assert_int_eq(gev_getaddrinfo("localhost", "80", &hints, &ai), 0);
  ck_assert_int_eq(ai->ai_family, AF_INET);
  gev_freeaddrinfo(ai);
  hints.ai_family = AF_UNSPEC;
  ck_assert_int_eq(gev_getaddrinfo("::1", "80", &hints, &ai), 0);
  ck_assert_int_eq(ai->ai_family, AF_INET6);
  ck_assert_ptr_null(ai->ai_next);
  gev_freeaddrinfo(ai);
  hints.ai_flags = AI_CANONNAME;
  ck_assert_int_eq(gev_getaddrinfo("10.9.8.7", NULL, &hints, &ai), 0);
  ck_assert_str_eq(ai->ai_canonname, "10.9.8.7");
  gev_freeaddrinfo(ai);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_int_eq(gev_getnameinfo((void *)&sa, sizeof sa, host, sizeof host,
                                   NULL, 0, NI_NAMEREQD),
                   0);
  ck_assert_str_eq(host, "localhost");
  ck_assert_int_eq(resp.counts->udp, 0); /* nothing reached the server */
  end();
}
END_TEST

START_TEST(rotate_spreads_queries) {
  char servers[128], a[64], b[64];
  struct in_addr addr;
  begin();
  ck_assert_int_eq(responder_start(&resp2), 0);
  responder_server(&resp, a, sizeof a);
  responder_server(&resp2, b, sizeof b);
  snprintf(servers, sizeof servers, "%s,%s", a, b);
  ck_assert_int_eq(gev_dns_set_servers(servers), 0);
  for (int i = 0; i < 8; i++)
    ck_assert_int_eq(gev_gethostbyname("plain.example", &addr), 0);
  ck_assert_int_eq(resp.counts->udp, 8); /* without rotate: the first */
  ck_assert_int_eq(resp2.counts->udp, 0);
  ck_assert_int_eq(gev_dns_set_rotate(1), 0);
  for (int i = 0; i < 8; i++)
    ck_assert_int_eq(gev_gethostbyname("plain.example", &addr), 0);
  ck_assert_int_gt(resp2.counts->udp, 0);
  ck_assert_int_eq(resp.counts->udp + resp2.counts->udp, 16);
  responder_stop(&resp2);
  end();
}
END_TEST

/* Several servers that all answer SERVFAIL: c-ares tries each and then
 * reports ECONNREFUSED (see gev/dns.h). */
START_TEST(every_server_fails) {
  char servers[128], a[64], b[64];
  struct in_addr addr;
  begin();
  ck_assert_int_eq(responder_start(&resp2), 0);
  responder_server(&resp, a, sizeof a);
  responder_server(&resp2, b, sizeof b);
  snprintf(servers, sizeof servers, "%s,%s", a, b);
  ck_assert_int_eq(gev_dns_set_servers(servers), 0);
  ck_assert_int_eq(gev_gethostbyname("servfail.example", &addr), EAI_SYSTEM);
  ck_assert_int_eq(errno, ECONNREFUSED);
  ck_assert_int_eq(resp.counts->udp, 1);
  ck_assert_int_eq(resp2.counts->udp, 1);
  responder_stop(&resp2);
  end();
}
END_TEST

typedef struct thread_result {
  char server[64];
  int eai;
  char addr[INET_ADDRSTRLEN];
  char servers_seen[128];
} thread_result;

/* A second thread has its own hub and resolver, with its own settings. */
static void *other_thread(void *arg) {
  thread_result *r = arg;
  struct in_addr a;
  gev_dns_set_servers(r->server);
  r->eai = gev_gethostbyname("thread.example", &a);
  inet_ntop(AF_INET, &a, r->addr, sizeof r->addr);
  gev_dns_get_servers(r->servers_seen, sizeof r->servers_seen);
  gev_hub_destroy();
  return NULL;
}

START_TEST(one_resolver_per_thread) {
  thread_result *r = calloc(1, sizeof *r);
  char mine[128];
  pthread_t t;
  begin();
  ck_assert_int_eq(gev_dns_set_servers("127.0.0.1:9"), 0);
  responder_server(&resp, r->server, sizeof r->server);
  ck_assert_int_eq(pthread_create(&t, NULL, other_thread, r), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  ck_assert_int_eq(r->eai, 0);
  ck_assert_str_eq(r->addr, "10.1.2.3");
  ck_assert_str_eq(r->servers_seen, r->server);
  ck_assert_int_eq(gev_dns_get_servers(mine, sizeof mine), 0);
  ck_assert_str_eq(mine, "127.0.0.1:9");
  free(r);
  end();
}
END_TEST

/* The internal entry point the socket layer resolves through. */
START_TEST(resolve_for_sockets) {
  struct addrinfo *ai;
  int eai;
  begin();
  ck_assert_int_eq(
      gev__dns_resolve("localhost", 8080, AF_INET, SOCK_STREAM, &ai, &eai), 0);
  ck_assert_int_eq(eai, 0);
  ck_assert_int_eq(ai->ai_socktype, SOCK_STREAM);
  ck_assert_int_eq(ntohs(((struct sockaddr_in *)ai->ai_addr)->sin_port), 8080);
  ck_assert_ptr_null(ai->ai_next);
  gev_freeaddrinfo(ai);
  ck_assert_int_eq(
      gev__dns_resolve("nx.example", 80, AF_UNSPEC, SOCK_STREAM, &ai, &eai),
      -1);
  ck_assert_int_eq(errno, ENOENT);
  ck_assert_int_eq(eai, EAI_NONAME);
  ck_assert_ptr_null(ai);
  ck_assert_int_eq(
      gev__dns_resolve("servfail.example", 80, AF_INET, 0, &ai, NULL), -1);
  ck_assert_int_eq(errno, EAGAIN);
  ck_assert_int_eq(gev__dns_resolve("localhost", 70000, AF_INET, 0, &ai, &eai),
                   -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev__dns_resolve(NULL, 80, AF_INET, 0, &ai, &eai), -1);
  ck_assert_int_eq(errno, EINVAL);
  end();
}
END_TEST

/* The socket layer reports a failed lookup with the DNS layer's errno, one
 * table for both (gev/dns.h, "As errno"). */
START_TEST(create_connection_reports_lookup_errors_as_resolve_does) {
  static const struct {
    const char *name;
    int err;
  } cases[] = {{"nx.example", ENOENT},
               {"servfail.example", EAGAIN},
               {"refused.example", EIO}};
  struct addrinfo *ai;
  begin();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    errno = 0;
    ck_assert_int_eq(
        gev__dns_resolve(cases[i].name, 80, AF_UNSPEC, SOCK_STREAM, &ai, NULL),
        -1);
    ck_assert_msg(errno == cases[i].err, "resolve %s: %s", cases[i].name,
                  strerror(errno));
    errno = 0;
    ck_assert_ptr_null(gev_create_connection(cases[i].name, 80, 5));
    ck_assert_msg(errno == cases[i].err, "create_connection %s: %s",
                  cases[i].name, strerror(errno));
  }
  end();
}
END_TEST

static Suite *dns_local_suite(void) {
  Suite *s = suite_create("dns_local");
  TCase *tc = tcase_create("local");
  tcase_set_timeout(tc, 20);
  tcase_add_test(tc, hosts_file_and_literals_need_no_query);
  tcase_add_test(tc, rotate_spreads_queries);
  tcase_add_test(tc, every_server_fails);
  tcase_add_test(tc, one_resolver_per_thread);
  tcase_add_test(tc, resolve_for_sockets);
  tcase_add_test(tc, create_connection_reports_lookup_errors_as_resolve_does);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(dns_local_suite)
