/*
 * The per-process fd table (see coop.h, THE FD TABLE).
 *
 * Two levels: a static array of chunk pointers, and chunks of entries
 * mapped on first use and never freed, so an entry's address is stable
 * and lookups take no lock. Chunks come from mmap rather than malloc
 * because the interposed calls may run in a signal handler (write(2) is
 * async-signal-safe, and programs use it there), where malloc must not
 * be entered. Fresh mappings are zero: every entry starts unknown.
 *
 * Fds at or beyond GEV__FD_MAX (2^20, Debian's hard RLIMIT_NOFILE) have
 * no entry: calls on them are always the real ones.
 */
#include "coop.h"

#include <sys/mman.h>
#include <sys/stat.h>

#define CHUNK_BITS 10
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define NCHUNKS 1024u
#define GEV__FD_MAX (CHUNK_SIZE * NCHUNKS)

static _Atomic(gev__fd *) chunks[NCHUNKS];

gev__fd *gev__fd_slot(int fd, int create) {
  gev__fd *chunk, *expected = NULL;
  if (fd < 0 || (unsigned)fd >= GEV__FD_MAX)
    return NULL;
  chunk = atomic_load_explicit(&chunks[fd >> CHUNK_BITS], memory_order_acquire);
  if (!chunk) {
    if (!create)
      return NULL;
    chunk = mmap(NULL, CHUNK_SIZE * sizeof *chunk, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (chunk == MAP_FAILED)
      return NULL;
    if (!atomic_compare_exchange_strong(&chunks[fd >> CHUNK_BITS], &expected,
                                        chunk)) {
      munmap(chunk, CHUNK_SIZE * sizeof *chunk); /* another thread won */
      chunk = expected;
    }
  }
  return &chunk[fd & (CHUNK_SIZE - 1)];
}

/* Reads what fd is from the kernel into e. Returns the new state, or 0
 * when fd is not open. */
static unsigned learn(int fd, gev__fd *e) {
  struct stat st;
  unsigned s = GEV__FD_KNOWN;
  int fl, type;
  socklen_t tlen = sizeof type;
  if (fstat(fd, &st) < 0 || (fl = GEV_REAL(fcntl)(fd, F_GETFL)) < 0) {
    atomic_store_explicit(&e->state, 0, memory_order_release);
    return 0;
  }
  if (S_ISSOCK(st.st_mode)) {
    s |= GEV__FD_SOCKET;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0 &&
        type == SOCK_STREAM)
      s |= GEV__FD_STREAM;
  } else if (S_ISFIFO(st.st_mode)) {
    s |= GEV__FD_PIPE;
  }
  if (fl & O_NONBLOCK)
    s |= GEV__FD_USER_NB;
  atomic_store_explicit(&e->rcvtimeo_us, -1, memory_order_relaxed);
  atomic_store_explicit(&e->sndtimeo_us, -1, memory_order_relaxed);
  atomic_store_explicit(&e->dev, (unsigned long long)st.st_dev,
                        memory_order_relaxed);
  atomic_store_explicit(&e->ino, (unsigned long long)st.st_ino,
                        memory_order_relaxed);
  atomic_store_explicit(&e->state, s, memory_order_release);
  return s;
}

gev__fd *gev__fd_get(int fd) {
  gev__fd *e = gev__fd_slot(fd, 1);
  if (!e) {
    errno = fd < 0 ? EBADF : ENOMEM;
    return NULL;
  }
  if (gev__fd_state(e) || learn(fd, e))
    return e;
  return NULL; /* errno from fstat/fcntl: EBADF */
}

unsigned gev__fd_revalidate(int fd, gev__fd *e) {
  struct stat st;
  if (fstat(fd, &st) < 0) {
    atomic_store_explicit(&e->state, 0, memory_order_release);
    return 0;
  }
  if ((unsigned long long)st.st_dev ==
          atomic_load_explicit(&e->dev, memory_order_relaxed) &&
      (unsigned long long)st.st_ino ==
          atomic_load_explicit(&e->ino, memory_order_relaxed))
    return gev__fd_state(e);
  return learn(fd, e); /* the number was closed and reused behind gev */
}

void gev__fd_forget(int fd) {
  gev__fd *e = gev__fd_slot(fd, 0);
  if (e)
    atomic_store_explicit(&e->state, 0, memory_order_release);
}

void gev__fd_copy(int oldfd, int newfd) {
  gev__fd *from = gev__fd_peek(oldfd), *to;
  if (!from || !(to = gev__fd_slot(newfd, 1))) {
    gev__fd_forget(newfd);
    return;
  }
  atomic_store_explicit(
      &to->rcvtimeo_us,
      atomic_load_explicit(&from->rcvtimeo_us, memory_order_relaxed),
      memory_order_relaxed);
  atomic_store_explicit(
      &to->sndtimeo_us,
      atomic_load_explicit(&from->sndtimeo_us, memory_order_relaxed),
      memory_order_relaxed);
  atomic_store_explicit(&to->dev,
                        atomic_load_explicit(&from->dev, memory_order_relaxed),
                        memory_order_relaxed);
  atomic_store_explicit(&to->ino,
                        atomic_load_explicit(&from->ino, memory_order_relaxed),
                        memory_order_relaxed);
  atomic_store_explicit(&to->state, gev__fd_state(from), memory_order_release);
}

int gev__fd_make_nonblocking(int fd, gev__fd *e) {
  int fl = GEV_REAL(fcntl)(fd, F_GETFL);
  if (fl < 0)
    return -1;
  if (!(fl & O_NONBLOCK) && GEV_REAL(fcntl)(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return -1;
  atomic_fetch_or_explicit(&e->state, GEV__FD_UNDER_NB, memory_order_acq_rel);
  return 0;
}

void gev__fd_set_user_nonblocking(gev__fd *e, int on) {
  if (on)
    atomic_fetch_or_explicit(&e->state, GEV__FD_USER_NB, memory_order_acq_rel);
  else
    atomic_fetch_and_explicit(&e->state, ~(unsigned)GEV__FD_USER_NB,
                              memory_order_acq_rel);
}

void gev__fd_set_timeout(gev__fd *e, short events, long long us) {
  atomic_store_explicit(events & POLLOUT ? &e->sndtimeo_us : &e->rcvtimeo_us,
                        us, memory_order_relaxed);
}

double gev__fd_timeout(int fd, gev__fd *e, short events) {
  atomic_llong *field = events & POLLOUT ? &e->sndtimeo_us : &e->rcvtimeo_us;
  long long us = atomic_load_explicit(field, memory_order_relaxed);
  struct timeval tv;
  socklen_t len = sizeof tv;
  if (!(gev__fd_state(e) & GEV__FD_SOCKET))
    return 0;
  if (us < 0) {
    us = 0;
    if (getsockopt(fd, SOL_SOCKET, events & POLLOUT ? SO_SNDTIMEO : SO_RCVTIMEO,
                   &tv, &len) == 0)
      us = (long long)tv.tv_sec * 1000000 + tv.tv_usec;
    atomic_store_explicit(field, us, memory_order_relaxed);
  }
  return (double)us / 1e6;
}

void gev__fd_waiter(int fd, int delta) {
  gev__fd *e = gev__fd_slot(fd, 1);
  if (e)
    atomic_fetch_add_explicit(&e->waiters, (unsigned)delta,
                              memory_order_relaxed);
}

void gev__fd_reset_waiters(void) {
  for (unsigned i = 0; i < NCHUNKS; i++) {
    gev__fd *chunk = atomic_load_explicit(&chunks[i], memory_order_acquire);
    for (unsigned j = 0; chunk && j < CHUNK_SIZE; j++)
      atomic_store_explicit(&chunk[j].waiters, 0, memory_order_relaxed);
  }
}
