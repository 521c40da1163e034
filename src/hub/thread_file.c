/*
 * Blocking file calls through the default threadpool (gev/thread.h). A
 * call is a job with a buffer of its own: data to write is copied in
 * before the job starts, data read is copied out once it has finished,
 * so the pool thread never touches the caller's memory, which may be gone
 * (killed caller) or moved (a shared-mode stack) while the call runs. The
 * job's cleanup frees the buffer whoever lets go last.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gev/thread.h"
#include "hub/park.h"

enum { F_READ, F_WRITE, F_PREAD, F_PWRITE, F_FSYNC };

typedef struct file_call {
  int op, fd;
  size_t len;
  off_t off;
  ssize_t rc;
  int err;
  char buf[]; /* len bytes */
} file_call;

static void *file_run(void *arg) {
  file_call *c = arg;
  do {
    switch (c->op) {
    case F_READ:
      c->rc = read(c->fd, c->buf, c->len);
      break;
    case F_WRITE:
      c->rc = write(c->fd, c->buf, c->len);
      break;
    case F_PREAD:
      c->rc = pread(c->fd, c->buf, c->len, c->off);
      break;
    case F_PWRITE:
      c->rc = pwrite(c->fd, c->buf, c->len, c->off);
      break;
    default:
      c->rc = fsync(c->fd);
    }
  } while (c->rc < 0 && errno == EINTR);
  c->err = c->rc < 0 ? errno : 0;
  return NULL;
}

static void file_free(void *arg, void *value) {
  (void)value;
  free(arg);
}

/* Runs op on fd in the pool: buf's len bytes go in (writes) or come back
 * (reads). Returns as the call, or -1 with errno. */
static ssize_t file_call_run(int op, int fd, void *buf, size_t len, off_t off) {
  gev_thread_result *r;
  file_call *c;
  ssize_t rc;
  int err;
  if (len > GEV_FILE_IO_MAX)
    len = GEV_FILE_IO_MAX;
  if (gev__may_block() < 0)
    return -1;
  if (!(c = malloc(sizeof *c + len))) {
    errno = ENOMEM;
    return -1;
  }
  *c = (file_call){.op = op, .fd = fd, .len = len, .off = off};
  if ((op == F_WRITE || op == F_PWRITE) && len)
    memcpy(c->buf, buf, len);
  if (!(r = gev_threadpool_spawn_ex(NULL, file_run, c, file_free))) {
    err = errno;
    free(c);
    errno = err;
    return -1;
  }
  if (gev_thread_result_wait(r, -1) < 0) {
    err = errno;
    gev_thread_result_unref(r); /* the call finishes in its thread */
    errno = err;
    return -1;
  }
  rc = c->rc;
  err = c->err;
  if ((op == F_READ || op == F_PREAD) && rc > 0)
    memcpy(buf, c->buf, (size_t)rc);
  gev_thread_result_unref(r);
  errno = err;
  return rc;
}

GEV_EXTERN ssize_t gev_file_read(int fd, void *buf, size_t len) {
  return file_call_run(F_READ, fd, buf, len, 0);
}

GEV_EXTERN ssize_t gev_file_write(int fd, const void *buf, size_t len) {
  return file_call_run(F_WRITE, fd, (void *)buf, len, 0);
}

GEV_EXTERN ssize_t gev_file_pread(int fd, void *buf, size_t len, off_t offset) {
  return file_call_run(F_PREAD, fd, buf, len, offset);
}

GEV_EXTERN ssize_t gev_file_pwrite(int fd, const void *buf, size_t len,
                                   off_t offset) {
  return file_call_run(F_PWRITE, fd, (void *)buf, len, offset);
}

GEV_EXTERN int gev_file_fsync(int fd) {
  return (int)file_call_run(F_FSYNC, fd, NULL, 0, 0);
}
