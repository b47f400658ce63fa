/* migrate/lint: every rule with a failing and a passing example (parsed by libpg_query, no
 * database), lint-ignore, and `migrate up` refusing what lint finds (real binary, real database).
 * `tasks` stands for a table that exists before the migration. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/lint.h"
#include "tests/migrate/support.h"
#include "tests/support/pgtest.h"

/* Lints sql and returns the printed findings (malloc'd). */
static char *lint(const char *sql, bool no_tx, mig_lint_counts *n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    *n = (mig_lint_counts){0};
    mig_lint_sql("f.sql", sql, 10, no_tx, out, n, NULL);
    fclose(out);
    return buf;
}

typedef struct {
    const char *rule;
    bool no_tx;
    const char *bad, *good;
} example;

static const example examples[] = {
    {"index-not-concurrent", false, "CREATE INDEX i ON tasks (a)",
     "CREATE TABLE n (a int); CREATE INDEX i ON n (a)"},
    {"concurrently-in-transaction", false, "CREATE INDEX CONCURRENTLY i ON tasks (a)", "SELECT 1"},
    {"drop-index-not-concurrent", false, "DROP INDEX i", "SELECT 1"},
    {"no-transaction-if-not-exists", true, "CREATE INDEX CONCURRENTLY i ON tasks (a)",
     "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON tasks (a)"},
    {"add-foreign-key", false,
     "ALTER TABLE tasks ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES users (id)",
     "ALTER TABLE tasks ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES users (id) NOT VALID"},
    {"validate-in-add-transaction", false,
     "ALTER TABLE tasks ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\n"
     "ALTER TABLE tasks VALIDATE CONSTRAINT c",
     "ALTER TABLE tasks VALIDATE CONSTRAINT c"},
    {"add-check", false, "ALTER TABLE tasks ADD CONSTRAINT c CHECK (a > 0)",
     "ALTER TABLE tasks ADD CONSTRAINT c CHECK (a > 0) NOT VALID"},
    {"set-not-null", false, "ALTER TABLE tasks ALTER COLUMN a SET NOT NULL",
     "ALTER TABLE tasks VALIDATE CONSTRAINT a_nn;\nALTER TABLE tasks ALTER COLUMN a SET NOT NULL;\n"
     "ALTER TABLE tasks DROP CONSTRAINT a_nn"},
    {"add-column-not-null", false, "ALTER TABLE tasks ADD COLUMN b int NOT NULL",
     "ALTER TABLE tasks ADD COLUMN b int NOT NULL DEFAULT 0"},
    {"volatile-default", false, "ALTER TABLE tasks ADD COLUMN u uuid DEFAULT gen_random_uuid()",
     "ALTER TABLE tasks ADD COLUMN t timestamptz DEFAULT now()"},
    {"column-type-change", false, "ALTER TABLE tasks ALTER COLUMN a TYPE bigint",
     "ALTER TABLE tasks ALTER COLUMN a SET DEFAULT 1"},
    {"column-type-maybe-rewrite", false, "ALTER TABLE tasks ALTER COLUMN a TYPE varchar(200)",
     "ALTER TABLE tasks ALTER COLUMN a TYPE bigint"},
    {"add-unique-constraint", false, "ALTER TABLE tasks ADD CONSTRAINT u UNIQUE (a)",
     "ALTER TABLE tasks ADD CONSTRAINT u UNIQUE USING INDEX u_idx"},
    {"add-primary-key", false, "ALTER TABLE tasks ADD PRIMARY KEY (a)",
     "ALTER TABLE tasks ADD CONSTRAINT p PRIMARY KEY USING INDEX p_idx"},
    {"add-exclusion-constraint", false,
     "ALTER TABLE tasks ADD CONSTRAINT x EXCLUDE USING gist (r WITH &&)",
     "CREATE TABLE n (r int4range, EXCLUDE USING gist (r WITH &&))"},
    {"rename-column", false, "ALTER TABLE tasks RENAME COLUMN a TO b",
     "CREATE TABLE n (a int); ALTER TABLE n RENAME COLUMN a TO b"},
    {"rename-table", false, "ALTER TABLE tasks RENAME TO jobs",
     "CREATE TABLE n (a int); ALTER TABLE n RENAME TO m"},
    {"drop-table", false, "DROP TABLE tasks", "CREATE TABLE n (a int); DROP TABLE n"},
    {"drop-column", false, "ALTER TABLE tasks DROP COLUMN a",
     "CREATE TABLE n (a int, b int); ALTER TABLE n DROP COLUMN a"},
    {"enum-value-removal", false, "DELETE FROM pg_enum WHERE enumlabel = 'x'",
     "DELETE FROM tasks WHERE a = 'x'"},
    {"enum-rename-value", false, "ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'",
     "ALTER TYPE mood RENAME TO feeling"},
    {"enum-add-value-in-transaction", false, "ALTER TYPE mood ADD VALUE 'meh'", "SELECT 1"},
    {"int-primary-key", false, "CREATE TABLE n (id serial PRIMARY KEY)",
     "CREATE TABLE n (id bigint GENERATED ALWAYS AS IDENTITY, PRIMARY KEY (id))"},
    {"vacuum-full", false, "VACUUM FULL tasks", "VACUUM tasks"},
    {"cluster", false, "CLUSTER tasks USING tasks_pkey", "ANALYZE tasks"},
    {"reindex-not-concurrent", false, "REINDEX TABLE tasks", "SELECT 1"},
    {"lock-timeout-disabled", false, "SET lock_timeout = 0", "SET lock_timeout = '10s'"},
    {"unparsed", false, "ALTER TABLE tasks FROBNICATE", "SELECT 1"},
    {"lint-ignore-invalid", false, "-- migrate:lint-ignore drop-table\nDROP TABLE tasks",
     "-- migrate:lint-ignore drop-table release 1.4 stopped using it\nDROP TABLE tasks"},
    {"lint-ignore-unused", false, "-- migrate:lint-ignore drop-table gone in 1.4\nSELECT 1",
     "-- migrate:lint-ignore drop-table gone in 1.4\nDROP TABLE tasks"},
    {"no-transaction-add-constraint", true,
     "ALTER TABLE tasks ADD CONSTRAINT c CHECK (a > 0) NOT VALID",
     "ALTER TABLE tasks DROP CONSTRAINT IF EXISTS c;\n"
     "ALTER TABLE tasks ADD CONSTRAINT c CHECK (a > 0) NOT VALID"},
    {"truncate", false, "TRUNCATE tasks CASCADE", "CREATE TABLE n (a int); TRUNCATE n"},
    {"dml-without-where", false, "UPDATE tasks SET a = 0",
     "UPDATE tasks SET a = 0 WHERE id BETWEEN 1 AND 1000"},
    {"do-block-ddl", false,
     "DO $$ BEGIN IF true THEN EXECUTE 'ALTER TABLE tasks ADD b int'; END IF; END $$",
     "DO $$ BEGIN RAISE NOTICE 'backfilled'; END $$"},
    {"transaction-control", false, "UPDATE tasks SET a = 0 WHERE a IS NULL;\nCOMMIT",
     "SAVEPOINT s; RELEASE SAVEPOINT s"},
};

Test(lint, every_rule_has_a_failing_and_a_passing_example)
{
    size_t n_rules = 0;
    for (const mig_lint_rule *r = mig_lint_rules; r->id; r++) {
        n_rules++;
        const example *e = NULL;
        for (size_t i = 0; i < sizeof examples / sizeof *examples; i++)
            if (!strcmp(examples[i].rule, r->id))
                e = &examples[i];
        cr_assert_not_null(e, "rule %s has no example", r->id);
        char tag[96];
        snprintf(tag, sizeof tag, ": %s: ", r->id);
        mig_lint_counts n;
        char *out = lint(e->bad, e->no_tx, &n);
        cr_expect(strstr(out, tag), "%s: not found in\n%s\n---\n%s", r->id, e->bad, out);
        cr_expect(strstr(out, "\n    safe: "), "%s: no safe alternative:\n%s", r->id, out);
        cr_expect_eq(r->error ? n.errors : n.warnings,
                     !strcmp(r->id, "lint-ignore-invalid") ? 2 : 1, "%s: counts %d/%d\n%s", r->id,
                     n.errors, n.warnings, out);
        free(out);
        out = lint(e->good, e->no_tx, &n);
        cr_expect_null(strstr(out, tag), "%s: reported for the safe form\n%s\n---\n%s", r->id,
                       e->good, out);
        free(out);
    }
    cr_assert_eq(n_rules, sizeof examples / sizeof *examples);
}

Test(lint, findings_name_file_and_line_and_new_tables_are_exempt)
{
    mig_lint_counts n;
    char *out = lint("CREATE TABLE items (id bigint);\n\nALTER TABLE items ADD COLUMN b int NOT "
                     "NULL;\nCREATE INDEX i ON items (b);\n\n  CREATE INDEX j ON tasks (b);",
                     false, &n);
    cr_assert_str_eq(out, "f.sql:15:3: index-not-concurrent: CREATE INDEX on existing table tasks "
                          "blocks its writes while the index builds\n    safe: CREATE INDEX "
                          "CONCURRENTLY IF NOT EXISTS ... in a \"-- migrate:no-transaction\" file "
                          "(a SHARE lock blocks writes for the whole build)\n");
    cr_assert_eq(n.errors, 1);
    free(out);
}

Test(lint, ignore_applies_to_one_statement_only)
{
    mig_lint_counts n;
    char *out = lint("-- migrate:lint-ignore drop-column nobody reads b since 2.0\n"
                     "ALTER TABLE tasks DROP COLUMN b;\nALTER TABLE tasks DROP COLUMN c;\n"
                     "ALTER TABLE tasks DROP COLUMN d; -- migrate:lint-ignore drop-column same\n",
                     false, &n);
    cr_assert_eq(n.ignored, 2, "%s", out);
    cr_assert_eq(n.errors, 1, "%s", out);
    cr_assert(strstr(out, "f.sql:12:1: drop-column: dropping tasks.c"), "%s", out);
    free(out);
}

/* An ignore that is indented, trails a statement or sits inside one is read; one in another form
 * is reported, not silently dropped. */
Test(lint, indented_trailing_and_inner_ignores_are_read_others_rejected_loudly)
{
    mig_lint_counts n;
    char *out = lint("  -- migrate:lint-ignore drop-table a was replaced in 2.0\n"
                     "DROP TABLE a;\n"
                     "DROP TABLE b;   -- migrate:lint-ignore drop-table b too\n"
                     "ALTER TABLE tasks\n    -- migrate:lint-ignore drop-column c unused\n"
                     "    DROP COLUMN c;\n"
                     "--migrate:lint-ignore drop-table d as well\nDROP TABLE d;\n",
                     false, &n);
    cr_assert_eq(n.ignored, 4, "%s", out);
    cr_assert_eq(n.errors + n.warnings, 0, "%s", out);
    free(out);
    out = lint("DROP TABLE a; -- migrate: lint-ignore drop-table typo\n"
               "-- migrate:lint-ignore: drop-table colon\nDROP TABLE b;\n",
               false, &n);
    cr_assert(strstr(out, "f.sql:10:15: lint-ignore-invalid: this comment mentions lint-ignore"),
              "%s", out);
    cr_assert(strstr(out, "f.sql:11:1: lint-ignore-invalid:"), "%s", out);
    cr_assert_eq(n.ignored, 0, "%s", out);
    cr_assert_eq(n.errors, 4, "%s", out); /* two drop-table, two invalid ignores */
    free(out);
}

Test(lint, findings_point_at_the_clause_line_and_column)
{
    mig_lint_counts n;
    char *out = lint("ALTER TABLE tasks\n  ADD COLUMN b int,\n  ADD COLUMN c uuid NOT NULL;\n"
                     "   TRUNCATE n, tasks;\nSELECT 1 +;",
                     false, &n);
    cr_assert(strstr(out, "f.sql:12:14: add-column-not-null: column tasks.c"), "%s", out);
    cr_assert(strstr(out, "f.sql:13:16: truncate: TRUNCATE tasks "), "%s", out);
    cr_assert(strstr(out, "f.sql:14:11: unparsed: "), "%s", out);
    free(out);
}

Test(lint, truncate_cascade_names_the_cascade)
{
    mig_lint_counts n;
    char *out = lint("TRUNCATE TABLE tasks CASCADE", false, &n);
    cr_assert(strstr(out, "CASCADE also empties every table with a foreign key to it"), "%s", out);
    cr_assert_eq(n.errors, 1);
    free(out);
    out = lint("BEGIN;\nALTER TABLE tasks ADD COLUMN b int;\nEND", true, &n);
    cr_assert_eq(n.errors + n.warnings, 0, "a no-transaction file may group statements:\n%s", out);
    free(out);
}

/* varchar(n) growing, or becoming varchar or text, changes only the catalog (PostgreSQL 9.2+):
 * no finding when an earlier file declared the column; a narrowing or a real type change is an
 * error naming both types; an unknown column keeps the warning. */
Test(lint, varchar_widening_known_from_earlier_files_is_not_reported)
{
    mig_lint_memory mem = {0};
    mig_lint_counts n = {0};
    mig_lint_sql("0001.sql", "CREATE TABLE t (a varchar(10), b varchar(10), c int, d text)", 2,
                 false, NULL, &n, &mem);
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    mig_lint_sql("0002.sql",
                 "ALTER TABLE t ALTER COLUMN a TYPE varchar(20);\n"
                 "ALTER TABLE t ALTER COLUMN a TYPE text;\n"
                 "ALTER TABLE t ALTER COLUMN b TYPE varchar;\n"
                 "ALTER TABLE t RENAME COLUMN d TO e; -- migrate:lint-ignore rename-column test\n"
                 "ALTER TABLE t ALTER COLUMN e TYPE varchar;",
                 2, false, out, &n, &mem);
    fclose(out);
    cr_assert_eq(n.errors + n.warnings, 0, "%s", buf);
    free(buf);
    buf = NULL;
    out = open_memstream(&buf, &len);
    mig_lint_sql("0003.sql",
                 "ALTER TABLE t ALTER COLUMN b TYPE varchar(5);\n"
                 "ALTER TABLE t ALTER COLUMN c TYPE text;\n"
                 "ALTER TABLE t ALTER COLUMN a TYPE varchar(30) USING upper(a);\n"
                 "ALTER TABLE t ALTER COLUMN z TYPE text;",
                 2, false, out, &n, &mem);
    fclose(out);
    cr_assert(strstr(buf,
                     "0003.sql:2:28: column-type-change: changing the type of t.b from varchar "
                     "to varchar(5)"),
              "%s", buf);
    cr_assert(strstr(buf, "0003.sql:3:28: column-type-change: changing the type of t.c from int4 "
                          "to text"),
              "%s", buf);
    cr_assert(strstr(buf, "0003.sql:4:28: column-type-change: changing the type of t.a from text"),
              "%s", buf);
    cr_assert(strstr(buf, "0003.sql:5:28: column-type-maybe-rewrite:"), "%s", buf);
    cr_assert_eq(n.errors, 3, "%s", buf);
    cr_assert_eq(n.warnings, 1, "%s", buf);
    free(buf);
    mig_lint_memory_free(&mem);
}

Test(lint, an_ignore_on_its_own_line_after_a_statement_covers_the_next)
{
    mig_lint_counts n;
    char *out = lint("DROP TABLE a;\n-- migrate:lint-ignore drop-table b is gone since 3.1\n"
                     "DROP TABLE b;",
                     false, &n);
    cr_assert_eq(n.ignored, 1, "%s", out);
    cr_assert(strstr(out, "f.sql:10:1: drop-table: dropping table a"), "%s", out);
    cr_assert_eq(n.errors, 1, "%s", out);
    free(out);
}

Test(lint, shipped_migrations_pass)
{
    mig_files fs;
    char err[MIG_ERR_LEN];
    cr_assert_eq(mig_files_load(pgtest_source_path("migrations"), &fs, err), 0, "%s", err);
    cr_assert_gt(fs.count, 0);
    for (size_t i = 0; i < fs.count; i++) {
        mig_lint_counts n = {0};
        mig_lint_file(&fs.items[i], stderr, &n, NULL);
        cr_expect_eq(n.errors + n.warnings, 0, "%s has findings", fs.items[i].path);
    }
    mig_files_free(&fs);
}

static const char *const base_migration =
    "-- migrate:up\nCREATE TABLE items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
    "name text);\n-- migrate:down\nDROP TABLE items;\n";

Test(lint_cli, lint_command_exit_codes_and_up_refuses_errors)
{
    mt t;
    mt_setup(&t, "lint_up");
    char *out = NULL;
    mt_write(&t, "0001_items.sql", base_migration);
    cr_assert_eq(mt_migrate(&t, "lint", &out), 0, "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "up", &out), 0, "%s", out);
    free(out);
    mt_write(&t, "0002_index.sql",
             "-- migrate:up\n\nCREATE INDEX items_name_idx ON items (name);\n"
             "-- migrate:down\nDROP INDEX items_name_idx;\n");
    cr_assert_eq(mt_migrate(&t, "lint", &out), 3, "%s", out);
    cr_assert(strstr(out, "0002_index.sql:3:1: index-not-concurrent:"), "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "up", &out), 3, "%s", out);
    cr_assert(strstr(out, "0002_index.sql:3:1: index-not-concurrent:"), "%s", out);
    cr_assert(strstr(out, "nothing was applied"), "%s", out);
    free(out);
    char *v = mt_query(&t, "SELECT count(*) FROM pg_indexes WHERE indexname = 'items_name_idx'");
    cr_assert_str_eq(v, "0");
    free(v);
    v = mt_query(&t, "SELECT max(version) FROM schema_migrations");
    cr_assert_str_eq(v, "0001");
    free(v);
    /* the safe form passes and applies */
    mt_write(&t, "0002_index.sql",
             "-- migrate:no-transaction\n-- migrate:up\n"
             "CREATE INDEX CONCURRENTLY IF NOT EXISTS items_name_idx ON items (name);\n"
             "-- migrate:down\nDROP INDEX CONCURRENTLY IF EXISTS items_name_idx;\n");
    cr_assert_eq(mt_migrate(&t, "up", &out), 0, "%s", out);
    free(out);
    mt_teardown(&t);
}

Test(lint_cli, ignore_and_no_lint_let_up_proceed)
{
    mt t;
    mt_setup(&t, "lint_ign");
    char *out = NULL;
    mt_write(&t, "0001_items.sql", base_migration);
    cr_assert_eq(mt_migrate(&t, "up", &out), 0, "%s", out);
    free(out);
    mt_write(&t, "0002_drop.sql",
             "-- migrate:up\nALTER TABLE items DROP COLUMN name;\n"
             "-- migrate:down\nALTER TABLE items ADD COLUMN name text;\n");
    cr_assert_eq(mt_migrate(&t, "up", &out), 3, "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "up --no-lint", &out), 0, "%s", out);
    free(out);
    mt_write(&t, "0003_drop.sql",
             "-- migrate:up\n-- migrate:lint-ignore drop-table items replaced by v2 in 1.7\n"
             "DROP TABLE items;\n-- migrate:down\nCREATE TABLE items (id bigint);\n");
    cr_assert_eq(mt_migrate(&t, "lint", &out), 0, "%s", out);
    cr_assert(strstr(out, "1 accepted by -- migrate:lint-ignore"), "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "up", &out), 0, "%s", out);
    free(out);
    mt_teardown(&t);
}

/* `migrate lint DIR/NNNN_x.sql DIR/schema.sql` skips schema.sql; `lint` and `up` read the applied
 * files for the column types, so widening a varchar declared by an applied file is not reported. */
Test(lint_cli, glob_skips_schema_sql_and_applied_files_inform_pending_ones)
{
    mt t;
    mt_setup(&t, "lint_glob");
    char *out = NULL;
    mt_write(&t, "0001_items.sql",
             "-- migrate:up\nCREATE TABLE items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY "
             "KEY, name varchar(40));\n-- migrate:down\nDROP TABLE items;\n");
    mt_write(&t, "schema.sql", "CREATE TABLE items (id bigint, name varchar(80));\n");
    cr_assert_eq(mt_migrate(&t, "up", &out), 0, "%s", out);
    free(out);
    mt_write(&t, "0002_wider.sql",
             "-- migrate:up\nALTER TABLE items ALTER COLUMN name TYPE varchar(80);\n"
             "-- migrate:down\nALTER TABLE items ALTER COLUMN name TYPE varchar(40);\n");
    char cmd[256];
    snprintf(cmd, sizeof cmd, "lint %s/*.sql", t.dir);
    cr_assert_eq(mt_migrate(&t, cmd, &out), 0, "%s", out);
    cr_assert(strstr(out, "skipping"), "%s", out);
    cr_assert(strstr(out, "lint: 0 error(s), 0 warning(s)"), "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "lint", &out), 0, "%s", out);
    cr_assert(strstr(out, "lint: 0 error(s), 0 warning(s)"), "%s", out);
    free(out);
    /* a narrowing is a rewrite: up refuses it, naming file, line and column */
    mt_write(&t, "0002_wider.sql",
             "-- migrate:up\nALTER TABLE items ALTER COLUMN name TYPE varchar(20);\n"
             "-- migrate:down\nALTER TABLE items ALTER COLUMN name TYPE varchar(40);\n");
    cr_assert_eq(mt_migrate(&t, "up", &out), 3, "%s", out);
    cr_assert(strstr(out, "0002_wider.sql:2:32: column-type-change: changing the type of "
                          "items.name from varchar(40) to varchar(20)"),
              "%s", out);
    free(out);
    mt_teardown(&t);
}
