/* connect: opening one connection the way Neon needs it, shared by the engine and the migrate CLI.
 *
 * Waits through cold starts: transient failures (connection refused while the compute wakes, 08001,
 * 57P03 "the database system is starting up", 53300) are retried with exponential backoff and full
 * jitter (base 0.1 s doubling up to a 0.5 s cap per sleep) until `budget` seconds have passed.
 * Permanent failures (bad password, no such database, unknown host, TLS refused) return at once
 * with a hint. Each failed attempt is logged once with host, database, SQLSTATE and attempt number,
 * never the password. Thread-safe. */
#ifndef DB_CONNECT_H
#define DB_CONNECT_H

#include <libpq-fe.h>

#include "db/error.h"

typedef struct db_connect_opts {
    const char *application_name; /* set unless the URL names one; NULL: leave libpq's default */
    double connect_timeout;       /* seconds per attempt, fractions honoured; 0: 10 s. Enforced by
                                     our own poll() deadline: a connect_timeout in the URL is not
                                     used (libpq ignores it in non-blocking connects) */
    double budget;                /* seconds for all attempts together, sleeps included; an attempt
                                     is cut short at the budget; 0: one attempt only */
    const char *log_label; /* how logs name this connection ("engine", "migrate"); may be NULL */
} db_connect_opts;

/* Opens a connection to `url` (URI or key=value; every libpq parameter in it passes through).
 * Adds keepalives=1 and keepalives_idle=30 unless the URL sets them. Blocks the calling thread for
 * at most max(budget, connect_timeout) seconds. Returns the connection (the caller owns it:
 * PQfinish() it), or NULL with err filled: DB_ERR_TRANSIENT when the last attempt failed in a way
 * that may pass (refused, timeout, starting up, too many connections), DB_ERR_CONFIG when it
 * cannot pass (err->hint says what to fix). opts may be NULL (one attempt, 10 s). */
PGconn *db_connect(const char *url, const db_connect_opts *opts, db_error *err);

/* Warns (log line) when a host of `url` ends in .neon.tech and sslmode is weaker than require.
 * Returns 1 when it warned. */
int db_warn_insecure_neon(const char *url, const char *variable);

#endif
