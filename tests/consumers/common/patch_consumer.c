/* A program using the cooperative libc as its users do: a plain blocking
 * read(2) in one greenlet, the write that answers it in another. Without
 * libgev-patch the read would block the thread before the writer ran.
 * Built linking gev-patch (-DPATCH_LINKED: it calls the library, so the
 * linker keeps it), or linking only gev and run with LD_PRELOAD. Exits 0
 * only if the read was answered. */
#include <gev.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef PATCH_LINKED
#include <gev/patch.h>
#endif

static int sv[2];
static char got;

static void *reader(void *arg) {
  (void)arg;
  if (read(sv[0], &got, 1) != 1)
    got = 0;
  return NULL;
}

static void *writer(void *arg) {
  (void)arg;
  if (gev_sleep(0.01) == 0 && write(sv[1], "!", 1) != 1)
    perror("write");
  return NULL;
}

int main(void) {
#ifdef PATCH_LINKED
  gev_patch_enable();
#endif
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
    return 1;
  alarm(10); /* a blocked thread fails the check instead of hanging it */
  gev_spawn_raw(reader, NULL);
  gev_spawn_raw(writer, NULL);
  gev_run();
  gev_hub_destroy();
  close(sv[0]);
  close(sv[1]);
  if (got != '!') {
    fprintf(stderr, "the blocking read was not answered\n");
    return 1;
  }
  return 0;
}
