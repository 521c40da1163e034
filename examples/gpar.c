/*
 * gpar — a small "GNU parallel" on gev processes.
 *
 *   gpar [-j N] [--timeout S] [--keep-order] [--shell] COMMAND [ARG...] <
 * inputs
 *
 * Runs COMMAND once per line of standard input, N at a time (default 4),
 * with every "{}" in COMMAND and its ARGs replaced by the line (or the
 * line appended as a last argument when none has "{}"). The line is one
 * argument, never seen by a shell, unless --shell: then the words are
 * joined into one /bin/sh -c script with the line single-quoted in place
 * of "{}". Jobs read /dev/null.
 *
 * For each job gpar prints "INPUT STATUS" (the exit code, 128+N for a job
 * killed by signal N, 127 when the command cannot be run, TIMEOUT when it
 * ran longer than --timeout seconds and was killed), then everything the
 * job wrote to stdout, then each line it wrote to stderr prefixed with
 * "stderr: ". Jobs are reported as they finish, or in input order with
 * --keep-order. Exit status: 0 if every job exited 0, 1 otherwise, 2 for
 * a usage error.
 *
 * Each job is a greenlet running gev_process_run: its pipes and its wait
 * park only that greenlet, so N jobs run at once on one thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "gev.h"

typedef struct job {
  char *input;
  int done;
  int status; /* wait status; or -1 with err */
  int err;    /* ETIMEDOUT, or why it could not run */
  gev_bytes out, errout;
} job;

typedef struct gpar {
  char **words; /* the command template */
  int nwords;
  int shell, keep_order;
  double timeout;
  job *jobs;
  size_t njobs, next, printed;
  int failed;
} gpar;

static void usage(void) {
  fprintf(stderr, "usage: gpar [-j N] [--timeout S] [--keep-order] [--shell] "
                  "COMMAND [ARG...] < inputs\n");
  exit(2);
}

/* ---- Building a job's command --------------------------------------- */

/* A copy of s with every "{}" replaced by with (malloc'd). */
static char *replace(const char *s, const char *with) {
  size_t n = 0, wl = strlen(with);
  for (const char *p = s; (p = strstr(p, "{}")); p += 2)
    n++;
  char *r = malloc(strlen(s) + n * wl + 1), *o = r;
  if (!r)
    return NULL;
  for (const char *p = s, *q;; p = q + 2) {
    if (!(q = strstr(p, "{}"))) {
      strcpy(o, p);
      break;
    }
    memcpy(o, p, (size_t)(q - p));
    o += q - p;
    memcpy(o, with, wl);
    o += wl;
  }
  return r;
}

/* s single-quoted for /bin/sh. */
static char *shell_quote(const char *s) {
  char *r = malloc(strlen(s) * 4 + 3), *o = r;
  if (!r)
    return NULL;
  *o++ = '\'';
  for (; *s; s++) {
    if (*s == '\'') {
      memcpy(o, "'\\''", 4);
      o += 4;
    } else {
      *o++ = *s;
    }
  }
  *o++ = '\'';
  *o = '\0';
  return r;
}

static int has_placeholder(const gpar *g) {
  for (int i = 0; i < g->nwords; i++)
    if (strstr(g->words[i], "{}"))
      return 1;
  return 0;
}

/* The argv for input (strings malloc'd, NULL-terminated), or NULL. */
static char **make_argv(const gpar *g, const char *input) {
  char **argv = calloc((size_t)g->nwords + 4, sizeof *argv);
  int n = 0, append = !has_placeholder(g);
  if (!argv)
    return NULL;
  if (!g->shell) {
    for (int i = 0; i < g->nwords; i++)
      argv[n++] = replace(g->words[i], input);
    if (append)
      argv[n++] = strdup(input);
    return argv;
  }
  char *quoted = shell_quote(input);
  size_t len = 1 + strlen(quoted) + 1;
  for (int i = 0; i < g->nwords; i++)
    len += strlen(g->words[i]) + 1;
  char *script = calloc(1, len);
  for (int i = 0; script && i < g->nwords; i++) {
    strcat(script, g->words[i]);
    strcat(script, i + 1 < g->nwords || append ? " " : "");
  }
  if (script && append)
    strcat(script, quoted);
  argv[0] = strdup("/bin/sh");
  argv[1] = strdup("-c");
  argv[2] = script ? replace(script, quoted) : NULL;
  free(script);
  free(quoted);
  return argv;
}

static void free_argv(char **argv) {
  for (char **a = argv; a && *a; a++)
    free(*a);
  free(argv);
}

/* ---- Running and reporting -------------------------------------------- */

/* Prints a finished job and frees its outputs. */
static void print_job(gpar *g, job *j) {
  if (j->status < 0 && j->err == ETIMEDOUT)
    printf("%s TIMEOUT\n", j->input);
  else if (j->status < 0)
    printf("%s 127\n", j->input);
  else if (WIFSIGNALED(j->status))
    printf("%s %d\n", j->input, 128 + WTERMSIG(j->status));
  else
    printf("%s %d\n", j->input, WEXITSTATUS(j->status));
  if (j->status != 0)
    g->failed = 1;
  fwrite(j->out.data ? j->out.data : "", 1, j->out.len, stdout);
  for (size_t at = 0; at < j->errout.len;) {
    const char *line = j->errout.data + at;
    const char *nl = memchr(line, '\n', j->errout.len - at);
    size_t len = nl ? (size_t)(nl - line) : j->errout.len - at;
    printf("stderr: %.*s\n", (int)len, line);
    at += len + (nl != NULL);
  }
  if (j->status < 0 && j->err != ETIMEDOUT)
    printf("stderr: gpar: cannot run: %s\n", strerror(j->err));
  free(j->out.data);
  free(j->errout.data);
  j->out = j->errout = (gev_bytes){0};
}

/* Prints what may be printed now: this job, or with --keep-order every
 * finished job whose predecessors were printed. */
static void report(gpar *g, job *j) {
  if (!g->keep_order) {
    print_job(g, j);
    return;
  }
  while (g->printed < g->njobs && g->jobs[g->printed].done)
    print_job(g, &g->jobs[g->printed++]);
}

static void run_job(gpar *g, job *j) {
  char **argv = make_argv(g, j->input);
  if (!argv || !argv[0]) {
    j->status = -1;
    j->err = ENOMEM;
  } else {
    j->status = gev_process_run((const char *const *)argv, NULL, &j->out,
                                &j->errout, g->timeout);
    j->err = j->status < 0 ? errno : 0;
  }
  free_argv(argv);
  j->done = 1;
  report(g, j);
}

/* One of the N workers: takes the next job until none is left. */
static void *worker(void *arg) {
  gpar *g = arg;
  while (g->next < g->njobs)
    run_job(g, &g->jobs[g->next++]);
  return NULL;
}

/* ---- Main ---------------------------------------------------------------- */

static void read_inputs(gpar *g) {
  char *line = NULL;
  size_t cap = 0, alloc = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, stdin)) >= 0) {
    if (n > 0 && line[n - 1] == '\n')
      line[--n] = '\0';
    if (g->njobs == alloc) {
      alloc = alloc ? alloc * 2 : 64;
      g->jobs = realloc(g->jobs, alloc * sizeof *g->jobs);
      if (!g->jobs) {
        perror("gpar");
        exit(2);
      }
    }
    g->jobs[g->njobs++] = (job){.input = strdup(line)};
  }
  free(line);
}

static int parse_args(gpar *g, int argc, char **argv) {
  int jobs = 4, i;
  for (i = 1; i < argc && argv[i][0] == '-'; i++) {
    if (!strcmp(argv[i], "-j") && i + 1 < argc)
      jobs = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
      g->timeout = atof(argv[++i]);
    else if (!strcmp(argv[i], "--keep-order"))
      g->keep_order = 1;
    else if (!strcmp(argv[i], "--shell"))
      g->shell = 1;
    else if (!strcmp(argv[i], "--"))
      break;
    else
      usage();
  }
  i += i < argc && !strcmp(argv[i], "--");
  if (i >= argc || jobs < 1 || !(g->timeout > 0 || g->timeout == -1))
    usage();
  g->words = argv + i;
  g->nwords = argc - i;
  return jobs;
}

int main(int argc, char **argv) {
  gpar g = {.timeout = -1};
  int n = parse_args(&g, argc, argv);
  read_inputs(&g);
  if ((size_t)n > g.njobs)
    n = (int)g.njobs;
  gev_greenlet **ws = calloc((size_t)n + 1, sizeof *ws);
  for (int i = 0; i < n; i++)
    ws[i] = gev_spawn(worker, &g);
  gev_joinall(ws, (size_t)n, -1, 0, 0);
  for (int i = 0; i < n; i++)
    gev_greenlet_unref(ws[i]);
  free(ws);
  for (size_t i = 0; i < g.njobs; i++)
    free(g.jobs[i].input);
  free(g.jobs);
  gev_hub_destroy();
  return g.failed;
}
