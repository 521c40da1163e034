/*
 * The client of bench/c100k.sh: opens many idle TCP connections to an echo
 * server on loopback, watches the server process's memory, then has every
 * connection echo one message. Plain epoll, no gev, so that it drives gev
 * and the Go server alike.
 *
 *   c100k_client --port PORT --pid SERVER_PID --name NAME [--n N]
 *                [--sources S]
 *
 * N connections (default 100,000), from S source addresses 127.0.0.2 ...
 * (default 8; a source address has about 28,000 ephemeral ports towards
 * one server port), at most WINDOW connecting at once. Prints:
 *
 *   bench: c100k.NAME.connect <s> s
 *       from the first connect until the server holds all N connections
 *       (its count of open descriptors has grown by N);
 *   bench: c100k.NAME.rss_per_conn <bytes> bytes
 *       the growth of the server's resident memory from before the first
 *       connect to after every connection has echoed its message and gone
 *       idle again, divided by N;
 *
 * and to stderr the same growth measured before the echo round. Every
 * connection must echo its message intact, or the client fails. Bounded:
 * every wait gives up after TIMEOUT seconds.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* WINDOW connects in flight at once stay below the servers' listen
 * backlog: a connection completed by the kernel while the server's accept
 * queue is full can be dropped without the client knowing (with SYN
 * cookies), and would never be accepted. */
enum { WINDOW = 1000, TIMEOUT = 120, EVENTS = 4096 };
static const char message[] = "c100k\n";
#define MSGLEN (sizeof message - 1)

static void die(const char *what) {
  fprintf(stderr, "c100k_client: %s: %s\n", what, strerror(errno));
  exit(1);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long server_rss(int pid) {
  char path[64];
  long size, resident;
  FILE *f;
  snprintf(path, sizeof path, "/proc/%d/statm", pid);
  if (!(f = fopen(path, "r")))
    die(path);
  if (fscanf(f, "%ld %ld", &size, &resident) != 2)
    die("statm");
  fclose(f);
  return resident * sysconf(_SC_PAGESIZE);
}

static long server_fds(int pid) {
  char path[64];
  long n = 0;
  DIR *d;
  snprintf(path, sizeof path, "/proc/%d/fd", pid);
  if (!(d = opendir(path)))
    die(path);
  while (readdir(d))
    n++;
  closedir(d);
  return n;
}

typedef struct conn {
  int fd;
  unsigned char state; /* 0 connecting, 1 connected, 2 echoed */
  unsigned char got;   /* bytes of the echo read so far */
} conn;

static conn *conns;
static int ep;

static int open_one(int i, int port, int sources) {
  struct sockaddr_in src = {.sin_family = AF_INET}, dst = src;
  int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (unsigned)i};
  if (fd < 0)
    die("socket");
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  src.sin_addr.s_addr = htonl(0x7f000002u + (unsigned)(i % sources));
  if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0)
    die("bind");
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  dst.sin_port = htons((unsigned short)port);
  if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0 &&
      errno != EINPROGRESS)
    die("connect");
  conns[i].fd = fd;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
    die("epoll_ctl");
  return fd;
}

/* Waits for connect completions; returns how many completed. */
static int reap_connects(int timeout_ms) {
  struct epoll_event evs[EVENTS];
  int n = epoll_wait(ep, evs, EVENTS, timeout_ms), done = 0;
  if (n < 0 && errno != EINTR)
    die("epoll_wait");
  for (int k = 0; k < n; k++) {
    conn *c = &conns[evs[k].data.u32];
    int err = 0;
    socklen_t len = sizeof err;
    struct epoll_event ev = {.events = 0, .data.u32 = evs[k].data.u32};
    if (c->state != 0)
      continue;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
      errno = err;
      die("connect completion");
    }
    c->state = 1;
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev); /* idle: watch nothing */
    done++;
  }
  return done;
}

static void connect_all(int n, int port, int sources) {
  int opened = 0, connected = 0;
  double deadline = now() + TIMEOUT;
  while (connected < n) {
    while (opened < n && opened - connected < WINDOW)
      open_one(opened++, port, sources);
    connected += reap_connects(100);
    if (now() > deadline) {
      errno = ETIMEDOUT;
      die("connecting");
    }
  }
}

static void wait_accepted(int pid, long fds_before, int n) {
  double deadline = now() + TIMEOUT;
  long fds;
  while ((fds = server_fds(pid)) < fds_before + n) {
    if (now() > deadline) {
      fprintf(stderr, "c100k_client: the server accepted %ld of %d\n",
              fds - fds_before, n);
      errno = ETIMEDOUT;
      die("waiting for the server to accept");
    }
    usleep(100000); /* listing 100,000 descriptors is not free */
  }
}

/* Sends the message on every connection, then reads every echo back. */
static void echo_all(int n) {
  struct epoll_event evs[EVENTS];
  int echoed = 0;
  double deadline = now() + TIMEOUT;
  for (int i = 0; i < n; i++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (unsigned)i};
    if (write(conns[i].fd, message, MSGLEN) != (ssize_t)MSGLEN)
      die("write");
    if (epoll_ctl(ep, EPOLL_CTL_MOD, conns[i].fd, &ev) < 0)
      die("epoll_ctl");
  }
  while (echoed < n) {
    int k, got = epoll_wait(ep, evs, EVENTS, 100);
    if (got < 0 && errno != EINTR)
      die("epoll_wait");
    for (k = 0; k < got; k++) {
      conn *c = &conns[evs[k].data.u32];
      char buf[MSGLEN];
      ssize_t r = read(c->fd, buf, MSGLEN - c->got);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN)
          continue;
        die("read (the server closed a connection)");
      }
      if (memcmp(buf, message + c->got, (size_t)r) != 0) {
        fputs("c100k_client: an echo came back altered\n", stderr);
        exit(1);
      }
      c->got += (unsigned char)r;
      if (c->got == MSGLEN) {
        struct epoll_event ev = {.events = 0, .data.u32 = evs[k].data.u32};
        c->state = 2;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        echoed++;
      }
    }
    if (now() > deadline) {
      errno = ETIMEDOUT;
      die("waiting for the echoes");
    }
  }
}

static void usage(void) {
  fputs("usage: c100k_client --port PORT --pid PID --name NAME [--n N] "
        "[--sources S]\n",
        stderr);
  exit(2);
}

int main(int argc, char **argv) {
  int port = 0, pid = 0, n = 100000, sources = 8;
  const char *name = NULL;
  long rss0, fds0, rss_idle, rss_after;
  double t0, t_connected;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--port"))
      port = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--pid"))
      pid = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--name"))
      name = argv[i + 1];
    else if (!strcmp(argv[i], "--n"))
      n = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--sources"))
      sources = atoi(argv[i + 1]);
    else
      usage();
  }
  if (!port || !pid || !name || n <= 0 || sources <= 0)
    usage();
  if (!(conns = calloc((size_t)n, sizeof *conns)) ||
      (ep = epoll_create1(0)) < 0)
    die("setup");
  rss0 = server_rss(pid);
  fds0 = server_fds(pid);
  t0 = now();
  connect_all(n, port, sources);
  wait_accepted(pid, fds0, n);
  t_connected = now() - t0;
  usleep(200000); /* handlers started and parked */
  rss_idle = server_rss(pid);
  echo_all(n);
  usleep(200000); /* handlers parked again */
  rss_after = server_rss(pid);
  printf("bench: c100k.%s.connect %.2f s\n", name, t_connected);
  printf("bench: c100k.%s.rss_per_conn %.0f bytes\n", name,
         (double)(rss_after - rss0) / n);
  fprintf(stderr, "c100k: %s: %.0f bytes per connection before the echo\n",
          name, (double)(rss_idle - rss0) / n);
  fflush(stdout);
  for (int i = 0; i < n; i++)
    close(conns[i].fd);
  return 0;
}
