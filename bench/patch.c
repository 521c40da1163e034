/*
 * Cost of a patched read/write on a ready socket, against the raw system
 * calls in the same run.
 *
 *   patch.rw.gev    in a greenlet, write(2) one byte to one end of a Unix
 *                   socket pair and read(2) it from the other, both
 *                   through libgev-patch on sockets the program sees as
 *                   blocking (gev made them non-blocking underneath): the
 *                   cooperative path, which never parks here because the
 *                   byte is always there (ns per write+read pair).
 *   patch.rw.ref    the same pair on the same sockets as raw
 *                   syscall(SYS_write/SYS_read): no libgev-patch, no libc
 *                   wrapper.
 *   patch.rw.libc   the same pair through libc's own read and write
 *                   (found with dlsym(RTLD_NEXT)): what the program paid
 *                   before, so gev / libc is the interposition's price.
 *   patch.rw.gev.nohub / patch.rw.ref.nohub
 *                   write+read and the raw pair from the main coroutine of
 *                   a thread without a hub, on blocking sockets:
 *                   libgev-patch passes the calls through.
 *
 * Target: patch.rw.gev <= 1.1 x patch.rw.ref. Figures of one phase are
 * measured in interleaved rounds on the same sockets, and each is its
 * best round. The program checks that it measured what it says: in the
 * greenlet the sockets are non-blocking in the kernel and blocking in the
 * program's view (the cooperative path ran) and no wait was parked; the
 * pass-through phase made no hub and left the sockets blocking.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"
#include "gev/hub.h"
#include "gev/patch.h"

enum { ROUNDS = 100, PAIRS = 20000 };

static int sv[2];

typedef ssize_t (*io_fn)(int, void *, size_t);

static ssize_t raw_read(int fd, void *buf, size_t n) {
  return syscall(SYS_read, fd, buf, n);
}
static ssize_t raw_write(int fd, void *buf, size_t n) {
  return syscall(SYS_write, fd, buf, n);
}
static ssize_t libc_write(int fd, void *buf, size_t n) {
  return write(fd, buf, n);
}

static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t unpatched_read(int fd, void *buf, size_t n) {
  return real_read(fd, buf, n);
}
static ssize_t unpatched_write(int fd, void *buf, size_t n) {
  return real_write(fd, buf, n);
}

/* ns per write+read pair of one byte. */
static double pairs(io_fn wr, io_fn rd) {
  char c = 'x';
  double t0 = bench_now_ns();
  for (int i = 0; i < PAIRS; i++)
    if (wr(sv[1], &c, 1) != 1 || rd(sv[0], &c, 1) != 1)
      bench_die("write/read");
  return (bench_now_ns() - t0) / PAIRS;
}

/* Non-zero when the kernel has O_NONBLOCK on fd while the program's view
 * (fcntl through libgev-patch) has not. */
static int nonblocking_underneath(int fd) {
  char path[64], line[128];
  unsigned long flags = 0;
  FILE *f;
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  if (!(f = fopen(path, "r")))
    bench_die("fdinfo");
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "flags: %lo", &flags) == 1)
      break;
  fclose(f);
  return (flags & O_NONBLOCK) && !(fcntl(fd, F_GETFL) & O_NONBLOCK);
}

static double best_gev, best_ref, best_libc;

static void *in_greenlet(void *arg) {
  gev_patch_stats st;
  (void)arg;
  pairs(libc_write, read); /* warm up; makes both ends non-blocking */
  if (!nonblocking_underneath(sv[0]) || !nonblocking_underneath(sv[1])) {
    fprintf(stderr, "bench: the cooperative path did not run\n");
    exit(1);
  }
  for (int r = 0; r < ROUNDS; r++) {
    bench_keep_min(&best_gev, pairs(libc_write, read));
    bench_keep_min(&best_ref, pairs(raw_write, raw_read));
    bench_keep_min(&best_libc, pairs(unpatched_write, unpatched_read));
  }
  gev_patch_get_stats(&st);
  if (st.parked || st.watchers) {
    fprintf(stderr, "bench: a wait was parked\n");
    exit(1);
  }
  return NULL;
}

int main(void) {
  double best_nohub = 0, best_ref_nohub = 0;
  real_read = (ssize_t(*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
  real_write = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
  if (!real_read || !real_write)
    bench_die("dlsym");
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
    bench_die("socketpair");
  for (int r = 0; r < ROUNDS; r++) {
    bench_keep_min(&best_nohub, pairs(libc_write, read));
    bench_keep_min(&best_ref_nohub, pairs(raw_write, raw_read));
  }
  if (gev_hub_exists() || (fcntl(sv[0], F_GETFL) & O_NONBLOCK)) {
    fprintf(stderr, "bench: the pass-through phase changed something\n");
    return 1;
  }
  if (gev_spawn_raw(in_greenlet, NULL) < 0 || gev_run() < 0)
    bench_die("gev_run");
  bench_print("patch.rw.gev", best_gev, 1, "ns");
  bench_print("patch.rw.ref", best_ref, 1, "ns");
  bench_print("patch.rw.libc", best_libc, 1, "ns");
  bench_print("patch.rw.gev.nohub", best_nohub, 1, "ns");
  bench_print("patch.rw.ref.nohub", best_ref_nohub, 1, "ns");
  fprintf(stderr,
          "patched pair / raw pair = %.3f in a greenlet, %.3f without a hub; "
          "patched / libc's own = %.3f\n",
          best_gev / best_ref, best_nohub / best_ref_nohub,
          best_gev / best_libc);
  close(sv[0]);
  close(sv[1]);
  gev_hub_destroy();
  return 0;
}
