/* Additions to the socket API: the buffered reader, gather writes
 * (sendmsg, writev, sendall_iov), sendfile, and create_connection with a
 * source address. Real loopback sockets throughout. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "gev/sync.h"
#include "nettest.h"

static int fds;
static void begin(void) { fds = gev_test_fd_count(); }
static void end(void) { gev_test_all_clean(fds); }

/* A connected stream pair over a Unix socketpair. */
static void pair(gev_socket **a, gev_socket **b) {
  int sv[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  *a = gev_socket_wrap(sv[0]);
  *b = gev_socket_wrap(sv[1]);
  ck_assert(*a && *b);
}

typedef struct chunks {
  gev_socket *s;
  const char *const *parts;
  double pause;
} chunks;

/* Sends each part, pausing in between, then closes. */
static void *send_parts(void *arg) {
  chunks *c = arg;
  for (const char *const *p = c->parts; *p; p++) {
    gev_sleep(c->pause);
    ck_assert_int_eq(gev_socket_sendall(c->s, *p, strlen(*p), 0), 0);
  }
  gev_socket_close(c->s);
  return NULL;
}

/* readline into a buffer of size bytes must return exactly want. */
static void expect_line(gev_reader *r, size_t size, const char *want) {
  char line[64];
  ck_assert_int_eq(gev_reader_readline(r, line, size), (ssize_t)strlen(want));
  ck_assert_str_eq(line, want);
}

START_TEST(readline_assembles_and_splits) {
  begin();
  gev_socket *a, *b;
  pair(&a, &b);
  static const char *const parts[] = {
      "he", "llo\nwor", "ld\n", "a rather long line\n", "tail", NULL};
  static chunks c;
  c = (chunks){b, parts, 0.005};
  gev_greenlet *g = gev_spawn(send_parts, &c);
  gev_reader *r = gev_reader_new(a, 4); /* a tiny buffer grows as needed */
  ck_assert_ptr_nonnull(r);
  char line[8];
  expect_line(r, sizeof line, "hello\n");
  expect_line(r, sizeof line, "world\n");
  /* Longer than the limit: pieces of size - 1 bytes without '\n'. */
  expect_line(r, sizeof line, "a rathe");
  expect_line(r, sizeof line, "r long ");
  expect_line(r, sizeof line, "line\n");
  /* End of stream: the last bytes without '\n', then 0 for ever. */
  expect_line(r, sizeof line, "tail");
  expect_line(r, sizeof line, "");
  ck_assert_int_eq(gev_reader_readline(r, line, sizeof line), 0);
  ck_assert_int_eq(gev_reader_readline(r, line, 1), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_reader_readline(NULL, line, 8), -1);
  ck_assert_int_eq(errno, EINVAL);
  gev_reader_free(r);
  ck_assert_int_eq(gev_greenlet_join(g, 5), 0);
  gev_greenlet_unref(g);
  gev_socket_close(a);
  end();
}
END_TEST

START_TEST(timeouts_lose_nothing) {
  begin();
  gev_socket *a, *b;
  pair(&a, &b);
  gev_socket_settimeout(a, 0.02);
  gev_reader *r = gev_reader_new(a, 0);
  char line[64];
  ck_assert_int_eq(gev_socket_sendall(b, "par", 3, 0), 0);
  double t0 = gev_monotonic();
  ck_assert_int_eq(gev_reader_readline(r, line, sizeof line), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert(gev_monotonic() - t0 >= 0.02);
  ck_assert_int_eq(gev_reader_buffered(r), 3); /* kept */
  ck_assert_int_eq(gev_socket_sendall(b, "tial\nrest", 9, 0), 0);
  expect_line(r, sizeof line, "partial\n");
  /* Non-blocking socket: EAGAIN instead of waiting. */
  gev_socket_settimeout(a, 0);
  ck_assert_int_eq(gev_reader_readline(r, line, sizeof line), -1);
  ck_assert_int_eq(errno, EAGAIN);
  char buf[16];
  ck_assert_int_eq(gev_reader_read(r, buf, 2), 2);
  ck_assert_int_eq(memcmp(buf, "re", 2), 0);
  gev_socket_settimeout(a, 0.02);
  ck_assert_int_eq(gev_reader_read_exactly(r, buf, 5), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(gev_reader_buffered(r), 2);
  ck_assert_int_eq(gev_socket_sendall(b, "!!!", 3, 0), 0);
  ck_assert_int_eq(gev_reader_read_exactly(r, buf, 5), 5);
  ck_assert_int_eq(memcmp(buf, "st!!!", 5), 0);
  gev_socket_close(b);
  ck_assert_int_eq(gev_reader_read_exactly(r, buf, 5), 0); /* EOF */
  ck_assert_int_eq(gev_reader_read(r, buf, 5), 0);
  gev_reader_free(r);
  gev_socket_close(a);
  /* A closed socket has no reader. */
  pair(&a, &b);
  gev_socket_ref(a);
  gev_socket_close(a);
  ck_assert_ptr_null(gev_reader_new(a, 0));
  ck_assert_int_eq(errno, EBADF);
  gev_socket_unref(a);
  ck_assert_ptr_null(gev_reader_new(NULL, 0));
  ck_assert_int_eq(errno, EINVAL);
  gev_socket_close(b);
  end();
}
END_TEST

typedef struct slow_reader {
  gev_socket *s;
  size_t expect;
  uint32_t sum;
} slow_reader;

/* Reads everything in small bites with pauses, so the writer meets a
 * full socket buffer many times (partial writes). */
static void *read_slowly(void *arg) {
  slow_reader *sr = arg;
  char *buf = malloc(65536);
  size_t got = 0;
  int bites = 0;
  while (got < sr->expect) {
    ssize_t n = gev_socket_recv(sr->s, buf, 65536, 0);
    ck_assert_int_gt(n, 0);
    for (ssize_t i = 0; i < n; i++)
      sr->sum = sr->sum * 31 + (unsigned char)buf[i];
    got += (size_t)n;
    if (++bites % 8 == 0)
      gev_sleep(0.001);
  }
  free(buf);
  return NULL;
}

START_TEST(sendall_iov_survives_partial_writes) {
  begin();
  gev_socket *a, *b;
  nt_pair("127.0.0.1", &a, &b);
  enum { NBUF = 200, PIECE = 10007 };
  struct iovec iov[NBUF + 1];
  char *data = malloc((size_t)NBUF * PIECE);
  uint32_t want = 0;
  for (size_t i = 0; i < (size_t)NBUF * PIECE; i++) {
    data[i] = (char)(i * 7 + i / 13);
    want = want * 31 + (unsigned char)data[i];
  }
  for (int i = 0; i < NBUF; i++)
    iov[i] = (struct iovec){data + (size_t)i * PIECE, PIECE};
  iov[NBUF] = (struct iovec){NULL, 0}; /* empty buffers are skipped */
  static slow_reader sr;
  sr = (slow_reader){b, (size_t)NBUF * PIECE, 0};
  gev_greenlet *g = gev_spawn(read_slowly, &sr);
  ck_assert_int_eq(gev_socket_sendall_iov(a, iov, NBUF + 1, 0), 0);
  ck_assert_int_eq(gev_greenlet_join(g, 10), 0);
  ck_assert_uint_eq(sr.sum, want);
  /* iov untouched */
  ck_assert_ptr_eq(iov[3].iov_base, data + 3 * PIECE);
  ck_assert_uint_eq(iov[3].iov_len, PIECE);
  gev_greenlet_unref(g);
  /* writev and sendmsg: one gather write, a byte count. */
  struct iovec two[2] = {{"ab", 2}, {"cde", 3}};
  ck_assert_int_eq(gev_socket_writev(a, two, 2), 5);
  struct msghdr m = {.msg_iov = two, .msg_iovlen = 1};
  ck_assert_int_eq(gev_socket_sendmsg(a, &m, 0), 2);
  char got[8];
  nt_recv_all(b, got, 7);
  ck_assert_int_eq(memcmp(got, "abcdeab", 7), 0);
  ck_assert_int_eq(gev_socket_sendmsg(a, NULL, 0), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_socket_writev(a, NULL, 1), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_socket_sendall_iov(a, two, -1, 0), -1);
  ck_assert_int_eq(errno, EINVAL);
  /* A closed peer: EPIPE, not SIGPIPE. */
  gev_socket_close(b);
  int rc;
  while ((rc = gev_socket_sendall_iov(a, iov, NBUF, 0)) == 0)
    ;
  ck_assert(errno == EPIPE || errno == ECONNRESET);
  gev_socket_close(a);
  free(data);
  end();
}
END_TEST

/* A temporary regular file holding n bytes of a known pattern. */
static int temp_file(size_t n) {
  char path[] = "/tmp/gev-sendfile-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  unlink(path);
  char *buf = malloc(n);
  for (size_t i = 0; i < n; i++)
    buf[i] = (char)(i % 251);
  ck_assert_int_eq(write(fd, buf, n), (ssize_t)n);
  free(buf);
  return fd;
}

START_TEST(sendfile_whole_and_ranges) {
  begin();
  gev_socket *a, *b;
  nt_pair("127.0.0.1", &a, &b);
  enum { SIZE = 3 * 1024 * 1024 };
  int fd = temp_file(SIZE);
  static slow_reader sr;
  sr = (slow_reader){b, SIZE, 0};
  uint32_t want = 0;
  for (size_t i = 0; i < SIZE; i++)
    want = want * 31 + (unsigned char)(i % 251);
  gev_greenlet *g = gev_spawn(read_slowly, &sr);
  off_t off = 0;
  ck_assert_int_eq(gev_socket_sendfile(a, fd, &off, 0), SIZE); /* to EOF */
  ck_assert_int_eq(off, SIZE);
  ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), SIZE); /* from write(): kept */
  ck_assert_int_eq(gev_greenlet_join(g, 10), 0);
  ck_assert_uint_eq(sr.sum, want);
  gev_greenlet_unref(g);
  /* A range, by offset; past the end: what there is. */
  off = 1000;
  ck_assert_int_eq(gev_socket_sendfile(a, fd, &off, 10), 10);
  ck_assert_int_eq(off, 1010);
  char got[16];
  nt_recv_all(b, got, 10);
  for (int i = 0; i < 10; i++)
    ck_assert_int_eq((unsigned char)got[i], (1000 + i) % 251);
  off = SIZE - 3;
  ck_assert_int_eq(gev_socket_sendfile(a, fd, &off, 100), 3);
  nt_recv_all(b, got, 3);
  /* NULL offset: the file's own position, advanced. */
  lseek(fd, SIZE - 5, SEEK_SET);
  ck_assert_int_eq(gev_socket_sendfile(a, fd, NULL, 0), 5);
  ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), SIZE);
  nt_recv_all(b, got, 5);
  /* Misuse. */
  off = -1;
  ck_assert_int_eq(gev_socket_sendfile(a, fd, &off, 1), -1);
  ck_assert_int_eq(errno, EINVAL);
  int p[2];
  ck_assert_int_eq(pipe(p), 0);
  ck_assert_int_eq(gev_socket_sendfile(a, p[1], NULL, 1), -1);
  ck_assert(errno == EINVAL || errno == EBADF);
  close(p[0]);
  close(p[1]);
  close(fd);
  gev_socket_close(a);
  gev_socket_close(b);
  end();
}
END_TEST

START_TEST(create_connection_from_a_source) {
  begin();
  int port, sport;
  gev_socket *l = nt_listen("127.0.0.1", &port);
  /* A free source port: bind, read it, close. */
  gev_socket *tmp = nt_listen("127.0.0.1", &sport);
  gev_socket_close(tmp);
  gev_socket *c =
      gev_create_connection_from("127.0.0.1", port, 5, "127.0.0.1", sport);
  ck_assert_msg(c != NULL, "connect: %s", strerror(errno));
  gev_socket *s = gev_socket_accept(l, NULL, NULL);
  struct sockaddr_in peer;
  socklen_t len = sizeof peer;
  ck_assert_int_eq(gev_socket_getpeername(s, (struct sockaddr *)&peer, &len),
                   0);
  ck_assert_int_eq(ntohs(peer.sin_port), sport);
  gev_socket_close(s);
  gev_socket_close(c);
  /* Through a name, wildcard source host. */
  c = gev_create_connection_from("localhost", port, 5, NULL, 0);
  ck_assert_msg(c != NULL, "connect: %s", strerror(errno));
  gev_socket_close(c);
  s = gev_socket_accept(l, NULL, NULL);
  gev_socket_close(s);
  /* Family mismatch, non-numeric source, bad port. */
  ck_assert_ptr_null(
      gev_create_connection_from("127.0.0.1", port, 5, "::1", 0));
  ck_assert_int_eq(errno, EAFNOSUPPORT);
  ck_assert_ptr_null(
      gev_create_connection_from("localhost", port, 5, "example.org", 0));
  ck_assert_int_eq(errno, EAFNOSUPPORT);
  ck_assert_ptr_null(
      gev_create_connection_from("127.0.0.1", port, 5, "127.0.0.1", 70000));
  ck_assert_int_eq(errno, EINVAL);
  gev_socket_close(l);
  end();
}
END_TEST

/* On a pipe end gather writes are writev(2); sendfile is refused. */
START_TEST(pipe_ends) {
  begin();
  int p[2];
  ck_assert_int_eq(pipe(p), 0);
  gev_socket *r = gev_socket_wrap(p[0]), *w = gev_socket_wrap(p[1]);
  ck_assert(r && w);
  struct iovec iov[3] = {{"pi", 2}, {"", 0}, {"pe\n", 3}};
  ck_assert_int_eq(gev_socket_sendall_iov(w, iov, 3, 0), 0);
  ck_assert_int_eq(gev_socket_writev(w, iov, 1), 2);
  gev_reader *rd = gev_reader_new(r, 0);
  expect_line(rd, 64, "pipe\n");
  struct msghdr m = {.msg_iov = iov, .msg_iovlen = 1, .msg_controllen = 8};
  ck_assert_int_eq(gev_socket_sendmsg(w, &m, 0), -1);
  ck_assert_int_eq(errno, EOPNOTSUPP);
  off_t off = 0;
  ck_assert_int_eq(gev_socket_sendfile(w, p[0], &off, 1), -1);
  ck_assert_int_eq(errno, EOPNOTSUPP);
  gev_socket_close(w);
  char buf[8];
  ck_assert_int_eq(gev_reader_read(rd, buf, sizeof buf), 2);
  ck_assert_int_eq(gev_reader_read(rd, buf, sizeof buf), 0);
  gev_reader_free(rd);
  gev_socket_close(r);
  end();
}
END_TEST

static Suite *socket_api_suite(void) {
  Suite *s = suite_create("socket_api");
  TCase *tc = tcase_create("socket_api");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, readline_assembles_and_splits);
  tcase_add_test(tc, timeouts_lose_nothing);
  tcase_add_test(tc, sendall_iov_survives_partial_writes);
  tcase_add_test(tc, sendfile_whole_and_ranges);
  tcase_add_test(tc, create_connection_from_a_source);
  tcase_add_test(tc, pipe_ends);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(socket_api_suite)
