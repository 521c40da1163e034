/* Helpers shared by the net tests: loopback listeners and connected pairs.
 * Everything here fails the running test on error. */
#ifndef GEV_TESTS_NETTEST_H
#define GEV_TESTS_NETTEST_H

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>

#include "gev/net.h"
#include "testutil.h"

static inline double nt_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A listening TCP socket on host (a loopback literal), free port. */
static inline gev_socket *nt_listen(const char *host, int *port) {
  gev_socket *l = gev_socket_listen_tcp(host, 0, 16, 0);
  ck_assert_msg(l != NULL, "listen on %s: %s", host, strerror(errno));
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  ck_assert_int_eq(gev_socket_getsockname(l, (struct sockaddr *)&ss, &len), 0);
  *port =
      ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                    : ((struct sockaddr_in6 *)&ss)->sin6_port);
  return l;
}

/* A connected TCP pair over host: *client from create_connection, *server
 * from accept. */
static inline void nt_pair(const char *host, gev_socket **client,
                           gev_socket **server) {
  int port;
  gev_socket *l = nt_listen(host, &port);
  *client = gev_create_connection(host, port, 5);
  ck_assert_msg(*client != NULL, "connect: %s", strerror(errno));
  *server = gev_socket_accept(l, NULL, NULL);
  ck_assert_msg(*server != NULL, "accept: %s", strerror(errno));
  ck_assert_int_eq(gev_socket_close(l), 0);
}

/* Reads exactly len bytes (or fails the test). */
static inline void nt_recv_all(gev_socket *s, void *buf, size_t len) {
  char *p = buf;
  while (len > 0) {
    ssize_t n = gev_socket_recv(s, p, len, 0);
    ck_assert_msg(n > 0, "recv: %zd %s", n, n < 0 ? strerror(errno) : "EOF");
    p += n;
    len -= (size_t)n;
  }
}

#endif
