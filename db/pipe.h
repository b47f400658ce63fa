/* pipe: the single statements of read-only sessions, from every coroutine of one event-loop
 * thread, pipelined on up to DB_PIPELINE_CONNS pooled connections (lanes, each with one batch in
 * flight). Internal to db/ (session.c).
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
 * A lane's connection is borrowed from the pool while it has statements in flight and given
 * back as soon as it has none, so the pool's size and its accounting still hold. */
#ifndef DB_PIPE_H
#define DB_PIPE_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "db/pool.h"

/* Runs one statement through the calling loop thread's pipeline on pool p (coroutines only: see
 * coro_active). timeout/grace as for db_exec_wait, per batch. Returns the statement's result (the
 * caller PQclear()s it; it may be an error result), or NULL with *err set when it got none: the
 * connection could not be borrowed (err from the pool), or it was lost (or stayed silent past the
 * deadline and the cancel's grace) three times while the statement waited: it is re-sent on a
 * fresh connection after each of the first two, then fails with TRANSIENT (08006). *timed_out tells
 * whether the batch's deadline passed (an error result is then the cancel's 57014). */
PGresult *db_pipe_query(db_pool *p, double timeout, double grace, const char *sql, int nparams,
                        const char *const *params, bool *timed_out, db_error *err);

#endif
