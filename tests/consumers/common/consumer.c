/* A program as a user of an installed gev writes it: spawn, join, read the
 * values. Exits 0 only if everything worked. */
#include <gev.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void *twice(void *arg) {
  if (gev_sleep(0.01) < 0)
    return NULL;
  return (void *)((intptr_t)arg * 2);
}

int main(void) {
  gev_greenlet *g[2];
  void *v[2] = {0};
  int ok;
  if (strcmp(gev_version(), GEV_VERSION_STRING) != 0) {
    fprintf(stderr, "header %s, library %s\n", GEV_VERSION_STRING,
            gev_version());
    return 1;
  }
  g[0] = gev_spawn(twice, (void *)20);
  g[1] = gev_spawn(twice, (void *)1);
  ok = gev_joinall(g, 2, 5.0, 0, 0) == 2 &&
       gev_greenlet_get(g[0], 0, &v[0]) == 0 &&
       gev_greenlet_get(g[1], 0, &v[1]) == 0;
  gev_greenlet_unref(g[0]);
  gev_greenlet_unref(g[1]);
  gev_hub_destroy();
  ok = ok && (intptr_t)v[0] + (intptr_t)v[1] == 42;
  printf("gev %s consumer: %s\n", gev_version(), ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
