/* resource: a handler that answers with rows needs no JSON code (FastAPI's response_model). The
 * route's response model (router.h: route.response, a body_spec) says which columns of the
 * handler's statement become which fields; the route's errors say which database outcomes become
 * which statuses. A handler is then: read the validated request, run one parameterized statement,
 * hand its result over:
 *
 *     int bookmarks_create(const http_request *req, db_session *s, http_response *res)
 *     {
 *         const char *params[] = {req->user_id, http_body_str(req, "url")};
 *         return resource_query(req, s, res, "insert into bookmarks (user_id, url) "
 *                               "values ($1, $2) returning id, user_id, url, created_at",
 *                               2, params);
 *     }
 *
 * What resource_reply answers, from the route (routes.c):
 *   a failed statement  the first route error whose sqlstate/constraint match (router.h), else
 *                       http_reply_db_error (503 + Retry-After, or 500, logged)
 *   response_list       a JSON array of every row (rows whose model columns are all NULL, a LEFT
 *                       JOIN's empty side, are skipped), with the route's success status
 *   a model             row 0 as the model's object; no row: the route's `no_rows` error (none
 *                       declared: 500, logged); `location`: Location is the request's path + "/"
 *                       + the row's `id`
 *   no model (204)      no body, with the route's status, when the statement returned or
 *                       changed a row, else `no_rows`
 * Columns are found by name (a field "created_at" needs a column "created_at": alias it); a field
 * without its column is the handler's bug: 500, logged. Values: text or binary results (DB_BINARY)
 * of int2/int4/int8 (TYPE_INT), bool (TYPE_BOOL), text/varchar (TYPE_STRING) and, with format
 * "date-time", timestamp without time zone (`created_at at time zone 'UTC'`, written as ISO 8601
 * with Z); other types: text results (db_query) and a cast in SQL (`price::text`).
 * Thread: the request's. Ownership: resource_reply clears the result. */
#ifndef APP_RESOURCE_H
#define APP_RESOURCE_H

#include "app/http.h"
#include "app/validate.h"
#include "core/jsonw.h"
#include "db/engine.h"

/* Runs `sql` (db_query_format, binary results) and answers with resource_reply. Returns 0. */
int resource_query(const http_request *req, db_session *s, http_response *res, const char *sql,
                   int nparams, const char *const *params);

/* Answers the request from the statement's outcome: r (cleared here), or NULL and err. Returns 0.
 */
int resource_reply(const http_request *req, http_response *res, PGresult *r, const db_error *err);

/* A failed statement's answer: the route's matching error, else http_reply_db_error. Returns 0. */
int resource_reply_error(const http_request *req, http_response *res, const db_error *err);

/* How the rows of one result become `model`'s JSON objects, worked out once per result
 * (resource_layout_of) rather than per row: each field's column, how its value is written (from
 * the field's type and format and the column's type and wire format), and its key as JSON text.
 * Lives on the caller's stack (about 2.5 KB); owns nothing. */
#define RESOURCE_MAX_FIELDS 32
#define RESOURCE_NAME_MAX 63 /* a field is a column: PostgreSQL's longest identifier */
typedef struct resource_field {
    int col;
    int kind;                        /* resource.c */
    int key_len;                     /* of key */
    char key[RESOURCE_NAME_MAX + 5]; /* {"name": for the first field, ,"name": after */
} resource_field;
typedef struct resource_layout {
    int n;
    resource_field f[RESOURCE_MAX_FIELDS];
} resource_layout;

/* Fills l for `model` and the columns of r. Returns 0, or -1 (logged, naming the field) when r has
 * no column for a field or a field's name is longer than RESOURCE_NAME_MAX (router_check refuses
 * both a name that long and more than RESOURCE_MAX_FIELDS fields at start-up). */
int resource_layout_of(resource_layout *l, const body_spec *model, const PGresult *r);

/* Writes row `row` of r as the model's JSON object. Exposed for handlers that build a larger
 * body. */
void resource_write_row(jsonw *w, const resource_layout *l, const PGresult *r, int row);

/* The request's path: the route's template with its path parameters' values, percent-encoded
 * (malloc'd; NULL when out of memory). */
char *resource_path(const http_request *req);

/* The validated body's field `name` as a statement parameter: a string's text, "true"/"false" for
 * a boolean, NULL when null or absent (defaults are already in the body: validate.h). */
const char *http_body_str(const http_request *req, const char *name);

#endif
