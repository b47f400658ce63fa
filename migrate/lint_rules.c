/* lint_rules: the rules of migrate lint (see lint.h) and their safe alternatives, after the
 * reference table of squawk, strong_migrations and Atlas lint (docs/migrations.md lists them). */
#include "migrate/lint.h"

#define NO_TX "in a \"-- migrate:no-transaction\" file"
const mig_lint_rule mig_lint_rules[] = {
    {"index-not-concurrent", true,
     "CREATE INDEX CONCURRENTLY IF NOT EXISTS ... " NO_TX " (a SHARE lock blocks writes for the "
     "whole build)"},
    {"concurrently-in-transaction", true,
     "move the CONCURRENTLY statement into its own file with \"-- migrate:no-transaction\""},
    {"drop-index-not-concurrent", true, "DROP INDEX CONCURRENTLY IF EXISTS ... " NO_TX},
    {"no-transaction-if-not-exists", true,
     "add IF NOT EXISTS / IF EXISTS: a no-transaction file that failed half way is run again"},
    {"no-transaction-add-constraint", true,
     "precede it with ALTER TABLE ... DROP CONSTRAINT IF EXISTS <name> (a no-transaction file that "
     "failed half way is run again), or move it to a transactional file"},
    {"add-foreign-key", true,
     "ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID, then VALIDATE CONSTRAINT in a later "
     "no-transaction file (SHARE UPDATE EXCLUSIVE only)"},
    {"add-check", true,
     "ADD CONSTRAINT ... CHECK (...) NOT VALID, then VALIDATE CONSTRAINT in a later no-transaction "
     "file"},
    {"validate-in-add-transaction", true,
     "move VALIDATE CONSTRAINT into a later \"-- migrate:no-transaction\" file (each statement "
     "commits on its own), so the ADD's ACCESS EXCLUSIVE lock is released before the scan"},
    {"set-not-null", true,
     "ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; then, in a later no-transaction file, "
     "VALIDATE CONSTRAINT c, SET NOT NULL (no scan) and DROP CONSTRAINT IF EXISTS c"},
    {"add-column-not-null", true,
     "add the column nullable (or with a constant DEFAULT), backfill, then the SET NOT NULL route"},
    {"volatile-default", true,
     "add the column without a default, SET DEFAULT afterwards, backfill existing rows in batches"},
    {"column-type-change", true,
     "a lossless rewrite (int to bigint) or a lossy cast alike: add a column of the new type, "
     "write both, backfill in batches, switch readers, drop the old one (diff: --allow-rewrite "
     "for a small table)"},
    {"column-type-maybe-rewrite", false,
     "keep it when the column is varchar(n) growing or varchar to text; otherwise treat it as "
     "column-type-change"},
    {"add-unique-constraint", true,
     "CREATE UNIQUE INDEX CONCURRENTLY (no-transaction file), then ADD CONSTRAINT ... UNIQUE USING "
     "INDEX ..."},
    {"add-primary-key", true,
     "CREATE UNIQUE INDEX CONCURRENTLY (no-transaction file), then ADD CONSTRAINT ... PRIMARY KEY "
     "USING INDEX ..."},
    {"add-exclusion-constraint", true,
     "an exclusion constraint builds its index under ACCESS EXCLUSIVE: add it while the table is "
     "small or in a maintenance window (lint-ignore with the reason)"},
    {"rename-column", true,
     "expand and contract: add the new column, write both, switch readers, drop the old one later"},
    {"rename-table", true,
     "expand and contract (or a view with the old name) so that running code keeps working"},
    {"drop-table", true,
     "stop using the table, deploy, then drop it in a later migration (lint-ignore with the "
     "release that stopped using it)"},
    {"drop-column", true,
     "stop reading and writing the column, deploy, then drop it in a later migration (lint-ignore "
     "with the release)"},
    {"enum-value-removal", true,
     "PostgreSQL cannot remove an enum value: create a new type, convert the column, drop the old "
     "type (written by hand)"},
    {"enum-rename-value", true, "add the new value, migrate the rows, stop using the old one"},
    {"enum-add-value-in-transaction", false,
     "the new value cannot be used before the transaction commits: put ADD VALUE in a "
     "no-transaction file before the statements that use it"},
    {"int-primary-key", false, "bigint GENERATED ALWAYS AS IDENTITY (int overflows at 2^31)"},
    {"vacuum-full", true, "pg_repack, or plain VACUUM"},
    {"cluster", true, "pg_repack"},
    {"reindex-not-concurrent", true, "REINDEX ... CONCURRENTLY " NO_TX},
    {"truncate", true,
     "DELETE in batches (TRUNCATE takes ACCESS EXCLUSIVE and, with CASCADE, empties the tables "
     "that reference it too); lint-ignore when the table is meant to be emptied"},
    {"dml-without-where", true,
     "backfill in batches (UPDATE ... WHERE id BETWEEN ...) in a no-transaction file, or "
     "lint-ignore for a table known to be small"},
    {"do-block-ddl", false,
     "write the DDL as plain statements so that lint checks them; keep DO for what SQL cannot "
     "say"},
    {"transaction-control", true,
     "remove BEGIN/COMMIT: migrate runs the file in one transaction; for statements that must "
     "commit one by one use \"-- migrate:no-transaction\""},
    {"lock-timeout-disabled", false,
     "keep a lock_timeout (migrate sets 5s): a DDL waiting on a lock queues every later query"},
    {"unparsed", false, "check the statement by hand: migrate lint uses PostgreSQL 15's parser"},
    {"lint-ignore-invalid", true, "-- migrate:lint-ignore <rule-id> <reason>"},
    {"lint-ignore-unused", false,
     "put the lint-ignore inside, after (on the same line) or just before the statement it "
     "accepts, or remove it"},
    {NULL, false, NULL},
};
