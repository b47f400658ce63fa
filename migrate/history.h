/* history: the schema_migrations table, migrate's record of what ran.
 *
 * One row per applied migration: version, name, sha256 of the file, whether it ran outside a
 * transaction, its lock_timeout directive, its down SQL (so `down` works when the file is gone, as
 * on a Neon branch that holds migrations from another git branch), when, how long, and who
 * (database role, client host name, client address, tool version). Rows are written in the same
 * transaction as the migration they describe. All functions take a blocking PGconn owned by the
 * caller and use parameterized SQL only. */
#ifndef MIGRATE_HISTORY_H
#define MIGRATE_HISTORY_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "migrate/file.h"

typedef struct mig_applied {
    char version[MIG_VERSION_MAX];
    char *name, *checksum, *down_sql, *lock_timeout; /* lock_timeout NULL when the file had none */
    bool no_transaction, baseline;
    char *applied_at; /* text, ISO 8601 UTC */
    long execution_ms;
    char *applied_by; /* "role@host" */
} mig_applied;

typedef struct mig_history {
    mig_applied *items; /* sorted by version */
    size_t count;
    bool table_exists;
} mig_history;

/* Creates schema_migrations when missing. Call with the migration lock held. Returns 0 or -1 (err).
 */
int mig_history_ensure(PGconn *c, char err[MIG_ERR_LEN]);

/* Reads every row (an absent table reads as empty). Returns 0 or -1 (err). Free with _free. */
int mig_history_load(PGconn *c, mig_history *out, char err[MIG_ERR_LEN]);

void mig_history_free(mig_history *h);

/* The row for `version`, or NULL. The newest applied row, or NULL. */
const mig_applied *mig_history_find(const mig_history *h, const char *version);
const mig_applied *mig_history_latest(const mig_history *h);

/* Inserts the row for file `f` on `c` (inside the caller's transaction, if any). */
int mig_history_insert(PGconn *c, const mig_file *f, long execution_ms, bool baseline,
                       char err[MIG_ERR_LEN]);

/* Deletes the row of `version`. */
int mig_history_delete(PGconn *c, const char *version, char err[MIG_ERR_LEN]);

#endif
