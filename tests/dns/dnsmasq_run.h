/* Test helper: a real dnsmasq on a free loopback port, for the dns and
 * examples suites. */
#ifndef GEV_TESTS_DNSMASQ_RUN_H
#define GEV_TESTS_DNSMASQ_RUN_H

#include <sys/types.h>

typedef struct dnsmasq_run {
  pid_t pid;
  int port;
  char dir[64]; /* temporary directory with hosts file and log */
} dnsmasq_run;

/* Writes hosts (hosts-file lines) to a temporary file and starts
 * dnsmasq answering only from it on 127.0.0.1:<free port>, with the
 * domains "test", "in-addr.arpa" and "ip6.arpa" local (unknown names get
 * NXDOMAIN) and extra dnsmasq options (NULL-terminated, may be NULL).
 * Returns 0 once it answers TCP connections, -1 (message on stderr)
 * otherwise. dnsmasq dies with the calling process. */
int dnsmasq_start(dnsmasq_run *d, const char *hosts, const char *const *extra);
/* "127.0.0.1:<port>" into buf. */
void dnsmasq_server(const dnsmasq_run *d, char *buf, size_t len);
/* Stops it and removes its files. */
void dnsmasq_stop(dnsmasq_run *d);

#endif
