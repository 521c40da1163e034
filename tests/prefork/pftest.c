#define _GNU_SOURCE
#include "pftest.h"

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "gev/process.h"

double pf_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int pf_wait_pid(pid_t pid, double timeout) {
  double end = pf_now() + timeout;
  int status;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid)
      return status;
    if (r < 0)
      return -1;
    if (pf_now() > end)
      break;
    usleep(5000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

int pf_hub_wait_child(pid_t pid, double timeout) {
  int status;
  if (gev_waitpid(pid, &status, 0, timeout) == pid)
    return status;
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -1;
}

/* Reads the state letter and parent pid of pid from /proc/pid/stat. */
static int read_stat(pid_t pid, char *state, pid_t *ppid) {
  char path[64], buf[512];
  FILE *f;
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  if (!(f = fopen(path, "r")))
    return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')'); /* the command name may hold spaces */
  int pp;
  if (!p || sscanf(p + 1, " %c %d", state, &pp) != 2)
    return -1;
  *ppid = pp;
  return 0;
}

int pf_alive(pid_t pid) {
  char st;
  pid_t pp;
  return read_stat(pid, &st, &pp) == 0 && st != 'Z' && st != 'X';
}

static int scan(pid_t parent, pid_t *out, int max, int zombies) {
  DIR *d = opendir("/proc");
  struct dirent *e;
  int n = 0;
  if (!d)
    return -1;
  while ((e = readdir(d))) {
    char *end;
    long pid = strtol(e->d_name, &end, 10);
    char st;
    pid_t pp;
    if (*end || pid <= 0 || read_stat((pid_t)pid, &st, &pp) < 0 || pp != parent)
      continue;
    if ((st == 'Z') != (zombies != 0))
      continue;
    if (out && n < max)
      out[n] = (pid_t)pid;
    n++;
  }
  closedir(d);
  return n;
}

int pf_children(pid_t parent, pid_t *out, int max) {
  return scan(parent, out, max, 0);
}

int pf_zombies(pid_t parent) { return scan(parent, NULL, 0, 1); }
