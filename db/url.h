/* url: connection strings, parsed by libpq itself (PQconninfoParse), never by regular expressions.
 * Accepts both forms libpq accepts: URIs (postgresql://user:pw@host:5432/db?sslmode=require) and
 * key=value strings (host=... dbname=...). Every returned string is malloc'd and owned by the
 * caller (free()). Safe from any thread. */
#ifndef DB_URL_H
#define DB_URL_H

#include <stdbool.h>
#include <stddef.h>

/* Checks that `url` parses. Returns 0, or -1 with a one-line reason in err (never the password). */
int db_url_check(const char *url, char *err, size_t errlen);

/* The same connection string with the password replaced by "****", as a URI, for logs and messages.
 * Returns NULL only when the string does not parse or memory is exhausted. */
char *db_url_mask(const char *url);

/* A copy of `url` in key=value form with `key` set to `value` (or removed when value is NULL);
 * every other parameter passes through untouched. Returns NULL when `url` does not parse. */
char *db_url_with(const char *url, const char *key, const char *value);

/* The value of `key` in `url` (malloc'd), or NULL when absent, empty or unparseable. */
char *db_url_get(const char *url, const char *key);

/* Whether `url` names Neon's pooled endpoint: a host of neon.tech whose first label ends in
 * -pooler (ep-x-123-pooler.us-east-2.aws.neon.tech), every host if it names several. */
bool db_url_neon_pooler(const char *url);

#endif
