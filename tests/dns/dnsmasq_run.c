#define _GNU_SOURCE
#include "dnsmasq_run.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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

#define DNSMASQ_BIN "/usr/sbin/dnsmasq"
#define MAX_ARGS 64

/* A port free for both UDP and TCP on 127.0.0.1 right now, or -1. */
static int free_port_once(void) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), port = -1;
  if (u < 0 || bind(u, (struct sockaddr *)&a, sizeof a) < 0 ||
      getsockname(u, (struct sockaddr *)&a, &len) < 0)
    goto out;
  int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
  if (t >= 0)
    setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (t >= 0 && bind(t, (struct sockaddr *)&a, sizeof a) == 0)
    port = ntohs(a.sin_port);
  if (t >= 0)
    close(t);
out:
  if (u >= 0)
    close(u);
  return port;
}

/* The UDP port the kernel picks may be taken for TCP: try a few. */
static int free_port(void) {
  int port = -1;
  for (int i = 0; i < 100 && port < 0; i++)
    port = free_port_once();
  return port;
}

static int write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f)
    return -1;
  fputs(text, f);
  return fclose(f);
}

static void child_exec(const dnsmasq_run *d, const char *const *extra) {
  char port[32], hosts[128], log[128];
  const char *argv[MAX_ARGS];
  int n = 0;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  snprintf(port, sizeof port, "--port=%d", d->port);
  snprintf(hosts, sizeof hosts, "--addn-hosts=%s/hosts", d->dir);
  snprintf(log, sizeof log, "%s/log", d->dir);
  int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd >= 0) {
    dup2(fd, 1);
    dup2(fd, 2);
  }
  const char *fixed[] = {DNSMASQ_BIN,
                         "--keep-in-foreground",
                         "--user=root",
                         "--group=root",
                         "--pid-file=",
                         port,
                         "--listen-address=127.0.0.1",
                         "--bind-interfaces",
                         "--no-resolv",
                         "--no-hosts",
                         hosts,
                         "--local=/test/",
                         "--local=/in-addr.arpa/",
                         "--local=/ip6.arpa/",
                         "--log-facility=-",
                         NULL};
  for (int i = 0; fixed[i]; i++)
    argv[n++] = fixed[i];
  for (int i = 0; extra && extra[i] && n < MAX_ARGS - 1; i++)
    argv[n++] = extra[i];
  argv[n] = NULL;
  execv(DNSMASQ_BIN, (char *const *)argv);
  _exit(127);
}

static void nap_ms(int ms) {
  struct timespec ts = {0, ms * 1000000L};
  nanosleep(&ts, NULL);
}

/* Waits until dnsmasq accepts TCP on its port: 0, or -1 if it exited. */
static int wait_ready(dnsmasq_run *d) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)d->port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  for (int i = 0; i < 300; i++) {
    int status;
    if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
      fprintf(stderr, "dnsmasq_start: dnsmasq on port %d %s %d\n", d->port,
              WIFEXITED(status) ? "exited with" : "killed by signal",
              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
      return -1;
    }
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int ok = s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) == 0;
    if (s >= 0)
      close(s);
    if (ok)
      return 0;
    nap_ms(10);
  }
  kill(d->pid, SIGKILL);
  waitpid(d->pid, NULL, 0);
  return -1;
}

int dnsmasq_start(dnsmasq_run *d, const char *hosts, const char *const *extra) {
  char path[128];
  memset(d, 0, sizeof *d);
  snprintf(d->dir, sizeof d->dir, "/tmp/gev-dnsmasq-XXXXXX");
  if (!mkdtemp(d->dir))
    return -1;
  snprintf(path, sizeof path, "%s/hosts", d->dir);
  if (write_file(path, hosts ? hosts : "") < 0)
    goto out_rmdir;
  for (int attempt = 0; attempt < 5; attempt++) {
    if ((d->port = free_port()) < 0)
      break;
    fflush(NULL);
    if ((d->pid = fork()) < 0)
      break;
    if (d->pid == 0)
      child_exec(d, extra);
    if (wait_ready(d) == 0)
      return 0;
  }
  fprintf(stderr, "dnsmasq_start: dnsmasq did not come up (see %s/log)\n",
          d->dir);
  return -1;
out_rmdir:
  rmdir(d->dir);
  return -1;
}

void dnsmasq_server(const dnsmasq_run *d, char *buf, size_t len) {
  snprintf(buf, len, "127.0.0.1:%d", d->port);
}

void dnsmasq_stop(dnsmasq_run *d) {
  char path[128];
  if (d->pid > 0) {
    kill(d->pid, SIGTERM);
    waitpid(d->pid, NULL, 0);
    d->pid = 0;
  }
  snprintf(path, sizeof path, "%s/hosts", d->dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/log", d->dir);
  unlink(path);
  rmdir(d->dir);
}
