/*
 * Timeout scopes (gevent.Timeout). A scope is a deadline attached to the
 * coroutine that started it. gev__park arms the task's one deadline timer
 * at the earliest of the call's own timeout and the scopes' deadlines; when
 * a scope's deadline fires it is marked expired, and from then on
 * gev__may_block fails every blocking call with ETIMEDOUT until the scope is
 * cancelled. The scope state is on the heap, never on the coroutine stack,
 * so shared-stack coroutines can be parked with scopes pending. Deadlines
 * are points on gev_monotonic()'s clock, so a step of the wall clock (NTP,
 * a resumed VM) neither expires nor extends a scope.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "hub/hub_internal.h"

GEV_EXTERN gev_timeout *gev_timeout_start(double seconds) {
  gev__hub *h = gev__hub_get();
  gev__task *t;
  gev_timeout *s;
  if (!h || gev__bad_timeout(seconds))
    return NULL;
  if (gev_in_hub()) {
    errno = EPERM;
    return NULL;
  }
  if (!(t = gev__task_current()) || !(s = calloc(1, sizeof *s)))
    return NULL;
  s->task = t;
  s->deadline = seconds < 0 ? HUGE_VAL : gev_monotonic() + seconds;
  s->next = t->scopes;
  t->scopes = s;
  return s;
}

GEV_EXTERN int gev_timeout_expired(const gev_timeout *s) {
  return s && (s->expired ||
               (s->deadline != HUGE_VAL && gev_monotonic() >= s->deadline));
}

GEV_EXTERN void gev_timeout_cancel(gev_timeout *s) {
  gev_timeout **p;
  if (!s)
    return;
  for (p = &s->task->scopes; *p; p = &(*p)->next) {
    if (*p == s) {
      *p = s->next;
      break;
    }
  }
  if (s->task->armed_scope == s)
    s->task->armed_scope = NULL;
  free(s);
}

double gev__scopes_deadline(gev__task *t, gev_timeout **which) {
  double at = HUGE_VAL;
  *which = NULL;
  for (gev_timeout *s = t->scopes; s; s = s->next) {
    if (s->deadline < at) {
      at = s->deadline;
      *which = s;
    }
  }
  return at;
}

int gev__scopes_expired(gev__task *t) {
  double now;
  if (!t || !t->scopes)
    return 0;
  now = gev_monotonic();
  for (gev_timeout *s = t->scopes; s; s = s->next) {
    if (!s->expired && s->deadline != HUGE_VAL && now >= s->deadline)
      s->expired = 1;
    if (s->expired)
      return 1;
  }
  return 0;
}

/* A task going away takes its scopes with it; handles the user still has
 * become dangling, as a freed object would. */
void gev__scopes_drop(gev__task *t) {
  gev_timeout *s;
  while ((s = t->scopes)) {
    t->scopes = s->next;
    free(s);
  }
}
