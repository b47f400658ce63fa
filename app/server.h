/* server: event loops that run the handlers as coroutines, signals and graceful shutdown
 * (docs/architecture.md has the why):
 *
 * LOOPS threads, each with its own event_base, accepting in turn on one shared listening
 * socket, parse the request, route it, check the token and validate the parameters and body.
 * Answers that need no database (404, 405, 307, preflight, 401/403/413/422/431, and the RUN_LOOP
 * routes: /health, /metrics, /openapi.json, /docs, /redoc) are sent right there. Everything else
 * runs its synchronous-looking handler in a coroutine of the same loop (core/coro): the route's
 * session is opened, the handler runs, the session is closed. Whenever the handler waits on the
 * database (a free connection, a statement's result, a connect or a cancel moved to a helper
 * thread) the coroutine is suspended and the loop serves other requests. At most WORKERS handlers
 * are in progress at once in the whole process (one budget for all loops); further requests wait
 * their turn in arrival order.
 *
 * SIGTERM/SIGINT: stop accepting, let in-flight requests finish within SHUTDOWN_TIMEOUT, stop the
 * loops; server_run then returns and main closes the engine. */
#ifndef APP_SERVER_H
#define APP_SERVER_H

#include <stddef.h>

#include "app/config.h"
#include "db/engine.h"

/* What handlers share, set up once by main before server_run and read-only afterwards. */
typedef struct app_ctx {
    const app_config *cfg;
    db_engine *engine;
} app_ctx;

extern app_ctx app;

/* Binds, serves until a signal, shuts down. Returns 0 after a clean shutdown, 1 when it could not
 * listen or in-flight requests were still running at the deadline. Main thread only. */
int server_run(void);

#endif
