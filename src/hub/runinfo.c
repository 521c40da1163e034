/*
 * Run info (gevent's print_run_info / format_run_info): the hub's
 * counters, then every coroutine the hub knows, with its state, what it is
 * parked on and for how long, and its backtrace (gev_coro_backtrace).
 *
 * The report is made of lines handed to a sink, so that one formatter
 * serves a FILE (gev_print_run_info) and the log hook (gev_log_run_info,
 * one message per line).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hub/hub_internal.h"

#define MAX_FRAMES 48

typedef struct sink {
  void (*line)(struct sink *s, const char *text);
  FILE *out;
  gev_log_level level;
} sink;

static void emit(sink *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void emit(sink *s, const char *fmt, ...) {
  char text[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  s->line(s, text);
}

static void file_line(sink *s, const char *text) {
  fprintf(s->out, "%s\n", text);
}
static void log_line(sink *s, const char *text) {
  gev__log(s->level, "%s", text);
}

const char *gev__greenlet_state(const gev_greenlet *g) {
  if (!g->started && !g->ready)
    return "not started";
  if (g->ready)
    return g->err ? "failed" : "finished";
  return g->task.parked ? "parked" : "running";
}

/* The backtrace of a coroutine of this thread, one line per frame. */
static void emit_backtrace(sink *s, gev_coro *c) {
  void *frames[MAX_FRAMES];
  char where[256];
  int n = gev_coro_backtrace(c, frames, MAX_FRAMES);
  if (n < 0 && errno == EBUSY) {
    emit(s,
         "      (stack saved (%zu bytes), not unwound: this report is made on "
         "the shared region)",
         gev__coro_saved_bytes(c));
    return;
  }
  if (n < 0) {
    emit(s, "      (no backtrace: %s)", strerror(errno));
    return;
  }
  for (int i = 0; i < n; i++)
    emit(s, "      #%-2d %s", i,
         gev_describe_address(frames[i], 0, where, sizeof where));
}

/* "parked on <what> for 1.5 s", or nothing for a task that is not parked. */
static void parked_suffix(const gev__task *t, double now, char *buf,
                          size_t size) {
  buf[0] = '\0';
  if (t->parked)
    snprintf(buf, size, " on %s for %.3f s", t->what ? t->what : "?",
             now - t->parked_at);
}

/* The backtrace, unless c is the caller (whose frames would show this
 * report being made). */
static void emit_stack(sink *s, gev_coro *c) {
  if (c == gev_coro_current())
    emit(s, "      (making this report)");
  else
    emit_backtrace(s, c);
}

static void describe_greenlet(sink *s, gev_greenlet *g, double now) {
  char parked[128], id[32] = "";
  parked_suffix(&g->task, now, parked, sizeof parked);
  if (g->coro)
    snprintf(id, sizeof id, " (id %llu)", gev_coro_id(g->coro));
  emit(s, "  %s: %s%s%s%s", gev_greenlet_name(g), gev__greenlet_state(g),
       parked, g->task.killed && !g->ready ? " (killed)" : "", id);
  if (g->coro && g->started && !g->ready)
    emit_stack(s, g->coro);
}

static void describe_task(sink *s, const char *kind, gev__task *t, double now) {
  char parked[128];
  parked_suffix(t, now, parked, sizeof parked);
  emit(s, "  %s: %s%s (id %llu)", kind, t->parked ? "parked" : "running",
       parked, gev_coro_id(t->coro));
  emit_stack(s, t->coro);
}

static void run_info(sink *s) {
  gev__hub *h = gev__hub_peek();
  double now = gev_monotonic();
  if (!h) {
    emit(s, "gev: no hub in this thread");
    return;
  }
  emit(s,
       "gev hub %llu (thread %d): %zu greenlets, %zu running, %zu parked, "
       "%zu callbacks queued, %lu turns",
       h->id, h->tid, h->ngreenlets, h->nrunning, h->nparked, h->ncallbacks,
       h->turns);
  describe_task(s, "main", &h->main_task, now);
  for (gev__task *t = h->plain_tasks; t; t = t->plain_next) {
    char kind[96];
    snprintf(kind, sizeof kind, "coroutine %s", gev_coro_name(t->coro));
    describe_task(s, kind, t, now);
  }
  for (gev_greenlet *g = h->greenlets; g; g = g->next)
    describe_greenlet(s, g, now);
}

GEV_EXTERN void gev_print_run_info(FILE *out) {
  sink s = {.line = file_line, .out = out};
  if (out)
    run_info(&s);
}

GEV_EXTERN void gev_log_run_info(gev_log_level level) {
  sink s = {.line = log_line, .level = level};
  run_info(&s);
}
