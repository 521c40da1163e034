/*
 * echo_server — echoes every byte back, one greenlet per connection.
 *
 *   echo_server [--host ADDR] [--port PORT]
 *
 * Defaults: 127.0.0.1, port 8080 (0 picks a free port). Prints
 * "listening on ADDR:PORT" once it accepts connections and exits 0 on
 * SIGINT or SIGTERM after closing its listener.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "gev/hub.h"
#include "gev/monitor.h"
#include "gev/net.h"
#include "gev/server.h"

#define ECHO_BUF 16384

static void echo(gev_server *srv, gev_socket *client,
                 const struct sockaddr *peer, socklen_t peerlen, void *arg) {
  char *buf = malloc(ECHO_BUF); /* heap: keeps shared-stack copies small */
  ssize_t n;
  if (!buf)
    return;
  while ((n = gev_socket_recv(client, buf, ECHO_BUF, 0)) > 0)
    if (gev_socket_sendall(client, buf, (size_t)n, 0) < 0)
      break;
  free(buf);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents) {
  gev_server_close(w->data);
}

static void usage(const char *prog) {
  fprintf(stderr, "usage: %s [--host ADDR] [--port PORT]\n", prog);
  exit(2);
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int port = 8080;
  for (int i = 1; i < argc; i++) {
    if (i + 1 >= argc)
      usage(argv[0]);
    char *end;
    if (strcmp(argv[i], "--host") == 0) {
      host = argv[++i];
    } else if (strcmp(argv[i], "--port") == 0) {
      long p = strtol(argv[++i], &end, 10);
      if (*end || p < 0 || p > 65535)
        usage(argv[0]);
      port = (int)p;
    } else {
      usage(argv[0]);
    }
  }
  gev_server_opts opts = {.host = host, .port = port, .name = "echo"};
  gev_server *srv = gev_stream_server_new(&opts, echo, NULL);
  if (!srv) {
    fprintf(stderr, "echo_server: listen on %s:%d: %s\n", host, port,
            strerror(errno));
    return 1;
  }
  struct ev_loop *loop = gev_hub_loop();
  ev_signal sigint, sigterm;
  ev_signal_init(&sigint, on_signal, SIGINT);
  ev_signal_init(&sigterm, on_signal, SIGTERM);
  sigint.data = sigterm.data = srv;
  ev_signal_start(loop, &sigint);
  ev_signal_start(loop, &sigterm);
  /* kill -USR2 <pid> logs every greenlet with its backtrace. */
  gev_dump_on_signal(SIGUSR2);

  struct sockaddr_storage addr;
  socklen_t len = sizeof addr;
  char text[96];
  gev_server_address(srv, (struct sockaddr *)&addr, &len);
  if (gev_server_start(srv) < 0) {
    perror("echo_server: start");
    return 1;
  }
  printf("listening on %s\n",
         gev_sockaddr_format((struct sockaddr *)&addr, len, text, sizeof text));
  fflush(stdout);
  int rc = gev_server_serve_forever(srv);
  ev_signal_stop(loop, &sigint);
  ev_signal_stop(loop, &sigterm);
  gev_server_free(srv);
  gev_hub_destroy();
  return rc == 0 ? 0 : 1;
}
