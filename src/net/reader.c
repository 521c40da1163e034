/*
 * The buffered reader (gev/net.h): readline, read and read_exactly over a
 * socket, for line-based protocols (gevent's makefile('rb')). Built on the
 * public socket calls only: every wait is a gev_socket_recv, so the
 * socket's timeout, kills and Timeout scopes behave as for recv.
 *
 * The buffer holds bytes read from the socket and not yet returned, at
 * buf[start, start + len). It grows when one call needs more than it can
 * hold (a long line piece, a large read_exactly) and only moves its bytes
 * to the front before a recv, so returning a line costs one memcpy. A
 * failed recv leaves whatever was buffered in place: nothing is lost.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gev/net.h"

#define READER_DEFAULT_SIZE 8192

struct gev_reader {
  gev_socket *s; /* ro: a reference of ours */
  char *buf;     /* private: heap (the shared-stack rule) */
  size_t cap;    /* private: bytes allocated */
  size_t start;  /* private: first buffered byte */
  size_t len;    /* private: bytes buffered */
  int eof;       /* private: the socket reported end of stream */
};

gev_reader *gev_reader_new(gev_socket *s, size_t bufsize) {
  if (gev_socket_fileno(s) < 0)
    return NULL; /* EINVAL or EBADF */
  gev_reader *r = calloc(1, sizeof *r);
  if (!r)
    goto out_nomem;
  r->cap = bufsize ? bufsize : READER_DEFAULT_SIZE;
  if (!(r->buf = malloc(r->cap)))
    goto out_free;
  r->s = gev_socket_ref(s);
  return r;
out_free:
  free(r);
out_nomem:
  errno = ENOMEM;
  return NULL;
}

void gev_reader_free(gev_reader *r) {
  if (!r)
    return;
  gev_socket_unref(r->s);
  free(r->buf);
  free(r);
}

ssize_t gev_reader_buffered(const gev_reader *r) {
  if (!r) {
    errno = EINVAL;
    return -1;
  }
  return (ssize_t)r->len;
}

/* Makes room for want buffered bytes in all: moves the buffered bytes to
 * the front and grows the buffer if needed. 0 or -1 (ENOMEM). */
static int make_room(gev_reader *r, size_t want) {
  if (r->start > 0) {
    memmove(r->buf, r->buf + r->start, r->len);
    r->start = 0;
  }
  if (want <= r->cap)
    return 0;
  char *b = realloc(r->buf, want);
  if (!b) {
    errno = ENOMEM;
    return -1;
  }
  r->buf = b;
  r->cap = want;
  return 0;
}

/* One recv into the buffer, which is made able to hold want bytes (at
 * least one more than now). 1 read something, 0 end of stream, -1 error
 * (the buffered bytes stay). */
static int fill(gev_reader *r, size_t want) {
  if (want <= r->len)
    want = r->len + 1;
  if (make_room(r, want) < 0)
    return -1;
  ssize_t n = gev_socket_recv(r->s, r->buf + r->len, r->cap - r->len, 0);
  if (n < 0)
    return -1;
  if (n == 0) {
    r->eof = 1;
    return 0;
  }
  r->len += (size_t)n;
  return 1;
}

/* Hands out n buffered bytes into out. */
static size_t take(gev_reader *r, void *out, size_t n) {
  memcpy(out, r->buf + r->start, n);
  r->start += n;
  r->len -= n;
  if (r->len == 0)
    r->start = 0;
  return n;
}

static int reader_check(const gev_reader *r, const void *buf) {
  if (!r || !buf) {
    errno = EINVAL;
    return -1;
  }
  return 0;
}

ssize_t gev_reader_readline(gev_reader *r, char *buf, size_t size) {
  if (reader_check(r, buf) < 0 || size < 2) {
    errno = EINVAL;
    return -1;
  }
  size_t limit = size - 1, n;
  for (;;) {
    size_t scan = r->len < limit ? r->len : limit;
    const char *nl = memchr(r->buf + r->start, '\n', scan);
    if (nl)
      n = (size_t)(nl - (r->buf + r->start)) + 1; /* a whole line */
    else if (r->len >= limit || (r->eof && r->len > 0))
      n = scan; /* a piece of a long line, or the last bytes */
    else if (r->eof)
      n = 0;
    else if (fill(r, limit) < 0)
      return -1;
    else
      continue;
    buf[take(r, buf, n)] = '\0';
    return (ssize_t)n;
  }
}

ssize_t gev_reader_read(gev_reader *r, void *buf, size_t len) {
  if (reader_check(r, buf) < 0)
    return -1;
  if (len == 0)
    return 0;
  if (r->len == 0 && !r->eof && fill(r, 0) < 0)
    return -1;
  return (ssize_t)take(r, buf, r->len < len ? r->len : len);
}

ssize_t gev_reader_read_exactly(gev_reader *r, void *buf, size_t len) {
  if (reader_check(r, buf) < 0)
    return -1;
  while (r->len < len && !r->eof)
    if (fill(r, len) < 0)
      return -1;
  return (ssize_t)take(r, buf, r->len < len ? r->len : len);
}
