/* libpq, unmodified, through the cooperative libc: 100 greenlets each run
 * a plain synchronous PQexec("SELECT pg_sleep(0.2)") on their own
 * connection to a throw-away PostgreSQL server, and all finish in about
 * the time of one (serially they would take 20 s). A Timeout scope or a
 * kill makes PQexec fail promptly with an error instead of hanging. */
#define _GNU_SOURCE
#include <libpq-fe.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "patchtest.h"
#include "servers.h"

static pg_server pg;

enum { CLIENTS = 100 };

typedef struct query {
  const char *sql;
  double timeout; /* a gev_timeout scope around PQexec; 0: none */
  int ok;
  char error[256];
  double took;
} query;

/* One client: connect, run the query, disconnect. */
static void *run_query(void *arg) {
  query *q = arg;
  PGconn *c = PQconnectdb(pg.conninfo);
  if (PQstatus(c) != CONNECTION_OK) {
    snprintf(q->error, sizeof q->error, "connect: %s", PQerrorMessage(c));
    PQfinish(c);
    return NULL;
  }
  gev_timeout *scope = q->timeout > 0 ? gev_timeout_start(q->timeout) : NULL;
  double t0 = pt_now();
  PGresult *r = PQexec(c, q->sql);
  q->took = pt_now() - t0;
  gev_timeout_cancel(scope);
  q->ok = PQresultStatus(r) == PGRES_TUPLES_OK;
  if (!q->ok)
    snprintf(q->error, sizeof q->error, "%s", PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
  return NULL;
}

START_TEST(hundred_concurrent_queries) {
  int fds = gev_test_fd_count();
  query *q = calloc(CLIENTS, sizeof *q);
  pt_ticker *ticker = pt_ticker_start();
  double t0 = pt_now();
  for (int i = 0; i < CLIENTS; i++) {
    q[i].sql = "SELECT pg_sleep(0.2)";
    pt_spawn(run_query, &q[i]);
  }
  pt_join_all(60);
  double took = pt_now() - t0;
  for (int i = 0; i < CLIENTS; i++)
    ck_assert_msg(q[i].ok, "query %d: %s", i, q[i].error);
  /* Serially 20 s; concurrently about 0.2 s plus connecting. */
  ck_assert_msg(took < 10, "100 queries took %.2f s", took);
  ck_assert_int_gt(pt_ticker_stop(ticker), 0);
  free(q);
  pt_all_clean(fds);
}
END_TEST

/* A query that would run 30 s, ended by a Timeout scope of 0.3 s or by a
 * kill after 0.5 s: PQexec returns promptly with gev's error in libpq's
 * message ("select() failed: ..."), and the greenlet goes on. */
static void check_query_interrupted(int by_kill) {
  int fds = gev_test_fd_count();
  query *q = calloc(1, sizeof *q);
  q->sql = "SELECT pg_sleep(30)";
  q->timeout = by_kill ? 0 : 0.3;
  gev_greenlet *g = pt_spawn(run_query, q);
  if (by_kill) {
    ck_assert_int_eq(gev_sleep(0.5), 0);
    ck_assert_int_eq(gev_greenlet_kill(g, 1, 10), 0);
  }
  pt_join_all(20);
  ck_assert(!q->ok);
  ck_assert_msg(q->took < 10, "took %.2f s", q->took);
  ck_assert(by_kill || q->took >= 0.25);
  ck_assert_msg(strstr(q->error, strerror(by_kill ? ECANCELED : ETIMEDOUT)),
                "error: %s", q->error);
  free(q);
  pt_all_clean(fds);
}

START_TEST(timeout_scope_ends_query) { check_query_interrupted(0); }
END_TEST

START_TEST(kill_ends_query) { check_query_interrupted(1); }
END_TEST

/* No hub: libpq blocks the thread as it always did, and works. */
START_TEST(no_hub_query_is_plain) {
  int fds = gev_test_fd_count();
  query *q = calloc(1, sizeof *q);
  q->sql = "SELECT 1";
  run_query(q);
  ck_assert_msg(q->ok, "%s", q->error);
  ck_assert(!gev_hub_exists());
  free(q);
  pt_all_clean(fds);
}
END_TEST

/* ---- examples/pgcrawl ---------------------------------------------------- */

extern char **environ;

/* Runs examples/pgcrawl with args (from the main coroutine, no hub: the
 * real calls); its stdout into out. Returns its exit status. */
static int run_pgcrawl(char *const args[], char *out, size_t len) {
  const char *path = getenv("GEV_PGCRAWL");
  char *argv[12] = {(char *)path};
  posix_spawn_file_actions_t fa;
  int p[2], status;
  size_t got = 0;
  ssize_t n;
  pid_t pid;
  for (int i = 0; args[i] && i < 10; i++)
    argv[i + 1] = args[i];
  ck_assert_int_eq(pipe(p), 0);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  posix_spawn_file_actions_addclose(&fa, p[0]);
  ck_assert_int_eq(posix_spawn(&pid, path, &fa, NULL, argv, environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  close(p[1]);
  while (got < len - 1 && (n = read(p[0], out + got, len - 1 - got)) > 0)
    got += (size_t)n;
  out[got] = '\0';
  close(p[0]);
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status));
  return WEXITSTATUS(status);
}

START_TEST(pgcrawl_example) {
  char out[4096];
  const char *path = getenv("GEV_PGCRAWL");
  if (!path || access(path, X_OK) < 0)
    return; /* not built: libpq-dev missing at configure time */
  char *many[] = {"-n", "50", "-c", "50", pg.conninfo, "SELECT pg_sleep(0.2)",
                  NULL};
  ck_assert_int_eq(run_pgcrawl(many, out, sizeof out), 0);
  ck_assert_msg(strstr(out, "50 ok, 0 failed, 0 timed out"), "%s", out);
  double secs = atof(strstr(out, " in ") + 4);
  ck_assert_msg(secs < 5, "50 queries took %.2f s (serially 10 s)", secs);
  char *slow[] = {"-n", "3", "-t", "0.3", pg.conninfo, "SELECT pg_sleep(30)",
                  NULL};
  ck_assert_int_eq(run_pgcrawl(slow, out, sizeof out), 1);
  ck_assert_msg(strstr(out, "0 ok, 0 failed, 3 timed out"), "%s", out);
}
END_TEST

static Suite *patch_pg_suite(void) {
  Suite *s = suite_create("patch_pg");
  TCase *tc = tcase_create("libpq");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, hundred_concurrent_queries);
  tcase_add_test(tc, timeout_scope_ends_query);
  tcase_add_test(tc, kill_ends_query);
  tcase_add_test(tc, no_hub_query_is_plain);
  tcase_add_test(tc, pgcrawl_example);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  int rc = pg_server_start(&pg, getenv("GEV_PG_BINDIR"));
  if (rc != 0) {
    pg_server_stop(&pg);
    return rc == 77 ? 77 : EXIT_FAILURE;
  }
  rc = gev_test_run(patch_pg_suite());
  pg_server_stop(&pg);
  return rc;
}
