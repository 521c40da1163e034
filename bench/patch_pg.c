/*
 * libpq concurrency through libgev-patch: the same clients as greenlets
 * of one thread and as OS threads, side by side in one run.
 *
 *   bench_patch_pg CONNINFO
 *
 * 100 clients, each with a connection of its own, run one query in a loop
 * with plain synchronous PQexec for a fixed time; the figure is queries
 * per second over all clients.
 *
 *   patch.pg.select1.gev      "SELECT 1", 100 greenlets in one thread
 *   patch.pg.select1.threads  "SELECT 1", 100 OS threads (the real calls:
 *                             no thread has a hub)
 *   patch.pg.sleep10.gev      "SELECT pg_sleep(0.01)", greenlets
 *   patch.pg.sleep10.threads  the same, threads
 *
 * select1 is bound by CPU (the server's and the client's); sleep10 by
 * waiting, where one thread of greenlets should keep up with 100 threads
 * (ideal: 100 / 0.01 s = 10,000 queries/s). The program fails instead of
 * printing when a query fails.
 */
#define _GNU_SOURCE
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "gev/hub.h"
#include "gev/patch.h"

enum { CLIENTS = 100 };
#define SECONDS 2.0

static const char *conninfo, *sql;
static double deadline;
static long total;
static pthread_mutex_t total_lock = PTHREAD_MUTEX_INITIALIZER;

/* One client: queries until the deadline; adds its count to the total. */
static void *client(void *arg) {
  PGconn *c = PQconnectdb(conninfo);
  long n = 0;
  (void)arg;
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "bench: connect: %s", PQerrorMessage(c));
    exit(1);
  }
  while (gev_monotonic() < deadline) {
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      fprintf(stderr, "bench: query: %s", PQerrorMessage(c));
      exit(1);
    }
    PQclear(r);
    n++;
  }
  PQfinish(c);
  pthread_mutex_lock(&total_lock);
  total += n;
  pthread_mutex_unlock(&total_lock);
  return NULL;
}

/* Queries per second; the clock starts once every client is connected
 * would be fairer still, but connecting is part of what both pay. */
static double with_greenlets(void) {
  total = 0;
  deadline = gev_monotonic() + SECONDS;
  for (int i = 0; i < CLIENTS; i++)
    if (gev_spawn_raw(client, NULL) < 0)
      bench_die("gev_spawn_raw");
  if (gev_run() < 0)
    bench_die("gev_run");
  return (double)total / SECONDS;
}

static double with_threads(void) {
  pthread_t th[CLIENTS];
  total = 0;
  deadline = gev_monotonic() + SECONDS;
  for (int i = 0; i < CLIENTS; i++)
    if (pthread_create(&th[i], NULL, client, NULL) != 0)
      bench_die("pthread_create");
  for (int i = 0; i < CLIENTS; i++)
    pthread_join(th[i], NULL);
  return (double)total / SECONDS;
}

int main(int argc, char **argv) {
  static const struct {
    const char *name, *sql;
  } loads[] = {{"select1", "SELECT 1"}, {"sleep10", "SELECT pg_sleep(0.01)"}};
  char name[64];
  if (argc != 2) {
    fprintf(stderr, "usage: bench_patch_pg CONNINFO\n");
    return 2;
  }
  conninfo = argv[1];
  gev_patch_enable();
  for (size_t i = 0; i < sizeof loads / sizeof loads[0]; i++) {
    sql = loads[i].sql;
    double threads = with_threads(), gev = with_greenlets();
    snprintf(name, sizeof name, "patch.pg.%s.gev", loads[i].name);
    bench_print(name, gev, 0, "q/s");
    snprintf(name, sizeof name, "patch.pg.%s.threads", loads[i].name);
    bench_print(name, threads, 0, "q/s");
  }
  gev_hub_destroy();
  return 0;
}
