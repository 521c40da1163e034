/*
 * Listening sockets as plain fds (see listener.h).
 */
#include "net/listener.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

static int set_flag(int fd, int level, int name) {
  int one = 1;
  return setsockopt(fd, level, name, &one, sizeof one);
}

static int apply_flags(int fd, int family, int flags) {
  if ((flags & GEV__LISTEN_REUSEADDR) &&
      set_flag(fd, SOL_SOCKET, SO_REUSEADDR) < 0)
    return -1;
  if ((flags & GEV__LISTEN_REUSEPORT) &&
      set_flag(fd, SOL_SOCKET, SO_REUSEPORT) < 0)
    return -1;
  if ((flags & GEV__LISTEN_V6ONLY) && family == AF_INET6 &&
      set_flag(fd, IPPROTO_IPV6, IPV6_V6ONLY) < 0)
    return -1;
  return 0;
}

int gev__listener_open(const struct sockaddr *addr, socklen_t len, int type,
                       int flags, int backlog) {
  int saved;
  int fd = socket(addr->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  if (apply_flags(fd, addr->sa_family, flags) < 0 || bind(fd, addr, len) < 0)
    goto out_close;
  if (backlog > 0 && listen(fd, backlog) < 0)
    goto out_close;
  return fd;
out_close:
  saved = errno;
  close(fd);
  errno = saved;
  return -1;
}

int gev__listener_check(int fd, int type, struct sockaddr_storage *addr,
                        socklen_t *len) {
  int actual, fl;
  socklen_t size = sizeof actual;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &actual, &size) < 0) {
    if (errno == ENOTSOCK)
      errno = EINVAL; /* not a socket at all: not one of that type */
    return -1;
  }
  if (actual != type) {
    errno = EINVAL;
    return -1;
  }
  size = sizeof actual;
  if (type == SOCK_STREAM &&
      (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &actual, &size) < 0 ||
       !actual)) {
    errno = EINVAL; /* bound but not listening: it would never accept */
    return -1;
  }
  if (getsockname(fd, (struct sockaddr *)addr, len) < 0)
    return -1;
  if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return -1;
  return 0;
}
