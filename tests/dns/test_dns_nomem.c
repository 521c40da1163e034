/* Out of memory during a lookup: each allocation gev makes on the way
 * (the request, the watcher of the socket c-ares opens, the result ...)
 * fails in turn. The lookup must then fail with EAI_MEMORY (ENOMEM through
 * the socket layer), never abort or leak, and the next one must work. */
#include <errno.h>
#include <string.h>

#include "failalloc.h"
#include "gev/dns.h"
#include "gev/net.h"
#include "responder.h"
#include "testutil.h"

static responder resp;
static int fds_before;

static void begin(void) {
  char s[64];
  struct in_addr a;
  ck_assert_int_eq(responder_start(&resp), 0);
  fds_before = gev_test_fd_count();
  responder_server(&resp, s, sizeof s);
  ck_assert_int_eq(gev_dns_set_servers(s), 0);
  ck_assert_int_eq(gev_dns_set_timeout(2), 0);
  ck_assert_int_eq(gev_dns_set_tries(1), 0);
  /* The hub and the resolver exist before the sweep. */
  ck_assert_int_eq(gev_gethostbyname("warm.test", &a), 0);
}

static void end(void) {
  gev_test_all_clean(fds_before);
  responder_stop(&resp);
}

enum { MAX_ALLOCATIONS = 100 };

START_TEST(every_allocation_of_a_lookup_may_fail) {
  struct in_addr a;
  struct hostent *h;
  long n;
  begin();
  for (n = 0; n < MAX_ALLOCATIONS; n++) {
    failalloc_after(n);
    int rc = gev_gethostbyname_ex("host.test", AF_INET, &h);
    int err = errno, fired = failalloc_fired();
    failalloc_after(-1);
    if (rc == 0)
      gev_freehostent(h);
    if (!fired) {
      ck_assert_int_eq(rc, 0);
      break; /* past the lookup's last allocation */
    }
    ck_assert_msg(rc == 0 || rc == EAI_MEMORY ||
                      (rc == EAI_SYSTEM && err == ENOMEM),
                  "allocation %ld failed: %s", n, gev_dns_strerror(rc));
    ck_assert_int_eq(gev_gethostbyname("after.test", &a), 0);
  }
  ck_assert_int_lt(n, MAX_ALLOCATIONS);
  end();
}
END_TEST

START_TEST(create_connection_reports_enomem) {
  long n;
  begin();
  for (n = 0; n < MAX_ALLOCATIONS; n++) {
    failalloc_after(n);
    gev_socket *s = gev_create_connection("nxhost.test", 80, 5);
    int err = errno, fired = failalloc_fired();
    failalloc_after(-1);
    ck_assert_ptr_null(s);
    if (!fired) {
      ck_assert_int_eq(err, ENOENT);
      break;
    }
    ck_assert_msg(err == ENOENT || err == ENOMEM, "allocation %ld: %s", n,
                  strerror(err));
  }
  ck_assert_int_lt(n, MAX_ALLOCATIONS);
  end();
}
END_TEST

static Suite *dns_nomem_suite(void) {
  Suite *s = suite_create("dns_nomem");
  TCase *tc = tcase_create("nomem");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, every_allocation_of_a_lookup_may_fail);
  tcase_add_test(tc, create_connection_reports_enomem);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(dns_nomem_suite)
