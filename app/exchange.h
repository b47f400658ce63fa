/* exchange: one request in flight, from wire's callback to the reply; shared by server.c (loops,
 * handler coroutines) and dispatch.c (what happens to a request). Internal to the server.
 *
 * Lifecycle, all on the owning loop's thread: dispatch_request fills it and either answers at once
 * or returns it for a handler; dispatch_run (in a coroutine) runs the handler and touches only
 * req/res; dispatch_finish (back on the loop's own stack) sends the reply and recycles it.
 */
#ifndef APP_EXCHANGE_H
#define APP_EXCHANGE_H

#include "app/auth.h"
#include "app/http.h"
#include "app/router.h"
#include "app/wire.h"

struct loop;

/* Query parameters kept per request; later ones are ignored (no route declares this many). */
#define EXCHANGE_MAX_QUERY 32

typedef struct exchange {
    http_request req;
    http_response res;
    route_match match;
    wire_request *wr; /* the connection's (wire.h), until the reply */
    struct loop *loop;
    double t0;
    const char *method;
    char *query; /* malloc'd copy of the query string, decoded in place */
    const char *qkey[EXCHANGE_MAX_QUERY], *qval[EXCHANGE_MAX_QUERY]; /* pairs, into `query` */
    int nquery;
    bool head; /* a HEAD request: routed as GET, answered without the body */
    bool cors; /* the request's Origin is allowed: echo it */
    char origin[256];
    char request_id[72];
    char user_id[AUTH_SUB_MAX];
    char *auth_retry; /* malloc'd Authorization to verify again after a JWKS fetch, or NULL */
    char idempotency_key[256];
    struct exchange *next;
} exchange;

/* Handles a request on its loop thread. Returns NULL when the reply was sent (the exchange is
 * recycled), or the exchange whose handler must run (dispatch_run). */
exchange *dispatch_request(struct loop *lp, wire_request *wr);

/* wire's head check (wire.h, wire_head_fn; `loop` is the connection's loop): a request to a route
 * that needs a token, whose head has none that is valid (or whose token's user is not the path's),
 * is answered here, 401 or 403 as dispatch_request would, before its body is read. Any other head,
 * and a token signed with a key the JWKS has not shown yet, goes on: NULL. */
char *dispatch_head(void *loop, const wire_head *head, size_t *len);

/* Runs the route's handler with its session (in a coroutine). Always leaves a response. */
void dispatch_run(exchange *x);

/* Sends the response, writes the access log line and metrics, recycles x (owning loop thread). */
void dispatch_finish(exchange *x);

/* Per-loop exchange recycling (loop thread only; server.c). */
exchange *loop_exchange_get(struct loop *lp);
void loop_exchange_put(struct loop *lp, exchange *x);
/* The loop's cache of verified tokens (loop thread only). */
auth_cache *loop_auth_cache(struct loop *lp);

/* Monotonic clock in seconds (request durations). Any thread. */
double now_seconds(void);

/* True once SIGTERM/SIGINT started the drain: replies then close their connection. Any thread. */
bool server_draining(void);

#endif
