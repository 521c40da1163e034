#define _GNU_SOURCE
#include "servers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Runs argv (argv[0] a path or a name in $PATH), output to log (or the
 * test's own output when NULL); returns its exit status, or -1. Before
 * any hub: a plain waitpid. */
static int run(char *const argv[], const char *log) {
  posix_spawn_file_actions_t fa;
  pid_t pid;
  int status;
  posix_spawn_file_actions_init(&fa);
  if (log) {
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND,
                                     0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
  }
  int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    return -1;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- PostgreSQL
 * ---------------------------------------------------------------- */

static int find_pg_bindir(pg_server *pg, const char *bindir) {
  glob_t g;
  if (bindir && *bindir) {
    snprintf(pg->bindir, sizeof pg->bindir, "%s", bindir);
  } else if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) == 0) {
    snprintf(pg->bindir, sizeof pg->bindir, "%s", g.gl_pathv[g.gl_pathc - 1]);
    *strrchr(pg->bindir, '/') = '\0';
    globfree(&g);
  } else {
    return -1;
  }
  char path[300];
  snprintf(path, sizeof path, "%s/initdb", pg->bindir);
  return access(path, X_OK);
}

/* Runs a PostgreSQL tool as the server's owner: "postgres" under root. */
static int run_pg(pg_server *pg, const char *tool, char *const args[]) {
  char path[300], log[128];
  char *argv[24];
  int n = 0;
  snprintf(path, sizeof path, "%s/%s", pg->bindir, tool);
  snprintf(log, sizeof log, "%s/setup.log", pg->dir);
  if (getuid() == 0) {
    argv[n++] = "runuser";
    argv[n++] = "-u";
    argv[n++] = "postgres";
    argv[n++] = "--";
  }
  argv[n++] = path;
  for (int i = 0; args[i] && n < 23; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  return run(argv, log);
}

int pg_server_start(pg_server *pg, const char *bindir) {
  char data[96], log[96], opts[256];
  memset(pg, 0, sizeof *pg);
  if (find_pg_bindir(pg, bindir) < 0) {
    printf("PostgreSQL server programs (initdb, pg_ctl) not found: "
           "install postgresql (scripts/bootstrap does)\n");
    return 77;
  }
  if (getuid() == 0 && !getpwnam("postgres")) {
    printf("no 'postgres' user to run PostgreSQL as (it refuses root)\n");
    return 77;
  }
  strcpy(pg->dir, "/tmp/gev-pg-XXXXXX");
  if (!mkdtemp(pg->dir))
    return -1;
  if (getuid() == 0) {
    struct passwd *pw = getpwnam("postgres");
    if (chown(pg->dir, pw->pw_uid, pw->pw_gid) < 0)
      return -1;
  }
  snprintf(data, sizeof data, "%s/data", pg->dir);
  snprintf(log, sizeof log, "%s/server.log", pg->dir);
  snprintf(opts, sizeof opts,
           "-k %s -c listen_addresses='' -c max_connections=150 "
           "-c fsync=off",
           pg->dir);
  char *initdb[] = {"-D",        data, "--auth=trust", "-U", "postgres",
                    "--no-sync", NULL};
  char *start[] = {"-D", data, "-l", log, "-w", "-o", opts, "start", NULL};
  if (run_pg(pg, "initdb", initdb) != 0 || run_pg(pg, "pg_ctl", start) != 0) {
    printf("could not start PostgreSQL (see %s/setup.log)\n", pg->dir);
    return -1;
  }
  pg->running = 1;
  snprintf(pg->conninfo, sizeof pg->conninfo,
           "host=%s dbname=postgres user=postgres connect_timeout=10", pg->dir);
  return 0;
}

void pg_server_stop(pg_server *pg) {
  char data[96];
  if (!pg->dir[0])
    return;
  snprintf(data, sizeof data, "%s/data", pg->dir);
  if (pg->running) {
    char *stop[] = {"-D", data, "-m", "immediate", "-w", "stop", NULL};
    run_pg(pg, "pg_ctl", stop);
  }
  char *rm[] = {"rm", "-rf", pg->dir, NULL};
  run(rm, NULL);
  memset(pg, 0, sizeof *pg);
}

/* ---- redis
 * ------------------------------------------------------------------------ */

/* A TCP port nobody listens on now (bound, then released). */
static int free_port(void) {
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sin;
  int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0 &&
      getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
    port = ntohs(sin.sin_port);
  if (fd >= 0)
    close(fd);
  return port;
}

static int accepts(int port) {
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
  ok = fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
  if (fd >= 0)
    close(fd);
  return ok;
}

int redis_server_start(redis_server *r, const char *path) {
  char port[16];
  const char *prog = path && *path ? path : "redis-server";
  memset(r, 0, sizeof *r);
  if (path && *path
          ? access(path, X_OK) < 0
          : run((char *[]){"sh", "-c", "command -v redis-server >/dev/null",
                           NULL},
                NULL) != 0) {
    printf("redis-server not found: install redis-server "
           "(scripts/bootstrap does)\n");
    return 77;
  }
  for (int attempt = 0; attempt < 5; attempt++) {
    r->port = free_port();
    snprintf(port, sizeof port, "%d", r->port);
    char *argv[] = {(char *)prog, "--port",       port,   "--bind",
                    "127.0.0.1",  "--save",       "",     "--appendonly",
                    "no",         "--logfile",    "",     "--daemonize",
                    "no",         "--maxclients", "4000", NULL};
    if (posix_spawnp(&r->pid, prog, NULL, NULL, argv, environ) != 0)
      return -1;
    for (int i = 0; i < 500; i++) { /* up to 5 s */
      if (accepts(r->port))
        return 0;
      if (waitpid(r->pid, NULL, WNOHANG) == r->pid)
        break; /* it died: the port was taken meanwhile, try another */
      usleep(10000);
    }
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
  }
  r->pid = 0;
  printf("could not start redis-server\n");
  return -1;
}

void redis_server_stop(redis_server *r) {
  if (r->pid > 0) {
    kill(r->pid, SIGTERM);
    waitpid(r->pid, NULL, 0);
  }
  memset(r, 0, sizeof *r);
}

/* ---- HTTP that answers late
 * -------------------------------------------------- */

struct http_delay {
  gev_socket *listener;
  gev_greenlet *acceptor;
  gev_group *handlers;
  double delay;
  int port;
  int served;
};

typedef struct conn {
  http_delay *h;
  gev_socket *s;
} conn;

static void *handle(void *arg) {
  conn *c = arg;
  char buf[4096];
  size_t got = 0;
  static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                             "Connection: close\r\n\r\nhello";
  while (got < sizeof buf - 1) {
    ssize_t n = gev_socket_recv(c->s, buf + got, sizeof buf - 1 - got, 0);
    if (n <= 0)
      break;
    got += (size_t)n;
    buf[got] = '\0';
    if (strstr(buf, "\r\n\r\n"))
      break;
  }
  if (strstr(buf, "\r\n\r\n") && gev_sleep(c->h->delay) == 0 &&
      gev_socket_sendall(c->s, resp, sizeof resp - 1, 0) == 0)
    c->h->served++;
  gev_socket_close(c->s);
  free(c);
  return NULL;
}

static void *accept_loop(void *arg) {
  http_delay *h = arg;
  gev_socket *s;
  while ((s = gev_socket_accept(h->listener, NULL, NULL))) {
    conn *c = malloc(sizeof *c);
    gev_greenlet *g;
    if (!c) {
      gev_socket_close(s);
      continue;
    }
    c->h = h;
    c->s = s;
    if (!(g = gev_pool_spawn(h->handlers, handle, c, -1))) {
      gev_socket_close(s);
      free(c);
      continue;
    }
    gev_greenlet_unref(g);
  }
  return NULL;
}

http_delay *http_delay_start(double delay) {
  http_delay *h = calloc(1, sizeof *h);
  struct sockaddr_in sin;
  socklen_t len = sizeof sin;
  if (!h)
    return NULL;
  h->delay = delay;
  h->listener = gev_socket_listen_tcp("127.0.0.1", 0, 1024, 0);
  h->handlers = gev_group_new();
  if (!h->listener || !h->handlers ||
      gev_socket_getsockname(h->listener, (struct sockaddr *)&sin, &len) < 0 ||
      !(h->acceptor = gev_spawn(accept_loop, h))) {
    http_delay_stop(h);
    return NULL;
  }
  h->port = ntohs(sin.sin_port);
  return h;
}

int http_delay_port(const http_delay *h) { return h->port; }
int http_delay_served(const http_delay *h) { return h->served; }

void http_delay_stop(http_delay *h) {
  if (h->acceptor) {
    gev_greenlet_kill(h->acceptor, 1, 5);
    gev_greenlet_unref(h->acceptor);
  }
  if (h->handlers) {
    gev_pool_kill(h->handlers, 1, 5);
    gev_pool_free(h->handlers);
  }
  if (h->listener)
    gev_socket_close(h->listener);
  free(h);
}
