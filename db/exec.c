/* exec: one statement with a client-side deadline (see db_exec_wait in pool.h).
 *
 * Why client-side: statement_timeout as a startup option is rejected by PgBouncer in transaction
 * mode (Neon's -pooler endpoint) and SET is session state that the pooler does not keep, while
 * SET LOCAL would cost a round trip per transaction. Waiting on the socket with poll() until the
 * deadline and then sending a cancel request (PgBouncer forwards it) costs nothing on the happy
 * path, and also bounds the wait when the server vanishes without closing the socket.
 * The blocking PQcancel is fine here: sessions run on worker threads, never on the event loop. */
#include <errno.h>
#include <math.h>
#include <poll.h>

#include "core/log.h"
#include "db/pool.h"

/* After a cancel, how long the server gets to answer before the connection is given up on. */
#define CANCEL_GRACE 5.0

/* Waits until PQisBusy() is false or the deadline passes (0: none). Returns 1 when not busy, 0 on
 * timeout, -1 when the connection failed. */
static int wait_ready(PGconn *pg, double deadline)
{
    while (PQisBusy(pg)) {
        int ms = -1;
        if (deadline > 0) {
            double left = deadline - db_now();
            if (left <= 0)
                return 0;
            ms = (int)ceil(left * 1000);
        }
        struct pollfd p = {PQsocket(pg), POLLIN, 0};
        int r = poll(&p, 1, ms);
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

static void cancel(PGconn *pg)
{
    char why[256];
    PGcancel *c = PQgetCancel(pg);
    if (!c || !PQcancel(c, why, sizeof why))
        log_warn("could not send a cancel request: %s", c ? why : "no cancel handle");
    PQfreeCancel(c);
}

PGresult *db_exec_wait(PGconn *pg, const char *sql, int nparams, const char *const *params,
                       double timeout, bool *sent, bool *timed_out)
{
    *sent = false;
    *timed_out = false;
    if (PQstatus(pg) != CONNECTION_OK)
        return NULL;
    if (!PQsendQueryParams(pg, sql, nparams, NULL, params, NULL, NULL, 0))
        return NULL;
    *sent = true;
    double deadline = timeout > 0 ? db_now() + timeout : 0;
    PGresult *keep = NULL;
    for (;;) {
        int ready = wait_ready(pg, deadline);
        if (ready == 0 && !*timed_out) {
            /* the server answers the cancel with 57014 and the connection stays usable */
            *timed_out = true;
            cancel(pg);
            deadline = db_now() + CANCEL_GRACE;
            continue;
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
