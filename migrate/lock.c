/* lock: see lock.h. */
#include "migrate/lock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* MIG_LOCK_KEY as a SQL parameter ("0x...LL" is not SQL: cast from its decimal value) */
static const char key_text[] = "7883946363647714593";
_Static_assert(MIG_LOCK_KEY == 7883946363647714593LL, "key_text must spell MIG_LOCK_KEY");

/* 1 taken, 0 busy, -1 error */
static int try_lock(PGconn *c, char err[MIG_ERR_LEN])
{
    const char *p[] = {key_text};
    PGresult *r =
        PQexecParams(c, "SELECT pg_try_advisory_lock($1::bigint)", 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *m = PQresultErrorMessage(r);
        snprintf(err, MIG_ERR_LEN, "could not take the migration lock: %.*s", (int)strcspn(m, "\n"),
                 m);
        PQclear(r);
        return -1;
    }
    int got = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return got;
}

/* Describes the session holding the lock into out (empty when it cannot be seen). */
static void describe_holder(PGconn *c, char *out, size_t outlen, int *pid)
{
    const char *p[] = {key_text};
    PGresult *r = PQexecParams(
        c,
        "SELECT l.pid, coalesce(nullif(a.application_name, ''), '(no application_name)'), "
        "coalesce(host(a.client_addr), 'a local socket'), coalesce(a.usename::text, '?'), "
        "coalesce(to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS\"Z\"'), '?') "
        "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND l.classid = ($1::bigint >> 32)::oid AND l.objid = ($1::bigint & 4294967295)::oid",
        1, NULL, p, NULL, NULL, 0);
    out[0] = '\0';
    *pid = 0;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) {
        *pid = atoi(PQgetvalue(r, 0, 0));
        snprintf(out, outlen, "pid %s (%s, role %s, from %s, connected since %s)",
                 PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 3), PQgetvalue(r, 0, 2),
                 PQgetvalue(r, 0, 4));
    }
    PQclear(r);
}

int mig_lock_acquire(PGconn *c, double timeout, bool quiet, char err[MIG_ERR_LEN])
{
    double start = now_s(), pause = 0.1;
    int last_pid = -1;
    char holder[512] = "";
    for (;;) {
        int got = try_lock(c, err);
        if (got != 0)
            return got > 0 ? 0 : -1;
        int pid;
        describe_holder(c, holder, sizeof holder, &pid);
        if (pid != last_pid && !quiet)
            fprintf(stderr, "migrate: waiting for the migration lock, held by %s\n",
                    holder[0] ? holder : "another session");
        last_pid = pid;
        double waited = now_s() - start;
        if (waited >= timeout) {
            snprintf(err, MIG_ERR_LEN,
                     "gave up waiting for the migration lock after %.0f s: it is held by %s "
                     "(another migrate run; raise --lock-timeout or stop that run)",
                     timeout, holder[0] ? holder : "another session");
            return 1;
        }
        double left = timeout - waited;
        sleep_s(pause < left ? pause : left);
        pause = pause * 1.5 > 0.5 ? 0.5 : pause * 1.5;
    }
}

void mig_lock_release(PGconn *c)
{
    const char *p[] = {key_text};
    PQclear(PQexecParams(c, "SELECT pg_advisory_unlock($1::bigint)", 1, NULL, p, NULL, NULL, 0));
}
