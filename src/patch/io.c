/*
 * The data calls: read, readv, recv, recvfrom, recvmsg, write, writev,
 * send, sendto, sendmsg, accept, accept4, connect, and the call driver
 * they share (see coop.h, WHAT A COOPERATIVE CALL DOES).
 *
 * Blocking semantics the driver keeps for a socket the program sees as
 * blocking, now that the socket is non-blocking underneath:
 *   - a send returns only when every byte is queued (the kernel's
 *     blocking send on a stream socket does the same), or with the count
 *     so far when a later wait fails;
 *   - recv with MSG_WAITALL on a stream socket returns when len bytes, an
 *     end of file or an error came;
 *   - SO_RCVTIMEO/SO_SNDTIMEO bound the whole call, which then fails with
 *     EAGAIN (or returns the count so far), as the kernel's does;
 *   - sendmsg sends its ancillary data once, with the first bytes.
 */
#include "coop.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---- Progress ------------------------------------------------------------ */

size_t gev__patch_call_rest(const gev__patch_call *c, void **base) {
  size_t left = c->len - c->done;
  *base = (char *)c->buf + c->done;
  return c->cap && left > c->cap ? c->cap : left;
}

const struct iovec *gev__patch_call_iov(gev__patch_call *c, int *cnt) {
  size_t skip = c->done, budget = c->cap ? c->cap : SIZE_MAX;
  int i = 0, k = 0;
  if (!skip && !c->cap) {
    *cnt = c->iovcnt;
    return c->iov;
  }
  if (!c->window &&
      !(c->window = malloc(sizeof *c->window * ((size_t)c->iovcnt + 1))))
    return NULL;
  while (i < c->iovcnt && skip >= c->iov[i].iov_len)
    skip -= c->iov[i++].iov_len;
  for (; i < c->iovcnt && budget > 0; i++, skip = 0) {
    size_t len = c->iov[i].iov_len - skip;
    if (len > budget)
      len = budget;
    c->window[k].iov_base = (char *)c->iov[i].iov_base + skip;
    c->window[k++].iov_len = len;
    budget -= len;
  }
  *cnt = k;
  return c->window;
}

static size_t iov_total(const struct iovec *iov, int cnt) {
  size_t n = 0;
  for (int i = 0; i < cnt; i++)
    n += iov[i].iov_len;
  return n;
}

/* The result of a call that moved c->done bytes before failing: the count
 * if any (the error is dropped, as the kernel drops it), else -1. */
static ssize_t finish(gev__patch_call *c, ssize_t r) {
  int err = errno;
  free(c->window);
  c->window = NULL;
  if (r < 0 && c->done == 0) {
    errno = err;
    return -1;
  }
  return (ssize_t)c->done;
}

/* ---- The driver ---------------------------------------------------------- */

/* A socket that is non-blocking underneath and blocking for the program:
 * retry until done, waiting within the socket's timeout. */
static ssize_t socket_io(gev__patch_call *c, gev__fd *e, unsigned st) {
  double deadline = -2; /* not computed yet */
  ssize_t r;
  c->all = c->events == POLLOUT ||
           ((c->flags & MSG_WAITALL) && (st & GEV__FD_STREAM));
  for (;;) {
    r = gev__patch_try(c);
    if (r >= 0) {
      c->done += (size_t)r;
      if (c->all && r > 0 && c->done < c->len)
        continue;
      return finish(c, 0);
    }
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return finish(c, -1);
    if (deadline == -2) {
      /* About to wait: make sure the number still means our socket. */
      st = gev__fd_revalidate(c->fd, e);
      if (!(st & GEV__FD_UNDER_NB) || (st & GEV__FD_USER_NB)) {
        errno = EAGAIN;
        return finish(c, -1);
      }
      double t = gev__fd_timeout(c->fd, e, c->events);
      deadline = t > 0 ? gev_monotonic() + t : -1;
    }
    if (gev__patch_wait_fd(c->fd, c->events, deadline) < 0)
      return finish(c, -1);
  }
}

/* Non-zero when fd is ready for events now (the real poll, no wait). */
static int ready_now(int fd, short events) {
  struct pollfd pfd = {.fd = fd, .events = events};
  return GEV_REAL(poll)(&pfd, 1, 0) == 1;
}

/* A blocking pipe: wait until it is ready, then the real call, which then
 * does not block (writes go in pieces a writable pipe takes whole). */
static ssize_t pipe_io(gev__patch_call *c) {
  ssize_t r;
  c->all = c->events == POLLOUT;
  if (c->all && c->len > PIPE_BUF)
    c->cap = PIPE_BUF;
  for (;;) {
    if (!ready_now(c->fd, c->events) &&
        gev__patch_wait_fd(c->fd, c->events, -1) < 0)
      return finish(c, -1);
    r = gev__patch_try(c);
    if (r >= 0) {
      c->done += (size_t)r;
      if (c->all && r > 0 && c->done < c->len)
        continue;
      return finish(c, 0);
    }
    if (errno != EINTR && errno != EAGAIN)
      return finish(c, -1);
  }
}

ssize_t gev__patch_io(gev__patch_call *c) {
  gev__fd *e = gev__fd_peek(c->fd);
  c->events = c->call >= GEV__CALL_WRITE && c->call <= GEV__CALL_SENDMSG
                  ? POLLOUT
                  : POLLIN;
  unsigned st = e ? gev__fd_state(e) : 0;
  const unsigned blocking = GEV__FD_SOCKET | GEV__FD_UNDER_NB;
  if ((st & (blocking | GEV__FD_USER_NB)) == blocking &&
      !(c->flags & MSG_DONTWAIT))
    return socket_io(c, e, st); /* the common case, without a syscall */
  if ((st &&
       (!(st & (GEV__FD_SOCKET | GEV__FD_PIPE)) || (st & GEV__FD_USER_NB))) ||
      (c->flags & MSG_DONTWAIT) || !gev__patch_coop())
    return gev__patch_try(c);
  if (!(e = gev__fd_get(c->fd)))
    return gev__patch_try(c); /* not open: the real call says so */
  st = gev__fd_state(e);
  if (!(st & (GEV__FD_SOCKET | GEV__FD_PIPE)) || (st & GEV__FD_USER_NB))
    return gev__patch_try(c);
  if (st & GEV__FD_PIPE)
    return pipe_io(c);
  if (!(st & GEV__FD_UNDER_NB) && gev__fd_make_nonblocking(c->fd, e) < 0)
    return gev__patch_try(c);
  return socket_io(c, e, gev__fd_state(e));
}

/* ---- One try of the real call ------------------------------------------- */

/* The program's msghdr with what is left of its iovec; ancillary data
 * goes with the first try only. */
static int msg_window(gev__patch_call *c, struct msghdr *m) {
  int cnt;
  const struct iovec *v = gev__patch_call_iov(c, &cnt);
  if (!v)
    return -1;
  *m = *c->msg;
  m->msg_iov = (struct iovec *)v;
  m->msg_iovlen = (size_t)cnt;
  if (c->done) {
    m->msg_control = NULL;
    m->msg_controllen = 0;
  }
  return 0;
}

static ssize_t try_recvmsg(gev__patch_call *c) {
  struct msghdr m;
  ssize_t r;
  if (msg_window(c, &m) < 0)
    return -1;
  r = GEV_REAL(recvmsg)(c->fd, &m, c->flags);
  if (r >= 0) {
    c->msg->msg_namelen = m.msg_namelen;
    c->msg->msg_flags = m.msg_flags;
    if (!c->done)
      c->msg->msg_controllen = m.msg_controllen;
  }
  return r;
}

static ssize_t try_iov(gev__patch_call *c) {
  struct msghdr m;
  int cnt;
  const struct iovec *v;
  if (c->call == GEV__CALL_SENDMSG)
    return msg_window(c, &m) < 0 ? -1 : GEV_REAL(sendmsg)(c->fd, &m, c->flags);
  if (c->call == GEV__CALL_RECVMSG)
    return try_recvmsg(c);
  if (!(v = gev__patch_call_iov(c, &cnt)))
    return -1;
  return c->call == GEV__CALL_READV ? GEV_REAL(readv)(c->fd, v, cnt)
                                    : GEV_REAL(writev)(c->fd, v, cnt);
}

static ssize_t try_accept(gev__patch_call *c) {
  int fd = c->call == GEV__CALL_ACCEPT
               ? GEV_REAL(accept)(c->fd, c->addr, c->addrlen)
               : GEV_REAL(accept4)(c->fd, c->addr, c->addrlen, c->accept_flags);
  if (fd >= 0)
    gev__fd_forget(fd);
  return fd;
}

ssize_t gev__patch_try(gev__patch_call *c) {
  void *b;
  size_t n = gev__patch_call_rest(c, &b);
  switch (c->call) {
  case GEV__CALL_READ:
    return GEV_REAL(read)(c->fd, b, n);
  case GEV__CALL_RECV:
    return GEV_REAL(recv)(c->fd, b, n, c->flags);
  case GEV__CALL_RECVFROM:
    return GEV_REAL(recvfrom)(c->fd, b, n, c->flags, c->addr, c->addrlen);
  case GEV__CALL_WRITE:
    return GEV_REAL(write)(c->fd, b, n);
  case GEV__CALL_SEND:
    return GEV_REAL(send)(c->fd, b, n, c->flags);
  case GEV__CALL_SENDTO:
    return GEV_REAL(sendto)(c->fd, b, n, c->flags, c->to, c->tolen);
  case GEV__CALL_ACCEPT:
  case GEV__CALL_ACCEPT4:
    return try_accept(c);
  default:
    return try_iov(c);
  }
}

/* ---- The interposed calls ------------------------------------------------ */

/* A call on one buffer; recvfrom and sendto add their addresses. */
static ssize_t buffer_call(gev__patch_call *c, int fd, const void *buf,
                           size_t len, int flags) {
  c->fd = fd;
  c->buf = (void *)buf;
  c->len = len;
  c->flags = flags;
  return gev__patch_io(c);
}

/* A call on an iovec, or on a msghdr's (msg may be NULL for readv and
 * writev; a NULL msg of recvmsg/sendmsg is for the real call to refuse). */
static ssize_t iovec_call(gev__patch_call_kind kind, int fd,
                          const struct iovec *iov, int iovcnt,
                          struct msghdr *msg, int flags) {
  gev__patch_call c = {.call = kind,
                       .fd = fd,
                       .iov = iov,
                       .iovcnt = iovcnt,
                       .msg = msg,
                       .flags = flags};
  if (msg) {
    c.iov = msg->msg_iov;
    c.iovcnt = (int)msg->msg_iovlen;
  }
  if (c.iov && c.iovcnt > 0)
    c.len = iov_total(c.iov, c.iovcnt);
  return gev__patch_io(&c);
}

GEV_PATCH_EXPORT ssize_t read(int fd, void *buf, size_t len) {
  gev__patch_call c = {.call = GEV__CALL_READ};
  return buffer_call(&c, fd, buf, len, 0);
}

GEV_PATCH_EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags) {
  gev__patch_call c = {.call = GEV__CALL_RECV};
  return buffer_call(&c, fd, buf, len, flags);
}

GEV_PATCH_EXPORT ssize_t recvfrom(int fd, void *restrict buf, size_t len,
                                  int flags, __SOCKADDR_ARG addr,
                                  socklen_t *restrict addrlen) {
  gev__patch_call c = {.call = GEV__CALL_RECVFROM,
                       .addr = addr.__sockaddr__,
                       .addrlen = addrlen};
  return buffer_call(&c, fd, buf, len, flags);
}

GEV_PATCH_EXPORT ssize_t write(int fd, const void *buf, size_t len) {
  gev__patch_call c = {.call = GEV__CALL_WRITE};
  return buffer_call(&c, fd, buf, len, 0);
}

GEV_PATCH_EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags) {
  gev__patch_call c = {.call = GEV__CALL_SEND};
  return buffer_call(&c, fd, buf, len, flags);
}

GEV_PATCH_EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags,
                                __CONST_SOCKADDR_ARG to, socklen_t tolen) {
  gev__patch_call c = {
      .call = GEV__CALL_SENDTO, .to = to.__sockaddr__, .tolen = tolen};
  return buffer_call(&c, fd, buf, len, flags);
}

GEV_PATCH_EXPORT ssize_t readv(int fd, const struct iovec *iov, int iovcnt) {
  return iovec_call(GEV__CALL_READV, fd, iov, iovcnt, NULL, 0);
}

GEV_PATCH_EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
  return iovec_call(GEV__CALL_WRITEV, fd, iov, iovcnt, NULL, 0);
}

GEV_PATCH_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
  if (!msg)
    return GEV_REAL(recvmsg)(fd, msg, flags); /* EFAULT */
  return iovec_call(GEV__CALL_RECVMSG, fd, NULL, 0, msg, flags);
}

GEV_PATCH_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
  if (!msg)
    return GEV_REAL(sendmsg)(fd, msg, flags); /* EFAULT */
  return iovec_call(GEV__CALL_SENDMSG, fd, NULL, 0, (struct msghdr *)msg,
                    flags);
}

GEV_PATCH_EXPORT int accept(int fd, __SOCKADDR_ARG addr,
                            socklen_t *restrict addrlen) {
  gev__patch_call c = {.call = GEV__CALL_ACCEPT,
                       .fd = fd,
                       .addr = addr.__sockaddr__,
                       .addrlen = addrlen};
  return (int)gev__patch_io(&c);
}

GEV_PATCH_EXPORT int accept4(int fd, __SOCKADDR_ARG addr,
                             socklen_t *restrict addrlen, int flags) {
  gev__patch_call c = {.call = GEV__CALL_ACCEPT4,
                       .fd = fd,
                       .addr = addr.__sockaddr__,
                       .addrlen = addrlen,
                       .accept_flags = flags};
  return (int)gev__patch_io(&c);
}

/* ---- Fortified entry points (_FORTIFY_SOURCE callers) -------------------- */

extern void __chk_fail(void) __attribute__((noreturn));
ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *restrict buf, size_t len, size_t buflen,
                       int flags, __SOCKADDR_ARG addr,
                       socklen_t *restrict addrlen);

GEV_PATCH_EXPORT ssize_t __read_chk(int fd, void *buf, size_t len,
                                    size_t buflen) {
  if (len > buflen)
    __chk_fail();
  return read(fd, buf, len);
}

GEV_PATCH_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t len,
                                    size_t buflen, int flags) {
  if (len > buflen)
    __chk_fail();
  return recv(fd, buf, len, flags);
}

GEV_PATCH_EXPORT ssize_t __recvfrom_chk(int fd, void *restrict buf, size_t len,
                                        size_t buflen, int flags,
                                        __SOCKADDR_ARG addr,
                                        socklen_t *restrict addrlen) {
  if (len > buflen)
    __chk_fail();
  return recvfrom(fd, buf, len, flags, addr, addrlen);
}

/* ---- connect ------------------------------------------------------------- */

/* A blocking connect on a socket that is non-blocking underneath: start
 * it, wait for it within SO_SNDTIMEO (expiry: EINPROGRESS, as the kernel
 * reports it), and report its outcome from SO_ERROR. A Unix socket whose
 * listener's backlog is full says EAGAIN; the blocking call would wait for
 * room, so gev retries with growing pauses. */
static int connect_blocking(int fd, gev__fd *e, const struct sockaddr *addr,
                            socklen_t len) {
  double t = gev__fd_timeout(fd, e, POLLOUT);
  double deadline = t > 0 ? gev_monotonic() + t : -1, pause = 0.001;
  int err = 0;
  socklen_t errlen = sizeof err;
  while (GEV_REAL(connect)(fd, addr, len) < 0) {
    double nap = pause;
    if (errno == EINPROGRESS)
      goto wait_connected;
    if (errno != EAGAIN)
      return -1;
    if (deadline >= 0) {
      double left = deadline - gev_monotonic();
      if (left <= 0)
        return -1; /* EAGAIN, as the kernel after SO_SNDTIMEO */
      nap = left < nap ? left : nap;
    }
    if (gev__patch_coop() ? gev_sleep(nap) < 0
                          : GEV_REAL(usleep)((useconds_t)(nap * 1e6)) < 0)
      return -1;
    pause = pause < 0.05 ? pause * 2 : pause;
  }
  return 0;
wait_connected:
  if (gev__patch_wait_fd(fd, POLLOUT, deadline) < 0) {
    if (errno == EAGAIN)
      errno = EINPROGRESS;
    return -1;
  }
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) < 0)
    return -1;
  if (err) {
    errno = err;
    return -1;
  }
  return 0;
}

GEV_PATCH_EXPORT int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len) {
  gev__fd *e = gev__fd_peek(fd);
  unsigned st = e ? gev__fd_state(e) : 0;
  if (!(st & GEV__FD_UNDER_NB)) {
    if ((st & GEV__FD_USER_NB) || !gev__patch_coop() || !(e = gev__fd_get(fd)))
      return GEV_REAL(connect)(fd, addr, len);
    st = gev__fd_state(e);
    if ((st & (GEV__FD_SOCKET | GEV__FD_USER_NB)) != GEV__FD_SOCKET ||
        gev__fd_make_nonblocking(fd, e) < 0)
      return GEV_REAL(connect)(fd, addr, len);
  } else if (st & GEV__FD_USER_NB) {
    return GEV_REAL(connect)(fd, addr, len);
  }
  return connect_blocking(fd, e, addr.__sockaddr__, len);
}
