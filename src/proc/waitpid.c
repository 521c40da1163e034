/*
 * gev_waitpid (gevent's os.waitpid): one child's status, parking only the
 * calling greenlet. Built on the hub's child watch (hub/child.h): a pidfd
 * wait that reaps that child and no other, or the status libev's reaper
 * filed in the cache when it ran.
 */
#include <errno.h>
#include <math.h>
#include <sys/wait.h>

#include "gev/process.h"
#include "hub/child.h"

GEV_EXTERN pid_t gev_waitpid(pid_t pid, int *status, int flags,
                             double timeout) {
  int st;
  if (pid <= 0 || (flags & ~WNOHANG) || isnan(timeout)) {
    errno = EINVAL;
    return -1;
  }
  if (gev__child_wait(pid, &st, (flags & WNOHANG) ? 0 : timeout) < 0)
    return (flags & WNOHANG) && errno == ETIMEDOUT ? 0 : -1;
  if (status)
    *status = st;
  return pid;
}
