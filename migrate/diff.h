/* diff: line differences between two texts, for `migrate check` (schema.sql against the live dump).
 *
 * A longest-common-subsequence diff over lines (written here: nothing packaged for C does this in a
 * few lines). Each changed line is printed as "-line" (only in `expected`) or "+line" (only in
 * `actual`), under the first line of the statement it belongs to (the last line before it that does
 * not start with a space), so a changed column is shown under its CREATE TABLE. Pure; writes to
 * `out`. */
#ifndef MIGRATE_DIFF_H
#define MIGRATE_DIFF_H

#include <stdio.h>

/* Prints the differences to `out` (may be NULL to only count). Returns the number of changed lines
 * (0: identical), or -1 when out of memory. */
int mig_diff_lines(const char *expected, const char *actual, FILE *out);

#endif
