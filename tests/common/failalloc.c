/*
 * The --wrap side of failalloc.h: each wrapper asks should_fail() and
 * either fails like the real call would under memory pressure or calls
 * it (__real_x is the real symbol, which sanitizers intercept as usual).
 * Whatever is linked statically into the test goes through here, Check
 * included: arm a failure just around the call under test, and disarm it
 * before asserting anything.
 */
#include "failalloc.h"

#include <errno.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/types.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd,
                  off_t off);
void *__real_mmap64(void *addr, size_t len, int prot, int flags, int fd,
                    off_t off);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd,
                  off_t off);
void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd,
                    off_t off);

static unsigned armed_kinds;
static unsigned long first, last; /* fail calls first..last (0: no end) */
static unsigned long calls, failed;

void gev_test_fail_alloc(unsigned kinds, unsigned long nth,
                         unsigned long count) {
  __atomic_store_n(&armed_kinds, 0, __ATOMIC_SEQ_CST);
  calls = failed = 0;
  first = nth;
  last = count ? nth + count - 1 : 0;
  __atomic_store_n(&armed_kinds, nth ? kinds : 0, __ATOMIC_SEQ_CST);
}

unsigned long gev_test_alloc_calls(void) {
  return __atomic_load_n(&calls, __ATOMIC_SEQ_CST);
}

unsigned long gev_test_alloc_failed(void) {
  return __atomic_load_n(&failed, __ATOMIC_SEQ_CST);
}

void failalloc_after(long n) {
  if (n < 0)
    gev_test_fail_alloc(0, 0, 0);
  else
    gev_test_fail_alloc(GEV_TEST_ALLOC_HEAP, (unsigned long)n + 1, 1);
}

int failalloc_fired(void) { return gev_test_alloc_failed() > 0; }

static int should_fail(unsigned kind) {
  unsigned long n;
  if (!(__atomic_load_n(&armed_kinds, __ATOMIC_SEQ_CST) & kind))
    return 0;
  n = __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
  if (n < first || (last && n > last))
    return 0;
  __atomic_add_fetch(&failed, 1, __ATOMIC_SEQ_CST);
  errno = ENOMEM;
  return 1;
}

void *__wrap_malloc(size_t n) {
  return should_fail(GEV_TEST_ALLOC_MALLOC) ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size) {
  return should_fail(GEV_TEST_ALLOC_CALLOC) ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n) {
  return should_fail(GEV_TEST_ALLOC_REALLOC) ? NULL : __real_realloc(p, n);
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd,
                  off_t off) {
  if (should_fail(GEV_TEST_ALLOC_MMAP))
    return MAP_FAILED;
  return __real_mmap(addr, len, prot, flags, fd, off);
}

/* With _FILE_OFFSET_BITS=64 (meson's default) calls of mmap reach the
 * linker as mmap64. */
void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd,
                    off_t off) {
  if (should_fail(GEV_TEST_ALLOC_MMAP))
    return MAP_FAILED;
  return __real_mmap64(addr, len, prot, flags, fd, off);
}
