/* The child the proc tests run: one small program with a few behaviours,
 * chosen by argv[1].
 *   flood N      writes N bytes to stdout and N to stderr, alternating
 *                64 KiB chunks (a parent that drains only one deadlocks)
 *   cat          copies stdin to stdout
 *   exit N       exits with status N
 *   kill SIG     kills itself with signal SIG
 *   fds          prints the descriptors it has open, e.g. "0 1 2"
 *   env NAME     prints the value of NAME
 *   cwd          prints its working directory
 *   sigstate     prints "blocked=B ignored=I": how many signals it has
 *                blocked and ignored
 *   ignore-term  ignores SIGTERM, says "ready", then sleeps 30 s
 *   say TEXT     writes TEXT to stdout and "err:TEXT" to stderr */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w <= 0)
      exit(3);
    p += w;
    n -= (size_t)w;
  }
}

static int flood(long n) {
  static char chunk[65536];
  memset(chunk, 'x', sizeof chunk);
  for (long left[2] = {n, n}; left[0] > 0 || left[1] > 0;) {
    for (int i = 0; i < 2; i++) {
      size_t k = left[i] < (long)sizeof chunk ? (size_t)left[i] : sizeof chunk;
      write_all(1 + i, chunk, k);
      left[i] -= (long)k;
    }
  }
  return 0;
}

static int cat(void) {
  static char buf[65536];
  ssize_t n;
  while ((n = read(0, buf, sizeof buf)) > 0)
    write_all(1, buf, (size_t)n);
  return n < 0 ? 4 : 0;
}

static int fds(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int first = 1;
  if (!d)
    return 5;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
      continue;
    printf(first ? "%s" : " %s", e->d_name);
    first = 0;
  }
  closedir(d);
  printf("\n");
  return 0;
}

static int sigstate(void) {
  sigset_t mask;
  int blocked = 0, ignored = 0;
  sigprocmask(SIG_BLOCK, NULL, &mask);
  for (int s = 1; s < SIGRTMIN; s++) {
    struct sigaction sa;
    blocked += sigismember(&mask, s) == 1;
    if (sigaction(s, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
      ignored++;
  }
  printf("blocked=%d ignored=%d\n", blocked, ignored);
  return 0;
}

int main(int argc, char **argv) {
  const char *cmd = argc > 1 ? argv[1] : "";
  const char *arg = argc > 2 ? argv[2] : "";
  char buf[4096];
  if (!strcmp(cmd, "flood"))
    return flood(atol(arg));
  if (!strcmp(cmd, "cat"))
    return cat();
  if (!strcmp(cmd, "exit"))
    return atoi(arg);
  if (!strcmp(cmd, "kill"))
    return kill(getpid(), atoi(arg)) == 0 ? 6 : 7;
  if (!strcmp(cmd, "fds"))
    return fds();
  if (!strcmp(cmd, "env"))
    return printf("%s\n", getenv(arg) ? getenv(arg) : "(unset)") < 0;
  if (!strcmp(cmd, "cwd"))
    return printf("%s\n", getcwd(buf, sizeof buf) ? buf : "?") < 0;
  if (!strcmp(cmd, "sigstate"))
    return sigstate();
  if (!strcmp(cmd, "ignore-term")) {
    signal(SIGTERM, SIG_IGN);
    printf("ready\n");
    fflush(stdout);
    sleep(30);
    return 0;
  }
  if (!strcmp(cmd, "say")) {
    printf("%s", arg);
    fflush(stdout);
    fprintf(stderr, "err:%s", arg);
    return 0;
  }
  fprintf(stderr, "proc_helper: unknown command '%s'\n", cmd);
  return 2;
}
