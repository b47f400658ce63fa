/* lint: static checks of migration SQL for the DDL that locks or rewrites a busy table, breaks the
 * running code, or fails at run time (the outage class squawk and strong_migrations catch).
 *
 * Each statement of a file's up section is parsed with libpg_query (PostgreSQL 15's own parser) and
 * checked against the rules of mig_lint_rules. A table created earlier in the same file is new: the
 * lock rules do not apply to it. A finding is printed as
 *
 *     <file>:<line>:<column>: <rule-id>: <message>
 *         safe: <the online-safe alternative>
 *
 * where line:column is the statement's first token, or the clause the finding is about when the
 * parse tree gives its position (a column, a constraint, a truncated table, a parse error).
 *
 * "-- migrate:lint-ignore <rule-id> <reason>" accepts one finding knowingly. It is read wherever
 * the comment stands (its own line, indented, or after a statement on the same line) and applies
 * to the statement it stands inside, else to the statement it follows on its line, else to the
 * next statement. A reason is required; an ignore that accepts nothing is reported
 * (lint-ignore-unused), and so is a comment that mentions lint-ignore in another form. A statement
 * the PostgreSQL 15 parser cannot read is reported as a warning (not linted) and still runs: the
 * server decides. Splitting uses migrate/split.h (see there why). */
#ifndef MIGRATE_LINT_H
#define MIGRATE_LINT_H

#include <stdbool.h>
#include <stdio.h>

#include "migrate/file.h"

typedef struct mig_lint_rule {
    const char *id;
    bool error; /* error-level: `lint` exits 3 and `up` refuses; else a warning */
    const char *safe;
} mig_lint_rule;

/* The rules, terminated by an entry with id NULL. */
extern const mig_lint_rule mig_lint_rules[];

typedef struct mig_lint_counts {
    int errors, warnings, ignored;
} mig_lint_counts;

/* What lint learns from the files it reads, for the files after them: the declared type of each
 * column (so that varchar(n) growing or becoming text, which only changes the catalog, is not
 * reported as a rewrite). Lint the files in version order, applied ones included (their findings
 * discarded), with one memory. Zero-initialise; free with mig_lint_memory_free. NULL where a
 * function takes one: the file is linted on its own. */
typedef struct mig_lint_memory {
    char **cols;  /* "table.column" (malloc'd) */
    char **types; /* "varchar(20)", "text", "int8", ...; "" once forgotten (malloc'd) */
    size_t count;
} mig_lint_memory;

void mig_lint_memory_free(mig_lint_memory *m);

/* Lints `sql` (an up section whose first line is `first_line` of `path`), printing findings to
 * `out` (may be NULL) and adding to *counts. Returns 0, or -1 when the SQL cannot be split (the
 * message is printed to `out` and counted as an error). */
int mig_lint_sql(const char *path, const char *sql, int first_line, bool no_transaction, FILE *out,
                 mig_lint_counts *counts, mig_lint_memory *mem);

/* Lints a loaded migration file's up section (with its no-transaction and lock-timeout directives).
 */
int mig_lint_file(const mig_file *f, FILE *out, mig_lint_counts *counts, mig_lint_memory *mem);

#endif
