/*
 * A keep-alive HTTP load client that counts lost requests.
 *
 *   bench_prefork_lost [--port PORT] [--host ADDR] [--connections N]
 *                      [--duration SECONDS] [--timeout SECONDS]
 *
 * N connections (default 50), one greenlet each, send "GET /" over and
 * over for the duration (default 10 s): send a request, read its whole
 * response, send the next on the same connection while the server says
 * the connection stays open, and open a new connection after a response
 * that says "Connection: close". Nothing is pipelined, so every request
 * has exactly one answer or none.
 *
 * What it counts, on stdout when the run is over:
 *
 *   requests  N   requests sent
 *   ok        N   answered with a complete 200 response
 *   lost      N   sent on a connection the server had promised to keep
 *                 open (its previous response said keep-alive), and the
 *                 connection ended (EOF, reset, a failed send) before a
 *                 complete response came back: the server dropped it
 *   failed    N   the same on a fresh connection, before any promise
 *   errors    N   answered, but not with a parsable 200 response
 *   timeouts  N   no answer within --timeout (default 5 s)
 *   connects  N   connections opened; connect_errors N that failed
 *
 * The count is strict: the client sends its next request the moment a
 * response is complete and never checks first whether the server closed
 * the connection meanwhile, so a server that closes a kept-alive
 * connection without a word loses the request in flight. A graceful server
 * says "Connection: close" on the last response of a connection instead.
 * Exit status: 0 when nothing was lost or failed, 1 otherwise, 2 on a
 * usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bench.h"
#include "gev/hub.h"
#include "gev/net.h"

#define RESPONSE_MAX 4096

typedef struct options {
  const char *host;
  int port;
  long connections;
  double duration;
  double timeout;
} options;

typedef struct counts {
  unsigned long requests, ok, lost, failed, errors, timeouts;
  unsigned long connects, connect_errors;
} counts;

/* One client connection's state, on the heap (the shared-stack rule). */
typedef struct client {
  const options *o;
  counts *c;
  const int *stop; /* set once the run is over */
  gev_socket *sock;
  int promised; /* the last response on sock said keep-alive */
  size_t len;   /* bytes in buf */
  char buf[RESPONSE_MAX];
} client;

/* ---- Responses ---------------------------------------------------------- */

/* The value of header name in head (NUL-terminated, lines ending in CRLF),
 * copied into out; 0 when found. */
static int header_value(const char *head, const char *name, char *out,
                        size_t size) {
  size_t nlen = strlen(name);
  for (const char *p = strstr(head, "\r\n"); p; p = strstr(p, "\r\n")) {
    p += 2;
    if (strncasecmp(p, name, nlen) != 0 || p[nlen] != ':')
      continue;
    const char *v = p + nlen + 1;
    while (*v == ' ' || *v == '\t')
      v++;
    size_t vlen = strcspn(v, "\r\n");
    if (vlen >= size)
      vlen = size - 1;
    memcpy(out, v, vlen);
    out[vlen] = '\0';
    return 0;
  }
  return -1;
}

/* Parses the head in buf (its length head_len): 200 status, body length,
 * and whether the connection stays open. 0, or -1 for anything else. */
static int parse_head(client *cl, size_t head_len, size_t *body,
                      int *keep_alive) {
  char value[64], saved = cl->buf[head_len];
  int minor, status, rc = -1;
  cl->buf[head_len] = '\0';
  if (sscanf(cl->buf, "HTTP/1.%d %d", &minor, &status) != 2 || status != 200)
    goto out;
  if (header_value(cl->buf, "Content-Length", value, sizeof value) < 0)
    goto out;
  *body = (size_t)strtoul(value, NULL, 10);
  *keep_alive = minor >= 1;
  if (header_value(cl->buf, "Connection", value, sizeof value) == 0)
    *keep_alive = strcasecmp(value, "keep-alive") == 0 ||
                  (minor >= 1 && strcasecmp(value, "close") != 0);
  rc = 0;
out:
  cl->buf[head_len] = saved;
  return rc;
}

enum { GOT_RESPONSE, GOT_NOTHING, GOT_GARBAGE, GOT_TIMEOUT };

/* Reads one whole response. Sets *keep_alive from it. */
static int read_response(client *cl, int *keep_alive) {
  size_t head = 0, body = 0;
  cl->len = 0;
  for (;;) {
    if (head == 0) {
      char *end = memmem(cl->buf, cl->len, "\r\n\r\n", 4);
      if (end) {
        head = (size_t)(end - cl->buf) + 4;
        if (parse_head(cl, head, &body, keep_alive) < 0)
          return GOT_GARBAGE;
      }
    }
    if (head && cl->len >= head + body)
      return cl->len == head + body ? GOT_RESPONSE : GOT_GARBAGE;
    if (cl->len == sizeof cl->buf)
      return GOT_GARBAGE;
    ssize_t n = gev_socket_recv(cl->sock, cl->buf + cl->len,
                                sizeof cl->buf - cl->len, 0);
    if (n < 0 && errno == ETIMEDOUT)
      return GOT_TIMEOUT;
    if (n <= 0)
      return cl->len == 0 ? GOT_NOTHING : GOT_GARBAGE;
    cl->len += (size_t)n;
  }
}

/* ---- Connections -------------------------------------------------------- */

static void disconnect(client *cl) {
  if (cl->sock)
    gev_socket_close(cl->sock);
  cl->sock = NULL;
  cl->promised = 0;
}

static int reconnect(client *cl) {
  disconnect(cl);
  cl->c->connects++;
  cl->sock = gev_create_connection(cl->o->host, cl->o->port, cl->o->timeout);
  if (!cl->sock) {
    cl->c->connect_errors++;
    gev_sleep(0.01); /* the server is between generations: try again */
    return -1;
  }
  gev_socket_settimeout(cl->sock, cl->o->timeout);
  return 0;
}

/* A request that got no response: lost when the server had promised to
 * keep the connection open, failed otherwise. */
static void unanswered(client *cl) {
  if (cl->promised)
    cl->c->lost++;
  else
    cl->c->failed++;
  disconnect(cl);
}

/* Sends one request and reads its response. */
static void one_request(client *cl, const char *req, size_t req_len) {
  int keep_alive = 0;
  cl->c->requests++;
  if (gev_socket_sendall(cl->sock, req, req_len, 0) < 0) {
    unanswered(cl);
    return;
  }
  switch (read_response(cl, &keep_alive)) {
  case GOT_RESPONSE:
    cl->c->ok++;
    cl->promised = keep_alive;
    if (!keep_alive)
      disconnect(cl);
    return;
  case GOT_NOTHING:
    unanswered(cl);
    return;
  case GOT_TIMEOUT:
    cl->c->timeouts++;
    break;
  default:
    cl->c->errors++;
    break;
  }
  disconnect(cl);
}

static void *client_run(void *arg) {
  client *cl = arg;
  char req[256];
  int req_len = snprintf(req, sizeof req,
                         "GET / HTTP/1.1\r\nHost: %s:%d\r\n"
                         "User-Agent: gev-lost\r\n\r\n",
                         cl->o->host, cl->o->port);
  while (!*cl->stop) {
    if (!cl->sock && reconnect(cl) < 0)
      continue;
    one_request(cl, req, (size_t)req_len);
  }
  disconnect(cl);
  return NULL;
}

/* ---- Main -----------------------------------------------------------------
 */

static void usage(void) {
  fprintf(stderr, "usage: bench_prefork_lost [--host ADDR] --port PORT "
                  "[--connections N] [--duration SECONDS] "
                  "[--timeout SECONDS]\n");
  exit(2);
}

static void parse_args(int argc, char **argv, options *o) {
  *o = (options){
      .host = "127.0.0.1", .connections = 50, .duration = 10, .timeout = 5};
  for (int i = 1; i < argc; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    char *end = NULL;
    if (!v)
      usage();
    if (strcmp(argv[i], "--host") == 0)
      o->host = v;
    else if (strcmp(argv[i], "--port") == 0)
      o->port = (int)strtol(v, &end, 10);
    else if (strcmp(argv[i], "--connections") == 0)
      o->connections = strtol(v, &end, 10);
    else if (strcmp(argv[i], "--duration") == 0)
      o->duration = strtod(v, &end);
    else if (strcmp(argv[i], "--timeout") == 0)
      o->timeout = strtod(v, &end);
    else
      usage();
    if (end && *end)
      usage();
    i++;
  }
  if (o->port <= 0 || o->port > 65535 || o->connections < 1 ||
      !(o->duration > 0) || !(o->timeout > 0))
    usage();
}

int main(int argc, char **argv) {
  options o;
  counts c = {0};
  int *stop = calloc(1, sizeof *stop);
  parse_args(argc, argv, &o);
  signal(SIGPIPE, SIG_IGN);
  size_t n = (size_t)o.connections;
  client **cls = calloc(n, sizeof *cls);
  gev_greenlet **gs = calloc(n, sizeof *gs);
  if (!stop || !cls || !gs)
    bench_die("calloc");
  for (size_t i = 0; i < n; i++) {
    if (!(cls[i] = calloc(1, sizeof *cls[i])))
      bench_die("calloc");
    *cls[i] = (client){.o = &o, .c = &c, .stop = stop};
    if (!(gs[i] = gev_spawn(client_run, cls[i])))
      bench_die("gev_spawn");
  }
  gev_sleep(o.duration);
  *stop = 1;
  /* Each finishes the request it has in flight (at most --timeout). */
  gev_joinall(gs, n, o.timeout + 1, 0, 0);
  gev_killall(gs, n, 1, 1);
  for (size_t i = 0; i < n; i++) {
    gev_greenlet_unref(gs[i]);
    free(cls[i]);
  }
  free(gs);
  free(cls);
  free(stop);
  gev_hub_destroy();
  printf("requests %lu\nok %lu\nlost %lu\nfailed %lu\nerrors %lu\n"
         "timeouts %lu\nconnects %lu\nconnect_errors %lu\n",
         c.requests, c.ok, c.lost, c.failed, c.errors, c.timeouts, c.connects,
         c.connect_errors);
  return c.lost == 0 && c.failed == 0 ? 0 : 1;
}
