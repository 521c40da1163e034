/*
 * A server over several threads (gev_server_opts.threads, gev/server.h):
 * one hub per thread, each with a server of its own on the same address.
 *
 * The server the program created (the primary) runs in its thread's hub
 * as any server does. Starting it starts threads - 1 more threads; each
 * makes a hub, a listener (its own socket bound to the primary's address
 * with SO_REUSEPORT, so the kernel spreads connections over the threads;
 * or, when the program gave a listener, a dup of it, which every thread's
 * loop then watches), and a secondary server with the primary's options
 * and handler, and serves until it is closed. Closing the primary closes
 * every secondary, through gev_run_callback_threadsafe into its hub;
 * stopping the primary (gev_server_stop, the end of serve_forever) then
 * waits, parked, for each thread to finish its own stop and tear its hub
 * down, and joins it.
 *
 * The group is shared by the primary and its threads: reference-counted
 * under its lock, so a primary freed where it cannot wait (from the hub)
 * leaves the threads their group, and the last one out frees it. A
 * thread that could not serve (its listener or server failed) logs why
 * and exits; the others serve on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coro/log_internal.h"
#include "gev/sync.h"
#include "gev/thread.h"
#include "hub/xthread.h"
#include "net/listener.h"
#include "net/server_internal.h"

typedef struct member {
  pthread_t tid;
  struct gev__server_group *group;
  int started;     /* the thread exists (join it) */
  gev_server *srv; /* its server while it serves (under the lock) */
  gev_hub *hub;    /* its hub, once it has one (under the lock) */
} member;

struct gev__server_group {
  pthread_mutex_t lock;
  unsigned refs; /* the primary's, and one per running thread */
  int closing;   /* close every secondary as soon as it exists */
  int joined;    /* the threads have been joined */
  gev__server_spec spec;
  char *name;            /* owned copy behind spec.opts.name */
  gev_semaphore *exited; /* released by each thread as it ends (belongs
                            to the primary's hub) */
  int n;                 /* secondary threads */
  member m[];
};

static void group_release(gev__server_group *g) {
  int last;
  pthread_mutex_lock(&g->lock);
  last = --g->refs == 0;
  pthread_mutex_unlock(&g->lock);
  if (!last)
    return;
  for (int i = 0; i < g->n; i++)
    gev_hub_unref(g->m[i].hub);
  gev_semaphore_free(g->exited);
  free(g->name);
  pthread_mutex_destroy(&g->lock);
  free(g);
}

gev__server_group *gev__server_group_new(const gev__server_spec *spec) {
  int n = spec->opts.threads - 1;
  gev__server_group *g = calloc(1, sizeof *g + (size_t)n * sizeof(member));
  if (!g) {
    errno = ENOMEM;
    return NULL;
  }
  g->spec = *spec;
  g->n = n;
  g->refs = 1;
  if ((spec->opts.name && !(g->name = strdup(spec->opts.name))) ||
      !(g->exited = gev_semaphore_new(0))) {
    free(g->name);
    free(g);
    errno = ENOMEM;
    return NULL;
  }
  g->spec.opts.name = g->name;
  pthread_mutex_init(&g->lock, NULL);
  for (int i = 0; i < n; i++)
    g->m[i].group = g;
  return g;
}

/* ---- A secondary thread ----------------------------------------------------
 */

/* Its listener: a dup of the primary's, or a socket of its own on the
 * primary's address. NULL with errno. */
static gev_socket *member_listener(const gev__server_spec *s) {
  int fd;
  if (s->shared_fd >= 0) {
    fd = fcntl(s->shared_fd, F_DUPFD_CLOEXEC, 0);
  } else {
    int flags = GEV__LISTEN_REUSEPORT |
                (s->datagram ? 0 : GEV__LISTEN_REUSEADDR | GEV__LISTEN_V6ONLY);
    fd = gev__listener_open((const struct sockaddr *)&s->addr, s->addrlen,
                            s->datagram ? SOCK_DGRAM : SOCK_STREAM, flags,
                            s->datagram ? 0 : s->opts.backlog);
  }
  gev_socket *ls = fd < 0 ? NULL : gev_socket_wrap(fd);
  if (!ls && fd >= 0) {
    int err = errno;
    close(fd);
    errno = err;
  }
  return ls;
}

static gev_server *member_server(const gev__server_spec *s) {
  gev_server_opts o = s->opts;
  gev_server *srv;
  o.host = NULL;
  o.port = 0;
  o.backlog = 0;
  o.reuseport = 0;
  o.threads = 0;
  if (!(o.listener = member_listener(s)))
    return NULL;
  srv = s->datagram ? gev_datagram_server_new(&o, s->on_datagram, s->arg)
                    : gev_stream_server_new(&o, s->on_stream, s->arg);
  if (!srv) {
    int err = errno;
    gev_socket_close(o.listener);
    errno = err;
  }
  return srv;
}

/* Runs in the member's hub (posted by the primary's close). */
static void close_member(void *arg) {
  member *m = arg;
  if (m->srv)
    gev_server_close(m->srv);
}

static void *member_main(void *arg) {
  member *m = arg;
  gev__server_group *g = m->group;
  gev_server *srv = NULL;
  int closing;
  pthread_mutex_lock(&g->lock);
  closing = g->closing;
  pthread_mutex_unlock(&g->lock);
  if (!closing && !(srv = member_server(&g->spec)))
    gev__log(GEV_LOG_ERROR, "gev: a server thread cannot serve: %s",
             strerror(errno));
  if (srv) {
    pthread_mutex_lock(&g->lock);
    m->srv = srv;
    m->hub = gev_hub_current();
    closing = g->closing;
    pthread_mutex_unlock(&g->lock);
    if (closing)
      gev_server_close(srv);
    gev_server_serve_forever(srv);
    pthread_mutex_lock(&g->lock);
    m->srv = NULL; /* a close posted meanwhile finds nothing to close */
    pthread_mutex_unlock(&g->lock);
    gev_server_free(srv);
  }
  gev_hub_destroy(); /* runs the posted closes, then everything goes */
  gev_semaphore_release(g->exited);
  group_release(g);
  return NULL;
}

/* ---- The primary's side ----------------------------------------------------
 */

int gev__server_group_start(gev__server_group *g) {
  int started = 0, rc;
  for (int i = 0; i < g->n; i++) {
    member *m = &g->m[i];
    if (m->started)
      continue;
    pthread_mutex_lock(&g->lock);
    g->refs++;
    pthread_mutex_unlock(&g->lock);
    if ((rc = gev__thread_spawn(&m->tid, 0, member_main, m)) != 0) {
      group_release(g);
      gev__log(GEV_LOG_ERROR, "gev: cannot start a server thread: %s",
               strerror(rc));
      break;
    }
    m->started = 1;
    started++;
  }
  return started;
}

void gev__server_group_close(gev__server_group *g) {
  pthread_mutex_lock(&g->lock);
  g->closing = 1;
  for (int i = 0; i < g->n; i++)
    if (g->m[i].srv)
      gev_run_callback_threadsafe(g->m[i].hub, close_member, &g->m[i]);
  pthread_mutex_unlock(&g->lock);
}

static int started_count(const gev__server_group *g) {
  int n = 0;
  for (int i = 0; i < g->n; i++)
    n += g->m[i].started;
  return n;
}

int gev__server_group_join(gev__server_group *g) {
  int n;
  if (g->joined)
    return 0;
  n = started_count(g);
  for (int i = 0; i < n; i++)
    if (gev_semaphore_acquire(g->exited, -1) < 0)
      return -1; /* the caller was killed: the threads end on their own */
  for (int i = 0; i < g->n; i++)
    if (g->m[i].started)
      pthread_join(g->m[i].tid, NULL);
  g->joined = 1;
  return 0;
}

void gev__server_group_free(gev__server_group *g, int can_wait) {
  gev__server_group_close(g);
  if (!g->joined && (!can_wait || gev__server_group_join(g) < 0)) {
    for (int i = 0; i < g->n; i++)
      if (g->m[i].started)
        pthread_detach(g->m[i].tid);
    g->joined = 1;
  }
  group_release(g);
}
