/* The prefork master with real processes, sockets and signals: workers
 * come up and serve, are replaced after kill -9, are killed when their hub
 * stops beating, retire at max_requests, stop gracefully on TERM, are
 * swapped on HUP, follow TTIN/TTOU, leave when the master dies, and back
 * off when they cannot boot. The test process itself stays a plain
 * blocking client (no hub), so its children are its own to reap. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gev/net.h"
#include "gev/prefork.h"
#include "gev/server.h"
#include "gev/signal.h"
#include "pftest.h"
#include "testutil.h"

static int fds_before;
static void setup(void) {
  signal(SIGPIPE, SIG_IGN);
  fds_before = gev_test_fd_count();
}
static void teardown(void) { gev_test_all_clean(fds_before); }

/* ---- The worker under test ----------------------------------------------- */

/* One request per connection: a command line, one reply line.
 *   "pid"        -> "PID SERIAL"
 *   "slow MS"    -> sleeps MS milliseconds (cooperatively), then as pid
 *   "spin"       -> "spinning", then burns CPU without ever yielding */
typedef struct conn_buf {
  char line[64];
} conn_buf;

static int read_line(gev_socket *s, char *buf, size_t len) {
  size_t n = 0;
  while (n + 1 < len) {
    ssize_t r = gev_socket_recv(s, buf + n, 1, 0);
    if (r <= 0)
      return -1;
    if (buf[n] == '\n')
      break;
    n++;
  }
  buf[n] = 0;
  return 0;
}

static void reply(gev_socket *s, gev_worker *w) {
  char out[64];
  int n =
      snprintf(out, sizeof out, "%d %u\n", (int)getpid(), gev_worker_serial(w));
  gev_socket_sendall(s, out, (size_t)n, 0);
}

static void handle(gev_server *srv, gev_socket *client,
                   const struct sockaddr *peer, socklen_t peerlen, void *arg) {
  gev_worker *w = arg;
  conn_buf *b = malloc(sizeof *b); /* heap: the shared-stack rule */
  gev_socket_settimeout(client, 10);
  if (b && read_line(client, b->line, sizeof b->line) == 0) {
    if (strncmp(b->line, "slow ", 5) == 0)
      gev_sleep(atoi(b->line + 5) / 1000.0);
    if (strcmp(b->line, "spin") == 0) {
      gev_socket_sendall(client, "spinning\n", 9, 0);
      for (volatile unsigned long i = 0;; i++)
        ;
    }
    reply(client, w);
    gev_worker_request_done(w);
  }
  free(b);
}

enum { BOOT_OK, BOOT_FAIL };

/* The worker's own view, checked from inside: exit status 5 (it then
 * never becomes ready) when something is off before serving, 6 when the
 * stop reason is. The tests look for "exited with status 0". */
static int worker_state_ok(gev_worker *w) {
  return gev_worker_wait_stop(w, 0) == -1 && errno == ETIMEDOUT &&
         gev_worker_stopping(w) == GEV_WORKER_RUNNING &&
         gev_worker_listen_fd(w) >= 0 && gev_worker_serial(w) > 0 &&
         gev_worker_requests(w) == 0 && gev_worker_graceful_timeout(w) > 0;
}

static int test_worker(gev_worker *w, void *arg) {
  if ((intptr_t)arg == BOOT_FAIL)
    return 3;
  if (!worker_state_ok(w))
    return 5;
  gev_socket *ls = gev_socket_wrap(gev_worker_listen_fd(w));
  gev_server_opts so = {.listener = ls, .max_handlers = 1, .name = "t"};
  gev_server *srv = gev_stream_server_new(&so, handle, w);
  if (!srv || gev_server_start(srv) < 0)
    return 4;
  int why = gev_worker_wait_stop(w, -1);
  gev_server_stop(srv, gev_worker_graceful_timeout(w));
  gev_server_free(srv);
  if (why != (int)gev_worker_stopping(w))
    return 6;
  if (why == GEV_WORKER_STOP_MAX_REQUESTS && gev_worker_requests(w) < 5)
    return 6;
  return why == GEV_WORKER_STOP_TERM || why == GEV_WORKER_STOP_MAX_REQUESTS ||
                 why == GEV_WORKER_STOP_ORPHANED
             ? 0
             : 6;
}

/* ---- Master handling ----------------------------------------------------- */

typedef struct master_proc {
  pid_t pid;
  int port;
  int log_fd;      /* read end of the master's stderr */
  char log[32768]; /* everything read from it so far */
  size_t log_len;
} master_proc;

static int ready_fd = -1;
static int with_hub; /* start_master's process uses gev before the master */

static void *sleep_forever(void *arg) {
  gev_sleep(3600);
  return NULL;
}

static void ignore_signal(int signum, void *arg) {}

/* A master process that was a gev program before: greenlets parked in its
 * hub and a gev signal handler of a signal the master takes over. */
static void give_master_a_hub(void) {
  gev_spawn_raw(sleep_forever, NULL);
  gev_spawn_raw(sleep_forever, NULL);
  gev_signal_handler(SIGHUP, ignore_signal, NULL);
  gev_signal_handler(SIGUSR1, ignore_signal, NULL);
  gev_sleep(0.001);
}
static int with_helper; /* start_master forks a non-worker child first */

static void on_ready(const struct sockaddr *addr, socklen_t len, void *arg) {
  int port = ntohs(((const struct sockaddr_in *)addr)->sin_port);
  if (write(ready_fd, &port, sizeof port) < 0)
    _exit(99);
  close(ready_fd);
}

/* Forks a master running opts with the test worker; its stderr (the log)
 * goes to mp->log_fd. Returns once its workers are ready. */
static void start_master(master_proc *mp, gev_prefork_opts *o) {
  int logp[2], readyp[2];
  memset(mp, 0, sizeof *mp);
  ck_assert_int_eq(pipe(logp), 0);
  ck_assert_int_eq(pipe(readyp), 0);
  o->worker = test_worker;
  o->on_ready = on_ready;
  o->host = "127.0.0.1";
  mp->pid = fork();
  ck_assert_int_ge(mp->pid, 0);
  if (mp->pid == 0) {
    dup2(logp[1], 2);
    close(logp[0]);
    close(logp[1]);
    close(readyp[0]);
    ready_fd = readyp[1];
    if (with_hub)
      give_master_a_hub();
    pid_t helper = with_helper ? fork() : 0;
    if (with_helper && helper == 0)
      _exit(7); /* a child of the program that is not a worker */
    int rc = gev_prefork_run(o);
    if (rc < 0)
      fprintf(stderr, "gev_prefork_run: %s\n", strerror(errno));
    int st = 0;
    if (with_helper &&
        (waitpid(helper, &st, 0) != helper || WEXITSTATUS(st) != 7))
      _exit(2); /* the master took the helper's status */
    _exit(rc == 0 ? 0 : 1);
  }
  close(logp[1]);
  close(readyp[1]);
  mp->log_fd = logp[0];
  struct pollfd pfd = {.fd = readyp[0], .events = POLLIN};
  ck_assert_int_eq(poll(&pfd, 1, 15000), 1);
  ck_assert_int_eq(read(readyp[0], &mp->port, sizeof mp->port),
                   sizeof mp->port);
  close(readyp[0]);
}

/* Reads what the master logged so far (without blocking). */
static const char *master_log(master_proc *mp) {
  struct pollfd pfd = {.fd = mp->log_fd, .events = POLLIN};
  while (mp->log_len + 1 < sizeof mp->log && poll(&pfd, 1, 0) == 1) {
    ssize_t n = read(mp->log_fd, mp->log + mp->log_len,
                     sizeof mp->log - 1 - mp->log_len);
    if (n <= 0)
      break;
    mp->log_len += (size_t)n;
  }
  mp->log[mp->log_len] = 0;
  return mp->log;
}

static int count_in_log(master_proc *mp, const char *what) {
  int n = 0;
  for (const char *p = master_log(mp); (p = strstr(p, what)); p++)
    n++;
  return n;
}

/* Waits up to timeout for what to appear in the log. */
static int wait_log(master_proc *mp, const char *what, double timeout) {
  double end = pf_now() + timeout;
  while (!strstr(master_log(mp), what)) {
    if (pf_now() > end)
      return 0;
    usleep(10000);
  }
  return 1;
}

/* Sends sig to the master and waits for it to exit; returns its status. */
static int stop_master(master_proc *mp, int sig, double timeout) {
  kill(mp->pid, sig);
  int status = pf_wait_pid(mp->pid, timeout);
  master_log(mp);
  close(mp->log_fd);
  if (status != 0)
    fprintf(stderr, "master log:\n%s\n", mp->log);
  return status;
}

/* ---- Client -------------------------------------------------------------- */

static int connect_port(int port) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct timeval tv = {.tv_sec = 10};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int send_cmd(int fd, const char *cmd) {
  size_t len = strlen(cmd);
  return send(fd, cmd, len, 0) == (ssize_t)len ? 0 : -1;
}

/* Reads the reply to a pid/slow command: the worker's pid, or -1. */
static pid_t read_pid(int fd) {
  char buf[64];
  size_t n = 0;
  while (n + 1 < sizeof buf) {
    ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
    if (r <= 0)
      break;
    n += (size_t)r;
    if (memchr(buf, '\n', n))
      break;
  }
  buf[n] = 0;
  close(fd);
  return n > 0 && memchr(buf, '\n', n) ? (pid_t)atoi(buf) : -1;
}

static pid_t ask(int port, const char *cmd) {
  int fd = connect_port(port);
  if (fd < 0)
    return -1;
  if (send_cmd(fd, cmd) < 0) {
    close(fd);
    return -1;
  }
  return read_pid(fd);
}

static int contains(const pid_t *set, int n, pid_t p) {
  for (int i = 0; i < n; i++)
    if (set[i] == p)
      return 1;
  return 0;
}

/* Waits until the master has exactly n live children; fills kids. */
static int wait_children(pid_t master, int n, pid_t *kids, double timeout) {
  double end = pf_now() + timeout;
  for (;;) {
    int got = pf_children(master, kids, 16);
    if (got == n)
      return 1;
    if (pf_now() > end)
      return 0;
    usleep(10000);
  }
}

/* Waits until every pid of set has gone (exited, or a zombie). */
static int wait_gone(const pid_t *set, int n, double timeout) {
  double end = pf_now() + timeout;
  for (int i = 0; i < n; i++) {
    while (pf_alive(set[i])) {
      if (pf_now() > end)
        return 0;
      usleep(10000);
    }
  }
  return 1;
}

/* ---- Tests --------------------------------------------------------------- */

START_TEST(test_workers_come_up_and_all_serve) {
  master_proc mp;
  gev_prefork_opts o = {.workers = 3, .graceful_timeout = 5};
  pid_t kids[16], seen[3];
  int fds[3];
  start_master(&mp, &o);
  ck_assert(wait_children(mp.pid, 3, kids, 5));
  /* Each worker takes one connection at a time (max_handlers = 1), so
   * three slow requests at once are served by three workers. */
  for (int i = 0; i < 3; i++) {
    fds[i] = connect_port(mp.port);
    ck_assert_int_ge(fds[i], 0);
    ck_assert_int_eq(send_cmd(fds[i], "slow 500\n"), 0);
  }
  for (int i = 0; i < 3; i++) {
    seen[i] = read_pid(fds[i]);
    ck_assert_int_gt(seen[i], 0);
    ck_assert(contains(kids, 3, seen[i])); /* direct children */
    ck_assert(!contains(seen, i, seen[i]));
  }
  ck_assert(
      strstr(master_log(&mp), "3 workers ready, listening on 127.0.0.1:"));
  ck_assert_int_eq(stop_master(&mp, SIGTERM, 10), 0);
  ck_assert(wait_gone(kids, 3, 5));
  ck_assert_int_eq(count_in_log(&mp, " started"), 3 + 1); /* + master */
  ck_assert_int_eq(count_in_log(&mp, "exited with status 0"), 3);
  ck_assert(strstr(mp.log, "graceful stop"));
  ck_assert(strstr(mp.log, "stopped"));
}
END_TEST

START_TEST(test_killed_worker_is_replaced) {
  master_proc mp;
  gev_prefork_opts o = {.workers = 2, .graceful_timeout = 5};
  pid_t kids[16], now_kids[16];
  start_master(&mp, &o);
  ck_assert(wait_children(mp.pid, 2, kids, 5));
  ck_assert_int_eq(kill(kids[0], SIGKILL), 0);
  ck_assert(wait_log(&mp, "killed by signal 9", 5));
  double end = pf_now() + 5;
  do {
    usleep(10000);
  } while ((!wait_children(mp.pid, 2, now_kids, 0) ||
            contains(now_kids, 2, kids[0])) &&
           pf_now() < end);
  ck_assert(wait_children(mp.pid, 2, now_kids, 0));
  ck_assert(!contains(now_kids, 2, kids[0]));
  ck_assert(contains(now_kids, 2, kids[1]));
  ck_assert_int_eq(pf_zombies(mp.pid), 0);
  ck_assert_int_gt(ask(mp.port, "pid\n"), 0);
  ck_assert_int_eq(stop_master(&mp, SIGTERM, 10), 0);
  ck_assert(wait_gone(now_kids, 2, 5));
}
END_TEST

START_TEST(test_spinning_worker_is_killed_and_replaced) {
  master_proc mp;
  gev_prefork_opts o = {.workers = 2, .timeout = 1, .graceful_timeout = 5};
  pid_t kids[16];
  char buf[16];
  start_master(&mp, &o);
  ck_assert(wait_children(mp.pid, 2, kids, 5));
  int fd = connect_port(mp.port);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(send_cmd(fd, "spin\n"), 0);
  ck_assert_int_eq(recv(fd, buf, 9, MSG_WAITALL), 9);
  ck_assert(wait_log(&mp, "no heartbeat for", 5));
  /* The spinner was killed by the master and a new worker serves. */
  ck_assert(wait_log(&mp, "killed by signal 9", 5));
  ck_assert(wait_log(&mp, "worker 3 (pid", 5));
  ck_assert(wait_children(mp.pid, 2, kids, 5));
  ck_assert_int_eq(recv(fd, buf, sizeof buf, 0), 0); /* spinner's conn closed */
  close(fd);
  for (int i = 0; i < 4; i++)
    ck_assert_int_gt(ask(mp.port, "pid\n"), 0);
  ck_assert_int_eq(stop_master(&mp, SIGTERM, 10), 0);
  ck_assert(wait_gone(kids, 2, 5));
}
END_TEST

START_TEST(test_max_requests_retires_without_failures) {
  master_proc mp;
  gev_prefork_opts o = {.workers = 2,
                        .max_requests = 5,
                        .max_requests_jitter = 2,
                        .graceful_timeout = 5};
  pid_t served[64];
  int nserved = 0;
  start_master(&mp, &o);
  for (int i = 0; i < 60; i++) {
    pid_t p = ask(mp.port, "pid\n");
    ck_assert_msg(p > 0, "request %d failed", i);
    if (!contains(served, nserved, p))
      served[nserved++] = p;
  }
  /* 60 requests at most 7 each: at least 9 workers served in turn. */
  ck_assert_int_ge(nserved, 9);
  ck_assert_int_eq(stop_master(&mp, SIGTERM, 10), 0);
  /* All but the last two retired; every worker left cleanly. */
  ck_assert_int_ge(count_in_log(&mp, "served its max_requests"), nserved - 2);
  ck_assert_int_eq(count_in_log(&mp, "exited with status 0"),
                   count_in_log(&mp, ") started"));
  ck_assert(wait_gone(served, nserved, 5));
}
END_TEST

START_TEST(test_term_lets_a_slow_request_finish) {
  master_proc mp;
  gev_prefork_opts o = {.workers = 2, .graceful_timeout = 5};
  pid_t kids[16];
  start_master(&mp, &o);
  ck_assert(wait_children(mp.pid, 2, kids, 5));
  int fd = connect_port(mp.port);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(send_cmd(fd, "slow 1000\n"), 0);
  usleep(200000); /* the request is in its worker now */
  double t0 = pf_now();
  kill(mp.pid, SIGTERM);
  pid_t p = read_pid(fd);
  ck_assert_int_gt(p, 0);
  ck_assert(contains(kids, 2, p));
  ck_assert_int_eq(pf_wait_pid(mp.pid, 10), 0);
  ck_assert(pf_now() - t0 < 5); /* done well before the graceful kill */
  ck_assert(wait_gone(kids, 2, 5));
  close(mp.log_fd);
}
END_TEST

START_TEST(test_hup_swaps_workers_without_failures) {
  master_proc mp;
  gev_prefork_opts o = {.workers = 2, .graceful_timeout = 5};
  pid_t old[16], fresh[16];
  start_master(&mp, &o);
  ck_assert(wait_children(mp.pid, 2, old, 5));
  kill(mp.pid, SIGHUP);
  double end = pf_now() + 10;
  int swapped = 0;
  for (int i = 0; !swapped && pf_now() < end; i++) {
    ck_assert_msg(ask(mp.port, "pid\n") > 0, "request %d failed", i);
    swapped = wait_children(mp.pid, 2, fresh, 0) &&
              !contains(old, 2, fresh[0]) && !contains(old, 2, fresh[1]);
  }
  ck_assert(swapped);
  ck_assert(wait_gone(old, 2, 5));
  for (int i = 0; i < 4; i++)
    ck_assert(contains(fresh, 2, ask(mp.port, "pid\n")));
  ck_assert_int_eq(count_in_log(&mp, "replaced after HUP"), 2);
  ck_assert_int_eq(stop_master(&mp, SIGTERM, 10), 0);
  ck_assert(wait_gone(fresh, 2, 5));
}
END_TEST

START_TEST(test_ttin_ttou_change_the_count) {
  master_proc mp;
  gev_prefork_opts o = {.workers = 2, .graceful_timeout = 5};
  pid_t kids[16];
  start_master(&mp, &o);
  ck_assert(wait_children(mp.pid, 2, kids, 5));
  kill(mp.pid, SIGTTIN);
  ck_assert(wait_children(mp.pid, 3, kids, 5));
  kill(mp.pid, SIGTTOU);
  ck_assert(wait_log(&mp, "TTOU: 2 workers wanted", 5));
  kill(mp.pid, SIGTTOU);
  ck_assert(wait_log(&mp, "TTOU: 1 workers wanted", 5));
  ck_assert(wait_children(mp.pid, 1, kids, 5));
  kill(mp.pid, SIGTTOU); /* never below one */
  usleep(100000);
  ck_assert_int_eq(pf_children(mp.pid, kids, 16), 1);
  ck_assert_int_gt(ask(mp.port, "pid\n"), 0);
  ck_assert_int_eq(pf_zombies(mp.pid), 0);
  ck_assert_int_eq(stop_master(&mp, SIGTERM, 10), 0);
  ck_assert(wait_gone(kids, 1, 5));
}
END_TEST

START_TEST(test_workers_leave_when_the_master_dies) {
  master_proc mp;
  gev_prefork_opts o = {.workers = 2, .timeout = 1, .graceful_timeout = 5};
  pid_t kids[16];
  start_master(&mp, &o);
  ck_assert(wait_children(mp.pid, 2, kids, 5));
  kill(mp.pid, SIGKILL);
  ck_assert_int_eq(pf_wait_pid(mp.pid, 5), SIGKILL); /* WTERMSIG status */
  close(mp.log_fd);
  ck_assert(wait_gone(kids, 2, 5)); /* noticed getppid() change */
}
END_TEST

START_TEST(test_quick_stop) {
  master_proc mp;
  gev_prefork_opts o = {.workers = 2, .graceful_timeout = 10};
  pid_t kids[16];
  start_master(&mp, &o);
  ck_assert(wait_children(mp.pid, 2, kids, 5));
  int fd = connect_port(mp.port);
  ck_assert_int_eq(send_cmd(fd, "slow 5000\n"), 0);
  usleep(100000);
  double t0 = pf_now();
  ck_assert_int_eq(stop_master(&mp, SIGINT, 5), 0);
  ck_assert(pf_now() - t0 < 4); /* did not wait for the slow request */
  ck_assert_int_eq(read_pid(fd), -1);
  ck_assert(wait_gone(kids, 2, 5));
  ck_assert(strstr(mp.log, "quick stop"));
}
END_TEST

START_TEST(test_boot_failures_back_off) {
  master_proc mp;
  int logp[2];
  gev_prefork_opts o = {.workers = 2,
                        .graceful_timeout = 5,
                        .worker = test_worker,
                        .arg = (void *)BOOT_FAIL};
  memset(&mp, 0, sizeof mp);
  ck_assert_int_eq(pipe(logp), 0);
  mp.pid = fork();
  ck_assert_int_ge(mp.pid, 0);
  if (mp.pid == 0) {
    dup2(logp[1], 2);
    close(logp[0]);
    close(logp[1]);
    _exit(gev_prefork_run(&o) == 0 ? 0 : 1);
  }
  close(logp[1]);
  mp.log_fd = logp[0];
  usleep(1500000);
  /* Without backoff this would be hundreds of starts. Delays 0.1, 0.2,
   * 0.4, 0.8 s ... allow at most 2 + 5 in 1.5 s. */
  int starts = count_in_log(&mp, ") started");
  ck_assert_int_ge(starts, 3);
  ck_assert_int_le(starts, 7);
  ck_assert(strstr(mp.log, "failed to boot (2 in a row); next start in 0.2 s"));
  ck_assert_int_eq(stop_master(&mp, SIGTERM, 10), 0);
}
END_TEST

START_TEST(test_reuseport_workers) {
  master_proc mp;
  gev_prefork_opts o = {.workers = 2, .reuseport = 1, .graceful_timeout = 5};
  pid_t kids[16];
  start_master(&mp, &o);
  ck_assert(wait_children(mp.pid, 2, kids, 5));
  for (int i = 0; i < 10; i++)
    ck_assert(contains(kids, 2, ask(mp.port, "pid\n")));
  ck_assert(strstr(master_log(&mp), "(SO_REUSEPORT)"));
  ck_assert_int_eq(stop_master(&mp, SIGTERM, 10), 0);
  ck_assert(wait_gone(kids, 2, 5));
}
END_TEST

START_TEST(test_other_children_keep_their_status) {
  master_proc mp;
  gev_prefork_opts o = {.workers = 1, .graceful_timeout = 5};
  pid_t kids[16];
  with_helper = 1;
  start_master(&mp, &o);
  with_helper = 0;
  ck_assert(wait_children(mp.pid, 1, kids, 5));
  usleep(100000); /* the helper has exited meanwhile */
  ck_assert_int_gt(ask(mp.port, "pid\n"), 0);
  ck_assert_int_eq(stop_master(&mp, SIGTERM, 10), 0);
}
END_TEST

START_TEST(test_term_kills_what_overruns_the_graceful_timeout) {
  master_proc mp;
  gev_prefork_opts o = {.workers = 1, .graceful_timeout = 0.5};
  pid_t kids[16];
  start_master(&mp, &o);
  ck_assert(wait_children(mp.pid, 1, kids, 5));
  int fd = connect_port(mp.port);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(send_cmd(fd, "slow 10000\n"), 0);
  usleep(100000);
  double t0 = pf_now();
  ck_assert_int_eq(stop_master(&mp, SIGTERM, 10), 0);
  ck_assert(pf_now() - t0 < 5);
  ck_assert_int_eq(read_pid(fd), -1); /* cut off, no answer */
  ck_assert(!pf_alive(kids[0]));
  /* Killed by the master, or gone by its own graceful deadline. */
  ck_assert(strstr(mp.log, "still running") ||
            strstr(mp.log, "exited with status 1"));
}
END_TEST

START_TEST(test_master_in_a_gev_program) {
  master_proc mp;
  gev_prefork_opts o = {.workers = 2, .graceful_timeout = 5};
  pid_t kids[16];
  with_hub = 1;
  start_master(&mp, &o);
  with_hub = 0;
  ck_assert(wait_children(mp.pid, 2, kids, 5));
  /* The workers dropped the inherited hub: the SIGUSR1 handler is gone
   * (the default action would end a worker, so the master replaces it). */
  ck_assert_int_eq(kill(kids[0], SIGUSR1), 0);
  char what[64];
  snprintf(what, sizeof what, "killed by signal %d", SIGUSR1);
  ck_assert(wait_log(&mp, what, 5));
  for (int i = 0; i < 4; i++)
    ck_assert_int_gt(ask(mp.port, "pid\n"), 0);
  kill(mp.pid, SIGHUP); /* the master's, not the old gev handler's */
  ck_assert(wait_log(&mp, "HUP: starting 2 new workers", 5));
  ck_assert_int_eq(stop_master(&mp, SIGTERM, 10), 0);
}
END_TEST

START_TEST(test_borrowed_listener) {
  master_proc mp;
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq(listen(fd, 16), 0);
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  gev_prefork_opts o = {
      .workers = 2, .graceful_timeout = 5, .use_listen_fd = 1, .listen_fd = fd};
  start_master(&mp, &o);
  ck_assert_int_eq(mp.port, ntohs(a.sin_port));
  for (int i = 0; i < 4; i++)
    ck_assert_int_gt(ask(mp.port, "pid\n"), 0);
  ck_assert_int_eq(stop_master(&mp, SIGTERM, 10), 0);
  close(fd);
}
END_TEST

static void *run_in_greenlet(void *arg) {
  return (void *)(intptr_t)(gev_prefork_run(arg) < 0 ? errno : 0);
}

START_TEST(test_bad_input) {
  gev_prefork_opts o = {.workers = 1};
  ck_assert_int_eq(gev_prefork_run(NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_prefork_run(&o), -1); /* no worker function */
  ck_assert_int_eq(errno, EINVAL);
  o.worker = test_worker;
  o.port = 70000;
  ck_assert_int_eq(gev_prefork_run(&o), -1);
  ck_assert_int_eq(errno, EINVAL);
  o.port = 0;
  o.graceful_timeout = -1;
  ck_assert_int_eq(gev_prefork_run(&o), -1);
  ck_assert_int_eq(errno, EINVAL);
  o.graceful_timeout = 0;
  o.use_listen_fd = 1;
  int null_fd = open("/dev/null", 0);
  o.listen_fd = null_fd;
  ck_assert_int_eq(gev_prefork_run(&o), -1);
  ck_assert_int_eq(errno, EINVAL);
  close(null_fd);
  /* A TCP socket that is bound but does not listen would never accept. */
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int bound = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_eq(bind(bound, (struct sockaddr *)&sin, sizeof sin), 0);
  o.listen_fd = bound;
  ck_assert_int_eq(gev_prefork_run(&o), -1);
  ck_assert_int_eq(errno, EINVAL);
  close(bound);
  o.use_listen_fd = 0;
  o.host = "no-such-host.invalid";
  ck_assert_int_eq(gev_prefork_run(&o), -1);
  ck_assert_int_eq(errno, ENOENT);
  o.host = NULL;
  gev_greenlet *g = gev_spawn(run_in_greenlet, &o);
  void *v = NULL;
  ck_assert_int_eq(gev_greenlet_get(g, 5, &v), 0);
  ck_assert_int_eq((int)(intptr_t)v, EPERM);
  gev_greenlet_unref(g);
  ck_assert_int_eq(gev_worker_listen_fd(NULL), -1);
  ck_assert_int_eq(gev_worker_wait_stop(NULL, 0), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_worker_request_done(NULL), -1);
  ck_assert_int_eq(gev_worker_stopping(NULL), GEV_WORKER_RUNNING);
  ck_assert_uint_eq(gev_worker_requests(NULL), 0);
  ck_assert_uint_eq(gev_worker_serial(NULL), 0);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("prefork");
  TCase *tc = tcase_create("prefork");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_workers_come_up_and_all_serve);
  tcase_add_test(tc, test_killed_worker_is_replaced);
  tcase_add_test(tc, test_spinning_worker_is_killed_and_replaced);
  tcase_add_test(tc, test_max_requests_retires_without_failures);
  tcase_add_test(tc, test_term_lets_a_slow_request_finish);
  tcase_add_test(tc, test_hup_swaps_workers_without_failures);
  tcase_add_test(tc, test_ttin_ttou_change_the_count);
  tcase_add_test(tc, test_workers_leave_when_the_master_dies);
  tcase_add_test(tc, test_quick_stop);
  tcase_add_test(tc, test_term_kills_what_overruns_the_graceful_timeout);
  tcase_add_test(tc, test_boot_failures_back_off);
  tcase_add_test(tc, test_reuseport_workers);
  tcase_add_test(tc, test_borrowed_listener);
  tcase_add_test(tc, test_other_children_keep_their_status);
  tcase_add_test(tc, test_master_in_a_gev_program);
  tcase_add_test(tc, test_bad_input);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(suite)
