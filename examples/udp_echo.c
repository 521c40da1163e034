/*
 * udp_echo — a DatagramServer that sends every datagram back (gev/server.h).
 *
 *   udp_echo [--port PORT]
 *
 * Listens on 127.0.0.1 (port 0 picks a free one) and prints "listening on
 * ADDR:PORT". Each datagram runs a handler greenlet, which replies from
 * the server's socket. SIGINT or SIGTERM (handled with gev/signal.h)
 * closes the server; the program then exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gev/hub.h"
#include "gev/server.h"
#include "gev/signal.h"

static void echo(gev_server *srv, const void *data, size_t len,
                 const struct sockaddr *peer, socklen_t peerlen, void *arg) {
  gev_server_sendto(srv, data, len, peer, peerlen);
}

static void on_stop(int signum, void *srv) { gev_server_close(srv); }

int main(int argc, char **argv) {
  int port = argc > 2 && strcmp(argv[1], "--port") == 0 ? atoi(argv[2]) : 0;
  gev_server_opts opts = {.host = "127.0.0.1", .port = port};
  gev_server *srv = gev_datagram_server_new(&opts, echo, NULL);
  if (!srv) {
    perror("udp_echo");
    return 1;
  }
  gev_signal *sigint = gev_signal_handler(SIGINT, on_stop, srv);
  gev_signal *sigterm = gev_signal_handler(SIGTERM, on_stop, srv);
  printf("listening on 127.0.0.1:%d\n", gev_server_port(srv));
  fflush(stdout);
  int rc = gev_server_serve_forever(srv); /* until on_stop closes it */
  gev_signal_cancel(sigint);
  gev_signal_cancel(sigterm);
  gev_server_free(srv);
  gev_hub_destroy();
  return rc == 0 ? 0 : 1;
}
