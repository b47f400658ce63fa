/* connect: opening one connection the way Neon needs it, shared by the engine and the migrate CLI.
 *
 * Waits through cold starts: transient failures (connection refused while the compute wakes, 08001,
 * 57P03 "the database system is starting up", 53300) are retried with exponential backoff and full
 * jitter (base 0.1 s doubling up to a 2 s cap per sleep) until `budget` seconds have passed. Permanent
 * failures (bad password, no such database, unknown host, TLS refused) return at once with a hint.
 * Each failed attempt is logged once with host, database, SQLSTATE and attempt number, never the
 * password. Thread-safe. */
#ifndef DB_CONNECT_H
#define DB_CONNECT_H

#include <libpq-fe.h>

#include "db/error.h"

typedef struct db_connect_opts {
    const char *application_name; /* set unless the URL names one; NULL: leave libpq's default */
    double connect_timeout;       /* seconds per attempt (libpq connect_timeout); 0: 10 s */
    double budget;                /* seconds for all attempts together; 0: one attempt only */
    const char *log_label;        /* how logs name this connection ("engine", "migrate"); may be NULL */
} db_connect_opts;

/* Opens a connection to `url` (URI or key=value; every libpq parameter in it passes through).
 * Adds keepalives. Returns the connection (PQfinish() it), or NULL with err filled. */
PGconn *db_connect(const char *url, const db_connect_opts *opts, db_error *err);

/* Warns (log line) when a host of `url` ends in .neon.tech and sslmode is weaker than require.
 * Returns 1 when it warned. */
int db_warn_insecure_neon(const char *url, const char *variable);

#endif
