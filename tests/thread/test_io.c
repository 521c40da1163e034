/* Blocking file calls through the threadpool: data both ways, offsets,
 * errors, and a caller killed while its call still runs. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "threadtest.h"

static int temp_file(char *path) {
  strcpy(path, "/tmp/gev-thread-io-XXXXXX");
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  return fd;
}

START_TEST(read_write_and_offsets) {
  char path[64], buf[64] = {0};
  thread_test_begin();
  int fd = temp_file(path);
  ck_assert_int_eq(gev_file_write(fd, "hello, world", 12), 12);
  ck_assert_int_eq(gev_file_fsync(fd), 0);
  ck_assert_int_eq(gev_file_pwrite(fd, "W", 1, 7), 1);
  ck_assert_int_eq(gev_file_pread(fd, buf, sizeof buf, 0), 12);
  ck_assert_str_eq(buf, "hello, World");
  ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
  memset(buf, 0, sizeof buf);
  ck_assert_int_eq(gev_file_read(fd, buf, 5), 5);
  ck_assert_str_eq(buf, "hello");
  ck_assert_int_eq(gev_file_read(fd, buf, 0), 0);
  close(fd);
  unlink(path);
  ck_assert_int_eq(gev_file_read(fd, buf, 1), -1);
  ck_assert_int_eq(errno, EBADF);
  ck_assert_int_eq(gev_file_fsync(-1), -1);
  ck_assert_int_eq(errno, EBADF);
  thread_test_end();
}
END_TEST

enum { READERS = 50, BLOCK = 4096 };
static int shared_fd, bad_reads;

static void *read_block(void *arg) {
  char *buf = malloc(BLOCK);
  int i = I(arg);
  ssize_t n = gev_file_pread(shared_fd, buf, BLOCK, (off_t)i * BLOCK);
  for (ssize_t k = 0; k < n; k++)
    if (buf[k] != (char)('a' + i % 26))
      n = -1;
  if (n != BLOCK)
    bad_reads++;
  free(buf);
  return NULL;
}

START_TEST(many_concurrent_reads) {
  char path[64], *data = malloc(READERS * BLOCK);
  gev_greenlet *gs[READERS];
  thread_test_begin();
  shared_fd = temp_file(path);
  for (int i = 0; i < READERS; i++)
    memset(data + (size_t)i * BLOCK, 'a' + i % 26, BLOCK);
  ck_assert_int_eq(write(shared_fd, data, READERS * BLOCK), READERS * BLOCK);
  bad_reads = 0;
  for (int i = 0; i < READERS; i++)
    gs[i] = gev_spawn(read_block, P(i));
  ck_assert_int_eq(gev_join_all(gs, READERS, 30), READERS);
  for (int i = 0; i < READERS; i++)
    gev_greenlet_unref(gs[i]);
  ck_assert_int_eq(bad_reads, 0);
  close(shared_fd);
  unlink(path);
  free(data);
  thread_test_end();
}
END_TEST

/* The caller's buffer is never written once it stopped waiting. */
static char callers_buf[16];

static void *read_pipe(void *arg) {
  ssize_t n = gev_file_read(I(arg), callers_buf, sizeof callers_buf);
  return P(n < 0 ? errno : 0);
}

START_TEST(killed_reader_leaves_nothing_behind) {
  int p[2];
  thread_test_begin();
  ck_assert_int_eq(pipe(p), 0);
  memset(callers_buf, '.', sizeof callers_buf);
  gev_greenlet *g = gev_spawn(read_pipe, P(p[0]));
  ck_assert_int_eq(gev_sleep(0.05), 0); /* read(2) blocks in the pool */
  ck_assert_int_eq(gev_greenlet_kill(g, 1, 5), 0);
  ck_assert_int_eq(I(gev_greenlet_value(g)), ECANCELED);
  gev_greenlet_unref(g);
  ck_assert_int_eq(write(p[1], "data", 4), 4); /* the read now completes */
  ck_assert_int_eq(gev_threadpool_join(gev_threadpool_default(), 10), 0);
  for (size_t i = 0; i < sizeof callers_buf; i++)
    ck_assert_int_eq(callers_buf[i], '.');
  close(p[0]);
  close(p[1]);
  thread_test_end();
}
END_TEST

static Suite *io_suite(void) {
  Suite *s = suite_create("thread_io");
  TCase *tc = tcase_create("thread_io");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, read_write_and_offsets);
  tcase_add_test(tc, many_concurrent_reads);
  tcase_add_test(tc, killed_reader_leaves_nothing_behind);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(io_suite)
