/* error: what went wrong talking to PostgreSQL, and whether trying again can help.
 *
 * Every db_ function that can fail fills a caller-provided db_error (stack memory, nothing to
 * free). The shape follows PostgreSQL's own error style: a primary message, the SQLSTATE, and a
 * hint that says what to do ("the password may have been rotated; copy a fresh DATABASE_URL from
 * the Neon console"). Messages never contain a password. */
#ifndef DB_ERROR_H
#define DB_ERROR_H

#include <libpq-fe.h>
#include <stdbool.h>

typedef enum {
    DB_OK = 0,
    /* The connection failed or died (08xxx, 57P01/57P02/57P03, 53300, EOF, reset, connect timeout):
     * a new connection may succeed. The API answers 503 + Retry-After. */
    DB_ERR_TRANSIENT,
    /* The transaction lost a race (40001 serialization_failure, 40P01 deadlock_detected): running
     * the whole transaction again may succeed. */
    DB_ERR_RETRY_TX,
    /* No connection became free, or a pipelined statement found no place in a batch, within
     * DB_ACQUIRE_TIMEOUT: the statement was not sent. The API answers 503 + Retry-After. */
    DB_ERR_POOL_TIMEOUT,
    /* The statement ran longer than DB_STATEMENT_TIMEOUT and was cancelled (57014). */
    DB_ERR_STATEMENT_TIMEOUT,
    /* Connecting cannot succeed until someone fixes something: wrong password (28P01/28000), no
     * such database (3D000), unknown host, TLS refused, endpoint disabled. Never retried. */
    DB_ERR_CONFIG,
    /* The statement itself failed (syntax, constraint, data): the SQLSTATE says which. Never
       retried. */
    DB_ERR_QUERY,
    /* The engine is closing or closed. */
    DB_ERR_CLOSED,
    /* A write's (or a commit's) connection died after it was sent and before its result arrived:
     * it may or may not have committed, so it was not re-sent. The API answers 500. */
    DB_ERR_UNKNOWN_OUTCOME,
} db_errkind;

typedef struct db_error {
    db_errkind kind;
    char sqlstate[6]; /* "" when the server sent none (client-side failures) */
    char message[512];
    char hint[256];      /* "" when there is nothing useful to say */
    char constraint[64]; /* the constraint a DB_ERR_QUERY violated ("tasks_title_check"), or "" */
} db_error;

/* Short stable name of a kind ("transient", "pool_timeout", ...), for logs and metrics labels. */
const char *db_errkind_name(db_errkind kind);

/* True for the kinds where a new attempt may succeed (TRANSIENT, POOL_TIMEOUT, RETRY_TX). */
bool db_error_is_transient(const db_error *err);

/* Classifies a SQLSTATE (NULL or "" means none) into a kind. */
db_errkind db_classify_sqlstate(const char *sqlstate);

/* True for the SQLSTATEs of a connection the server is closing: a failure (08xxx, PgBouncer's
 * own goodbyes too), a terminated backend (57P01), a shutdown (57P02). NULL is false. */
bool db_sqlstate_conn_lost(const char *sqlstate);

/* Fills err from a failed result (res may be NULL) on conn: kind from the SQLSTATE and, when there
 * is none, from the connection status; message from libpq (first line); hint for the known cases.
 */
void db_error_from_result(db_error *err, PGconn *conn, const PGresult *res);

/* Fills err from a connection attempt that failed (PQstatus == CONNECTION_BAD). */
void db_error_from_connect(db_error *err, PGconn *conn);

/* Sets err by hand. */
void db_error_set(db_error *err, db_errkind kind, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
