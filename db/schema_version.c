/* schema_version: see schema_version.h. */
#include "db/schema_version.h"

#include <stdio.h>
#include <string.h>

#include "db/engine.h"
#include "migrations_latest.h"

const char *db_schema_expected(void)
{
    return MIGRATIONS_LATEST_VERSION;
}

int db_schema_version_cmp(const char *a, const char *b)
{
    a = a ? a : "";
    b = b ? b : "";
    while (*a == '0' && a[1])
        a++;
    while (*b == '0' && b[1])
        b++;
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return la < lb ? -1 : 1;
    int c = strcmp(a, b);
    return (c > 0) - (c < 0);
}

/* The statement, run by whoever holds the connection (a raw PGconn or a session). */
typedef PGresult *(*run_fn)(void *ctx, const char *sql, db_error *err);

/* One round trip (the readiness probe's whole cost against a distant database): the newest
 * version, and a missing table (42P01, undefined_table) read as "nothing applied" instead of
 * asking first whether the table exists. */
static db_schema_status read_version(run_fn run, void *ctx, char *out, size_t outlen, db_error *err)
{
    out[0] = '\0';
    /* numeric order without casting (versions may exceed bigint): shorter digit runs first */
    PGresult *r = run(ctx,
                      "SELECT version FROM schema_migrations ORDER BY "
                      "length(ltrim(version, '0')) DESC, ltrim(version, '0') DESC LIMIT 1",
                      err);
    if (!r)
        return err->kind == DB_ERR_QUERY && !strcmp(err->sqlstate, "42P01") ? DB_SCHEMA_NONE
                                                                            : DB_SCHEMA_ERROR;
    db_schema_status st = DB_SCHEMA_NONE;
    if (PQntuples(r) > 0) {
        snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
        st = DB_SCHEMA_FOUND;
    }
    PQclear(r);
    return st;
}

static PGresult *run_on_conn(void *ctx, const char *sql, db_error *err)
{
    PGconn *conn = ctx;
    PGresult *r = PQexecParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        return r;
    db_error_from_result(err, conn, r);
    PQclear(r);
    return NULL;
}

static PGresult *run_in_session(void *ctx, const char *sql, db_error *err)
{
    return db_query(ctx, sql, 0, NULL, err);
}

db_schema_status db_schema_version(PGconn *conn, char *out, size_t outlen, db_error *err)
{
    return read_version(run_on_conn, conn, out, outlen, err);
}

db_schema_status db_session_schema_version(db_session *s, char *out, size_t outlen, db_error *err)
{
    return read_version(run_in_session, s, out, outlen, err);
}
