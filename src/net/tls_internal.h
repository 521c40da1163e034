/*
 * Internal: how a TLS stream drives OpenSSL without ever blocking in it.
 *
 * A stream is an SSL object over a gev_socket, joined by gev's own BIO
 * (tls_io.c), never by OpenSSL's socket BIO, so every byte goes through the
 * socket layer:
 *   - reading: the BIO does one non-blocking gev_socket_recv; "would block"
 *     becomes OpenSSL's retry-read, and the SSL call returns
 *     SSL_ERROR_WANT_READ;
 *   - writing: the BIO never refuses. What the kernel does not take at once
 *     is kept in the stream's out buffer and reported written, so OpenSSL
 *     never holds a half-sent record, never says WANT_WRITE, and never ties
 *     a retry to the arguments of an earlier call. During the handshake the
 *     BIO only appends, so each flight leaves in one send.
 *
 * One loop, gev__tls_drive(), runs every OpenSSL call of a stream:
 *
 *     for (;;) {
 *       rc = op(t, arg);           // SSL_do_handshake, SSL_read_ex ...
 *       if (rc > 0) break;         //   (never parks)
 *       SSL_ERROR_WANT_READ:  flush the out buffer (unless the writer
 *                             already waits to), then park until the
 *                             socket is readable, and go round again;
 *       anything else:        map it to errno, record the reason, stop.
 *     }
 *
 * and every park is gev__tls_wait(): the socket's own wait
 * (gev_socket_wait_read/_write), so a close, a kill or a Timeout scope ends
 * a TLS call exactly as it ends a socket call. A call that gave up leaves
 * OpenSSL in a state the next call resumes: input half read stays in
 * OpenSSL's buffer, output not yet sent stays in the out buffer and is sent
 * first.
 *
 * Who may run at once on one stream (all state below is the stream's):
 *   - the handshake runs in one greenlet; another call that needs it parks
 *     on t->handshakers until it is over;
 *   - one reader (recv, wait_read) and one writer (send, sendall, shutdown)
 *     at a time, as on sockets: a second one fails with EBUSY;
 *   - the reader and the writer may both need the same socket direction
 *     (both flush the out buffer). The socket admits one waiter per
 *     direction; the second parks on t->turn[dir] until the first one's
 *     wait ends, then retries.
 *
 * Shared-stack rule: the SSL object, the stream and its buffers are on the
 * heap, and no OpenSSL call is in progress while a greenlet is parked
 * (parking happens only between calls), so no OpenSSL frame is ever copied
 * out with a coroutine's stack and nothing points into one.
 *
 * Errors: gev__tls_fail*() set errno and the thread's last error text
 * (gev_tls_last_error) together, so every failing public call leaves both.
 */
#ifndef GEV_SRC_NET_TLS_INTERNAL_H
#define GEV_SRC_NET_TLS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include <openssl/ssl.h>

#include "gev/tls.h"
#include "hub/park.h"

enum { GEV__TLS_READ = 0, GEV__TLS_WRITE = 1 };

/* Client sessions kept for resumption, keyed by server name and address. */
typedef struct gev__tls_session {
  char *key;
  SSL_SESSION *session; /* one reference, owned here */
} gev__tls_session;

struct gev_tls_ctx {
  SSL_CTX *ssl_ctx;        /* ro: owned */
  gev_tls_role role;       /* ro */
  atomic_uint refs;        /* rw: creator + gev_tls_ctx_ref + one per stream */
  atomic_int frozen;       /* rw: set by the first stream; config then EBUSY */
  gev_tls_verify verify;   /* ro once frozen */
  int check_hostname;      /* ro once frozen */
  int ca_loaded;           /* ro once frozen: CA file, dir or system store */
  unsigned char *alpn;     /* ro once frozen: wire format, or NULL */
  size_t alpn_len;         /* ro */
  gev_tls_sni_fn sni_fn;   /* ro once frozen */
  void *sni_arg;           /* ro */
  pthread_mutex_t lock;    /* guards the session list (ctx may be shared) */
  gev__tls_session *cache; /* private: client sessions, oldest first */
  size_t ncache, cache_size; /* private: in use, capacity (0: off) */
};

enum gev__tls_hs {
  GEV__TLS_HS_NONE,    /* not started, or interrupted (resumable) */
  GEV__TLS_HS_RUNNING, /* a greenlet drives it */
  GEV__TLS_HS_DONE,    /* (a failed one leaves t->failed set instead) */
};

struct gev_tls_stream {
  SSL *ssl;                /* ro: owned, freed with the stream */
  gev_socket *sock;        /* ro: the stream's own reference */
  gev_tls_ctx *ctx;        /* ro: referenced */
  gev_tls_ctx *sni_ctx;    /* rw: context switched to by an SNI callback */
  gev__hub *hub;           /* ro: the owning thread's hub */
  unsigned refs;           /* rw: creator + gev_tls_ref + one per call */
  unsigned char open;      /* rw: the creator's reference is still held */
  unsigned char closed;    /* rw: gev_tls_close ran */
  unsigned char hs;        /* rw: enum gev__tls_hs */
  unsigned char eof;       /* rw: the BIO read end of stream from the socket */
  unsigned char ended;     /* rw: recv saw the end of the peer's data */
  unsigned char notified;  /* rw: ...and it was a close_notify */
  unsigned char in_sni;    /* rw: inside the SNI callback */
  int failed;              /* rw: errno of a fatal error, 0 while usable */
  char *failed_reason;     /* rw: its text, for later calls */
  gev__task *reader;       /* rw: greenlet in a read-side call */
  gev__task *writer;       /* rw: greenlet in a write-side call */
  gev__task *waiting[2];   /* rw: greenlet parked on the socket, per dir */
  gev__waitq turn[2];      /* parked for waiting[dir] to finish */
  gev__waitq handshakers;  /* parked for another greenlet's handshake */
  int io_err;              /* rw: errno of the BIO's last failed call */
  char *out;               /* private: ciphertext not yet sent */
  size_t out_len, out_cap; /* private */
  size_t out_off;          /* private: bytes of out already sent */
  char *server_name;       /* ro: client: the name given to wrap */
  char *session_key;       /* ro: client: key in the session cache */
  char *alpn;              /* rw: the protocol chosen, filled on demand */
  /* ro: gev__hub_id(hub), for identity checks (a new hub may reuse the
   * address of one that is gone) */
  unsigned long long hub_id;
};

/* How long one call may wait: per wait (recv, send: deadline < 0, each
 * wait gets timeout) or overall (handshake, sendall, shutdown). */
typedef struct gev__tls_limit {
  double timeout;  /* the socket's timeout when the call started */
  double deadline; /* gev_monotonic() based; < 0: none */
} gev__tls_limit;

/* One OpenSSL call: returns its result (> 0 done, <= 0 ask SSL_get_error). */
typedef int (*gev__tls_op)(gev_tls_stream *t, void *arg);

/* ---- tls_io.c: the BIO, the out buffer, waiting, the driving loop ---- */

/* Attaches a new gev BIO over t->sock to t->ssl. 0 or -1/ENOMEM. */
int gev__tls_attach_bio(gev_tls_stream *t);

/* The limit for a call starting now; overall makes the socket's timeout
 * a deadline for the whole call. */
gev__tls_limit gev__tls_limit_for(const gev_tls_stream *t, int overall);

/* Runs op until it succeeds (returns its result > 0), the peer closed
 * cleanly (0), or it fails (-1 with errno and the last error set). */
int gev__tls_drive(gev_tls_stream *t, gev__tls_op op, void *arg,
                   const gev__tls_limit *lim);

/* Sends the out buffer, parking as needed. 0 or -1/errno. */
int gev__tls_flush(gev_tls_stream *t, const gev__tls_limit *lim);

/* Sends what the kernel takes now, without parking (best effort). */
void gev__tls_flush_nowait(gev_tls_stream *t);

/* The flush before waiting for input: the peer may need our output to
 * answer, so it must leave; but when the stream's writer is already
 * parked sending it, the reader does not wait behind it (it would stop
 * reading while the writer waits for a peer that waits for us to read). */
int gev__tls_flush_to_read(gev_tls_stream *t, const gev__tls_limit *lim);

/* Parks until the socket is ready in direction dir, within lim. 0 or
 * -1/errno (EAGAIN for a socket with timeout 0, ETIMEDOUT, EBADF, ...). */
int gev__tls_wait(gev_tls_stream *t, int dir, const gev__tls_limit *lim);

/* Frees the out buffer (the stream is going away). */
void gev__tls_drop_out(gev_tls_stream *t);

/* ---- tls_error.c: errno plus the thread's last error text ---- */

/* Sets errno = err and the last error to text; returns -1. */
int gev__tls_fail(int err, const char *text);
/* As gev__tls_fail, with the text of OpenSSL's oldest queued error (or
 * fallback when none is queued), and clears the queue. */
int gev__tls_fail_openssl(int err, const char *fallback);
/* As gev__tls_fail with strerror(err). */
int gev__tls_fail_errno(int err);
/* The failed SSL call's error code mapped to errno and reason (after
 * SSL_get_error reported SSL_ERROR_SSL or SSL_ERROR_SYSCALL); returns -1.
 * Marks the stream failed: later calls repeat the error. */
int gev__tls_fail_stream(gev_tls_stream *t, int ssl_error);
/* Fails with err and text and marks the stream failed. */
int gev__tls_fail_dead(gev_tls_stream *t, int err, const char *text);
/* Non-zero when OpenSSL's queued error is the peer closing without
 * close_notify (an unexpected EOF); the queue is left as it is. */
int gev__tls_unexpected_eof(void);

/* ---- tls_ctx.c ---- */

/* Marks ctx in use (configuration closes) and finishes defaults: a
 * verifying client without CAs gets the system store. 0 or -1/errno. */
int gev__tls_ctx_freeze(gev_tls_ctx *ctx);
gev_tls_ctx *gev__tls_ctx_of(SSL_CTX *ssl_ctx);

/* Client session cache: looks up key (SSL_set_session on ssl when found). */
void gev__tls_session_resume(gev_tls_ctx *ctx, SSL *ssl, const char *key);

/* The stream that owns ssl (its app data). */
gev_tls_stream *gev__tls_stream_of(const SSL *ssl);

#endif
