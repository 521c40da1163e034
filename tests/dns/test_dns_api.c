/* AI_ADDRCONFIG as glibc applies it (on this machine's interfaces, and on
 * staged ones), and the server list read back from c-ares. No DNS server
 * is needed: literals, NULL nodes and /etc/hosts only. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "gev/dns.h"
#include "net/dns_internal.h"
#include "testutil.h"

static int fds;
static void begin(void) { fds = gev_test_fd_count(); }
static void end(void) { gev_test_all_clean(fds); }

/* Families in a result list as bits: 1 IPv4, 2 IPv6; -code on error. */
static int families(int (*gai)(const char *, const char *,
                               const struct addrinfo *, struct addrinfo **),
                    void (*freeai)(struct addrinfo *), const char *node,
                    int family, int flags) {
  struct addrinfo hints = {.ai_family = family,
                           .ai_socktype = SOCK_STREAM,
                           .ai_flags = flags},
                  *res;
  int rc = gai(node, "80", &hints, &res);
  if (rc != 0)
    return rc < 0 ? rc : -rc;
  int bits = 0;
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
    bits |= ai->ai_family == AF_INET ? 1 : 2;
  freeai(res);
  return bits;
}

/* gev agrees with glibc on this machine, whatever its interfaces are. */
START_TEST(addrconfig_matches_libc) {
  /* Not "localhost" for IPv6: c-ares answers ::1 for it even when
   * /etc/hosts does not list it (RFC 6761), glibc does not. */
  static const char *const nodes[] = {NULL, "127.0.0.1", "::1"};
  static const int fams[] = {AF_UNSPEC, AF_INET, AF_INET6};
  begin();
  for (size_t n = 0; n < sizeof nodes / sizeof *nodes; n++) {
    for (size_t f = 0; f < 3; f++) {
      int libc =
          families(getaddrinfo, freeaddrinfo, nodes[n], fams[f], AI_ADDRCONFIG);
      int ours = families(gev_getaddrinfo, gev_freeaddrinfo, nodes[n], fams[f],
                          AI_ADDRCONFIG);
      ck_assert_msg(libc == ours, "node %s family %d: libc %d gev %d",
                    nodes[n] ? nodes[n] : "NULL", fams[f], libc, ours);
    }
  }
  end();
}
END_TEST

static int staged_v4, staged_v6;
static int staged_probe(int *v4, int *v6) {
  *v4 = staged_v4;
  *v6 = staged_v6;
  return 0;
}

static int gev_fams(const char *node, int family, int flags) {
  return families(gev_getaddrinfo, gev_freeaddrinfo, node, family, flags);
}

START_TEST(addrconfig_on_staged_interfaces) {
  begin();
  int (*saved)(int *, int *) = gev__dns_addrconfig_probe;
  gev__dns_addrconfig_probe = staged_probe;
  /* IPv4 only: AF_UNSPEC narrows to IPv4; IPv6 asked for finds nothing. */
  staged_v4 = 1, staged_v6 = 0;
  ck_assert_int_eq(gev_fams(NULL, AF_UNSPEC, AI_ADDRCONFIG), 1);
  ck_assert_int_eq(gev_fams(NULL, AF_UNSPEC, 0), 3); /* without the flag */
  ck_assert_int_eq(gev_fams("::1", AF_INET6, AI_ADDRCONFIG), EAI_NONAME);
  ck_assert_int_eq(gev_fams("127.0.0.1", AF_INET, AI_ADDRCONFIG), 1);
  /* IPv6 only. */
  staged_v4 = 0, staged_v6 = 1;
  ck_assert_int_eq(gev_fams(NULL, AF_UNSPEC, AI_ADDRCONFIG), 2);
  ck_assert_int_eq(gev_fams("127.0.0.1", AF_INET, AI_ADDRCONFIG), EAI_NONAME);
  ck_assert_int_eq(gev_fams("127.0.0.1", AF_UNSPEC, AI_ADDRCONFIG),
                   EAI_ADDRFAMILY);
  /* Loopback only (nothing configured): everything still resolves. */
  staged_v4 = 0, staged_v6 = 0;
  ck_assert_int_eq(gev_fams(NULL, AF_UNSPEC, AI_ADDRCONFIG), 3);
  ck_assert_int_eq(gev_fams("localhost", AF_UNSPEC, AI_ADDRCONFIG) & 1, 1);
  ck_assert_int_eq(gev_fams("::1", AF_UNSPEC, AI_ADDRCONFIG), 2);
  /* ... but a family asked for still needs an address of its own. */
  ck_assert_int_eq(gev_fams("localhost", AF_INET, AI_ADDRCONFIG), EAI_NONAME);
  /* Both. */
  staged_v4 = 1, staged_v6 = 1;
  ck_assert_int_eq(gev_fams(NULL, AF_UNSPEC, AI_ADDRCONFIG), 3);
  gev__dns_addrconfig_probe = saved;
  end();
}
END_TEST

START_TEST(server_list_normalized) {
  char buf[256];
  ck_assert_int_eq(gev__dns_servers_normalize(
                       "127.0.0.1,10.0.0.2:5353,[::1]:54,[fe80::1]:53%eth0,"
                       "2001:db8::1,[::2]",
                       buf, sizeof buf),
                   0);
  ck_assert_str_eq(buf, "127.0.0.1:53,10.0.0.2:5353,[::1]:54,[fe80::1]:53,"
                        "[2001:db8::1]:53,[::2]:53");
  ck_assert_int_eq(gev__dns_servers_normalize("", buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "");
  ck_assert_int_eq(gev__dns_servers_normalize("1.2.3.4:0", buf, sizeof buf),
                   -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev__dns_servers_normalize("[::1", buf, sizeof buf), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev__dns_servers_normalize("127.0.0.1", buf, 5), -1);
  ck_assert_int_eq(errno, ERANGE);
  /* Through the resolver, whichever c-ares call reads them. */
  begin();
  ck_assert_int_eq(gev_dns_set_servers("127.0.0.1:5353,[::1]:53"), 0);
  ck_assert_int_eq(gev_dns_get_servers(buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "127.0.0.1:5353,[::1]:53");
  ck_assert_int_eq(gev_dns_get_servers(buf, 10), -1);
  ck_assert_int_eq(errno, ERANGE);
  ck_assert_int_eq(gev_dns_set_servers(NULL), 0);
  end();
}
END_TEST

static Suite *dns_api_suite(void) {
  Suite *s = suite_create("dns_api");
  TCase *tc = tcase_create("dns_api");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, addrconfig_matches_libc);
  tcase_add_test(tc, addrconfig_on_staged_interfaces);
  tcase_add_test(tc, server_list_normalized);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(dns_api_suite)
