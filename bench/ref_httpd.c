/*
 * ref_httpd — the baseline for the http benchmark: the same keep-alive
 * "Hello, World!" server as examples/httpd, written the way one writes it
 * without coroutines: libev callbacks and a state struct per connection.
 * It uses the same request parser and the same canned responses, so the
 * benchmark measures the cost of gev's greenlets and cooperative sockets
 * against plain callbacks, not differences in HTTP handling.
 *
 *   bench_ref_httpd [--host ADDR] [--port PORT] [--idle-timeout SECONDS]
 *
 * Prints "listening on ADDR:PORT" and exits 0 on SIGINT/SIGTERM. Like
 * httpd: pipelined requests are answered in order, Content-Length bodies
 * are skipped, malformed heads get 400/431/501 and a close, and a request
 * not complete within the idle timeout closes the connection.
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "../examples/http_parser.h"

#define MAX_HEAD 8192
#define BUF_SIZE 16384
#define OUT_SIZE 16384

typedef struct conn {
  ev_io io;      /* read readiness, or write while out is pending */
  ev_timer idle; /* deadline for the request being received */
  int fd;
  size_t len, scanned;   /* input buffered, head-end scan position */
  uint64_t body_left;    /* body bytes still to skip */
  int answer_pending;    /* answer once the body is skipped */
  int answer_keep_alive; /* ... with these properties of the request */
  int answer_minor;
  int closing; /* close once out is flushed */
  size_t out_len, out_off;
  char buf[BUF_SIZE];
  char out[OUT_SIZE];
} conn;

static double idle_timeout = 60;

static void conn_close(struct ev_loop *loop, conn *c) {
  ev_io_stop(loop, &c->io);
  ev_timer_stop(loop, &c->idle);
  close(c->fd);
  free(c);
}

static void consume(conn *c, size_t n) {
  memmove(c->buf, c->buf + n, c->len - n);
  c->len -= n;
  c->scanned = 0;
}

static int queue_out(conn *c, const char *data, size_t n) {
  if (c->out_len + n > OUT_SIZE)
    return -1;
  memcpy(c->out + c->out_len, data, n);
  c->out_len += n;
  return 0;
}

/* Writes pending output. 1 when all is out, 0 when the socket is full,
 * -1 on error. */
static int flush_out(conn *c) {
  while (c->out_off < c->out_len) {
    ssize_t n =
        send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    if (n < 0)
      return errno == EAGAIN || errno == EINTR ? 0 : -1;
    c->out_off += (size_t)n;
  }
  c->out_off = c->out_len = 0;
  return 1;
}

static void drop_blank_lines(conn *c) {
  size_t i = 0;
  for (;;) {
    if (i < c->len && c->buf[i] == '\n')
      i += 1;
    else if (i + 1 < c->len && c->buf[i] == '\r' && c->buf[i + 1] == '\n')
      i += 2;
    else
      break;
  }
  if (i)
    consume(c, i);
}

/* Handles every complete request in the buffer. Returns 0 to go on
 * reading, 1 when the connection should close after flushing. */
/* Queues the hello answer to the request whose body was just skipped.
 * Returns 0 to go on, 1 to close after flushing. */
static int answer(conn *c, struct ev_loop *loop) {
  http_request req = {.keep_alive = c->answer_keep_alive,
                      .minor_version = c->answer_minor};
  char resp[256];
  size_t n = http_hello_response(&req, resp, sizeof resp);
  c->answer_pending = 0;
  /* Output full (a deep pipeline): write some out, or give up. */
  if (queue_out(c, resp, n) < 0 &&
      (flush_out(c) < 0 || queue_out(c, resp, n) < 0))
    return 1;
  if (!req.keep_alive)
    return 1;
  /* A new request starts: its own idle deadline. */
  ev_timer_again(loop, &c->idle);
  return 0;
}

static int process(conn *c, struct ev_loop *loop) {
  http_request req;
  for (;;) {
    if (c->body_left) {
      size_t take = c->len < c->body_left ? c->len : (size_t)c->body_left;
      consume(c, take);
      c->body_left -= take;
      if (c->body_left)
        return 0;
    }
    if (c->answer_pending && answer(c, loop))
      return 1;
    drop_blank_lines(c);
    int rc;
    if (c->len == 0 || http_head_end(c->buf, c->len, &c->scanned) == 0) {
      if (c->len <= MAX_HEAD)
        return 0; /* wait for the rest of the head */
      rc = HTTP_PARSE_TOO_LARGE;
    } else {
      rc = http_parse_request(c->buf, c->len, MAX_HEAD, &req);
    }
    if (rc == HTTP_PARSE_INCOMPLETE)
      return 0;
    if (rc < 0) {
      size_t n;
      const char *r = http_error_response(rc, &n);
      queue_out(c, r, n);
      return 1;
    }
    consume(c, req.head_len);
    c->body_left = req.has_body ? req.content_length : 0;
    c->answer_pending = 1;
    c->answer_keep_alive = req.keep_alive;
    c->answer_minor = req.minor_version;
  }
}

static void on_idle(struct ev_loop *loop, ev_timer *w, int revents) {
  conn_close(loop, w->data);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents);

/* Switches the watcher between waiting to read and waiting to write. */
static void watch(struct ev_loop *loop, conn *c, int events) {
  if (c->io.events == events)
    return;
  ev_io_stop(loop, &c->io);
  ev_io_set(&c->io, c->fd, events);
  ev_io_start(loop, &c->io);
}

static void after_output(struct ev_loop *loop, conn *c) {
  int rc = flush_out(c);
  if (rc < 0 || (rc == 1 && c->closing)) {
    if (rc == 1)
      shutdown(c->fd, SHUT_WR);
    conn_close(loop, c);
    return;
  }
  watch(loop, c, rc == 1 ? EV_READ : EV_WRITE);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents) {
  conn *c = w->data;
  if (revents & EV_WRITE) {
    after_output(loop, c);
    return;
  }
  ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0) {
    conn_close(loop, c);
    return;
  }
  c->len += (size_t)n;
  c->closing = process(c, loop);
  after_output(loop, c);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents) {
  for (int i = 0; i < 100; i++) {
    int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return;
    conn *c = calloc(1, sizeof *c);
    if (!c) {
      close(fd);
      return;
    }
    c->fd = fd;
    ev_io_init(&c->io, on_io, fd, EV_READ);
    c->io.data = c;
    ev_timer_init(&c->idle, on_idle, 0, idle_timeout);
    c->idle.data = c;
    ev_io_start(loop, &c->io);
    ev_timer_again(loop, &c->idle);
  }
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents) {
  ev_break(loop, EVBREAK_ALL);
}

static int listen_on(const char *host, int port, struct sockaddr_in *sin) {
  sin->sin_family = AF_INET;
  sin->sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
    return -1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  socklen_t len = sizeof *sin;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
      bind(fd, (struct sockaddr *)sin, sizeof *sin) < 0 ||
      listen(fd, 1024) < 0 || getsockname(fd, (struct sockaddr *)sin, &len) < 0)
    return -1;
  return fd;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int port = 8080;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--host") == 0)
      host = argv[i + 1];
    else if (strcmp(argv[i], "--port") == 0)
      port = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--idle-timeout") == 0)
      idle_timeout = atof(argv[i + 1]);
  }
  struct sockaddr_in sin;
  int lfd = listen_on(host, port, &sin);
  if (lfd < 0) {
    perror("ref_httpd: listen");
    return 1;
  }
  struct ev_loop *loop = ev_default_loop(0);
  ev_io accept_io;
  ev_signal sigint, sigterm;
  ev_io_init(&accept_io, on_accept, lfd, EV_READ);
  ev_io_start(loop, &accept_io);
  ev_signal_init(&sigint, on_signal, SIGINT);
  ev_signal_init(&sigterm, on_signal, SIGTERM);
  ev_signal_start(loop, &sigint);
  ev_signal_start(loop, &sigterm);
  signal(SIGPIPE, SIG_IGN);
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof ip);
  printf("listening on %s:%u\n", ip, ntohs(sin.sin_port));
  fflush(stdout);
  ev_run(loop, 0);
  ev_io_stop(loop, &accept_io);
  close(lfd);
  return 0;
}
