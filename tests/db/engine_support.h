/* Helpers shared by the engine suites: an engine on this suite's database with a unique
 * application_name, so its connections can be counted in pg_stat_activity. */
#ifndef TESTS_DB_ENGINE_SUPPORT_H
#define TESTS_DB_ENGINE_SUPPORT_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/engine.h"
#include "tests/support/pgtest.h"

/* Defaults for tests: short timeouts so failures show quickly. The URL is the app URL (through
 * pgbouncer in the _pooler run); cfg->url must stay alive while the engine is open. */
static inline void test_config(db_config *cfg, char *url, const char *appname)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->url = url;
    cfg->application_name = appname;
    cfg->mode = DB_POOL_MODE_POOL;
    cfg->pool_max = 4;
    cfg->idle_timeout = 60;
    cfg->max_lifetime = 600;
    cfg->acquire_timeout = 2;
    cfg->connect_timeout = 3;
    cfg->statement_timeout = 5;
    cfg->preping_after = 30;
}

/* A unique application_name for this test process. */
static inline void test_appname(char *buf, size_t len, const char *what)
{
    snprintf(buf, len, "t-%s-%d", what, (int)getpid());
}

/* Server connections carrying `appname` (direct URL, so the counting connection is not counted). */
static inline int count_conns(const char *appname)
{
    PGconn *c = pgtest_connect();
    const char *p[1] = {appname};
    PGresult *r =
        PQexecParams(c, "select count(*) from pg_stat_activity where application_name = $1", 1,
                     NULL, p, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
    int n = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return n;
}

/* Runs one read-only `select 1` session; asserts it worked. */
static inline void one_read(db_engine *e)
{
    db_session *s;
    db_error err;
    cr_assert_eq(db_session_open(e, DB_READ_ONLY, &s, &err), 0, "%s: %s", db_errkind_name(err.kind),
                 err.message);
    PGresult *r = db_query(s, "select 1", 0, NULL, &err);
    cr_assert_not_null(r, "%s: %s", db_errkind_name(err.kind), err.message);
    cr_assert_str_eq(PQgetvalue(r, 0, 0), "1");
    PQclear(r);
    db_session_close(s);
}

#endif
