/* migrate CLI against a real PostgreSQL: the commands' behaviour and output, the real migrations,
 * the pooler rewrite end to end. Each test has its own database and migrations directory. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/schema_version.h"
#include "db/url.h"
#include "tests/migrate/support.h"
#include "tests/support/pgtest.h"

static const char m1[] = "-- migrate:up\nCREATE TABLE a (id int PRIMARY KEY, v text);\n"
                         "-- migrate:down\nDROP TABLE a;\n";
static const char m2[] = "-- migrate:up\nALTER TABLE a ADD COLUMN w int NOT NULL DEFAULT 0;\n"
                         "-- migrate:lint-ignore index-not-concurrent a is empty in these tests\n"
                         "CREATE INDEX a_w_idx ON a (w);\n"
                         "-- migrate:down\nALTER TABLE a DROP COLUMN w;\n";
static const char m3[] = "-- migrate:up\nCREATE TABLE b (id int REFERENCES a (id));\n"
                         "-- migrate:down\nDROP TABLE b;\n";

static void three(mt *t)
{
    mt_write(t, "0001_a.sql", m1);
    mt_write(t, "0002_a_w.sql", m2);
    mt_write(t, "0003_b.sql", m3);
}

static char *dump(mt *t)
{
    char *out = NULL;
    int rc = mt_migrate(t, "dump --output -", &out);
    cr_assert_eq(rc, 0, "%s", out);
    /* the header names the applied version: compare the schema itself */
    char *body = strstr(out, "\n-- ");
    char *copy = strdup(body ? body : "");
    free(out);
    return copy;
}

Test(cli, up_down_to_zero_up_gives_the_same_dump)
{
    mt t;
    mt_setup(&t, "roundtrip");
    three(&t);
    char *out = NULL;
    cr_assert_eq(mt_migrate(&t, "up", &out), 0, "%s", out);
    cr_assert(strstr(out, "applied  0003_b.sql"), "%s", out);
    free(out);
    char *first = dump(&t);
    cr_assert(strstr(first, "CREATE TABLE public.b"), "%s", first);
    cr_assert_eq(mt_migrate(&t, "down --to 0", &out), 0, "%s", out);
    free(out);
    char *tables = mt_query(&t, "SELECT count(*) FROM pg_class WHERE relname IN ('a', 'b')");
    cr_assert_str_eq(tables, "0");
    free(tables);
    cr_assert_eq(mt_migrate(&t, "up", &out), 0, "%s", out);
    free(out);
    char *second = dump(&t);
    cr_assert_str_eq(first, second);
    free(first);
    free(second);
    mt_teardown(&t);
}

Test(cli, the_real_migrations_apply_check_and_revert)
{
    mt t;
    mt_setup(&t, "real");
    char args[1024], *out = NULL;
    snprintf(args, sizeof args, "--dir '%s' up", pgtest_source_path("migrations"));
    cr_assert_eq(mt_migrate(&t, args, &out), 0, "%s", out);
    free(out);
    /* check compares with the committed migrations/schema.sql */
    snprintf(args, sizeof args, "--dir '%s' check", pgtest_source_path("migrations"));
    int rc = mt_migrate(&t, args, &out);
    cr_assert_eq(rc, 0, "migrations/schema.sql is stale (run migrate dump): %s", out);
    free(out);
    /* what the API relies on: the table, its checks and the updated_at trigger */
    PGconn *c = mt_connect(&t);
    free(pgtest_query(c, "INSERT INTO tasks (user_id, title) VALUES ('u1', 'milk')"));
    PGresult *r = PQexec(c, "INSERT INTO tasks (user_id, title) VALUES ('u1', '   ')");
    cr_assert_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "23514");
    PQclear(r);
    char *moved =
        pgtest_query(c, "UPDATE tasks SET completed = true, updated_at = "
                        "'2000-01-01' RETURNING updated_at > created_at - interval '1 s'");
    cr_assert_str_eq(moved, "t");
    free(moved);
    char v[32];
    db_error e;
    cr_assert_eq(db_schema_version(c, v, sizeof v, &e), DB_SCHEMA_FOUND);
    cr_assert_str_eq(v, db_schema_expected());
    PQfinish(c);
    snprintf(args, sizeof args, "--dir '%s' down --to 0", pgtest_source_path("migrations"));
    cr_assert_eq(mt_migrate(&t, args, &out), 0, "%s", out);
    free(out);
    c = mt_connect(&t);
    cr_assert_eq(db_schema_version(c, v, sizeof v, &e), DB_SCHEMA_NONE);
    PQfinish(c);
    mt_teardown(&t);
}

Test(cli, schema_version_reader_on_a_database_never_migrated)
{
    mt t;
    mt_setup(&t, "nover");
    PGconn *c = mt_connect(&t);
    char v[32] = "x";
    db_error e;
    cr_assert_eq(db_schema_version(c, v, sizeof v, &e), DB_SCHEMA_NONE);
    cr_assert_str_eq(v, "");
    PQfinish(c);
    mt_teardown(&t);
}

Test(cli, failing_migration_leaves_the_previous_version)
{
    mt t;
    mt_setup(&t, "failing");
    mt_write(&t, "0001_a.sql", m1);
    mt_write(&t, "0002_bad.sql",
             "-- migrate:up\nCREATE TABLE half (x int);\n\n"
             "INSERT INTO a (id, v) VALUES (1, 'x');\n"
             "SELECT *\n  FROM no_such_table;\n");
    mt_write(&t, "0003_b.sql", m3);
    char *out = NULL;
    int rc = mt_migrate(&t, "up", &out);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "0002_bad.sql:6: statement 3 failed"), "%s", out);
    cr_assert(strstr(out, "relation \"no_such_table\" does not exist"), "%s", out);
    free(out);
    char *h =
        mt_query(&t, "SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations");
    cr_assert_str_eq(h, "0001");
    free(h);
    char *half = mt_query(&t, "SELECT count(*) FROM pg_class WHERE relname IN ('half', 'b')");
    cr_assert_str_eq(half, "0");
    free(half);
    char *rows = mt_query(&t, "SELECT count(*) FROM a");
    cr_assert_str_eq(rows, "0");
    free(rows);
    cr_assert_eq(mt_migrate(&t, "status --exit-code", &out), 4, "%s", out);
    cr_assert(strstr(out, "0002   bad") && strstr(out, "pending"), "%s", out);
    free(out);
    mt_teardown(&t);
}

Test(cli, dry_run_changes_nothing)
{
    mt t;
    mt_setup(&t, "dryrun");
    three(&t);
    char *out = NULL;
    cr_assert_eq(mt_migrate(&t, "up --dry-run", &out), 0, "%s", out);
    cr_assert(strstr(out, "would apply 0001_a.sql (one transaction, 1 statement)"), "%s", out);
    cr_assert(strstr(out, "would apply 0002_a_w.sql (one transaction, 2 statements)"), "%s", out);
    cr_assert(strstr(out, "CREATE TABLE b"), "%s", out);
    free(out);
    char *n = mt_query(&t, "SELECT count(*) FROM pg_class c JOIN pg_namespace s ON s.oid = "
                           "c.relnamespace WHERE s.nspname = 'public'");
    cr_assert_str_eq(n, "0");
    free(n);
    /* after a partial up, a dry run lists only what is left */
    cr_assert_eq(mt_migrate(&t, "up --to 0001", &out), 0, "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "up --dry-run", &out), 0, "%s", out);
    cr_assert_null(strstr(out, "0001_a.sql"), "%s", out);
    cr_assert(strstr(out, "would apply 0003_b.sql"), "%s", out);
    free(out);
    char *h = mt_query(&t, "SELECT count(*) FROM schema_migrations");
    cr_assert_str_eq(h, "1");
    free(h);
    mt_teardown(&t);
}

Test(cli, status_current_history_and_steps)
{
    mt t;
    mt_setup(&t, "status");
    three(&t);
    char *out = NULL;
    cr_assert_eq(mt_migrate(&t, "current", &out), 0, "%s", out);
    cr_assert_str_eq(out, "none\n");
    free(out);
    cr_assert_eq(mt_migrate(&t, "up --to 0002", &out), 0, "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "current", &out), 0, "%s", out);
    cr_assert_str_eq(out, "0002\n");
    free(out);
    cr_assert_eq(mt_migrate(&t, "status", &out), 0, "%s", out);
    cr_assert(strstr(out, "0001   a ") && strstr(out, "applied 20"), "%s", out);
    cr_assert(strstr(out, "0003   b                                        pending"), "%s", out);
    cr_assert(strstr(out, "version 0002, 1 pending, 0 problem(s)"), "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "history", &out), 0, "%s", out);
    char *url = pgtest_url(), *role = db_url_get(url, "user"), by[128];
    snprintf(by, sizeof by, " ms  by %s@", role);
    cr_assert(strstr(out, "0002   a_w") && strstr(out, by), "%s", out);
    free(url), free(role);
    free(out);
    cr_assert_eq(mt_migrate(&t, "up", &out), 0, "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "-q status --exit-code", &out), 0, "%s", out);
    cr_assert_str_eq(out, "");
    free(out);
    cr_assert_eq(mt_migrate(&t, "down --steps 2", &out), 0, "%s", out);
    cr_assert(strstr(out, "reverted  0003_b") && strstr(out, "reverted  0002_a_w"), "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "redo", &out), 0, "%s", out);
    cr_assert(strstr(out, "reverted  0001_a") && strstr(out, "applied  0001_a.sql"), "%s", out);
    free(out);
    char *h =
        mt_query(&t, "SELECT string_agg(version || ':' || name || ':' || length(checksum), ',')"
                     " FROM schema_migrations");
    cr_assert_str_eq(h, "0001:a:64");
    free(h);
    mt_teardown(&t);
}

Test(cli, down_works_when_the_file_is_gone)
{
    mt t;
    mt_setup(&t, "downgone");
    three(&t);
    char *out = NULL;
    cr_assert_eq(mt_migrate(&t, "up", &out), 0, "%s", out);
    free(out);
    /* a Neon branch holding a migration from another git branch: the file is not here */
    mt_write(&t, "0003_b.sql", NULL);
    cr_assert_eq(mt_migrate(&t, "down", &out), 0, "%s", out);
    cr_assert(strstr(out, "reverted  0003_b"), "%s", out);
    free(out);
    char *b = mt_query(&t, "SELECT to_regclass('b') IS NULL");
    cr_assert_str_eq(b, "t");
    free(b);
    mt_teardown(&t);
}

Test(cli, baseline_records_without_running)
{
    mt t;
    mt_setup(&t, "baseline");
    three(&t);
    free(mt_query(&t, "CREATE TABLE a (id int PRIMARY KEY, v text, w int NOT NULL DEFAULT 0)"));
    char *out = NULL;
    cr_assert_eq(mt_migrate(&t, "baseline 0002", &out), 0, "%s", out);
    cr_assert(strstr(out, "recorded 2 migration(s) up to 0002"), "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "up", &out), 0, "%s", out);
    cr_assert_null(strstr(out, "0001_a.sql"), "%s", out);
    cr_assert(strstr(out, "applied  0003_b.sql"), "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "baseline 0003", &out), 1, "%s", out);
    cr_assert(strstr(out, "already records 3"), "%s", out);
    free(out);
    mt_teardown(&t);
}

Test(cli, new_help_version_and_usage_errors)
{
    mt t;
    mt_setup(&t, "new");
    char *out = NULL;
    cr_assert_eq(mt_migrate(&t, "new create_users", &out), 0, "%s", out);
    cr_assert(strstr(out, "/0001_create_users.sql"), "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "new add_email", &out), 0, "%s", out);
    cr_assert(strstr(out, "/0002_add_email.sql"), "%s", out);
    free(out);
    /* the template applies as is (empty sections) */
    cr_assert_eq(mt_migrate(&t, "up", &out), 0, "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "--help", &out), 0);
    cr_assert(strstr(out, "exit codes:") && strstr(out, "baseline VERSION"), "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "--version", &out), 0);
    cr_assert(strstr(out, "migrate 0."), "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "status --steps 1", &out), 2, "%s", out);
    free(out);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cd /tmp && env -u DATABASE_URL -u DATABASE_URL_UNPOOLED '%s' status",
             pgtest_bin("migrate"));
    cr_assert_eq(pgtest_run(cmd, &out), 2, "%s", out);
    cr_assert(strstr(out, "set DATABASE_URL_UNPOOLED or DATABASE_URL"), "%s", out);
    free(out);
    mt_teardown(&t);
}

Test(cli, reads_unpooled_url_first_and_dotenv)
{
    mt t;
    mt_setup(&t, "envurl");
    mt_write(&t, "0001_a.sql", m1);
    /* DATABASE_URL is unusable; DATABASE_URL_UNPOOLED (from .env) must be the one used */
    char env[2048], cmd[4096], *out = NULL;
    char *user = db_url_get(t.url, "user"), *pw = db_url_get(t.url, "password");
    char *host = db_url_get(t.url, "host"), *port = db_url_get(t.url, "port");
    snprintf(env, sizeof env,
             "# written by the test\nexport "
             "DATABASE_URL_UNPOOLED=\"postgresql://%s:%s@%s:%s/%s\"\n",
             user, pw, host, port ? port : "5432", t.db);
    free(user);
    free(pw);
    free(host);
    free(port);
    mt_write(&t, ".env", env);
    snprintf(
        cmd, sizeof cmd,
        "cd '%s' && env -u DATABASE_URL_UNPOOLED DATABASE_URL=postgresql://nobody@127.0.0.1:1/x "
        "'%s' --dir . up",
        t.dir, pgtest_bin("migrate"));
    cr_assert_eq(pgtest_run(cmd, &out), 0, "%s", out);
    cr_assert(strstr(out, "applied  0001_a.sql"), "%s", out);
    free(out);
    mt_teardown(&t);
}

Test(cli, pooled_neon_host_is_migrated_through_its_direct_host)
{
    mt t;
    mt_setup(&t, "pooler");
    mt_write(&t, "0001_a.sql", m1);
    /* Locally, libpq's hostaddr makes a Neon-looking name reach the local server without DNS; on a
     * real Neon branch the pooled form of its own direct host is used. Either way the direct name
     * is what migrate must end up with (the rewrite keeps hostaddr, port, user, password, TLS).
     * hostaddr takes only an IP address: the test URL's host ("localhost", a service name, any DNS
     * name) is resolved here first. The server's certificate cannot name the fake host, so
     * sslmode=verify-full becomes verify-ca (the chain is still verified, TLS still required). */
    char *host = db_url_get(t.url, "host");
    char direct[256], pooled[300], *out = NULL;
    char *with_addr = NULL, *url;
    size_t label = strcspn(host, ".");
    if (strstr(host, ".neon.tech")) {
        snprintf(direct, sizeof direct, "%s", host);
        snprintf(pooled, sizeof pooled, "%.*s-pooler%s", (int)label, host, host + label);
        url = db_url_with(t.url, "host", pooled);
    } else {
        snprintf(direct, sizeof direct, "ep-quiet-sun-123456.us-east-2.aws.neon.tech");
        snprintf(pooled, sizeof pooled, "ep-quiet-sun-123456-pooler.us-east-2.aws.neon.tech");
        char *addr = pgtest_host_address(t.url), *ssl = db_url_get(t.url, "sslmode");
        char *verified = ssl && !strcmp(ssl, "verify-full")
                             ? db_url_with(t.url, "sslmode", "verify-ca")
                             : strdup(t.url);
        with_addr = db_url_with(verified, "hostaddr", addr);
        url = db_url_with(with_addr, "host", pooled);
        free(addr);
        free(ssl);
        free(verified);
    }
    cr_assert_not_null(url);
    setenv("POOLED_URL", url, 1);
    char cmd[2048], want[1024];
    snprintf(
        cmd, sizeof cmd,
        "cd /tmp && env -u DATABASE_URL_UNPOOLED DATABASE_URL=\"$POOLED_URL\" '%s' --dir '%s' up",
        pgtest_bin("migrate"), t.dir);
    cr_assert_eq(pgtest_run(cmd, &out), 0, "%s", out);
    snprintf(want, sizeof want, "DATABASE_URL names the pooled host %s; using the direct host %s",
             pooled, direct);
    cr_assert(strstr(out, want), "%s", out);
    free(host);
    free(with_addr);
    free(url);
    cr_assert(strstr(out, "applied  0001_a.sql"), "%s", out);
    free(out);
    char *v = mt_query(&t, "SELECT version FROM schema_migrations");
    cr_assert_str_eq(v, "0001");
    free(v);
    mt_teardown(&t);
}
