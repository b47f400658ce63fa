/* cmd_misc: the commands that need no history: new and wait; and the dispatch table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "migrate/commands.h"
#include "migrate/conn.h"
#include "migrate/session.h"

int mig_cmd_new(const mig_opts *o)
{
    char path[4096], err[MIG_ERR_LEN];
    if (mig_file_create(o->dir, o->arg, path, sizeof path, err) < 0) {
        mig_fail("%s", err);
        return MIG_EXIT_USAGE;
    }
    printf("%s\n", path);
    return MIG_EXIT_OK;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int mig_cmd_wait(const mig_opts *o)
{
    int rc;
    char *url = mig_resolve_url(o, &rc);
    if (!url)
        return rc;
    double start = mono_s();
    db_errkind kind;
    /* db_connect retries refused connections and "starting up" with backoff within the budget */
    PGconn *c = mig_connect(url, o->timeout, &kind);
    free(url);
    if (!c) {
        if (kind == DB_ERR_TRANSIENT || kind == DB_ERR_POOL_TIMEOUT) {
            mig_fail("the database did not accept connections within %g s", o->timeout);
            return MIG_EXIT_TIMEOUT;
        }
        return MIG_EXIT_ERROR;
    }
    PGresult *r = PQexec(c, "SELECT 1");
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        mig_fail("the database accepted a connection but did not answer: %s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    if (ok && !o->quiet)
        printf("the database is ready (%.2f s)\n", mono_s() - start);
    return ok ? MIG_EXIT_OK : MIG_EXIT_ERROR;
}

int mig_cmd_run(const mig_opts *o)
{
    static const struct {
        const char *name;
        int (*fn)(const mig_opts *);
    } table[] = {
        {"new", mig_cmd_new},           {"up", mig_cmd_up},
        {"down", mig_cmd_down},         {"redo", mig_cmd_redo},
        {"baseline", mig_cmd_baseline}, {"status", mig_cmd_status},
        {"current", mig_cmd_current},   {"history", mig_cmd_history},
        {"wait", mig_cmd_wait},         {"check", mig_cmd_check},
        {"dump", mig_cmd_dump},         {"lint", mig_cmd_lint},
        {"diff", mig_cmd_diff},         {"diff", mig_cmd_diff},
    };
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (!strcmp(table[i].name, o->command))
            return table[i].fn(o);
    mig_fail("unknown command \"%s\"", o->command);
    return MIG_EXIT_USAGE;
}
