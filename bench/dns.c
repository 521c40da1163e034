/*
 * bench/dns — names per second: 20,000 distinct names, 50 lookups in
 * flight, against a local dnsmasq that this program starts. Two ways in
 * the same run, alternating, best of five rounds each:
 *   dns.gev  50 greenlets calling gev_gethostbyname in a loop;
 *   dns.ref  plain c-ares on a libev loop: sockets wired with
 *            ARES_OPT_SOCK_STATE_CB, a one-shot timer from ares_timeout(),
 *            and each completion callback starting the next query.
 * Prints
 *   bench: dns.gev <n> names/s
 *   bench: dns.ref <n> names/s
 *   bench: dns.ratio <gev/ref> x
 * Usage: bench_dns [NAMES [IN_FLIGHT [ROUNDS]]]
 */
#define _GNU_SOURCE
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "gev/dns.h"
#include "gev/hub.h"

static long names = 20000, in_flight = 50, rounds = 5;
static char server[64];
static const char answer[] = "10.7.7.7";

static double now(void) { return bench_now_ns() / 1e9; }

/* ---- dnsmasq ----------------------------------------------------------- */

static pid_t dnsmasq_pid;

static int udp_tcp_free_port(void) {
  for (int i = 0; i < 100; i++) {
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int u = socket(AF_INET, SOCK_DGRAM, 0), t = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1, port = -1;
    setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(u, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(u, (struct sockaddr *)&a, &len) == 0 &&
        bind(t, (struct sockaddr *)&a, sizeof a) == 0)
      port = ntohs(a.sin_port);
    close(u);
    close(t);
    if (port > 0)
      return port;
  }
  return -1;
}

static int tcp_ready(int port) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
  close(s);
  return ok;
}

/* Answers every name under bench.test with one address, nothing else. */
static int dnsmasq_start(void) {
  char port_opt[32], addr_opt[64];
  int port = udp_tcp_free_port();
  if (port < 0)
    return -1;
  snprintf(port_opt, sizeof port_opt, "--port=%d", port);
  snprintf(addr_opt, sizeof addr_opt, "--address=/bench.test/%s", answer);
  fflush(NULL);
  if ((dnsmasq_pid = fork()) == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execl("/usr/sbin/dnsmasq", "dnsmasq", "--keep-in-foreground", "--user=root",
          "--group=root", "--pid-file=", port_opt, "--listen-address=127.0.0.1",
          "--bind-interfaces", "--no-resolv", "--no-hosts", "--local=/test/",
          addr_opt, "--log-facility=/dev/null", (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 300; i++) {
    if (waitpid(dnsmasq_pid, NULL, WNOHANG) == dnsmasq_pid)
      return -1;
    if (tcp_ready(port)) {
      snprintf(server, sizeof server, "127.0.0.1:%d", port);
      return 0;
    }
    usleep(10000);
  }
  return -1;
}

static void dnsmasq_stop(void) {
  kill(dnsmasq_pid, SIGTERM);
  waitpid(dnsmasq_pid, NULL, 0);
}

static void name_of(char *buf, size_t len, const char *prefix, int round,
                    long i) {
  snprintf(buf, len, "%s%d-%ld.bench.test", prefix, round, i);
}

/* ---- gev --------------------------------------------------------------- */

typedef struct gev_bench_run {
  long next, done, failed;
  int round;
} gev_bench_run;

static void *gev_worker(void *arg) {
  gev_bench_run *r = arg;
  struct in_addr a;
  char name[64];
  while (r->next < names) {
    name_of(name, sizeof name, "g", r->round, r->next++);
    if (gev_gethostbyname(name, &a) != 0)
      r->failed++;
    r->done++;
  }
  return NULL;
}

static double run_gev(int round) {
  gev_bench_run *r = calloc(1, sizeof *r);
  gev_greenlet **gs = calloc((size_t)in_flight, sizeof *gs);
  r->round = round;
  double t0 = now();
  for (long i = 0; i < in_flight; i++)
    gs[i] = gev_spawn(gev_worker, r);
  gev_joinall(gs, (size_t)in_flight, -1, 0, 0);
  double rate = (double)r->done / (now() - t0);
  for (long i = 0; i < in_flight; i++)
    gev_greenlet_unref(gs[i]);
  if (r->failed)
    fprintf(stderr, "bench_dns: gev: %ld lookups failed\n", r->failed);
  free(gs);
  free(r);
  return rate;
}

/* ---- plain c-ares on libev --------------------------------------------- */

typedef struct ref_sock {
  ev_io io;
  struct ref_sock *next;
} ref_sock;

typedef struct ref_run {
  struct ev_loop *loop;
  ares_channel ch;
  ev_timer timer;
  ref_sock *socks;
  long next, done, failed;
  int round;
} ref_run;

static void ref_rearm(ref_run *r) {
  struct timeval tv;
  ev_timer_stop(r->loop, &r->timer);
  if (ares_timeout(r->ch, NULL, &tv)) {
    ev_timer_set(&r->timer, (double)tv.tv_sec + tv.tv_usec / 1e6, 0.);
    ev_timer_start(r->loop, &r->timer);
  }
}

static void ref_io_cb(struct ev_loop *loop, ev_io *w, int revents) {
  ref_run *r = w->data;
  int fd = w->fd;
  ares_process_fd(r->ch, (revents & EV_READ) ? fd : ARES_SOCKET_BAD,
                  (revents & EV_WRITE) ? fd : ARES_SOCKET_BAD);
  ref_rearm(r);
}

static void ref_timer_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  ref_run *r = w->data;
  ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  ref_rearm(r);
}

static void ref_sock_cb(void *data, ares_socket_t fd, int rd, int wr) {
  ref_run *r = data;
  ref_sock **p = &r->socks, *s;
  while (*p && (*p)->io.fd != fd)
    p = &(*p)->next;
  if ((s = *p))
    ev_io_stop(r->loop, &s->io);
  if (!rd && !wr) {
    if (s) {
      *p = s->next;
      free(s);
    }
    return;
  }
  if (!s) {
    s = calloc(1, sizeof *s);
    s->next = r->socks;
    r->socks = s;
  }
  ev_io_init(&s->io, ref_io_cb, fd, (rd ? EV_READ : 0) | (wr ? EV_WRITE : 0));
  s->io.data = r;
  ev_io_start(r->loop, &s->io);
}

static void ref_start_next(ref_run *r);

static void ref_host_cb(void *arg, int status, int timeouts,
                        struct hostent *h) {
  ref_run *r = arg;
  struct in_addr a;
  if (status == ARES_SUCCESS && h->h_addr_list[0])
    memcpy(&a, h->h_addr_list[0], sizeof a);
  else
    r->failed++;
  r->done++;
  ref_start_next(r);
}

static void ref_start_next(ref_run *r) {
  char name[64];
  if (r->next >= names)
    return;
  name_of(name, sizeof name, "r", r->round, r->next++);
  ares_gethostbyname(r->ch, name, AF_INET, ref_host_cb, r);
}

static double run_ref(int round) {
  ref_run r = {.round = round};
  struct ares_options o = {.sock_state_cb = ref_sock_cb,
                           .sock_state_cb_data = &r};
  r.loop = ev_loop_new(0);
  if (ares_init_options(&r.ch, &o, ARES_OPT_SOCK_STATE_CB) != ARES_SUCCESS ||
      ares_set_servers_ports_csv(r.ch, server) != ARES_SUCCESS)
    return 0;
  ev_init(&r.timer, ref_timer_cb);
  r.timer.data = &r;
  double t0 = now();
  for (long i = 0; i < in_flight; i++)
    ref_start_next(&r);
  ref_rearm(&r);
  ev_run(r.loop, 0);
  double rate = (double)r.done / (now() - t0);
  if (r.failed)
    fprintf(stderr, "bench_dns: ref: %ld lookups failed\n", r.failed);
  ares_destroy(r.ch);
  ev_timer_stop(r.loop, &r.timer);
  ev_loop_destroy(r.loop);
  return rate;
}

int main(int argc, char **argv) {
  double best_gev = 0, best_ref = 0;
  if (argc > 1)
    names = atol(argv[1]);
  if (argc > 2)
    in_flight = atol(argv[2]);
  if (argc > 3)
    rounds = atol(argv[3]);
  if (names < 1 || in_flight < 1 || rounds < 1) {
    fprintf(stderr, "usage: bench_dns [NAMES [IN_FLIGHT [ROUNDS]]]\n");
    return 2;
  }
  if (dnsmasq_start() < 0)
    bench_die("bench_dns: cannot start /usr/sbin/dnsmasq");
  ares_library_init(ARES_LIB_INIT_ALL);
  if (gev_dns_set_servers(server) < 0)
    bench_die("bench_dns: gev_dns_set_servers");
  for (int round = 0; round < rounds; round++) {
    double ref = run_ref(round), gev = run_gev(round);
    best_ref = ref > best_ref ? ref : best_ref;
    best_gev = gev > best_gev ? gev : best_gev;
  }
  gev_hub_destroy();
  dnsmasq_stop();
  bench_print("dns.gev", best_gev, 0, "names/s");
  bench_print("dns.ref", best_ref, 0, "names/s");
  bench_print("dns.ratio", best_ref > 0 ? best_gev / best_ref : 0, 2, "x");
  return 0;
}
