/* Unit tests of the example HTTP request parser (examples/http_parser.c):
 * what the httpd example depends on, case by case. */
#include <stdio.h>
#include <string.h>

#include "http_parser.h"
#include "testutil.h"

#define MAX_HEAD 8192

static int parse(const char *s, http_request *req) {
  return http_parse_request(s, strlen(s), MAX_HEAD, req);
}

static int str_is(const char *p, size_t n, const char *want) {
  return n == strlen(want) && memcmp(p, want, n) == 0;
}

START_TEST(simple_get) {
  http_request r;
  const char *s = "GET /x?y=1 HTTP/1.1\r\nHost: h\r\nX-Empty:\r\n\r\nrest";
  ck_assert_int_eq(parse(s, &r), (int)strlen(s) - 4);
  ck_assert(str_is(r.method, r.method_len, "GET"));
  ck_assert(str_is(r.target, r.target_len, "/x?y=1"));
  ck_assert_int_eq(r.minor_version, 1);
  ck_assert_int_eq(r.keep_alive, 1);
  ck_assert_int_eq(r.has_body, 0);
  ck_assert_uint_eq(r.num_headers, 2);
  const http_header *h = http_find_header(&r, "host");
  ck_assert_ptr_nonnull(h);
  ck_assert(str_is(h->value, h->value_len, "h"));
  ck_assert_uint_eq(http_find_header(&r, "x-empty")->value_len, 0);
  ck_assert_ptr_null(http_find_header(&r, "missing"));
}
END_TEST

START_TEST(incomplete_until_blank_line) {
  http_request r;
  const char *s = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
  size_t n = strlen(s);
  for (size_t i = 0; i < n; i++)
    ck_assert_int_eq(http_parse_request(s, i, MAX_HEAD, &r),
                     HTTP_PARSE_INCOMPLETE);
  ck_assert_int_eq(http_parse_request(s, n, MAX_HEAD, &r), (int)n);
}
END_TEST

START_TEST(head_end_incremental) {
  const char *s = "GET / HTTP/1.1\r\nA: b\r\n\r\n";
  size_t n = strlen(s), scanned = 0;
  /* One byte at a time, as a slowloris client sends it. */
  for (size_t i = 1; i < n; i++)
    ck_assert_uint_eq(http_head_end(s, i, &scanned), 0);
  ck_assert_uint_eq(http_head_end(s, n, &scanned), n);
}
END_TEST

START_TEST(keep_alive_rules) {
  http_request r;
  ck_assert_int_gt(parse("GET / HTTP/1.0\r\n\r\n", &r), 0);
  ck_assert_int_eq(r.keep_alive, 0);
  ck_assert_int_gt(
      parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r), 0);
  ck_assert_int_eq(r.keep_alive, 1);
  ck_assert_int_gt(
      parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: x, CLOSE \r\n\r\n", &r),
      0);
  ck_assert_int_eq(r.keep_alive, 0);
  ck_assert_int_gt(
      parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", &r), 0);
  ck_assert_int_eq(r.keep_alive, 1);
}
END_TEST

START_TEST(content_length) {
  http_request r;
  ck_assert_int_gt(
      parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n\r\n", &r), 0);
  ck_assert_int_eq(r.has_body, 1);
  ck_assert_uint_eq(r.content_length, 12);
  ck_assert_int_gt(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
                         "Content-Length: 3\r\n\r\n",
                         &r),
                   0);
  ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
                         "Content-Length: 4\r\n\r\n",
                         &r),
                   HTTP_PARSE_BAD);
  ck_assert_int_eq(
      parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n", &r),
      HTTP_PARSE_BAD);
  ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: "
                         "99999999999999999999\r\n\r\n",
                         &r),
                   HTTP_PARSE_BAD);
  ck_assert_int_eq(
      parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
            "\r\n",
            &r),
      HTTP_PARSE_UNSUPPORTED);
}
END_TEST

START_TEST(malformed) {
  static const char *bad[] = {
      "GET\r\n\r\n",
      "GET / HTTP/1.1 \r\n\r\n",
      " GET / HTTP/1.1\r\n\r\n",
      "GET  / HTTP/1.1\r\n\r\n",
      "GET / HTTX/1.1\r\n\r\n",
      "GET / HTTP/1.x\r\n\r\n",
      "GET / HTTP/1.1\r\nNo-Colon\r\n\r\n",
      "GET / HTTP/1.1\r\nName : v\r\n\r\n",
      "GET / HTTP/1.1\r\n: v\r\n\r\n",
      "GET / HTTP/1.1\r\nA: b\r\n continued\r\n\r\n",
      "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n",
      "GET / HTTP/1.1\rA: b\r\n\r\n",
      "G(T / HTTP/1.1\r\n\r\n",
  };
  http_request r;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ck_assert_msg(parse(bad[i], &r) == HTTP_PARSE_BAD, "case %zu", i);
  ck_assert_int_eq(parse("GET / HTTP/2.0\r\n\r\n", &r), HTTP_PARSE_UNSUPPORTED);
}
END_TEST

START_TEST(too_large) {
  http_request r;
  char big[MAX_HEAD + 100];
  memset(big, 'a', sizeof big);
  memcpy(big, "GET /", 5);
  /* No end in sight and already past the limit. */
  ck_assert_int_eq(http_parse_request(big, sizeof big, MAX_HEAD, &r),
                   HTTP_PARSE_TOO_LARGE);
  /* Under the limit it is just incomplete. */
  ck_assert_int_eq(http_parse_request(big, 100, MAX_HEAD, &r),
                   HTTP_PARSE_INCOMPLETE);
  /* Too many fields. */
  char many[4096];
  size_t n = (size_t)snprintf(many, sizeof many, "GET / HTTP/1.1\r\n");
  for (int i = 0; i <= HTTP_MAX_HEADERS; i++)
    n += (size_t)snprintf(many + n, sizeof many - n, "X%d: v\r\n", i);
  n += (size_t)snprintf(many + n, sizeof many - n, "\r\n");
  ck_assert_int_eq(http_parse_request(many, n, MAX_HEAD, &r),
                   HTTP_PARSE_TOO_LARGE);
}
END_TEST

START_TEST(line_endings_and_leading_blank) {
  http_request r;
  const char *lf = "GET / HTTP/1.1\nHost: h\n\n";
  ck_assert_int_eq(parse(lf, &r), (int)strlen(lf));
  const char *lead = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
  ck_assert_int_eq(parse(lead, &r), (int)strlen(lead));
  ck_assert(str_is(r.method, r.method_len, "GET"));
  ck_assert_int_eq(parse("\r\n\r\n", &r), HTTP_PARSE_INCOMPLETE);
}
END_TEST

START_TEST(host_required_once_and_valid) {
  static const char *good[] = {
      "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: [2001:db8::ff00:42:8329]\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: [v1.fe80::a+en1]\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: xn--bcher-kva.example%2e\r\n\r\n",
      "GET / HTTP/1.1\r\nhOsT:\r\n\r\n", /* empty: no authority */
      "GET / HTTP/1.0\r\n\r\n",          /* optional in HTTP/1.0 */
      "GET / HTTP/1.0\r\nHost: a\r\n\r\n",
  };
  static const char *bad[] = {
      "GET / HTTP/1.1\r\n\r\n",                       /* none */
      "GET / HTTP/1.1\r\nX: y\r\n\r\n",               /* none */
      "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", /* two */
      "GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", /* two */
      "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",          /* space */
      "GET / HTTP/1.1\r\nHost: user@host\r\n\r\n",    /* userinfo */
      "GET / HTTP/1.1\r\nHost: host:80:80\r\n\r\n",   /* two ports */
      "GET / HTTP/1.1\r\nHost: host:8o\r\n\r\n",      /* port */
      "GET / HTTP/1.1\r\nHost: host:123456\r\n\r\n",  /* port */
      "GET / HTTP/1.1\r\nHost: host/path\r\n\r\n",    /* slash */
      "GET / HTTP/1.1\r\nHost: ho%zzst\r\n\r\n",      /* bad % */
      "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n",         /* unclosed */
      "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n",       /* after ] */
      "GET / HTTP/1.1\r\nHost: [nothex]\r\n\r\n",     /* literal */
      "GET / HTTP/1.1\r\nHost: h\xc3\xa9\r\n\r\n",    /* not ASCII */
  };
  http_request r;
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    ck_assert_msg(parse(good[i], &r) > 0, "good case %zu", i);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ck_assert_msg(parse(bad[i], &r) == HTTP_PARSE_BAD, "bad case %zu", i);
}
END_TEST

START_TEST(expectations) {
  http_request r;
  ck_assert_int_gt(parse("POST / HTTP/1.1\r\nHost: h\r\n"
                         "Expect: 100-Continue\r\nContent-Length: 5\r\n\r\n",
                         &r),
                   0);
  ck_assert_int_eq(http_expectation(&r), HTTP_EXPECT_CONTINUE);
  ck_assert_int_gt(parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", &r),
                   0);
  ck_assert_int_eq(http_expectation(&r), HTTP_EXPECT_NONE); /* ignored */
  ck_assert_int_gt(
      parse("GET / HTTP/1.1\r\nHost: h\r\nExpect: teapot\r\n\r\n", &r), 0);
  ck_assert_int_eq(http_expectation(&r), HTTP_EXPECT_UNKNOWN);
  ck_assert_int_gt(parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &r), 0);
  ck_assert_int_eq(http_expectation(&r), HTTP_EXPECT_NONE);
  size_t len;
  ck_assert(strncmp(http_error_response(HTTP_EXPECTATION_FAILED, &len),
                    "HTTP/1.1 417 ", 13) == 0);
  ck_assert(strncmp(http_error_response(HTTP_CONTENT_TOO_LARGE, &len),
                    "HTTP/1.1 413 ", 13) == 0);
  ck_assert_str_eq(http_continue_response, "HTTP/1.1 100 Continue\r\n\r\n");
}
END_TEST

static Suite *parser_suite(void) {
  Suite *s = suite_create("http_parser");
  TCase *tc = tcase_create("parse");
  tcase_add_test(tc, simple_get);
  tcase_add_test(tc, incomplete_until_blank_line);
  tcase_add_test(tc, head_end_incremental);
  tcase_add_test(tc, keep_alive_rules);
  tcase_add_test(tc, content_length);
  tcase_add_test(tc, malformed);
  tcase_add_test(tc, too_large);
  tcase_add_test(tc, line_endings_and_leading_blank);
  tcase_add_test(tc, host_required_once_and_valid);
  tcase_add_test(tc, expectations);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(parser_suite)
