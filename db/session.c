/* session: one request's borrowed connection, its transactions and statements (see engine.h).
 *
 * A warm session with one statement costs exactly one round trip: no BEGIN/ROLLBACK around it, no
 * ping (pool.c pings only connections idle longer than DB_PREPING_AFTER), and the statement
 * timeout is enforced client-side (exec.c) instead of with SET. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/coro.h"
#include "core/log.h"
#include "db/engine_internal.h"
#include "db/pipe.h"

/* ROLLBACK when a session is closed with a transaction left open gets this long at most. */
#define CLOSE_ROLLBACK_TIMEOUT 5.0

int db_session_open(db_engine *e, db_access access, db_session **out, db_error *err)
{
    *out = NULL;
    db_session *s = calloc(1, sizeof *s);
    if (!s) {
        db_error_set(err, DB_ERR_TRANSIENT, NULL, "out of memory");
        return -1;
    }
    s->engine = e;
    s->access = access;
    s->pool = access == DB_READ_ONLY && e->has_ro ? &e->ro : &e->rw;
    if ((access == DB_READ_ONLY || e->cfg.pipeline_writes) && e->cfg.pipeline &&
        e->cfg.mode == DB_POOL_MODE_POOL && coro_active()) {
        s->pipelined = true;
        *out = s;
        return 0;
    }
    if (db_pool_acquire(s->pool, db_now() + e->cfg.acquire_timeout, &s->conn, err) < 0) {
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void db_session_close(db_session *s)
{
    if (!s)
        return;
    if (s->conn && !s->broken) {
        PGTransactionStatusType ts = PQtransactionStatus(s->conn->pg);
        if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
            bool sent, timed_out;
            PGresult *r = db_exec_wait(s->conn->pg, "ROLLBACK", 0, NULL, 0, CLOSE_ROLLBACK_TIMEOUT,
                                       -1, &sent, &timed_out);
            s->broken = !r || PQresultStatus(r) != PGRES_COMMAND_OK || timed_out;
            PQclear(r);
        } else if (ts != PQTRANS_IDLE) {
            s->broken = true; /* a statement still running, or the connection is gone */
        }
    }
    if (s->conn)
        db_pool_release(s->pool, s->conn, s->broken);
    free(s);
}

static bool conn_lost(PGconn *pg, const char *sqlstate)
{
    return PQstatus(pg) == CONNECTION_BAD || db_sqlstate_conn_lost(sqlstate);
}

/* What to tell the caller when the connection died under a statement that may not be re-sent. */
static void lost_outcome(db_error *err, bool in_tx, bool is_commit, bool sent)
{
    if (in_tx && !is_commit) {
        /* the server rolls back what a lost connection leaves open: the outcome is known */
        snprintf(err->hint, sizeof err->hint,
                 "the connection was lost and the transaction rolled back; run it again");
        err->kind = DB_ERR_TRANSIENT;
    } else if (sent) {
        err->kind = DB_ERR_UNKNOWN_OUTCOME;
        snprintf(err->hint, sizeof err->hint,
                 "the connection was lost before the result arrived: the write may or may not "
                 "have committed; check before retrying, or retry with an idempotency key");
    }
}

/* After a cancel, how long the server gets to answer before the connection is given up on: as
 * long as it may take to reach it, at most 5 s. */
static double cancel_grace(const db_config *cfg)
{
    return cfg->connect_timeout < 5 ? cfg->connect_timeout : 5;
}

/* Logs a connection lost under a statement, once, with where it was connected (never a password).
 */
static void log_lost(db_session *s, const db_error *err, int attempt)
{
    PGconn *pg = s->conn->pg;
    json_t *f = json_pack("{s:s, s:s, s:s, s:s, s:i}", "pool", s->pool->label, "host",
                          PQhost(pg) ? PQhost(pg) : "", "database", PQdb(pg) ? PQdb(pg) : "",
                          "sqlstate", err->sqlstate, "attempt", attempt);
    log_fields(LOG_LVL_WARN, f, "database connection lost during a statement: %s", err->message);
}

/* A pipelined session that needs a connection of its own (a transaction, raw access) borrows it
 * now. Returns 0 or -1 with err. */
static int own_conn(db_session *s, db_error *err)
{
    if (!s->pipelined)
        return 0;
    if (db_pool_acquire(s->pool, db_now() + s->engine->cfg.acquire_timeout, &s->conn, err) < 0)
        return -1;
    s->pipelined = false;
    return 0;
}

PGconn *db_session_conn(db_session *s)
{
    db_error err;
    if (s && own_conn(s, &err) < 0)
        return NULL;
    return s && s->conn ? s->conn->pg : NULL;
}

/* One statement through the loop's pipeline: the outcomes of run() below, without the retry on a
 * fresh connection, which the pipeline does itself. */
static PGresult *run_pipelined(db_session *s, const char *sql, int nparams,
                               const char *const *params, int format, db_error *err)
{
    const db_config *cfg = &s->engine->cfg;
    bool timed_out;
    PGresult *r = db_pipe_query(s->pool, s->access == DB_READ_WRITE, cfg->statement_timeout,
                                cancel_grace(cfg), sql, nparams, params, format, &timed_out, err);
    if (!r)
        return NULL;
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return r;
    db_error_from_result(err, NULL, r);
    PQclear(r);
    return NULL;
}

/* Runs one statement; `retry_ok` says whether it may be re-sent on a fresh connection when its
 * connection turns out dead. */
static PGresult *run(db_session *s, const char *sql, int nparams, const char *const *params,
                     int format, bool retry_ok, bool is_commit, db_error *err)
{
    if (own_conn(s, err) < 0)
        return NULL;
    for (int attempt = 0;; attempt++) {
        if (!s->conn) {
            db_error_set(err, DB_ERR_TRANSIENT, "08003",
                         "this session lost its database connection; open a new session");
            return NULL;
        }
        PGconn *pg = s->conn->pg;
        bool in_tx = PQtransactionStatus(pg) != PQTRANS_IDLE, sent, timed_out;
        PGresult *r =
            db_exec_wait(pg, sql, nparams, params, format, s->engine->cfg.statement_timeout,
                         cancel_grace(&s->engine->cfg), &sent, &timed_out);
        ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
            return r;
        bool answered = r != NULL;
        db_error_from_result(err, pg, r);
        PQclear(r);
        if (timed_out && !answered) { /* the cancel got no answer: give the connection up */
            s->broken = true;
            db_error_set(err, DB_ERR_STATEMENT_TIMEOUT, "57014",
                         "statement exceeded DB_STATEMENT_TIMEOUT (%g s) and the server did not "
                         "answer the cancel",
                         s->engine->cfg.statement_timeout);
            return NULL;
        }
        if (!conn_lost(pg, err->sqlstate))
            return NULL;
        s->broken = true;
        log_lost(s, err, attempt + 1);
        if (in_tx || !retry_ok || attempt > 0 || (s->access == DB_READ_WRITE && sent)) {
            lost_outcome(err, in_tx, is_commit, sent);
            return NULL;
        }
        log_info("re-running a read-only statement on a fresh connection");
        pthread_mutex_lock(&s->pool->mu);
        s->pool->discarded++;
        pthread_mutex_unlock(&s->pool->mu);
        s->conn = db_pool_reconnect(s->pool, s->conn, err);
        s->broken = false;
        if (!s->conn)
            return NULL;
    }
}

PGresult *db_query_format(db_session *s, const char *sql, int nparams, const char *const *params,
                          int format, db_error *err)
{
    if (s->hook && !s->in_hook) {
        s->in_hook = true;
        PGresult *r = s->hook(s->hook_ctx, s, sql, nparams, params, format, err);
        s->in_hook = false;
        return r;
    }
    if (s->pipelined)
        return run_pipelined(s, sql, nparams, params, format, err);
    return run(s, sql, nparams, params, format, s->access == DB_READ_ONLY, false, err);
}

PGresult *db_query(db_session *s, const char *sql, int nparams, const char *const *params,
                   db_error *err)
{
    return db_query_format(s, sql, nparams, params, DB_TEXT, err);
}

void db_session_set_query_hook(db_session *s, db_query_hook hook, void *ctx)
{
    s->hook = hook;
    s->hook_ctx = ctx;
}

int db_exec(db_session *s, const char *sql, int nparams, const char *const *params, db_error *err)
{
    PGresult *r = db_query(s, sql, nparams, params, err);
    PQclear(r);
    return r ? 0 : -1;
}

int db_begin(db_session *s, db_error *err)
{
    if (s->conn && PQtransactionStatus(s->conn->pg) != PQTRANS_IDLE) {
        db_error_set(err, DB_ERR_QUERY, "25001", "a transaction is already open in this session");
        return -1;
    }
    /* BEGIN changes nothing, so it may be re-sent whatever the session's access */
    const char *sql = s->access == DB_READ_ONLY ? "BEGIN READ ONLY" : "BEGIN";
    PGresult *r = run(s, sql, 0, NULL, DB_TEXT, true, false, err);
    PQclear(r);
    return r ? 0 : -1;
}

int db_commit(db_session *s, db_error *err)
{
    if (s->pipelined)
        return 0; /* no transaction was opened: like COMMIT outside one, nothing to do */
    PGresult *r = run(s, "COMMIT", 0, NULL, DB_TEXT, false, true, err);
    if (!r)
        return -1;
    /* COMMIT of a failed transaction "succeeds" with the tag ROLLBACK */
    bool rolled_back = !strcmp(PQcmdStatus(r), "ROLLBACK");
    PQclear(r);
    if (rolled_back) {
        db_error_set(err, DB_ERR_QUERY, "25P02",
                     "the transaction was rolled back because a statement in it failed");
        return -1;
    }
    return 0;
}

int db_rollback(db_session *s, db_error *err)
{
    if (s->pipelined)
        return 0;
    PGresult *r = run(s, "ROLLBACK", 0, NULL, DB_TEXT, false, false, err);
    PQclear(r);
    /* a connection lost during the transaction took the transaction with it: nothing to undo */
    if (!r && s->broken)
        return 0;
    return r ? 0 : -1;
}
