/* Test helper: a small, misbehaving DNS server written with gev, run in a
 * forked child process. What it does depends on the first label of the
 * name asked (prefix match):
 *   drop...      never answers (counted in drops)
 *   slow<ms>...  answers A 10.1.2.3 after <ms> milliseconds
 *   trunc...     over UDP: an empty answer with TC set; over TCP: A 10.9.9.9
 *   garbage...   sends junk bytes, then an answer with a wrong ID
 *                (A 6.6.6.6), then the right answer (A 10.1.2.3)
 *   onlygarbage... junk and the wrong-ID answer only
 *   badanswer... right ID, malformed body
 *   servfail..., refused..., nx...  that rcode
 *   anything else: A 10.1.2.3, AAAA fd00::1, other types no data.
 */
#ifndef GEV_TESTS_RESPONDER_H
#define GEV_TESTS_RESPONDER_H

#include <sys/types.h>

typedef struct responder_counts {
  volatile int udp;   /* UDP queries received */
  volatile int tcp;   /* TCP queries received */
  volatile int drops; /* queries deliberately not answered */
} responder_counts;

typedef struct responder {
  pid_t pid;
  int port;
  responder_counts *counts; /* shared with the child */
} responder;

/* Starts it on 127.0.0.1:<free port> (UDP and TCP). Call before the test
 * process uses gev (the child must not inherit a hub). 0 or -1. */
int responder_start(responder *r);
/* "127.0.0.1:<port>" into buf. */
void responder_server(const responder *r, char *buf, size_t len);
void responder_stop(responder *r);

#endif
