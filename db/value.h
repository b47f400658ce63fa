/* value: reading a result's values whatever their format. A statement run with
 * db_query_format(..., DB_BINARY, ...) returns PostgreSQL's binary send format, which spares the
 * server the text conversion of every value; a result a hook made (an Idempotency-Key replay)
 * has text columns. These readers take either, column by column (PQfformat), so a handler is
 * written once. Types: what they read must be the column's type (bigint, boolean, timestamp
 * without time zone); NULLs are the caller's to check (PQgetisnull). */
#ifndef DB_VALUE_H
#define DB_VALUE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A bigint (int8) column. */
int64_t db_value_int8(const PGresult *r, int row, int col);

/* A bigint column as decimal text into out (21 bytes is enough); returns out. */
char *db_value_int8_text(const PGresult *r, int row, int col, char out[24]);

/* A boolean column. */
bool db_value_bool(const PGresult *r, int row, int col);

/* A timestamp (without time zone, e.g. `ts at time zone 'UTC'`) column as ISO 8601 with a Z:
 * "2026-11-26T19:40:00.12Z", the fraction as PostgreSQL writes it (trailing zeros dropped, none
 * when whole), byte for byte what the text format's "2026-11-26 19:40:00.12" gives with its
 * space made a T. Writes at most DB_ISO_TIME_MAX bytes with the NUL; returns the length. */
#define DB_ISO_TIME_MAX 48
size_t db_value_iso_time(const PGresult *r, int row, int col, char out[DB_ISO_TIME_MAX]);

#endif
