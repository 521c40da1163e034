/*
 * chat_server — a TCP chat room: every line a client sends goes to all
 * the others (gev/server.h, gev/sync.h, gev/net.h).
 *
 *   chat_server [--port PORT]
 *
 * Listens on 127.0.0.1 (port 0 picks a free one) and prints "listening on
 * ADDR:PORT". Each client gets a name ("guest1", "guest2" ...), a welcome
 * line, and a Queue of lines waiting to be sent to it. Its connection
 * handler reads its lines (a buffered reader) and puts "name: line" into
 * every other client's queue; a writer greenlet per client, in a Group,
 * drains that client's queue into its socket, so one slow client never
 * holds up the others (its queue fills up, and then lines for it are
 * dropped). SIGINT or SIGTERM stops the server, kills the writers, exits 0.
 */
#define _GNU_SOURCE /* asprintf */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gev/hub.h"
#include "gev/net.h"
#include "gev/server.h"
#include "gev/signal.h"
#include "gev/sync.h"

typedef struct client {
  struct client *next; /* on the room's list while connected */
  char name[24];
  gev_queue *outbox; /* heap strings for this client, freed with free() */
  gev_socket *sock;  /* a reference of the writer's own */
} client;

static client *room;       /* every connected client */
static gev_group *writers; /* their writer greenlets */
static int guests;

/* Queues "from: line" for everyone but from; never waits. */
static void broadcast(const client *from, const char *line) {
  for (client *c = room; c; c = c->next) {
    char *msg;
    if (c == from || asprintf(&msg, "%s: %s", from->name, line) < 0)
      continue;
    if (gev_queue_try_put(c->outbox, msg) < 0)
      free(msg); /* its queue is full (a slow reader) or closed: drop */
  }
}

/* Sends c's queued lines until the queue is closed and empty (EPIPE) or
 * the socket fails; then frees c, which it owns from its start. */
static void *writer(void *arg) {
  client *c = arg;
  void *msg;
  while (gev_queue_get(c->outbox, -1, &msg) == 0) {
    int rc = gev_socket_sendall(c->sock, msg, strlen(msg), 0);
    free(msg);
    if (rc < 0)
      break;
  }
  gev_queue_free(c->outbox); /* item_free releases lines never sent */
  gev_socket_unref(c->sock);
  free(c);
  return NULL;
}

static void unlink_client(client *c) {
  for (client **p = &room; *p; p = &(*p)->next)
    if (*p == c) {
      *p = c->next;
      return;
    }
}

/* One connection: join the room, relay lines until EOF, leave. */
static void handle(gev_server *srv, gev_socket *sock,
                   const struct sockaddr *peer, socklen_t peerlen, void *arg) {
  client *c = calloc(1, sizeof *c);
  gev_queue_opts opts = {.maxsize = 64, .item_free = free};
  if (!c || !(c->outbox = gev_queue_new(&opts))) {
    free(c);
    return;
  }
  snprintf(c->name, sizeof c->name, "guest%d", ++guests);
  c->sock = gev_socket_ref(sock);
  gev_greenlet *w = gev_pool_spawn(writers, writer, c, -1);
  if (!w) { /* only when out of memory */
    gev_socket_unref(sock);
    gev_queue_free(c->outbox);
    free(c);
    return;
  }
  char *hello;
  if (asprintf(&hello, "welcome, you are %s\n", c->name) >= 0)
    gev_queue_put(c->outbox, hello, 0);
  c->next = room;
  room = c;

  gev_reader *in = gev_reader_new(sock, 0);
  char line[512];
  while (in && gev_reader_readline(in, line, sizeof line) > 0)
    broadcast(c, line); /* a piece of an overlong line goes out as is */
  gev_reader_free(in);

  unlink_client(c);
  gev_queue_close(c->outbox); /* the writer sends what is queued, ends */
  gev_greenlet_join(w, 1);    /* fails at once if we were killed */
  gev_greenlet_unref(w);
}

static void on_stop(int signum, void *srv) { gev_server_close(srv); }

int main(int argc, char **argv) {
  int port = argc > 2 && strcmp(argv[1], "--port") == 0 ? atoi(argv[2]) : 0;
  gev_server_opts opts = {.host = "127.0.0.1", .port = port};
  gev_server *srv = gev_stream_server_new(&opts, handle, NULL);
  writers = gev_group_new();
  if (!srv || !writers) {
    perror("chat_server");
    return 1;
  }
  gev_signal *sigint = gev_signal_handler(SIGINT, on_stop, srv);
  gev_signal *sigterm = gev_signal_handler(SIGTERM, on_stop, srv);
  printf("listening on 127.0.0.1:%d\n", gev_server_port(srv));
  fflush(stdout);
  int rc = gev_server_serve_forever(srv); /* stops handlers when closed */
  gev_pool_kill(writers, 1, 1);           /* and then the writers */
  gev_signal_cancel(sigint);
  gev_signal_cancel(sigterm);
  gev_server_free(srv);
  gev_pool_free(writers);
  gev_hub_destroy();
  return rc == 0 ? 0 : 1;
}
