#include "testutil.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gev/coro.h"

int gev_test_fd_count(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  if (!d)
    return -1;
  while (readdir(d))
    n++;
  closedir(d);
  return n - 3; /* ".", ".." and the DIR's own fd */
}

int gev_test_under_valgrind(void) {
  static int known = -1;
  char line[512];
  FILE *f;
  if (known >= 0)
    return known;
  known = 0;
  if (!(f = fopen("/proc/self/maps", "r")))
    return known;
  while (!known && fgets(line, sizeof line, f))
    known = strstr(line, "vgpreload") != NULL;
  fclose(f);
  return known;
}

void gev_test_coro_clean(void) {
  gev_coro_stats st;
  gev_coro_get_stats(&st);
  ck_assert_uint_eq(st.live, 0);
  ck_assert_int_eq(gev_coro_thread_cleanup(), 0);
  gev_coro_get_stats(&st);
  ck_assert_uint_eq(st.stacks_mapped, 0);
  ck_assert_uint_eq(st.shared_saved, 0);
}

const char *gev_test_child_aborts(void (*misuse)(void)) {
  static char out[2048];
  int p[2], st;
  size_t n = 0;
  ssize_t r;
  ck_assert_int_eq(pipe(p), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    dup2(p[1], 2);
    close(p[0]);
    misuse();
    _exit(0);
  }
  close(p[1]);
  while (n < sizeof out - 1 &&
         (r = read(p[0], out + n, sizeof out - 1 - n)) > 0)
    n += (size_t)r;
  out[n] = '\0';
  close(p[0]);
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
                "child did not abort (status %d): %s", st, out);
  return out;
}

int gev_test_run(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
