/* apply: running one migration section (up or down) and recording it, safely.
 *
 * Transactional (the default): BEGIN; SET LOCAL lock_timeout; each statement; the history row
 * inserted (up) or deleted (down); COMMIT. Any failure rolls everything back, so the database stays
 * exactly at the previous version: there is no "dirty" state to force.
 *
 * No-transaction (-- migrate:no-transaction): the statements are split (migrate/split.h) and sent
 * one at a time in autocommit, so CREATE INDEX CONCURRENTLY works and no transaction stays open
 * while it waits for others. The history row is written after the last statement succeeds. On
 * failure the error lists which statements ran and which did not, and any INVALID index left behind
 * is named.
 *
 * Every section starts from the session's defaults (RESET ALL, RESET ROLE, DISCARD TEMP and the
 * like; not DISCARD ALL, which would drop the migration lock), plus the lock_timeout below: no SET
 * of one file reaches the next.
 *
 * Errors name the file, the line of the failing statement and PostgreSQL's message (detail, hint).
 * Output goes to stdout/stderr; the connection is the caller's (blocking, direct). */
#ifndef MIGRATE_APPLY_H
#define MIGRATE_APPLY_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "migrate/file.h"

typedef struct mig_step {
    const char *label; /* how messages name it: the file path, or "version 0003 (from history)" */
    const char *version;
    const char *sql; /* the section's SQL */
    int first_line;  /* line of sql's first character in the file (1 for stored SQL) */
    bool no_transaction;
    const char *lock_timeout; /* the file's directive, or NULL for the run's default */
    const mig_file *file;     /* up: the file whose history row is inserted; NULL for down */
} mig_step;

/* Runs `step` with `default_lock_timeout` (a PostgreSQL duration such as "5s"; "0" disables) unless
 * the step has its own. Fills *elapsed_ms. Returns 0, or -1 with a multi-line message in err. */
int mig_apply(PGconn *c, const mig_step *step, const char *default_lock_timeout, long *elapsed_ms,
              char *err, size_t errlen);

/* Names the INVALID indexes of the database ("public.x, public.y") into out; "" when none. Returns
 * the number found, or -1 on error. */
int mig_invalid_indexes(PGconn *c, char *out, size_t outlen);

#endif
