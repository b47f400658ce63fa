/* lint: static checks of migration SQL for the DDL that locks or rewrites a busy table, breaks the
 * running code, or fails at run time (the outage class squawk and strong_migrations catch).
 *
 * Each statement of a file's up section is parsed with libpg_query (PostgreSQL 15's own parser) and
 * checked against the rules of mig_lint_rules. A table created earlier in the same file is new: the
 * lock rules do not apply to it. A finding is printed as
 *
 *     <file>:<line>: <rule-id>: <message>
 *         safe: <the online-safe alternative>
 *
 * "-- migrate:lint-ignore <rule-id> <reason>" accepts one finding knowingly: it applies to the
 * statement whose text contains the comment's line, else to the next statement after it. A reason
 * is required. A statement the PostgreSQL 15 parser cannot read is reported as a warning (not
 * linted) and still runs: the server decides. Splitting uses migrate/split.h (see there why). */
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

/* Lints `sql` (an up section whose first line is `first_line` of `path`), printing findings to
 * `out` (may be NULL) and adding to *counts. Returns 0, or -1 when the SQL cannot be split (the
 * message is printed to `out` and counted as an error). */
int mig_lint_sql(const char *path, const char *sql, int first_line, bool no_transaction, FILE *out,
                 mig_lint_counts *counts);

/* Lints a loaded migration file's up section (with its no-transaction and lock-timeout directives).
 */
int mig_lint_file(const mig_file *f, FILE *out, mig_lint_counts *counts);

#endif
