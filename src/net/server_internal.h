/*
 * Internal: what layers built on the stream server (TLS) need from it.
 */
#ifndef GEV_SRC_NET_SERVER_INTERNAL_H
#define GEV_SRC_NET_SERVER_INTERNAL_H

#include <sys/socket.h>

#include "gev/server.h"

/* Calls fn(arg) once when srv is freed, after its handlers were told to
 * stop, so a layer that wrapped the handler can drop its state (handlers
 * still unwinding must hold their own reference to it). One per server. */
void gev__server_on_free(gev_server *srv, void (*fn)(void *arg), void *arg);

/* ---- Servers over several threads (server_threads.c) -------------------- */

/* What a secondary server of another thread is made from: the primary's
 * normalised options (host, listener and the rest as the primary got
 * them), its handler, and where it listens. */
typedef struct gev__server_spec {
  int datagram;
  gev_server_opts opts;
  gev_stream_handler_fn on_stream;
  gev_datagram_handler_fn on_datagram;
  void *arg;
  struct sockaddr_storage addr; /* the primary's bound address */
  socklen_t addrlen;
  int shared_fd; /* the program's listener, shared by every thread; -1:
                    each thread binds its own with SO_REUSEPORT */
} gev__server_spec;

typedef struct gev__server_group gev__server_group;

/* A group for spec->opts.threads hubs (the primary's and threads - 1 new
 * ones, not started yet). NULL with ENOMEM. */
gev__server_group *gev__server_group_new(const gev__server_spec *spec);
/* Starts the threads not started yet (in gev_server_start); returns how
 * many it started (failures are logged). */
int gev__server_group_start(gev__server_group *g);
/* Closes every secondary (in gev_server_close); any thread still starting
 * closes its server as soon as it has one. */
void gev__server_group_close(gev__server_group *g);
/* Parks until every thread has stopped its server and ended, and joins
 * them. 0, or -1 with errno (the caller was killed: they end alone). */
int gev__server_group_join(gev__server_group *g);
/* Closes, joins when can_wait (else detaches), and lets go of the group
 * (the last thread out frees it). */
void gev__server_group_free(gev__server_group *g, int can_wait);

#endif
