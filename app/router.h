/* router: the route table's types and the lookup that drives dispatch, 404, 405 + Allow, CORS
 * preflight and FastAPI's 307 trailing-slash redirect. The table itself lives in routes.c; the same
 * table feeds /openapi.json (openapi.c).
 *
 * A route is pure data: method, path template with typed parameters, handler, how the handler runs
 * (on the event loop, or in a coroutine with a read-only or read-write session), whether it needs a
 * bearer token, and the OpenAPI metadata. Thread: router_init once at startup; router_match is
 * read-only afterwards and safe from any thread. */
#ifndef APP_ROUTER_H
#define APP_ROUTER_H

#include <stdbool.h>

#include "app/http.h"
#include "app/validate.h"
#include "db/engine.h"

/* How a route's handler runs:
 *   RUN_LOOP      on the event loop thread, session NULL (no database: /health, /openapi.json)
 *   RUN_OWN_SESSION in a coroutine, session NULL (the handler opens what it needs: /ready)
 *   RUN_READ      in a coroutine with a read-only session (a DATABASE_URL_RO replica may serve
 *                 it; pipelined with other requests' reads, see db/pipe.h)
 *   RUN_WRITE     in a coroutine with a read-write session */
typedef enum { RUN_LOOP, RUN_OWN_SESSION, RUN_READ, RUN_WRITE } route_run;

struct db_session;
typedef int (*http_handler)(const http_request *req, db_session *s, http_response *res);

typedef struct route {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* template: "/api/{user_id}/tasks/{id}" */
    http_handler handler;
    route_run run;
    bool auth;                /* bearer JWT required; {user_id} in the path must equal its sub */
    const param_spec *params; /* path and query parameters, NULL-name terminated, may be NULL */
    const body_spec *body;    /* JSON body, or NULL */
    bool idempotency_key;     /* accepts an Idempotency-Key header */
    /* OpenAPI */
    const char *operation_id, *summary, *tag;
    int status;              /* success status (200, 201, 204) */
    const char *response;    /* success schema: "Task", "Task[]" (array of), or NULL */
    const char *description; /* success response description */
    const int *errors;       /* documented error statuses, 0-terminated, may be NULL */
    bool hidden;             /* left out of /openapi.json (/docs, /openapi.json itself) */
} route;

/* The table (routes.c). */
extern const route app_routes[];
extern const int app_nroutes;

typedef enum { MATCH_FOUND, MATCH_NOT_FOUND, MATCH_NO_METHOD, MATCH_REDIRECT } match_kind;

typedef struct route_match {
    match_kind kind;
    const route *route;              /* MATCH_FOUND */
    int index;                       /* index of route in app_routes, -1 when none */
    char *segments[HTTP_MAX_PARAMS]; /* MATCH_FOUND: decoded path parameter values, malloc'd */
    char allow[96];                  /* MATCH_NO_METHOD and preflight: "GET, PUT, DELETE" */
} route_match;

/* Checks the table (unique operationIds, parameters named in templates declared as PARAM_PATH,
 * at most HTTP_MAX_PARAMS). Returns 0, or -1 with a message: the table is broken. */
int router_init(char *err, size_t errlen);

/* Looks up method + raw path (percent-encoded, without query). For MATCH_FOUND the path parameter
 * values are decoded into m->segments (free with router_match_free). MATCH_REDIRECT: the path with
 * its trailing slash removed matches a route (any method); the caller sends 307. MATCH_NO_METHOD:
 * the path matches but not the method; m->allow lists the methods. A `method` of NULL only
 * computes allow (CORS preflight): kind is MATCH_NO_METHOD when the path exists. */
void router_match(const char *method, const char *path, route_match *m);

void router_match_free(route_match *m);

#endif
