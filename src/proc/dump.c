/*
 * State dumps on a signal (gev_dump_on_signal, GEV_DUMP_SIGNAL): the JVM's
 * kill -3 for a hub. The signal goes through gev's signal layer, so the
 * dump is made by an ordinary greenlet in the hub's next turn, with the
 * backtraces of every parked coroutine, and logged line by line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gev/monitor.h"
#include "hub/hub_internal.h"
#include "proc/signal_internal.h"

/* In the hub, which runs on a dedicated stack: from there every parked
 * coroutine can be unwound, shared-mode ones included. */
static void dump_from_hub(void *arg) {
  int signum = (int)(intptr_t)arg;
  gev__log(GEV_LOG_INFO, "gev: signal %d (%s): run info follows", signum,
           strsignal(signum));
  gev_log_run_info(GEV_LOG_INFO);
}

/* The signal's handler greenlet hands the dump to the hub. */
static void dump(int signum, void *arg) {
  (void)arg;
  if (gev_run_callback(dump_from_hub, (void *)(intptr_t)signum) < 0)
    gev__log(GEV_LOG_ERROR, "gev: no memory to dump on signal %d", signum);
}

GEV_EXTERN int gev_dump_on_signal(int signum) {
  return gev__signal_handler_owned(signum, dump);
}

/* "SIGUSR2", "USR2" or "12": the signal number, or 0. */
static int parse_signal(const char *s) {
  static const struct {
    const char *name;
    int num;
  } names[] = {{"USR1", SIGUSR1},  {"USR2", SIGUSR2}, {"QUIT", SIGQUIT},
               {"HUP", SIGHUP},    {"URG", SIGURG},   {"PWR", SIGPWR},
               {"WINCH", SIGWINCH}};
  char *end;
  long n = strtol(s, &end, 10);
  if (end != s && !*end)
    return n > 0 && n < NSIG ? (int)n : 0;
  if (strncasecmp(s, "SIG", 3) == 0)
    s += 3;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcasecmp(s, names[i].name) == 0)
      return names[i].num;
  return 0;
}

static int env_signal;

/* The first hub of the process was created: install the dump handler the
 * environment asks for. */
static void on_first_hub(void) {
  if (gev_dump_on_signal(env_signal) < 0)
    gev__log(GEV_LOG_WARNING, "gev: GEV_DUMP_SIGNAL ignored: %s",
             strerror(errno));
}

/* Reads GEV_DUMP_SIGNAL at load time (so only when this file is linked:
 * always with the shared library; with the static one, a program that
 * calls gev_dump_on_signal anywhere). */
__attribute__((constructor)) static void read_environment(void) {
  const char *s = getenv("GEV_DUMP_SIGNAL");
  if (!s || !*s)
    return;
  if (!(env_signal = parse_signal(s))) {
    gev__log(GEV_LOG_WARNING,
             "gev: GEV_DUMP_SIGNAL=%s ignored: not a signal (try SIGUSR2)", s);
    return;
  }
  gev__on_first_hub(on_first_hub);
}
