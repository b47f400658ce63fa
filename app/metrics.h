/* metrics: Prometheus text exposition for GET /metrics. Requests counted by route template and
 * status, a latency histogram per route template, and the engine's pool figures.
 * Thread: metrics_observe from any thread (one uncontended mutex, ~50 ns); metrics_render from any
 * thread. Unmatched requests are counted under route="unmatched" so scanners cannot blow up the
 * label set. */
#ifndef APP_METRICS_H
#define APP_METRICS_H

#include "db/engine.h"

/* Records one finished request: route index into app_routes (-1: unmatched), status, seconds. */
void metrics_observe(int route_index, int status, double seconds);

/* Records how long a request waited for a free handler (only requests that had to wait). */
void metrics_handler_wait(double seconds);

/* The server's loop count (server_run, before serving): one accepted-connections series each. */
void metrics_set_loops(int loops);

/* Records a connection accepted by loop `loop` (0 .. loops-1). */
void metrics_connection_accepted(int loop);

/* Returns the exposition text (malloc'd, caller frees). engine may be NULL (no pool figures). */
char *metrics_render(db_engine *engine);

#endif
