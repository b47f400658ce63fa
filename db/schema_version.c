/* schema_version: see schema_version.h. */
#include "db/schema_version.h"

#include <stdio.h>
#include <string.h>

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

db_schema_status db_schema_version(PGconn *conn, char *out, size_t outlen, db_error *err)
{
    out[0] = '\0';
    PGresult *r = PQexecParams(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL,
                               NULL, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error_from_result(err, conn, r);
        PQclear(r);
        return DB_SCHEMA_ERROR;
    }
    int exists = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!exists)
        return DB_SCHEMA_NONE;
    /* numeric order without casting (versions may exceed bigint): shorter digit runs first */
    r = PQexecParams(conn,
                     "SELECT version FROM schema_migrations ORDER BY "
                     "length(ltrim(version, '0')) DESC, ltrim(version, '0') DESC LIMIT 1",
                     0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error_from_result(err, conn, r);
        PQclear(r);
        return DB_SCHEMA_ERROR;
    }
    db_schema_status st = DB_SCHEMA_NONE;
    if (PQntuples(r) > 0) {
        snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
        st = DB_SCHEMA_FOUND;
    }
    PQclear(r);
    return st;
}
