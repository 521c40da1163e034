/* Name lookups of the cooperative libc: getaddrinfo, freeaddrinfo,
 * gethostbyname and gethostbyname_r go to gev's resolver and park the
 * greenlet (against a DNS server written with gev that answers late, see
 * tests/dns/responder.h); freeaddrinfo frees gev's lists and libc's alike;
 * without a hub libc answers. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gev/dns.h"
#include "patchtest.h"
#include "responder.h"

static responder resp;

/* Starts the responder (before this test process makes a hub) and points
 * gev's resolver at it. */
static void use_responder(void) {
  char server[64];
  ck_assert_int_eq(responder_start(&resp), 0);
  responder_server(&resp, server, sizeof server);
  ck_assert_int_eq(gev_dns_set_servers(server), 0);
  ck_assert_int_eq(gev_dns_set_timeout(2), 0);
}

static const char *ipv4_of(const struct addrinfo *ai, char *buf) {
  const struct sockaddr_in *sin = (const struct sockaddr_in *)ai->ai_addr;
  return inet_ntop(AF_INET, &sin->sin_addr, buf, INET_ADDRSTRLEN);
}

static size_t owed_lists(void) {
  gev_patch_stats st;
  gev_patch_get_stats(&st);
  return st.addrinfos;
}

static const struct addrinfo tcp4 = {.ai_family = AF_INET,
                                     .ai_socktype = SOCK_STREAM};

START_TEST(getaddrinfo_hosts_and_literals) {
  int fds = gev_test_fd_count();
  struct addrinfo *ai;
  char ip[INET_ADDRSTRLEN];
  ck_assert_int_eq(gev_sleep(0), 0); /* a hub: lookups are gev's */
  ck_assert_int_eq(getaddrinfo("localhost", "80", &tcp4, &ai), 0);
  ck_assert_str_eq(ipv4_of(ai, ip), "127.0.0.1");
  ck_assert_int_eq(ntohs(((struct sockaddr_in *)ai->ai_addr)->sin_port), 80);
  ck_assert_uint_eq(owed_lists(), 1);
  freeaddrinfo(ai);
  ck_assert_uint_eq(owed_lists(), 0);
  ck_assert_int_eq(getaddrinfo("10.9.8.7", NULL, &tcp4, &ai), 0);
  ck_assert_str_eq(ipv4_of(ai, ip), "10.9.8.7");
  freeaddrinfo(ai);
  pt_all_clean(fds);
}
END_TEST

typedef struct lookup {
  const char *name;
  int rc, err;
  char ip[INET_ADDRSTRLEN];
  double took;
} lookup;

static void *do_getaddrinfo(void *arg) {
  lookup *l = arg;
  struct addrinfo *ai = NULL;
  double t0 = pt_now();
  l->rc = getaddrinfo(l->name, NULL, &tcp4, &ai);
  l->err = errno;
  l->took = pt_now() - t0;
  if (l->rc == 0) {
    ipv4_of(ai, l->ip);
    freeaddrinfo(ai);
  }
  return NULL;
}

START_TEST(getaddrinfo_parks) {
  use_responder();
  int fds = gev_test_fd_count();
  lookup *l = calloc(1, sizeof *l);
  l->name = "slow300.test";
  pt_ticker *ticker = pt_ticker_start();
  pt_spawn(do_getaddrinfo, l);
  pt_join_all(10);
  ck_assert_int_eq(l->rc, 0);
  ck_assert_str_eq(l->ip, "10.1.2.3");
  ck_assert(l->took >= 0.25);
  ck_assert_int_gt(pt_ticker_stop(ticker), 10);
  free(l);
  pt_all_clean(fds);
  responder_stop(&resp);
}
END_TEST

START_TEST(getaddrinfo_kill_ecanceled) {
  use_responder();
  int fds = gev_test_fd_count();
  lookup *l = calloc(1, sizeof *l);
  l->name = "drop.test";
  gev_greenlet *g = pt_spawn(do_getaddrinfo, l);
  ck_assert_int_eq(gev_sleep(0.05), 0);
  ck_assert_int_eq(gev_greenlet_kill(g, 1, 5), 0);
  ck_assert_int_eq(l->rc, EAI_SYSTEM);
  ck_assert_int_eq(l->err, ECANCELED);
  free(l);
  pt_all_clean(fds);
  responder_stop(&resp);
}
END_TEST

static void *free_list(void *arg) {
  freeaddrinfo(arg);
  return NULL;
}

/* A libc list made without a hub is freed by libc even from a greenlet;
 * a gev list is freed by gev even from a thread without a hub. */
START_TEST(freeaddrinfo_either_kind) {
  int fds = gev_test_fd_count();
  struct addrinfo *libc_list, *gev_list;
  pthread_t th;
  ck_assert(!gev_hub_exists());
  ck_assert_int_eq(getaddrinfo("127.0.0.1", "1", &tcp4, &libc_list), 0);
  ck_assert_uint_eq(owed_lists(), 0);
  pt_spawn(free_list, libc_list);
  pt_join_all(5);
  ck_assert_int_eq(getaddrinfo("127.0.0.1", "1", &tcp4, &gev_list), 0);
  ck_assert_uint_eq(owed_lists(), 1);
  ck_assert_int_eq(pthread_create(&th, NULL, free_list, gev_list), 0);
  ck_assert_int_eq(pthread_join(th, NULL), 0);
  ck_assert_uint_eq(owed_lists(), 0);
  pt_all_clean(fds);
}
END_TEST

/* Hints gev's resolver does not know: libc answers (and frees). */
START_TEST(getaddrinfo_unknown_flags_go_to_libc) {
  int fds = gev_test_fd_count();
  struct addrinfo hints = tcp4, *ai;
  char ip[INET_ADDRSTRLEN];
  hints.ai_flags = AI_NUMERICHOST | AI_IDN;
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert_int_eq(getaddrinfo("127.0.0.2", NULL, &hints, &ai), 0);
  ck_assert_str_eq(ipv4_of(ai, ip), "127.0.0.2");
  ck_assert_uint_eq(owed_lists(), 0);
  freeaddrinfo(ai);
  pt_all_clean(fds);
}
END_TEST

static void *do_gethostbyname(void *arg) {
  lookup *l = arg;
  double t0 = pt_now();
  struct hostent *h = gethostbyname(l->name);
  l->took = pt_now() - t0;
  l->err = h_errno;
  l->rc = h ? 0 : -1;
  if (h)
    inet_ntop(AF_INET, h->h_addr_list[0], l->ip, sizeof l->ip);
  return NULL;
}

START_TEST(gethostbyname_parks) {
  use_responder();
  int fds = gev_test_fd_count();
  lookup *l = calloc(1, sizeof *l);
  l->name = "slow200.test";
  pt_ticker *ticker = pt_ticker_start();
  pt_spawn(do_gethostbyname, l);
  pt_join_all(10);
  ck_assert_int_eq(l->rc, 0);
  ck_assert_str_eq(l->ip, "10.1.2.3");
  ck_assert(l->took >= 0.15);
  ck_assert_int_gt(pt_ticker_stop(ticker), 5);
  /* a second call in the same greenlet frees the first result */
  struct hostent *h = gethostbyname("localhost");
  ck_assert_ptr_nonnull(h);
  ck_assert_int_eq(h->h_addrtype, AF_INET);
  ck_assert_ptr_null(gethostbyname("nx.test"));
  ck_assert_int_eq(h_errno, HOST_NOT_FOUND);
  free(l);
  pt_all_clean(fds);
  responder_stop(&resp);
}
END_TEST

START_TEST(gethostbyname_r_buffers) {
  use_responder();
  int fds = gev_test_fd_count();
  struct hostent he, *res;
  char buf[1024], tiny[8], ip[INET_ADDRSTRLEN];
  int herr;
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert_int_eq(
      gethostbyname_r("slow50.test", &he, buf, sizeof buf, &res, &herr), 0);
  ck_assert_ptr_eq(res, &he);
  ck_assert_str_eq(inet_ntop(AF_INET, he.h_addr_list[0], ip, sizeof ip),
                   "10.1.2.3");
  ck_assert_ptr_null(he.h_addr_list[1]);
  ck_assert_int_eq(
      gethostbyname_r("other.test", &he, tiny, sizeof tiny, &res, &herr),
      ERANGE);
  ck_assert_ptr_null(res);
  ck_assert_int_eq(
      gethostbyname_r("nx.test", &he, buf, sizeof buf, &res, &herr), 0);
  ck_assert_ptr_null(res);
  ck_assert_int_eq(herr, HOST_NOT_FOUND);
  pt_all_clean(fds);
  responder_stop(&resp);
}
END_TEST

/* Without a hub libc resolves, and no hub is made. */
START_TEST(no_hub_lookups_are_libc) {
  int fds = gev_test_fd_count();
  struct addrinfo *ai;
  struct hostent he, *res;
  char buf[1024];
  int herr;
  ck_assert_int_eq(getaddrinfo("localhost", NULL, &tcp4, &ai), 0);
  freeaddrinfo(ai);
  ck_assert_ptr_nonnull(gethostbyname("localhost"));
  ck_assert_int_eq(
      gethostbyname_r("localhost", &he, buf, sizeof buf, &res, &herr), 0);
  ck_assert_ptr_eq(res, &he);
  ck_assert(!gev_hub_exists());
  ck_assert_uint_eq(owed_lists(), 0);
  pt_all_clean(fds);
}
END_TEST

static Suite *patch_dns_suite(void) {
  Suite *s = suite_create("patch_dns");
  TCase *tc = tcase_create("dns");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, getaddrinfo_hosts_and_literals);
  tcase_add_test(tc, getaddrinfo_parks);
  tcase_add_test(tc, getaddrinfo_kill_ecanceled);
  tcase_add_test(tc, freeaddrinfo_either_kind);
  tcase_add_test(tc, getaddrinfo_unknown_flags_go_to_libc);
  tcase_add_test(tc, gethostbyname_parks);
  tcase_add_test(tc, gethostbyname_r_buffers);
  tcase_add_test(tc, no_hub_lookups_are_libc);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(patch_dns_suite)
