/* LD_PRELOAD=libgev-patch.so on a program that links only libgev (as a
 * shared library) and knows nothing of the patch library: its plain
 * read/write/poll calls in greenlets park, gev's own sockets work as
 * before, and without a hub nothing changes. meson runs it with the
 * library preloaded. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gev/net.h"
#include "patchtest.h"

/* read resolves to the preloaded library, not to libc. */
START_TEST(preloaded) {
  Dl_info info;
  ck_assert_ptr_nonnull(dlsym(RTLD_DEFAULT, "gev_patch_enabled"));
  ck_assert(dladdr(dlsym(RTLD_DEFAULT, "read"), &info));
  ck_assert_msg(strstr(info.dli_fname, "libgev-patch"), "read is from %s",
                info.dli_fname);
}
END_TEST

typedef struct pipe_io {
  int fd;
  char buf[16];
  ssize_t n;
} pipe_io;

static void *read_once(void *arg) {
  pipe_io *p = arg;
  struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
  if (poll(&pfd, 1, 5000) == 1)
    p->n = read(p->fd, p->buf, sizeof p->buf - 1);
  return NULL;
}

/* Without the library the reader would block the thread before the
 * writer ever ran. */
START_TEST(greenlets_read_cooperatively) {
  int fds = gev_test_fd_count(), sv[2];
  pipe_io *p = calloc(1, sizeof *p);
  pt_socketpair(sv);
  p->fd = sv[0];
  pt_spawn(read_once, p);
  pt_write_later(sv[1], "preload", 7, 0.03);
  pt_join_all(5);
  ck_assert_int_eq(p->n, 7);
  ck_assert_str_eq(p->buf, "preload");
  free(p);
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

static void *echo_once(void *arg) {
  gev_socket *s = arg;
  char buf[16];
  ssize_t n = gev_socket_recv(s, buf, sizeof buf, 0);
  if (n > 0)
    gev_socket_sendall(s, buf, (size_t)n, 0);
  gev_socket_close(s);
  return NULL;
}

/* gev's own sockets (non-blocking: the library passes them through). */
START_TEST(gev_sockets_unchanged) {
  int fds = gev_test_fd_count(), sv[2];
  char buf[8] = {0};
  pt_socketpair(sv);
  gev_socket *a = gev_socket_wrap(sv[0]), *b = gev_socket_wrap(sv[1]);
  ck_assert_ptr_nonnull(a);
  ck_assert_ptr_nonnull(b);
  pt_spawn(echo_once, b);
  ck_assert_int_eq(gev_socket_sendall(a, "gev", 3, 0), 0);
  ck_assert_int_eq(gev_socket_recv(a, buf, sizeof buf, 0), 3);
  ck_assert_str_eq(buf, "gev");
  gev_socket_close(a);
  pt_all_clean(fds);
}
END_TEST

static void *write_soon(void *arg) {
  usleep(30000);
  return P(write(I(arg), "t", 1));
}

/* No hub: the real call, and still no hub. */
START_TEST(no_hub_unchanged) {
  int fds = gev_test_fd_count(), sv[2];
  pthread_t th;
  char c;
  pt_socketpair(sv);
  ck_assert_int_eq(pthread_create(&th, NULL, write_soon, P(sv[1])), 0);
  ck_assert_int_eq(read(sv[0], &c, 1), 1);
  ck_assert_int_eq(pthread_join(th, NULL), 0);
  ck_assert(!gev_hub_exists());
  ck_assert(!pt_kernel_nonblocking(sv[0]));
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

static Suite *patch_preload_suite(void) {
  Suite *s = suite_create("patch_preload");
  TCase *tc = tcase_create("preload");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, preloaded);
  tcase_add_test(tc, greenlets_read_cooperatively);
  tcase_add_test(tc, gev_sockets_unchanged);
  tcase_add_test(tc, no_hub_unchanged);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(patch_preload_suite)
