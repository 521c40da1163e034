/*
 * libFuzzer target for examples/http_parser.c.
 *
 * Beyond "does not crash", it checks what the servers rely on: a parsed
 * head lies inside the input, every string points inside the head, the
 * incremental head finder agrees with the parser however the input is
 * split, and parsing is deterministic.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../http_parser.h"

#define MAX_HEAD 8192

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok) {
  if (!ok)
    abort();
}

static int inside(const char *s, size_t n, const char *buf, size_t len) {
  return s >= buf && s + n <= buf + len;
}

static void check_request(const http_request *req, const char *buf,
                          size_t head) {
  check(inside(req->method, req->method_len, buf, head));
  check(req->method_len > 0 && req->target_len > 0);
  check(inside(req->target, req->target_len, buf, head));
  check(req->minor_version >= 0 && req->minor_version <= 9);
  check(req->num_headers <= HTTP_MAX_HEADERS);
  for (size_t i = 0; i < req->num_headers; i++) {
    const http_header *h = &req->headers[i];
    check(h->name_len > 0 && inside(h->name, h->name_len, buf, head));
    check(inside(h->value, h->value_len, buf, head));
  }
}

/* Feeds the input to http_head_end in two pieces, as a socket might. */
static size_t head_end_split(const char *buf, size_t size, size_t cut) {
  size_t scanned = 0;
  size_t end = http_head_end(buf, cut, &scanned);
  if (end)
    return end;
  return http_head_end(buf, size, &scanned);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* A private copy, so reads past the end are caught by ASan. */
  char *buf = malloc(size ? size : 1);
  if (!buf)
    return 0;
  memcpy(buf, data, size);
  http_request req, again;
  int rc = http_parse_request(buf, size, MAX_HEAD, &req);
  check(rc >= HTTP_PARSE_UNSUPPORTED);
  if (rc > 0) {
    check((size_t)rc <= size && (size_t)rc <= MAX_HEAD);
    check(req.head_len == (size_t)rc);
    check_request(&req, buf, (size_t)rc);
    check(http_parse_request(buf, size, MAX_HEAD, &again) == rc);
    check(again.content_length == req.content_length);
    int expect = http_expectation(&req);
    check(expect >= HTTP_EXPECT_NONE && expect <= HTTP_EXPECT_UNKNOWN);
    /* The head is complete on its own: trailing bytes do not matter. */
    check(http_parse_request(buf, (size_t)rc, MAX_HEAD, &again) == rc);
  }
  size_t scanned = 0;
  size_t whole = http_head_end(buf, size, &scanned);
  check(head_end_split(buf, size, size / 2) == whole);
  check(whole <= size);
  free(buf);
  return 0;
}
