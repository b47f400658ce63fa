/* router: the route table's types and the lookup that drives dispatch, 404, 405 + Allow, CORS
 * preflight and FastAPI's 307 trailing-slash redirect. The table itself lives in routes.c; the same
 * table feeds /openapi.json (openapi.c).
 *
 * A route is pure data: method, path template with typed parameters, handler, how the handler runs
 * (on the event loop, or in a coroutine: opening its own session, or given a read-only or
 * read-write one), whether it needs a bearer token, and the OpenAPI metadata. Thread: router_init
 * once at startup; router_match is read-only afterwards and safe from any thread. */
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
 *   RUN_WRITE     in a coroutine with a read-write session (its single statements outside a
 *                 transaction are pipelined with group commit, see db/pipe.h) */
typedef enum { RUN_LOOP, RUN_OWN_SESSION, RUN_READ, RUN_WRITE } route_run;

struct db_session;
/* A handler's type. routes.c declares the handlers it names with it (one line per handler file:
 * `http_handler_fn tasks_list, tasks_create;`), so a handler file needs no header of its own. */
typedef int http_handler_fn(const http_request *req, db_session *s, http_response *res);
typedef http_handler_fn *http_handler;

/* A response header a route documents (OpenAPI only; the handler adds it with http_header_add).
 * Lists end with an entry whose name is NULL. */
typedef struct header_spec {
    const char *name;
    value_type type; /* TYPE_STRING or TYPE_INT */
    const char *description;
} header_spec;

/* A status the route may answer besides the success status. The framework's own answers (see
 * "Documented responses" below) need no entry. Lists end with status 0.
 *
 * With `sqlstate`, `constraint` or `no_rows` it is also a mapping the framework applies to the
 * handler's statement (app/resource.h: resource_reply), so no handler compares SQLSTATEs:
 *   sqlstate    the statement failed with this SQLSTATE ("23505" unique_violation, "23514" check)
 *   constraint  ... on this constraint (PostgreSQL's name: "bookmarks_user_id_url_key"); with
 *               both, both must match; the first matching entry wins
 *   no_rows     the statement returned (or, for a 204 route, changed) no row: the per-user limit
 *               recipe's 409, or the 404 of an id that is not the user's
 * and answers {"detail": detail (NULL: description)}. */
typedef struct route_error {
    int status;
    const char *description;
    const body_spec *model; /* the body's model; NULL: FastAPI's {"detail": "<text>"} */
    const char *sqlstate;
    const char *constraint;
    bool no_rows;
    const char *detail;
} route_error;

/* A tag: a group of operations in /openapi.json and /docs. The list ends with a NULL name. */
typedef struct route_tag {
    const char *name, *description;
} route_tag;

/* One route. Models (response, body, route_error.model) are body_specs (validate.h): a schema
 * name and its fields; for a response, `required` means the field is always present, `nullable`
 * that it may be null, `format` ("date-time") is documented and checked. Two different models
 * must not share a name.
 *
 * Documented responses: /openapi.json lists for every operation exactly what the framework and
 * the handler can answer, derived from these fields (openapi.c), nothing kept by hand:
 *   status        success, body from `response` (a list of it with response_list; no model:
 *                 text/plain, 204: no body), Location when `location`, `headers`, and
 *                 Idempotent-Replayed on routes with idempotency_key
 *   307           every route: the path with a trailing slash redirects (Location)
 *   401, 403      auth: missing/invalid token (WWW-Authenticate); 403 when the route has an owner
 *                 parameter (below) that is not the token's sub
 *   404           routes with path parameters (an empty segment matches no route)
 *   405           every route: another method on this path (Allow)
 *   409, 422      idempotency_key: the key is in progress; reused with a different body (text)
 *   413, 431      every route: body or headers over MAX_BODY_BYTES / MAX_HEADER_BYTES
 *   422           routes with parameters, a body or idempotency_key: validation (detail: list)
 *   500           every route: {"detail": "Internal Server Error", "request_id": ...}
 *   503           handlers in a coroutine (RUN_OWN_SESSION, RUN_READ, RUN_WRITE): no handler
 *                 stack or no database (Retry-After)
 *   errors        whatever the handler adds; a status listed twice documents both bodies (anyOf)
 * Debug builds check every reply against this document before sending it (openapi.h): a reply
 * that does not match is logged and replaced by a 500. */
typedef struct route {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* template: "/api/{user_id}/tasks/{id}" */
    http_handler handler;
    route_run run;
    bool auth; /* bearer JWT required; the owner parameter must equal its sub */
    /* With auth: the path parameter that names the resource's owner; a request whose value
     * differs from the token's sub gets 403 "Not authorized to access another user's
     * resources". NULL: "user_id" when the route has such a path parameter; "": no check. */
    const char *owner;
    const param_spec *params; /* path and query parameters, NULL-name terminated, may be NULL */
    const body_spec *body;    /* JSON body, or NULL */
    bool idempotency_key;     /* accepts an Idempotency-Key header */
    /* OpenAPI */
    const char *operation_id, *summary, *tag;
    int status;                 /* success status (200, 201, 204) */
    const body_spec *response;  /* success body's model, or NULL (see above) */
    bool response_list;         /* the success body is a JSON array of `response` */
    const char *description;    /* success response description */
    bool location;              /* the success response carries Location (the created URL) */
    const header_spec *headers; /* other success headers, may be NULL */
    const route_error *errors;  /* the handler's own error statuses, may be NULL */
    bool hidden;                /* left out of /openapi.json (/docs, /openapi.json itself) */
    bool metrics_token;         /* guarded by METRICS_TOKEN (app/config.h): a bearer token equal
                                   to it, else 401; 404 in production when it is unset */
} route;

/* At most this many routes: router_init fails beyond it (the matcher's and the metrics' tables
 * are sized by it). Raise it here if a service needs more. */
#define ROUTER_MAX_ROUTES 128

/* The table (routes.c). */
extern const route app_routes[];
extern const int app_nroutes;
extern const route_tag app_tags[];

typedef enum { MATCH_FOUND, MATCH_NOT_FOUND, MATCH_NO_METHOD, MATCH_REDIRECT } match_kind;

typedef struct route_match {
    match_kind kind;
    const route *route;              /* MATCH_FOUND */
    int index;                       /* index of route in app_routes, -1 when none */
    char *segments[HTTP_MAX_PARAMS]; /* MATCH_FOUND: decoded path parameter values, malloc'd */
    char allow[96];                  /* MATCH_NO_METHOD and preflight: "GET, PUT, DELETE" */
} route_match;

/* Checks a table of n routes: at most ROUTER_MAX_ROUTES routes, unique operationIds, parameters
 * named in templates declared as PARAM_PATH, at most HTTP_MAX_PARAMS, an owner parameter that
 * exists, a success status, one model per schema name. Returns 0, or -1 with a message. */
int router_check(const route *table, int n, char *err, size_t errlen);

/* router_check of app_routes, then prepares the matcher. Returns 0, or -1 with a message: the
 * table is broken (the api refuses to start). */
int router_init(char *err, size_t errlen);

/* Looks up method + raw path (percent-encoded, without query). For MATCH_FOUND the path parameter
 * values are decoded into m->segments (free with router_match_free). MATCH_REDIRECT: the path with
 * its trailing slash removed matches a route (any method); the caller sends 307. MATCH_NO_METHOD:
 * the path matches but not the method; m->allow lists the methods. A `method` of NULL only
 * computes allow (CORS preflight): kind is MATCH_NO_METHOD when the path exists. */
void router_match(const char *method, const char *path, route_match *m);

void router_match_free(route_match *m);

/* The index in r->params of the route's owner parameter (see route.owner), or -1 when the route
 * has none (no auth, no such path parameter, or owner ""). */
int router_owner_param(const route *r);

#endif
