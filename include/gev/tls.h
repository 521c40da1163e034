/*
 * gev/tls.h — TLS over cooperative sockets (gevent.ssl), on OpenSSL 3.
 *
 * Two objects:
 *   - a context (gev_tls_ctx): the settings shared by many connections —
 *     role (client or server), certificate chain and key, trusted CAs,
 *     verification, ALPN, SNI callback, protocol versions, ciphers, the
 *     session cache. It wraps an SSL_CTX.
 *   - a stream (gev_tls_stream): one TLS connection over a gev_socket, with
 *     handshake, recv, send, sendall, shutdown and close. It wraps an SSL.
 *
 * Every call that can wait parks the calling greenlet, never the thread:
 * where OpenSSL needs more input (or the kernel more room for output) the
 * greenlet waits on the socket's readiness in the hub, and other greenlets
 * run meanwhile. All certificate, key and protocol work is OpenSSL's; gev
 * only moves bytes and waits.
 *
 * Timeouts are the socket's (gev_socket_settimeout on gev_tls_socket), as
 * gevent's SSLSocket uses its socket's:
 *   recv, send, wait_read      each wait for readiness (as socket recv/send);
 *   handshake, sendall,        a deadline for the whole call (as connect
 *   shutdown                   and sendall), so a peer trickling bytes
 *                              cannot stretch them;
 *   timeout 0                  never park: a call that would wait fails
 *                              with EAGAIN; repeat it later (the stream
 *                              keeps its place; see "Partial progress").
 * Every call that can park also fails with the hub's blocking-call errors
 * (gev/hub.h): ECANCELED (killed), ETIMEDOUT (an expired gev_timeout
 * scope, or the socket's timeout), EPERM (from the hub), EDEADLK.
 *
 * Errors: -1 (or NULL) and errno, and a readable reason from
 * gev_tls_last_error(), such as "certificate verify failed: self-signed
 * certificate". TLS failures use:
 *   EPROTO      the TLS protocol failed: verification, a bad or unexpected
 *               record, an alert from the peer, no shared version or
 *               cipher, garbage instead of TLS. The reason names which.
 *   ECONNRESET  the peer closed the connection in the middle of the
 *               handshake (or reset it).
 *   EPIPE       writing to a peer that has gone.
 * After a fatal error (EPROTO, ECONNRESET, EPIPE ...) the stream is dead:
 * every later call fails with the same errno and reason; close it.
 *
 * Rules, as for sockets (gev/net.h):
 *   - A stream belongs to the thread of its socket; calls from another
 *     thread fail with EXDEV. A context may be shared by threads once
 *     configured (it is read-only then).
 *   - One reader (recv, wait_read) and one writer (send, sendall, shutdown)
 *     at a time: a second greenlet reading (or writing) while another does
 *     fails with EBUSY ("concurrent object use"). A reader and a writer may
 *     run at once (full duplex). The handshake is done once: a call that
 *     needs it while another greenlet performs it waits for that one.
 *   - Closing a stream (or its socket) wakes every greenlet parked in it
 *     with EBADF; later calls fail with EBADF.
 *   - Renegotiation is refused in both directions (TLS 1.2's renegotiation
 *     is a known attack surface and TLS 1.3 has none).
 *
 * Ownership and lifetime. gev_tls_ctx_new and gev_tls_wrap hand the caller
 * one reference. A context is freed when its creator's reference
 * (gev_tls_ctx_free) and those of every stream made from it are gone, so
 * it may be freed while streams still use it. A stream is reference
 * counted like a socket: gev_tls_close closes it and releases the
 * creator's reference; another greenlet that may see it closed under it
 * takes its own with gev_tls_ref and drops it with gev_tls_unref; a call
 * in progress holds one itself, so closing a stream others are parked in
 * is safe. The SSL object and everything gev allocates for a stream are
 * freed with the last reference. Nothing of a stream lives on a coroutine
 * stack, so streams work in both stack modes (gev/coro.h).
 *
 * Partial progress. Like a socket's, a call that fails with EAGAIN,
 * ETIMEDOUT or ECANCELED leaves the stream usable: input half received
 * stays buffered for the next recv, and bytes a send has accepted are
 * sent before anything later. sendall on error has sent an unknown prefix
 * (as on sockets); so has a send that returned a count (all of it is
 * queued for sending, even if the kernel had no room yet).
 *
 * Where gev differs from gevent/Python's ssl module:
 *   - A stream is its own object over a socket, not a socket subclass.
 *   - The handshake runs on first use (or gev_tls_handshake), as Python's
 *     do_handshake_on_connect=False; gev_tls_create_connection does it
 *     at once, as Python's wrap_socket of a connected socket.
 *   - A peer that closes without close_notify ends recv with 0, as
 *     Python's default suppress_ragged_eofs=True; gev_tls_close_notified
 *     tells the two apart for protocols where truncation matters.
 *   - gev_tls_shutdown sends close_notify and returns without waiting for
 *     the peer's (Python's unwrap waits): most peers close instead, and a
 *     caller that wants it reads until recv returns 0.
 */
#ifndef GEV_TLS_H
#define GEV_TLS_H

#include <sys/types.h>

#include "gev/net.h"
#include "gev/server.h"

#ifdef __cplusplus
extern "C" {
#endif

/* OpenSSL's own types, for the escape hatches below; include
 * <openssl/ssl.h> to use them. */
struct ssl_st;
struct ssl_ctx_st;
struct x509_st;

typedef struct gev_tls_ctx gev_tls_ctx;
typedef struct gev_tls_stream gev_tls_stream;

typedef enum gev_tls_role {
  GEV_TLS_CLIENT = 0,
  GEV_TLS_SERVER = 1
} gev_tls_role;

/* Peer verification (Python's CERT_NONE / CERT_OPTIONAL / CERT_REQUIRED).
 * Client: NONE accepts any server; OPTIONAL and REQUIRED both require a
 * server certificate that verifies (as Python's client does). Server: NONE
 * asks for no client certificate; OPTIONAL asks and verifies one if sent;
 * REQUIRED fails the handshake without one. */
typedef enum gev_tls_verify {
  GEV_TLS_VERIFY_NONE = 0,
  GEV_TLS_VERIFY_OPTIONAL = 1,
  GEV_TLS_VERIFY_REQUIRED = 2,
} gev_tls_verify;

/* Protocol versions, as on the wire. */
#define GEV_TLS_1_2 0x0303
#define GEV_TLS_1_3 0x0304

/* ---- Contexts ----------------------------------------------------------
 *
 * Configure a context before its first stream: once gev_tls_wrap has used
 * it, the setters below fail with EBUSY (a context in use is read-only, so
 * threads can share it). Defaults:
 *   client: verify REQUIRED, hostname checked, the system's CA store (unless
 *           CAs were loaded), a session cache of 100 sessions;
 *   server: verify NONE, OpenSSL's server session cache (20480 sessions,
 *           300 s) and session tickets;
 *   both:   TLS 1.2 minimum, OpenSSL's default ciphers, no renegotiation,
 *           no compression.
 * Setter errors: EINVAL (NULL ctx or bad arguments), EBUSY (in use), and
 * those listed per call. */

/* A new context for role. NULL: EINVAL (unknown role), ENOMEM. */
GEV_EXTERN gev_tls_ctx *gev_tls_ctx_new(gev_tls_role role);

/* Takes another reference (returns ctx; NULL for NULL). */
GEV_EXTERN gev_tls_ctx *gev_tls_ctx_ref(gev_tls_ctx *ctx);

/* Drops a reference: the creator's, or one from gev_tls_ctx_ref. The
 * context is freed when streams made from it are gone too. NULL: no-op. */
GEV_EXTERN void gev_tls_ctx_free(gev_tls_ctx *ctx);

/* Loads the certificate chain (PEM: the certificate first, then its
 * intermediates) and its private key (PEM, unencrypted; NULL: from
 * chain_file too), and checks that they match. Errors: ENOENT, EACCES
 * (file not readable), EINVAL (not PEM, not a certificate or key, key does
 * not match; see gev_tls_last_error), EBUSY. */
GEV_EXTERN int gev_tls_ctx_use_certificate(gev_tls_ctx *ctx,
                                           const char *chain_file,
                                           const char *key_file);

/* Trusts the CA certificates in cafile (PEM, several allowed) and/or the
 * hashed directory capath (either may be NULL, not both). Errors: ENOENT,
 * EACCES, EINVAL (no certificate in the file), EBUSY. */
GEV_EXTERN int gev_tls_ctx_load_verify(gev_tls_ctx *ctx, const char *cafile,
                                       const char *capath);

/* Trusts the system's CA store (OpenSSL's default paths). Errors: EBUSY,
 * EINVAL. */
GEV_EXTERN int gev_tls_ctx_load_system_store(gev_tls_ctx *ctx);

/* Sets peer verification (see gev_tls_verify). A server with OPTIONAL or
 * REQUIRED verifies client certificates against the loaded CAs. */
GEV_EXTERN int gev_tls_ctx_set_verify(gev_tls_ctx *ctx, gev_tls_verify mode);

/* Client: whether a verifying stream also checks that the server's
 * certificate is for the name given to gev_tls_wrap (default on, with
 * X509_VERIFY_PARAM_set1_host, or _set1_ip_asc for an IP literal). With it
 * on, a verifying client stream needs a name (EINVAL otherwise), as
 * Python's check_hostname. */
GEV_EXTERN int gev_tls_ctx_set_check_hostname(gev_tls_ctx *ctx, int on);

/* ALPN protocols ("h2", "http/1.1" ...; each 1..255 bytes), n of them in
 * preference order; n == 0 clears. A client offers them; a server picks
 * the first of its own list that the client offers, and goes on without
 * ALPN when there is none (as Python). Errors: EINVAL, ENOMEM, EBUSY. */
GEV_EXTERN int gev_tls_ctx_set_alpn(gev_tls_ctx *ctx,
                                    const char *const *protocols, size_t n);

/* Server: called during each handshake with the name the client sent
 * (SNI; NULL when it sent none). It may switch the stream to another
 * server context for its certificate (gev_tls_set_ctx) and returns 0 to go
 * on or -1 to refuse the connection (an unrecognized_name alert; the
 * handshake fails with EPROTO). It runs inside OpenSSL in the greenlet
 * doing the handshake: it must not block or use the stream otherwise. */
typedef int (*gev_tls_sni_fn)(gev_tls_stream *t, const char *server_name,
                              void *arg);
GEV_EXTERN int gev_tls_ctx_set_sni_callback(gev_tls_ctx *ctx, gev_tls_sni_fn fn,
                                            void *arg);

/* Protocol versions allowed: min and max are GEV_TLS_1_2 or GEV_TLS_1_3,
 * or 0 for the default (min TLS 1.2, max the newest). Errors: EINVAL. */
GEV_EXTERN int gev_tls_ctx_set_versions(gev_tls_ctx *ctx, int min, int max);

/* Cipher choice in OpenSSL's syntax: tls12 is a TLS 1.2 cipher list
 * ("ECDHE-ECDSA-AES128-GCM-SHA256:..."), tls13 a TLS 1.3 suite list
 * ("TLS_AES_128_GCM_SHA256:..."); NULL keeps the default. Errors: EINVAL
 * (nothing usable in a list). */
GEV_EXTERN int gev_tls_ctx_set_ciphers(gev_tls_ctx *ctx, const char *tls12,
                                       const char *tls13);

/* Session resumption. Client: keep up to size sessions (one per server
 * name and address, the oldest dropped first) and offer them on the next
 * connection to the same server. Server: OpenSSL's session cache of size
 * entries, and session tickets. timeout (> 0) is a session's lifetime in
 * seconds (0: OpenSSL's 300 s). size 0 turns resumption off (a server then
 * issues no tickets). The session of a stream that failed is never
 * resumed; one closed without close_notify after a healthy exchange is
 * (OpenSSL alone would drop it; TLS 1.3 tickets make that caution moot).
 * Errors: EINVAL (NaN or negative timeout), ENOMEM, EBUSY. */
GEV_EXTERN int gev_tls_ctx_set_session_cache(gev_tls_ctx *ctx, size_t size,
                                             double timeout);

/* The OpenSSL context, for settings gev does not wrap (borrowed; valid
 * while ctx is). Change it only before the first stream, as above. */
GEV_EXTERN struct ssl_ctx_st *gev_tls_ctx_openssl(gev_tls_ctx *ctx);

/* ---- Streams ------------------------------------------------------------ */

/* Wraps the connected socket sock in a TLS stream of ctx's role. Nothing
 * is sent yet: the handshake runs on the first call that needs it, or
 * gev_tls_handshake.
 *
 * server_hostname (client only; NULL for none) is sent as SNI (unless it
 * is an IP literal, which SNI does not carry) and, when ctx verifies and
 * checks hostnames, is the name the server's certificate must be for. A
 * server passes NULL.
 *
 * The stream takes its own reference to sock, and gev_tls_close closes
 * sock too (gev_socket_close). Until then the socket is the stream's: do
 * not read or write it directly (that would cut into TLS records); socket
 * calls that move no data (settimeout, getpeername, shutdown, close) are
 * fine, and closing the socket is as closing the stream.
 *
 * Errors: EINVAL (NULL ctx or sock, a socket that is not SOCK_STREAM; a
 * client that verifies and checks hostnames given no server_hostname; a
 * server given one), ENOTSOCK (a gev_socket over a pipe or FIFO), EBADF
 * (sock closed), EXDEV (sock of another thread), ENOMEM; on error sock is
 * left as it was. */
GEV_EXTERN gev_tls_stream *gev_tls_wrap(gev_tls_ctx *ctx, gev_socket *sock,
                                        const char *server_hostname);

/* Connects to host:port (gev_create_connection: names resolved, each
 * address tried), wraps the socket with host as server_hostname, and
 * completes the handshake; timeout (< 0 none) bounds all of it and then
 * stays the socket's timeout. Errors: those of gev_create_connection,
 * gev_tls_wrap and gev_tls_handshake. */
GEV_EXTERN gev_tls_stream *gev_tls_create_connection(gev_tls_ctx *ctx,
                                                     const char *host, int port,
                                                     double timeout);

/* Runs the handshake to completion (returns 0 at once once done). For a
 * client the peer's certificate is verified here when ctx says so. 0, or
 * -1: EINVAL (NULL), EBADF (closed), EXDEV, EAGAIN (timeout 0), ETIMEDOUT
 * (the socket's timeout as an overall deadline), EPROTO (verification
 * failed, protocol error, alert; see gev_tls_last_error), ECONNRESET (the
 * peer closed or reset), the socket's errors, and the blocking-call
 * errors. A failed handshake leaves the stream dead. */
GEV_EXTERN int gev_tls_handshake(gev_tls_stream *t);

/* Receives up to len decrypted bytes, parking until some are available.
 * Returns the count, 0 at end of stream (the peer sent close_notify or
 * closed the connection; see gev_tls_close_notified), or -1: EINVAL (NULL,
 * or buf NULL with len > 0), EBUSY (another reader), the handshake's
 * errors (it runs first if needed), and those of a socket recv. */
GEV_EXTERN ssize_t gev_tls_recv(gev_tls_stream *t, void *buf, size_t len);

/* Encrypts and sends up to len bytes (at most one TLS record, 16 KiB: a
 * partial write, as SSL_MODE_ENABLE_PARTIAL_WRITE), parking until the
 * kernel took some. Returns the count accepted (> 0 when len > 0), all of
 * which will be sent (see "Partial progress"), or -1: EINVAL, EBUSY
 * (another writer), the handshake's errors, EPIPE/ECONNRESET (the peer
 * has gone), and those of a socket send. */
GEV_EXTERN ssize_t gev_tls_send(gev_tls_stream *t, const void *buf, size_t len);

/* Sends all of buf, parking as often as needed; the socket's timeout is a
 * deadline for the whole call. 0, or -1 with the errors of gev_tls_send;
 * on error an unknown prefix of buf has been sent. */
GEV_EXTERN int gev_tls_sendall(gev_tls_stream *t, const void *buf, size_t len);

/* Parks until recv would most likely not wait: input is buffered, the
 * peer ended its side, or the socket is readable (what arrives may still
 * be less than a record). Runs the handshake first if needed (except with
 * timeout 0), and sends pending output before waiting, so a peer waiting
 * for it can answer. timeout is explicit, as gev_socket_wait_read's: < 0
 * forever, 0 check only, > 0 bounds the whole call. 0 when ready, or -1:
 * EINVAL (NULL, NaN), EBADF, EXDEV, ETIMEDOUT (also for timeout 0 when not
 * ready), EBUSY (another reader), the handshake's errors, a failed
 * stream's error, the blocking-call errors. */
GEV_EXTERN int gev_tls_wait_read(gev_tls_stream *t, double timeout);

/* Sends close_notify (after everything sent before it) and returns once
 * it left, without waiting for the peer's; the stream can still receive
 * until the peer ends its side. Repeating it returns 0. 0, or -1: EINVAL,
 * EBADF, EXDEV, EBUSY (another writer), ENOTCONN (the handshake has not
 * completed: there is no session to close; just close), a failed stream's
 * error, and those of sendall. */
GEV_EXTERN int gev_tls_shutdown(gev_tls_stream *t);

/* Closes the stream and its socket (without close_notify: call
 * gev_tls_shutdown first for an orderly end), wakes every greenlet parked
 * in it with EBADF, and releases the creator's reference (once: closing
 * again, through a reference of one's own, returns 0). 0, or -1: EINVAL
 * (NULL), EXDEV, or close(2)'s error (the fd is closed anyway). Output
 * still queued is dropped. */
GEV_EXTERN int gev_tls_close(gev_tls_stream *t);

/* Extra references (see Ownership). gev_tls_ref returns t (NULL for
 * NULL). Dropping the last reference of a stream nobody closed closes it. */
GEV_EXTERN gev_tls_stream *gev_tls_ref(gev_tls_stream *t);
GEV_EXTERN void gev_tls_unref(gev_tls_stream *t);

/* ---- Inspecting a stream -------------------------------------------------
 * Borrowed strings and objects below are valid while the stream is (a
 * reference is held). NULL t gives NULL / -1 / 0. */

/* The socket under the stream (borrowed), e.g. for its timeout. */
GEV_EXTERN gev_socket *gev_tls_socket(gev_tls_stream *t);

/* Non-zero once the handshake has completed. */
GEV_EXTERN int gev_tls_handshake_done(const gev_tls_stream *t);

/* Decrypted bytes buffered, which recv returns without waiting. */
GEV_EXTERN size_t gev_tls_pending(const gev_tls_stream *t);

/* Non-zero when input has arrived that recv has not returned yet:
 * decrypted bytes, records not yet decrypted (perhaps still incomplete),
 * or the peer's end of stream. Such input is no longer in the socket, so
 * a server waiting for a keep-alive client's next request (which may be
 * pipelined behind the last one) checks this before it waits for the
 * socket to become readable. Makes no system call. */
GEV_EXTERN int gev_tls_buffered(const gev_tls_stream *t);

/* After the handshake: the protocol ("TLSv1.3"), the cipher
 * ("TLS_AES_256_GCM_SHA384"), the ALPN protocol chosen (NULL: none); NULL
 * before the handshake. */
GEV_EXTERN const char *gev_tls_version(const gev_tls_stream *t);
GEV_EXTERN const char *gev_tls_cipher(const gev_tls_stream *t);
GEV_EXTERN const char *gev_tls_alpn(gev_tls_stream *t);

/* SNI: on a client the name it sends, on a server the name the client
 * sent (after the handshake started); NULL if none. */
GEV_EXTERN const char *gev_tls_server_name(const gev_tls_stream *t);

/* The peer's certificate (borrowed X509; NULL if it sent none or before
 * the handshake). A server sees the client's only when it asked for one. */
GEV_EXTERN struct x509_st *gev_tls_peer_certificate(const gev_tls_stream *t);

/* Writes the peer certificate's subject, RFC 2253 style
 * ("CN=localhost,O=gev"), into buf. Returns its length, or -1: EINVAL,
 * ENOENT (no peer certificate), ENOSPC (buf too small; truncated). */
GEV_EXTERN int gev_tls_peer_subject(const gev_tls_stream *t, char *buf,
                                    size_t size);

/* The verification result of the peer's certificate: 0 (X509_V_OK) when
 * it verified or there was nothing to verify, else OpenSSL's X509_V_ERR_*
 * code; gev_tls_verify_message gives its text ("self-signed certificate",
 * "hostname mismatch"). OpenSSL checks the chain even under
 * GEV_TLS_VERIFY_NONE, so such a client can still see what verification
 * would have said. -1 for NULL. */
GEV_EXTERN long gev_tls_verify_result(const gev_tls_stream *t);
GEV_EXTERN const char *gev_tls_verify_message(const gev_tls_stream *t);

/* Non-zero when the handshake resumed an earlier session. */
GEV_EXTERN int gev_tls_session_reused(const gev_tls_stream *t);

/* Non-zero once the peer sent close_notify: a recv that returned 0 then
 * saw an orderly end, not a truncation. */
GEV_EXTERN int gev_tls_close_notified(const gev_tls_stream *t);

/* Switches a server stream to ctx (another server context: its
 * certificate and key), from an SNI callback. The stream keeps a
 * reference to ctx. 0, or -1: EINVAL (NULL, not a server context, not
 * during the handshake's SNI step), ENOMEM. */
GEV_EXTERN int gev_tls_set_ctx(gev_tls_stream *t, gev_tls_ctx *ctx);

/* The OpenSSL connection (borrowed), for what gev does not wrap. Never do
 * I/O on it directly. */
GEV_EXTERN struct ssl_st *gev_tls_openssl(gev_tls_stream *t);

/* Describes the calling thread's last failed gev_tls call (valid until
 * the next gev_tls call of the thread, like errno): OpenSSL's reason,
 * with verification details, e.g. "certificate verify failed: hostname
 * mismatch", or strerror(errno) for plain system errors. "" if none. */
GEV_EXTERN const char *gev_tls_last_error(void);

/* ---- Servers -------------------------------------------------------------
 *
 * A StreamServer (gev/server.h) whose connections speak TLS. Each
 * connection's handler greenlet first runs the handshake with ctx (a server
 * context), bounded by handshake_timeout seconds (<= 0: 10 s) so that a
 * client stalling mid-handshake cannot hold a handler slot; a connection
 * whose handshake fails or times out is closed without calling handler.
 * Then handler runs with the stream (borrowed, as the server's client
 * socket; its socket's timeout is back to -1). When handler returns the
 * server sends close_notify if the stream is still open and healthy
 * (without waiting for room in the socket) and closes it. opts, stopping,
 * caps and errors are those of gev_stream_server_new, plus EINVAL for a
 * NULL or client ctx, and for opts->threads > 1 (a TLS server serves from
 * its own thread only). The server holds a reference to ctx. */
typedef void (*gev_tls_handler_fn)(gev_server *srv, gev_tls_stream *client,
                                   const struct sockaddr *peer,
                                   socklen_t peerlen, void *arg);
GEV_EXTERN gev_server *gev_tls_server_new(const gev_server_opts *opts,
                                          gev_tls_ctx *ctx,
                                          double handshake_timeout,
                                          gev_tls_handler_fn handler,
                                          void *arg);

#ifdef __cplusplus
}
#endif
#endif
