#include "tlstest.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nettest.h"

tt_pki tt;

int tt_sh(const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  char quiet[2200];
  snprintf(quiet, sizeof quiet, "(%s) >/dev/null 2>&1", cmd);
  int st = system(quiet);
  return st == -1 ? -1 : WEXITSTATUS(st);
}

double tt_now(void) { return gev_monotonic(); }

/* ---- The PKI ------------------------------------------------------------- */

#define EC_KEY_OPTS "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

static void path(char *out, const char *name) {
  snprintf(out, 128, "%s/%s", tt.dir, name);
}

/* A leaf certificate signed by the CA: name.pem and name.key. */
static int leaf(const char *name, const char *subject, const char *san) {
  return tt_sh("cd %s && openssl req -new " EC_KEY_OPTS " -keyout %s.key"
               " -out %s.csr -subj '%s' &&"
               " printf 'subjectAltName=%s\\nextendedKeyUsage=serverAuth,"
               "clientAuth\\n' > %s.ext &&"
               " openssl x509 -req -in %s.csr -CA ca.pem -CAkey ca.key"
               " -CAcreateserial -days 1 -out %s.pem -extfile %s.ext",
               tt.dir, name, name, subject, san, name, name, name, name);
}

int tt_pki_make(void) {
  snprintf(tt.dir, sizeof tt.dir, "/tmp/gev-tls-XXXXXX");
  if (!mkdtemp(tt.dir)) {
    perror("tls tests: mkdtemp");
    return -1;
  }
  path(tt.ca, "ca.pem");
  path(tt.server, "server.pem");
  path(tt.server_key, "server.key");
  path(tt.other, "other.pem");
  path(tt.other_key, "other.key");
  path(tt.client, "client.pem");
  path(tt.client_key, "client.key");
  path(tt.self, "self.pem");
  path(tt.self_key, "self.key");
  path(tt.garbage, "garbage.pem");
  int rc = tt_sh("cd %s && openssl req -x509 " EC_KEY_OPTS " -keyout ca.key"
                 " -out ca.pem -days 1 -subj '/CN=gev test CA'",
                 tt.dir) ||
           leaf("server", "/CN=localhost", "DNS:localhost,IP:127.0.0.1") ||
           leaf("other", "/CN=other.example", "DNS:other.example") ||
           leaf("client", "/CN=gev test client", "DNS:client.example") ||
           tt_sh("cd %s && openssl req -x509 " EC_KEY_OPTS " -keyout self.key"
                 " -out self.pem -days 1 -subj /CN=localhost"
                 " -addext subjectAltName=DNS:localhost,IP:127.0.0.1",
                 tt.dir) ||
           tt_sh("echo 'not a certificate' > %s", tt.garbage);
  if (rc) {
    fprintf(stderr,
            "tls tests: cannot make certificates in %s with the"
            " openssl program\n",
            tt.dir);
    tt_pki_remove();
    return -1;
  }
  return 0;
}

void tt_pki_remove(void) {
  if (tt.dir[0])
    tt_sh("rm -rf %s", tt.dir);
}

/* ---- Contexts and pairs -------------------------------------------------- */

gev_tls_ctx *tt_server_ctx(const char *cert, const char *key) {
  gev_tls_ctx *ctx = gev_tls_ctx_new(GEV_TLS_SERVER);
  ck_assert_ptr_nonnull(ctx);
  ck_assert_msg(gev_tls_ctx_use_certificate(ctx, cert, key) == 0,
                "certificate %s: %s", cert, gev_tls_last_error());
  return ctx;
}

gev_tls_ctx *tt_client_ctx(int with_ca) {
  gev_tls_ctx *ctx = gev_tls_ctx_new(GEV_TLS_CLIENT);
  ck_assert_ptr_nonnull(ctx);
  if (with_ca)
    ck_assert_msg(gev_tls_ctx_load_verify(ctx, tt.ca, NULL) == 0, "CA: %s",
                  gev_tls_last_error());
  return ctx;
}

void tt_pair(gev_tls_ctx *sctx, gev_tls_ctx *cctx, const char *name,
             gev_tls_stream **client, gev_tls_stream **server) {
  gev_socket *c, *s;
  nt_pair("127.0.0.1", &c, &s);
  *client = gev_tls_wrap(cctx, c, name);
  ck_assert_msg(*client != NULL, "client wrap: %s", gev_tls_last_error());
  *server = gev_tls_wrap(sctx, s, NULL);
  ck_assert_msg(*server != NULL, "server wrap: %s", gev_tls_last_error());
}

/* ---- Calls in greenlets -------------------------------------------------- */

static ssize_t recv_all(tt_async *a) {
  size_t got = 0;
  while (got < a->len) {
    ssize_t n = gev_tls_recv(a->t, a->buf + got, a->len - got);
    if (n < 0)
      return -1;
    if (n == 0)
      break;
    got += (size_t)n;
  }
  return (ssize_t)got;
}

static void *run_async(void *arg) {
  tt_async *a = arg;
  switch (a->kind) {
  case TT_HANDSHAKE:
    a->rc = gev_tls_handshake(a->t);
    break;
  case TT_RECV:
    a->rc = gev_tls_recv(a->t, a->buf, a->len);
    break;
  case TT_RECV_ALL:
    a->rc = recv_all(a);
    break;
  case TT_SENDALL:
    a->rc = gev_tls_sendall(a->t, a->buf, a->len);
    break;
  case TT_SHUTDOWN:
    a->rc = gev_tls_shutdown(a->t);
    break;
  }
  if (a->rc < 0) {
    a->err = errno;
    snprintf(a->reason, sizeof a->reason, "%s", gev_tls_last_error());
  }
  return NULL;
}

tt_async *tt_start(tt_kind kind, gev_tls_stream *t, void *buf, size_t len) {
  tt_async *a = calloc(1, sizeof *a);
  ck_assert_ptr_nonnull(a);
  *a = (tt_async){.kind = kind, .t = t, .buf = buf, .len = len, .rc = -2};
  a->g = gev_spawn(run_async, a);
  ck_assert_ptr_nonnull(a->g);
  return a;
}

ssize_t tt_join(tt_async *a, int *err, char *reason, size_t size) {
  ck_assert_int_eq(gev_greenlet_join(a->g, 10), 0);
  ssize_t rc = a->rc;
  if (err)
    *err = a->err;
  if (reason)
    snprintf(reason, size, "%s", a->reason);
  gev_greenlet_unref(a->g);
  free(a);
  return rc;
}

void tt_handshake_both(gev_tls_stream *client, gev_tls_stream *server) {
  tt_async *a = tt_start(TT_HANDSHAKE, server, NULL, 0);
  ck_assert_msg(gev_tls_handshake(client) == 0, "client handshake: %s",
                gev_tls_last_error());
  char reason[256];
  int err;
  ck_assert_msg(tt_join(a, &err, reason, sizeof reason) == 0,
                "server handshake: %s (%s)", strerror(err), reason);
}

/* ---- Programs ------------------------------------------------------------ */

void tt_spawn(tt_proc *p, const char *const *argv, const char *ready) {
  int out[2];
  ck_assert_int_eq(pipe(out), 0);
  p->pid = fork();
  ck_assert_int_ge(p->pid, 0);
  if (p->pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(out[1], 1);
    dup2(out[1], 2);
    close(out[0]);
    close(out[1]);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(out[1]);
  p->out = out[0];
  char text[4096];
  size_t len = 0;
  const char *line = NULL;
  double deadline = tt_now() + 10;
  while (!line) {
    struct pollfd pfd = {.fd = p->out, .events = POLLIN};
    int left = (int)((deadline - tt_now()) * 1000);
    ck_assert_msg(left > 0 && poll(&pfd, 1, left) == 1, "%s did not start",
                  argv[0]);
    ssize_t n = read(p->out, text + len, sizeof text - 1 - len);
    ck_assert_msg(n > 0, "%s exited before it was ready: %.*s", argv[0],
                  (int)len, text);
    len += (size_t)n;
    text[len] = '\0';
    for (char *l = text; l && !line; l = strchr(l, '\n'), l = l ? l + 1 : l)
      if (strncmp(l, ready, strlen(ready)) == 0 && strchr(l, '\n'))
        line = l;
  }
  const char *end = strchr(line, '\n');
  const char *colon = end;
  while (colon > line && *colon != ':')
    colon--;
  p->port = atoi(colon + 1);
  ck_assert_int_gt(p->port, 0);
}

int tt_stop(tt_proc *p, int sig) {
  int status = 0;
  kill(p->pid, sig);
  ck_assert_int_eq(waitpid(p->pid, &status, 0), p->pid);
  close(p->out);
  return status;
}

int tt_capture(char *out, size_t size, const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  FILE *f = popen(cmd, "r");
  if (!f)
    return -1;
  size_t len = 0, n;
  while (len < size - 1 && (n = fread(out + len, 1, size - 1 - len, f)) > 0)
    len += n;
  out[len] = '\0';
  char drain[512];
  while (fread(drain, 1, sizeof drain, f) > 0)
    ;
  int st = pclose(f);
  return st == -1 ? -1 : WEXITSTATUS(st);
}

const char *tt_example(const char *name) {
  static char path[1024];
  const char *dir = getenv("GEV_EXAMPLES_BUILD");
  ck_assert_msg(dir != NULL, "GEV_EXAMPLES_BUILD not set");
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return path;
}
