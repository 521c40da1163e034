/* gev_process: spawning with every kind of standard stream, big outputs
 * and inputs without deadlock, statuses and signals, timeouts and kills
 * that leave nothing behind, many children at once, descriptors that do
 * not leak, other threads, forks and signal handlers alongside. The
 * children run proc_helper (see its header) or ordinary programs. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gev/prefork.h"
#include "gev/process.h"
#include "gev/signal.h"
#include "hub/child.h"
#include "pftest.h"
#include "testutil.h"

#define BIG (64u << 20)

static int fds_before;
static void setup(void) { fds_before = gev_test_fd_count(); }
static void teardown(void) {
  gev__child_use_pidfd(1);
  gev_test_all_clean(fds_before); /* runs the hub until idle first */
  ck_assert_int_eq(pf_zombies(getpid()), 0);
  ck_assert_int_eq(pf_children(getpid(), NULL, 0), 0);
}

static const char *helper(void) {
  const char *h = getenv("GEV_PROC_HELPER");
  ck_assert_ptr_nonnull(h);
  return h;
}

/* Runs the helper with one or two arguments, capturing both outputs. */
static int run_helper(const char *cmd, const char *arg, const gev_bytes *in,
                      gev_bytes *out, gev_bytes *err, double timeout) {
  const char *argv[] = {helper(), cmd, arg, NULL};
  return gev_process_run(argv, in, out, err, timeout);
}

static void bytes_free(gev_bytes *b) {
  free(b->data);
  b->data = NULL;
  b->len = 0;
}

static int all_x(const gev_bytes *b) {
  for (size_t i = 0; i < b->len; i++)
    if (b->data[i] != 'x')
      return 0;
  return 1;
}

/* ---- Big data both ways ------------------------------------------------- */

START_TEST(test_64mib_on_stdout_and_stderr_at_once) {
  gev_bytes out, err;
  char n[32];
  snprintf(n, sizeof n, "%u", BIG);
  int status = run_helper("flood", n, NULL, &out, &err, 120);
  ck_assert_int_eq(status, 0);
  ck_assert_uint_eq(out.len, BIG);
  ck_assert_uint_eq(err.len, BIG);
  ck_assert(all_x(&out) && all_x(&err));
  bytes_free(&out);
  bytes_free(&err);
}
END_TEST

START_TEST(test_64mib_fed_to_stdin_while_draining) {
  gev_bytes in = {malloc(BIG), BIG}, out, err;
  ck_assert_ptr_nonnull(in.data);
  for (size_t i = 0; i < BIG; i++)
    in.data[i] = (char)('a' + i % 26);
  int status = run_helper("cat", NULL, &in, &out, &err, 120);
  ck_assert_int_eq(status, 0);
  ck_assert_uint_eq(out.len, BIG);
  ck_assert(memcmp(out.data, in.data, BIG) == 0);
  ck_assert_uint_eq(err.len, 0);
  bytes_free(&in);
  bytes_free(&out);
  bytes_free(&err);
}
END_TEST

/* ---- Statuses ---------------------------------------------------------- */

START_TEST(test_exit_codes_and_signals) {
  gev_bytes out, err;
  int status = run_helper("exit", "7", NULL, &out, &err, 10);
  ck_assert(WIFEXITED(status));
  ck_assert_int_eq(WEXITSTATUS(status), 7);
  bytes_free(&out);
  bytes_free(&err);
  status = run_helper("kill", "15", NULL, &out, &err, 10);
  ck_assert(WIFSIGNALED(status));
  ck_assert_int_eq(WTERMSIG(status), SIGTERM);
  bytes_free(&out);
  bytes_free(&err);
  status = run_helper("say", "hi", NULL, &out, &err, 10);
  ck_assert_int_eq(status, 0);
  ck_assert_str_eq(out.data, "hi");
  ck_assert_str_eq(err.data, "err:hi");
  bytes_free(&out);
  bytes_free(&err);
}
END_TEST

/* The child ends long before anybody waits; its status is kept, and no
 * zombie waits meanwhile (the hub reaped it). */
START_TEST(test_status_kept_for_a_late_wait) {
  const char *argv[] = {helper(), "exit", "3", NULL};
  gev_process *p = gev_process_spawn(argv, NULL);
  ck_assert_ptr_nonnull(p);
  pid_t pid = gev_process_pid(p);
  for (int i = 0; i < 400 && (pf_alive(pid) || pf_zombies(getpid()) > 0); i++)
    ck_assert_int_eq(gev_sleep(0.005), 0);
  ck_assert_int_eq(pf_zombies(getpid()), 0);
  ck_assert_int_eq(WEXITSTATUS(gev_process_poll(p)), 3);
  ck_assert_int_eq(WEXITSTATUS(gev_process_wait(p, 0)), 3);
  ck_assert_int_eq(WEXITSTATUS(gev_process_wait(p, -1)), 3); /* again */
  ck_assert_int_eq(gev_process_kill(p, SIGTERM), -1);
  ck_assert_int_eq(errno, ESRCH);
  ck_assert_int_eq(gev_waitpid(pid, NULL, 0, 1), -1); /* the process's */
  ck_assert_int_eq(errno, ECHILD);
  gev_process_free(p);
}
END_TEST

START_TEST(test_wait_poll_kill) {
  const char *argv[] = {"sleep", "10", NULL};
  gev_process *p = gev_process_spawn(argv, NULL);
  ck_assert_ptr_nonnull(p);
  ck_assert_int_eq(gev_process_poll(p), -1);
  ck_assert_int_eq(errno, EAGAIN);
  double t0 = gev_monotonic();
  ck_assert_int_eq(gev_process_wait(p, 0.05), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert(gev_monotonic() - t0 >= 0.05);
  ck_assert_int_eq(gev_process_kill(p, SIGUSR2), 0);
  int status = gev_process_wait(p, 5);
  ck_assert(WIFSIGNALED(status));
  ck_assert_int_eq(WTERMSIG(status), SIGUSR2);
  gev_process_free(p);
}
END_TEST

/* terminate: TERM first; a child that ignores it gets KILL after the
 * grace period (and not before). */
START_TEST(test_terminate) {
  const char *sleeper[] = {"sleep", "10", NULL};
  gev_process *p = gev_process_spawn(sleeper, NULL);
  int status = gev_process_terminate(p, 5);
  ck_assert(WIFSIGNALED(status));
  ck_assert_int_eq(WTERMSIG(status), SIGTERM);
  gev_process_free(p);

  const char *stubborn[] = {helper(), "ignore-term", NULL};
  gev_process_opts o = {.out = {GEV_STDIO_PIPE}};
  p = gev_process_spawn(stubborn, &o);
  char ready[8] = {0};
  ck_assert_int_eq(gev_socket_recv(gev_process_stdout(p), ready, 6, 0), 6);
  double t0 = gev_monotonic();
  status = gev_process_terminate(p, 0.1);
  ck_assert(gev_monotonic() - t0 >= 0.1);
  ck_assert(WIFSIGNALED(status));
  ck_assert_int_eq(WTERMSIG(status), SIGKILL);
  ck_assert_int_eq(gev_process_terminate(p, -1), -1);
  ck_assert_int_eq(errno, EINVAL);
  gev_process_free(p);
}
END_TEST

/* ---- Timeouts and kills leave nothing behind ------------------------------
 */

START_TEST(test_timed_out_sleep_is_killed_and_reaped) {
  const char *argv[] = {"sleep", "10", NULL};
  gev_bytes out, err;
  double t0 = gev_monotonic();
  ck_assert_int_eq(gev_process_run(argv, NULL, &out, &err, 0.2), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  double took = gev_monotonic() - t0;
  ck_assert(took >= 0.2 && took < 5);
  bytes_free(&out);
  bytes_free(&err);
  /* teardown: the hub reaps it; no zombie, no child, no fd. */
}
END_TEST

static void *run_sleep(void *arg) {
  const char *argv[] = {"sleep", "10", NULL};
  gev_bytes out, err;
  gev_timeout *t = arg ? gev_timeout_start(*(double *)arg) : NULL;
  int rc = gev_process_run(argv, NULL, &out, &err, -1);
  int e = errno;
  gev_timeout_cancel(t);
  bytes_free(&out);
  bytes_free(&err);
  return (void *)(intptr_t)(rc < 0 ? e : 0);
}

static void *wait_process(void *arg) {
  return gev_process_wait(arg, -1) < 0 ? gev_fail(errno, "wait") : NULL;
}

START_TEST(test_killed_or_timed_out_caller_leaves_nothing) {
  static double scope = 0.1;
  void *v = NULL;
  gev_greenlet *g = gev_spawn(run_sleep, NULL);
  ck_assert_int_eq(gev_sleep(0.05), 0);
  ck_assert_int_eq(pf_children(getpid(), NULL, 0), 1);
  ck_assert_int_eq(gev_greenlet_kill(g, 1, 5), 0);
  gev_greenlet_unref(g);
  g = gev_spawn(run_sleep, &scope);
  ck_assert_int_eq(gev_greenlet_get(g, 5, &v), 0);
  ck_assert_int_eq((int)(intptr_t)v, ETIMEDOUT);
  gev_greenlet_unref(g);
  /* A killed gev_process_wait leaves the process as it was. */
  const char *argv[] = {"sleep", "10", NULL};
  gev_process *p = gev_process_spawn(argv, NULL);
  g = gev_spawn(wait_process, p);
  ck_assert_int_eq(gev_sleep(0.01), 0);
  ck_assert_int_eq(gev_greenlet_kill(g, 1, 5), 0);
  gev_greenlet_unref(g);
  ck_assert_int_eq(gev_process_poll(p), -1);
  ck_assert_int_eq(errno, EAGAIN);
  ck_assert_int_eq(gev_process_kill(p, SIGKILL), 0);
  ck_assert_int_eq(WTERMSIG(gev_process_wait(p, 5)), SIGKILL);
  gev_process_free(p);
}
END_TEST

/* Freeing a running process: the hub reaps the child when it ends, and
 * gev_run waits for that. A greenlet parked in wait keeps the object. */
START_TEST(test_free_while_running) {
  const char *argv[] = {"sleep", "0.1", NULL};
  gev_process *p = gev_process_spawn(argv, NULL);
  gev_greenlet *g = gev_spawn(wait_process, p);
  ck_assert_int_eq(gev_sleep(0), 0);
  gev_process_free(p);
  ck_assert_int_eq(gev_greenlet_join(g, 5), 0);
  ck_assert_int_eq(gev_greenlet_error(g), 0);
  gev_greenlet_unref(g);
  p = gev_process_spawn(argv, NULL);
  gev_process_free(p);
  ck_assert_int_eq(gev_run(), 0);
  ck_assert_int_eq(pf_children(getpid(), NULL, 0), 0);
  ck_assert_int_eq(pf_zombies(getpid()), 0);
}
END_TEST

/* ---- Many at once ----------------------------------------------------------
 */

static void *run_one(void *arg) {
  char code[16];
  gev_bytes out, err;
  snprintf(code, sizeof code, "%d", (int)(intptr_t)arg % 100);
  const char *argv[] = {helper(), "say", code, NULL};
  int rc = gev_process_run(argv, NULL, &out, &err, 60);
  int ok = rc == 0 && !strcmp(out.data, code) && !strncmp(err.data, "err:", 4);
  bytes_free(&out);
  bytes_free(&err);
  return ok ? (void *)1 : gev_fail(rc < 0 ? errno : EPROTO, "job");
}

START_TEST(test_200_concurrent_children) {
  enum { N = 200 };
  gev_greenlet *gs[N];
  for (int i = 0; i < N; i++)
    gs[i] = gev_spawn(run_one, (void *)(intptr_t)i);
  ck_assert_int_eq(gev_joinall(gs, N, 90, 0, 0), N);
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(gev_greenlet_error(gs[i]), 0);
    ck_assert_ptr_eq(gev_greenlet_value(gs[i]), (void *)1);
    gev_greenlet_unref(gs[i]);
  }
}
END_TEST

/* ---- Spawning
 * ---------------------------------------------------------------- */

START_TEST(test_missing_program_is_enoent) {
  const char *argv[] = {"/nonexistent/program", NULL};
  const char *bare[] = {"gev-no-such-program", NULL};
  const char *sh[] = {"true", NULL};
  gev_process_opts o = {.cwd = "/nonexistent/dir"};
  ck_assert_ptr_null(gev_process_spawn(argv, NULL));
  ck_assert_int_eq(errno, ENOENT);
  ck_assert_ptr_null(gev_process_spawn(bare, NULL));
  ck_assert_int_eq(errno, ENOENT);
  ck_assert_ptr_null(gev_process_spawn(sh, &o));
  ck_assert_int_eq(errno, ENOENT);
  ck_assert_int_eq(gev_process_run(argv, NULL, NULL, NULL, 5), -1);
  ck_assert_int_eq(errno, ENOENT);
  ck_assert_int_eq(pf_children(getpid(), NULL, 0), 0);
}
END_TEST

/* Whether the helper's "fds" output lists fd. */
static int lists_fd(const char *list, int fd) {
  char *end;
  for (const char *p = list; *p;) {
    long n = strtol(p, &end, 10);
    if (end == p)
      break;
    if (n == fd)
      return 1;
    p = end;
  }
  return 0;
}

/* gev's own descriptors (pipes of other processes, sockets, pidfds) never
 * reach a child, and by default neither do the program's; the child
 * starts with signals unblocked and at their default action whatever the
 * parent has. */
START_TEST(test_no_fd_leaks_into_children) {
  gev_bytes out, err;
  int inheritable = dup(2); /* not close-on-exec */
  const char *fds[] = {helper(), "fds", NULL};
  gev_process_opts keep = {.out = {GEV_STDIO_PIPE}, .inherit_fds = 1};
  const char *sleeper[] = {"sleep", "10", NULL};
  gev_process_opts piped = {.in = {GEV_STDIO_PIPE}, .out = {GEV_STDIO_PIPE}};
  gev_process *other = gev_process_spawn(sleeper, &piped);
  gev_socket *s = gev_socket_new(AF_INET, SOCK_STREAM, 0);
  sigset_t usr1, old;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, &old);
  signal(SIGPIPE, SIG_IGN);
  ck_assert_int_eq(run_helper("fds", NULL, NULL, &out, &err, 10), 0);
  ck_assert_str_eq(out.data, "0 1 2\n");
  bytes_free(&out);
  bytes_free(&err);
  gev_process *p = gev_process_spawn(fds, &keep);
  ck_assert_int_eq(gev_process_communicate(p, NULL, 0, &out, NULL, 10), 0);
  /* The test runner may hold inheritable descriptors of its own too. */
  ck_assert(lists_fd(out.data, inheritable));
  ck_assert(!lists_fd(out.data, gev_socket_fileno(s)));
  ck_assert(!lists_fd(out.data, gev_socket_fileno(gev_process_stdin(other))));
  ck_assert(!lists_fd(out.data, gev_socket_fileno(gev_process_stdout(other))));
  gev_process_free(p);
  bytes_free(&out);
  close(inheritable);
  ck_assert_int_eq(run_helper("sigstate", NULL, NULL, &out, &err, 10), 0);
  ck_assert_str_eq(out.data, "blocked=0 ignored=0\n");
  bytes_free(&out);
  bytes_free(&err);
  signal(SIGPIPE, SIG_DFL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  gev_socket_close(s);
  gev_process_kill(other, SIGKILL);
  gev_process_free(other);
}
END_TEST

/* Every way to set up a standard stream, the environment and the working
 * directory. */
START_TEST(test_stdio_env_cwd) {
  gev_bytes out, err;
  char path[] = "/tmp/gev-proc-XXXXXX";
  int fd = mkostemp(path, O_CLOEXEC);
  ck_assert_int_ge(fd, 0);
  unlink(path);
  /* stdout to an fd of ours, stderr merged into it. */
  const char *say[] = {helper(), "say", "A", NULL};
  gev_process_opts o = {.out = {GEV_STDIO_FD, fd}, .err = {GEV_STDIO_STDOUT}};
  gev_process *p = gev_process_spawn(say, &o);
  ck_assert_int_eq(gev_process_wait(p, 10), 0);
  gev_process_free(p);
  char buf[64] = {0};
  ck_assert_int_eq(pread(fd, buf, sizeof buf - 1, 0), 6);
  ck_assert_str_eq(buf, "Aerr:A");
  close(fd);
  /* /dev/null in, devnull out: cat reads nothing and writes nothing. */
  const char *cat[] = {helper(), "cat", NULL};
  gev_process_opts nul = {.in = {GEV_STDIO_DEVNULL},
                          .out = {GEV_STDIO_DEVNULL},
                          .err = {GEV_STDIO_PIPE}};
  p = gev_process_spawn(cat, &nul);
  ck_assert_ptr_null(gev_process_stdin(p));
  ck_assert_int_eq(gev_process_communicate(p, NULL, 0, &out, &err, 10), 0);
  ck_assert_uint_eq(out.len, 0);
  ck_assert_uint_eq(err.len, 0);
  ck_assert_str_eq(err.data, ""); /* read into, so allocated: terminated */
  bytes_free(&err);
  gev_process_free(p);
  /* Environment and working directory. */
  char *envp[] = {"GEV_TEST_VAR=hello", NULL};
  const char *env[] = {helper(), "env", "GEV_TEST_VAR", NULL};
  gev_process_opts eo = {.envp = envp, .out = {GEV_STDIO_PIPE}};
  p = gev_process_spawn(env, &eo);
  ck_assert_int_eq(gev_process_communicate(p, NULL, 0, &out, NULL, 10), 0);
  ck_assert_str_eq(out.data, "hello\n");
  bytes_free(&out);
  gev_process_free(p);
  const char *cwd[] = {helper(), "cwd", NULL};
  gev_process_opts co = {.cwd = "/", .out = {GEV_STDIO_PIPE}};
  p = gev_process_spawn(cwd, &co);
  ck_assert_int_eq(gev_process_communicate(p, NULL, 0, &out, NULL, 10), 0);
  ck_assert_str_eq(out.data, "/\n");
  bytes_free(&out);
  gev_process_free(p);
}
END_TEST

/* The pipes are gev_sockets: a conversation line by line, then EOF. */
START_TEST(test_pipes_are_sockets) {
  const char *cat[] = {helper(), "cat", NULL};
  gev_process_opts o = {.in = {GEV_STDIO_PIPE}, .out = {GEV_STDIO_PIPE}};
  gev_process *p = gev_process_spawn(cat, &o);
  gev_socket *in = gev_process_stdin(p), *out = gev_process_stdout(p);
  char buf[16];
  ck_assert_ptr_null(gev_process_stderr(p));
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_socket_settimeout(out, 5), 0);
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(gev_socket_sendall(in, "ping", 4, 0), 0);
    ck_assert_int_eq(gev_socket_recv(out, buf, sizeof buf, 0), 4);
  }
  ck_assert_int_eq(gev_socket_close(in), 0); /* EOF for the child */
  ck_assert_int_eq(gev_socket_recv(out, buf, sizeof buf, 0), 0);
  ck_assert_int_eq(gev_process_wait(p, 5), 0);
  /* A child that stops reading: the rest of the input is dropped. */
  gev_process_free(p);
  const char *quit[] = {helper(), "exit", "0", NULL};
  gev_process_opts qo = {.in = {GEV_STDIO_PIPE}};
  p = gev_process_spawn(quit, &qo);
  static char lots[1 << 20];
  ck_assert_int_eq(
      gev_process_communicate(p, lots, sizeof lots, NULL, NULL, 10), 0);
  gev_process_free(p);
}
END_TEST

START_TEST(test_bad_input) {
  const char *none[] = {NULL};
  const char *ok[] = {"true", NULL};
  gev_process_opts o = {.in = {GEV_STDIO_STDOUT}};
  gev_process_opts f = {.out = {GEV_STDIO_FD, -1}};
  gev_process_opts m = {.err = {(gev_stdio_mode)42}};
  ck_assert_ptr_null(gev_process_spawn(NULL, NULL));
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_ptr_null(gev_process_spawn(none, NULL));
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_ptr_null(gev_process_spawn(ok, &o));
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_ptr_null(gev_process_spawn(ok, &f));
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_ptr_null(gev_process_spawn(ok, &m));
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_process_wait(NULL, 1), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_process_pid(NULL), -1);
  gev_process *p = gev_process_spawn(ok, NULL);
  ck_assert_int_eq(gev_process_wait(p, 0.0 / 0.0), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_process_communicate(p, "x", 1, NULL, NULL, 1), -1);
  ck_assert_int_eq(errno, EINVAL); /* stdin is not a pipe */
  ck_assert_int_eq(gev_process_wait(p, 5), 0);
  gev_process_free(p);
  gev_process_free(NULL);
}
END_TEST

/* ---- Alongside threads, signals, forks
 * --------------------------------------- */

typedef struct thread_run {
  gev_process *foreign;
  int status, foreign_err;
} thread_run;

static void *thread_runs(void *arg) {
  thread_run *t = arg;
  gev_bytes out;
  const char *argv[] = {helper(), "exit", "5", NULL};
  t->status = gev_process_run(argv, NULL, &out, NULL, 10);
  free(out.data);
  t->foreign_err = gev_process_wait(t->foreign, 1) < 0 ? errno : 0;
  gev_hub_destroy();
  gev_coro_thread_cleanup();
  return NULL;
}

START_TEST(test_other_thread_hub) {
  const char *argv[] = {"true", NULL};
  thread_run t = {.foreign = gev_process_spawn(argv, NULL)};
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, thread_runs, &t), 0);
  pthread_join(th, NULL);
  ck_assert_int_eq(WEXITSTATUS(t.status), 5);
  ck_assert_int_eq(t.foreign_err, EXDEV);
  ck_assert_int_eq(gev_process_wait(t.foreign, 5), 0);
  gev_process_free(t.foreign);
}
END_TEST

static void count(int signum, void *arg) { (*(int *)arg)++; }

/* Signal handlers (SIGCHLD's too, which turns libev's reaper on) do not
 * disturb processes. */
START_TEST(test_with_signal_handlers) {
  static int usr1, chld;
  gev_bytes out;
  gev_signal *a = gev_signal_handler(SIGUSR1, count, &usr1);
  gev_signal *b = gev_signal_handler(SIGCHLD, count, &chld);
  ck_assert(a && b);
  for (int i = 0; i < 5; i++) {
    ck_assert_int_eq(WEXITSTATUS(run_helper("exit", "6", NULL, &out, NULL, 10)),
                     6);
    bytes_free(&out);
  }
  raise(SIGUSR1);
  for (int i = 0; i < 400 && (usr1 == 0 || chld == 0); i++)
    ck_assert_int_eq(gev_sleep(0.005), 0);
  ck_assert_int_eq(usr1, 1);
  ck_assert_int_ge(chld, 1);
  gev_signal_cancel(a);
  gev_signal_cancel(b);
}
END_TEST

/* Without pidfd, processes work through the reaper in the main hub. */
START_TEST(test_without_pidfd) {
  gev_bytes out, err;
  gev__child_use_pidfd(0);
  ck_assert_int_eq(run_helper("say", "x", NULL, &out, &err, 10), 0);
  ck_assert_str_eq(out.data, "x");
  bytes_free(&out);
  bytes_free(&err);
  const char *argv[] = {"sleep", "10", NULL};
  ck_assert_int_eq(gev_process_run(argv, NULL, NULL, NULL, 0.05), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
}
END_TEST

/* In a forked child (both modes) processes work; a kept parent's process
 * is not the child's to wait for. */
START_TEST(test_in_forked_children) {
  const char *argv[] = {"sleep", "10", NULL};
  gev_process *mine = gev_process_spawn(argv, NULL);
  ck_assert_int_eq(gev_sleep(0), 0);
  for (int mode = GEV_FORK_KEEP; mode <= GEV_FORK_DISCARD; mode++) {
    pid_t pid = gev_fork((gev_fork_mode)mode);
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
      gev_bytes out;
      if (mode == GEV_FORK_KEEP) {
        CHILD_CHECK(gev_process_wait(mine, 5) == -1 && errno == ECHILD);
        gev_process_free(mine);
      }
      CHILD_CHECK(WEXITSTATUS(run_helper("exit", "8", NULL, &out, NULL, 10)) ==
                  8);
      free(out.data);
      gev_hub_destroy();
      _exit(0);
    }
    ck_assert_int_eq(gev_waitpid(pid, NULL, 0, 20), pid);
  }
  gev_process_kill(mine, SIGKILL);
  ck_assert_int_eq(WTERMSIG(gev_process_wait(mine, 5)), SIGKILL);
  gev_process_free(mine);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("process");
  TCase *tc = tcase_create("process");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 100);
  tcase_add_test(tc, test_64mib_on_stdout_and_stderr_at_once);
  tcase_add_test(tc, test_64mib_fed_to_stdin_while_draining);
  tcase_add_test(tc, test_exit_codes_and_signals);
  tcase_add_test(tc, test_status_kept_for_a_late_wait);
  tcase_add_test(tc, test_wait_poll_kill);
  tcase_add_test(tc, test_terminate);
  tcase_add_test(tc, test_timed_out_sleep_is_killed_and_reaped);
  tcase_add_test(tc, test_killed_or_timed_out_caller_leaves_nothing);
  tcase_add_test(tc, test_free_while_running);
  tcase_add_test(tc, test_200_concurrent_children);
  tcase_add_test(tc, test_missing_program_is_enoent);
  tcase_add_test(tc, test_no_fd_leaks_into_children);
  tcase_add_test(tc, test_stdio_env_cwd);
  tcase_add_test(tc, test_pipes_are_sockets);
  tcase_add_test(tc, test_bad_input);
  tcase_add_test(tc, test_other_thread_hub);
  tcase_add_test(tc, test_with_signal_handlers);
  tcase_add_test(tc, test_without_pidfd);
  tcase_add_test(tc, test_in_forked_children);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(suite)
