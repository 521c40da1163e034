/*
 * http_parser.c — see http_parser.h. A cursor walks the head once; every
 * helper either consumes what it expects and returns 0 or returns a
 * negative HTTP_PARSE_* code. Nothing here allocates.
 */
#include "http_parser.h"

#include <limits.h>
#include <string.h>
#include <strings.h>

typedef struct cursor {
  const char *p;
  const char *end; /* end of the head, just past the blank line */
} cursor;

/* RFC 9110 tchar: the characters a token (method, field name) may hold,
 * as a table since the parser asks for every byte of every name. */
static const unsigned char tchar_table[256] = {
    ['!'] = 1,         ['#'] = 1,         ['$'] = 1, ['%'] = 1,
    ['&'] = 1,         ['\''] = 1,        ['*'] = 1, ['+'] = 1,
    ['-'] = 1,         ['.'] = 1,         ['^'] = 1, ['_'] = 1,
    ['`'] = 1,         ['|'] = 1,         ['~'] = 1, ['0' ... '9'] = 1,
    ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

static int is_tchar(unsigned char c) { return tchar_table[c]; }

static int is_vchar(unsigned char c) { return c > 0x20 && c < 0x7f; }

/* Field values: visible characters, SP, HTAB and obs-text (>= 0x80). */
static int is_field_char(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

size_t http_head_end(const char *buf, size_t len, size_t *scanned) {
  size_t i = *scanned;
  /* A blank line is "\n\n" or "\n\r\n"; step back so a terminator split
   * across two reads is still seen. */
  i = i >= 2 ? i - 2 : 0;
  for (; i < len; i++) {
    if (buf[i] != '\n')
      continue;
    if (i + 1 < len && buf[i + 1] == '\n')
      return i + 2;
    if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
      return i + 3;
  }
  *scanned = len;
  return 0;
}

/* Consumes a line ending (CRLF or LF). */
static int eat_eol(cursor *c) {
  if (c->p < c->end && *c->p == '\r')
    c->p++;
  if (c->p >= c->end || *c->p != '\n')
    return HTTP_PARSE_BAD;
  c->p++;
  return 0;
}

static int eat_char(cursor *c, char ch) {
  if (c->p >= c->end || *c->p != ch)
    return HTTP_PARSE_BAD;
  c->p++;
  return 0;
}

static int parse_method(cursor *c, http_request *req) {
  const char *start = c->p;
  while (c->p < c->end && is_tchar((unsigned char)*c->p))
    c->p++;
  if (c->p == start)
    return HTTP_PARSE_BAD;
  req->method = start;
  req->method_len = (size_t)(c->p - start);
  return eat_char(c, ' ');
}

static int parse_target(cursor *c, http_request *req) {
  const char *start = c->p;
  while (c->p < c->end && is_vchar((unsigned char)*c->p))
    c->p++;
  if (c->p == start)
    return HTTP_PARSE_BAD;
  req->target = start;
  req->target_len = (size_t)(c->p - start);
  return eat_char(c, ' ');
}

static int parse_version(cursor *c, http_request *req) {
  static const char prefix[] = "HTTP/";
  size_t n = sizeof prefix - 1;
  if ((size_t)(c->end - c->p) < n + 3 || memcmp(c->p, prefix, n) != 0)
    return HTTP_PARSE_BAD;
  const char *v = c->p + n;
  if (v[0] < '0' || v[0] > '9' || v[1] != '.' || v[2] < '0' || v[2] > '9')
    return HTTP_PARSE_BAD;
  if (v[0] != '1')
    return HTTP_PARSE_UNSUPPORTED;
  req->minor_version = v[2] - '0';
  c->p = v + 3;
  return eat_eol(c);
}

static int parse_request_line(cursor *c, http_request *req) {
  int rc = parse_method(c, req);
  if (rc == 0)
    rc = parse_target(c, req);
  if (rc == 0)
    rc = parse_version(c, req);
  return rc;
}

/* One "name: value" line; the cursor is at its first character. */
static int parse_field(cursor *c, http_header *h) {
  const char *start = c->p;
  while (c->p < c->end && is_tchar((unsigned char)*c->p))
    c->p++;
  if (c->p == start)
    return HTTP_PARSE_BAD; /* empty name, or obs-fold / junk */
  h->name = start;
  h->name_len = (size_t)(c->p - start);
  if (eat_char(c, ':') < 0)
    return HTTP_PARSE_BAD;
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
    c->p++;
  const char *value = c->p;
  while (c->p < c->end && is_field_char((unsigned char)*c->p))
    c->p++;
  const char *value_end = c->p;
  while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t'))
    value_end--;
  h->value = value;
  h->value_len = (size_t)(value_end - value);
  return eat_eol(c);
}

static int at_blank_line(const cursor *c) {
  return (c->p < c->end && *c->p == '\n') ||
         (c->end - c->p >= 2 && c->p[0] == '\r' && c->p[1] == '\n');
}

static int parse_fields(cursor *c, http_request *req) {
  req->num_headers = 0;
  while (!at_blank_line(c)) {
    if (req->num_headers == HTTP_MAX_HEADERS)
      return HTTP_PARSE_TOO_LARGE;
    int rc = parse_field(c, &req->headers[req->num_headers]);
    if (rc < 0)
      return rc;
    req->num_headers++;
  }
  return eat_eol(c);
}

static int name_is(const http_header *h, const char *name) {
  return strlen(name) == h->name_len &&
         strncasecmp(h->name, name, h->name_len) == 0;
}

/* Non-zero when the comma-separated list in h's value holds token. */
static int list_has_token(const http_header *h, const char *token) {
  size_t tlen = strlen(token);
  const char *p = h->value, *end = h->value + h->value_len;
  while (p < end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
      p++;
    const char *item = p;
    while (p < end && *p != ',')
      p++;
    const char *item_end = p;
    while (item_end > item && (item_end[-1] == ' ' || item_end[-1] == '\t'))
      item_end--;
    if ((size_t)(item_end - item) == tlen &&
        strncasecmp(item, token, tlen) == 0)
      return 1;
  }
  return 0;
}

static int parse_content_length(const http_header *h, uint64_t *out) {
  uint64_t v = 0;
  if (h->value_len == 0 || h->value_len > 18)
    return HTTP_PARSE_BAD; /* 18 digits cannot overflow 64 bits */
  for (size_t i = 0; i < h->value_len; i++) {
    if (h->value[i] < '0' || h->value[i] > '9')
      return HTTP_PARSE_BAD;
    v = v * 10 + (uint64_t)(h->value[i] - '0');
  }
  *out = v;
  return 0;
}

/* ---- Host (RFC 9110 section 7.2, RFC 3986 section 3.2.2) ------------- */

static int is_hex(unsigned char c) {
  return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* reg-name and IPv4address characters: unreserved and sub-delims (pct-
 * encoded octets are checked by the caller). */
static int is_host_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || strchr("-._~!$&'()*+,;=", c) != NULL;
}

/* reg-name = *( unreserved / pct-encoded / sub-delims ); may be empty. */
static int valid_reg_name(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '%') {
      if (i + 2 >= n || !is_hex((unsigned char)p[i + 1]) ||
          !is_hex((unsigned char)p[i + 2]))
        return 0;
      i += 2;
    } else if (!p[i] || !is_host_char((unsigned char)p[i])) {
      return 0;
    }
  }
  return 1;
}

/* IP-literal = "[" ( IPv6address / IPvFuture ) "]", the brackets
 * stripped: hex digits, colons and dots (an IPv4 tail) for IPv6, or
 * "v" HEXDIG+ "." followed by unreserved, sub-delims and colons. */
static int valid_ip_literal(const char *p, size_t n) {
  if (n > 0 && (p[0] == 'v' || p[0] == 'V')) {
    size_t i = 1;
    while (i < n && is_hex((unsigned char)p[i]))
      i++;
    if (i == 1 || i >= n - 1 || p[i] != '.')
      return 0;
    for (i++; i < n; i++)
      if (p[i] != ':' && !is_host_char((unsigned char)p[i]))
        return 0;
    return 1;
  }
  int colons = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] == ':')
      colons++;
    else if (p[i] != '.' && !is_hex((unsigned char)p[i]))
      return 0;
  }
  return colons >= 2 && n <= 45;
}

/* Host = uri-host [ ":" port ]. An empty value is valid: it is what a
 * client sends when the target has no authority. */
static int valid_host(const http_header *h) {
  const char *p = h->value, *end = p + h->value_len, *host_end;
  if (h->value_len > 0 && p[0] == '[') {
    const char *close = memchr(p, ']', h->value_len);
    if (!close || !valid_ip_literal(p + 1, (size_t)(close - p - 1)))
      return 0;
    host_end = close + 1;
    if (host_end < end && *host_end != ':')
      return 0;
  } else {
    host_end = memchr(p, ':', h->value_len);
    if (!host_end)
      host_end = end;
    if (!valid_reg_name(p, (size_t)(host_end - p)))
      return 0;
  }
  if (host_end == end)
    return 1;
  /* port = *DIGIT; more than five digits is not a port. */
  if (end - host_end - 1 > 5)
    return 0;
  for (const char *d = host_end + 1; d < end; d++)
    if (*d < '0' || *d > '9')
      return 0;
  return 1;
}

/* Derives body length and persistence from the fields, and checks Host:
 * RFC 9112 section 3.2 asks for 400 when an HTTP/1.1 request has none, or
 * any request has two or an invalid one. */
static int interpret_fields(http_request *req) {
  int close = 0, keep = 0, hosts = 0;
  req->has_body = 0;
  req->content_length = 0;
  for (size_t i = 0; i < req->num_headers; i++) {
    const http_header *h = &req->headers[i];
    if (name_is(h, "host")) {
      if (++hosts > 1 || !valid_host(h))
        return HTTP_PARSE_BAD;
    } else if (name_is(h, "content-length")) {
      uint64_t n;
      if (parse_content_length(h, &n) < 0 ||
          (req->has_body && n != req->content_length))
        return HTTP_PARSE_BAD;
      req->has_body = 1;
      req->content_length = n;
    } else if (name_is(h, "transfer-encoding")) {
      return HTTP_PARSE_UNSUPPORTED;
    } else if (name_is(h, "connection")) {
      close |= list_has_token(h, "close");
      keep |= list_has_token(h, "keep-alive");
    }
  }
  if (req->minor_version >= 1 && hosts == 0)
    return HTTP_PARSE_BAD;
  if (req->minor_version >= 1)
    req->keep_alive = !close;
  else
    req->keep_alive = keep && !close;
  return 0;
}

/* Length of the empty lines before a request, which RFC 9112 section 2.2
 * says a server should ignore (some clients send a CRLF after a body). */
static size_t leading_blank_lines(const char *buf, size_t len) {
  size_t i = 0;
  for (;;) {
    if (i < len && buf[i] == '\n')
      i += 1;
    else if (i + 1 < len && buf[i] == '\r' && buf[i + 1] == '\n')
      i += 2;
    else
      return i;
  }
}

int http_parse_request(const char *buf, size_t len, size_t max_head,
                       http_request *req) {
  size_t skip = leading_blank_lines(buf, len);
  size_t scanned = 0;
  size_t head = http_head_end(buf + skip, len - skip, &scanned);
  if (head == 0)
    return len > max_head ? HTTP_PARSE_TOO_LARGE : HTTP_PARSE_INCOMPLETE;
  head += skip;
  if (head > max_head || head > INT_MAX)
    return HTTP_PARSE_TOO_LARGE;
  cursor c = {buf + skip, buf + head};
  int rc = parse_request_line(&c, req);
  if (rc == 0)
    rc = parse_fields(&c, req);
  if (rc == 0)
    rc = interpret_fields(req);
  if (rc < 0)
    return rc;
  req->head_len = head;
  return (int)head;
}

const http_header *http_find_header(const http_request *req, const char *name) {
  for (size_t i = 0; i < req->num_headers; i++)
    if (name_is(&req->headers[i], name))
      return &req->headers[i];
  return NULL;
}

/* ---- Responses ----------------------------------------------------------- */

#define HELLO_HEAD                                                             \
  "HTTP/1.1 200 OK\r\nServer: gev\r\nContent-Type: text/plain\r\n"             \
  "Content-Length: 13\r\n"

static const char hello_keep[] = HELLO_HEAD "\r\n" HTTP_HELLO_BODY;
static const char hello_keep10[] =
    HELLO_HEAD "Connection: keep-alive\r\n\r\n" HTTP_HELLO_BODY;
static const char hello_close[] =
    HELLO_HEAD "Connection: close\r\n\r\n" HTTP_HELLO_BODY;

size_t http_hello_response(const http_request *req, char *buf, size_t size) {
  const char *r = !req->keep_alive          ? hello_close
                  : req->minor_version == 0 ? hello_keep10
                                            : hello_keep;
  size_t n = strlen(r);
  if (n > size)
    return 0;
  memcpy(buf, r, n);
  return n;
}

#define ERROR_RESPONSE(status)                                                 \
  "HTTP/1.1 " status "\r\nServer: gev\r\nContent-Length: 0\r\n"                \
  "Connection: close\r\n\r\n"

const char *http_error_response(int parse_error, size_t *len) {
  static const char bad[] = ERROR_RESPONSE("400 Bad Request");
  static const char large[] =
      ERROR_RESPONSE("431 Request Header Fields Too Large");
  static const char unsupported[] = ERROR_RESPONSE("501 Not Implemented");
  static const char expectation[] = ERROR_RESPONSE("417 Expectation Failed");
  static const char content[] = ERROR_RESPONSE("413 Content Too Large");
  const char *r;
  switch (parse_error) {
  case HTTP_PARSE_TOO_LARGE:
    r = large;
    break;
  case HTTP_PARSE_UNSUPPORTED:
    r = unsupported;
    break;
  case HTTP_EXPECTATION_FAILED:
    r = expectation;
    break;
  case HTTP_CONTENT_TOO_LARGE:
    r = content;
    break;
  default:
    r = bad;
  }
  *len = strlen(r);
  return r;
}

int http_expectation(const http_request *req) {
  const http_header *h = http_find_header(req, "expect");
  if (!h)
    return HTTP_EXPECT_NONE;
  if (h->value_len == 12 && strncasecmp(h->value, "100-continue", 12) == 0)
    return req->minor_version >= 1 ? HTTP_EXPECT_CONTINUE : HTTP_EXPECT_NONE;
  return HTTP_EXPECT_UNKNOWN;
}

const char http_continue_response[] = "HTTP/1.1 100 Continue\r\n\r\n";
