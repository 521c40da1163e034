/* The data calls of the cooperative libc: every read and write call parks
 * a greenlet on a blocking socket while others run, completes as the
 * blocking call would, honours SO_RCVTIMEO/SO_SNDTIMEO, and is interrupted
 * by kill, Timeout scopes, close and dup2. accept, accept4 and connect;
 * pipes; and the places where the real call must run unchanged. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "patchtest.h"

/* ---- Every read call parks until data comes ------------------------------ */

enum read_kind { READ, READV, RECV, RECVFROM, RECVMSG };

static ssize_t read_call(enum read_kind kind, int fd, char *buf, size_t len) {
  struct iovec iov[2] = {{buf, len / 2}, {buf + len / 2, len - len / 2}};
  struct sockaddr_storage from;
  socklen_t fromlen = sizeof from;
  struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
  switch (kind) {
  case READ:
    return read(fd, buf, len);
  case READV:
    return readv(fd, iov, 2);
  case RECV:
    return recv(fd, buf, len, 0);
  case RECVFROM:
    return recvfrom(fd, buf, len, 0, (struct sockaddr *)&from, &fromlen);
  case RECVMSG:
    return recvmsg(fd, &msg, 0);
  }
  return -1;
}

/* What a parked call reported, in heap storage its greenlet fills. */
typedef struct result {
  int kind;
  int fd;
  size_t want; /* bytes to read; 0: as many as fit */
  ssize_t r;
  int err;
  double took;
  char buf[64];
} result;

static result *result_new(int kind, int fd) {
  result *res = calloc(1, sizeof *res);
  ck_assert_ptr_nonnull(res);
  res->kind = kind;
  res->fd = fd;
  return res;
}

static void *reader(void *arg) {
  result *res = arg;
  double t0 = pt_now();
  res->r = read_call(res->kind, res->fd, res->buf,
                     res->want ? res->want : sizeof res->buf - 1);
  res->err = errno;
  res->took = pt_now() - t0;
  return NULL;
}

static void check_read_parks(enum read_kind kind) {
  int fds = gev_test_fd_count(), sv[2];
  pt_socketpair(sv);
  result *res = result_new(kind, sv[0]);
  pt_ticker *ticker = pt_ticker_start();
  pt_spawn(reader, res);
  pt_write_later(sv[1], "hello", 5, 0.05);
  pt_join_all(5);
  ck_assert_int_eq(res->r, 5);
  ck_assert_str_eq(res->buf, "hello");
  ck_assert(res->took >= 0.04); /* the writer's gev_sleep(0.05) */
  ck_assert_int_gt(pt_ticker_stop(ticker), 0);
  /* the program still sees a blocking socket; the kernel does not */
  ck_assert_int_eq(fcntl(sv[0], F_GETFL) & O_NONBLOCK, 0);
  ck_assert(pt_kernel_nonblocking(sv[0]));
  free(res);
  pt_close_pair(sv);
  pt_all_clean(fds);
}

START_TEST(read_parks) { check_read_parks(READ); }
END_TEST
START_TEST(readv_parks) { check_read_parks(READV); }
END_TEST
START_TEST(recv_parks) { check_read_parks(RECV); }
END_TEST
START_TEST(recvfrom_parks) { check_read_parks(RECVFROM); }
END_TEST
START_TEST(recvmsg_parks) { check_read_parks(RECVMSG); }
END_TEST

/* ---- Every write call parks until there is room, and sends it all -------- */

enum write_kind { WRITE, WRITEV, SEND, SENDTO, SENDMSG };
#define BIG (256 * 1024)

static ssize_t write_call(enum write_kind kind, int fd, const char *buf,
                          size_t len) {
  struct iovec iov[2] = {{(void *)buf, len / 3},
                         {(void *)(buf + len / 3), len - len / 3}};
  struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
  switch (kind) {
  case WRITE:
    return write(fd, buf, len);
  case WRITEV:
    return writev(fd, iov, 2);
  case SEND:
    return send(fd, buf, len, 0);
  case SENDTO:
    return sendto(fd, buf, len, 0, NULL, 0);
  case SENDMSG:
    return sendmsg(fd, &msg, 0);
  }
  return -1;
}

static void *writer(void *arg) {
  result *res = arg;
  char *big = calloc(1, BIG);
  double t0 = pt_now();
  res->r = big ? write_call(res->kind, res->fd, big, BIG) : -1;
  res->err = errno;
  res->took = pt_now() - t0;
  free(big);
  return NULL;
}

static void check_write_parks(enum write_kind kind) {
  int fds = gev_test_fd_count(), sv[2];
  pt_socketpair(sv);
  size_t queued = pt_fill(sv[0]);
  result *res = result_new(kind, sv[0]);
  pt_ticker *ticker = pt_ticker_start();
  pt_spawn(writer, res);
  gev_greenlet *drain = pt_drain_later(sv[1], queued + BIG, 0.05);
  void *drained;
  ck_assert_int_eq(gev_greenlet_get(drain, 5, &drained), 0);
  pt_join_all(5);
  ck_assert_int_eq(res->r, BIG); /* a blocking send moves every byte */
  ck_assert_uint_eq((uintptr_t)drained, queued + BIG);
  ck_assert(res->took >= 0.04); /* the drainer's gev_sleep(0.05) */
  ck_assert_int_gt(pt_ticker_stop(ticker), 0);
  free(res);
  pt_close_pair(sv);
  pt_all_clean(fds);
}

START_TEST(write_parks) { check_write_parks(WRITE); }
END_TEST
START_TEST(writev_parks) { check_write_parks(WRITEV); }
END_TEST
START_TEST(send_parks) { check_write_parks(SEND); }
END_TEST
START_TEST(sendto_parks) { check_write_parks(SENDTO); }
END_TEST
START_TEST(sendmsg_parks) { check_write_parks(SENDMSG); }
END_TEST

/* ---- Blocking semantics kept --------------------------------------------- */

/* MSG_WAITALL on a stream socket waits for every byte, across writes. */
START_TEST(recv_waitall_gathers) {
  int fds = gev_test_fd_count(), sv[2];
  pt_socketpair(sv);
  pt_write_later(sv[1], "abc", 3, 0.02);
  pt_write_later(sv[1], "def", 3, 0.04);
  pt_write_later(sv[1], "ghi", 3, 0.06);
  char buf[16] = {0};
  ck_assert_int_eq(recv(sv[0], buf, 9, MSG_WAITALL), 9);
  ck_assert_str_eq(buf, "abcdefghi");
  pt_join_all(5);
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

/* MSG_DONTWAIT asks for a non-blocking call: no park. */
START_TEST(recv_dontwait_does_not_park) {
  int fds = gev_test_fd_count(), sv[2];
  char c;
  pt_socketpair(sv);
  ck_assert_int_eq(recv(sv[0], &c, 1, MSG_DONTWAIT), -1);
  ck_assert_int_eq(errno, EAGAIN);
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

/* A datagram socket: one recv returns one datagram, even with WAITALL. */
START_TEST(datagram_recv_one) {
  int fds = gev_test_fd_count(), sv[2];
  char buf[32] = {0};
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
  pt_write_later(sv[1], "one", 3, 0.02);
  ck_assert_int_eq(recv(sv[0], buf, sizeof buf, MSG_WAITALL), 3);
  ck_assert_str_eq(buf, "one");
  pt_join_all(5);
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

/* ---- Socket timeouts ----------------------------------------------------- */

START_TEST(so_rcvtimeo_expires_eagain) {
  int fds = gev_test_fd_count(), sv[2];
  struct timeval tv = {0, 100000};
  char c;
  pt_socketpair(sv);
  ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv),
                   0);
  pt_ticker *ticker = pt_ticker_start();
  double t0 = pt_now();
  ck_assert_int_eq(recv(sv[0], &c, 1, 0), -1);
  ck_assert_int_eq(errno, EAGAIN);
  ck_assert(pt_now() - t0 >= 0.1);
  ck_assert_int_gt(pt_ticker_stop(ticker), 0);
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

/* Set before gev knew the socket: read from the kernel when first needed. */
START_TEST(so_sndtimeo_expires_eagain) {
  int fds = gev_test_fd_count(), sv[2];
  struct timeval tv = {0, 100000};
  static char buf[65536];
  pt_socketpair(sv);
  ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv),
                   0);
  pt_fill(sv[0]);
  double t0 = pt_now();
  ck_assert_int_eq(send(sv[0], buf, sizeof buf, 0), -1);
  ck_assert_int_eq(errno, EAGAIN);
  ck_assert(pt_now() - t0 >= 0.1);
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

/* ---- Kill, Timeout scopes, close and dup2 interrupt a parked call -------- */

START_TEST(kill_interrupts_read) {
  int fds = gev_test_fd_count(), sv[2];
  pt_socketpair(sv);
  result *res = result_new(READ, sv[0]);
  gev_greenlet *g = pt_spawn(reader, res);
  ck_assert_int_eq(gev_sleep(0.02), 0);
  ck_assert_int_eq(gev_greenlet_kill(g, 1, 5), 0);
  ck_assert_int_eq(res->r, -1);
  ck_assert_int_eq(res->err, ECANCELED);
  free(res);
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

static void *read_in_scope(void *arg) {
  result *res = arg;
  gev_timeout *t = gev_timeout_start(0.05);
  double t0 = pt_now();
  res->r = read(res->fd, res->buf, 1);
  res->err = errno;
  res->took = pt_now() - t0;
  gev_timeout_cancel(t);
  return NULL;
}

START_TEST(timeout_scope_interrupts_read) {
  int fds = gev_test_fd_count(), sv[2];
  pt_socketpair(sv);
  result *res = result_new(READ, sv[0]);
  pt_spawn(read_in_scope, res);
  pt_join_all(5);
  ck_assert_int_eq(res->r, -1);
  ck_assert_int_eq(res->err, ETIMEDOUT);
  ck_assert(res->took >= 0.04); /* gev's own Timeout */
  free(res);
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

START_TEST(close_wakes_reader_ebadf) {
  int fds = gev_test_fd_count(), sv[2];
  pt_socketpair(sv);
  result *res = result_new(READ, sv[0]);
  pt_spawn(reader, res);
  pt_close_later(sv[0], 0.02);
  pt_join_all(5);
  ck_assert_int_eq(res->r, -1);
  ck_assert_int_eq(res->err, EBADF);
  free(res);
  close(sv[1]);
  pt_all_clean(fds);
}
END_TEST

static void *dup2_later(void *arg) {
  int *fd = arg; /* {from, onto} */
  if (gev_sleep(0.02) < 0)
    return P(-1);
  return P(dup2(fd[0], fd[1]));
}

START_TEST(dup2_wakes_reader_ebadf) {
  int fds = gev_test_fd_count(), sv[2], other[2];
  pt_socketpair(sv);
  pt_socketpair(other);
  result *res = result_new(READ, sv[0]);
  int *move = malloc(2 * sizeof *move);
  move[0] = other[0];
  move[1] = sv[0];
  pt_spawn(reader, res);
  gev_greenlet *g = pt_spawn(dup2_later, move);
  void *v;
  ck_assert_int_eq(gev_greenlet_get(g, 5, &v), 0);
  ck_assert_int_eq(I(v), sv[0]);
  pt_join_all(5);
  ck_assert_int_eq(res->r, -1);
  ck_assert_int_eq(res->err, EBADF);
  /* sv[0] is now other[0]'s socket, blocking for the program */
  ck_assert_int_eq(fcntl(sv[0], F_GETFL) & O_NONBLOCK, 0);
  free(move);
  free(res);
  pt_close_pair(sv);
  pt_close_pair(other);
  pt_all_clean(fds);
}
END_TEST

/* dup3 over a parked fd wakes it too; dup copies the program's view. */
START_TEST(dup3_and_dup_keep_the_view) {
  int fds = gev_test_fd_count(), sv[2], other[2];
  pt_socketpair(sv);
  pt_socketpair(other);
  pt_write_later(sv[1], "x", 1, 0.01);
  char c;
  ck_assert_int_eq(read(sv[0], &c, 1), 1); /* made non-blocking underneath */
  int d = dup(sv[0]);
  ck_assert_int_ge(d, 0);
  ck_assert_int_eq(fcntl(d, F_GETFL) & O_NONBLOCK, 0);
  ck_assert(pt_kernel_nonblocking(d));
  pt_write_later(sv[1], "y", 1, 0.02);
  ck_assert_int_eq(read(d, &c, 1), 1); /* the duplicate parks as well */
  ck_assert_int_eq(c, 'y');
  result *res = result_new(READ, other[0]);
  pt_spawn(reader, res);
  ck_assert_int_eq(gev_sleep(0.02), 0);
  ck_assert_int_eq(dup3(sv[0], other[0], O_CLOEXEC), other[0]);
  pt_join_all(5);
  ck_assert_int_eq(res->err, EBADF);
  ck_assert_int_eq(fcntl(other[0], F_GETFL) & O_NONBLOCK, 0);
  free(res);
  close(d);
  pt_close_pair(sv);
  pt_close_pair(other);
  pt_all_clean(fds);
}
END_TEST

/* ---- The program's view of O_NONBLOCK
 * ---------------------------------------- */

typedef int (*fcntl_fn)(int, int, ...);

static void check_fcntl_view(fcntl_fn fn) {
  int fds = gev_test_fd_count(), sv[2];
  char c;
  pt_socketpair(sv);
  pt_write_later(sv[1], "a", 1, 0.01);
  ck_assert_int_eq(read(sv[0], &c, 1), 1);
  ck_assert(pt_kernel_nonblocking(sv[0]));
  int fl = fn(sv[0], F_GETFL);
  ck_assert_int_eq(fl & O_NONBLOCK, 0);
  /* the program asks for non-blocking: it gets EAGAIN, no park */
  ck_assert_int_eq(fn(sv[0], F_SETFL, fl | O_NONBLOCK), 0);
  ck_assert_int_ne(fn(sv[0], F_GETFL) & O_NONBLOCK, 0);
  ck_assert_int_eq(read(sv[0], &c, 1), -1);
  ck_assert_int_eq(errno, EAGAIN);
  /* and back to blocking: it parks again, still non-blocking underneath */
  ck_assert_int_eq(fn(sv[0], F_SETFL, fl), 0);
  ck_assert_int_eq(fn(sv[0], F_GETFL) & O_NONBLOCK, 0);
  ck_assert(pt_kernel_nonblocking(sv[0]));
  pt_write_later(sv[1], "b", 1, 0.02);
  ck_assert_int_eq(read(sv[0], &c, 1), 1);
  ck_assert_int_eq(c, 'b');
  pt_join_all(5);
  pt_close_pair(sv);
  pt_all_clean(fds);
}

/* Tests are built with _FILE_OFFSET_BITS=64, so fcntl here is glibc's
 * fcntl64; the plain name is reached through dlsym. */
START_TEST(fcntl64_view) { check_fcntl_view(fcntl); }
END_TEST

START_TEST(fcntl_view) {
  fcntl_fn plain = (fcntl_fn)dlsym(RTLD_DEFAULT, "fcntl");
  ck_assert_ptr_nonnull(plain);
  check_fcntl_view(plain);
}
END_TEST

START_TEST(ioctl_fionbio_view) {
  int fds = gev_test_fd_count(), sv[2], on = 1, off = 0;
  char c;
  pt_socketpair(sv);
  pt_write_later(sv[1], "a", 1, 0.01);
  ck_assert_int_eq(read(sv[0], &c, 1), 1);
  ck_assert_int_eq(ioctl(sv[0], FIONBIO, &on), 0);
  ck_assert_int_ne(fcntl(sv[0], F_GETFL) & O_NONBLOCK, 0);
  ck_assert_int_eq(recv(sv[0], &c, 1, 0), -1);
  ck_assert_int_eq(errno, EAGAIN);
  ck_assert_int_eq(ioctl(sv[0], FIONBIO, &off), 0);
  ck_assert_int_eq(fcntl(sv[0], F_GETFL) & O_NONBLOCK, 0);
  ck_assert(pt_kernel_nonblocking(sv[0]));
  pt_write_later(sv[1], "b", 1, 0.02);
  ck_assert_int_eq(recv(sv[0], &c, 1, 0), 1);
  pt_join_all(5);
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

/* A socket the program made non-blocking itself stays its own business. */
START_TEST(user_nonblocking_passes_through) {
  int fds = gev_test_fd_count(), sv[2];
  char c;
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  ck_assert_int_eq(read(sv[0], &c, 1), -1);
  ck_assert_int_eq(errno, EAGAIN);
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

/* ---- accept, accept4, connect
 * ------------------------------------------------ */

typedef struct unix_listener {
  char dir[64];
  struct sockaddr_un addr;
  int fd;
} unix_listener;

static void listen_unix(unix_listener *l, int backlog) {
  strcpy(l->dir, "/tmp/gev-patch-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(l->dir));
  memset(&l->addr, 0, sizeof l->addr);
  l->addr.sun_family = AF_UNIX;
  snprintf(l->addr.sun_path, sizeof l->addr.sun_path, "%s/s", l->dir);
  l->fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ck_assert_int_ge(l->fd, 0);
  ck_assert_int_eq(bind(l->fd, (struct sockaddr *)&l->addr, sizeof l->addr), 0);
  ck_assert_int_eq(listen(l->fd, backlog), 0);
}

static void unlisten_unix(unix_listener *l) {
  close(l->fd);
  unlink(l->addr.sun_path);
  rmdir(l->dir);
}

static void *connect_later(void *arg) {
  unix_listener *l = arg;
  int fd;
  if (gev_sleep(0.03) < 0 || (fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
    return P(-1);
  if (connect(fd, (struct sockaddr *)&l->addr, sizeof l->addr) < 0) {
    close(fd);
    return P(-1);
  }
  return P(fd);
}

static void check_accept(int four) {
  int fds = gev_test_fd_count();
  unix_listener *l = calloc(1, sizeof *l);
  listen_unix(l, 8);
  pt_ticker *ticker = pt_ticker_start();
  gev_greenlet *c = pt_spawn(connect_later, l);
  double t0 = pt_now();
  int fd = four ? accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)
                : accept(l->fd, NULL, NULL);
  ck_assert_int_ge(fd, 0);
  ck_assert(pt_now() - t0 >= 0.02); /* the connector's gev_sleep(0.03) */
  ck_assert_int_gt(pt_ticker_stop(ticker), 0);
  ck_assert_int_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, four ? O_NONBLOCK : 0);
  void *peer;
  ck_assert_int_eq(gev_greenlet_get(c, 5, &peer), 0);
  ck_assert_int_ge(I(peer), 0);
  ck_assert_int_eq(write(I(peer), "z", 1), 1);
  char ch;
  if (four) { /* the program's non-blocking socket: it polls itself */
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ck_assert_int_eq(poll(&p, 1, 5000), 1);
  }
  ck_assert_int_eq(read(fd, &ch, 1), 1);
  close(fd);
  close(I(peer));
  unlisten_unix(l);
  free(l);
  pt_all_clean(fds);
}

START_TEST(accept_parks) { check_accept(0); }
END_TEST
START_TEST(accept4_parks) { check_accept(1); }
END_TEST

static void *accept_later(void *arg) {
  unix_listener *l = arg;
  if (gev_sleep(0.05) < 0)
    return P(-1);
  return P(accept(l->fd, NULL, NULL));
}

/* A Unix listener with a full backlog: the blocking connect waits for
 * room (EAGAIN underneath), and completes once a connection is taken. */
START_TEST(connect_waits_for_backlog_room) {
  int fds = gev_test_fd_count();
  unix_listener *l = calloc(1, sizeof *l);
  listen_unix(l, 0);
  int first = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  ck_assert_int_eq(connect(first, (struct sockaddr *)&l->addr, sizeof l->addr),
                   0);
  int second = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int r = connect(second, (struct sockaddr *)&l->addr, sizeof l->addr);
  if (r == 0) { /* a kernel that queues one more: fill it too */
    close(first);
    first = second;
    second = -1;
  } else {
    ck_assert_int_eq(errno, EAGAIN);
  }
  gev_greenlet *acc = pt_spawn(accept_later, l);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  double t0 = pt_now();
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&l->addr, sizeof l->addr), 0);
  ck_assert(pt_now() - t0 >= 0.04); /* the acceptor's gev_sleep(0.05) */
  void *a;
  ck_assert_int_eq(gev_greenlet_get(acc, 5, &a), 0);
  ck_assert_int_ge(I(a), 0);
  close(I(a));
  close(fd);
  close(first);
  if (second >= 0)
    close(second);
  unlisten_unix(l);
  free(l);
  pt_all_clean(fds);
}
END_TEST

/* TCP over loopback, the blocking way. */
START_TEST(connect_tcp_loopback) {
  int fds = gev_test_fd_count();
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sin;
  ck_assert_int_eq(bind(l, (struct sockaddr *)&sin, sizeof sin), 0);
  ck_assert_int_eq(listen(l, 8), 0);
  ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sin, &len), 0);
  int c = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_eq(connect(c, (struct sockaddr *)&sin, sizeof sin), 0);
  int s = accept(l, NULL, NULL);
  ck_assert_int_ge(s, 0);
  ck_assert_int_eq(send(c, "ping", 4, 0), 4);
  char buf[8] = {0};
  ck_assert_int_eq(recv(s, buf, 4, MSG_WAITALL), 4);
  ck_assert_str_eq(buf, "ping");
  /* refused: the error comes back from SO_ERROR */
  close(l);
  int d = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_eq(connect(d, (struct sockaddr *)&sin, sizeof sin), -1);
  ck_assert_int_eq(errno, ECONNREFUSED);
  close(d);
  close(c);
  close(s);
  pt_all_clean(fds);
}
END_TEST

/* SO_SNDTIMEO bounds a blocking connect; expiry reports EINPROGRESS as the
 * kernel does. The Unix listener's full backlog keeps it waiting. */
START_TEST(connect_so_sndtimeo) {
  int fds = gev_test_fd_count();
  unix_listener *l = calloc(1, sizeof *l);
  struct timeval tv = {0, 100000};
  listen_unix(l, 0);
  int fill[2], nfill = 0;
  for (int i = 0; i < 2; i++) {
    fill[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    nfill++;
    if (connect(fill[i], (struct sockaddr *)&l->addr, sizeof l->addr) < 0)
      break;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
  double t0 = pt_now();
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&l->addr, sizeof l->addr),
                   -1);
  ck_assert_int_eq(errno, EAGAIN); /* a Unix socket's way to time out */
  ck_assert(pt_now() - t0 >= 0.1);
  close(fd);
  for (int i = 0; i < nfill; i++)
    close(fill[i]);
  unlisten_unix(l);
  free(l);
  pt_all_clean(fds);
}
END_TEST

/* ---- Pipes: cooperative, never made non-blocking
 * ------------------------------ */

START_TEST(pipe_read_parks) {
  int fds = gev_test_fd_count(), p[2];
  ck_assert_int_eq(pipe(p), 0);
  result *res = result_new(READ, p[0]);
  pt_ticker *ticker = pt_ticker_start();
  pt_spawn(reader, res);
  pt_write_later(p[1], "piped", 5, 0.05);
  pt_join_all(5);
  ck_assert_int_eq(res->r, 5);
  ck_assert_str_eq(res->buf, "piped");
  ck_assert_int_gt(pt_ticker_stop(ticker), 0);
  ck_assert(!pt_kernel_nonblocking(p[0]));
  ck_assert(!pt_kernel_nonblocking(p[1]));
  free(res);
  pt_close_pair(p);
  pt_all_clean(fds);
}
END_TEST

/* A write far larger than the pipe goes through whole, in pieces, while
 * the reader drains it. */
START_TEST(pipe_big_write) {
  int fds = gev_test_fd_count(), p[2];
  size_t n = 1 << 20;
  char *big = calloc(1, n);
  ck_assert_int_eq(pipe(p), 0);
  gev_greenlet *drain = pt_drain_later(p[0], n, 0.02);
  ck_assert_int_eq(write(p[1], big, n), (ssize_t)n);
  void *got;
  ck_assert_int_eq(gev_greenlet_get(drain, 5, &got), 0);
  ck_assert_uint_eq((uintptr_t)got, n);
  ck_assert(!pt_kernel_nonblocking(p[1]));
  struct iovec iov[2] = {{big, n / 2}, {big + n / 2, n / 2}};
  drain = pt_drain_later(p[0], n, 0.02);
  ck_assert_int_eq(writev(p[1], iov, 2), (ssize_t)n);
  ck_assert_int_eq(gev_greenlet_get(drain, 5, &got), 0);
  ck_assert_uint_eq((uintptr_t)got, n);
  free(big);
  pt_close_pair(p);
  pt_all_clean(fds);
}
END_TEST

/* ---- Where the real call runs unchanged
 * ---------------------------------------- */

START_TEST(regular_file_is_real) {
  int fds = gev_test_fd_count();
  char path[] = "/tmp/gev-patch-file-XXXXXX", buf[8] = {0};
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  unlink(path);
  ck_assert_int_eq(write(fd, "data", 4), 4);
  ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
  ck_assert_int_eq(read(fd, buf, sizeof buf), 4);
  ck_assert_str_eq(buf, "data");
  ck_assert(!pt_kernel_nonblocking(fd));
  close(fd);
  pt_all_clean(fds);
}
END_TEST

static void *write_from_thread(void *arg) {
  int fd = *(int *)arg;
  usleep(50000); /* no hub here: the real usleep */
  return P(write(fd, "T", 1));
}

/* The main coroutine of a thread without a hub: the real blocking read,
 * and no hub is made. */
START_TEST(no_hub_read_is_real) {
  int fds = gev_test_fd_count(), sv[2];
  pthread_t th;
  char c;
  pt_socketpair(sv);
  ck_assert(!gev_hub_exists());
  ck_assert_int_eq(pthread_create(&th, NULL, write_from_thread, &sv[1]), 0);
  ck_assert_int_eq(read(sv[0], &c, 1), 1);
  ck_assert_int_eq(pthread_join(th, NULL), 0);
  ck_assert(!gev_hub_exists());
  ck_assert(!pt_kernel_nonblocking(sv[0]));
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

static void *blocking_read_in_thread(void *arg) {
  int fd = *(int *)arg;
  char c;
  ssize_t r = read(fd, &c, 1);
  return P(r == 1 ? c : -errno);
}

/* A socket gev made non-blocking underneath still blocks for a thread
 * without a hub (gev waits with the real poll). */
START_TEST(thread_without_hub_still_blocks) {
  int fds = gev_test_fd_count(), sv[2];
  pthread_t th;
  char c;
  void *v;
  pt_socketpair(sv);
  pt_write_later(sv[1], "a", 1, 0.01);
  ck_assert_int_eq(read(sv[0], &c, 1), 1);
  ck_assert(pt_kernel_nonblocking(sv[0]));
  ck_assert_int_eq(pthread_create(&th, NULL, blocking_read_in_thread, &sv[0]),
                   0);
  ck_assert_int_eq(gev_sleep(0.05), 0);
  ck_assert_int_eq(write(sv[1], "b", 1), 1);
  ck_assert_int_eq(pthread_join(th, &v), 0);
  ck_assert_int_eq(I(v), 'b');
  pt_join_all(5);
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

/* gev_patch_disable: the thread's calls are the real ones (the hub does
 * not run meanwhile); gev_patch_enable restores parking. */
START_TEST(disabled_thread_is_real) {
  int fds = gev_test_fd_count(), sv[2];
  pthread_t th;
  char c;
  pt_socketpair(sv);
  ck_assert_int_eq(gev_patch_disable(), 1);
  ck_assert_int_eq(gev_patch_enabled(), 0);
  pt_ticker *ticker = pt_ticker_start();
  ck_assert_int_eq(gev_sleep(0), 0);
  long before = pt_ticks(ticker);
  ck_assert_int_eq(pthread_create(&th, NULL, write_from_thread, &sv[1]), 0);
  ck_assert_int_eq(read(sv[0], &c, 1), 1);
  ck_assert_int_eq(pt_ticks(ticker), before);
  ck_assert(!pt_kernel_nonblocking(sv[0]));
  ck_assert_int_eq(pthread_join(th, NULL), 0);
  ck_assert_int_eq(gev_patch_enable(), 0);
  pt_write_later(sv[1], "c", 1, 0.03);
  ck_assert_int_eq(read(sv[0], &c, 1), 1);
  ck_assert_int_gt(pt_ticker_stop(ticker), before);
  pt_join_all(5);
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

typedef struct hub_read {
  int fd;
  ssize_t r;
} hub_read;

static void read_in_hub(void *arg) {
  hub_read *h = arg;
  char c;
  h->r = read(h->fd, &c, 1);
}

/* From the hub (a callback) the real call runs: gev must never park the
 * hub, nor touch the fd's flags. */
START_TEST(hub_read_is_real) {
  int fds = gev_test_fd_count(), sv[2];
  hub_read *h = calloc(1, sizeof *h);
  pt_socketpair(sv);
  ck_assert_int_eq(write(sv[1], "h", 1), 1);
  h->fd = sv[0];
  ck_assert_int_eq(gev_run_callback(read_in_hub, h), 0);
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert_int_eq(h->r, 1);
  ck_assert(!pt_kernel_nonblocking(sv[0]));
  free(h);
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

/* The main coroutine of a thread with a hub parks like a greenlet (as in
 * gevent: other greenlets run meanwhile). */
START_TEST(main_with_hub_parks) {
  int fds = gev_test_fd_count(), sv[2];
  char c;
  pt_socketpair(sv);
  pt_write_later(sv[1], "m", 1, 0.03);
  ck_assert(gev_hub_exists());
  ck_assert_int_eq(read(sv[0], &c, 1), 1);
  ck_assert_int_eq(c, 'm');
  pt_join_all(5);
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

/* Many greenlets parked on one socket at once (poll-style users of a
 * shared fd): each gets its own byte. */
START_TEST(many_readers_one_socket) {
  int fds = gev_test_fd_count(), sv[2];
  enum { N = 50 };
  result *res[N];
  pt_socketpair(sv);
  for (int i = 0; i < N; i++) {
    res[i] = result_new(READ, sv[0]);
    res[i]->want = 1;
    pt_spawn(reader, res[i]);
  }
  ck_assert_int_eq(gev_sleep(0.01), 0);
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(write(sv[1], "r", 1), 1);
    ck_assert_int_eq(gev_sleep(0.001), 0);
  }
  pt_join_all(5);
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(res[i]->r, 1);
    free(res[i]);
  }
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

/* ---- The fd table learns from setsockopt, pipe2, F_DUPFD ----------------- */

/* SO_RCVTIMEO set once gev knows the socket is taken from setsockopt. */
START_TEST(setsockopt_on_known_socket) {
  int fds = gev_test_fd_count(), sv[2];
  struct timeval tv = {0, 50000};
  char c;
  pt_socketpair(sv);
  pt_write_later(sv[1], "k", 1, 0.01);
  ck_assert_int_eq(read(sv[0], &c, 1), 1); /* now known, non-blocking */
  ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv),
                   0);
  double t0 = pt_now();
  ck_assert_int_eq(read(sv[0], &c, 1), -1);
  ck_assert_int_eq(errno, EAGAIN);
  ck_assert(pt_now() - t0 >= 0.05);
  tv.tv_usec = 0; /* no timeout again: it parks until data comes */
  ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv),
                   0);
  pt_write_later(sv[1], "l", 1, 0.1);
  ck_assert_int_eq(read(sv[0], &c, 1), 1);
  pt_join_all(5);
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

START_TEST(pipe2_and_fcntl_dupfd) {
  int fds = gev_test_fd_count(), p[2];
  char c;
  ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
  pt_write_later(p[1], "2", 1, 0.02);
  ck_assert_int_eq(read(p[0], &c, 1), 1);
  int d = fcntl(p[0], F_DUPFD_CLOEXEC, 100);
  ck_assert_int_ge(d, 100);
  pt_write_later(p[1], "3", 1, 0.02);
  ck_assert_int_eq(read(d, &c, 1), 1);
  ck_assert_int_eq(c, '3');
  pt_join_all(5);
  pt_close_pair(p);
  close(d);
  /* the numbers come back non-blocking by the program's own choice */
  ck_assert_int_eq(pipe2(p, O_NONBLOCK), 0);
  ck_assert_int_eq(read(p[0], &c, 1), -1);
  ck_assert_int_eq(errno, EAGAIN);
  pt_close_pair(p);
  pt_all_clean(fds);
}
END_TEST

/* A socket gev knew, closed behind its back (a raw close, as fclose of an
 * fdopen'd socket would), its number reused by a socket the program made
 * non-blocking itself: gev notices before it would park. */
START_TEST(stale_entry_noticed) {
  int fds = gev_test_fd_count(), sv[2], fresh[2];
  char c;
  pt_socketpair(sv);
  pt_write_later(sv[1], "s", 1, 0.01);
  ck_assert_int_eq(read(sv[0], &c, 1), 1); /* known: blocking view */
  pt_join_all(5);
  int number = sv[0];
  ck_assert_int_eq(syscall(SYS_close, number), 0);
  ck_assert_int_eq(
      syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fresh),
      0);
  ck_assert_int_eq(fresh[0], number);
  ck_assert_int_eq(read(fresh[0], &c, 1), -1); /* no park: EAGAIN */
  ck_assert_int_eq(errno, EAGAIN);
  ck_assert_int_ne(fcntl(fresh[0], F_GETFL) & O_NONBLOCK, 0);
  pt_close_pair(fresh);
  close(sv[1]);
  pt_all_clean(fds);
}
END_TEST

/* Programs built with _FORTIFY_SOURCE call these entry points. */
ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
                       struct sockaddr *addr, socklen_t *addrlen);
int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);

START_TEST(fortified_entry_points_park) {
  int fds = gev_test_fd_count(), sv[2];
  char buf[4];
  struct pollfd p;
  pt_socketpair(sv);
  pt_write_later(sv[1], "a", 1, 0.02);
  ck_assert_int_eq(__read_chk(sv[0], buf, 1, sizeof buf), 1);
  pt_write_later(sv[1], "b", 1, 0.02);
  ck_assert_int_eq(__recv_chk(sv[0], buf, 1, sizeof buf, 0), 1);
  pt_write_later(sv[1], "c", 1, 0.02);
  ck_assert_int_eq(__recvfrom_chk(sv[0], buf, 1, sizeof buf, 0, NULL, NULL), 1);
  pt_write_later(sv[1], "d", 1, 0.02);
  p = (struct pollfd){.fd = sv[0], .events = POLLIN};
  ck_assert_int_eq(__poll_chk(&p, 1, 5000, sizeof p), 1);
  ck_assert_int_eq(buf[0], 'c');
  pt_join_all(5);
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

static Suite *patch_io_suite(void) {
  Suite *s = suite_create("patch_io");
  TCase *tc = tcase_create("io");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, read_parks);
  tcase_add_test(tc, readv_parks);
  tcase_add_test(tc, recv_parks);
  tcase_add_test(tc, recvfrom_parks);
  tcase_add_test(tc, recvmsg_parks);
  tcase_add_test(tc, write_parks);
  tcase_add_test(tc, writev_parks);
  tcase_add_test(tc, send_parks);
  tcase_add_test(tc, sendto_parks);
  tcase_add_test(tc, sendmsg_parks);
  tcase_add_test(tc, recv_waitall_gathers);
  tcase_add_test(tc, recv_dontwait_does_not_park);
  tcase_add_test(tc, datagram_recv_one);
  tcase_add_test(tc, so_rcvtimeo_expires_eagain);
  tcase_add_test(tc, so_sndtimeo_expires_eagain);
  tcase_add_test(tc, kill_interrupts_read);
  tcase_add_test(tc, timeout_scope_interrupts_read);
  tcase_add_test(tc, close_wakes_reader_ebadf);
  tcase_add_test(tc, dup2_wakes_reader_ebadf);
  tcase_add_test(tc, dup3_and_dup_keep_the_view);
  tcase_add_test(tc, fcntl64_view);
  tcase_add_test(tc, fcntl_view);
  tcase_add_test(tc, ioctl_fionbio_view);
  tcase_add_test(tc, user_nonblocking_passes_through);
  tcase_add_test(tc, accept_parks);
  tcase_add_test(tc, accept4_parks);
  tcase_add_test(tc, connect_waits_for_backlog_room);
  tcase_add_test(tc, connect_tcp_loopback);
  tcase_add_test(tc, connect_so_sndtimeo);
  tcase_add_test(tc, pipe_read_parks);
  tcase_add_test(tc, pipe_big_write);
  tcase_add_test(tc, regular_file_is_real);
  tcase_add_test(tc, no_hub_read_is_real);
  tcase_add_test(tc, thread_without_hub_still_blocks);
  tcase_add_test(tc, disabled_thread_is_real);
  tcase_add_test(tc, hub_read_is_real);
  tcase_add_test(tc, main_with_hub_parks);
  tcase_add_test(tc, many_readers_one_socket);
  tcase_add_test(tc, setsockopt_on_known_socket);
  tcase_add_test(tc, pipe2_and_fcntl_dupfd);
  tcase_add_test(tc, stale_entry_noticed);
  tcase_add_test(tc, fortified_entry_points_park);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(patch_io_suite)
