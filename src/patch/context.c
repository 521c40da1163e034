/*
 * The context rule (see coop.h) and the per-thread switch of gev/patch.h.
 */
#include "coop.h"

/* Zero-initialised: every thread starts enabled. */
static __thread int thread_disabled;

int gev__patch_coop(void) {
  return !thread_disabled && gev_hub_exists() && !gev_in_hub();
}

GEV_EXTERN int gev_patch_enable(void) {
  int was = !thread_disabled;
  thread_disabled = 0;
  return was;
}

GEV_EXTERN int gev_patch_disable(void) {
  int was = !thread_disabled;
  thread_disabled = 1;
  return was;
}

GEV_EXTERN int gev_patch_enabled(void) { return !thread_disabled; }
