/* Real servers for the tests of the cooperative libc with real libraries:
 * a throw-away PostgreSQL, a redis-server, and a small HTTP server written
 * with gev's own sockets that answers every request after a delay.
 *
 * The PostgreSQL and redis servers are child processes started before the
 * test process makes a hub (from main, with the real calls). Each start
 * returns 0, or 77 (the exit code meson counts as "skipped") after
 * printing why the server cannot run here, or -1 on failure. */
#ifndef GEV_TESTS_PATCH_SERVERS_H
#define GEV_TESTS_PATCH_SERVERS_H

#include <sys/types.h>

#include "gev/net.h"
#include "gev/sync.h"

/* ---- PostgreSQL
 * -------------------------------------------------------------- */

typedef struct pg_server {
  char dir[64];       /* temporary directory: data/, the socket, the log */
  char conninfo[160]; /* for PQconnectdb */
  char bindir[256];
  int running;
} pg_server;

/* initdb into a temporary directory and pg_ctl start on a Unix socket in
 * it (no TCP), as the unprivileged "postgres" user (runuser) when run as
 * root, since PostgreSQL refuses root. bindir: where initdb and pg_ctl
 * are (from pg_config --bindir), or NULL to look in the usual places.
 * max_connections is 150. */
int pg_server_start(pg_server *pg, const char *bindir);
/* pg_ctl stop (immediate) and removes the directory. */
void pg_server_stop(pg_server *pg);

/* ---- redis
 * ------------------------------------------------------------------- */

typedef struct redis_server {
  pid_t pid;
  int port;
} redis_server;

/* redis-server (path, or NULL for $PATH) on 127.0.0.1:<free port>, no
 * persistence. Returns once it accepts connections. */
int redis_server_start(redis_server *r, const char *path);
void redis_server_stop(redis_server *r);

/* ---- HTTP that answers late (gev sockets, in the test's hub) ------------- */

typedef struct http_delay http_delay;

/* Listens on 127.0.0.1:<free port>; every connection gets one response
 * ("HTTP/1.1 200 OK", body "hello", Connection: close) delay seconds
 * after its request's header arrived. NULL on failure. */
http_delay *http_delay_start(double delay);
int http_delay_port(const http_delay *h);
/* Requests answered so far. */
int http_delay_served(const http_delay *h);
/* Stops accepting, kills the handlers still delaying, frees it. */
void http_delay_stop(http_delay *h);

#endif
