/* migrate's safety properties against a real PostgreSQL: concurrent runners, no-transaction files
 * (CREATE INDEX CONCURRENTLY), integrity refusals, drift, waiting for a server, the migration lock
 * and lock_timeout. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/url.h"
#include "tests/migrate/support.h"
#include "tests/support/pgtest.h"

static const char m1[] = "-- migrate:up\nCREATE TABLE a (id int PRIMARY KEY, v text);\n"
                         "CREATE TABLE runs (version text);\nINSERT INTO runs VALUES ('0001');\n"
                         "-- migrate:down\nDROP TABLE runs;\nDROP TABLE a;\n";
static const char m2[] = "-- migrate:up\nSELECT pg_sleep(0.3);\nALTER TABLE a ADD COLUMN w int;\n"
                         "INSERT INTO runs VALUES ('0002');\n"
                         "-- migrate:down\nALTER TABLE a DROP COLUMN w;\n";
static const char m3[] = "-- migrate:up\nCREATE TABLE b (id int REFERENCES a (id));\n"
                         "INSERT INTO runs VALUES ('0003');\n-- migrate:down\nDROP TABLE b;\n";

Test(safety, eight_concurrent_runners_apply_each_migration_once)
{
    mt t;
    mt_setup(&t, "eight");
    mt_write(&t, "0001_a.sql", m1);
    mt_write(&t, "0002_w.sql", m2);
    mt_write(&t, "0003_b.sql", m3);
    /* CREATE INDEX CONCURRENTLY while seven others poll for the lock: no deadlock */
    mt_write(&t, "0004_idx.sql",
             "-- migrate:no-transaction\n-- migrate:up\n"
             "CREATE INDEX CONCURRENTLY IF NOT EXISTS a_v_idx ON a (v);\n"
             "INSERT INTO runs VALUES ('0004');\n");
    char cmd[4096], *out = NULL;
    snprintf(
        cmd, sizeof cmd,
        "cd '%s' && for i in 1 2 3 4 5 6 7 8; do "
        "(MIGRATE_CONNECT_TIMEOUT=10 '%s' --url \"$MT_URL\" --dir . up > out.$i 2>&1; echo $? > "
        "rc.$i) & done; wait; cat rc.*; cat out.*",
        t.dir, pgtest_bin("migrate"));
    cr_assert_eq(pgtest_run(cmd, &out), 0, "%s", out);
    cr_assert(!strncmp(out, "0\n0\n0\n0\n0\n0\n0\n0\n", 16), "not every runner exited 0:\n%s", out);
    cr_assert(strstr(out, "waiting for the migration lock, held by pid"), "%s", out);
    free(out);
    char *runs = mt_query(&t, "SELECT string_agg(version, ',' ORDER BY version) FROM runs");
    cr_assert_str_eq(runs, "0001,0002,0003,0004");
    free(runs);
    char *h = mt_query(&t, "SELECT count(*) FROM schema_migrations");
    cr_assert_str_eq(h, "4");
    free(h);
    mt_teardown(&t);
}

static const char cic[] =
    "-- migrate:no-transaction\n"
    "-- migrate:up\n"
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS a_v_idx ON a (v);\n"
    "/* a comment; with a semicolon */\n"
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS a_lower_v_idx ON a (lower(v)) WHERE v <> ';';\n"
    "CREATE OR REPLACE FUNCTION a_count() RETURNS bigint LANGUAGE plpgsql AS $fn$\n"
    "DECLARE n bigint;\n"
    "BEGIN\n"
    "    SELECT count(*) INTO n FROM a; -- a comment; inside\n"
    "    RETURN n;\n"
    "END;\n"
    "$fn$;\n"
    "-- migrate:down\n"
    "DROP FUNCTION a_count();\n"
    "DROP INDEX CONCURRENTLY a_lower_v_idx;\n"
    "DROP INDEX CONCURRENTLY a_v_idx;\n";

Test(safety, no_transaction_file_with_concurrent_indexes_and_a_function)
{
    mt t;
    mt_setup(&t, "cic");
    mt_write(&t, "0001_a.sql", m1);
    mt_write(&t, "0002_idx.sql", cic);
    char *out = NULL;
    cr_assert_eq(mt_migrate(&t, "up", &out), 0, "%s", out);
    cr_assert(strstr(out, "0002_idx.sql (no transaction"), "%s", out);
    free(out);
    char *n =
        mt_query(&t, "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                     "WHERE c.relname IN ('a_v_idx', 'a_lower_v_idx') AND i.indisvalid");
    cr_assert_str_eq(n, "2");
    free(n);
    char *f = mt_query(&t, "SELECT a_count()");
    cr_assert_str_eq(f, "0");
    free(f);
    char *nt = mt_query(&t, "SELECT no_transaction FROM schema_migrations WHERE version = '0002'");
    cr_assert_str_eq(nt, "t");
    free(nt);
    cr_assert_eq(mt_migrate(&t, "down", &out), 0, "%s", out);
    free(out);
    n = mt_query(&t, "SELECT count(*) FROM pg_class WHERE relname IN ('a_v_idx', 'a_lower_v_idx')");
    cr_assert_str_eq(n, "0");
    free(n);
    mt_teardown(&t);
}

Test(safety, failed_no_transaction_file_reports_progress_and_invalid_index)
{
    mt t;
    mt_setup(&t, "cicfail");
    mt_write(&t, "0001_a.sql", m1);
    mt_write(&t, "0002_idx.sql",
             "-- migrate:no-transaction\n-- migrate:up\n"
             "CREATE INDEX CONCURRENTLY IF NOT EXISTS a_v_idx ON a (v);\n"
             "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS a_v_key ON a (v);\n"
             "CREATE INDEX CONCURRENTLY IF NOT EXISTS a_id_idx ON a (id);\n");
    char *out = NULL;
    cr_assert_eq(mt_migrate(&t, "up --to 0001", &out), 0, "%s", out);
    free(out);
    free(mt_query(&t, "INSERT INTO a VALUES (1, 'dup'), (2, 'dup')"));
    cr_assert_eq(mt_migrate(&t, "up", &out), 1, "%s", out);
    cr_assert(strstr(out, "0002_idx.sql:4: statement 2 failed"), "%s", out);
    cr_assert(strstr(out, "statement 1 (line 3) ran and stays applied"), "%s", out);
    cr_assert(strstr(out, "statements 3 to 3 did not run"), "%s", out);
    cr_assert(strstr(out, "INVALID index left behind: public.a_v_key"), "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "status --exit-code", &out), 3, "%s", out);
    cr_assert(strstr(out, "INVALID index(es): public.a_v_key"), "%s", out);
    free(out);
    char *h = mt_query(&t, "SELECT count(*) FROM schema_migrations");
    cr_assert_str_eq(h, "1");
    free(h);
    mt_teardown(&t);
}

Test(safety, integrity_refusals_name_the_files)
{
    mt t;
    mt_setup(&t, "integrity");
    mt_write(&t, "0001_a.sql", m1);
    mt_write(&t, "0003_b.sql", m3);
    char *out = NULL;
    cr_assert_eq(mt_migrate(&t, "up", &out), 0, "%s", out);
    free(out);
    /* out of order: 0002 arrives after 0003 was applied */
    mt_write(&t, "0002_w.sql", m2);
    cr_assert_eq(mt_migrate(&t, "up", &out), 3, "%s", out);
    cr_assert(strstr(out, "0002_w.sql is pending but older than the newest applied migration "
                          "0003_b"),
              "%s", out);
    cr_assert(strstr(out, "--allow-out-of-order"), "%s", out);
    free(out);
    mt_write(&t, "0002_w.sql", NULL);
    /* edited after it was applied */
    char edited[512];
    snprintf(edited, sizeof edited, "%s-- a later edit\n", m1);
    mt_write(&t, "0001_a.sql", edited);
    cr_assert_eq(mt_migrate(&t, "up", &out), 3, "%s", out);
    cr_assert(strstr(out, "0001_a.sql was edited after it was applied"), "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "check", &out), 3, "%s", out);
    cr_assert(strstr(out, "0001_a.sql was edited"), "%s", out);
    free(out);
    mt_write(&t, "0001_a.sql", m1);
    /* deleted after it was applied */
    mt_write(&t, "0003_b.sql", NULL);
    cr_assert_eq(mt_migrate(&t, "up", &out), 3, "%s", out);
    cr_assert(strstr(out, "applied migration 0003_b.sql is missing"), "%s", out);
    free(out);
    /* on purpose */
    mt_write(&t, "0002_w.sql", m2);
    cr_assert_eq(mt_migrate(&t, "up --allow-missing", &out), 3, "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "up --allow-missing --allow-out-of-order", &out), 0, "%s", out);
    cr_assert(strstr(out, "applied  0002_w.sql"), "%s", out);
    free(out);
    mt_teardown(&t);
}

Test(safety, check_reports_drift_after_a_manual_alter)
{
    mt t;
    mt_setup(&t, "drift");
    mt_write(&t, "0001_a.sql", m1);
    char *out = NULL;
    cr_assert_eq(mt_migrate(&t, "up", &out), 0, "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "check", &out), 3, "%s", out);
    cr_assert(strstr(out, "schema.sql is missing"), "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "dump", &out), 0, "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "check", &out), 0, "%s", out);
    cr_assert(strstr(out, "ok: history matches"), "%s", out);
    free(out);
    free(mt_query(&t, "ALTER TABLE a ADD COLUMN sneaky int"));
    free(mt_query(&t, "CREATE INDEX a_v_manual ON a (v)"));
    cr_assert_eq(mt_migrate(&t, "check", &out), 3, "%s", out);
    cr_assert(strstr(out, " CREATE TABLE public.a (\n"), "%s", out);
    cr_assert(strstr(out, "+    sneaky integer"), "%s", out);
    cr_assert(strstr(out, "+CREATE INDEX a_v_manual ON public.a USING btree (v);"), "%s", out);
    free(out);
    mt_teardown(&t);
}

Test(safety, wait_succeeds_when_the_server_starts_late)
{
    pgtest_cluster c;
    pgtest_cluster_start(&c);
    pgtest_cluster_stop(&c);
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "(sleep 2; '%s' start '%s/c' >/dev/null 2>&1) & "
             "'%s' --url '%s' wait --timeout 30; rc=$?; wait; exit $rc",
             pgtest_source_path("scripts/pg-cluster"), c.dir, pgtest_bin("migrate"), c.url);
    double t0 = pgtest_now_ms();
    int rc = pgtest_run(cmd, &out);
    double took = pgtest_now_ms() - t0;
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "the database is ready"), "%s", out);
    cr_assert_geq(took, 2000, "returned before the server started: %s", out);
    free(out);
    pgtest_cluster_destroy(&c);
}

Test(safety, wait_times_out_cleanly)
{
    pgtest_cluster c;
    pgtest_cluster_start(&c);
    pgtest_cluster_stop(&c);
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' --url '%s' wait --timeout 2", pgtest_bin("migrate"), c.url);
    double t0 = pgtest_now_ms();
    int rc = pgtest_run(cmd, &out);
    double took = pgtest_now_ms() - t0;
    cr_assert_eq(rc, 5, "%s", out);
    cr_assert(strstr(out, "did not accept connections within 2 s"), "%s", out);
    cr_assert_geq(took, 1500);
    pgtest_assert_within(took, 2000, "migrate wait --timeout 2");
    free(out);
    pgtest_cluster_destroy(&c);
}

Test(safety, lock_wait_names_the_holder_and_times_out)
{
    mt t;
    mt_setup(&t, "lockholder");
    mt_write(&t, "0001_a.sql", m1);
    PGconn *holder = mt_connect(&t);
    free(pgtest_query(holder, "SET application_name = 'deployer-7'"));
    free(pgtest_query(holder, "SELECT pg_advisory_lock(7883946363647714593)"));
    char *pid = pgtest_query(holder, "SELECT pg_backend_pid()");
    char *out = NULL;
    int rc = mt_migrate(&t, "--lock-timeout 1 up", &out);
    cr_assert_eq(rc, 5, "%s", out);
    char want[128];
    /* the role is whoever the test URL logs in as (postgres locally, the branch owner on Neon) */
    char *url = pgtest_url(), *role = db_url_get(url, "user");
    snprintf(want, sizeof want, "held by pid %s (deployer-7, role %s, from ", pid, role);
    free(url), free(role);
    cr_assert(strstr(out, want), "%s", out);
    cr_assert(strstr(out, "gave up waiting for the migration lock after 1 s"), "%s", out);
    free(out);
    /* a runner that dies releases the lock with its connection */
    PQfinish(holder);
    cr_assert_eq(mt_migrate(&t, "--lock-timeout 5 up", &out), 0, "%s", out);
    free(out);
    free(pid);
    mt_teardown(&t);
}

Test(safety, lock_timeout_stops_a_migration_queued_behind_a_table_lock)
{
    mt t;
    mt_setup(&t, "locktimeout");
    mt_write(&t, "0001_a.sql", m1);
    char *out = NULL;
    cr_assert_eq(mt_migrate(&t, "up", &out), 0, "%s", out);
    free(out);
    mt_write(&t, "0002_w.sql",
             "-- migrate:lock-timeout 300ms\n-- migrate:up\n"
             "ALTER TABLE a ADD COLUMN w int;\n");
    PGconn *reader = mt_connect(&t);
    free(pgtest_query(reader, "BEGIN"));
    free(pgtest_query(reader, "SELECT count(*) FROM a")); /* holds ACCESS SHARE until COMMIT */
    double t0 = pgtest_now_ms();
    int rc = mt_migrate(&t, "up", &out);
    double took = pgtest_now_ms() - t0;
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "0002_w.sql:3: statement 1 failed: canceling statement due to lock "
                          "timeout (SQLSTATE 55P03)"),
              "%s", out);
    cr_assert(strstr(out, "hint: a lock was not granted within lock_timeout"), "%s", out);
    pgtest_assert_within(took, 300, "a migration behind a lock, lock-timeout 300ms");
    free(out);
    /* the run's default applies to files without the directive */
    mt_write(&t, "0002_w.sql", "-- migrate:up\nALTER TABLE a ADD COLUMN w int;\n");
    rc = mt_migrate(&t, "--pg-lock-timeout 200ms up", &out);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "55P03"), "%s", out);
    free(out);
    free(pgtest_query(reader, "COMMIT"));
    PQfinish(reader);
    cr_assert_eq(mt_migrate(&t, "up", &out), 0, "%s", out);
    free(out);
    mt_teardown(&t);
}

Test(safety, transaction_control_in_a_transactional_file_is_refused)
{
    mt t;
    mt_setup(&t, "txcontrol");
    mt_write(&t, "0001_a.sql",
             "-- migrate:up\nCREATE TABLE a (id int);\nCOMMIT;\nCREATE TABLE b (id int);\n");
    char *out = NULL;
    cr_assert_eq(mt_migrate(&t, "up", &out), 3, "%s", out); /* lint sees it first */
    cr_assert(strstr(out, "0001_a.sql:3:1: transaction-control: COMMIT"), "%s", out);
    free(out);
    cr_assert_eq(mt_migrate(&t, "up --no-lint", &out), 1, "%s", out);
    cr_assert(strstr(out, "0001_a.sql:3: \"COMMIT\" would end the migration's transaction early"),
              "%s", out);
    free(out);
    char *n = mt_query(&t, "SELECT count(*) FROM pg_class WHERE relname IN ('a', 'b')");
    cr_assert_str_eq(n, "0");
    free(n);
    mt_teardown(&t);
}

Test(safety, a_connection_lost_mid_migration_is_retried_at_a_safe_point)
{
    mt t;
    mt_setup(&t, "lostconn");
    mt_write(&t, "0001_a.sql", m1);
    mt_write(&t, "0002_slow.sql",
             "-- migrate:up\nINSERT INTO runs VALUES ('0002');\n"
             "SELECT pg_sleep(CASE WHEN (SELECT count(*) FROM schema_migrations "
             "WHERE version = '0001') = 1 THEN 1.5 ELSE 0 END);\n");
    char cmd[4096], *out = NULL;
    /* terminate migrate's backend while it sleeps inside 0002's transaction, once (polled, so a
     * loaded machine does not miss the 1.5 s window) */
    snprintf(
        cmd, sizeof cmd,
        "(for i in $(seq 100); do n=$(psql \"$MT_URL\" -qAtXc \"SELECT "
        "count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = "
        "'migrate' AND state = 'active' AND query LIKE '%%pg_sleep%%'\"); [ \"$n\" = 1 ] && "
        "break; sleep 0.1; done) & "
        "MIGRATE_CONNECT_TIMEOUT=10 '%s' --url \"$MT_URL\" --dir '%s' up; rc=$?; wait; exit $rc",
        pgtest_bin("migrate"), t.dir);
    int rc = pgtest_run(cmd, &out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "the connection was lost while applying 0002_slow.sql"), "%s", out);
    cr_assert(strstr(out, "applied  0002_slow.sql"), "%s", out);
    free(out);
    char *runs = mt_query(&t, "SELECT string_agg(version, ',' ORDER BY version) FROM runs");
    cr_assert_str_eq(runs, "0001,0002");
    free(runs);
    mt_teardown(&t);
}
