/* lock: one migration runner at a time per database.
 *
 * A session-level advisory lock on migrate's own direct connection, taken only by polling
 * pg_try_advisory_lock: a blocking pg_advisory_lock would hold a transaction-less wait that
 * CREATE INDEX CONCURRENTLY from the lock holder then waits on (the golang-migrate/Flyway
 * deadlock). While waiting it prints who holds the lock (pid, application_name, client address,
 * since when), again whenever the holder changes. The lock dies with the connection, so a crashed
 * runner never leaves it behind. Through PgBouncer in transaction mode a session lock leaks onto a
 * pooled backend, which is why migrate never uses the pooled URL. */
#ifndef MIGRATE_LOCK_H
#define MIGRATE_LOCK_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "migrate/file.h"

/* The advisory lock key: the bytes of "migrate!" read as a big-endian number. */
#define MIG_LOCK_KEY 0x6d69677261746521LL

/* Waits up to `timeout` seconds (polling every 100 to 500 ms). Returns 0 when held, 1 on timeout
 * (err names the holder), -1 on a database error (err). Progress lines go to stderr unless quiet.
 */
int mig_lock_acquire(PGconn *c, double timeout, bool quiet, char err[MIG_ERR_LEN]);

/* Releases the lock (errors are ignored: closing the connection releases it anyway). */
void mig_lock_release(PGconn *c);

#endif
