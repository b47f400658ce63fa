/* pipe: the single statements of sessions outside a transaction, from every coroutine of one
 * event-loop thread, pipelined on up to DB_PIPELINE_CONNS pooled connections (lanes, each with one
 * batch in flight). Internal to db/ (session.c).
 *
 * Why: on a small machine the cost of a query is mostly the round trip's system calls and process
 * wake-ups, on both sides. Statements queued during one loop iteration leave in one write
 * (libpq's pipeline mode, one Sync per batch), the server answers them in one read and one write.
 * Statements queued while batches are in flight leave at once as a further batch behind them, so
 * against a distant database a statement waits one round trip, not the rest of someone else's. That
 * is how the fastest database servers of the TechEmpower benchmark cut the per-query cost below
 * plain pgbench's.
 *
 * What may be pipelined: statements of DB_READ_ONLY sessions outside an explicit transaction,
 * when the session runs in a coroutine (the API). A batch is one implicit transaction on the
 * server; every statement still takes its own snapshot (READ COMMITTED), and a statement that
 * fails makes the server skip the rest of its batch: those are re-sent in the next batch, so each
 * caller sees only its own statement's outcome. Reads never wait on row locks; a slow read does
 * delay the reads of its batch (the server answers a batch at its Sync) and those queued behind
 * it, at most by the statement timeout.
 *
 * Writes (DB_PIPELINE_WRITES): statements of DB_READ_WRITE sessions outside an explicit
 * transaction go to write lanes of their own (never into a batch of reads, which would then wait
 * on the writes' row locks), up to DB_PIPELINE_CONNS of them. A write batch is one implicit
 * transaction with one Sync: one commit, one WAL flush for all its statements (group commit), and
 * the lanes commit in parallel. Semantics, each tested in tests/db/test_pipe.c:
 *   - a write's result is handed out only at its batch's Sync, once the batch committed;
 *   - a statement that fails rolls its batch back: the statements before it are re-sent in a later
 *     batch, those after it were skipped and are re-sent too; its error is its own when it was
 *     the first of its batch (or the statement timeout's cancel), else it is re-sent alone behind
 *     them, so a unique violation or an Idempotency-Key claimed by a neighbour of its batch is
 *     decided against their committed rows, as between separate transactions;
 *   - a deadlock or serialization failure (between lanes, or with other clients) re-sends the
 *     innocent statements of the batch as above; the one that lost is re-sent alone up to 3 times;
 *   - an error at the commit itself: a statement alone gets it, several are re-sent alone each;
 *   - a lost connection (or one silent past the deadline): whatever was sent may have committed,
 *     so nothing is re-sent: each unanswered write fails with TRANSIENT (08006, the hint says the
 *     outcome is unknown); statements the server skipped or rolled back are re-sent.
 * A write waiting on a row lock holds up the writes of its lane behind it (at most the statement
 * timeout); reads and the other lanes go on.
 *
 * A lane's connection is borrowed from the pool while it has statements in flight and given
 * back as soon as it has none, so the pool's size and its accounting still hold.
 *
 * Prepared statements (DB_PREPARE, see db_prepare_mode): where the pool prepares, a statement's
 * first use on a connection sends its Parse (a named statement) in the same batch, right before
 * it, and later uses send only Bind and Execute: the server parses and plans it once per
 * connection, not once per request (pgbench -M prepared against -M extended: 1.3-2.8x the rate on
 * the API's statements here), and no round trip is added. A failed Parse is the statement's own
 * error; one skipped (an earlier statement of its batch failed) is sent again with the statement,
 * under a new name: a name is never sent in two Parses on one connection (PgBouncer's
 * prepared-statement support, Neon's pooler, registers it at the first and closes the connection
 * at a second).
 * Until its Parse is answered, the statement's uses in later batches go unnamed. A prepared
 * statement whose result type changed under it (an ALTER of a column it returns, while the API
 * runs: 0A000 "cached plan must not change result type", raised before anything executed) is
 * prepared afresh under a new name and the statement re-sent (a write alone, as after any error
 * of its batch). A name the server does not know or already has (26000, 42P05: a pooler that
 * does not keep prepared statements, with DB_PREPARE=on) makes the pool stop preparing, with a
 * warning, and the statement is re-sent unnamed; names carry a random tag per connection, so such
 * a pooler can never run another client's statement of the same name. The first 64 distinct
 * statements of a connection are prepared, any later ones go unnamed. */
#ifndef DB_PIPE_H
#define DB_PIPE_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "db/pool.h"

/* Runs one statement through the calling loop thread's pipeline on pool p (coroutines only: see
 * coro_active), on a read lane, or on a write lane when `write`. timeout/grace as for
 * db_exec_wait, per batch. Returns the statement's result (the caller PQclear()s it; it may be an
 * error result; a write's success result means it committed), or NULL with *err set when it got
 * none: the connection could not be borrowed (err from the pool), or it was lost (or stayed silent
 * past the deadline and the cancel's grace): a read is re-sent on a fresh connection after each of
 * its first two losses, then fails with TRANSIENT (08006); a write that may have run fails at once
 * with TRANSIENT (08006). *timed_out tells whether the batch's deadline passed (an error result is
 * then the cancel's 57014). `format`: the results' format, 0 text, 1 binary. */
PGresult *db_pipe_query(db_pool *p, bool write, double timeout, double grace, const char *sql,
                        int nparams, const char *const *params, int format, bool *timed_out,
                        db_error *err);

/* Frees what pipe.c keeps per connection (its prepared statements' texts); NULL is fine. */
struct db_stmts;
void db_pipe_stmts_free(struct db_stmts *s);

#endif
