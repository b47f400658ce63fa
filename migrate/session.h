/* session: what every command that touches the database shares: the files, the direct connection,
 * the migration lock, the history, and the integrity rules between files and history.
 *
 * One session per process, used from the main thread only. */
#ifndef MIGRATE_SESSION_H
#define MIGRATE_SESSION_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "migrate/cli.h"
#include "migrate/file.h"
#include "migrate/history.h"

typedef struct mig_session {
    const mig_opts *o;
    PGconn *conn;
    mig_files files;
    mig_history hist;
    bool locked;
} mig_session;

enum {
    MIG_NEED_FILES = 1,   /* load the .sql files of --dir */
    MIG_NEED_LOCK = 2,    /* take the migration lock and create schema_migrations if missing */
    MIG_NEED_HISTORY = 4, /* read schema_migrations */
};

/* Loads what `needs` asks for. Returns MIG_EXIT_OK, or the exit code after printing the error.
 * Always call mig_session_close afterwards. */
int mig_session_open(mig_session *s, const mig_opts *o, int needs);

/* The URL to connect to: --url, DATABASE_URL_UNPOOLED or DATABASE_URL, with a Neon pooled host
 * replaced by its direct host (one line on stderr says so unless --quiet). Returns a malloc'd
 * string, or NULL after printing the error with *rc set to the exit code. */
char *mig_resolve_url(const mig_opts *o, int *rc);

/* Releases the lock, closes the connection, frees everything. */
void mig_session_close(mig_session *s);

/* Re-reads the history (after changes). Returns MIG_EXIT_OK or MIG_EXIT_ERROR (printed). */
int mig_session_reload(mig_session *s);

/* After the connection died (a Neon compute restarted, a network blip): connects again with the
 * usual retries, takes the migration lock again and re-reads the history. Returns MIG_EXIT_OK or
 * the exit code after printing the error. */
int mig_session_reconnect(mig_session *s);

/* Integrity problems between files and history, each printed to `out` as one line naming the file:
 * an applied migration whose file changed (checksum) or is gone, and a pending file older than the
 * newest applied migration. Counts go to the out-params (any may be NULL). Returns the total. */
int mig_integrity(const mig_session *s, FILE *out, int *changed, int *missing, int *out_of_order);

/* Prints to stdout unless --quiet. */
void mig_say(const mig_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "migrate: error: ..." to stderr. */
void mig_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
