/*
 * Talking to a child: gev_process_communicate and gev_process_run (see
 * gev/process.h).
 *
 * One greenlet serves all three pipes: it tries each open stream without
 * waiting (a write of what is left of the input, a read into the growing
 * output buffers) and, when none made progress, parks once on all of them
 * with io watchers of its own (in a heap block: the shared-stack rule)
 * until one is ready. So a child that fills its stdout pipe while we feed
 * its stdin, or writes both outputs at once, never deadlocks with us, and
 * no helper greenlet has to be stopped when the caller is killed or times
 * out. A pass that did make progress is followed by another, yielding to
 * the hub every few passes so that a child that writes without pause does
 * not starve the other greenlets.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "gev/log.h"
#include "proc/process_internal.h"

#define READ_CHUNK 65536 /* a pipe's default capacity */
#define PASSES_PER_YIELD 16

enum { IN = 0, OUT = 1, ERR = 2 };

/* What one communicate call keeps on the heap. */
typedef struct comm {
  gev__task *task;          /* ro: the caller */
  gev_socket *s[3];         /* ro: the process's pipes, NULL when not used */
  ev_io io[3];              /* private: active while parked */
  gev_bytes *buf[3];        /* ro: the caller's outputs (OUT, ERR) or NULL */
  size_t cap[3];            /* rw: allocated size of buf[i]->data */
  const char *input;        /* ro */
  size_t input_len, sent;   /* ro, rw */
  char scratch[READ_CHUNK]; /* private: reads nobody keeps */
} comm;

static void ready_cb(struct ev_loop *loop, ev_io *w, int revents) {
  (void)loop, (void)revents;
  gev__wake(w->data, NULL, 0);
}

/* Closes stream i: end of input sent, or end of output read. */
static void stream_done(comm *c, int i) {
  gev_socket_close(c->s[i]);
  c->s[i] = NULL;
}

/* Makes room for a read into buf i; the read target, or NULL (ENOMEM). */
static char *room(comm *c, int i, size_t *len) {
  gev_bytes *b = c->buf[i];
  if (!b) {
    *len = sizeof c->scratch;
    return c->scratch;
  }
  if (c->cap[i] - b->len < READ_CHUNK + 1) {
    size_t cap = c->cap[i] ? c->cap[i] * 2 : READ_CHUNK * 2;
    char *d = realloc(b->data, cap);
    if (!d)
      return NULL;
    b->data = d;
    b->data[b->len] = '\0';
    c->cap[i] = cap;
  }
  *len = c->cap[i] - b->len - 1;
  return b->data + b->len;
}

/* One non-blocking step on stream i: 1 progress, 0 would block, -1 error. */
static int step(comm *c, int i) {
  ssize_t n;
  size_t len;
  char *to;
  if (i == IN) {
    n = gev_socket_send(c->s[IN], c->input + c->sent, c->input_len - c->sent,
                        MSG_DONTWAIT);
    if (n < 0 && errno == EPIPE)
      n = (ssize_t)(c->input_len - c->sent); /* it stopped reading */
    if (n >= 0 && (c->sent += (size_t)n) == c->input_len)
      stream_done(c, IN);
  } else {
    if (!(to = room(c, i, &len)))
      return -1;
    n = gev_socket_recv(c->s[i], to, len, MSG_DONTWAIT);
    if (n > 0 && c->buf[i]) {
      c->buf[i]->len += (size_t)n;
      c->buf[i]->data[c->buf[i]->len] = '\0';
    }
    if (n == 0)
      stream_done(c, i);
  }
  if (n < 0)
    return errno == EAGAIN ? 0 : -1;
  return 1;
}

/* One pass over the open streams: 1 if any made progress, 0 if none
 * could, -1 on error. */
static int pass(comm *c) {
  int progress = 0;
  for (int i = IN; i <= ERR; i++) {
    int rc = c->s[i] ? step(c, i) : 0;
    if (rc < 0)
      return -1;
    progress |= rc;
  }
  return progress;
}

static int any_open(const comm *c) {
  return c->s[IN] || c->s[OUT] || c->s[ERR];
}

/* Parks until one open stream is ready, or timeout. */
static int park_on_streams(comm *c, double timeout) {
  struct ev_loop *loop = gev_hub_loop();
  int rc;
  for (int i = IN; i <= ERR; i++) {
    if (!c->s[i])
      continue;
    ev_io_init(&c->io[i], ready_cb, gev_socket_fileno(c->s[i]),
               i == IN ? EV_WRITE : EV_READ);
    c->io[i].data = c->task;
    ev_io_start(loop, &c->io[i]);
    gev__watcher_started();
  }
  rc = gev__park(timeout, "process communicate", NULL);
  for (int i = IN; i <= ERR; i++) {
    if (ev_is_active(&c->io[i])) {
      ev_io_stop(loop, &c->io[i]);
      gev__watcher_stopped();
    }
  }
  return rc;
}

/* Seconds left before deadline (< 0: none), or -1 with ETIMEDOUT. */
static int time_left(double deadline, double *left) {
  *left = -1;
  if (deadline < 0)
    return 0;
  *left = deadline - gev_monotonic();
  if (*left > 0)
    return 0;
  errno = ETIMEDOUT;
  return -1;
}

/* Moves data through the pipes until every one is closed. 0 or -1. */
static int pump(comm *c, double deadline) {
  double left;
  int rc, passes = 0;
  while (any_open(c)) {
    if ((rc = pass(c)) < 0 || time_left(deadline, &left) < 0)
      return -1;
    if (rc > 0) {
      if (++passes % PASSES_PER_YIELD == 0 && gev_sleep(0) < 0)
        return -1;
      continue;
    }
    if (park_on_streams(c, left) < 0)
      return -1;
  }
  return 0;
}

static void bytes_init(gev_bytes *b) {
  if (b) {
    b->data = NULL;
    b->len = 0;
  }
}

static comm *comm_new(gev_process *p, const void *input, size_t len,
                      gev_bytes *out, gev_bytes *err) {
  comm *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  if (!(c->task = gev__task_current())) {
    free(c);
    return NULL;
  }
  for (int i = IN; i <= ERR; i++)
    c->s[i] =
        p->stdio[i] && !gev_socket_closed(p->stdio[i]) ? p->stdio[i] : NULL;
  c->buf[OUT] = out;
  c->buf[ERR] = err;
  c->input = input;
  c->input_len = len;
  if (c->s[IN] && len == 0)
    stream_done(c, IN); /* nothing to say: end of file at once */
  return c;
}

GEV_EXTERN int gev_process_communicate(gev_process *p, const void *input,
                                       size_t len, gev_bytes *out,
                                       gev_bytes *err, double timeout) {
  double deadline, left;
  comm *c;
  int rc = -1;
  bytes_init(out);
  bytes_init(err);
  if (gev__process_check(p) < 0)
    return -1;
  if (isnan(timeout) || (len && (!input || !p->stdio[IN]))) {
    errno = EINVAL;
    return -1;
  }
  if (gev__may_block() < 0)
    return -1;
  deadline = timeout >= 0 ? gev_monotonic() + timeout : -1;
  gev__process_enter(p);
  if (!(c = comm_new(p, input, len, out, err)))
    goto out_leave;
  if (pump(c, deadline) == 0 && time_left(deadline, &left) == 0)
    rc = gev_process_wait(p, deadline < 0 ? -1 : left);
  free(c);
out_leave:
  gev__process_leave(p);
  return rc;
}

GEV_EXTERN int gev_process_run_opts(const char *const argv[],
                                    const gev_process_opts *opts,
                                    const gev_bytes *input, gev_bytes *out,
                                    gev_bytes *err, double timeout) {
  gev_process_opts o = {0};
  gev_process *p;
  int rc;
  bytes_init(out);
  bytes_init(err);
  if (opts)
    o = *opts;
  o.in.mode = input ? GEV_STDIO_PIPE : GEV_STDIO_DEVNULL;
  o.out.mode = out ? GEV_STDIO_PIPE : GEV_STDIO_INHERIT;
  o.err.mode = err ? GEV_STDIO_PIPE : GEV_STDIO_INHERIT;
  if (!(p = gev_process_spawn(argv, &o)))
    return -1;
  rc = gev_process_communicate(p, input ? input->data : NULL,
                               input ? input->len : 0, out, err, timeout);
  if (rc < 0)
    gev__process_kill_now(p); /* the hub reaps it (see gev_process_free) */
  gev_process_free(p);
  return rc;
}

GEV_EXTERN int gev_process_run(const char *const argv[], const gev_bytes *input,
                               gev_bytes *out, gev_bytes *err, double timeout) {
  return gev_process_run_opts(argv, NULL, input, out, err, timeout);
}
