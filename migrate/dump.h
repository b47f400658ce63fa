/* dump: a deterministic description of the live schema, built from the system catalogs.
 *
 * Not pg_dump: its output changes with the client version, and it needs a binary matching the
 * server. This uses the server's own pg_get_*def() functions, so the text depends only on the
 * schema and the server's major version. Covered: schemas, extensions, enum types, sequences that
 * are not identity columns, functions and procedures, tables with their columns (type, collation,
 * default, identity with its sequence options, generated, nullability), constraints, indexes
 * (INVALID ones are marked), views, triggers, comments. Not covered: ownership, grants, policies,
 * statistics (they differ between a local server and a Neon branch without being schema drift).
 * schema_migrations is left out. Objects come in a fixed order (kind, schema, name), so two
 * databases with the same schema give the same bytes. The output is valid SQL (statements end with
 * ';'), one column per line so that `migrate check` can show line differences. Names are always
 * schema-qualified (the dump runs with search_path = pg_catalog and restores it afterwards). */
#ifndef MIGRATE_DUMP_H
#define MIGRATE_DUMP_H

#include <libpq-fe.h>

#include "migrate/file.h"

/* Builds the dump. `applied_version` (may be NULL) is written in the header. Returns a malloc'd
 * string (caller frees), or NULL with err. */
char *mig_dump(PGconn *c, const char *applied_version, char err[MIG_ERR_LEN]);

#endif
