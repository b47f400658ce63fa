/* support: what the migrate integration tests share. Each test gets a database of its own
 * (created next to the suite's database, dropped at the end) and a temporary migrations directory,
 * and runs the real `migrate` binary against them. */
#ifndef TESTS_MIGRATE_SUPPORT_H
#define TESTS_MIGRATE_SUPPORT_H

#include <libpq-fe.h>

typedef struct mt {
    char db[64];
    char *url; /* direct URL of db (malloc'd) */
    char dir[64];
} mt;

/* Creates database <suite db>_<tag> and an empty temporary migrations directory; exports its URL
 * as MT_URL for shell command lines ("$MT_URL"). */
void mt_setup(mt *t, const char *tag);
/* Drops the database and removes the directory. */
void mt_teardown(mt *t);
/* Writes <dir>/<name> with `content`. Removes it when content is NULL. */
void mt_write(mt *t, const char *name, const char *content);
/* Runs `migrate --url <url> --dir <dir> <args>`; stdout+stderr into *out (malloc'd; may be NULL).
 * Returns the exit status. */
int mt_migrate(mt *t, const char *args, char **out);
/* Opens a connection to the test's database (PQfinish it). */
PGconn *mt_connect(mt *t);
/* Runs one SQL command on a fresh connection; returns the first value (malloc'd) or NULL. */
char *mt_query(mt *t, const char *sql);

#endif
