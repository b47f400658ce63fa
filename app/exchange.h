/* exchange: one request in flight, from evhttp's callback to the reply; shared by server.c (loops,
 * workers) and dispatch.c (what happens to a request). Internal to the server.
 *
 * Lifecycle: dispatch_request (loop thread) fills it and either answers at once or returns it for
 * a worker; worker_run (worker thread) runs the handler and touches only req/res; dispatch_finish
 * (the owning loop thread again) sends the reply and recycles it. `ev` is never used off the loop.
 */
#ifndef APP_EXCHANGE_H
#define APP_EXCHANGE_H

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "app/auth.h"
#include "app/http.h"
#include "app/router.h"

struct loop;

typedef struct exchange {
    http_request req;
    http_response res;
    route_match match;
    struct evhttp_request *ev;
    struct loop *loop;
    double t0;
    double t_queued, t_started, t_posted; /* hand-off timing (worker routes) */
    const char *method;
    struct evkeyvalq query;
    bool query_parsed;
    bool cors; /* the request's Origin is allowed: echo it */
    char origin[256];
    char request_id[72];
    char user_id[AUTH_SUB_MAX];
    char idempotency_key[256];
    struct exchange *next;
} exchange;

/* Handles a request on its loop thread. Returns NULL when the reply was sent (the exchange is
 * recycled), or the exchange to run on a worker. */
exchange *dispatch_request(struct loop *lp, struct evhttp_request *ev);

/* Runs the route's handler with its session (worker thread). Always leaves a response. */
void dispatch_run(exchange *x);

/* Sends the response, writes the access log line and metrics, recycles x (owning loop thread). */
void dispatch_finish(exchange *x);

/* Per-loop exchange recycling (loop thread only; server.c). */
exchange *loop_exchange_get(struct loop *lp);
void loop_exchange_put(struct loop *lp, exchange *x);
/* The loop's cache of verified tokens (loop thread only). */
auth_cache *loop_auth_cache(struct loop *lp);
/* The loop's reusable output buffer (loop thread only). */
struct evbuffer *loop_buffer(struct loop *lp);

double now_seconds(void);

#endif
