/* exec: one statement with a client-side deadline (see db_exec_wait in pool.h).
 *
 * Why client-side: statement_timeout as a startup option is rejected by PgBouncer in transaction
 * mode (Neon's -pooler endpoint) and SET is session state that the pooler does not keep, while
 * SET LOCAL would cost a round trip per transaction. Waiting on the socket with poll() until the
 * deadline and then sending a cancel request (PgBouncer forwards it) costs nothing on the happy
 * path, and also bounds the wait when the server vanishes without closing the socket.
 * Every wait goes through core/coro: it yields to the event loop when the session runs in a
 * coroutine (the API) and blocks in poll() otherwise (migrate, tests). */
#include <errno.h>

#include "core/coro.h"
#include "core/log.h"
#include "db/pool.h"

/* Waits until PQisBusy() is false or the deadline passes (0: none). Returns 1 when not busy, 0 on
 * timeout, -1 when the connection failed. In a coroutine the wait yields to the event loop. */
static int wait_ready(PGconn *pg, double deadline)
{
    while (PQisBusy(pg)) {
        /* the statement may not have left entirely yet (non-blocking connection, full socket
         * buffer): keep sending while waiting for the answer */
        int unsent = PQflush(pg);
        if (unsent < 0)
            return -1;
        int r = coro_wait_fd(PQsocket(pg), unsent == 1, deadline);
        if (r == 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
        if (r > 0 && !PQconsumeInput(pg))
            /* a lost connection still yields its error result (with the server's SQLSTATE,
             * 57P01 say, when it said goodbye) without blocking: let the caller collect it */
            return PQstatus(pg) == CONNECTION_BAD ? 1 : -1;
    }
    return 1;
}

static bool is_error(const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    return st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR || st == PGRES_BAD_RESPONSE;
}

static void send_cancel(void *arg)
{
    PGcancel *c = arg;
    char why[256];
    if (!PQcancel(c, why, sizeof why))
        log_warn("could not send a cancel request: %s", why);
}

void db_cancel(PGconn *pg)
{
    PGcancel *c = PQgetCancel(pg);
    if (c)
        coro_offload(send_cancel, c);
    else
        log_warn("could not send a cancel request: no cancel handle");
    PQfreeCancel(c);
}

PGresult *db_exec_wait(PGconn *pg, const char *sql, int nparams, const char *const *params,
                       int format, double timeout, double grace, bool *sent, bool *timed_out)
{
    *sent = false;
    *timed_out = false;
    if (PQstatus(pg) != CONNECTION_OK)
        return NULL;
    if (!PQsendQueryParams(pg, sql, nparams, NULL, params, NULL, NULL, format))
        return NULL;
    *sent = true;
    double deadline = timeout > 0 ? db_now() + timeout : 0;
    PGresult *keep = NULL;
    for (;;) {
        int ready = wait_ready(pg, deadline);
        if (ready == 0 && !*timed_out) {
            *timed_out = true;
            if (grace >= 0) {
                /* the server answers the cancel with 57014 and the connection stays usable */
                db_cancel(pg);
                deadline = db_now() + grace;
                continue;
            }
        }
        if (ready <= 0) {
            PQclear(keep);
            return NULL; /* silent after the cancel, or the connection failed */
        }
        PGresult *r = PQgetResult(pg);
        if (!r)
            break;
        if (!keep || !is_error(keep)) {
            PQclear(keep);
            keep = r;
        } else {
            PQclear(r);
        }
        if (PQstatus(pg) == CONNECTION_BAD)
            break; /* PQgetResult would keep returning the same failure */
    }
    return keep;
}
