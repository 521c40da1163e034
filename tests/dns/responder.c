#define _GNU_SOURCE
#include "responder.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gev/hub.h"

#define MAXMSG 1024

typedef struct query {
  uint8_t msg[MAXMSG];
  size_t len;     /* of the question part: header + question */
  size_t full;    /* bytes received */
  char label[64]; /* first label, lowercased */
  int qtype;
} query;

/* A reply to send, possibly later; heap (it crosses parks). */
typedef struct reply_job {
  int fd;
  struct sockaddr_in peer;
  query q;
  int delay_ms;
} reply_job;

static responder_counts *counts;

static int parse_query(const uint8_t *m, size_t n, query *q) {
  size_t i = 12;
  if (n < 12 || n > MAXMSG)
    return -1;
  memcpy(q->msg, m, n);
  q->full = n;
  q->label[0] = '\0';
  while (i < n && m[i] != 0) {
    size_t l = m[i];
    if (l > 63 || i + 1 + l > n)
      return -1;
    if (i == 12) {
      for (size_t k = 0; k < l; k++)
        q->label[k] = (char)(m[13 + k] | 0x20);
      q->label[l] = '\0';
    }
    i += 1 + l;
  }
  if (i + 5 > n)
    return -1;
  q->qtype = m[i + 1] << 8 | m[i + 2];
  q->len = i + 5;
  return 0;
}

static int is(const query *q, const char *prefix) {
  return strncmp(q->label, prefix, strlen(prefix)) == 0;
}

static size_t put16(uint8_t *p, size_t at, int v) {
  p[at] = (uint8_t)(v >> 8);
  p[at + 1] = (uint8_t)v;
  return at + 2;
}

/* An answer to q in out: rcode, TC flag, and one address record when
 * addr (4 or 16 bytes matching the question type) is given. */
static size_t build(const query *q, uint8_t *out, int rcode, int tc,
                    const void *addr, int addrlen) {
  size_t at;
  memcpy(out, q->msg, q->len);
  out[2] = (uint8_t)(0x80 | (q->msg[2] & 0x01) | (tc ? 0x02 : 0));
  out[3] = (uint8_t)(0x80 | rcode);
  put16(out, 4, 1);
  put16(out, 6, addr ? 1 : 0);
  put16(out, 8, 0);
  put16(out, 10, 0);
  at = q->len;
  if (!addr)
    return at;
  at = put16(out, at, 0xc00c);
  at = put16(out, at, q->qtype);
  at = put16(out, at, 1);
  at = put16(out, at, 0);
  at = put16(out, at, 60);
  at = put16(out, at, addrlen);
  memcpy(out + at, addr, (size_t)addrlen);
  return at + (size_t)addrlen;
}

/* The normal answer: A a.b.c.d / AAAA fd00::1 / no data. */
static size_t build_ok(const query *q, uint8_t *out, const char *v4) {
  struct in_addr a4;
  struct in6_addr a6;
  inet_pton(AF_INET, v4, &a4);
  inet_pton(AF_INET6, "fd00::1", &a6);
  if (q->qtype == 1)
    return build(q, out, 0, 0, &a4, 4);
  if (q->qtype == 28)
    return build(q, out, 0, 0, &a6, 16);
  return build(q, out, 0, 0, NULL, 0);
}

static void send_to(int fd, const struct sockaddr_in *peer, const void *m,
                    size_t n) {
  sendto(fd, m, n, 0, (const struct sockaddr *)peer, sizeof *peer);
}

static void udp_answer(int fd, const struct sockaddr_in *peer, const query *q) {
  uint8_t out[MAXMSG + 64];
  size_t n;
  if (is(q, "trunc")) {
    n = build(q, out, 0, 1, NULL, 0);
  } else if (is(q, "garbage") || is(q, "onlygarbage")) {
    send_to(fd, peer, "\x12\x34junk", 6);
    n = build_ok(q, out, "6.6.6.6");
    out[0] ^= 0x55;
    send_to(fd, peer, out, n);
    if (is(q, "onlygarbage"))
      return;
    n = build_ok(q, out, "10.1.2.3");
  } else if (is(q, "badanswer")) {
    n = build_ok(q, out, "10.1.2.3");
    put16(out, 6, 7); /* claims 7 answers, carries 1 */
  } else if (is(q, "servfail")) {
    n = build(q, out, 2, 0, NULL, 0);
  } else if (is(q, "refused")) {
    n = build(q, out, 5, 0, NULL, 0);
  } else if (is(q, "nx")) {
    n = build(q, out, 3, 0, NULL, 0);
  } else {
    n = build_ok(q, out, "10.1.2.3");
  }
  send_to(fd, peer, out, n);
}

static void *delayed_reply(void *arg) {
  reply_job *j = arg;
  if (gev_sleep(j->delay_ms / 1000.) == 0)
    udp_answer(j->fd, &j->peer, &j->q);
  free(j);
  return NULL;
}

static void udp_query(int fd, const struct sockaddr_in *peer, const uint8_t *m,
                      size_t n) {
  reply_job *j = malloc(sizeof *j);
  if (!j || parse_query(m, n, &j->q) < 0) {
    free(j);
    return;
  }
  counts->udp++;
  if (is(&j->q, "drop")) {
    counts->drops++;
    free(j);
    return;
  }
  if (is(&j->q, "slow")) {
    j->fd = fd;
    j->peer = *peer;
    j->delay_ms = atoi(j->q.label + 4);
    if (gev_spawn_raw(delayed_reply, j) == 0)
      return;
  }
  udp_answer(fd, peer, &j->q);
  free(j);
}

static void *udp_loop(void *arg) {
  int fd = (int)(intptr_t)arg;
  uint8_t buf[MAXMSG];
  for (;;) {
    struct sockaddr_in peer;
    socklen_t plen = sizeof peer;
    ssize_t n = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT,
                         (struct sockaddr *)&peer, &plen);
    if (n >= 0)
      udp_query(fd, &peer, buf, (size_t)n);
    else if (gev_wait_read(fd, -1) < 0)
      return NULL;
  }
}

static int read_full(int fd, uint8_t *p, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = recv(fd, p + got, n - got, MSG_DONTWAIT);
    if (r == 0)
      return -1;
    if (r > 0)
      got += (size_t)r;
    else if (errno != EAGAIN || gev_wait_read(fd, -1) < 0)
      return -1;
  }
  return 0;
}

static void tcp_answer(int fd, const query *q) {
  uint8_t out[MAXMSG + 66];
  size_t n = build_ok(q, out + 2, is(q, "trunc") ? "10.9.9.9" : "10.1.2.3");
  put16(out, 0, (int)n);
  send(fd, out, n + 2, MSG_NOSIGNAL);
}

static void *tcp_conn(void *arg) {
  int fd = (int)(intptr_t)arg;
  uint8_t len[2], *m = malloc(MAXMSG);
  query *q = malloc(sizeof *q);
  while (m && q && read_full(fd, len, 2) == 0) {
    size_t n = (size_t)(len[0] << 8 | len[1]);
    if (n > MAXMSG || read_full(fd, m, n) < 0 || parse_query(m, n, q) < 0)
      break;
    counts->tcp++;
    tcp_answer(fd, q);
  }
  free(m);
  free(q);
  close(fd);
  return NULL;
}

static void *tcp_loop(void *arg) {
  int lfd = (int)(intptr_t)arg;
  for (;;) {
    int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0)
      gev_spawn_raw(tcp_conn, (void *)(intptr_t)c);
    else if (gev_wait_read(lfd, -1) < 0)
      return NULL;
  }
}

static void child_main(int ufd, int tfd) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  gev_spawn_raw(udp_loop, (void *)(intptr_t)ufd);
  gev_spawn_raw(tcp_loop, (void *)(intptr_t)tfd);
  gev_run();
  _exit(0);
}

static int bind_pair(int *ufd, int *tfd) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  *ufd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  *tfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (*tfd >= 0)
    setsockopt(*tfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (*ufd < 0 || *tfd < 0 || bind(*ufd, (struct sockaddr *)&a, sizeof a) < 0 ||
      getsockname(*ufd, (struct sockaddr *)&a, &len) < 0 ||
      bind(*tfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(*tfd, 64) < 0)
    return -1;
  return ntohs(a.sin_port);
}

int responder_start(responder *r) {
  int ufd = -1, tfd = -1;
  memset(r, 0, sizeof *r);
  r->counts = mmap(NULL, sizeof *r->counts, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (r->counts == MAP_FAILED)
    return -1;
  memset(r->counts, 0, sizeof *r->counts);
  /* The UDP port the kernel picks may be taken for TCP: try a few. */
  for (int attempt = 0; attempt < 100 && r->port <= 0; attempt++) {
    if (ufd >= 0)
      close(ufd);
    if (tfd >= 0)
      close(tfd);
    r->port = bind_pair(&ufd, &tfd);
  }
  if (r->port <= 0)
    goto out_close;
  fflush(NULL);
  r->pid = fork();
  if (r->pid == 0) {
    counts = r->counts;
    child_main(ufd, tfd);
  }
  close(ufd);
  close(tfd);
  return r->pid > 0 ? 0 : -1;
out_close:
  if (ufd >= 0)
    close(ufd);
  if (tfd >= 0)
    close(tfd);
  return -1;
}

void responder_server(const responder *r, char *buf, size_t len) {
  snprintf(buf, len, "127.0.0.1:%d", r->port);
}

void responder_stop(responder *r) {
  if (r->pid > 0) {
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
  }
  if (r->counts && r->counts != MAP_FAILED)
    munmap(r->counts, sizeof *r->counts);
  memset(r, 0, sizeof *r);
}
