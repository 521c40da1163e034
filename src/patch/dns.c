/*
 * Name lookups: getaddrinfo, freeaddrinfo, gethostbyname, gethostbyname_r
 * through gev's resolver (gev/dns.h).
 *
 * gev's addrinfo lists are laid out differently from libc's (one block per
 * entry), so each must be freed by the library that made it. gev keeps
 * the lists it handed out in a small registry; freeaddrinfo frees those
 * with gev_freeaddrinfo and gives every other list to libc. The registry
 * is process-wide (a list may be freed by another thread) under a mutex.
 *
 * getaddrinfo hints gev does not know (glibc's AI_IDN family) and address
 * families other than AF_UNSPEC/AF_INET/AF_INET6 go to libc's call, which
 * then blocks the thread as it always did.
 */
#include "coop.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gev/dns.h"

/* ---- Registry of gev's lists --------------------------------------------- */

static pthread_mutex_t lists_lock = PTHREAD_MUTEX_INITIALIZER;
static struct addrinfo **lists;
static size_t nlists, lists_cap;

static int remember(struct addrinfo *ai) {
  int rc = 0;
  pthread_mutex_lock(&lists_lock);
  if (nlists == lists_cap) {
    size_t cap = lists_cap ? lists_cap * 2 : 16;
    struct addrinfo **l = realloc(lists, cap * sizeof *l);
    if (l) {
      lists = l;
      lists_cap = cap;
    } else {
      rc = -1;
    }
  }
  if (rc == 0)
    lists[nlists++] = ai;
  pthread_mutex_unlock(&lists_lock);
  return rc;
}

/* Removes ai from the registry; non-zero if it was there. Searches from
 * the newest entry: lists are usually freed soon after they are made. */
static int take_back(struct addrinfo *ai) {
  int found = 0;
  pthread_mutex_lock(&lists_lock);
  for (size_t i = nlists; i-- > 0;) {
    if (lists[i] == ai) {
      lists[i] = lists[--nlists];
      found = 1;
      break;
    }
  }
  if (nlists == 0) { /* give the memory back while idle (leak checks) */
    free(lists);
    lists = NULL;
    lists_cap = 0;
  }
  pthread_mutex_unlock(&lists_lock);
  return found;
}

size_t gev__patch_addrinfo_count(void) {
  size_t n;
  pthread_mutex_lock(&lists_lock);
  n = nlists;
  pthread_mutex_unlock(&lists_lock);
  return n;
}

/* ---- getaddrinfo --------------------------------------------------------- */

#define GEV_AI_FLAGS                                                           \
  (AI_PASSIVE | AI_CANONNAME | AI_NUMERICHOST | AI_NUMERICSERV | AI_V4MAPPED | \
   AI_ALL | AI_ADDRCONFIG)

static int gev_can_answer(const struct addrinfo *hints) {
  return !hints ||
         (!(hints->ai_flags & ~GEV_AI_FLAGS) &&
          (hints->ai_family == AF_UNSPEC || hints->ai_family == AF_INET ||
           hints->ai_family == AF_INET6));
}

GEV_PATCH_EXPORT int getaddrinfo(const char *restrict node,
                                 const char *restrict service,
                                 const struct addrinfo *restrict hints,
                                 struct addrinfo **restrict res) {
  int rc;
  if (!res || !gev_can_answer(hints) || !gev__patch_coop())
    return GEV_REAL(getaddrinfo)(node, service, hints, res);
  rc = gev_getaddrinfo(node, service, hints, res);
  if (rc == 0 && remember(*res) < 0) {
    gev_freeaddrinfo(*res);
    *res = NULL;
    return EAI_MEMORY;
  }
  return rc;
}

GEV_PATCH_EXPORT void freeaddrinfo(struct addrinfo *ai) {
  if (ai && take_back(ai))
    gev_freeaddrinfo(ai);
  else
    GEV_REAL(freeaddrinfo)(ai);
}

/* ---- gethostbyname ------------------------------------------------------- */

/* h_errno for a failed gev lookup. */
static int herror_of(int eai) {
  switch (eai) {
  case EAI_NONAME:
    return HOST_NOT_FOUND;
  case EAI_NODATA:
    return NO_DATA;
  case EAI_AGAIN:
    return TRY_AGAIN;
  case EAI_SYSTEM:
    return errno == ETIMEDOUT ? TRY_AGAIN : NO_RECOVERY;
  default:
    return NO_RECOVERY;
  }
}

/* The calling thread's last gethostbyname result, freed by its next call
 * or when the thread exits. */
static pthread_key_t hostent_key;
static pthread_once_t hostent_once = PTHREAD_ONCE_INIT;

static void free_hostent(void *h) { gev_freehostent(h); }
static void make_hostent_key(void) {
  pthread_key_create(&hostent_key, free_hostent);
}

GEV_PATCH_EXPORT struct hostent *gethostbyname(const char *name) {
  struct hostent *h;
  int rc;
  if (!gev__patch_coop())
    return GEV_REAL(gethostbyname)(name);
  pthread_once(&hostent_once, make_hostent_key);
  rc = gev_gethostbyname_ex(name, AF_INET, &h);
  if (rc != 0) {
    h_errno = herror_of(rc);
    return NULL;
  }
  gev_freehostent(pthread_getspecific(hostent_key));
  pthread_setspecific(hostent_key, h);
  return h;
}

/* Bump allocator over the caller's buffer for gethostbyname_r. */
typedef struct arena {
  char *p;
  size_t left;
} arena;

static void *arena_take(arena *a, size_t n, size_t align) {
  size_t pad = (align - (uintptr_t)a->p % align) % align;
  void *r;
  if (pad + n > a->left)
    return NULL;
  r = a->p + pad;
  a->p += pad + n;
  a->left -= pad + n;
  return r;
}

static char *arena_strdup(arena *a, const char *s) {
  size_t n = strlen(s) + 1;
  char *d = arena_take(a, n, 1);
  return d ? memcpy(d, s, n) : NULL;
}

static size_t count(char **list) {
  size_t n = 0;
  while (list && list[n])
    n++;
  return n;
}

/* Copies h into ret and buf. 0, or ERANGE when buf is too small. */
static int copy_hostent(const struct hostent *h, struct hostent *ret, char *buf,
                        size_t buflen) {
  arena a = {buf, buflen};
  size_t naliases = count(h->h_aliases), naddrs = count(h->h_addr_list);
  char **aliases =
      arena_take(&a, (naliases + 1) * sizeof *aliases, _Alignof(char *));
  char **addrs = arena_take(&a, (naddrs + 1) * sizeof *addrs, _Alignof(char *));
  if (!aliases || !addrs || !(ret->h_name = arena_strdup(&a, h->h_name)))
    return ERANGE;
  for (size_t i = 0; i < naliases; i++)
    if (!(aliases[i] = arena_strdup(&a, h->h_aliases[i])))
      return ERANGE;
  for (size_t i = 0; i < naddrs; i++) {
    if (!(addrs[i] = arena_take(&a, (size_t)h->h_length, 8)))
      return ERANGE;
    memcpy(addrs[i], h->h_addr_list[i], (size_t)h->h_length);
  }
  aliases[naliases] = NULL;
  addrs[naddrs] = NULL;
  ret->h_aliases = aliases;
  ret->h_addr_list = addrs;
  ret->h_addrtype = h->h_addrtype;
  ret->h_length = h->h_length;
  return 0;
}

/* As glibc: 0 with *result NULL and *h_errnop set when the name has no
 * address; an error number (ERANGE: buf too small, ENOMEM, or gev's
 * ECANCELED / ETIMEDOUT) with *result NULL otherwise. */
GEV_PATCH_EXPORT int gethostbyname_r(const char *restrict name,
                                     struct hostent *restrict ret,
                                     char *restrict buf, size_t buflen,
                                     struct hostent **restrict result,
                                     int *restrict h_errnop) {
  struct hostent *h;
  int rc;
  if (!ret || !buf || !result || !h_errnop || !gev__patch_coop())
    return GEV_REAL(gethostbyname_r)(name, ret, buf, buflen, result, h_errnop);
  *result = NULL;
  rc = gev_gethostbyname_ex(name, AF_INET, &h);
  if (rc != 0) {
    *h_errnop = herror_of(rc);
    if (rc == EAI_SYSTEM)
      return errno;
    return rc == EAI_MEMORY ? ENOMEM : 0;
  }
  rc = copy_hostent(h, ret, buf, buflen);
  gev_freehostent(h);
  if (rc == 0)
    *result = ret;
  else
    *h_errnop = NETDB_INTERNAL;
  return rc;
}
