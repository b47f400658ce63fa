/* migrate diff's scratch databases with a non-superuser dev role (Neon's): DROP DATABASE ... WITH
 * (FORCE) fails while a session that role may not terminate is connected (an autovacuum worker in
 * the wild; here a superuser session the test holds open). diff retries, drops both databases once
 * the session is gone, and never blames CREATEDB. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db/url.h"
#include "tests/migrate/support.h"
#include "tests/support/pgtest.h"

static char *scalar(PGconn *c, const char *sql)
{
    return pgtest_query(c, sql);
}

Test(scratch, drop_is_retried_while_a_session_it_may_not_end_is_connected, .timeout = 240)
{
    mt t;
    mt_setup(&t, "scratch_drop");
    char role[96], sql[512], pw[32];
    snprintf(role, sizeof role, "%s_dev", t.db);
    snprintf(pw, sizeof pw, "pw-%d", (int)getpid());
    snprintf(sql, sizeof sql, "CREATE ROLE \"%s\" LOGIN CREATEDB NOSUPERUSER PASSWORD '%s'", role,
             pw);
    free(mt_query(&t, sql));
    char *base = pgtest_url(), *u1 = db_url_with(base, "user", role);
    char *dev = db_url_with(u1, "password", pw);
    free(u1);
    mt_write(&t, "0001_a.sql",
             "-- migrate:up\nCREATE TABLE a (x int);\n-- migrate:down\n"
             "DROP TABLE a;\n");
    /* the replay waits until the test's session sits in scratch database B */
    mt_write(&t, "0002_wait.sql",
             "-- migrate:up\nDO $$ BEGIN WHILE NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE "
             "application_name = 'migrate-test-holder') AND clock_timestamp() < now() + "
             "interval '60 s' LOOP PERFORM pg_sleep(0.05); END LOOP; END $$;\n"
             "-- migrate:down\n");
    mt_write(&t, "schema.sql", "CREATE TABLE a (x int, y int);\n");
    char log[128];
    snprintf(log, sizeof log, "%s/diff.log", t.dir);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        FILE *f = freopen(log, "w", stdout);
        if (!f || dup2(fileno(stdout), 2) < 0)
            _exit(126);
        execl(pgtest_bin("migrate"), "migrate", "--dir", t.dir, "diff", "--dev-url", dev, "change",
              (char *)NULL);
        _exit(127);
    }
    PGconn *admin = pgtest_connect();
    char name_b[128] = "", like[256];
    snprintf(like, sizeof like,
             "SELECT datname FROM pg_database WHERE datname LIKE 'migrate\\_diff\\_%d\\_%%\\_b'",
             (int)pid);
    for (int i = 0; i < 3000 && !*name_b; i++) {
        char *v = scalar(admin, like);
        if (v)
            snprintf(name_b, sizeof name_b, "%s", v);
        free(v);
        if (!*name_b)
            usleep(20000);
    }
    cr_assert(*name_b, "scratch database B never appeared");
    /* a superuser session in B: the non-superuser role may not terminate it */
    char *u2 = db_url_with(base, "dbname", name_b);
    char *holder_url = db_url_with(u2, "application_name", "migrate-test-holder");
    free(u2);
    PGconn *holder = PQconnectdb(holder_url);
    cr_assert(PQstatus(holder) == CONNECTION_OK, "%s", PQerrorMessage(holder));
    /* hold B until diff has tried to drop it (A, dropped first, is gone), and a while after */
    char name_a[128];
    snprintf(name_a, sizeof name_a, "%.*sa", (int)strlen(name_b) - 1, name_b);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_database WHERE datname IN ('%s', '%s')",
             name_a, name_b);
    bool a_gone = false;
    for (int i = 0; i < 6000 && !a_gone; i++) {
        snprintf(like, sizeof like, "SELECT count(*) FROM pg_database WHERE datname = '%s'",
                 name_a);
        char *v = scalar(admin, like);
        a_gone = v && !strcmp(v, "0");
        free(v);
        int st;
        if (!a_gone && waitpid(pid, &st, WNOHANG) == pid)
            cr_assert_fail("diff ended before dropping A");
        if (!a_gone)
            usleep(20000);
    }
    cr_assert(a_gone, "scratch database A was never dropped");
    usleep(2000000); /* keeps B busy past diff's first drop attempt; the assertion is below */
    PQfinish(holder);
    int st = 0;
    waitpid(pid, &st, 0);
    char cmd[256], *out = NULL;
    snprintf(cmd, sizeof cmd, "cat '%s'", log);
    pgtest_run(cmd, &out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", out);
    cr_assert_null(strstr(out, "CREATEDB"), "the drop failure blamed CREATEDB:\n%s", out);
    char *left = scalar(admin, sql);
    cr_assert_str_eq(left, "0", "scratch databases leaked:\n%s", out);
    free(left);
    free(out);
    PQfinish(admin);
    free(holder_url);
    free(dev);
    free(base);
    snprintf(sql, sizeof sql, "DROP ROLE \"%s\"", role);
    free(mt_query(&t, sql));
    mt_teardown(&t);
}
