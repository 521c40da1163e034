/*
 * Cooperative sockets (see gev/net.h).
 *
 * Every call tries the syscall first and parks only on EAGAIN/EINPROGRESS,
 * so a socket that is ready costs what the plain syscall costs plus a few
 * checks. A blocking call looks its hub and task up once, on entry
 * (gev__blocking_task, which also refuses a killed or timed-out greenlet
 * before the syscall); each wait then parks that task directly.
 *
 * Waiting is the hub's fd wait (src/hub/fdwait.h), embedded in the socket
 * in its lazy form: a watcher stays active between waits without keeping
 * the loop alive, so a handler that reads, waits for something else and
 * reads again costs no epoll_ctl. That is safe because every way the fd
 * leaves the socket (close, detach, the last release) stops the watchers
 * first (forget_fd).
 *
 * All wait state lives in the heap object, never on the caller's stack,
 * which keeps shared-stack mode safe.
 *
 * Lifetime: refs counts the creator's open reference, references taken with
 * gev_socket_ref, and one per call in progress (enter/leave), so a greenlet
 * woken with EBADF by a close can still read the object while it unwinds.
 * A freed socket is marked dead first, so that a call through a pointer
 * whose last reference is gone (a second close is the usual slip) aborts
 * with a message instead of corrupting whatever reuses the memory; under
 * AddressSanitizer every such use is caught.
 */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ev.h>

#include "coro/tools.h"
#include "gev/net.h"
#include "hub/fdwait.h"
#include "hub/waitable.h"
#include "net/socket_internal.h"

enum { DIR_READ = GEV__FD_READ, DIR_WRITE = GEV__FD_WRITE };

struct gev_socket {
  int fd;                /* rw: -1 once closed or detached */
  int open;              /* rw: the creator's reference is still held */
  unsigned refs;         /* rw: see the file comment */
  double timeout;        /* rw: < 0 none, 0 non-blocking, > 0 seconds */
  gev__hub *hub;         /* ro: the owning thread's hub */
  unsigned magic;        /* private: SOCKET_LIVE until freed */
  gev__fdwait fdw;       /* private: readiness waits, one per direction */
  gev__rawlink *closers; /* private: gev_wait entries, fired on close */
  unsigned char pipe;    /* ro: a pipe or FIFO end (read/write, not recv) */
  /* ro: gev__hub_id(hub), for identity checks (a new hub may reuse the
   * address of one that is gone) */
  unsigned long long hub_id;
};

static const char *const wait_names[2] = {"socket read", "socket write"};

enum { SOCKET_LIVE = 0x536f636bu, SOCKET_DEAD = 0x64656164u };

/* Aborts unless s is a live socket (see the file comment). */
static void check_alive(const gev_socket *s) {
#ifdef GEV_ASAN
  if (__asan_region_is_poisoned((void *)s, sizeof *s))
    gev__die("socket closed twice, or used after its last reference");
#endif
  if (s->magic != SOCKET_LIVE)
    gev__die("socket closed twice, or used after its last reference");
}

/* ---- Lifetime ----------------------------------------------------------- */

/* A socket object for fd (already non-blocking and close-on-exec). */
static gev_socket *socket_alloc(int fd) {
  gev__hub *hub = gev__hub_get();
  if (!hub)
    return NULL;
  gev_socket *s = malloc(sizeof *s);
  if (!s)
    goto out_nomem;
  *s = (gev_socket){.fd = fd,
                    .open = 1,
                    .refs = 1,
                    .timeout = -1,
                    .hub = hub,
                    .magic = SOCKET_LIVE,
                    .hub_id = gev__hub_id(hub)};
  if (gev__fdwait_init(&s->fdw, hub, fd, 1) < 0)
    goto out_free;
  return s;
out_free:
  free(s);
out_nomem:
  errno = ENOMEM;
  return NULL;
}

gev_socket *gev__socket_adopt(int fd) { return socket_alloc(fd); }

/* Forgets the fd: stops the watchers (libev requires that before the fd
 * is closed) and wakes whoever is parked with EBADF. Returns the fd. */
static int forget_fd(gev_socket *s) {
  int fd = s->fd;
  gev__rawlink_fire_all(&s->closers, 0); /* they stop their watchers */
  gev__fdwait_stop(&s->fdw, EBADF);
  s->fd = -1;
  return fd;
}

/* Closes fd; on Linux the fd is gone even when close reports EINTR. */
static int close_fd(int fd) {
  if (close(fd) < 0 && errno != EINTR)
    return -1;
  return 0;
}

/* Closes fd on an error path, keeping the errno being reported. */
static void close_keep_errno(int fd) {
  int saved = errno;
  close(fd);
  errno = saved;
}

static void release(gev_socket *s) {
  if (--s->refs > 0)
    return;
  if (s->fd >= 0) {
    int saved = errno;
    close_fd(forget_fd(s));
    errno = saved;
  }
  /* volatile: a plain store right before free() is optimised away */
  *(volatile unsigned *)&s->magic = SOCKET_DEAD;
  free(s);
}

static int wrong_thread(const gev_socket *s) {
  check_alive(s);
  return s->hub_id != gev__hub_current_id(); /* its hub may be gone */
}

/* Checks a socket for a call that keeps no state across a park. */
static int check(const gev_socket *s) {
  if (!s) {
    errno = EINVAL;
    return -1;
  }
  if (wrong_thread(s)) {
    errno = EXDEV;
    return -1;
  }
  if (s->fd < 0) {
    errno = EBADF;
    return -1;
  }
  return 0;
}

/* Starts a call that may park: checks, takes the call's reference, and
 * refuses a killed or timed-out greenlet at once (unless the socket is
 * non-blocking, which may be used anywhere, even from the hub). *t is the
 * task that any wait of the call parks (NULL for a non-blocking socket,
 * which never waits). */
static int enter(gev_socket *s, gev__task **t) {
  if (check(s) < 0)
    return -1;
  *t = NULL;
  if (s->timeout != 0 && !(*t = gev__blocking_task()))
    return -1;
  s->refs++;
  return 0;
}

/* Ends a call started with enter; keeps errno and passes rc through. */
static ssize_t leave(gev_socket *s, ssize_t rc) {
  int saved = errno;
  release(s);
  errno = saved;
  return rc;
}

/* ---- Waiting ------------------------------------------------------------ */

/* A deadline for calls whose timeout covers the whole call; < 0 none. */
static double deadline_for(const gev_socket *s) {
  return s->timeout > 0 ? gev_monotonic() + s->timeout : -1;
}

/* The timeout left before deadline (< 0: none), or -1/ETIMEDOUT when it
 * has passed. */
static int remaining(const gev_socket *s, double deadline, double *left) {
  if (deadline < 0) {
    *left = s->timeout;
    return 0;
  }
  *left = deadline - gev_monotonic();
  if (*left <= 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  return 0;
}

/* Parks t until the fd is ready in direction dir, for at most timeout.
 * Returns 0, or -1: EAGAIN (timeout 0), EBUSY, EBADF (closed meanwhile),
 * ETIMEDOUT and the other park errors. */
static int wait_ready(gev_socket *s, gev__task *t, int dir, double timeout) {
  if (timeout == 0) {
    errno = EAGAIN;
    return -1;
  }
  int rc = gev__fdwait_wait(&s->fdw, dir, t, timeout, wait_names[dir]);
  if (rc == 0 && s->fd < 0) {
    errno = EBADF; /* defensive: closing wakes with EBADF already */
    rc = -1;
  }
  return rc;
}

static int would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

/* ---- Pipes ---------------------------------------------------------------
 *
 * A pipe has no recv/send, so no MSG_NOSIGNAL: writing to one whose
 * reader is gone raises SIGPIPE in the writing thread. The write runs
 * with SIGPIPE blocked, and a SIGPIPE it raised is taken off the pending
 * set before the mask is restored (unless one was pending before: that
 * one is the program's). */

static ssize_t pipe_writev(int fd, const struct iovec *iov, int iovcnt) {
  sigset_t pipe_set, old, pending;
  int was_pending = 0, saved;
  ssize_t n;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  if (sigismember(&old, SIGPIPE) && sigpending(&pending) == 0)
    was_pending = sigismember(&pending, SIGPIPE);
  n = writev(fd, iov, iovcnt);
  if (n < 0 && errno == EPIPE && !was_pending) {
    struct timespec zero = {0, 0};
    saved = errno;
    while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
      ;
    errno = saved;
  }
  saved = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  errno = saved;
  return n;
}

/* Pipes take no flags but MSG_DONTWAIT (their fd is non-blocking anyway). */
static int pipe_flags_ok(int flags) {
  if (flags & ~MSG_DONTWAIT) {
    errno = EOPNOTSUPP;
    return 0;
  }
  return 1;
}

static ssize_t sys_recv(gev_socket *s, void *buf, size_t len, int flags,
                        struct sockaddr *addr, socklen_t *addrlen) {
  if (!s->pipe)
    return recvfrom(s->fd, buf, len, flags, addr, addrlen);
  if (!pipe_flags_ok(flags))
    return -1;
  if (addr && addrlen)
    *addrlen = 0;
  return read(s->fd, buf, len);
}

static ssize_t sys_send(gev_socket *s, const void *buf, size_t len, int flags,
                        const struct sockaddr *addr, socklen_t addrlen) {
  if (!s->pipe)
    return sendto(s->fd, buf, len, flags | MSG_NOSIGNAL, addr, addrlen);
  if (!pipe_flags_ok(flags))
    return -1;
  struct iovec one = {.iov_base = (void *)buf, .iov_len = len};
  return pipe_writev(s->fd, &one, 1);
}

/* sendmsg(2), or on a pipe end a writev of the message's buffers (a pipe
 * has no address or ancillary data: EOPNOTSUPP for those). */
static ssize_t sys_sendmsg(gev_socket *s, const struct msghdr *msg, int flags) {
  if (!s->pipe)
    return sendmsg(s->fd, msg, flags | MSG_NOSIGNAL);
  if (!pipe_flags_ok(flags))
    return -1;
  if (msg->msg_name || msg->msg_controllen) {
    errno = EOPNOTSUPP;
    return -1;
  }
  return pipe_writev(s->fd, msg->msg_iov, (int)msg->msg_iovlen);
}

/* 1 if fd is a pipe or FIFO, 0 if not, -1 (EBADF) if not open. */
static int is_pipe(int fd) {
  struct stat st;
  if (fstat(fd, &st) < 0)
    return -1;
  return S_ISFIFO(st.st_mode) != 0;
}

/* ---- Creating and releasing ------------------------------------------- */

gev_socket *gev_socket_new(int domain, int type, int protocol) {
  int fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0)
    return NULL;
  gev_socket *s = socket_alloc(fd);
  if (!s)
    goto out_close_fd;
  return s;
out_close_fd:
  close_keep_errno(fd);
  return NULL;
}

gev_socket *gev_socket_wrap(int fd) {
  int type;
  socklen_t len = sizeof type;
  if (fd < 0) {
    errno = EBADF;
    return NULL;
  }
  int pipe = 0;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
    if (errno != ENOTSOCK)
      return NULL; /* EBADF */
    if ((pipe = is_pipe(fd)) <= 0) {
      if (pipe == 0)
        errno = ENOTSOCK;
      return NULL;
    }
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return NULL;
  gev_socket *s = socket_alloc(fd);
  if (s)
    s->pipe = (unsigned char)pipe;
  return s;
}

int gev_socket_close(gev_socket *s) {
  if (!s) {
    errno = EINVAL;
    return -1;
  }
  if (wrong_thread(s)) {
    errno = EXDEV;
    return -1;
  }
  int rc = 0, err = 0;
  if (s->fd >= 0 && close_fd(forget_fd(s)) < 0) {
    rc = -1;
    err = errno;
  }
  if (s->open) {
    s->open = 0;
    release(s);
  }
  errno = rc < 0 ? err : errno;
  return rc;
}

int gev_socket_detach(gev_socket *s) {
  if (check(s) < 0)
    return -1;
  int fd = forget_fd(s);
  if (s->open) {
    s->open = 0;
    release(s);
  }
  return fd;
}

gev_socket *gev_socket_ref(gev_socket *s) {
  if (s) {
    check_alive(s);
    s->refs++;
  }
  return s;
}

void gev_socket_unref(gev_socket *s) {
  if (s && !wrong_thread(s))
    release(s);
}

int gev_socket_fileno(const gev_socket *s) {
  if (!s) {
    errno = EINVAL;
    return -1;
  }
  check_alive(s);
  if (s->fd < 0)
    errno = EBADF;
  return s->fd;
}

int gev_socket_closed(const gev_socket *s) {
  if (!s)
    return 1;
  check_alive(s);
  return s->fd < 0;
}

int gev_socket_settimeout(gev_socket *s, double timeout) {
  if (!s || isnan(timeout)) {
    errno = EINVAL;
    return -1;
  }
  check_alive(s);
  s->timeout = timeout < 0 ? -1 : timeout;
  return 0;
}

double gev_socket_gettimeout(const gev_socket *s) {
  if (!s)
    return -1;
  check_alive(s);
  return s->timeout;
}

/* ---- Plain socket calls ------------------------------------------------- */

int gev_socket_bind(gev_socket *s, const struct sockaddr *addr, socklen_t len) {
  return check(s) < 0 ? -1 : bind(s->fd, addr, len);
}

int gev_socket_listen(gev_socket *s, int backlog) {
  return check(s) < 0 ? -1 : listen(s->fd, backlog);
}

int gev_socket_shutdown(gev_socket *s, int how) {
  return check(s) < 0 ? -1 : shutdown(s->fd, how);
}

int gev_socket_getsockname(gev_socket *s, struct sockaddr *addr,
                           socklen_t *len) {
  return check(s) < 0 ? -1 : getsockname(s->fd, addr, len);
}

int gev_socket_getpeername(gev_socket *s, struct sockaddr *addr,
                           socklen_t *len) {
  return check(s) < 0 ? -1 : getpeername(s->fd, addr, len);
}

int gev_socket_getsockopt(gev_socket *s, int level, int name, void *value,
                          socklen_t *len) {
  return check(s) < 0 ? -1 : getsockopt(s->fd, level, name, value, len);
}

int gev_socket_setsockopt(gev_socket *s, int level, int name, const void *value,
                          socklen_t len) {
  return check(s) < 0 ? -1 : setsockopt(s->fd, level, name, value, len);
}

/* ---- Blocking calls ----------------------------------------------------- */

gev_socket *gev_socket_accept(gev_socket *s, struct sockaddr *addr,
                              socklen_t *len) {
  gev__task *t;
  if (enter(s, &t) < 0)
    return NULL;
  int fd;
  for (;;) {
    fd = accept4(s->fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0)
      break;
    if (errno == EINTR)
      continue;
    if (!would_block(errno) || wait_ready(s, t, DIR_READ, s->timeout) < 0)
      break;
  }
  gev_socket *conn = NULL;
  if (fd >= 0) {
    conn = socket_alloc(fd);
    if (!conn)
      close_keep_errno(fd);
  }
  leave(s, 0);
  return conn;
}

/* One connect attempt: 0 connected, 1 in progress (wait for write), or
 * -1 failed. attempted says whether an earlier attempt is in flight, in
 * which case EISCONN means it succeeded. */
static int connect_step(gev_socket *s, const struct sockaddr *addr,
                        socklen_t len, int attempted) {
  int err = 0;
  socklen_t errlen = sizeof err;
  if (attempted &&
      getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &errlen) == 0 && err) {
    errno = err;
    return -1;
  }
  if (connect(s->fd, addr, len) == 0)
    return 0;
  if (attempted && errno == EISCONN)
    return 0;
  if (errno == EINPROGRESS || errno == EALREADY || errno == EINTR)
    return 1; /* after EINTR Linux goes on connecting in the background */
  if (errno == EAGAIN)
    return 2; /* AF_UNIX: the listener's backlog is full; retry later */
  return -1;
}

/* Waits before the next connect attempt: writability for a connection in
 * progress, a short pause for a full Unix backlog (which has no readiness
 * event of its own). */
static int connect_wait(gev_socket *s, gev__task *t, int step, double left) {
  if (step == 1)
    return wait_ready(s, t, DIR_WRITE, left);
  if (left == 0) {
    errno = EAGAIN;
    return -1;
  }
  return gev_sleep(left > 0 && left < 0.01 ? left : 0.01);
}

int gev_socket_connect(gev_socket *s, const struct sockaddr *addr,
                       socklen_t len) {
  gev__task *t;
  if (enter(s, &t) < 0)
    return -1;
  double deadline = deadline_for(s), left;
  int rc, attempted = 0;
  while ((rc = connect_step(s, addr, len, attempted)) > 0) {
    attempted = 1;
    if (remaining(s, deadline, &left) < 0 || connect_wait(s, t, rc, left) < 0) {
      rc = -1;
      break;
    }
    if (s->fd < 0) {
      errno = EBADF;
      rc = -1;
      break;
    }
  }
  return (int)leave(s, rc);
}

/* One transfer syscall of a call, retried as the socket layer does. */
typedef struct io_op {
  int dir; /* DIR_READ or DIR_WRITE: what to wait for on EAGAIN */
  int flags;
  void *buf;
  size_t len;
  struct sockaddr *addr;
  socklen_t *addrlen;
  const struct sockaddr *to;
  socklen_t tolen;
  const struct msghdr *msg;
} io_op;

static ssize_t io_syscall(gev_socket *s, const io_op *op) {
  if (op->msg)
    return sys_sendmsg(s, op->msg, op->flags);
  if (op->dir == DIR_READ)
    return sys_recv(s, op->buf, op->len, op->flags, op->addr, op->addrlen);
  return sys_send(s, op->buf, op->len, op->flags, op->to, op->tolen);
}

/* Runs op on s, parking (for each wait at most the socket's timeout, or
 * until deadline when >= 0) while it would block, and retrying EINTR. */
static ssize_t io_run(gev_socket *s, gev__task *t, const io_op *op,
                      double deadline) {
  ssize_t n;
  double left;
  for (;;) {
    n = io_syscall(s, op);
    if (n >= 0)
      return n;
    if (errno == EINTR)
      continue;
    if (!would_block(errno) || (op->flags & MSG_DONTWAIT) ||
        remaining(s, deadline, &left) < 0 ||
        wait_ready(s, t, op->dir, left) < 0)
      return -1;
  }
}

/* A whole call: checks, the call's reference, op, and back. */
static ssize_t io_call(gev_socket *s, const io_op *op) {
  gev__task *t;
  if (enter(s, &t) < 0)
    return -1;
  return leave(s, io_run(s, t, op, -1));
}

ssize_t gev_socket_recvfrom(gev_socket *s, void *buf, size_t len, int flags,
                            struct sockaddr *addr, socklen_t *addrlen) {
  if (!buf && len) {
    errno = EINVAL;
    return -1;
  }
  io_op op = {.dir = DIR_READ,
              .flags = flags,
              .buf = buf,
              .len = len,
              .addr = addr,
              .addrlen = addrlen};
  return io_call(s, &op);
}

ssize_t gev_socket_recv(gev_socket *s, void *buf, size_t len, int flags) {
  return gev_socket_recvfrom(s, buf, len, flags, NULL, NULL);
}

ssize_t gev_socket_sendto(gev_socket *s, const void *buf, size_t len, int flags,
                          const struct sockaddr *addr, socklen_t addrlen) {
  if (!buf && len) {
    errno = EINVAL;
    return -1;
  }
  io_op op = {.dir = DIR_WRITE,
              .flags = flags,
              .buf = (void *)buf,
              .len = len,
              .to = addr,
              .tolen = addrlen};
  return io_call(s, &op);
}

ssize_t gev_socket_send(gev_socket *s, const void *buf, size_t len, int flags) {
  return gev_socket_sendto(s, buf, len, flags, NULL, 0);
}

ssize_t gev_socket_sendmsg(gev_socket *s, const struct msghdr *msg, int flags) {
  if (!msg) {
    errno = EINVAL;
    return -1;
  }
  io_op op = {.dir = DIR_WRITE, .flags = flags, .msg = msg};
  return io_call(s, &op);
}

ssize_t gev_socket_writev(gev_socket *s, const struct iovec *iov, int iovcnt) {
  struct msghdr msg = {.msg_iov = (struct iovec *)iov,
                       .msg_iovlen = iovcnt > 0 ? (size_t)iovcnt : 0};
  if ((!iov && iovcnt) || iovcnt < 0) {
    errno = EINVAL;
    return -1;
  }
  return gev_socket_sendmsg(s, &msg, 0);
}

/* At most this many iovecs per sendmsg of sendall_iov (a window moved
 * along the caller's array, which is never modified). */
#define IOV_WINDOW 64

/* Fills win with the unsent part of iov[i...], starting off bytes into
 * iov[i]. Returns how many entries it used. */
static size_t iov_window(const struct iovec *iov, size_t n, size_t i,
                         size_t off, struct iovec *win) {
  size_t k = 0;
  for (; i < n && k < IOV_WINDOW; i++, off = 0) {
    if (iov[i].iov_len <= off)
      continue;
    win[k].iov_base = (char *)iov[i].iov_base + off;
    win[k++].iov_len = iov[i].iov_len - off;
  }
  return k;
}

/* Moves (*i, *off) forward by sent bytes. */
static void iov_advance(const struct iovec *iov, size_t n, size_t *i,
                        size_t *off, size_t sent) {
  while (*i < n && sent >= iov[*i].iov_len - *off) {
    sent -= iov[*i].iov_len - *off;
    (*i)++;
    *off = 0;
  }
  *off += sent;
}

int gev_socket_sendall_iov(gev_socket *s, const struct iovec *iov, int iovcnt,
                           int flags) {
  if ((!iov && iovcnt) || iovcnt < 0) {
    errno = EINVAL;
    return -1;
  }
  gev__task *t;
  if (enter(s, &t) < 0)
    return -1;
  struct iovec win[IOV_WINDOW];
  struct msghdr msg = {.msg_iov = win};
  io_op op = {.dir = DIR_WRITE, .flags = flags, .msg = &msg};
  double deadline = deadline_for(s);
  size_t i = 0, off = 0;
  ssize_t rc = 0;
  while ((msg.msg_iovlen = iov_window(iov, (size_t)iovcnt, i, off, win)) > 0) {
    if ((rc = io_run(s, t, &op, deadline)) < 0)
      break;
    iov_advance(iov, (size_t)iovcnt, &i, &off, (size_t)rc);
  }
  return (int)leave(s, rc < 0 ? -1 : 0);
}

int gev_socket_sendall(gev_socket *s, const void *buf, size_t len, int flags) {
  struct iovec one = {.iov_base = (void *)buf, .iov_len = len};
  if (!buf && len) {
    errno = EINVAL;
    return -1;
  }
  return gev_socket_sendall_iov(s, &one, 1, flags);
}

/* One sendfile(2) of at most len bytes: the count, 0 at end of file, or -1
 * (EINTR retried). */
static ssize_t sendfile_once(int out, int in, off_t *off, size_t len) {
  ssize_t n;
  while ((n = sendfile(out, in, off, len)) < 0 && errno == EINTR)
    ;
  return n;
}

ssize_t gev_socket_sendfile(gev_socket *s, int in_fd, off_t *offset,
                            size_t count) {
  if (offset && *offset < 0) {
    errno = EINVAL;
    return -1;
  }
  gev__task *t;
  if (enter(s, &t) < 0)
    return -1;
  if (s->pipe) { /* sendfile would raise SIGPIPE on a reader gone */
    errno = EOPNOTSUPP;
    return (ssize_t)leave(s, -1);
  }
  double deadline = deadline_for(s), left;
  size_t sent = 0;
  ssize_t rc = 0;
  while (count == 0 || sent < count) {
    size_t chunk = count ? count - sent : (size_t)INT_MAX;
    ssize_t n = sendfile_once(s->fd, in_fd, offset, chunk);
    if (n > 0) {
      sent += (size_t)n;
      continue;
    }
    if (n == 0)
      break; /* end of file */
    if (!would_block(errno) || remaining(s, deadline, &left) < 0 ||
        wait_ready(s, t, DIR_WRITE, left) < 0) {
      rc = -1;
      break;
    }
  }
  return leave(s, rc < 0 ? -1 : (ssize_t)sent);
}

/* Checks readiness without parking (timeout 0). */
static int poll_ready(gev_socket *s, int dir) {
  struct pollfd p = {.fd = s->fd, .events = dir == DIR_READ ? POLLIN : POLLOUT};
  int rc;
  while ((rc = poll(&p, 1, 0)) < 0 && errno == EINTR)
    ;
  if (rc == 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  return rc < 0 ? -1 : 0;
}

static int wait_dir(gev_socket *s, int dir, double timeout) {
  if (isnan(timeout)) {
    errno = EINVAL;
    return -1;
  }
  if (check(s) < 0)
    return -1;
  if (timeout == 0)
    return poll_ready(s, dir);
  gev__task *t = gev__blocking_task();
  if (!t)
    return -1;
  s->refs++; /* as enter(), whatever the socket's own timeout */
  int rc = wait_ready(s, t, dir, timeout < 0 ? -1 : timeout);
  return (int)leave(s, rc);
}

int gev_socket_wait_read(gev_socket *s, double timeout) {
  return wait_dir(s, DIR_READ, timeout);
}

int gev_socket_wait_write(gev_socket *s, double timeout) {
  return wait_dir(s, DIR_WRITE, timeout);
}

/* ---- Waiting with gev_wait -------------------------------------------- */

static int socket_wait_check(const gev_waitable *w) {
  int ev = w->events_;
  if (check(w->obj_) < 0)
    return -1;
  if (!(ev & (GEV_WAIT_READ | GEV_WAIT_WRITE)) ||
      (ev & ~(GEV_WAIT_READ | GEV_WAIT_WRITE))) {
    errno = EINVAL;
    return -1;
  }
  return 0;
}

static int socket_wait_ready(const gev_waitable *w) {
  const gev_socket *s = w->obj_;
  return s->fd < 0 || gev__fd_ready_now(s->fd, w->events_);
}

/* Closing the socket reports it ready (its next call fails with EBADF);
 * the fire stops the fd's watcher before the fd is closed. */
static void socket_closed(gev__rawlink *l, int err) {
  gev__wait_entry_fire((gev__wait_entry *)(void *)l, err, 0);
}

static int socket_wait_arm(gev__wait_entry *e) {
  gev_socket *s = e->w->obj_;
  if (gev__wait_entry_watch_fd(e, s->fd, e->w->events_) < 0)
    return -1;
  e->link.fire = socket_closed;
  gev__rawlink_add(&s->closers, &e->link);
  return 0;
}

static void socket_wait_disarm(gev__wait_entry *e) {
  gev__wait_entry_unwatch_fd(e);
  gev__rawlink_del(&e->link);
}

static void socket_hold(const gev_waitable *w) { gev_socket_ref(w->obj_); }

static void socket_release(const gev_waitable *w) { gev_socket_unref(w->obj_); }

static const gev__waitable_ops socket_waitable_ops = {
    .check = socket_wait_check,
    .ready = socket_wait_ready,
    .arm = socket_wait_arm,
    .disarm = socket_wait_disarm,
    .hold = socket_hold,
    .release = socket_release,
};

gev_waitable gev_waitable_socket(gev_socket *s, int events) {
  return (gev_waitable){
      .ops_ = &socket_waitable_ops, .obj_ = s, .fd_ = -1, .events_ = events};
}
