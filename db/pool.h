/* pool: one URL's connections, shared by the engine (engine.c) and sessions (session.c). Internal
 * to db/: the app and migrate code use engine.h only.
 *
 * Accounting: `open` counts slots, that is live connections plus connections being opened (a
 * slot is reserved under the lock, the connect happens outside it), and never exceeds max.
 * Waiters queue FIFO, each on its own condition variable: a released connection, or a freed slot,
 * is handed to the first waiter directly, so a newcomer cannot overtake a thread that has waited
 * longer. All fields are guarded by `mu`. */
#ifndef DB_POOL_H
#define DB_POOL_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "db/engine.h"
#include "db/error.h"

typedef struct db_conn {
    PGconn *pg;
    double created, last_used,
        expires;            /* monotonic seconds; expires = created + jittered lifetime */
    struct db_conn *next;   /* idle list link */
    struct db_stmts *stmts; /* the statements pipe.c prepared on it (owned, freed with it) */
} db_conn;

/* What db_pool.prepare holds: whether pipelined statements are prepared on this URL's
 * connections (DB_PREPARE; auto decides on the first connection, see db_prepare_mode). */
enum { DB_PREP_UNDECIDED, DB_PREP_YES, DB_PREP_NO };

typedef struct db_waiter db_waiter;

typedef struct db_pool {
    pthread_mutex_t mu;
    pthread_cond_t drained; /* signalled when in_use drops to 0 while closing */
    char *url;              /* owned */
    const char *label;      /* "rw" or "ro", for logs */
    const db_config *cfg;   /* the engine's copy */
    int open, in_use, nidle, waiting;
    db_conn *idle; /* most recently used first: the cold end ages out by idle timeout */
    db_waiter *whead, *wtail;
    bool closing;
    /* Outage state: down_since > 0 while the last connect failed transiently. One connect at a
     * time (`probing`) then finds out whether the server is back; other borrowers that need a new
     * connection fail at once with down_err. */
    double down_since;
    bool probing;
    db_error down_err;
    uint64_t connects, connect_failures, discarded, acquires, acquire_timeouts, fast_failures;
    double wait_total;
    atomic_int prepare; /* DB_PREP_*: read without the lock by the loops (pipe.c) */
} db_pool;

/* Monotonic clock in seconds. */
double db_now(void);

/* Initialises p for `url` (copied). Returns 0 or -1 (out of memory). */
int db_pool_init(db_pool *p, const char *url, const char *label, const db_config *cfg);

/* Borrows a connection until `deadline` (db_now() clock): idle (checked, see pool.c) or new.
 * Returns 0 and *out, or -1 with err (POOL_TIMEOUT, CLOSED, TRANSIENT, CONFIG). */
int db_pool_acquire(db_pool *p, double deadline, db_conn **out, db_error *err);

/* True (and err set, counted as a fast failure) while the server is unreachable and a connect is
 * already checking whether it is back (the probe, see open_conn in pool.c): a caller that would
 * only queue behind it (a pipelined statement) fails at once instead, like borrowers that need a
 * new connection. */
bool db_pool_failing_fast(db_pool *p, db_error *err);

/* True when db_pool_acquire would not wait now: a connection is idle, or a slot is free while the
 * server is not known unreachable. A hint (another thread may take it first). */
bool db_pool_can_lend(db_pool *p);

/* Gives c back; broken (or expired, or per_request mode) connections are closed and their slot
 * handed on. */
void db_pool_release(db_pool *p, db_conn *c, bool broken);

/* Replaces the dead connection of borrowed c with a new one on the same slot. Returns c, or NULL
 * with err when connecting failed (c is then freed and its slot given back). */
db_conn *db_pool_reconnect(db_pool *p, db_conn *c, db_error *err);

/* Closes idle connections past the idle timeout (down to min idle) or past their lifetime, and
 * opens one connection when fewer than min idle exist. Called by the engine's reaper thread. */
void db_pool_maintain(db_pool *p);

/* Wakes waiters with DB_ERR_CLOSED, waits up to `wait` seconds for borrowed connections, closes
 * all. Returns true when nothing is still borrowed (p may then be freed). */
bool db_pool_close(db_pool *p, double wait);

/* Adds p's figures to out. */
void db_pool_stats_add(db_pool *p, db_stats *out);

/* Sends a statement and waits for its result (exec.c). After `timeout` seconds (0: no limit) it
 * sends a cancel request and waits up to `grace` more seconds for the server to answer it; with
 * grace < 0 it gives up at once instead (pings: a silent connection is simply dropped). Returns
 * the result that decides the outcome (the first error, else the last result; the caller
 * PQclear()s it), or NULL when the connection failed or stayed silent: the connection must then
 * be discarded. *sent tells whether the statement left this process; *timed_out whether the
 * deadline passed. `format`: the results' format, 0 text, 1 binary (libpq's resultFormat). */
/* Asks the server to cancel what pg is running (PQcancel opens a connection of its own and blocks:
 * on a helper thread when in a coroutine). Failures are logged; the caller's deadline decides. */
void db_cancel(PGconn *pg);

PGresult *db_exec_wait(PGconn *pg, const char *sql, int nparams, const char *const *params,
                       int format, double timeout, double grace, bool *sent, bool *timed_out);

#endif
