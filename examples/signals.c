/*
 * signals — POSIX signals handled by greenlets (gev/signal.h).
 *
 * Each SIGUSR1 runs a handler greenlet that counts it; main parks in
 * gev_signal_wait until SIGTERM arrives, then prints the count, cancels
 * the handler and exits 0. Handlers run in the hub's turn, not in the
 * asynchronous signal context, so they may print, lock and block like any
 * greenlet. (A handler alone does not keep the hub running, as gevent's
 * signal handlers do not; a wait for a signal does.) Prints "ready <pid>"
 * once it listens for signals and "usr1 <n>" per SIGUSR1; signals sent
 * faster than the hub turns may be counted once.
 */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "gev/hub.h"
#include "gev/signal.h"

static int usr1;

static void on_usr1(int signum, void *arg) {
  printf("usr1 %d\n", ++usr1);
  fflush(stdout);
}

int main(void) {
  gev_signal *h = gev_signal_handler(SIGUSR1, on_usr1, NULL);
  if (!h) {
    perror("signals");
    return 1;
  }
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  /* Parks until SIGTERM; SIGUSR1's handler greenlets run meanwhile. */
  if (gev_signal_wait(SIGTERM, -1) != SIGTERM) {
    perror("signals: wait");
    return 1;
  }
  printf("stopped after %d SIGUSR1\n", usr1);
  gev_signal_cancel(h); /* SIGUSR1 goes back to SIG_DFL */
  gev_hub_destroy();
  return 0;
}
