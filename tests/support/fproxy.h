/* fproxy: a suite's handle on tests/tools/faultproxy (the fault and delay proxy) between a client
 * and the suite's database. Compile fproxy.c into the suite and define FAULTPROXY_BIN (the
 * binary's path) for it. Failures abort the current test (cr_assert). */
#ifndef TESTS_SUPPORT_FPROXY_H
#define TESTS_SUPPORT_FPROXY_H

#include <sys/types.h>

typedef struct fproxy {
    pid_t pid;
    int port;    /* where clients connect */
    int control; /* the control port */
} fproxy;

/* Starts the proxy in front of the host and port of `url` (a libpq URL or key=value string). */
void fproxy_start(fproxy *p, const char *url);

/* `url` with the proxy's host and port (malloc'd, key=value form). */
char *fproxy_url(const fproxy *p, const char *url);

/* One control command ("delay 10", "zero", ...); returns the answer line (static buffer). */
const char *fproxy_cmd(const fproxy *p, const char *cmd);

/* A counter of `stats` (turns, conns, accepted, ...). */
long fproxy_stat(const fproxy *p, const char *name);

/* SIGTERM, waits. Nothing when it was not started. */
void fproxy_stop(fproxy *p);

#endif
