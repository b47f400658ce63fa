/* db/engine: sessions borrowed from one pool, transactions, errors, reuse and limits. Runs twice:
 * direct and through pgbouncer in transaction mode (the _pooler run). */
#include <pthread.h>

#include "db/url.h"
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

/* ---- concurrency and limits ---- */

typedef struct {
    db_engine *e;
    int rounds, failures;
    char last_error[512];
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    for (int i = 0; i < a->rounds; i++) {
        db_session *s;
        db_error err;
        if (db_session_open(a->e, i % 2 ? DB_READ_ONLY : DB_READ_WRITE, &s, &err) < 0) {
            a->failures++;
            snprintf(a->last_error, sizeof a->last_error, "%s", err.message);
            continue;
        }
        PGresult *r = db_query(s, "select pg_sleep(0.005)", 0, NULL, &err);
        if (!r) {
            a->failures++;
            snprintf(a->last_error, sizeof a->last_error, "%s", err.message);
        }
        PQclear(r);
        db_session_close(s);
    }
    return NULL;
}

typedef struct {
    db_engine *e;
    const char *app;
    volatile int stop;
    int max_open, max_server;
} monitor_arg;

static void *monitor(void *p)
{
    monitor_arg *m = p;
    while (!m->stop) {
        db_stats st;
        db_engine_stats(m->e, &st);
        if (st.open > m->max_open)
            m->max_open = st.open;
        if (!pgtest_via_pooler()) {
            int n = count_conns(m->app);
            if (n > m->max_server)
                m->max_server = n;
        }
        usleep(5000);
    }
    return NULL;
}

Test(engine, more_threads_than_pool_max_all_succeed_within_the_limit)
{
    char *url = pgtest_app_url(), app[64];
    test_appname(app, sizeof app, "conc");
    db_config cfg;
    test_config(&cfg, url, app);
    cfg.pool_max = 3;
    cfg.acquire_timeout = 10;
    db_error err;
    db_engine *e = db_engine_open(&cfg, &err);
    enum { N = 10 };
    pthread_t t[N], mt;
    worker_arg a[N];
    monitor_arg m = {.e = e, .app = app};
    pthread_create(&mt, NULL, monitor, &m);
    for (int i = 0; i < N; i++) {
        a[i] = (worker_arg){.e = e, .rounds = 15};
        pthread_create(&t[i], NULL, worker, &a[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    m.stop = 1;
    pthread_join(mt, NULL);
    for (int i = 0; i < N; i++)
        cr_expect_eq(a[i].failures, 0, "thread %d: %s", i, a[i].last_error);
    db_stats st;
    db_engine_stats(e, &st);
    cr_assert_eq(st.acquires, N * 15);
    cr_assert_leq(m.max_open, 3, "engine opened %d", m.max_open);
    cr_assert_leq(st.connects, 3);
    cr_assert_leq(m.max_server, 3, "server saw %d", m.max_server);
    cr_assert_eq(st.in_use, 0);
    cr_assert_eq(st.waiting, 0);
    cr_assert_gt(st.acquire_wait_seconds_total, 0);
    db_engine_close(e);
    free(url);
}

Test(engine, exhausted_pool_fails_after_the_acquire_timeout)
{
    char *url = pgtest_app_url(), app[64];
    test_appname(app, sizeof app, "acq");
    db_config cfg;
    test_config(&cfg, url, app);
    cfg.pool_max = 1;
    cfg.acquire_timeout = 0.5;
    db_error err;
    db_engine *e = db_engine_open(&cfg, &err);
    db_session *held, *s = NULL;
    cr_assert_eq(db_session_open(e, DB_READ_WRITE, &held, &err), 0, "%s", err.message);
    double t0 = pgtest_now_ms();
    cr_assert_eq(db_session_open(e, DB_READ_ONLY, &s, &err), -1);
    double ms = pgtest_now_ms() - t0;
    cr_assert_null(s);
    cr_assert_eq(err.kind, DB_ERR_POOL_TIMEOUT, "%s", db_errkind_name(err.kind));
    cr_assert(db_error_is_transient(&err));
    cr_assert_geq(ms, 450, "waited %.0f ms", ms);
    pgtest_assert_within(ms, 500, "the acquire timeout");
    db_stats st;
    db_engine_stats(e, &st);
    cr_assert_eq(st.acquire_timeouts, 1);
    cr_assert_eq(st.waiting, 0);
    db_session_close(held);
    one_read(e); /* the pool still works */
    db_engine_close(e);
    free(url);
}

typedef struct {
    db_engine *e;
    db_error err;
    int rc;
    double ms;
} waiter_arg;

static void *wait_for_session(void *p)
{
    waiter_arg *w = p;
    db_session *s = NULL;
    double t0 = pgtest_now_ms();
    w->rc = db_session_open(w->e, DB_READ_ONLY, &s, &w->err);
    w->ms = pgtest_now_ms() - t0;
    db_session_close(s);
    return NULL;
}

static void *close_engine(void *p)
{
    db_engine_close(p);
    return NULL;
}

typedef struct {
    db_engine *e;
    int *order, *n;
    pthread_mutex_t *mu;
    int id;
} fifo_arg;

static void *fifo_waiter(void *p)
{
    fifo_arg *a = p;
    db_session *s;
    db_error err;
    if (db_session_open(a->e, DB_READ_ONLY, &s, &err) == 0) {
        pthread_mutex_lock(a->mu);
        a->order[(*a->n)++] = a->id;
        pthread_mutex_unlock(a->mu);
        usleep(20000);
        db_session_close(s);
    }
    return NULL;
}

static void wait_waiting(db_engine *e, int n)
{
    for (int i = 0; i < 400; i++) {
        db_stats st;
        db_engine_stats(e, &st);
        if (st.waiting == n)
            return;
        usleep(5000);
    }
    cr_assert_fail("never saw %d waiters", n);
}

Test(engine, waiters_are_served_first_come_first_served)
{
    char *url = pgtest_app_url(), app[64];
    test_appname(app, sizeof app, "fifo");
    db_config cfg;
    test_config(&cfg, url, app);
    cfg.pool_max = 1;
    cfg.acquire_timeout = 10;
    db_error err;
    db_engine *e = db_engine_open(&cfg, &err);
    db_session *held;
    cr_assert_eq(db_session_open(e, DB_READ_WRITE, &held, &err), 0, "%s", err.message);
    enum { N = 4 };
    int order[N], n = 0;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_t t[N];
    fifo_arg a[N];
    for (int i = 0; i < N; i++) {
        a[i] = (fifo_arg){e, order, &n, &mu, i};
        pthread_create(&t[i], NULL, fifo_waiter, &a[i]);
        wait_waiting(e, i + 1); /* queued in this order */
    }
    db_session_close(held);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(n, N);
    for (int i = 0; i < N; i++)
        cr_assert_eq(order[i], i, "position %d went to waiter %d", i, order[i]);
    db_engine_close(e);
    free(url);
}

Test(engine, close_releases_waiters_and_waits_for_borrowed_connections)
{
    char *url = pgtest_app_url(), app[64];
    test_appname(app, sizeof app, "close");
    db_config cfg;
    test_config(&cfg, url, app);
    cfg.pool_max = 1;
    cfg.acquire_timeout = 20;
    db_error err;
    db_engine *e = db_engine_open(&cfg, &err);
    db_session *held;
    cr_assert_eq(db_session_open(e, DB_READ_WRITE, &held, &err), 0, "%s", err.message);
    waiter_arg w = {.e = e};
    pthread_t wt, ct;
    pthread_create(&wt, NULL, wait_for_session, &w);
    for (int i = 0; i < 200; i++) {
        db_stats st;
        db_engine_stats(e, &st);
        if (st.waiting == 1)
            break;
        usleep(5000);
    }
    pthread_create(&ct, NULL, close_engine, e);
    pthread_join(wt, NULL);
    cr_assert_eq(w.rc, -1);
    cr_assert_eq(w.err.kind, DB_ERR_CLOSED, "%s", db_errkind_name(w.err.kind));
    /* DB_ERR_CLOSED, not DB_ERR_POOL_TIMEOUT: released by close, not by its 20 s timeout */
    /* the borrowed session still works until it is given back */
    PGresult *r = db_query(held, "select 1", 0, NULL, &err);
    cr_assert_not_null(r, "%s", err.message);
    PQclear(r);
    db_session_close(held);
    pthread_join(ct, NULL);
    if (!pgtest_via_pooler())
        cr_assert_eq(count_conns(app), 0);
    free(url);
}

Test(engine, statement_timeout_cancels_and_the_connection_stays_usable)
{
    char *url = pgtest_app_url(), app[64];
    test_appname(app, sizeof app, "stmt");
    db_config cfg;
    test_config(&cfg, url, app);
    cfg.statement_timeout = 0.3;
    db_error err;
    db_engine *e = db_engine_open(&cfg, &err);
    db_session *s;
    cr_assert_eq(db_session_open(e, DB_READ_WRITE, &s, &err), 0, "%s", err.message);
    double t0 = pgtest_now_ms();
    cr_assert_null(db_query(s, "select pg_sleep(10)", 0, NULL, &err));
    double ms = pgtest_now_ms() - t0;
    cr_assert_eq(err.kind, DB_ERR_STATEMENT_TIMEOUT, "%s: %s", db_errkind_name(err.kind),
                 err.message);
    cr_assert_str_eq(err.sqlstate, "57014");
    pgtest_assert_within(ms, 300, "the statement timeout's cancel");
    PGresult *r = db_query(s, "select 2", 0, NULL, &err);
    cr_assert_not_null(r, "%s", err.message);
    cr_assert_str_eq(PQgetvalue(r, 0, 0), "2");
    PQclear(r);
    db_session_close(s);
    db_stats st;
    db_engine_stats(e, &st);
    cr_assert_eq(st.discarded, 0);
    cr_assert_eq(st.idle, 1);
    db_engine_close(e);
    free(url);
}

Test(engine, wrong_password_fails_the_session_fast_with_a_config_error)
{
    char *url = pgtest_app_url(), app[64];
    char *bad = db_url_with(url, "password", "wrong-password");
    test_appname(app, sizeof app, "badpw");
    db_config cfg;
    test_config(&cfg, bad, app);
    db_error err;
    db_engine *e = db_engine_open(&cfg, &err);
    cr_assert_not_null(e, "%s", err.message);
    db_session *s = NULL;
    double t0 = pgtest_now_ms();
    cr_assert_eq(db_session_open(e, DB_READ_ONLY, &s, &err), -1);
    cr_assert_eq(err.kind, DB_ERR_CONFIG, "%s: %s", db_errkind_name(err.kind), err.message);
    /* retries would go on for the connect budget */
    pgtest_assert_within(pgtest_now_ms() - t0, 0, "not retried");
    cr_assert(strstr(err.hint, "password"), "%s", err.hint);
    cr_assert_null(strstr(err.message, "wrong-password"));
    db_engine_close(e);
    free(bad), free(url);
}
