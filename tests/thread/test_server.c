/* Servers over several threads: one hub and listener per thread
 * (SO_REUSEPORT) or one shared listener, a clean stop of every thread,
 * and examples/httpd --threads 2 as a black box. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../examples/example_proc.h"
#include "gev/server.h"
#include "threadtest.h"

/* ---- The handlers' threads -------------------------------------------------
 */

enum { MAX_SEEN = 16 };
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t seen[MAX_SEEN];
static int nseen, served;

static void note_thread(void) {
  pthread_t self = pthread_self();
  pthread_mutex_lock(&seen_lock);
  int i = 0;
  while (i < nseen && !pthread_equal(seen[i], self))
    i++;
  if (i == nseen && nseen < MAX_SEEN)
    seen[nseen++] = self;
  served++;
  pthread_mutex_unlock(&seen_lock);
}

static void answer(gev_server *srv, gev_socket *client,
                   const struct sockaddr *peer, socklen_t peerlen, void *arg) {
  (void)srv, (void)peer, (void)peerlen, (void)arg;
  note_thread();
  gev_socket_sendall(client, "ok\n", 3, 0);
}

/* A plain thread of clients: n connections, each reads "ok". */
typedef struct clients {
  int port, n, ok;
  gev_event *done;
} clients;

static void *run_clients(void *arg) {
  clients *c = arg;
  char buf[16];
  int eof;
  usleep(50000); /* every thread has its listener by now */
  for (int i = 0; i < c->n; i++) {
    int fd = ex_connect(c->port);
    if (ex_read(fd, buf, sizeof buf, 5000, &eof) == 3 && !strcmp(buf, "ok\n"))
      c->ok++;
    close(fd);
  }
  gev_event_set(c->done);
  return NULL;
}

static void reset_seen(void) {
  pthread_mutex_lock(&seen_lock);
  nseen = served = 0;
  pthread_mutex_unlock(&seen_lock);
}

/* Serves n connections with opts, then stops; returns the threads seen. */
static int serve_clients(gev_server_opts *opts, int n) {
  clients c = {.n = n, .done = gev_event_new()};
  reset_seen();
  gev_server *srv = gev_stream_server_new(opts, answer, NULL);
  ck_assert_ptr_nonnull(srv);
  c.port = gev_server_port(srv);
  ck_assert_int_eq(gev_server_start(srv), 0);
  pthread_t tid = plain_thread_start(run_clients, &c);
  ck_assert_int_eq(gev_event_wait(c.done, 60), 0);
  ck_assert_int_eq(pthread_join(tid, NULL), 0);
  ck_assert_int_eq(c.ok, n);
  ck_assert_int_eq(gev_server_stop(srv, 5), 0);
  ck_assert_int_eq(gev_server_free(srv), 0);
  gev_event_free(c.done);
  pthread_mutex_lock(&seen_lock);
  int threads = nseen;
  ck_assert_int_eq(served, n);
  pthread_mutex_unlock(&seen_lock);
  return threads;
}

START_TEST(reuseport_listeners_over_three_threads) {
  thread_test_begin();
  gev_server_opts opts = {.host = "127.0.0.1", .threads = 3};
  int threads = serve_clients(&opts, 60);
  ck_assert_int_gt(threads, 1);
  ck_assert_int_le(threads, 3);
  thread_test_end();
}
END_TEST

START_TEST(one_shared_listener_over_two_threads) {
  thread_test_begin();
  gev_socket *ls = gev_socket_listen_tcp("127.0.0.1", 0, 128, 0);
  ck_assert_ptr_nonnull(ls);
  gev_server_opts opts = {.listener = ls, .threads = 2};
  int threads = serve_clients(&opts, 30);
  ck_assert_int_ge(threads, 1);
  ck_assert_int_le(threads, 2);
  thread_test_end();
}
END_TEST

/* ---- Stopping from another thread -----------------------------------------
 */

static gev_server *forever_srv;

static void *nothing(void *arg) { return arg; }

static void close_it(void *arg) { gev_server_close(arg); }

static void *stop_later(void *arg) {
  usleep(50000);
  gev_run_callback_threadsafe(arg, close_it, forever_srv);
  return NULL;
}

START_TEST(serve_forever_stops_every_thread) {
  thread_test_begin();
  gev_server_opts opts = {.host = "127.0.0.1", .threads = 4};
  forever_srv = gev_stream_server_new(&opts, answer, NULL);
  ck_assert_ptr_nonnull(forever_srv);
  gev_hub *me = gev_hub_current();
  /* (A sanitizer runtime may start a thread of its own with the first
   * thread the program makes: count after one.) */
  ck_assert_int_eq(pthread_join(plain_thread_start(nothing, NULL), NULL), 0);
  int before = process_threads();
  pthread_t tid = plain_thread_start(stop_later, me);
  ck_assert_int_eq(gev_server_serve_forever(forever_srv), 0);
  ck_assert_int_eq(pthread_join(tid, NULL), 0);
  /* Every server thread has ended (joined). */
  ck_assert_int_le(process_threads(), before);
  ck_assert_int_eq(gev_server_free(forever_srv), 0);
  gev_hub_unref(me);
  /* Bad counts. */
  opts.threads = -1;
  ck_assert_ptr_null(gev_stream_server_new(&opts, answer, NULL));
  ck_assert_int_eq(errno, EINVAL);
  thread_test_end();
}
END_TEST

/* ---- examples/httpd --threads 2 ---------------------------------------------
 */

/* Reads from fd until n responses ("Hello, World!" bodies) are in buf. */
static void read_responses(int fd, char *buf, size_t size, int n) {
  size_t len = 0;
  buf[0] = '\0';
  while (ex_count(buf, "Hello, World!") < n && len < size - 1) {
    ck_assert_msg(ex_readable(fd, 5000), "no response");
    ssize_t got = recv(fd, buf + len, size - 1 - len, 0);
    ck_assert_int_gt(got, 0);
    len += (size_t)got;
    buf[len] = '\0';
  }
}

START_TEST(httpd_threads_serves_and_stops) {
  static const char *const args[] = {"--port", "0", "--threads", "2", NULL};
  static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  example_proc p;
  char buf[4096];
  int eof;
  thread_test_begin();
  ex_start(&p, "httpd", args);
  for (int i = 0; i < 20; i++) {
    int fd = ex_connect(p.port);
    ex_send(fd, req, sizeof req - 1);
    ex_send(fd, req, sizeof req - 1);
    read_responses(fd, buf, sizeof buf, 2);
    ck_assert_int_eq(ex_count(buf, "HTTP/1.1 200 OK"), 2);
    close(fd);
  }
  /* A keep-alive connection open while the server stops is closed. */
  int idle = ex_connect(p.port);
  ex_send(idle, req, sizeof req - 1);
  read_responses(idle, buf, sizeof buf, 1);
  ck_assert_int_eq(ex_count(buf, "HTTP/1.1 200 OK"), 1);
  ex_stop(&p, SIGTERM);
  ex_read(idle, buf, sizeof buf, 5000, &eof);
  ck_assert(eof);
  close(idle);
  thread_test_end();
}
END_TEST

static Suite *server_suite(void) {
  Suite *s = suite_create("thread_server");
  TCase *tc = tcase_create("thread_server");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, reuseport_listeners_over_three_threads);
  tcase_add_test(tc, one_shared_listener_over_two_threads);
  tcase_add_test(tc, serve_forever_stops_every_thread);
  tcase_add_test(tc, httpd_threads_serves_and_stops);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(server_suite)
