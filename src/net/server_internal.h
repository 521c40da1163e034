/*
 * Internal: what layers built on the stream server (TLS) need from it.
 */
#ifndef GEV_SRC_NET_SERVER_INTERNAL_H
#define GEV_SRC_NET_SERVER_INTERNAL_H

#include "gev/server.h"

/* Calls fn(arg) once when srv is freed, after its handlers were told to
 * stop, so a layer that wrapped the handler can drop its state (handlers
 * still unwinding must hold their own reference to it). One per server. */
void gev__server_on_free(gev_server *srv, void (*fn)(void *arg), void *arg);

#endif
