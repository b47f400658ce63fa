/* idempotency: the Idempotency-Key header, as framework code. Any POST route of the table with
 * `.idempotency_key = true` (and RUN_WRITE) gets it, with no code in its handler:
 *
 *   - the first request with a key runs the handler; its statement and the key's row are written
 *     by ONE statement (one round trip when warm): the handler's SQL becomes a CTE of a statement
 *     that also inserts the key with the statement's rows;
 *   - a retry with the same key and the same request (method, path and query values, body as
 *     validated) runs the handler again on the stored rows instead of the database: the same
 *     answer, plus `Idempotent-Replayed: true` when it is the route's success status;
 *   - whatever the retry's statement does, the stored key decides: a retry whose write fails on
 *     the resource's own constraint (a UNIQUE the first request's row now occupies) replays too,
 *     and only a failure with no key stored is the handler's own answer;
 *   - a retry while the first is still running waits for it (the key's row lock), then replays;
 *   - the same key with a different request: 422; a key whose row has no result (stored by an older
 *     version while in progress): 409;
 *   - a key older than IDEMPOTENCY_KEY_TTL is claimed afresh; a background job (jobs.c) deletes
 *     expired keys.
 *
 * The contract for the handler: its response comes from one statement (db_query) that returns
 * rows (INSERT ... RETURNING, or a WITH ... statement); a second statement in the same request is
 * refused (500, logged). Keys are scoped by user (the token's sub; "" on routes without auth).
 * Storage: migrations 0002 and 0003 (table idempotency_keys, function idempotency_key_taken).
 * Thread: per request, in the request's coroutine. */
#ifndef APP_IDEMPOTENCY_H
#define APP_IDEMPOTENCY_H

#include <stdbool.h>

#include "app/http.h"
#include "db/engine.h"

typedef struct idempotency {
    const http_request *req;
    char hash[65]; /* hex SHA-256 of the request */
    int statements;
    int outcome;       /* 0, or the status the framework answers instead of the handler */
    bool replayed;     /* the handler ran on stored rows */
    char *legacy_body; /* a response stored by 0002's code, replayed as is (malloc'd) */
    int legacy_status;
} idempotency;

/* Called by dispatch before the handler of a route with the flag when the request has a key:
 * hooks the session's statements (db_session_set_query_hook). */
void idempotency_begin(idempotency *ctx, const http_request *req, db_session *s);

/* After the handler: replaces its response with the framework's (409, 422, a replay's header, a
 * refused second statement) and unhooks the session. */
void idempotency_end(idempotency *ctx, db_session *s, http_response *res);

/* Background job (jobs.c): deletes keys older than IDEMPOTENCY_KEY_TTL, in batches of 1000 rows per
 * statement each committed on its own. Sets *deleted. Returns 0, or -1 with err (a database error;
 * what was deleted before it stays deleted). Does nothing when the TTL is 0. */
int idempotency_expire(db_session *s, long *deleted, db_error *err);

/* Exposed for tests (tests/app/test_units.c): the end of the leading WITH list of `sql` (the offset
 * where its main statement starts), 0 when sql has no WITH, -1 when it cannot be parsed. */
long idempotency_with_end(const char *sql);

/* Exposed for tests: parses one row in PostgreSQL's composite text form ("(1,\"a b\",,t)") into
 * ncols malloc'd values (NULL for SQL NULL). Returns the number of fields, or -1. */
int idempotency_parse_row(const char *text, char **values, int max);

#endif
