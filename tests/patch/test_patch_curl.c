/* libcurl's easy interface, unmodified, through the cooperative libc: 200
 * greenlets each run a plain curl_easy_perform against a local HTTP server
 * (gev sockets, same process) that answers every request after 0.2 s; all
 * finish in about the time of one (serially 40 s). A kill or a Timeout
 * scope makes curl_easy_perform return an error promptly. */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>

#include "patchtest.h"
#include "servers.h"

enum { CLIENTS = 200 };

typedef struct fetch {
  int port;
  double timeout; /* a gev_timeout scope around the transfer; 0: none */
  CURLcode rc;
  long status;
  char body[16];
  size_t len;
  double took;
} fetch;

static size_t keep_body(char *p, size_t size, size_t n, void *arg) {
  fetch *f = arg;
  size_t len = size * n;
  for (size_t i = 0; i < len && f->len < sizeof f->body - 1; i++)
    f->body[f->len++] = p[i];
  return len;
}

static void *do_fetch(void *arg) {
  fetch *f = arg;
  char url[64];
  CURL *c = curl_easy_init();
  if (!c) {
    f->rc = CURLE_FAILED_INIT;
    return NULL;
  }
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", f->port);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
  gev_timeout *scope = f->timeout > 0 ? gev_timeout_start(f->timeout) : NULL;
  double t0 = pt_now();
  f->rc = curl_easy_perform(c);
  f->took = pt_now() - t0;
  gev_timeout_cancel(scope);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f->status);
  curl_easy_cleanup(c);
  return NULL;
}

START_TEST(two_hundred_concurrent_transfers) {
  int fds = gev_test_fd_count();
  http_delay *h = http_delay_start(0.2);
  ck_assert_ptr_nonnull(h);
  fetch *f = calloc(CLIENTS, sizeof *f);
  double t0 = pt_now();
  for (int i = 0; i < CLIENTS; i++) {
    f[i].port = http_delay_port(h);
    pt_spawn(do_fetch, &f[i]);
  }
  pt_join_all(60);
  double took = pt_now() - t0;
  for (int i = 0; i < CLIENTS; i++) {
    ck_assert_msg(f[i].rc == CURLE_OK, "transfer %d: %s", i,
                  curl_easy_strerror(f[i].rc));
    ck_assert_int_eq(f[i].status, 200);
    ck_assert_str_eq(f[i].body, "hello");
  }
  ck_assert_int_eq(http_delay_served(h), CLIENTS);
  /* Serially 40 s; concurrently about 0.2 s. */
  ck_assert_msg(took < 20, "200 transfers took %.2f s", took);
  http_delay_stop(h);
  free(f);
  pt_all_clean(fds);
}
END_TEST

/* A transfer the server would answer after 30 s, ended by a Timeout
 * scope of 0.3 s or by a kill after 0.2 s: curl_easy_perform returns an
 * error promptly. */
static void check_transfer_interrupted(int by_kill) {
  int fds = gev_test_fd_count();
  http_delay *h = http_delay_start(30);
  fetch *f = calloc(1, sizeof *f);
  f->port = http_delay_port(h);
  f->timeout = by_kill ? 0 : 0.3;
  gev_greenlet *g = pt_spawn(do_fetch, f);
  if (by_kill) {
    ck_assert_int_eq(gev_sleep(0.2), 0);
    ck_assert_int_eq(gev_greenlet_kill(g, 1, 10), 0);
  }
  pt_join_all(20);
  ck_assert_int_ne(f->rc, CURLE_OK);
  ck_assert(by_kill || f->took >= 0.25);
  ck_assert_msg(f->took < 10, "took %.2f s", f->took);
  http_delay_stop(h);
  free(f);
  pt_all_clean(fds);
}

START_TEST(timeout_scope_ends_transfer) { check_transfer_interrupted(0); }
END_TEST

START_TEST(kill_ends_transfer) { check_transfer_interrupted(1); }
END_TEST

static Suite *patch_curl_suite(void) {
  Suite *s = suite_create("patch_curl");
  TCase *tc = tcase_create("libcurl");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, two_hundred_concurrent_transfers);
  tcase_add_test(tc, timeout_scope_ends_transfer);
  tcase_add_test(tc, kill_ends_transfer);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  int rc;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return EXIT_FAILURE;
  rc = gev_test_run(patch_curl_suite());
  curl_global_cleanup();
  return rc;
}
