/* Helpers shared by the TLS tests: a throw-away PKI made with the openssl
 * program, contexts over it, connected stream pairs, and TLS calls run in
 * greenlets. Everything here fails the running test on error. */
#ifndef GEV_TESTS_TLSTEST_H
#define GEV_TESTS_TLSTEST_H

#include <sys/types.h>

#include "gev/tls.h"
#include "testutil.h"

/* Certificates, valid for one day, in a temporary directory that
 * tt_pki_remove deletes. All but self are signed by the test CA. */
typedef struct tt_pki {
  char dir[64];
  char ca[128];                      /* the CA's certificate */
  char server[128], server_key[128]; /* localhost, 127.0.0.1 */
  char other[128], other_key[128];   /* other.example */
  char client[128], client_key[128]; /* CN=gev test client */
  char self[128], self_key[128];     /* self-signed localhost */
  char garbage[128];                 /* not PEM at all */
} tt_pki;

extern tt_pki tt;

/* Makes the PKI (0), or prints why it could not (-1). */
int tt_pki_make(void);
void tt_pki_remove(void);

/* A main() that makes the PKI around the suite: Check forks each test, so
 * the files must outlive every test and are removed after the last. */
#define TT_MAIN(make_suite)                                                    \
  int main(void) {                                                             \
    if (tt_pki_make() < 0)                                                     \
      return 1;                                                                \
    int rc = gev_test_run(make_suite());                                       \
    tt_pki_remove();                                                           \
    return rc;                                                                 \
  }

/* Runs a shell command (output discarded); its exit status. */
int tt_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A server context with cert/key; a client context trusting the test CA
 * (or, with_ca 0, the system store). */
gev_tls_ctx *tt_server_ctx(const char *cert, const char *key);
gev_tls_ctx *tt_client_ctx(int with_ca);

/* Streams over a fresh loopback TCP pair, not yet handshaken. name is the
 * client's server_hostname. */
void tt_pair(gev_tls_ctx *sctx, gev_tls_ctx *cctx, const char *name,
             gev_tls_stream **client, gev_tls_stream **server);

/* A TLS call run in its own greenlet. */
typedef enum tt_kind {
  TT_HANDSHAKE,
  TT_RECV,     /* one recv of up to len */
  TT_RECV_ALL, /* recv until len bytes or the end */
  TT_SENDALL,
  TT_SHUTDOWN,
} tt_kind;

typedef struct tt_async {
  tt_kind kind;
  gev_tls_stream *t;
  char *buf;
  size_t len;
  ssize_t rc; /* the call's result (TT_RECV_ALL: bytes received) */
  int err;    /* errno when rc < 0 */
  char reason[256];
  gev_greenlet *g;
} tt_async;

tt_async *tt_start(tt_kind kind, gev_tls_stream *t, void *buf, size_t len);
/* Joins (10 s at most), frees a, returns its rc; *err gets its errno and
 * reason (if non-NULL) its gev_tls_last_error text. */
ssize_t tt_join(tt_async *a, int *err, char *reason, size_t size);

/* Handshakes both ends at once; fails the test unless both succeed. */
void tt_handshake_both(gev_tls_stream *client, gev_tls_stream *server);

/* Seconds on the monotonic clock. */
double tt_now(void);

/* ---- Programs as child processes (no hub needed) ------------------------ */

typedef struct tt_proc {
  pid_t pid;
  int port; /* from its ready line */
  int out;  /* its stdout and stderr */
} tt_proc;

/* Starts argv (argv[0] a path or a name on PATH) with stdout and stderr on
 * a pipe, and waits (10 s at most) for a line starting with ready, whose
 * last ":NUMBER" is the port. The child dies with the test. */
void tt_spawn(tt_proc *p, const char *const *argv, const char *ready);
/* Sends sig and waits for the process; returns its wait status. */
int tt_stop(tt_proc *p, int sig);

/* Runs a shell command with output into out (NUL-terminated, truncated to
 * size); returns its exit status (-1 if it could not run). */
int tt_capture(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The path of build/examples/NAME (from GEV_EXAMPLES_BUILD). */
const char *tt_example(const char *name);

#endif
