/*
 * pgcrawl — many PostgreSQL queries at once through plain, blocking libpq.
 *
 *   pgcrawl [-n COUNT] [-c CONCURRENCY] [-t TIMEOUT] CONNINFO SQL
 *
 * Runs SQL COUNT times (default 100), each in a greenlet of a Pool of
 * CONCURRENCY (default 100), each on a connection of its own, with
 * libpq's ordinary synchronous PQconnectdb and PQexec. libgev-patch
 * (linked here; LD_PRELOAD does the same for a program that only links
 * libgev) turns their waits into parks, so the queries overlap: 100 times
 * "SELECT pg_sleep(0.2)" take about 0.2 s instead of 20 s. Each query runs
 * under a gev Timeout of TIMEOUT seconds (default 5); when it runs out,
 * libpq reports "Connection timed out" and the greenlet moves on.
 *
 * Prints each failure, then "N ok, N failed, N timed out in S s" on
 * stdout. Exit status 0 when every query succeeded, 1 otherwise, 2 on a
 * usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gev/hub.h"
#include "gev/patch.h"
#include "gev/sync.h"

static const char *conninfo, *sql;
static double timeout = 5;
static int ok, failed, timed_out;

/* One query on its own connection, as any blocking libpq program would
 * write it; the Timeout scope is the only gev in it. */
static void *query(void *arg) {
  gev_timeout *deadline = gev_timeout_start(timeout);
  PGconn *c = PQconnectdb(conninfo);
  PGresult *r = NULL;
  (void)arg;
  if (PQstatus(c) == CONNECTION_OK)
    r = PQexec(c, sql);
  if (PQresultStatus(r) == PGRES_TUPLES_OK ||
      PQresultStatus(r) == PGRES_COMMAND_OK) {
    ok++;
  } else if (gev_timeout_expired(deadline)) {
    timed_out++;
  } else {
    failed++;
    printf("error: %s", PQerrorMessage(c));
  }
  PQclear(r);
  PQfinish(c);
  gev_timeout_cancel(deadline);
  return NULL;
}

static int usage(void) {
  fprintf(stderr,
          "usage: pgcrawl [-n COUNT] [-c CONCURRENCY] [-t TIMEOUT] CONNINFO "
          "SQL\n");
  return 2;
}

int main(int argc, char **argv) {
  long count = 100, concurrency = 100;
  int opt;
  while ((opt = getopt(argc, argv, "n:c:t:")) != -1) {
    if (opt == 'n')
      count = strtol(optarg, NULL, 10);
    else if (opt == 'c')
      concurrency = strtol(optarg, NULL, 10);
    else if (opt == 't')
      timeout = strtod(optarg, NULL);
    else
      return usage();
  }
  if (argc - optind != 2 || count < 1 || concurrency < 1 || timeout <= 0)
    return usage();
  conninfo = argv[optind];
  sql = argv[optind + 1];
  gev_patch_enable(); /* the default; calling it keeps the library linked */

  gev_pool *pool = gev_pool_new((size_t)concurrency);
  double start = gev_monotonic();
  for (long i = 0; i < count; i++) {
    gev_greenlet *g = gev_pool_spawn(pool, query, NULL, -1);
    if (!g) {
      perror("pgcrawl: spawn");
      return 1;
    }
    gev_greenlet_unref(g);
  }
  gev_pool_join(pool, -1);
  printf("%d ok, %d failed, %d timed out in %.2f s\n", ok, failed, timed_out,
         gev_monotonic() - start);
  gev_pool_free(pool);
  gev_hub_destroy();
  return ok == count ? 0 : 1;
}
