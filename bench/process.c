/*
 * Spawning and waiting for a child process, against a plain C loop doing
 * the same in the same run.
 *
 *   process.ref     the baseline: posix_spawn of /bin/true and a blocking
 *                   waitpid, one child at a time; us per child.
 *   process.gev     gev_process_spawn of /bin/true (stdio inherited) and
 *                   gev_process_wait from the main coroutine, one child at
 *                   a time: posix_spawnp with the signal reset and
 *                   closefrom, a pidfd, its watcher and a park in the hub
 *                   until the child is reaped; us per child.
 *   process.run     gev_process_run of /bin/true capturing stdout and
 *                   stderr (three pipes, communicate, wait); us per child.
 *   process.ratio   gev / ref.
 *   process.python         Python's subprocess.run(["/bin/true"]), and
 *   process.python_gevent  gevent.subprocess.run, measured by python3 in
 *                   a child when it (and gevent) are installed; us per
 *                   child. The system's /usr/bin/python3 is preferred,
 *                   since Debian's python3-gevent installs there.
 *
 * Every child's status is checked (exit 0) on every side; a failure ends
 * the benchmark without figures. Rounds are interleaved; each figure is
 * its best round.
 */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "gev/process.h"

extern char **environ;

enum { ROUNDS = 10, PER_ROUND = 200 };

static const char *const true_argv[] = {"/bin/true", NULL};

static void check_status(int status) {
  if (status != 0) {
    fprintf(stderr, "process: /bin/true ended with status %d\n", status);
    exit(1);
  }
}

static double round_ref(void) {
  double t0 = bench_now_ns();
  for (int i = 0; i < PER_ROUND; i++) {
    pid_t pid;
    int status;
    if (posix_spawn(&pid, true_argv[0], NULL, NULL, (char **)true_argv,
                    environ) != 0)
      bench_die("posix_spawn");
    if (waitpid(pid, &status, 0) != pid)
      bench_die("waitpid");
    check_status(status);
  }
  return (bench_now_ns() - t0) / PER_ROUND / 1000;
}

static double round_gev(void) {
  double t0 = bench_now_ns();
  for (int i = 0; i < PER_ROUND; i++) {
    gev_process *p = gev_process_spawn(true_argv, NULL);
    if (!p)
      bench_die("gev_process_spawn");
    check_status(gev_process_wait(p, -1));
    gev_process_free(p);
  }
  return (bench_now_ns() - t0) / PER_ROUND / 1000;
}

static double round_run(void) {
  double t0 = bench_now_ns();
  for (int i = 0; i < PER_ROUND; i++) {
    gev_bytes out, err;
    check_status(gev_process_run(true_argv, NULL, &out, &err, -1));
    free(out.data);
    free(err.data);
  }
  return (bench_now_ns() - t0) / PER_ROUND / 1000;
}

/* Python's figures: best of ROUNDS rounds of PER_ROUND runs each. */
static const char python_script[] =
    "import sys, time, subprocess\n"
    "def best(run):\n"
    "    b = None\n"
    "    for _ in range(%d):\n"
    "        t = time.perf_counter()\n"
    "        for _ in range(%d):\n"
    "            if run(['/bin/true']).returncode != 0: sys.exit(1)\n"
    "        d = (time.perf_counter() - t) / %d * 1e6\n"
    "        b = d if b is None or d < b else b\n"
    "    return b\n"
    "print('bench: process.python %%.1f us' %% best(subprocess.run))\n"
    "try:\n"
    "    import gevent.subprocess\n"
    "except ImportError:\n"
    "    sys.exit(0)\n"
    "print('bench: process.python_gevent %%.1f us' %% "
    "best(gevent.subprocess.run))\n";

static void run_python(void) {
  char script[sizeof python_script + 32];
  gev_bytes out, err;
  snprintf(script, sizeof script, python_script, ROUNDS, PER_ROUND, PER_ROUND);
  const char *python =
      access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
  const char *argv[] = {python, "-c", script, NULL};
  int status = gev_process_run(argv, NULL, &out, &err, 300);
  if (status == 0)
    fputs(out.data, stdout);
  else
    fprintf(stderr, "process: no Python figures (%s)\n",
            status < 0 ? "python3 not found" : "python3 failed");
  free(out.data);
  free(err.data);
}

int main(void) {
  double ref = 0, gev = 0, run = 0;
  for (int r = 0; r < ROUNDS; r++) {
    bench_keep_min(&ref, round_ref());
    bench_keep_min(&gev, round_gev());
    bench_keep_min(&run, round_run());
  }
  bench_print("process.ref", ref, 1, "us");
  bench_print("process.gev", gev, 1, "us");
  bench_print("process.run", run, 1, "us");
  bench_print("process.ratio", gev / ref, 2, "x");
  run_python();
  fflush(stdout);
  gev_hub_destroy();
  return 0;
}
