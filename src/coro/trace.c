/*
 * The trace hook (gev_set_trace, greenlet.settrace).
 *
 * The hook is per thread and lives in the thread's coroutine state, next
 * to what every switch reads anyway. coro.c consults it in the few places
 * marked "the trace hook": the direct switch only checks that none is set
 * (and takes the general path otherwise), the general switch, the
 * forwarding of a kill into an unstarted coroutine, and creation.
 */
#include "coro/coro_internal.h"

__attribute__((cold)) void gev__trace(gev__cthread *t, gev_trace_event event,
                                      gev_coro *from, gev_coro *to) {
  t->trace(event, from, to, t->trace_arg);
}

GEV_EXTERN int gev_set_trace(gev_trace_fn fn, void *arg) {
  gev__cthread *t = gev__cthread_get();
  if (!t)
    return -1;
  t->trace = fn;
  t->trace_arg = fn ? arg : NULL;
  return 0;
}

GEV_EXTERN gev_trace_fn gev_get_trace(void **arg) {
  gev__cthread *t = gev__cthread_peek();
  if (arg)
    *arg = t ? t->trace_arg : NULL;
  return t ? t->trace : NULL;
}
