#include "threadtest.h"

#include <dirent.h>
#include <stdlib.h>

#include "gev/log.h"

static int fds;

void thread_test_begin(void) { fds = gev_test_fd_count(); }

void thread_test_end(void) { gev_test_all_clean(fds); }

double now(void) { return gev_monotonic(); }

static void *hub_thread_main(void *arg) {
  hub_thread *t = arg;
  gev_hub_stats hs;
  t->body(t->arg);
  if (gev_run() != 0)
    t->leaks++;
  gev_hub_verify();
  gev_hub_get_stats(&hs);
  t->leaks +=
      (int)(hs.greenlets + hs.running + hs.parked + hs.callbacks + hs.watchers);
  if (gev_hub_destroy() != 0)
    t->leaks++;
  count_add(&t->done, 1);
  return NULL;
}

void hub_thread_start(hub_thread *t, void (*body)(void *arg), void *arg) {
  t->body = body;
  t->arg = arg;
  t->leaks = 0;
  t->done = 0;
  ck_assert_int_eq(pthread_create(&t->tid, NULL, hub_thread_main, t), 0);
}

int hub_thread_join(hub_thread *t) {
  ck_assert(wait_for_count(&t->done, 1, 60));
  ck_assert_int_eq(pthread_join(t->tid, NULL), 0);
  return t->leaks;
}

pthread_t plain_thread_start(void *(*fn)(void *), void *arg) {
  pthread_t tid;
  ck_assert_int_eq(pthread_create(&tid, NULL, fn, arg), 0);
  return tid;
}

int wait_for_count(const int *flag, int want, double timeout) {
  double end = now() + timeout;
  while (count_get(flag) < want) {
    if (now() > end)
      return 0;
    gev_sleep(0.001);
  }
  return 1;
}

int process_threads(void) {
  DIR *d = opendir("/proc/self/task");
  int n = 0;
  struct dirent *e;
  if (!d)
    return -1;
  while ((e = readdir(d)))
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}
