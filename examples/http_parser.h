/*
 * http_parser.h — a small, strict HTTP/1.x request-head parser for the
 * example servers (examples/httpd, bench/ref_httpd).
 *
 * It parses the request line and the header fields of one request from a
 * byte buffer, without copying: every string in http_request points into
 * the caller's buffer and is valid as long as the buffer is. The parser
 * keeps no state between calls; a server calls it again when more bytes
 * arrive. To keep that cheap for clients that trickle bytes (slowloris),
 * http_head_end() finds the end of the head incrementally, so the full parse
 * runs once per request.
 *
 * What it accepts (RFC 9112, conservatively):
 *   - request-line = method SP request-target SP "HTTP/1." DIGIT CRLF, the
 *     method a token, the target visible ASCII without spaces;
 *   - header fields "name: value" CRLF, the name a token with no space
 *     before the colon, the value with optional whitespace trimmed and no
 *     control characters other than HTAB; no obsolete line folding;
 *   - lines end with CRLF or a bare LF (RFC 9112 section 2.2 allows it);
 *   - at most HTTP_MAX_HEADERS fields, the head at most max_head bytes;
 *   - exactly one Host field in HTTP/1.1 (at most one in HTTP/1.0), its
 *     value a valid uri-host with an optional port (RFC 9112 section 3.2:
 *     400 otherwise); an empty value is allowed.
 * Content-Length must be a plain decimal number (repeated fields must
 * agree). Transfer-Encoding is refused as unsupported: this parser reads
 * only Content-Length bodies.
 */
#ifndef GEV_EXAMPLES_HTTP_PARSER_H
#define GEV_EXAMPLES_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADERS 64

/* Results of http_parse_request(). Negative values map to responses
 * (http_error_response), as do the two a server decides itself. */
enum {
  HTTP_PARSE_INCOMPLETE = 0,    /* need more bytes */
  HTTP_PARSE_BAD = -1,          /* malformed: 400 Bad Request */
  HTTP_PARSE_TOO_LARGE = -2,    /* head or field count too big: 431 */
  HTTP_PARSE_UNSUPPORTED = -3,  /* Transfer-Encoding, HTTP/1.x > 1: 501 */
  HTTP_EXPECTATION_FAILED = -4, /* not from the parser: 417 */
  HTTP_CONTENT_TOO_LARGE = -5,  /* not from the parser: 413 */
};

typedef struct http_header {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
} http_header;

typedef struct http_request {
  const char *method;
  size_t method_len;
  const char *target;
  size_t target_len;
  int minor_version;       /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
  int keep_alive;          /* the connection stays open after this request */
  int has_body;            /* Content-Length was given */
  uint64_t content_length; /* body bytes following the head */
  size_t head_len;         /* bytes of request line + fields + blank line */
  size_t num_headers;
  http_header headers[HTTP_MAX_HEADERS];
} http_request;

/* Finds the end of the request head (the blank line) in buf[0..len).
 * *scanned is where the previous call stopped (start with 0); it is
 * advanced so that bytes are examined about once however the head
 * arrives. Returns the head length including the blank line, or 0 if the
 * head is not complete yet. */
size_t http_head_end(const char *buf, size_t len, size_t *scanned);

/* Parses one request head at the start of buf[0..len). max_head bounds the
 * head size in bytes. Returns the head length (> 0) with *req filled in,
 * HTTP_PARSE_INCOMPLETE when the head has not ended yet and is still
 * within max_head, or a negative HTTP_PARSE_* error. */
int http_parse_request(const char *buf, size_t len, size_t max_head,
                       http_request *req);

/* Case-insensitive lookup of a header field; NULL when absent. */
const http_header *http_find_header(const http_request *req, const char *name);

/* The canned responses of the example servers, shared so that the gev
 * server and the callback reference server send identical bytes. */
#define HTTP_HELLO_BODY "Hello, World!"

/* Writes the 200 response to req ("Hello, World!", with Connection: close
 * when the connection ends after it, keep-alive for a persistent HTTP/1.0
 * client) into buf. Returns its length, or 0 if size is too small. */
size_t http_hello_response(const http_request *req, char *buf, size_t size);

/* The complete response for an HTTP_PARSE_* error (400, 431, 501) or a
 * server's HTTP_EXPECTATION_FAILED (417) and HTTP_CONTENT_TOO_LARGE (413),
 * always with Connection: close. Sets *len. */
const char *http_error_response(int parse_error, size_t *len);

/* What the request's Expect field asks (RFC 9110 section 10.1.1). */
enum {
  HTTP_EXPECT_NONE = 0, /* no Expect, or 100-continue in HTTP/1.0 (ignored) */
  HTTP_EXPECT_CONTINUE, /* send 100 Continue before reading the body */
  HTTP_EXPECT_UNKNOWN,  /* an expectation the server cannot meet: 417 */
};
int http_expectation(const http_request *req);

/* The interim response to Expect: 100-continue. */
extern const char http_continue_response[];

#endif
