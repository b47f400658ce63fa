/* history: see history.h. */
#include "migrate/history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate/version.h"

static const char create_sql[] = "CREATE TABLE IF NOT EXISTS schema_migrations (\n"
                                 "    version        text PRIMARY KEY,\n"
                                 "    name           text NOT NULL,\n"
                                 "    checksum       text NOT NULL,\n"
                                 "    no_transaction boolean NOT NULL DEFAULT false,\n"
                                 "    lock_timeout   text,\n"
                                 "    down_sql       text NOT NULL DEFAULT '',\n"
                                 "    baseline       boolean NOT NULL DEFAULT false,\n"
                                 "    applied_at     timestamptz NOT NULL DEFAULT now(),\n"
                                 "    execution_ms   bigint NOT NULL DEFAULT 0,\n"
                                 "    applied_by     text NOT NULL DEFAULT current_user,\n"
                                 "    client_host    text,\n"
                                 "    client_addr    inet DEFAULT inet_client_addr(),\n"
                                 "    tool_version   text\n"
                                 ")";

static int fail(PGresult *r, PGconn *c, const char *what, char err[MIG_ERR_LEN])
{
    const char *m = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
    snprintf(err, MIG_ERR_LEN, "%s: %.*s", what, (int)strcspn(m, "\n"), m);
    PQclear(r);
    return -1;
}

int mig_history_ensure(PGconn *c, char err[MIG_ERR_LEN])
{
    /* look first: IF NOT EXISTS alone would print a NOTICE on every run */
    PGresult *r = PQexecParams(c, "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL,
                               NULL, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return fail(r, c, "could not look for schema_migrations", err);
    bool exists = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (exists)
        return 0;
    r = PQexecParams(c, create_sql, 0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return fail(r, c, "could not create schema_migrations", err);
    PQclear(r);
    return 0;
}

void mig_history_free(mig_history *h)
{
    for (size_t i = 0; i < h->count; i++) {
        mig_applied *a = &h->items[i];
        free(a->name);
        free(a->checksum);
        free(a->down_sql);
        free(a->lock_timeout);
        free(a->applied_at);
        free(a->applied_by);
    }
    free(h->items);
    memset(h, 0, sizeof *h);
}

static int by_version(const void *a, const void *b)
{
    return db_schema_version_cmp(((const mig_applied *)a)->version,
                                 ((const mig_applied *)b)->version);
}

int mig_history_load(PGconn *c, mig_history *h, char err[MIG_ERR_LEN])
{
    memset(h, 0, sizeof *h);
    PGresult *r = PQexecParams(c, "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL,
                               NULL, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return fail(r, c, "could not read schema_migrations", err);
    h->table_exists = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!h->table_exists)
        return 0;
    r = PQexecParams(c,
                     "SELECT version, name, checksum, down_sql, lock_timeout, no_transaction, "
                     "baseline, to_char(applied_at AT TIME ZONE 'UTC', "
                     "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), execution_ms, "
                     "applied_by || coalesce('@' || client_host, '') FROM schema_migrations",
                     0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return fail(r, c, "could not read schema_migrations", err);
    int n = PQntuples(r);
    h->items = calloc((size_t)n + 1, sizeof *h->items);
    if (!h->items)
        return fail(r, c, "out of memory", err);
    for (int i = 0; i < n; i++) {
        mig_applied *a = &h->items[i];
        snprintf(a->version, sizeof a->version, "%s", PQgetvalue(r, i, 0));
        a->name = strdup(PQgetvalue(r, i, 1));
        a->checksum = strdup(PQgetvalue(r, i, 2));
        a->down_sql = strdup(PQgetvalue(r, i, 3));
        a->lock_timeout = PQgetisnull(r, i, 4) ? NULL : strdup(PQgetvalue(r, i, 4));
        a->no_transaction = PQgetvalue(r, i, 5)[0] == 't';
        a->baseline = PQgetvalue(r, i, 6)[0] == 't';
        a->applied_at = strdup(PQgetvalue(r, i, 7));
        a->execution_ms = atol(PQgetvalue(r, i, 8));
        a->applied_by = strdup(PQgetvalue(r, i, 9));
        h->count++;
    }
    PQclear(r);
    if (h->count > 1)
        qsort(h->items, h->count, sizeof *h->items, by_version);
    return 0;
}

const mig_applied *mig_history_find(const mig_history *h, const char *version)
{
    for (size_t i = 0; i < h->count; i++)
        if (!db_schema_version_cmp(h->items[i].version, version))
            return &h->items[i];
    return NULL;
}

const mig_applied *mig_history_latest(const mig_history *h)
{
    return h->count ? &h->items[h->count - 1] : NULL;
}

int mig_history_insert(PGconn *c, const mig_file *f, long execution_ms, bool baseline,
                       char err[MIG_ERR_LEN])
{
    char ms[32], host[256] = "";
    snprintf(ms, sizeof ms, "%ld", execution_ms);
    if (gethostname(host, sizeof host - 1) != 0)
        host[0] = '\0';
    const char *params[] = {f->version,
                            f->name,
                            f->checksum,
                            f->no_transaction ? "t" : "f",
                            f->lock_timeout,
                            f->down,
                            baseline ? "t" : "f",
                            ms,
                            host[0] ? host : NULL,
                            MIGRATE_VERSION};
    PGresult *r = PQexecParams(c,
                               "INSERT INTO schema_migrations (version, name, checksum, "
                               "no_transaction, lock_timeout, down_sql, baseline, execution_ms, "
                               "client_host, tool_version) "
                               "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                               10, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return fail(r, c, "could not record the migration in schema_migrations", err);
    PQclear(r);
    return 0;
}

int mig_history_delete(PGconn *c, const char *version, char err[MIG_ERR_LEN])
{
    const char *params[] = {version};
    PGresult *r = PQexecParams(c, "DELETE FROM schema_migrations WHERE version = $1", 1, NULL,
                               params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return fail(r, c, "could not delete from schema_migrations", err);
    PQclear(r);
    return 0;
}
