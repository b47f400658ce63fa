/* pipe: the single statements of sessions outside a transaction, from every coroutine of one
 * event-loop thread, pipelined (libpq's pipeline mode) on pooled connections: read lanes
 * (DB_PIPELINE_CONNS) and write lanes (DB_PIPELINE_WRITE_CONNS), each process's shared among its
 * loops. Internal to db/ (session.c). Why, how it behaves, and its measurements:
 * docs/database.md ("Pipelined statements"); each rule below is tested in tests/db/test_pipe*.c
 * and tests/db/test_deadline.c.
 *
 * Outcomes. Every caller gets its own statement's outcome: statements the server skipped because
 * a neighbour of their batch failed are re-sent. Reads of a batch share one implicit transaction
 * (each its own snapshot). A write's result is handed out only once its batch committed; a batch
 * that fails is rolled back and its innocent statements re-sent (a statement that was not first
 * in its batch is re-sent alone before its error counts); a write whose connection is lost after
 * it may have run fails with DB_ERR_UNKNOWN_OUTCOME and is never re-sent.
 *
 * Deadlines. A statement waits for a place in a batch at most DB_ACQUIRE_TIMEOUT from the moment
 * it was queued: past that it fails with DB_ERR_POOL_TIMEOUT and is never sent. A batch is
 * cancelled DB_STATEMENT_TIMEOUT after it started to run, or earlier, so that no statement is
 * answered later than DB_ACQUIRE_TIMEOUT + DB_STATEMENT_TIMEOUT after it was queued (plus the
 * cancel's grace when the server does not answer the cancel; the connection is then given up).
 *
 * Slow lanes (DB_PIPELINE_SLOW_AFTER > 0). A lane whose running batch has run longer than that
 * takes no new statements while another lane can, sends nothing more behind that batch, and does
 * not count against DB_PIPELINE_CONNS: further lanes open, up to DB_POOL_MAX's share of the loop
 * (at most DB_PIPELINE_CONNS_MAX per kind). A read whose own run was slow (from the previous
 * result's arrival to its own; per statement text, per loop; two fast runs clear it) is sent
 * alone from its next run, on an idle or a new lane that takes nothing else while it runs, so
 * that fast reads are not batched with it. Reads already sent behind a slow one (its first run,
 * a lock) are sent again, once, on a lane that can run them at once, and the results of their
 * first copies are dropped; one whose new connection is lost gets its first copy's outcome.
 *
 * Connections. A lane borrows its connection from the pool while it has statements in flight and
 * gives it back as soon as it has none. Where the pool prepares (DB_PREPARE), a statement's first
 * use on a connection sends its Parse in the same batch; a name is never sent in two Parses on
 * one connection; up to 64 statements of a connection are prepared at once (a slot freed by a
 * failed Parse or a changed plan is reused), others go unnamed. */
#ifndef DB_PIPE_H
#define DB_PIPE_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "db/pool.h"

/* Runs one statement through the calling loop thread's pipeline on pool p (coroutines only: see
 * coro_active), on a read lane, or on a write lane when `write`. timeout/grace as for
 * db_exec_wait, per batch (see Deadlines above). Returns the statement's result (the caller
 * PQclear()s it; it may be an error result, the cancel's 57014 when *timed_out; a write's success
 * result means it committed), or NULL with *err set when it got none: POOL_TIMEOUT (not sent
 * within DB_ACQUIRE_TIMEOUT), an error of the pool's (the connection could not be borrowed, or
 * the server is known unreachable), TRANSIENT when the thread has no lane left for the pool or
 * memory ran out, or the connection was lost (or stayed silent past the deadline and the cancel's
 * grace): a read is re-sent on a fresh connection after each of its first two losses, then fails
 * with TRANSIENT (08006); a write that may have run fails at once with UNKNOWN_OUTCOME (08006).
 * `format`: the results' format, 0 text, 1 binary. */
PGresult *db_pipe_query(db_pool *p, bool write, double timeout, double grace, const char *sql,
                        int nparams, const char *const *params, int format, bool *timed_out,
                        db_error *err);

/* Frees what pipe.c keeps per connection (its prepared statements' texts); NULL is fine. */
struct db_stmts;
void db_pipe_stmts_free(struct db_stmts *s);

#endif
