/* server: event loops for HTTP I/O, a pool of worker threads for handlers, signals and graceful
 * shutdown. FastAPI's model in C (docs/architecture.md has the why and the measurements):
 *
 *   LOOPS threads, each with its own event_base + evhttp on a shared port (SO_REUSEPORT), parse
 *   the request, route it, check the token and validate the parameters and body. Answers that need
 *   no database (health, 404, 405, 307, preflight, 401/403/413/422/431, /openapi.json) are sent
 *   right there. Everything else becomes a job for one of WORKERS threads, which opens the route's
 *   session (read-only or read-write), runs the synchronous handler, closes the session, and posts
 *   the finished response back to the loop that owns the connection (one event_active per batch).
 *   evhttp objects are only ever touched by their own loop thread.
 *
 * SIGTERM/SIGINT: stop accepting, let in-flight requests finish within SHUTDOWN_TIMEOUT, stop the
 * loops and workers; server_run then returns and main closes the engine. */
#ifndef APP_SERVER_H
#define APP_SERVER_H

#include <stddef.h>

#include "app/config.h"
#include "db/engine.h"

/* What handlers share, set up once by main before server_run and read-only afterwards. */
typedef struct app_ctx {
    const app_config *cfg;
    db_engine *engine;
    char *openapi_json; /* the generated document (openapi.c), owned here */
    size_t openapi_len;
} app_ctx;

extern app_ctx app;

/* Binds, serves until a signal, shuts down. Returns 0 after a clean shutdown, 1 when it could not
 * listen or in-flight requests were still running at the deadline. Main thread only. */
int server_run(void);

#endif
