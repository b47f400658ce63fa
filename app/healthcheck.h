/* healthcheck: `api --healthcheck`, the container's HEALTHCHECK without curl in the image. */
#ifndef APP_HEALTHCHECK_H
#define APP_HEALTHCHECK_H

/* Sends GET /health to the server configured by HOST/PORT (a wildcard HOST such as 0.0.0.0 or ::
 * means this machine: 127.0.0.1 / ::1) and waits at most `timeout` seconds for the status line.
 * Returns the exit code Docker expects: 0 when the answer is 200, 1 otherwise (with one line on
 * stderr saying why). Blocking, no event loop; starts no threads. */
int healthcheck_run(const char *host, int port, double timeout);

#endif
