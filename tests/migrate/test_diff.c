/* migrate diff: each schema edit of the table below goes through the whole workflow on real
 * databases: `diff` writes a migration that passed its own verification, `up` applies it (and its
 * lint), `check` and `diff --check` are clean, `down` gives the original schema back. Then the
 * refusals (destructive, unsupported, enum reorder), the scratch databases being dropped after
 * success, failure and SIGINT, and a dev URL whose role may not create databases. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/url.h"
#include "tests/migrate/support.h"
#include "tests/support/pgtest.h"

static const char base_up[] =
    "CREATE TABLE items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL,\n"
    "    qty int, note varchar(50));\n"
    "CREATE TABLE owners (id bigint PRIMARY KEY);\n"
    "CREATE TYPE mood AS ENUM ('sad', 'happy');\n"
    "CREATE VIEW item_notes AS SELECT id, note FROM items;\n";

/* base migration and a schema.sql made of the same SQL plus `edit` */
static void setup(mt *t, const char *tag, const char *edit)
{
    mt_setup(t, tag);
    char *dev = pgtest_url();
    setenv("MT_DEV", dev, 1);
    free(dev);
    char m[2048], s[4096];
    snprintf(m, sizeof m,
             "-- migrate:up\n%s-- migrate:down\nDROP VIEW item_notes;\nDROP TYPE mood;\n"
             "DROP TABLE owners;\nDROP TABLE items;\n",
             base_up);
    mt_write(t, "0001_base.sql", m);
    snprintf(s, sizeof s, "%s%s", base_up, edit);
    mt_write(t, "schema.sql", s);
}

static int diff(mt *t, const char *args, char **out)
{
    char a[512];
    snprintf(a, sizeof a, "diff --dev-url \"$MT_DEV\" %s", args);
    return mt_migrate(t, a, out);
}

/* The text of t's migration files matching `glob` (e.g. "0003_*"), malloc'd ("" for none). */
static char *generated(mt *t, const char *glob)
{
    char cmd[512], *out = NULL;
    snprintf(cmd, sizeof cmd, "cat '%s'/%s 2>/dev/null", t->dir, glob);
    pgtest_run(cmd, &out);
    return out ? out : strdup("");
}

static int count_files(mt *t)
{
    char cmd[256], *out = NULL;
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '^[0-9]'", t->dir);
    pgtest_run(cmd, &out);
    int n = atoi(out ? out : "0");
    free(out);
    return n;
}

/* Edits grouped by kind (one scratch round trip each keeps the suite short); every edit's line
 * must appear in the generated migration. */
typedef struct {
    const char *tag, *edit;
    const char *expect[4]; /* lines the generated migration(s) must contain */
    bool revertible;
} edit_case;

static const edit_case cases[] = {
    {"columns",
     "ALTER TABLE items ADD COLUMN price numeric(10,2) DEFAULT 0 NOT NULL;\n"
     "ALTER TABLE items ALTER COLUMN qty SET NOT NULL;\n"
     "ALTER TABLE items ADD COLUMN ref uuid DEFAULT gen_random_uuid();\n"
     "-- migrate:renamed public.items.label from name\n"
     "ALTER TABLE items RENAME COLUMN name TO label;",
     {"ADD COLUMN price numeric(10,2) DEFAULT 0 NOT NULL;", "CHECK (qty IS NOT NULL) NOT VALID;",
      "ALTER COLUMN ref SET DEFAULT gen_random_uuid();",
      "ALTER TABLE public.items RENAME COLUMN name TO label;"},
     true},
    {"constraints",
     "ALTER TABLE items ADD CONSTRAINT items_qty_check CHECK (qty >= 0);\n"
     "ALTER TABLE items ADD COLUMN owner_id bigint REFERENCES owners (id);\n"
     "ALTER TABLE items ADD CONSTRAINT items_name_key UNIQUE (name);\n"
     "ALTER TABLE items ADD CONSTRAINT items_note_excl EXCLUDE USING btree (note WITH =);",
     {"VALIDATE CONSTRAINT items_qty_check;",
      "FOREIGN KEY (owner_id) REFERENCES public.owners(id) NOT VALID;",
      "ADD CONSTRAINT items_name_key UNIQUE USING INDEX items_name_key;",
      "ADD CONSTRAINT items_note_excl EXCLUDE USING btree (note WITH =);"},
     true},
    {"indexes",
     "CREATE INDEX items_qty_idx ON items (qty) WHERE qty > 0;\n"
     "CREATE INDEX items_lower_name_idx ON items (lower(name));\n"
     "CREATE TABLE tags (id bigint PRIMARY KEY, item_id bigint REFERENCES items (id));\n"
     "CREATE INDEX tags_item_idx ON tags (item_id);",
     {"CREATE INDEX CONCURRENTLY IF NOT EXISTS items_qty_idx ON public.items USING btree (qty) "
      "WHERE (qty > 0);",
      "IF NOT EXISTS items_lower_name_idx ON public.items USING btree (lower(name));",
      "CREATE INDEX tags_item_idx ON public.tags USING btree (item_id);",
      "ALTER TABLE public.tags ADD CONSTRAINT tags_item_id_fkey FOREIGN KEY (item_id) REFERENCES "
      "public.items(id);"},
     true},
    {"enum",
     "ALTER TYPE mood ADD VALUE 'meh' AFTER 'sad';",
     {"ALTER TYPE public.mood ADD VALUE IF NOT EXISTS 'meh' AFTER 'sad';",
      "-- migrate:no-transaction"},
     false},
    {"views_comments",
     "DROP VIEW item_notes;\nALTER TABLE items ALTER COLUMN note TYPE varchar(100);\n"
     "CREATE VIEW item_notes AS SELECT id, note FROM items;\n"
     "COMMENT ON COLUMN items.name IS 'what people call it';",
     {"ALTER TABLE public.items ALTER COLUMN note TYPE character varying(100);",
      "DROP VIEW public.item_notes;",
      "COMMENT ON COLUMN public.items.name IS 'what people call it';"},
     true},
    {"table_rename",
     "-- migrate:renamed public.stock from items\nDROP VIEW item_notes;\n"
     "ALTER TABLE items RENAME TO stock;\nCREATE VIEW item_notes AS SELECT id, note FROM stock;",
     {"ALTER TABLE public.items RENAME TO stock;", "ALTER TABLE public.stock RENAME TO items;"},
     true},
    {"ext_schema_seq",
     "CREATE EXTENSION IF NOT EXISTS pgcrypto;\nCREATE SCHEMA extra;\n"
     "CREATE SEQUENCE extra.counter;",
     {"CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;", "CREATE SCHEMA extra;",
      "CREATE SEQUENCE extra.counter AS bigint"},
     true},
};

/* Criterion runs each parameter in a new process: pass indexes, not pointers */
ParameterizedTestParameters(diff, each_edit_generates_a_verified_reversible_migration)
{
    static int idx[sizeof cases / sizeof *cases];
    for (size_t i = 0; i < sizeof idx / sizeof *idx; i++)
        idx[i] = (int)i;
    return cr_make_param_array(int, idx, sizeof idx / sizeof *idx);
}

ParameterizedTest(int *i, diff, each_edit_generates_a_verified_reversible_migration)
{
    const edit_case *c = &cases[*i];
    mt t;
    setup(&t, c->tag, c->edit);
    char *out = NULL, *before = NULL, *after = NULL;
    cr_assert_eq(mt_migrate(&t, "up", &out), 0, "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "dump --output -", &before), 0);
    cr_assert_eq(diff(&t, "--check", &out), 3, "%s: %s", c->tag, out);
    free(out);
    cr_assert_eq(diff(&t, "change", &out), 0, "%s: %s", c->tag, out);
    free(out);
    char cmd[512], *all = generated(&t, "000[2-6]_*");
    /* VALIDATE never shares a transaction with anything (no lock held across its scan) */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && for f in 0*.sql; do grep -q 'VALIDATE CONSTRAINT' \"$f\" && ! grep -q "
             "'^-- migrate:no-transaction' \"$f\" && echo \"$f\"; done; true",
             t.dir);
    char *tx = NULL;
    pgtest_run(cmd, &tx);
    cr_assert_str_eq(tx ? tx : "", "", "%s: VALIDATE in a transactional file", c->tag);
    free(tx);
    for (int k = 0; k < 4 && c->expect[k]; k++)
        cr_assert(strstr(all, c->expect[k]), "%s: expected \"%s\" in\n%s", c->tag, c->expect[k],
                  all);
    free(all);
    int files = count_files(&t) - 1;
    cr_assert_gt(files, 0);
    cr_assert_eq(mt_migrate(&t, "lint", &out), 0, "%s: %s", c->tag, out);
    /* no warning either: lint knows what the earlier files declared (varchar(50) widened) */
    cr_assert(strstr(out, "lint: 0 error(s), 0 warning(s)"), "%s: %s", c->tag, out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "up", &out), 0, "%s: %s", c->tag, out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "check", &out), 0, "%s: %s", c->tag, out);
    free(out);
    cr_assert_eq(diff(&t, "--check", &out), 0, "%s: %s", c->tag, out);
    free(out);
    if (c->revertible) {
        cr_assert_eq(mt_migrate(&t, "down --to 0001", &out), 0, "%s: %s", c->tag, out);
        free(out);
        cr_assert_eq(mt_migrate(&t, "dump --output -", &after), 0);
        cr_assert_str_eq(after, before, "%s: down did not give the original schema back", c->tag);
        free(after);
    }
    free(before);
    mt_teardown(&t);
}

/* Runs `migrate diff` through `sh -c 'exec ...'` to learn its pid; returns the exit status. */
static int diff_pid(mt *t, const char *args, char **out, int *pid)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "sh -c 'echo pid=$$; exec env MIGRATE_CONNECT_TIMEOUT=5 \"%s\" --dir \"%s\" diff "
             "--dev-url \"$MT_DEV\" %s'",
             pgtest_bin("migrate"), t->dir, args);
    int rc = pgtest_run(cmd, out);
    *pid = 0;
    const char *p = *out ? strstr(*out, "pid=") : NULL;
    if (p)
        *pid = atoi(p + 4);
    return rc;
}

/* Scratch databases of process `pid` still on the server. */
static int scratch_left(mt *t, int pid)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_database WHERE datname LIKE 'migrate\\_diff\\_%d\\_%%'", pid);
    char *v = mt_query(t, sql);
    int n = atoi(v);
    free(v);
    return n;
}

Test(diff, destructive_changes_are_refused_and_renames_hinted)
{
    mt t;
    setup(&t, "destroy",
          "ALTER TABLE items DROP COLUMN qty;\nALTER TABLE items ADD COLUMN amount int;\n"
          "DROP VIEW item_notes;\nDROP TABLE owners;");
    char *out = NULL;
    int pid;
    cr_assert_eq(diff_pid(&t, "change", &out, &pid), 3, "%s", out);
    cr_assert(strstr(out, "destructive: drop column public.items.qty: its data is lost"), "%s",
              out);
    cr_assert(strstr(out, "destructive: drop table public.owners"), "%s", out);
    cr_assert(
        strstr(out, "possible rename: public.items.qty dropped and public.items.amount added"),
        "%s", out);
    cr_assert(strstr(out, "-- migrate:renamed public.items.amount from qty"), "%s", out);
    cr_assert_gt(pid, 0);
    cr_assert_eq(scratch_left(&t, pid), 0, "scratch databases left after a refusal");
    free(out);
    cr_assert_eq(count_files(&t), 1, "a file was written although the diff was refused");
    cr_assert_eq(diff_pid(&t, "change --allow-destructive", &out, &pid), 0, "%s", out);
    cr_assert_eq(scratch_left(&t, pid), 0, "scratch databases left after success");
    free(out);
    cr_assert_eq(mt_migrate(&t, "up", &out), 0, "%s", out);
    free(out);
    cr_assert_eq(diff(&t, "--check", &out), 0, "%s", out);
    free(out);
    mt_teardown(&t);
}

Test(diff, unsupported_kinds_and_enum_reorder_are_reported_and_nothing_is_written)
{
    mt t;
    setup(&t, "unsupported",
          "CREATE FUNCTION one() RETURNS int LANGUAGE sql RETURN 1;\n"
          "CREATE MATERIALIZED VIEW big AS SELECT 1 AS x;\n"
          "DROP VIEW item_notes;\nDROP TYPE mood;\nCREATE TYPE mood AS ENUM ('happy', 'sad');\n"
          "CREATE VIEW item_notes AS SELECT id, note FROM items;");
    char *out = NULL;
    cr_assert_eq(diff(&t, "change", &out), 3, "%s", out);
    cr_assert(strstr(out, "cannot diff function public.one() (added in schema.sql)"), "%s", out);
    cr_assert(strstr(out, "cannot diff materialized view public.big"), "%s", out);
    cr_assert(strstr(out, "enum public.mood: values removed or reordered"), "%s", out);
    cr_assert(strstr(out, "write this one by hand"), "%s", out);
    cr_assert(strstr(out, "nothing was written"), "%s", out);
    free(out);
    cr_assert_eq(count_files(&t), 1);
    cr_assert_eq(diff(&t, "--check", &out), 3, "%s", out);
    cr_assert(strstr(out, "cannot diff function public.one()"), "%s", out);
    free(out);
    mt_teardown(&t);
}

Test(diff, failed_schema_sql_names_the_line_and_drops_the_scratch_databases)
{
    mt t;
    setup(&t, "broken", "\nALTER TABLE nowhere ADD COLUMN x int;");
    char *out = NULL;
    int pid;
    cr_assert_eq(diff_pid(&t, "change", &out, &pid), 1, "%s", out);
    cr_assert(strstr(out, "schema.sql:7: "), "%s", out); /* no position from the server */
    cr_assert(strstr(out, "\"nowhere\" does not exist"), "%s", out);
    cr_assert_eq(scratch_left(&t, pid), 0, "scratch databases left after a failure");
    free(out);
    mt_teardown(&t);
}

/* A syntax error names where it is, not where its statement starts. */
Test(diff, a_syntax_error_in_schema_sql_names_its_line_and_column)
{
    mt t;
    setup(&t, "syntax", "\nCREATE TABLE z (\n  a int,\n  b int,, c int);");
    char *out = NULL;
    cr_assert_eq(diff(&t, "change", &out), 1, "%s", out);
    cr_assert(strstr(out, "schema.sql:9:9: ERROR:  syntax error at or near \",\""), "%s", out);
    free(out);
    cr_assert_eq(count_files(&t), 1);
    mt_teardown(&t);
}

Test(diff, sigint_drops_the_scratch_databases)
{
    mt t;
    setup(&t, "sigint", "ALTER TABLE items ADD COLUMN x int;");
    mt_write(&t, "0002_slow.sql", "-- migrate:up\nSELECT pg_sleep(30);\n-- migrate:down\n");
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "\"%s\" --dir \"%s\" diff --dev-url \"$MT_DEV\" change & p=$!; "
             "for i in $(seq 150); do n=$(psql \"$MT_DEV\" -Atc \"SELECT count(*) FROM pg_database "
             "WHERE datname LIKE 'migrate\\_diff\\_${p}\\_%%'\"); [ \"$n\" = 2 ] && break; "
             "sleep 0.2; done; sleep 0.5; echo during=$n; kill -INT $p; wait $p; echo rc=$? pid=$p",
             pgtest_bin("migrate"), t.dir);
    pgtest_run(cmd, &out);
    cr_assert(strstr(out, "during=2"), "the scratch databases did not exist yet: %s", out);
    cr_assert(strstr(out, "rc=130"), "%s", out);
    cr_assert(strstr(out, "interrupted: the scratch databases were dropped"), "%s", out);
    const char *p = strstr(out, "pid=");
    cr_assert_not_null(p);
    cr_assert_eq(scratch_left(&t, atoi(p + 4)), 0, "scratch databases left after SIGINT: %s", out);
    free(out);
    cr_assert_eq(count_files(&t), 2);
    mt_teardown(&t);
}

Test(diff, a_dev_url_without_createdb_gives_one_clear_line)
{
    mt t;
    setup(&t, "nocreatedb", "ALTER TABLE items ADD COLUMN x int;");
    char role[96], sql[256];
    snprintf(role, sizeof role, "%s_r", t.db);
    snprintf(sql, sizeof sql, "CREATE ROLE \"%s\" LOGIN NOCREATEDB PASSWORD 'pw-%d'", role,
             (int)getpid());
    free(mt_query(&t, sql));
    char pw[32];
    snprintf(pw, sizeof pw, "pw-%d", (int)getpid());
    char *base = pgtest_url(), *u1 = db_url_with(base, "user", role);
    char *u2 = db_url_with(u1, "password", pw);
    setenv("MT_DEV", u2, 1);
    free(base);
    free(u1);
    free(u2);
    char *out = NULL;
    cr_assert_eq(mt_migrate(&t, "diff --dev-url \"$MT_DEV\" change", &out), 1, "%s", out);
    cr_assert(strstr(out, "may not create databases"), "%s", out);
    cr_assert(strstr(out, "CREATEDB"), "%s", out);
    size_t lines = 0;
    for (const char *p = out; *p; p++)
        lines += *p == '\n';
    cr_assert_eq(lines, 1, "more than one line:\n%s", out);
    free(out);
    snprintf(sql, sizeof sql, "DROP ROLE \"%s\"", role);
    free(mt_query(&t, sql));
    mt_teardown(&t);
}

Test(diff, needs_a_dev_url)
{
    mt t;
    setup(&t, "nodev", "");
    unsetenv("MIGRATE_DEV_URL");
    char *out = NULL;
    cr_assert_eq(mt_migrate(&t, "diff change", &out), 2, "%s", out);
    cr_assert(strstr(out, "needs --dev-url URL or MIGRATE_DEV_URL"), "%s", out);
    free(out);
    cr_assert_eq(diff(&t, "'bad/name'", &out), 2, "%s", out);
    cr_assert(strstr(out, "invalid migration name \"bad/name\""), "%s", out);
    free(out);
    cr_assert_eq(diff(&t, "--check", &out), 0, "%s", out);
    cr_assert(strstr(out, "matches the migrations"), "%s", out);
    free(out);
    mt_teardown(&t);
}

Test(diff, the_shipped_schema_sql_agrees_with_the_shipped_migrations)
{
    mt t;
    setup(&t, "shipped", "");
    char *out = NULL, args[512];
    snprintf(args, sizeof args, "--dir '%s' diff --check --dev-url \"$MT_DEV\"",
             pgtest_source_path("migrations"));
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' %s", pgtest_bin("migrate"), args);
    cr_assert_eq(pgtest_run(cmd, &out), 0, "%s", out);
    cr_assert(strstr(out, "matches the migrations"), "%s", out);
    free(out);
    mt_teardown(&t);
}

/* int -> bigint is a rewrite, not a loss: its own refusal and flag (--allow-destructive does not
 * cover it); a column rename keeps the CHECK and index that name the column (no drop, no
 * re-validation). */
Test(diff, rewrites_have_their_own_flag_and_a_rename_keeps_checks)
{
    mt t;
    setup(&t, "rewrite",
          "ALTER TABLE items ALTER COLUMN qty TYPE bigint;\n"
          "ALTER TABLE items ADD CONSTRAINT items_qty_check CHECK (qty >= 0);\n"
          "CREATE INDEX items_qty_idx ON items (qty);\n");
    /* the CHECK and index come first, in a migration of their own */
    mt_write(&t, "0002_check.sql",
             "-- migrate:up\nALTER TABLE items ADD CONSTRAINT items_qty_check CHECK (qty >= 0);\n"
             "CREATE INDEX items_qty_idx ON items (qty);\n-- migrate:down\n"
             "ALTER TABLE items DROP CONSTRAINT items_qty_check;\nDROP INDEX items_qty_idx;\n");
    char *out = NULL;
    cr_assert_eq(diff(&t, "widen", &out), 3, "%s", out);
    cr_assert(strstr(out, "rewrite: change type of public.items.qty from integer to bigint"), "%s",
              out);
    cr_assert_null(strstr(out, "destructive"), "int -> bigint called destructive: %s", out);
    cr_assert(strstr(out, "--allow-rewrite"), "%s", out);
    free(out);
    cr_assert_eq(diff(&t, "widen --allow-destructive", &out), 3, "%s", out);
    free(out);
    cr_assert_eq(count_files(&t), 2);
    cr_assert_eq(diff(&t, "widen --allow-rewrite", &out), 0, "%s", out);
    free(out);
    char *all = generated(&t, "0003_*");
    cr_assert(strstr(all, "-- migrate:lint-ignore column-type-change accepted with "
                          "--allow-rewrite\nALTER TABLE public.items ALTER COLUMN qty TYPE bigint"),
              "%s", all);
    free(all);
    /* a rename: the CHECK and the index follow the column by themselves */
    char s[2048];
    snprintf(s, sizeof s,
             "%s-- migrate:renamed public.items.amount from qty\n"
             "ALTER TABLE items RENAME COLUMN qty TO amount;\n"
             "ALTER TABLE items ALTER COLUMN amount TYPE bigint;\n"
             "ALTER TABLE items ADD CONSTRAINT items_qty_check CHECK (amount >= 0);\n"
             "CREATE INDEX items_qty_idx ON items (amount);\n",
             base_up);
    mt_write(&t, "schema.sql", s);
    cr_assert_eq(diff(&t, "rename", &out), 0, "%s", out);
    free(out);
    all = generated(&t, "0004_*");
    cr_assert(strstr(all, "RENAME COLUMN qty TO amount"), "%s", all);
    cr_assert_null(strstr(all, "items_qty_check"), "the CHECK is re-added on a rename:\n%s", all);
    cr_assert_null(strstr(all, "items_qty_idx"), "the index is rebuilt on a rename:\n%s", all);
    free(all);
    cr_assert_eq(mt_migrate(&t, "up --no-lint", &out), 0, "%s", out);
    free(out);
    cr_assert_eq(diff(&t, "--check", &out), 0, "%s", out);
    free(out);
    mt_teardown(&t);
}

/* An index replaced by one of another name is built before the old one is dropped (queries are
 * never left without an index while it builds); one rebuilt under its own name is dropped first,
 * as it must be. The down runs the other way: the old index back, then the new one dropped. */
Test(diff, a_replaced_index_is_built_before_the_old_one_goes)
{
    mt t;
    setup(&t, "ixorder",
          "CREATE INDEX items_qty_note_idx ON items (qty, note);\n"
          "CREATE INDEX items_name_idx ON items (name, id);\n");
    mt_write(&t, "0002_idx.sql",
             "-- migrate:up\nCREATE INDEX items_qty_idx ON items (qty);\n"
             "CREATE INDEX items_name_idx ON items (name);\n-- migrate:down\n"
             "DROP INDEX items_name_idx;\nDROP INDEX items_qty_idx;\n");
    char *out = NULL;
    cr_assert_eq(mt_migrate(&t, "up --no-lint", &out), 0, "%s", out);
    free(out);
    cr_assert_eq(diff(&t, "replace", &out), 0, "%s", out);
    free(out);
    char *all = generated(&t, "0003_*");
    const char *up = strstr(all, "-- migrate:up"), *down = strstr(all, "-- migrate:down");
    cr_assert(up && down, "%s", all);
    const char *at[] = {
        strstr(up, "CREATE INDEX CONCURRENTLY IF NOT EXISTS items_qty_note_idx"),
        strstr(up, "DROP INDEX CONCURRENTLY IF EXISTS public.items_qty_idx"),
        strstr(up, "DROP INDEX CONCURRENTLY IF EXISTS public.items_name_idx"),
        strstr(up, "CREATE INDEX CONCURRENTLY IF NOT EXISTS items_name_idx"),
        strstr(down, "CREATE INDEX CONCURRENTLY IF NOT EXISTS items_qty_idx"),
        strstr(down, "DROP INDEX CONCURRENTLY IF EXISTS public.items_qty_note_idx"),
    };
    for (size_t i = 0; i < sizeof at / sizeof *at; i++)
        cr_assert(at[i], "statement %zu missing:\n%s", i, all);
    cr_expect_lt(at[0], at[1], "the old index goes before its replacement is built:\n%s", all);
    cr_expect_lt(at[2], at[3], "a rebuild must drop first:\n%s", all);
    cr_expect_lt(at[3], down, "%s", all);
    cr_expect_lt(at[4], at[5], "the down drops the new index before the old one is back:\n%s", all);
    free(all);
    cr_assert_eq(mt_migrate(&t, "up", &out), 0, "%s", out);
    free(out);
    cr_assert_eq(diff(&t, "--check", &out), 0, "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "down", &out), 0, "%s", out);
    free(out);
    mt_teardown(&t);
}
