/* gev's SIGSEGV/SIGBUS handler (for guard-page reports) and the program's
 * own handlers: a fault that is not gev's reaches the handler installed
 * before gev as the kernel would deliver it (its flags and mask), and a
 * handler installed after gev is never replaced. Each case runs in a
 * forked child that exits with 42 when everything held. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gev/coro.h"
#include "testutil.h"

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define VALGRIND_DISABLE_ERROR_REPORTING
#define VALGRIND_ENABLE_ERROR_REPORTING
#endif

static int fds_before;
static void setup(void) { fds_before = gev_test_fd_count(); }
static void teardown(void) {
  gev_test_coro_clean();
  ck_assert_int_eq(gev_test_fd_count(), fds_before);
}

static char *volatile page;

/* Ends the child with code (42: all held). */
static void done(int code) {
  VALGRIND_ENABLE_ERROR_REPORTING;
  _exit(code);
}
static struct sigaction before_gev; /* gev's handler, seen by "after" */

/* A page to fault on. The fault is the point: Memcheck is told not to
 * count it as an error of the child. */
static char *map_protected_page(void) {
  char *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    done(10);
  VALGRIND_DISABLE_ERROR_REPORTING;
  return p;
}

static int disposition_is(void (*fn)(int, siginfo_t *, void *)) {
  struct sigaction cur;
  return sigaction(SIGSEGV, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
         cur.sa_sigaction == fn;
}

static void expect_child_ok(void (*child)(void)) {
  int st;
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    child();
    done(1);
  }
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 42,
                "child: exited %d (status %d), signal %d", WIFEXITED(st),
                WEXITSTATUS(st), WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* Installed before gev, with SA_RESETHAND and SIGUSR1 in its mask: the
 * kernel's delivery resets the disposition and blocks SIGUSR1. */
static void handler_before(int sig, siginfo_t *si, void *uc) {
  sigset_t now;
  struct sigaction cur;
  (void)uc;
  if (sig != SIGSEGV || si->si_addr != page)
    done(20);
  if (sigprocmask(SIG_BLOCK, NULL, &now) < 0 || !sigismember(&now, SIGUSR1))
    done(21); /* its sa_mask was not applied */
  if (sigaction(SIGSEGV, NULL, &cur) < 0 || cur.sa_handler != SIG_DFL)
    done(22); /* SA_RESETHAND was not honoured */
  done(42);
}

static void child_handler_before_gev(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = handler_before;
  sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGUSR1);
  if (sigaction(SIGSEGV, &sa, NULL) < 0)
    done(11);
  if (!gev_coro_current()) /* gev installs its handler over ours */
    done(12);
  page = map_protected_page();
  page[0] = 1;
  done(13); /* the write must not succeed */
}

START_TEST(test_fault_reaches_handler_installed_before_gev) {
  expect_child_ok(child_handler_before_gev);
}
END_TEST

/* Installed after gev; chains to the handler it replaced (gev's), as
 * libraries do, then repairs the fault and returns. */
static void handler_after(int sig, siginfo_t *si, void *uc) {
  if (sig != SIGSEGV || si->si_addr != page)
    done(30);
  if (before_gev.sa_flags & SA_SIGINFO)
    before_gev.sa_sigaction(sig, si, uc);
  if (!disposition_is(handler_after))
    done(31); /* gev replaced the program's handler */
  if (mprotect(page, 4096, PROT_READ | PROT_WRITE) < 0)
    done(32);
}

static void child_handler_after_gev(void) {
  struct sigaction sa;
  if (!gev_coro_current())
    done(12);
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = handler_after;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, &before_gev) < 0)
    done(11);
  page = map_protected_page();
  page[0] = 1; /* handled: the handler makes the page writable */
  if (page[0] != 1 || !disposition_is(handler_after))
    done(33);
  /* Coroutine state of a new thread's kind must not reinstall gev's. */
  if (gev_coro_thread_cleanup() < 0 || !disposition_is(handler_after))
    done(34);
  done(42);
}

START_TEST(test_handler_installed_after_gev_stays) {
  expect_child_ok(child_handler_after_gev);
}
END_TEST

static Suite *signals_suite(void) {
  Suite *s = suite_create("coro-signals");
  TCase *tc = tcase_create("signals");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_fault_reaches_handler_installed_before_gev);
  tcase_add_test(tc, test_handler_installed_after_gev_stays);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(signals_suite)
