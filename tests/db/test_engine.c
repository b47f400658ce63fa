/* db/engine: sessions borrowed from one pool, transactions, errors, reuse and limits. Runs twice:
 * direct and through pgbouncer in transaction mode (the _pooler run). */
#include <pthread.h>

#include "engine_support.h"

Test(engine, query_with_parameters_and_null)
{
    char *url = pgtest_app_url(), app[64];
    test_appname(app, sizeof app, "query");
    db_config cfg;
    test_config(&cfg, url, app);
    db_error err;
    db_engine *e = db_engine_open(&cfg, &err);
    cr_assert_not_null(e, "%s", err.message);
    db_session *s;
    cr_assert_eq(db_session_open(e, DB_READ_WRITE, &s, &err), 0, "%s", err.message);
    const char *params[2] = {"41", NULL};
    PGresult *r = db_query(s, "select $1::int + 1, $2::text is null", 2, params, &err);
    cr_assert_not_null(r, "%s", err.message);
    cr_assert_str_eq(PQgetvalue(r, 0, 0), "42");
    cr_assert_str_eq(PQgetvalue(r, 0, 1), "t");
    PQclear(r);
    cr_assert_null(db_query(s, "select * from no_such_table", 0, NULL, &err));
    cr_assert_eq(err.kind, DB_ERR_QUERY);
    cr_assert_str_eq(err.sqlstate, "42P01");
    cr_assert(strstr(err.message, "no_such_table"), "%s", err.message);
    cr_assert_null(db_query(s, "selec 1", 0, NULL, &err));
    cr_assert_str_eq(err.sqlstate, "42601");
    cr_assert_not_null(db_session_conn(s));
    db_session_close(s);
    db_engine_close(e);
    free(url);
}

Test(engine, transactions_commit_rollback_and_close_rolls_back)
{
    char *url = pgtest_app_url(), app[64];
    test_appname(app, sizeof app, "tx");
    db_config cfg;
    test_config(&cfg, url, app);
    db_error err;
    db_engine *e = db_engine_open(&cfg, &err);
    db_session *s;
    cr_assert_eq(db_session_open(e, DB_READ_WRITE, &s, &err), 0, "%s", err.message);
    cr_assert_eq(db_exec(s, "create table if not exists tx_t (v int)", 0, NULL, &err), 0, "%s",
                 err.message);
    cr_assert_eq(db_exec(s, "truncate tx_t", 0, NULL, &err), 0, "%s", err.message);

    cr_assert_eq(db_begin(s, &err), 0, "%s", err.message);
    cr_assert_eq(db_begin(s, &err), -1);
    cr_assert_eq(db_exec(s, "insert into tx_t values (1)", 0, NULL, &err), 0, "%s", err.message);
    cr_assert_eq(db_commit(s, &err), 0, "%s", err.message);

    cr_assert_eq(db_begin(s, &err), 0);
    cr_assert_eq(db_exec(s, "insert into tx_t values (2)", 0, NULL, &err), 0);
    cr_assert_eq(db_rollback(s, &err), 0, "%s", err.message);

    /* a failed transaction: COMMIT reports that it rolled back */
    cr_assert_eq(db_begin(s, &err), 0);
    cr_assert_eq(db_exec(s, "insert into tx_t values (3)", 0, NULL, &err), 0);
    cr_assert_eq(db_exec(s, "insert into tx_t values ('x')", 0, NULL, &err), -1);
    cr_assert_eq(db_commit(s, &err), -1);
    cr_assert_str_eq(err.sqlstate, "25P02");

    /* left open: closing the session rolls it back */
    cr_assert_eq(db_begin(s, &err), 0);
    cr_assert_eq(db_exec(s, "insert into tx_t values (4)", 0, NULL, &err), 0);
    db_session_close(s);

    cr_assert_eq(db_session_open(e, DB_READ_ONLY, &s, &err), 0, "%s", err.message);
    cr_assert_eq(PQtransactionStatus(db_session_conn(s)), PQTRANS_IDLE);
    PGresult *r =
        db_query(s, "select string_agg(v::text, ',' order by v) from tx_t", 0, NULL, &err);
    cr_assert_not_null(r, "%s", err.message);
    cr_assert_str_eq(PQgetvalue(r, 0, 0), "1");
    PQclear(r);
    /* read-only sessions open read-only transactions */
    cr_assert_eq(db_begin(s, &err), 0);
    cr_assert_eq(db_exec(s, "insert into tx_t values (5)", 0, NULL, &err), -1);
    cr_assert_str_eq(err.sqlstate, "25006");
    db_session_close(s);
    db_engine_close(e);
    free(url);
}

Test(engine, sequential_sessions_reuse_one_connection)
{
    char *url = pgtest_app_url(), app[64];
    test_appname(app, sizeof app, "reuse");
    db_config cfg;
    test_config(&cfg, url, app);
    db_error err;
    db_engine *e = db_engine_open(&cfg, &err);
    for (int i = 0; i < 50; i++)
        one_read(e);
    db_stats st;
    db_engine_stats(e, &st);
    cr_assert_eq(st.connects, 1, "connects %lu", (unsigned long)st.connects);
    cr_assert_eq(st.acquires, 50);
    cr_assert_eq(st.open, 1);
    cr_assert_eq(st.idle, 1);
    cr_assert_eq(st.in_use, 0);
    if (!pgtest_via_pooler())
        cr_assert_eq(count_conns(app), 1);
    db_engine_close(e);
    if (!pgtest_via_pooler())
        cr_assert_eq(count_conns(app), 0, "close closes every connection");
    free(url);
}
