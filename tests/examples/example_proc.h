/* Runs an example program as a child process and talks to it over plain
 * blocking loopback sockets, so the test side needs no hub. Every wait is
 * bounded with poll. */
#ifndef GEV_TESTS_EXAMPLE_PROC_H
#define GEV_TESTS_EXAMPLE_PROC_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

typedef struct example_proc {
  pid_t pid;
  int port;
  int out; /* the child's stdout */
} example_proc;

/* Waits up to ms for fd to be readable: 1, or 0 on timeout. */
static inline int ex_readable(int fd, int ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int rc;
  do
    rc = poll(&p, 1, ms);
  while (rc < 0 && errno == EINTR);
  return rc > 0;
}

/* Starts build/examples/<name> with args (NULL-terminated, after argv[0])
 * and waits for its "listening on ADDR:PORT" line. */
static inline void ex_start(example_proc *p, const char *name,
                            const char *const *args) {
  const char *dir = getenv("GEV_EXAMPLES_BUILD");
  ck_assert_msg(dir != NULL, "GEV_EXAMPLES_BUILD not set");
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  int out[2];
  ck_assert_int_eq(pipe(out), 0);
  p->pid = fork();
  ck_assert_int_ge(p->pid, 0);
  if (p->pid == 0) {
    const char *argv[16] = {path};
    for (int i = 0; args[i] && i < 14; i++)
      argv[i + 1] = args[i];
    dup2(out[1], 1);
    close(out[0]);
    close(out[1]);
    execv(path, (char *const *)argv);
    _exit(127);
  }
  close(out[1]);
  p->out = out[0];
  char line[256];
  size_t len = 0;
  while (len < sizeof line - 1 && !memchr(line, '\n', len)) {
    ck_assert_msg(ex_readable(p->out, 10000), "%s did not start", name);
    ssize_t n = read(p->out, line + len, sizeof line - 1 - len);
    ck_assert_msg(n > 0, "%s exited before listening", name);
    len += (size_t)n;
  }
  line[len] = '\0';
  const char *colon = strrchr(line, ':');
  ck_assert_msg(strncmp(line, "listening on ", 13) == 0 && colon,
                "unexpected first line: %s", line);
  p->port = atoi(colon + 1);
  ck_assert_int_gt(p->port, 0);
}

/* Sends sig and requires a clean exit (status 0) within 10 s. */
static inline void ex_stop(example_proc *p, int sig) {
  ck_assert_int_eq(kill(p->pid, sig), 0);
  int status = 0;
  pid_t r = 0;
  for (int i = 0; i < 1000 && r == 0; i++) {
    r = waitpid(p->pid, &status, WNOHANG);
    if (r == 0)
      usleep(10000);
  }
  ck_assert_msg(r == p->pid, "example did not exit after signal %d", sig);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "example exit status %d", status);
  close(p->out);
}

/* A blocking TCP connection to 127.0.0.1:port. */
static inline int ex_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
  return fd;
}

static inline void ex_send(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
    ck_assert_msg(n > 0, "send: %s", strerror(errno));
    data += n;
    len -= (size_t)n;
  }
}

/* Reads until EOF, an error, size-1 bytes, or ms without data. Returns
 * the byte count; *eof tells whether the peer closed (or reset). */
static inline size_t ex_read(int fd, char *buf, size_t size, int ms, int *eof) {
  size_t len = 0;
  *eof = 0;
  while (len < size - 1 && ex_readable(fd, ms)) {
    ssize_t n = recv(fd, buf + len, size - 1 - len, 0);
    if (n <= 0) {
      *eof = 1;
      break;
    }
    len += (size_t)n;
  }
  buf[len] = '\0';
  return len;
}

/* Occurrences of needle in haystack. */
static inline int ex_count(const char *haystack, const char *needle) {
  int n = 0;
  for (const char *p = haystack; (p = strstr(p, needle)); p++)
    n++;
  return n;
}

#endif
