/* migrate online safety on a real server with a concurrent client: what `diff` generates and `up`
 * applies never holds a lock that blocks reads across a validation scan, a failed CREATE UNIQUE
 * INDEX CONCURRENTLY is rebuilt instead of silently kept, and no SET leaks from one file to the
 * next of one `up` run.
 *
 * The validation scan is held open deterministically: the CHECK calls gate(), which waits for an
 * advisory lock the test holds, so VALIDATE is provably mid-scan while the reader runs (no timing
 * guess). The reader's lock_timeout of 1 s is the deadline under test: a read that waits on a lock
 * at all fails it, whatever the machine's load. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/migrate/support.h"
#include "tests/support/pgtest.h"

#define GATE_KEY "42427"

static const char base_up[] =
    "CREATE TABLE big (id bigint PRIMARY KEY, v int, w int);\n"
    "CREATE FUNCTION gate() RETURNS boolean LANGUAGE sql VOLATILE AS\n"
    "  $$ SELECT pg_advisory_xact_lock_shared(" GATE_KEY ") IS NOT NULL $$;\n";

static void setup(mt *t, const char *tag, const char *edit)
{
    mt_setup(t, tag);
    char *dev = pgtest_url();
    setenv("MT_DEV", dev, 1);
    free(dev);
    char m[2048], s[4096];
    snprintf(m, sizeof m,
             "-- migrate:up\n%s-- migrate:down\nDROP FUNCTION gate();\nDROP TABLE big;\n", base_up);
    mt_write(t, "0001_base.sql", m);
    snprintf(s, sizeof s, "%s%s", base_up, edit);
    mt_write(t, "schema.sql", s);
    char *out = NULL;
    cr_assert_eq(mt_migrate(t, "up", &out), 0, "%s", out);
    free(out);
    /* 1M rows; the row with v = 0 comes first in the heap, so the scan reaches gate() at once */
    free(mt_query(t, "INSERT INTO big SELECT g, g, g FROM generate_series(0, 999999) g"));
    free(mt_query(t, "ANALYZE big"));
}

/* Starts `migrate up` in the background; returns its pid. Output goes to `log`. */
static pid_t start_up(mt *t, const char *log)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        FILE *f = freopen(log, "w", stdout);
        if (!f || dup2(fileno(stdout), 2) < 0)
            _exit(126);
        execl(pgtest_bin("migrate"), "migrate", "--url", t->url, "--dir", t->dir, "up",
              (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Polls (20 ms steps, up to 120 s) until a backend of the test database waits on the gate. */
static bool wait_for_gate(mt *t, pid_t child)
{
    PGconn *c = mt_connect(t);
    bool seen = false;
    for (int i = 0; i < 6000 && !seen; i++) {
        char *v = pgtest_query(c, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                  "current_database() AND wait_event = 'advisory' AND query ILIKE "
                                  "'%VALIDATE%'");
        seen = v && atoi(v) > 0;
        free(v);
        int st;
        if (!seen && waitpid(child, &st, WNOHANG) == child)
            break; /* migrate ended without reaching the scan */
        if (!seen)
            usleep(20000);
    }
    PQfinish(c);
    return seen;
}

static char *read_log(const char *log)
{
    char cmd[256], *out = NULL;
    snprintf(cmd, sizeof cmd, "cat '%s'", log);
    pgtest_run(cmd, &out);
    return out;
}

/* Runs `sql` on a fresh connection with lock_timeout 1 s; returns NULL on success or the error. */
static char *try_sql(mt *t, const char *sql)
{
    PGconn *c = mt_connect(t);
    PQclear(PQexec(c, "SET lock_timeout = '1s'; SET statement_timeout = '60s'"));
    PGresult *r = PQexec(c, sql);
    ExecStatusType s = PQresultStatus(r);
    char *err =
        s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK ? NULL : strdup(PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    return err;
}

/* The generated migration is applied while a reader and a writer work on the table: both answer
 * while VALIDATE scans, and the constraint ends up validated. */
static void validate_while_reading(const char *tag, const char *edit, const char *conname)
{
    mt t;
    setup(&t, tag, edit);
    char *out = NULL;
    char args[256];
    snprintf(args, sizeof args, "diff --dev-url \"$MT_DEV\" %s", tag);
    cr_assert_eq(mt_migrate(&t, args, &out), 0, "%s", out);
    free(out);
    char log[128];
    snprintf(log, sizeof log, "%s/up.log", t.dir);
    PGconn *holder = mt_connect(&t);
    free(pgtest_query(holder, "SELECT pg_advisory_lock(" GATE_KEY ")::text"));
    pid_t pid = start_up(&t, log);
    bool scanning = wait_for_gate(&t, pid);
    char *read_err = scanning ? try_sql(&t, "SELECT id FROM big WHERE id = 5") : NULL;
    char *write_err = scanning ? try_sql(&t, "UPDATE big SET w = w + 1 WHERE id = 999999") : NULL;
    free(pgtest_query(holder, "SELECT pg_advisory_unlock(" GATE_KEY ")::text"));
    PQfinish(holder);
    int st = 0;
    waitpid(pid, &st, 0);
    char *upout = read_log(log);
    cr_assert(scanning, "%s: VALIDATE never reached the scan: %s", tag, upout);
    cr_expect_null(read_err, "%s: a SELECT blocked while VALIDATE scanned: %s\n%s", tag, read_err,
                   upout);
    cr_expect_null(write_err, "%s: an UPDATE blocked while VALIDATE scanned: %s", tag, write_err);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: up failed: %s", tag, upout);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_constraint WHERE conname = '%s' AND convalidated", conname);
    char *v = mt_query(&t, sql);
    cr_assert_str_eq(v, "1", "%s: %s is not validated", tag, conname);
    free(v);
    free(upout);
    free(read_err);
    free(write_err);
    cr_assert_eq(mt_migrate(&t, "check", &out), 0, "%s", out);
    free(out);
    mt_teardown(&t);
}

Test(online, a_generated_check_is_validated_while_reads_and_writes_go_on, .timeout = 300)
{
    validate_while_reading("add_check",
                           "ALTER TABLE big ADD CONSTRAINT big_v_check "
                           "CHECK (v >= 0 AND (v <> 0 OR gate()));\n",
                           "big_v_check");
}

/* A failed CREATE UNIQUE INDEX CONCURRENTLY leaves an INVALID index; status and check name it, and
 * the next up drops and rebuilds it instead of letting IF NOT EXISTS keep it. */
Test(online, an_invalid_index_is_reported_and_rebuilt_by_the_next_up)
{
    mt t;
    mt_setup(&t, "invalid_idx");
    mt_write(&t, "0001_u.sql",
             "-- migrate:up\nCREATE TABLE u (id bigint PRIMARY KEY, v int);\n"
             "INSERT INTO u VALUES (1, 7), (2, 7), (3, 8);\n-- migrate:down\nDROP TABLE u;\n");
    mt_write(&t, "0002_u_v_key.sql",
             "-- migrate:no-transaction\n-- migrate:up\n"
             "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS u_v_key ON u (v);\n"
             "-- migrate:down\nDROP INDEX CONCURRENTLY IF EXISTS u_v_key;\n");
    char *out = NULL;
    cr_assert_neq(mt_migrate(&t, "up", &out), 0, "%s", out);
    cr_assert(strstr(out, "INVALID index left behind: public.u_v_key"), "%s", out);
    free(out);
    char *v = mt_query(&t, "SELECT indisvalid::text FROM pg_index WHERE indexrelid = "
                           "'u_v_key'::regclass");
    cr_assert_str_eq(v, "false");
    free(v);
    cr_assert_eq(mt_migrate(&t, "status --exit-code", &out), 3, "%s", out);
    cr_assert(strstr(out, "INVALID index(es): public.u_v_key"), "%s", out);
    free(out);
    cr_assert_neq(mt_migrate(&t, "check", &out), 0, "%s", out);
    cr_assert(strstr(out, "INVALID index(es): public.u_v_key"), "%s", out);
    free(out);
    /* still duplicated: the rebuilt index fails again and the file is not recorded */
    cr_assert_neq(mt_migrate(&t, "up", &out), 0, "%s", out);
    cr_assert(strstr(out, "dropping it to build it again"), "%s", out);
    free(out);
    v = mt_query(&t, "SELECT count(*) FROM schema_migrations WHERE version = '0002'");
    cr_assert_str_eq(v, "0", "the migration was recorded over an INVALID index");
    free(v);
    free(mt_query(&t, "DELETE FROM u WHERE id = 2"));
    cr_assert_eq(mt_migrate(&t, "up", &out), 0, "%s", out);
    cr_assert(strstr(out, "index public.u_v_key is INVALID"), "%s", out);
    free(out);
    v = mt_query(&t, "SELECT indisvalid::text FROM pg_index WHERE indexrelid = "
                     "'u_v_key'::regclass");
    cr_assert_str_eq(v, "true", "up recorded the migration over an INVALID index");
    free(v);
    cr_assert_eq(mt_migrate(&t, "status --exit-code", &out), 0, "%s", out);
    free(out);
    mt_teardown(&t);
}

/* A plain SET in one file does not reach the next file of the same up run: each file starts from
 * the session's defaults plus migrate's own lock_timeout. */
Test(online, no_setting_leaks_from_one_file_to_the_next)
{
    mt t;
    mt_setup(&t, "no_leak");
    mt_write(&t, "0001_set.sql",
             "-- migrate:up\nSET statement_timeout = '42s';\nSET search_path = nowhere, public;\n"
             "SET myapp.flag = 'leaked';\nCREATE TEMP TABLE scratch (x int);\n"
             "CREATE TABLE public.a (x int);\n-- migrate:down\nDROP TABLE public.a;\n");
    mt_write(&t, "0002_read.sql",
             "-- migrate:up\nCREATE TABLE public.seen AS SELECT "
             "current_setting('statement_timeout') AS st, current_setting('search_path') AS sp, "
             "coalesce(current_setting('myapp.flag', true), '') AS flag, "
             "current_setting('lock_timeout') AS lt, "
             "(SELECT count(*) FROM pg_class WHERE relname = 'scratch' AND relpersistence = 't') "
             "AS temps;\n-- migrate:down\nDROP TABLE public.seen;\n");
    char *out = NULL;
    cr_assert_eq(mt_migrate(&t, "up", &out), 0, "%s", out);
    free(out);
    char *v = mt_query(&t, "SELECT st || '|' || sp || '|' || flag || '|' || lt || '|' || temps "
                           "FROM public.seen");
    cr_assert_str_eq(v, "0|\"$user\", public||5s|0", "settings leaked into the next file");
    free(v);
    mt_teardown(&t);
}
