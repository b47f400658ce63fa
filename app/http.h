/* http: what a handler sees. A request already routed, authenticated and validated, and a response
 * it fills in. Both are plain data: no libevent type appears here, so a handler never touches the
 * connection; the loop sends the reply once the handler has returned (dispatch.c).
 *
 *     int tasks_get(const http_request *req, db_session *s, http_response *res)
 *     {
 *         ...db_query(s, ...)...
 *         return http_reply_json(res, 200, task);  // or http_reply_detail(res, 404, "Not found")
 *     }
 *
 * Ownership: the request and everything it points to belong to the server and live until the reply
 * is sent. The response owns its body and header values (malloc'd by the helpers below, freed by
 * the server after sending). Thread: a request/response pair is used by one thread at a time. */
#ifndef APP_HTTP_H
#define APP_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/error.h"

struct route;

#define HTTP_MAX_PARAMS 12
#define HTTP_MAX_HEADERS 10

/* A validated path or query parameter: `set` false when absent and without default. */
typedef struct http_value {
    bool set;
    const char *str; /* decoded text (also set for integers) */
    long long num;   /* integers only */
} http_value;

typedef struct http_request {
    const struct route *route;
    const char *request_id;
    const char *user_id;                /* the token's `sub` on authenticated routes, else NULL */
    const char *idempotency_key;        /* Idempotency-Key header, NULL when absent */
    http_value values[HTTP_MAX_PARAMS]; /* indexed like route->params */
    json_t *body; /* the validated JSON object on routes with a body, else NULL */
} http_request;

typedef struct http_header {
    const char *name; /* static string */
    char *value;      /* malloc'd */
} http_header;

typedef struct http_response {
    int status; /* 0 until a reply helper ran */
    char *body; /* malloc'd, NUL-terminated; NULL: no body */
    size_t body_len;
    const char *content_type; /* static; default application/json */
    http_header headers[HTTP_MAX_HEADERS];
    int nheaders;
} http_response;

/* The value of the route's parameter `name` (path or query). Aborts if the route has no such
 * parameter: that is a programming error in the route table, caught by any test of the route. */
const http_value *http_param(const http_request *req, const char *name);

/* The reply helpers fail loudly: a body that is NULL (a json_pack whose format did not match its
 * arguments, a failed allocation) or cannot be serialized is never sent with the status asked
 * for; the reply becomes 500 {"detail": "Internal Server Error"} and the log says why. */

/* Replies with `body` serialized as compact JSON. Takes ownership of body (NULL: 500). Returns 0.
 */
int http_reply_json(http_response *res, int status, json_t *body);

/* Replies with JSON text already serialized (see core/jsonw.h): takes ownership of the malloc'd,
 * NUL-terminated `text` of `len` bytes; NULL (a failed allocation) gives a 500. Returns 0. */
int http_reply_json_text(http_response *res, int status, char *text, size_t len);

/* Replies {"detail": detail}, FastAPI's HTTPException shape (detail NULL: 500). Returns 0. */
int http_reply_detail(http_response *res, int status, const char *detail);

/* Replies with a status that has no body (204). Returns 0. */
int http_reply_empty(http_response *res, int status);

/* Replies with a raw body (copied) and a static content type. Returns 0. */
int http_reply_raw(http_response *res, int status, const char *content_type, const char *body,
                   size_t len);

/* Adds a response header (value formatted and copied). Extra headers beyond HTTP_MAX_HEADERS are
 * dropped with a log line. */
void http_header_add(http_response *res, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Maps a database error to FastAPI-shaped JSON: TRANSIENT, POOL_TIMEOUT, CLOSED and
 * STATEMENT_TIMEOUT -> 503 {"detail": ...} with Retry-After; an Idempotency-Key in progress
 * (SQLSTATE IK001, app/idempotency.c) -> 409; anything else (UNKNOWN_OUTCOME included) -> 500
 * {"detail": "Internal Server Error", "request_id": ...} without SQL text (the full error goes to
 * the log). Returns 0. */
int http_reply_db_error(http_response *res, const http_request *req, const db_error *err);

/* Frees the body and header values and zeroes the response (so it can be filled again). */
void http_response_reset(http_response *res);

/* Reason phrase for a status code ("Not Found"). */
const char *http_reason(int status);

#endif
