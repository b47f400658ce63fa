/* schema_version: which migration the database is at, and which one this build expects.
 *
 * The application never changes the schema: `migrate up` does, before deploy. At startup the API
 * reads the applied version and logs a warning when the database is behind the migrations the
 * binary was built with, and its readiness check reports not-ready until it catches up.
 *
 * The expected version is fixed at configure time: CMake globs migrations/[0-9]*_*.sql
 * (CONFIGURE_DEPENDS, so adding a migration re-runs it) and writes the build-tree header
 * `migrations_latest.h`:
 *
 *     #define MIGRATIONS_LATEST_VERSION "0002"   ("" when there is no migration)
 *     #define MIGRATIONS_COUNT 2
 *
 * Any target linking `db` can include it; db_schema_expected() returns the same string.
 * Versions compare numerically (0010 > 0009 > 9), as migrate orders them. */
#ifndef DB_SCHEMA_VERSION_H
#define DB_SCHEMA_VERSION_H

#include <libpq-fe.h>
#include <stddef.h>

#include "db/engine.h"
#include "db/error.h"

typedef enum {
    DB_SCHEMA_FOUND = 0, /* out holds the newest applied version */
    DB_SCHEMA_NONE,      /* no schema_migrations table, or it is empty: nothing applied */
    DB_SCHEMA_ERROR,     /* the query failed: err says why (transient kinds: retry later) */
} db_schema_status;

/* MIGRATIONS_LATEST_VERSION: the newest migration this binary was built with ("" when none).
 * A static string. */
const char *db_schema_expected(void);

/* Reads the newest applied version from schema_migrations on `conn` (blocking; the caller owns
 * the connection; works through PgBouncer in transaction mode: one unnamed statement, one round
 * trip, no session state). A missing schema_migrations table is DB_SCHEMA_NONE: the statement
 * then fails (42P01, which the server logs), so call it outside an explicit transaction or in one
 * that may fail. Copies the version into out (outlen >= 32 is enough). */
db_schema_status db_schema_version(PGconn *conn, char *out, size_t outlen, db_error *err);

/* The same through a session: the engine's statement timeout applies, and in a coroutine the
 * waits yield to the event loop (the API's /ready and startup check). */
db_schema_status db_session_schema_version(db_session *s, char *out, size_t outlen, db_error *err);

/* Numeric comparison of two versions ("0002" vs "0010"): <0, 0 or >0. NULL or "" sorts first. */
int db_schema_version_cmp(const char *a, const char *b);

#endif
