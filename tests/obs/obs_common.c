#define _GNU_SOURCE
#include "obs_common.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gev/hub.h"
#include "gev/log.h"
#include "gev/sync.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *text;
static size_t len;

static void keep(gev_log_level level, const char *msg, void *arg) {
  size_t n = strlen(msg);
  (void)level, (void)arg;
  pthread_mutex_lock(&lock);
  char *grown = realloc(text, len + n + 2);
  if (grown) {
    text = grown;
    memcpy(text + len, msg, n);
    text[len + n] = '\n';
    text[len + n + 1] = '\0';
    len += n + 1;
  }
  pthread_mutex_unlock(&lock);
}

void obs_log_capture(void) {
  pthread_mutex_lock(&lock);
  free(text);
  text = NULL;
  len = 0;
  pthread_mutex_unlock(&lock);
  gev_set_log_fn(keep, NULL);
}

char *obs_log_text(void) {
  pthread_mutex_lock(&lock);
  char *copy = strdup(text ? text : "");
  pthread_mutex_unlock(&lock);
  return copy;
}

int obs_log_count(const char *needle) {
  char *all = obs_log_text();
  int n = 0;
  for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n"))
    n += strstr(line, needle) != NULL;
  free(all);
  return n;
}

void obs_log_release(void) {
  gev_set_log_fn(NULL, NULL);
  pthread_mutex_lock(&lock);
  free(text);
  text = NULL;
  len = 0;
  pthread_mutex_unlock(&lock);
}

__attribute__((noinline)) void obs_busy_spin(double seconds) {
  double end = gev_monotonic() + seconds;
  while (gev_monotonic() < end)
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void obs_park_in_alpha(double seconds) {
  gev_sleep(seconds);
  __asm__ volatile("" ::: "memory"); /* no tail call: keep this frame */
}

__attribute__((noinline)) void obs_park_in_beta(void *event) {
  gev_event_wait(event, -1);
  __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void obs_park_in_gamma(double seconds) {
  gev_sleep(seconds);
  __asm__ volatile("" ::: "memory");
}
