/* support: see support.h. */
#include "tests/migrate/support.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/url.h"
#include "tests/support/pgtest.h"

void mt_setup(mt *t, const char *tag)
{
    const char *suite = getenv("TEST_DB_NAME");
    cr_assert(suite, "TEST_DB_NAME is not set: run through tests/harness/with-db");
    /* "<suite database>_<tag>": tests/harness/with-db drops it with the suite even after a failure
     */
    snprintf(t->db, sizeof t->db, "%s_%.20s", suite, tag);
    PGconn *c = pgtest_connect();
    char sql[256];
    snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", t->db);
    free(pgtest_query(c, sql));
    PQfinish(c);
    char *base = pgtest_url();
    t->url = db_url_with(base, "dbname", t->db);
    free(base);
    cr_assert_not_null(t->url);
    /* commands refer to it as "$MT_URL": key=value strings do not survive shell quoting */
    setenv("MT_URL", t->url, 1);
    snprintf(t->dir, sizeof t->dir, "/tmp/migtest.XXXXXX");
    cr_assert_not_null(mkdtemp(t->dir));
}

void mt_teardown(mt *t)
{
    pgtest_drop_database(t->db);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
    cr_assert_eq(pgtest_run(cmd, NULL), 0);
    free(t->url);
    t->url = NULL;
}

void mt_write(mt *t, const char *name, const char *content)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", t->dir, name);
    if (!content) {
        cr_assert_eq(unlink(path), 0, "cannot remove %s", path);
        return;
    }
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(content, f);
    fclose(f);
}

int mt_migrate(mt *t, const char *args, char **out)
{
    size_t n = strlen(t->url) + strlen(args) + 1024;
    char *cmd = malloc(n);
    snprintf(cmd, n, "MIGRATE_CONNECT_TIMEOUT=5 '%s' --url \"$MT_URL\" --dir '%s' %s",
             pgtest_bin("migrate"), t->dir, args);
    int rc = pgtest_run(cmd, out);
    free(cmd);
    return rc;
}

PGconn *mt_connect(mt *t)
{
    PGconn *c = PQconnectdb(t->url);
    cr_assert(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
    return c;
}

char *mt_query(mt *t, const char *sql)
{
    PGconn *c = mt_connect(t);
    char *v = pgtest_query(c, sql);
    PQfinish(c);
    return v;
}
