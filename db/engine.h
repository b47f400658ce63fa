/* engine: one connection pool per process, and short-lived sessions borrowed from it.
 *
 * The C counterpart of SQLAlchemy's engine + FastAPI's `Depends(get_session)`:
 *
 *     db_engine *engine = db_engine_open(&cfg, &err);      // once, at startup
 *     ...
 *     db_session *s;                                        // per request, from any thread
 *     if (db_session_open(engine, DB_READ_ONLY, &s, &err) < 0) -> 503
 *     PGresult *r = db_query(s, "select ... where id = $1 and user_id = $2", 2, params, &err);
 *     ...
 *     PQclear(r);
 *     db_session_close(s);                                  // always; rolls back what is left open
 *     ...
 *     db_engine_close(engine);                              // once, at shutdown
 *
 * Lifecycle and threads: db_engine_open/db_engine_close are called once each from one thread. Every
 * other function is thread-safe with respect to the engine; a single db_session belongs to the
 * thread that opened it until it is closed. db_engine_close() releases threads waiting for a
 * connection with DB_ERR_CLOSED, waits for borrowed connections to come back, and closes every
 * connection.
 *
 * No session state (SET, SQL PREPARE, LISTEN, temp tables) is relied upon, so every function works
 * through PgBouncer in transaction mode, which is what Neon's -pooler endpoint is. Statements are
 * sent unnamed (PQsendQueryParams), except pipelined ones where DB_PREPARE prepares them:
 * protocol-level prepared statements, on a direct connection or a pooler that keeps them (see
 * db_prepare_mode). */
#ifndef DB_ENGINE_H
#define DB_ENGINE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/error.h"

typedef enum { DB_POOL_MODE_POOL, DB_POOL_MODE_PER_REQUEST } db_pool_mode;
typedef enum { DB_READ_ONLY, DB_READ_WRITE } db_access;
/* DB_PREPARE: whether pipelined statements are prepared (named, parsed and planned once per
 * connection) or sent unnamed each time. auto: prepared on a direct connection to PostgreSQL
 * (found out on the pool's first connection: the backend's pid is the one the connection
 * announced) and on Neon's pooler (a -pooler host of neon.tech: PgBouncer with
 * max_prepared_statements), unnamed through any other pooler (Debian's pgbouncer 1.18 has no
 * prepared-statement support). */
typedef enum { DB_PREPARE_AUTO, DB_PREPARE_ON, DB_PREPARE_OFF } db_prepare_mode;

/* Engine settings. db_config_from_env() fills every field; strings point into the environment. */
typedef struct db_config {
    const char *url;              /* DATABASE_URL (required) */
    const char *url_rw;           /* DATABASE_URL_RW, NULL: use url */
    const char *url_ro;           /* DATABASE_URL_RO, NULL: use the read-write URL */
    const char *application_name; /* DB_APPLICATION_NAME */
    db_pool_mode mode;            /* DB_POOL_MODE: pool | per_request */
    int pool_max;                 /* DB_POOL_MAX, per URL */
    int pool_min_idle;            /* DB_POOL_MIN_IDLE */
    double idle_timeout;          /* DB_POOL_IDLE_TIMEOUT, seconds */
    double max_lifetime;          /* DB_POOL_MAX_LIFETIME, seconds (jittered per connection) */
    double acquire_timeout;       /* DB_ACQUIRE_TIMEOUT, seconds */
    double connect_timeout;       /* DB_CONNECT_TIMEOUT, seconds */
    double statement_timeout;     /* DB_STATEMENT_TIMEOUT, seconds, 0 = none */
    double preping_after; /* DB_PREPING_AFTER: idle seconds after which a ping precedes reuse */
    bool pipeline; /* DB_PIPELINE: pipeline read-only sessions' statements (see db_session_open) */
    int pipeline_conns;   /* DB_PIPELINE_CONNS: connections for them, each with its batches in
                           * flight, shared among pipeline_threads (see there) */
    bool pipeline_writes; /* DB_PIPELINE_WRITES: also read-write sessions' single statements, one
                           * transaction (group commit) per batch, on lanes of their own */
    int pipeline_write_conns; /* DB_PIPELINE_WRITE_CONNS: connections for those, shared alike */
    db_prepare_mode prepare;  /* DB_PREPARE: auto | on | off (see db_prepare_mode) */
    /* DB_PIPELINE_SLOW_AFTER, seconds, 0 = never: a lane whose running batch has run this long
     * takes no new statements while another lane can, and more lanes may open (up to each loop's
     * share of pool_max, at most DB_PIPELINE_CONNS_MAX per kind) so that fast statements do not
     * queue behind it; a read observed slow is sent alone (db/pipe.h) */
    double pipeline_slow_after;
    /* Threads that run sessions on this engine from a coroutine (the app's event loops; not from
     * the environment, db_config_from_env sets 1). Pipelines are per thread, so each thread gets
     * pipeline_conns / pipeline_threads read lanes and pipeline_write_conns / pipeline_threads
     * write lanes, rounded down, at least one of each: the connections the process holds stay
     * the two settings (what Neon's connection limits count), however many loops there are. */
    int pipeline_threads;
} db_config;

#define DB_PIPELINE_CONNS_MAX 8

/* Reads the DB_* variables and DATABASE_URL[_RW|_RO] (defaults and the reason for each:
 * docs/database.md). DATABASE_URL is required unless DATABASE_URL_RW is set; every URL is checked
 * with libpq's parser. Returns 0, or -1 with one line naming the variable in err ("DB_POOL_MAX
 * must be an integer from 1 to 1000, got \"ten\""; never a password). The strings in cfg point
 * into the environment; db_engine_open() copies what it keeps. */
int db_config_from_env(db_config *cfg, char *err, size_t errlen);

typedef struct db_engine db_engine;
typedef struct db_session db_session;

/* Creates the engine. Does not need the database to be up (min idle 0 lets Neon scale to zero);
 * when pool_min_idle > 0 it starts filling in the background. Logs the masked URLs and warns about
 * weak sslmode on Neon hosts. Copies everything it keeps from cfg (cfg may go away afterwards).
 * In pool mode it starts one reaper thread (closes idle and expired connections), joined by
 * db_engine_close(). Returns NULL with err (DB_ERR_CONFIG) only on invalid configuration. */
db_engine *db_engine_open(const db_config *cfg, db_error *err);

/* See the lifecycle note above: waiters get DB_ERR_CLOSED at once, borrowed connections are waited
 * for up to 10 s, then every connection is closed and the engine freed. If a session is still open
 * after those 10 s the engine is deliberately leaked (and logged) rather than freed under it.
 * NULL is ignored. */
void db_engine_close(db_engine *engine);

/* Borrows a connection: an idle one, or a new one, waiting at most acquire_timeout (first come,
 * first served) for one to become free. An idle connection the server already closed is noticed
 * without a round trip and replaced; one idle longer than preping_after is pinged first; one past
 * its lifetime is replaced. Opening a connection retries transient failures for up to
 * connect_timeout (on top of the acquire wait). Read-only sessions use the read-replica URL when
 * configured; DB_READ_ONLY is the caller's promise that it only reads (it allows the silent retry
 * of db_query). In per_request mode each session opens its own connection (at most pool_max at
 * once). Blocks the calling thread, or, in a coroutine (core/coro), suspends only the coroutine.
 * In a coroutine with DB_PIPELINE on (the default), a read-only session borrows nothing up front:
 * its statements outside a transaction are pipelined with those of the loop's other read-only
 * sessions on one shared connection (db/pipe.h); db_begin or db_session_conn borrow a connection
 * of its own. With DB_PIPELINE_WRITES on (the default) read-write sessions do the same on write
 * lanes: their statements outside a transaction commit in one transaction per batch (group
 * commit), and a statement whose connection is lost fails with UNKNOWN_OUTCOME as below (every
 * unanswered write of the batch does: it may or may not have committed).
 * Returns 0 and *out (give it back with db_session_close), or -1 with err (TRANSIENT,
 * POOL_TIMEOUT, CONFIG, CLOSED). */
int db_session_open(db_engine *engine, db_access access, db_session **out, db_error *err);

/* Gives the connection back: an open or failed transaction is rolled back first, a broken
 * connection is discarded. Always succeeds; NULL is ignored. In per_request mode the connection is
 * closed. Frees s. */
void db_session_close(db_session *s);

/* Explicit transactions. Outside one, each statement commits on its own. Read-only sessions begin
 * with BEGIN READ ONLY. db_begin fails (QUERY, 25001) when one is already open. db_commit of a
 * transaction in which a statement failed returns -1 (QUERY, 25P02: it was rolled back); a commit
 * whose connection dies returns UNKNOWN_OUTCOME. db_rollback succeeds when the connection died
 * (the server rolled back). Each returns 0 or -1 with err. */
int db_begin(db_session *s, db_error *err);
int db_commit(db_session *s, db_error *err);
int db_rollback(db_session *s, db_error *err);

/* Runs one parameterized statement (text parameters, NULL = SQL NULL, text results; unnamed, or
 * prepared where DB_PREPARE allows, so it works through PgBouncer). Returns the result (the
 * caller PQclear()s it) for PGRES_TUPLES_OK / PGRES_COMMAND_OK, or NULL with err:
 *   - POOL_TIMEOUT: no connection became free, or a pipelined statement found no place in a
 *     batch, within DB_ACQUIRE_TIMEOUT (it was not sent: nothing ran);
 *   - QUERY: the statement failed (err->sqlstate says why: 23505 unique violation, ...);
 *   - STATEMENT_TIMEOUT: it ran longer than statement_timeout and was cancelled; the connection
 *     stays usable unless the server did not answer the cancel within its grace (then it is
 *     given up); inside a transaction, the transaction has failed: roll it back;
 *   - RETRY_TX: serialization failure or deadlock: run the whole transaction again;
 *   - the connection died: in a read-only session outside a transaction the statement is re-run
 *     on a fresh connection (pipelined: up to twice), so the caller never sees a suspended compute;
 * inside a transaction TRANSIENT (the server rolled it back); a read-write session's statement is
 * never re-sent: UNKNOWN_OUTCOME once it was sent (it may or may not have committed), TRANSIENT
 * when it was not. A warm connection costs exactly one round trip. */
PGresult *db_query(db_session *s, const char *sql, int nparams, const char *const *params,
                   db_error *err);

/* Result formats of db_query_format (libpq's resultFormat). */
enum { DB_TEXT = 0, DB_BINARY = 1 };

/* db_query with the results in `format`: DB_BINARY asks PostgreSQL for its binary send format
 * (bigint: 8 bytes big-endian; boolean: 1 byte; timestamp: int64 microseconds since 2000-01-01;
 * text: its bytes), which spares the server the text conversion of every value (about a sixth of
 * its CPU for a page of tasks with their timestamps: docs/benchmarks.md). Every column is in that
 * format, except in results made by a hook (a replay: see db_query_hook); read PQfformat() per
 * column. */
PGresult *db_query_format(db_session *s, const char *sql, int nparams, const char *const *params,
                          int format, db_error *err);

/* db_query for statements whose result is not needed. Returns 0 or -1 with err. */
int db_exec(db_session *s, const char *sql, int nparams, const char *const *params, db_error *err);

/* A statement interceptor: while one is set, every db_query/db_exec of the session (the handler's)
 * calls hook(ctx, ...) instead, whose own db_query calls on s run their statements. The framework
 * uses it to make a handler's statement idempotent without code in the handler
 * (app/idempotency.c): it may rewrite the statement or answer it from a stored result. Set it
 * before handing the session out; NULL removes it. Same thread as the session. */
typedef PGresult *(*db_query_hook)(void *ctx, db_session *s, const char *sql, int nparams,
                                   const char *const *params, int format, db_error *err);
void db_session_set_query_hook(db_session *s, db_query_hook hook, void *ctx);

/* The session's connection, for code that needs libpq directly (PQescape*, PQserverVersion), or
 * NULL when the session lost it. Owned by the session: do not PQfinish it, do not change its
 * session state, do not keep it past db_session_close(). */
PGconn *db_session_conn(db_session *s);

/* Pool figures for /metrics; counters are totals since open. open counts live connections plus
 * those being opened; discarded counts broken connections thrown away (not lifetime recycling);
 * acquire_wait_seconds_total sums the time sessions waited for a connection or a free slot. */
typedef struct db_stats {
    int open, idle, in_use, waiting;
    uint64_t connects, connect_failures, discarded, acquires, acquire_timeouts;
    uint64_t outage_fast_failures; /* borrowers failed at once while the server was unreachable */
    double acquire_wait_seconds_total;
    int preparing; /* pools whose pipelined statements are prepared now (DB_PREPARE; auto before
                    * its first connection counts as not yet) */
} db_stats;

/* A consistent snapshot of the pools (all URLs added up). Thread-safe, cheap. */
void db_engine_stats(db_engine *engine, db_stats *out);

#endif
