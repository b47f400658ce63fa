/* conn: which URL migrate connects to, and opening that connection.
 *
 * Migrations need a session of their own (the advisory lock, no-transaction statements), which
 * PgBouncer in transaction mode cannot give: on Neon they must run over the direct endpoint. The
 * direct host is the pooled host with "-pooler" removed from its first label
 * (ep-x-123-pooler.us-east-2.aws.neon.tech -> ep-x-123.us-east-2.aws.neon.tech), so migrate
 * rewrites a pooled URL instead of failing. Parsing goes through libpq (db_url_get/db_url_with). */
#ifndef MIGRATE_CONN_H
#define MIGRATE_CONN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "db/error.h"

/* Rewrites a host (or comma-separated host list) whose first label ends in "-pooler" to the direct
 * host. Returns a malloc'd copy, rewritten or not; *changed tells which. NULL when out of memory.
 */
char *mig_direct_host(const char *hosts, bool *changed);

/* The same connection string pointed at the direct host. Returns a malloc'd string (key=value form
 * when rewritten, the input unchanged otherwise); *changed says whether it was rewritten; when it
 * was and old_host/new_host are given they receive the hosts (malloc'd, caller frees). NULL when
 * `url` does not parse (err filled). */
char *mig_direct_url(const char *url, bool *changed, char **old_host, char **new_host, char *err,
                     size_t errlen);

/* The URL to use: `flag_url` (--url) when given, else DATABASE_URL_UNPOOLED, else DATABASE_URL
 * (after the caller has loaded .env). *source receives the name of where it came from. Returns a
 * pointer owned by the caller's argv or the environment, or NULL when none is set. */
const char *mig_pick_url(const char *flag_url, const char **source);

/* Opens a blocking connection to `url` with db_connect (cold-start retries within `budget` seconds,
 * application_name "migrate"). On failure prints the error (and hint) to stderr, stores the kind
 * in *kind when kind is not NULL, and returns NULL. */
PGconn *mig_connect(const char *url, double budget, db_errkind *kind);

#endif
