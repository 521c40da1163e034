/*
 * The real libc calls behind every interposed name, resolved once with
 * dlsym(RTLD_NEXT, ...): the next definition after this library in the
 * lookup order (libc's, or another interposer's such as ASan's).
 *
 * They are resolved by a constructor, before the program's own code runs,
 * and again on demand for calls made before that constructor (another
 * library's constructor may read or write first). Resolving twice is
 * harmless: both store the same pointers. dlsym may allocate, which is
 * why the allocator is never interposed.
 */
#include "coop.h"

#include <stdlib.h>

gev__patch_real gev__patch_reals;
atomic_int gev__patch_reals_ready;

void gev__patch_resolve(void) {
  gev__patch_real r;
#define GEV_PATCH_RESOLVE(name)                                                \
  r.name = (__typeof__(r.name))dlsym(RTLD_NEXT, #name);
  GEV_PATCH_REAL_CALLS(GEV_PATCH_RESOLVE)
#undef GEV_PATCH_RESOLVE
  /* glibc before 2.28 has no fcntl64; its fcntl is the same call. */
  if (!r.fcntl64)
    r.fcntl64 = r.fcntl;
#define GEV_PATCH_CHECK(name)                                                  \
  if (!r.name)                                                                 \
    abort(); /* LCOV_EXCL_LINE: libc without a POSIX call */
  GEV_PATCH_REAL_CALLS(GEV_PATCH_CHECK)
#undef GEV_PATCH_CHECK
  gev__patch_reals = r;
  atomic_store_explicit(&gev__patch_reals_ready, 1, memory_order_release);
}

__attribute__((constructor)) static void resolve_at_load(void) {
  gev__patch_resolve();
}
