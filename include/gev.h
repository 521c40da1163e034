/*
 * gev — gevent for C. One include for the whole public API:
 *   gev/log.h     the log hook and gev's monotonic clock
 *   gev/coro.h    coroutines with greenlet's semantics
 *   gev/hub.h     the hub: greenlets, waiting, timeouts
 *   gev/sync.h    Event, AsyncResult, locks, queues, pools
 *   gev/thread.h  other threads: hub handles, the threadpool
 *   gev/net.h     cooperative sockets
 *   gev/dns.h     asynchronous DNS over c-ares
 *   gev/server.h  StreamServer, DatagramServer
 *   gev/tls.h     TLS streams and servers (when GEV_HAVE_TLS)
 *   gev/signal.h  signal handlers and waits through the hub
 *   gev/prefork.h fork support and the prefork master
 *   gev/process.h child processes (subprocess) and waitpid
 *   gev/monitor.h the blocking monitor, memory watch, state dumps
 * gev/patch.h (the cooperative libc) belongs to a library of its own,
 * libgev-patch, and is included on its own.
 */
#ifndef GEV_H
#define GEV_H

#include "gev/coro.h"
#include "gev/log.h"
#if __has_include("gev/hub.h")
#include "gev/hub.h"
#endif
#if __has_include("gev/sync.h")
#include "gev/sync.h"
#endif
#if __has_include("gev/thread.h")
#include "gev/thread.h"
#endif
#if __has_include("gev/net.h")
#include "gev/net.h"
#endif
#if __has_include("gev/dns.h")
#include "gev/dns.h"
#endif
#if __has_include("gev/server.h")
#include "gev/server.h"
#endif
#if GEV_HAVE_TLS && __has_include("gev/tls.h")
#include "gev/tls.h"
#endif
#if __has_include("gev/signal.h")
#include "gev/signal.h"
#endif
#if __has_include("gev/prefork.h")
#include "gev/prefork.h"
#endif
#if __has_include("gev/process.h")
#include "gev/process.h"
#endif
#if __has_include("gev/monitor.h")
#include "gev/monitor.h"
#endif

#endif
