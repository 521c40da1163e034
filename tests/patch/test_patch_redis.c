/* hiredis, unmodified and blocking, through the cooperative libc, against
 * a redis-server the test starts on a loopback port: 1,000 greenlets each
 * wait in BLPOP (with a timeout) on their own connection while another
 * greenlet pushes 1,000 values; every popper gets exactly one. A Timeout
 * scope ends a BLPOP with an I/O error instead of hanging. */
#define _GNU_SOURCE
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>

#include "patchtest.h"
#include "servers.h"

static redis_server redis;

enum { POPPERS = 1000 };

typedef struct pop {
  int ok;
  long value;
  char error[192];
} pop;

static redisContext *connect_redis(char *error, size_t len) {
  redisContext *c = redisConnect("127.0.0.1", redis.port);
  if (!c || c->err) {
    snprintf(error, len, "connect: %s", c ? c->errstr : "no memory");
    if (c)
      redisFree(c);
    return NULL;
  }
  return c;
}

static void *popper(void *arg) {
  pop *p = arg;
  redisContext *c = connect_redis(p->error, sizeof p->error);
  redisReply *r;
  if (!c)
    return NULL;
  r = redisCommand(c, "BLPOP gev:queue 30");
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
    p->ok = 1;
    p->value = strtol(r->element[1]->str, NULL, 10);
  } else {
    snprintf(p->error, sizeof p->error, "BLPOP: %s",
             r ? "unexpected reply" : c->errstr);
  }
  if (r)
    freeReplyObject(r);
  redisFree(c);
  return NULL;
}

/* Pushes 0 .. n-1 once every popper is waiting (the server says so). */
static void *pusher(void *arg) {
  int n = I(arg);
  char error[192];
  redisContext *c = connect_redis(error, sizeof error);
  redisReply *r;
  if (!c)
    return gev_fail(EIO, "%s", error);
  for (;;) { /* wait until the poppers are all blocked in BLPOP */
    r = redisCommand(c, "INFO clients");
    int blocked = -1;
    char *line = r && r->type == REDIS_REPLY_STRING
                     ? strstr(r->str, "blocked_clients:")
                     : NULL;
    if (line)
      blocked = atoi(line + strlen("blocked_clients:"));
    if (r)
      freeReplyObject(r);
    if (blocked >= n || gev_sleep(0.05) < 0)
      break;
  }
  for (int i = 0; i < n; i++) {
    r = redisCommand(c, "RPUSH gev:queue %d", i);
    if (!r) {
      redisFree(c);
      return gev_fail(EIO, "RPUSH");
    }
    freeReplyObject(r);
  }
  redisFree(c);
  return NULL;
}

START_TEST(thousand_blpop_all_served) {
  int fds = gev_test_fd_count();
  pop *p = calloc(POPPERS, sizeof *p);
  char *seen = calloc(POPPERS, 1);
  for (int i = 0; i < POPPERS; i++)
    pt_spawn(popper, &p[i]);
  gev_greenlet *push = pt_spawn(pusher, P(POPPERS));
  pt_join_all(120);
  (void)push;
  for (int i = 0; i < POPPERS; i++) {
    ck_assert_msg(p[i].ok, "popper %d: %s", i, p[i].error);
    ck_assert(p[i].value >= 0 && p[i].value < POPPERS);
    ck_assert_msg(!seen[p[i].value], "value %ld popped twice", p[i].value);
    seen[p[i].value] = 1;
  }
  free(seen);
  free(p);
  pt_all_clean(fds);
}
END_TEST

typedef struct timed_pop {
  int ok, err;
  char error[192];
  double took;
} timed_pop;

static void *pop_in_scope(void *arg) {
  timed_pop *t = arg;
  redisContext *c = connect_redis(t->error, sizeof t->error);
  if (!c)
    return NULL;
  gev_timeout *scope = gev_timeout_start(0.3);
  double t0 = pt_now();
  redisReply *r = redisCommand(c, "BLPOP gev:empty 30");
  t->took = pt_now() - t0;
  gev_timeout_cancel(scope);
  t->ok = r != NULL;
  t->err = c->err;
  snprintf(t->error, sizeof t->error, "%s", c->errstr);
  if (r)
    freeReplyObject(r);
  redisFree(c);
  return NULL;
}

START_TEST(timeout_scope_ends_blpop) {
  int fds = gev_test_fd_count();
  timed_pop *t = calloc(1, sizeof *t);
  pt_spawn(pop_in_scope, t);
  pt_join_all(20);
  ck_assert(!t->ok);
  ck_assert_int_eq(t->err, REDIS_ERR_IO);
  ck_assert_msg(strstr(t->error, strerror(ETIMEDOUT)), "error: %s", t->error);
  ck_assert(t->took >= 0.25);
  ck_assert_msg(t->took < 10, "took %.2f s", t->took);
  free(t);
  pt_all_clean(fds);
}
END_TEST

static Suite *patch_redis_suite(void) {
  Suite *s = suite_create("patch_redis");
  TCase *tc = tcase_create("hiredis");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, thousand_blpop_all_served);
  tcase_add_test(tc, timeout_scope_ends_blpop);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  int rc = redis_server_start(&redis, getenv("GEV_REDIS_SERVER"));
  if (rc != 0)
    return rc == 77 ? 77 : EXIT_FAILURE;
  rc = gev_test_run(patch_redis_suite());
  redis_server_stop(&redis);
  return rc;
}
