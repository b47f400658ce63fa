/* scratch: the two throw-away databases of `migrate diff` on the --dev-url server.
 *
 * mig_scratch_open creates migrate_diff_<pid>_<clock>_a and _b (the dev URL's role needs CREATEDB,
 * not superuser) and connects to both; mig_scratch_close drops them (WITH (FORCE)). SIGINT and
 * SIGTERM while they exist cancel the running statement (PQcancel is async-signal-safe) so that the
 * caller's error path closes, and so drops, them; mig_scratch_interrupted() then says so. One
 * scratch pair per process. */
#ifndef MIGRATE_SCRATCH_H
#define MIGRATE_SCRATCH_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "migrate/file.h"

typedef struct mig_scratch {
    PGconn *admin;   /* on the dev URL's own database */
    PGconn *conn[2]; /* A: the migrations replayed; B: schema.sql */
    char name[2][64];
    bool created[2];
} mig_scratch;

/* Returns 0, or -1 with a one-line err (no CREATEDB, cannot connect). Close it either way. */
int mig_scratch_open(mig_scratch *s, const char *dev_url, char err[MIG_ERR_LEN]);

/* Drops both databases and closes the connections; restores the signal handlers. */
void mig_scratch_close(mig_scratch *s);

/* Runs `sql` (from `label`, first line `first_line`) on c: statement by statement in autocommit
 * when no_tx, else inside one transaction. Returns 0, or -1 with "label:line:column: message" in
 * err: the line and column (in bytes) of the error's position when the server gives one (a syntax
 * error, an unknown table), else "label:line: message" with the statement's first line. */
int mig_scratch_run(PGconn *c, const char *label, const char *sql, int first_line, bool no_tx,
                    char err[MIG_ERR_LEN]);

/* True after SIGINT or SIGTERM arrived while the scratch databases existed. */
bool mig_scratch_interrupted(void);

#endif
