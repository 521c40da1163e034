/*
 * The calls that keep the fd table right (see coop.h, THE FD TABLE):
 * close, dup, dup2, dup3, fcntl, fcntl64, ioctl(FIONBIO), socket,
 * socketpair, pipe, pipe2, setsockopt.
 *
 * They never wait. Their only cooperative effect is close's: it wakes the
 * waits of the calling thread on the fd (they fail with EBADF) before the
 * number goes away, so no libev watcher is left on a closed fd.
 */
#include "coop.h"

#include <stdarg.h>
#include <stdint.h>

/* ---- close and dup ------------------------------------------------------- */

GEV_PATCH_EXPORT int close(int fd) {
  gev__patch_fd_closing(fd);
  gev__fd_forget(fd); /* before the number can be reused by another thread */
  return GEV_REAL(close)(fd);
}

GEV_PATCH_EXPORT int dup(int fd) {
  int r = GEV_REAL(dup)(fd);
  if (r >= 0)
    gev__fd_copy(fd, r);
  return r;
}

/* dup2/dup3 close newfd when oldfd is valid: wake its waits first. */
static void replacing(int oldfd, int newfd) {
  if (oldfd != newfd && GEV_REAL(fcntl)(oldfd, F_GETFD) >= 0)
    gev__patch_fd_closing(newfd);
}

GEV_PATCH_EXPORT int dup2(int oldfd, int newfd) {
  int r;
  replacing(oldfd, newfd);
  r = GEV_REAL(dup2)(oldfd, newfd);
  if (r >= 0 && oldfd != newfd)
    gev__fd_copy(oldfd, newfd);
  return r;
}

GEV_PATCH_EXPORT int dup3(int oldfd, int newfd, int flags) {
  int r;
  replacing(oldfd, newfd);
  r = GEV_REAL(dup3)(oldfd, newfd, flags);
  if (r >= 0)
    gev__fd_copy(oldfd, newfd);
  return r;
}

/* ---- fcntl and ioctl: the program's view of O_NONBLOCK ------------------- */

/* One fcntl, through real (fcntl or fcntl64: the same call on 64-bit
 * Linux, two names since glibc 2.28). */
static int fcntl_view(__typeof__(fcntl) *real, int fd, int cmd, void *arg) {
  gev__fd *e = gev__fd_peek(fd);
  unsigned st = e ? gev__fd_state(e) : 0;
  int flags, r;
  switch (cmd) {
  case F_GETFL:
    r = real(fd, cmd);
    if (r >= 0 && (st & GEV__FD_UNDER_NB) && !(st & GEV__FD_USER_NB))
      r &= ~O_NONBLOCK;
    return r;
  case F_SETFL:
    flags = (int)(intptr_t)arg;
    if (!e)
      return real(fd, cmd, flags);
    if (st & GEV__FD_UNDER_NB)
      flags |= O_NONBLOCK;
    r = real(fd, cmd, flags);
    if (r >= 0)
      gev__fd_set_user_nonblocking(e, (int)(intptr_t)arg & O_NONBLOCK);
    return r;
  case F_DUPFD:
  case F_DUPFD_CLOEXEC:
    r = real(fd, cmd, (int)(intptr_t)arg);
    if (r >= 0)
      gev__fd_copy(fd, r);
    return r;
  default:
    return real(fd, cmd, arg);
  }
}

/* The optional third argument of fcntl and ioctl, read as a pointer as
 * glibc's own wrappers read it (an int travels in the same register). */
#define OPTIONAL_ARG(last, arg)                                                \
  do {                                                                         \
    va_list ap_;                                                               \
    va_start(ap_, last);                                                       \
    arg = va_arg(ap_, void *);                                                 \
    va_end(ap_);                                                               \
  } while (0)

GEV_PATCH_EXPORT int fcntl(int fd, int cmd, ...) {
  void *arg;
  OPTIONAL_ARG(cmd, arg);
  return fcntl_view(GEV_REAL(fcntl), fd, cmd, arg);
}

GEV_PATCH_EXPORT int fcntl64(int fd, int cmd, ...) {
  void *arg;
  OPTIONAL_ARG(cmd, arg);
  return fcntl_view(GEV_REAL(fcntl64), fd, cmd, arg);
}

GEV_PATCH_EXPORT int ioctl(int fd, unsigned long request, ...) {
  void *arg;
  gev__fd *e;
  OPTIONAL_ARG(request, arg);
  if (request == FIONBIO && arg && (e = gev__fd_peek(fd))) {
    int on = *(const int *)arg != 0;
    if (!on && (gev__fd_state(e) & GEV__FD_UNDER_NB)) {
      gev__fd_set_user_nonblocking(e, 0); /* underneath it stays on */
      return 0;
    }
    if (GEV_REAL(ioctl)(fd, request, arg) < 0)
      return -1;
    gev__fd_set_user_nonblocking(e, on);
    return 0;
  }
  return GEV_REAL(ioctl)(fd, request, arg);
}

/* ---- New fds ------------------------------------------------------------- */

GEV_PATCH_EXPORT int socket(int domain, int type, int protocol) {
  int fd = GEV_REAL(socket)(domain, type, protocol);
  if (fd >= 0)
    gev__fd_forget(fd);
  return fd;
}

GEV_PATCH_EXPORT int socketpair(int domain, int type, int protocol, int sv[2]) {
  int r = GEV_REAL(socketpair)(domain, type, protocol, sv);
  if (r == 0) {
    gev__fd_forget(sv[0]);
    gev__fd_forget(sv[1]);
  }
  return r;
}

GEV_PATCH_EXPORT int pipe(int fds[2]) {
  int r = GEV_REAL(pipe)(fds);
  if (r == 0) {
    gev__fd_forget(fds[0]);
    gev__fd_forget(fds[1]);
  }
  return r;
}

GEV_PATCH_EXPORT int pipe2(int fds[2], int flags) {
  int r = GEV_REAL(pipe2)(fds, flags);
  if (r == 0) {
    gev__fd_forget(fds[0]);
    gev__fd_forget(fds[1]);
  }
  return r;
}

/* ---- Socket timeouts ----------------------------------------------------- */

/* Which timeout a SOL_SOCKET option sets: POLLIN (receive), POLLOUT (send)
 * or 0. The _NEW names (time64 layouts) match struct timeval on 64-bit. */
static short timeout_option(int name) {
  if (name == SO_RCVTIMEO)
    return POLLIN;
  if (name == SO_SNDTIMEO)
    return POLLOUT;
#if defined(SO_RCVTIMEO_NEW) && defined(__LP64__)
  if (name == SO_RCVTIMEO_NEW)
    return POLLIN;
  if (name == SO_SNDTIMEO_NEW)
    return POLLOUT;
#endif
  return 0;
}

GEV_PATCH_EXPORT int setsockopt(int fd, int level, int name, const void *val,
                                socklen_t len) {
  int r = GEV_REAL(setsockopt)(fd, level, name, val, len);
  short which = level == SOL_SOCKET ? timeout_option(name) : 0;
  gev__fd *e;
  if (r == 0 && which && val && len >= sizeof(struct timeval) &&
      (e = gev__fd_peek(fd))) {
    const struct timeval *tv = val;
    gev__fd_set_timeout(e, which,
                        (long long)tv->tv_sec * 1000000 + tv->tv_usec);
  }
  return r;
}
