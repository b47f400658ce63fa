/* split: cuts SQL text into statements the way psql does, so that a no-transaction migration can
 * send them one at a time (several CREATE INDEX CONCURRENTLY sent as one query run as one implicit
 * transaction and fail).
 *
 * Understands everything that can hide a semicolon: 'strings' (with '' and, for E'..', backslash
 * escapes), "identifiers", $tag$ dollar quotes $tag$ (but not $1 parameters), -- line comments,
 * nested block comments, parentheses, and CREATE FUNCTION/PROCEDURE ... BEGIN ATOMIC ... END bodies
 * (psql's heuristic). Written by hand because libpq has no SQL lexer and psql's is not a library,
 * and libpg_query's splitters do not fit: the scanner one cuts BEGIN ATOMIC bodies apart, the
 * parser one (PostgreSQL 15's grammar) rejects the whole file when one statement does not parse
 * (newer syntax for a 16/17 server, or a typo the server should report with its line).
 * tests/migrate/test_split.c checks that both agree on valid SQL.
 * Pure functions, no I/O, safe from any thread. */
#ifndef MIGRATE_SPLIT_H
#define MIGRATE_SPLIT_H

#include <stddef.h>

typedef struct mig_stmt {
    char *sql; /* the statement without its terminating ';', trimmed; malloc'd */
    int line;  /* line of its first token, counted from the `first_line` given to mig_split */
    int col;   /* column (1-based, in bytes) of its first token */
} mig_stmt;

/* A "-- ..." line comment, wherever it stands (its own line, indented, or after a statement). */
typedef struct mig_comment {
    char *text; /* from "--" to the end of its line; malloc'd */
    int line, col;
    size_t stmt; /* the statement it belongs to: the one it stands inside, else the one whose ';'
                    ends on its line, else the next one (== count when none follows) */
} mig_comment;

typedef struct mig_stmts {
    mig_stmt *items; /* malloc'd array owned by the list */
    size_t count;
    mig_comment *comments; /* malloc'd array owned by the list, in text order */
    size_t ncomments;
} mig_stmts;

/* Splits `sql` into statements. Statements that hold only whitespace and comments are dropped; a
 * final statement without ';' is kept. `first_line` is the line number of sql's first character in
 * its file. Returns 0, or -1 when memory runs out or a quote, dollar quote or block comment is not
 * closed (err then names the line where it opened). Free the list with mig_stmts_free() either way.
 */
int mig_split(const char *sql, int first_line, mig_stmts *out, char *err, size_t errlen);

void mig_stmts_free(mig_stmts *list);

#endif
