/*
 * Internal: the contract of the cooperative libc (libgev-patch).
 *
 * libgev-patch defines libc's blocking calls (read, recv, poll, sleep,
 * getaddrinfo, ...) so that the dynamic linker binds a program's calls,
 * and those of every library it loads, to them. Each one either runs the
 * real call, found once with dlsym(RTLD_NEXT, ...), or does the same work
 * cooperatively: where the real call would block, the calling coroutine
 * parks in its hub and other greenlets run. It is built on gev's public
 * API only (gev/hub.h, gev/sync.h, gev/dns.h, libev through gev_hub_loop).
 *
 * THE CONTEXT RULE. A call is cooperative only when gev__patch_coop() says
 * so: the thread has a hub, the caller is not the hub (nor a loop
 * callback), and the thread has not called gev_patch_disable(). That is
 * any greenlet, and the thread's main coroutine once the thread has a hub
 * (as in gevent, blocking there runs the hub). Everywhere else (no hub,
 * the hub, a disabled thread) the real call runs with the program's own
 * arguments, so a program that never makes a hub behaves exactly as
 * without the library.
 *
 * THE FD TABLE. One per process, indexed by fd (gev__fd_peek/_get). It
 * knows an fd only once a cooperative call needed it; until then the
 * kernel's flags are the truth and every call passes straight through.
 * Knowing an fd means: its kind (socket, pipe or FIFO, anything else), the
 * program's own view of O_NONBLOCK, whether gev made it non-blocking
 * underneath, SO_RCVTIMEO/SO_SNDTIMEO, its inode (to notice a number that
 * was closed behind gev's back and reused), and how many parked waits of
 * any thread watch it. Who writes it:
 *   socket, socketpair, accept, accept4, pipe, pipe2  forget the new fds
 *     (a number may have been closed without gev seeing it);
 *   fcntl(F_SETFL), ioctl(FIONBIO)  the program's O_NONBLOCK view;
 *   setsockopt(SO_RCVTIMEO / SO_SNDTIMEO)  the timeouts;
 *   dup, dup2, dup3, fcntl(F_DUPFD*)  copy the entry to the new number;
 *   close (and dup2/dup3 over an open fd)  wake this thread's waits on the
 *     fd with EBADF, then forget it.
 * Entries are read and written with relaxed atomics from any thread. Races
 * on one fd number between threads are the program's own (as with the
 * kernel's table); gev only promises not to crash on them.
 *
 * WHAT A COOPERATIVE CALL DOES, by kind of fd (gev__patch_io):
 *   - the program sees the fd as non-blocking, or it is a regular file,
 *     tty, eventfd ...: the real call, unchanged;
 *   - a socket the program sees as blocking: gev sets O_NONBLOCK
 *     underneath (once, kept until close), tries the real call, and parks
 *     on EAGAIN until the fd is ready, within SO_RCVTIMEO/SO_SNDTIMEO;
 *   - a pipe or FIFO the program sees as blocking: its O_NONBLOCK flag is
 *     never touched (pipes are often shared with other processes: stdin,
 *     stdout, a child's output), so gev parks until the fd is ready and
 *     then makes the real blocking call, in pieces of at most PIPE_BUF
 *     bytes when writing (which a writable pipe always takes at once).
 * A socket made non-blocking underneath that is then used outside a
 * cooperative context (another thread without a hub, a disabled thread)
 * still blocks for its caller: gev waits with the real poll().
 *
 * WAITS. gev__patch_park() parks the calling coroutine until one of a set
 * of fds is ready, one of them is closed by this thread, or a timeout. Its
 * state (a gev_event and one ev_io watcher per fd) is a heap record, never
 * on the caller's stack (the shared-stack rule): the watchers' callbacks
 * run in the hub while the caller's stack may be copied away. Records are
 * linked on a per-thread list so close() can find the waits on an fd; a
 * fork child starts with an empty list. The caller learns what is ready
 * by repeating the real call (or the real poll with timeout 0), so a
 * spurious wake-up only costs a retry.
 *
 * ERRORS OF AN INTERRUPTED WAIT. A kill or an expired gev_timeout scope
 * makes the patched call fail with ECANCELED or ETIMEDOUT: never EINTR or
 * EAGAIN, which C code (libpq, libcurl, hiredis) retries, and since a kill
 * is sticky that retry would spin without ever giving the hub a turn.
 * SO_RCVTIMEO/SO_SNDTIMEO expiry fails as the kernel's does (EAGAIN;
 * EINPROGRESS for connect).
 *
 * RECURSION. Nothing in this library may call an interposed name: it
 * calls GEV_REAL(name) instead, and uses only gev calls that reach libc's
 * non-interposed calls or reach interposed ones in a way that passes
 * through (gev's own sockets are non-blocking in the program's view).
 * dlsym may allocate, so the allocator is never interposed.
 *
 * Typical interposer (io.c):
 *
 *     ssize_t recv(int fd, void *buf, size_t len, int flags) {
 *       gev__patch_call c = {.call = GEV__CALL_RECV, .fd = fd,
 *                            .buf = buf, .len = len, .flags = flags};
 *       return gev__patch_io(&c);
 *     }
 *
 * where gev__patch_try makes one GEV_REAL(recv) on what is left of the
 * buffer, as often as the driver needs.
 */
#ifndef GEV_SRC_PATCH_COOP_H
#define GEV_SRC_PATCH_COOP_H

/* Meson builds with _FILE_OFFSET_BITS=64, under which glibc's headers
 * rename fcntl to fcntl64; this library must define both names. Fortified
 * headers would define read, recv and poll as inline wrappers; this
 * library defines the names themselves (and the __*_chk entry points). */
#undef _FILE_OFFSET_BITS
#undef _FORTIFY_SOURCE
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "gev/patch.h"

/* Exports one interposed libc name (the library hides everything else). */
#define GEV_PATCH_EXPORT __attribute__((visibility("default")))

/* ---- The real calls ------------------------------------------------------ */

/* One family of calls a line (kept so by hand). */
/* clang-format off */
#define GEV_PATCH_REAL_CALLS(X)                                                \
  X(read) X(readv) X(recv) X(recvfrom) X(recvmsg)                              \
  X(write) X(writev) X(send) X(sendto) X(sendmsg)                              \
  X(connect) X(accept) X(accept4)                                              \
  X(poll) X(ppoll) X(select) X(pselect) X(epoll_wait)                          \
  X(nanosleep) X(clock_nanosleep) X(usleep) X(sleep)                           \
  X(getaddrinfo) X(freeaddrinfo) X(gethostbyname) X(gethostbyname_r)          \
  X(close) X(dup) X(dup2) X(dup3) X(fcntl) X(fcntl64) X(ioctl)                 \
  X(socket) X(socketpair) X(pipe) X(pipe2) X(setsockopt)
/* clang-format on */

typedef struct gev__patch_real {
#define GEV_PATCH_REAL_FIELD(name) __typeof__(name) *name;
  GEV_PATCH_REAL_CALLS(GEV_PATCH_REAL_FIELD)
#undef GEV_PATCH_REAL_FIELD
} gev__patch_real;

extern gev__patch_real gev__patch_reals;
extern atomic_int gev__patch_reals_ready;
/* Resolves every real call (idempotent, any thread). Aborts if libc lacks
 * one of them: nothing sensible can run then. */
void gev__patch_resolve(void);

static inline const gev__patch_real *gev__patch_real_calls(void) {
  if (__builtin_expect(
          !atomic_load_explicit(&gev__patch_reals_ready, memory_order_acquire),
          0))
    gev__patch_resolve();
  return &gev__patch_reals;
}
/* The real libc call name, e.g. GEV_REAL(read)(fd, buf, n). */
#define GEV_REAL(name) (gev__patch_real_calls()->name)

/* ---- The context rule ---------------------------------------------------- */

/* Non-zero when a call made here may park (see THE CONTEXT RULE). */
int gev__patch_coop(void);

/* ---- The fd table -------------------------------------------------------- */

enum {
  GEV__FD_KNOWN = 1u << 0,    /* the fields below are valid */
  GEV__FD_SOCKET = 1u << 1,   /* kind: a socket ... */
  GEV__FD_PIPE = 1u << 2,     /* ... a pipe or FIFO (neither: other) */
  GEV__FD_STREAM = 1u << 3,   /* a SOCK_STREAM socket */
  GEV__FD_USER_NB = 1u << 4,  /* the program sees O_NONBLOCK set */
  GEV__FD_UNDER_NB = 1u << 5, /* gev set O_NONBLOCK underneath */
};

typedef struct gev__fd {
  atomic_uint state;        /* GEV__FD_* bits; 0: not known */
  atomic_uint waiters;      /* parked waits (any thread) watching it */
  atomic_llong rcvtimeo_us; /* SO_RCVTIMEO; 0 none, -1 not read yet */
  atomic_llong sndtimeo_us; /* SO_SNDTIMEO, likewise */
  atomic_ullong dev, ino;   /* what the number referred to */
} gev__fd;

/* The entry of fd, or NULL (fd < 0 or beyond the table). Never allocates
 * unless create; the entry may be unknown (state 0). */
gev__fd *gev__fd_slot(int fd, int create);
/* The known entry of fd: learns the fd from the kernel if needed. NULL
 * with errno when fd is not open (EBADF) or beyond the table. */
gev__fd *gev__fd_get(int fd);
/* The entry if known, else NULL. Never makes a system call. */
static inline gev__fd *gev__fd_peek(int fd) {
  gev__fd *e = gev__fd_slot(fd, 0);
  return e && atomic_load_explicit(&e->state, memory_order_acquire) ? e : NULL;
}
static inline unsigned gev__fd_state(const gev__fd *e) {
  return atomic_load_explicit(&e->state, memory_order_acquire);
}
/* fd is a new number (socket, accept, pipe ...): drop what was known. */
void gev__fd_forget(int fd);
/* newfd now refers to what oldfd does (dup and friends). */
void gev__fd_copy(int oldfd, int newfd);
/* Re-learns fd from the kernel when it no longer refers to the object the
 * entry describes. Returns the (possibly new) state, 0 if fd is not open. */
unsigned gev__fd_revalidate(int fd, gev__fd *e);
/* Sets O_NONBLOCK underneath a known socket. 0, or -1 with errno. */
int gev__fd_make_nonblocking(int fd, gev__fd *e);
/* The program's timeout for events (POLLIN: SO_RCVTIMEO, POLLOUT:
 * SO_SNDTIMEO) as seconds, 0 when none; read from the kernel once. */
double gev__fd_timeout(int fd, gev__fd *e, short events);
/* Records the program's O_NONBLOCK view of a known fd. */
void gev__fd_set_user_nonblocking(gev__fd *e, int on);
/* Records the program's SO_RCVTIMEO (POLLIN) or SO_SNDTIMEO (POLLOUT). */
void gev__fd_set_timeout(gev__fd *e, short events, long long us);
/* Counts a parked wait on / off fd. */
void gev__fd_waiter(int fd, int delta);
/* Fork child: no parked wait of the parent is the child's business. */
void gev__fd_reset_waiters(void);

/* ---- Waits
 * ------------------------------------------------------------------- */

/* Parks the calling coroutine until one of the n fds is ready for its
 * events (POLLIN/POLLOUT and their variants), or one of them is closed by
 * this thread (*closed set), or timeout seconds pass (< 0: none). Entries
 * with fd < 0 or no read/write interest are skipped. Returns 1 woken, 0
 * timed out, or -1 with errno: ECANCELED, ETIMEDOUT (a gev_timeout scope),
 * ENOMEM, EPERM/EDEADLK (as any gev blocking call). Cooperative context
 * only. */
int gev__patch_park(const struct pollfd *fds, size_t n, double timeout,
                    int *closed);

/* Waits until fd is ready for events, until deadline (gev_monotonic()
 * seconds; < 0 none), cooperatively when gev__patch_coop(), else with the
 * real poll. 0 when ready (or maybe: the caller retries), -1 with errno:
 * EAGAIN the deadline passed, EBADF the fd was closed meanwhile, EINTR
 * (the real poll only), or the errors of gev__patch_park. */
int gev__patch_wait_fd(int fd, short events, double deadline);

/* Lists from a cooperative getaddrinfo not yet freed (dns.c). */
size_t gev__patch_addrinfo_count(void);

/* close() and dup2() over fd: wakes this thread's waits on fd, which then
 * report EBADF (poll: POLLNVAL). Callable from any context. */
void gev__patch_fd_closing(int fd);

/* ---- The call driver ----------------------------------------------------- */

/* The data calls gev__patch_io runs. */
typedef enum gev__patch_call_kind {
  GEV__CALL_READ,
  GEV__CALL_READV,
  GEV__CALL_RECV,
  GEV__CALL_RECVFROM,
  GEV__CALL_RECVMSG,
  GEV__CALL_WRITE,
  GEV__CALL_WRITEV,
  GEV__CALL_SEND,
  GEV__CALL_SENDTO,
  GEV__CALL_SENDMSG,
  GEV__CALL_ACCEPT,
  GEV__CALL_ACCEPT4,
} gev__patch_call_kind;

typedef struct gev__patch_call gev__patch_call;
struct gev__patch_call {
  /* in: what the program asked */
  gev__patch_call_kind call;
  int fd;
  void *buf; /* read/recv/write/send buffer */
  size_t len;
  int flags;                 /* recv/send flags */
  int accept_flags;          /* accept4 flags */
  struct sockaddr *addr;     /* recvfrom source */
  socklen_t *addrlen;        /* recvfrom source length */
  const struct sockaddr *to; /* sendto destination */
  socklen_t tolen;           /* sendto destination length */
  const struct iovec *iov;   /* readv/writev, or msg's */
  int iovcnt;
  struct msghdr *msg; /* recvmsg/sendmsg */
  /* private: the driver's */
  short events; /* POLLIN for calls that read, POLLOUT for calls that write */
  int all;      /* move every byte (blocking send, MSG_WAITALL) */
  size_t done;  /* bytes moved so far */
  size_t cap;   /* at most this many per try (0: no limit) */
  struct iovec *window; /* scratch: what is left of iov */
};

/* Runs c as the program expects (see WHAT A COOPERATIVE CALL DOES).
 * Returns what the real call returns. */
ssize_t gev__patch_io(gev__patch_call *c);
/* One real call of c's kind on what is left of its buffer. */
ssize_t gev__patch_try(gev__patch_call *c);

/* What is left of c's buffer after c->done bytes, at most c->cap: *base
 * and the returned length. */
size_t gev__patch_call_rest(const gev__patch_call *c, void **base);
/* What is left of c's iovec after c->done bytes, at most c->cap. Returns
 * the iovec array (c->iov itself at the start) and its length in *cnt, or
 * NULL with ENOMEM. */
const struct iovec *gev__patch_call_iov(gev__patch_call *c, int *cnt);

#endif
