/* db/engine resilience: terminated connections, connections dying mid-statement, cold starts and
 * refused connections. Runs direct and through pgbouncer (the _pooler run). */
#include <pthread.h>

#include "db/url.h"
#include "engine_support.h"
#include "proxy.h"

/* Terminates every server connection named `appname` and waits until they are gone. */
static void terminate_all(const char *appname)
{
    PGconn *c = pgtest_connect();
    const char *p[1] = {appname};
    PGresult *r = PQexecParams(c,
                               "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                               "where application_name = $1 and pid <> pg_backend_pid()",
                               1, NULL, p, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    for (int i = 0; i < 200 && count_conns(appname) > 0; i++)
        usleep(10000);
    cr_assert_eq(count_conns(appname), 0);
}

static db_engine *open_engine(db_config *cfg, char *url, char *app, const char *what)
{
    test_appname(app, 64, what);
    test_config(cfg, url, app);
    db_error err;
    db_engine *e = db_engine_open(cfg, &err);
    cr_assert_not_null(e, "%s", err.message);
    return e;
}

/* Starts `proxy` in front of this suite's server (holding the first connection `delay` seconds)
 * and fills cfg with the test defaults, pointed at the proxy. Returns the proxied URL, which is
 * cfg->url: free it after the engine is closed. */
static char *config_via_proxy(db_config *cfg, test_proxy *proxy, double delay, char *app,
                              const char *what)
{
    char *url = pgtest_app_url(), pport[16];
    char *host = db_url_get(url, "host"), *port = db_url_get(url, "port");
    test_proxy_start(proxy, host, atoi(port), delay);
    snprintf(pport, sizeof pport, "%d", proxy->port);
    char *via = db_url_with(url, "port", pport);
    free(host), free(port), free(url);
    test_appname(app, 64, what);
    test_config(cfg, via, app);
    return via;
}

/* Holds `n` sessions at once so that the pool opens n connections, then gives them back. */
static void warm(db_engine *e, int n)
{
    db_session *s[8];
    db_error err;
    for (int i = 0; i < n; i++)
        cr_assert_eq(db_session_open(e, DB_READ_ONLY, &s[i], &err), 0, "%s", err.message);
    for (int i = 0; i < n; i++)
        db_session_close(s[i]);
}

Test(resilience, terminated_connections_are_replaced_without_errors)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    db_engine *e = open_engine(&cfg, url, app, "stale");
    warm(e, 3);
    if (pgtest_via_pooler())
        one_read(e); /* pgbouncer assigns server connections lazily: make sure one exists */
    terminate_all(app);
    for (int i = 0; i < 10; i++)
        one_read(e);
    /* a write after the terminate works too: the dead connection is noticed before sending */
    terminate_all(app);
    db_session *s;
    db_error err;
    cr_assert_eq(db_session_open(e, DB_READ_WRITE, &s, &err), 0, "%s", err.message);
    cr_assert_eq(db_exec(s, "create table if not exists stale_t (v int)", 0, NULL, &err), 0,
                 "%s: %s", db_errkind_name(err.kind), err.message);
    db_session_close(s);
    db_stats st;
    db_engine_stats(e, &st);
    if (!pgtest_via_pooler())
        cr_assert_geq(st.discarded, 2, "discarded %lu", (unsigned long)st.discarded);
    db_engine_close(e);
    free(url);
}

static PGresult *query_while_killed(db_engine *e, db_access access, const char *app, db_error *err)
{
    char sql[128];
    snprintf(sql, sizeof sql, "select pg_sleep(1), 'mark-%s'", app);
    pgtest_killer_arg k = {.marker = strchr(sql, 'm')};
    db_session *s;
    cr_assert_eq(db_session_open(e, access, &s, err), 0, "%s", err->message);
    pthread_t t;
    pthread_create(&t, NULL, pgtest_killer, &k);
    PGresult *r = db_query(s, sql, 0, NULL, err);
    pthread_join(t, NULL);
    cr_assert(k.killed, "the statement's backend was terminated");
    db_session_close(s);
    return r;
}

Test(resilience, read_whose_connection_dies_mid_statement_is_rerun_once)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    db_engine *e = open_engine(&cfg, url, app, "midread");
    db_error err;
    PGresult *r = query_while_killed(e, DB_READ_ONLY, app, &err);
    cr_assert_not_null(r, "%s: %s", db_errkind_name(err.kind), err.message);
    PQclear(r);
    db_stats st;
    db_engine_stats(e, &st);
    cr_assert_eq(st.connects, 2, "a fresh connection replaced the dead one");
    cr_assert_eq(st.in_use, 0);
    one_read(e);
    db_engine_close(e);
    free(url);
}

Test(resilience, write_whose_connection_dies_mid_statement_is_not_resent)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    db_engine *e = open_engine(&cfg, url, app, "midwrite");
    db_error err;
    PGresult *r = query_while_killed(e, DB_READ_WRITE, app, &err);
    cr_assert_null(r);
    cr_assert_eq(err.kind, DB_ERR_UNKNOWN_OUTCOME, "%s: %s", db_errkind_name(err.kind),
                 err.message);
    cr_assert(strstr(err.hint, "may or may not"), "%s", err.hint);
    db_stats st;
    db_engine_stats(e, &st);
    cr_assert_eq(st.connects, 1, "nothing was re-sent");
    cr_assert_eq(st.open, 0, "the broken connection was discarded");
    cr_assert_eq(st.discarded, 1);
    one_read(e);
    db_engine_close(e);
    free(url);
}

Test(resilience, cold_start_delay_is_waited_out_within_the_connect_timeout)
{
    char app[64];
    test_proxy proxy;
    db_config cfg;
    char *via = config_via_proxy(&cfg, &proxy, 2.0, app, "cold");
    cfg.connect_timeout =
        2 + pgtest_slack_ms() / 1000; /* the hold, and a connect on a busy machine */
    db_error err;
    db_engine *e = db_engine_open(&cfg, &err);
    cr_assert_not_null(e, "%s", err.message);
    double t0 = pgtest_now_ms();
    one_read(e);
    double ms = pgtest_now_ms() - t0;
    cr_assert_geq(ms, 1900, "the proxy held the first connection (%.0f ms)", ms);
    pgtest_assert_within(ms, 2000, "the first read after the 2 s hold");
    db_stats st;
    db_engine_stats(e, &st);
    cr_assert_eq(st.connect_failures, 0);
    db_engine_close(e);
    test_proxy_stop(&proxy);
    free(via);
}

Test(resilience, refused_connections_are_retried_then_fail_with_a_clear_error)
{
    char url[128], app[64];
    snprintf(url, sizeof url, "postgresql://u:p@127.0.0.1:%d/db", pgtest_free_port());
    db_config cfg;
    db_engine *e = open_engine(&cfg, url, app, "refused");
    cfg.connect_timeout = 0.6;
    db_engine_close(e);
    db_error err;
    e = db_engine_open(&cfg, &err);
    cr_assert_not_null(e, "the engine opens without a server (scale to zero)");
    db_session *s = NULL;
    double t0 = pgtest_now_ms();
    cr_assert_eq(db_session_open(e, DB_READ_ONLY, &s, &err), -1);
    double ms = pgtest_now_ms() - t0;
    cr_assert_eq(err.kind, DB_ERR_TRANSIENT, "%s", db_errkind_name(err.kind));
    cr_assert(strstr(err.message, "refused"), "%s", err.message);
    cr_assert(err.hint[0]);
    cr_assert_geq(ms, 450, "retried for the connect timeout (%.0f ms)", ms);
    pgtest_assert_within(ms, 600, "retried for the connect timeout, no longer");
    db_stats st;
    db_engine_stats(e, &st);
    cr_assert_eq(st.connect_failures, 1);
    cr_assert_eq(st.open, 0, "the slot was given back");
    db_engine_close(e);
}

Test(resilience, preping_replaces_a_connection_that_went_silent)
{
    char app[64];
    test_proxy proxy;
    db_config cfg;
    char *via = config_via_proxy(&cfg, &proxy, 0, app, "preping");
    cfg.preping_after = 0.2;
    /* the ping's bound too: long enough for a connect through pgbouncer on a busy machine */
    cfg.connect_timeout = pgtest_slack_ms() / 1000;
    db_error err;
    db_engine *e = db_engine_open(&cfg, &err);
    cr_assert_not_null(e, "%s", err.message);
    one_read(e);
    /* no goodbye, no EOF: only a round trip can tell this connection is gone */
    test_proxy_freeze(&proxy);
    usleep(300000);
    double t0 = pgtest_now_ms();
    one_read(e);
    double ms = pgtest_now_ms() - t0;
    /* the deadline under test: the ping's bound (connect_timeout), then a new connection's */
    pgtest_assert_within(ms, 2000 * cfg.connect_timeout,
                         "the ping gave up after the connect timeout");
    db_stats st;
    db_engine_stats(e, &st);
    cr_assert_eq(st.discarded, 1);
    cr_assert_eq(st.connects, 2);
    one_read(e); /* used a moment ago: no ping */
    db_engine_close(e);
    test_proxy_stop(&proxy);
    free(via);
}

Test(resilience, a_statement_on_a_silent_connection_never_hangs)
{
    char app[64];
    test_proxy proxy;
    db_config cfg;
    char *via = config_via_proxy(&cfg, &proxy, 0, app, "silent");
    cfg.statement_timeout = 0.3;
    /* also the cancel's grace; scaled to this run's speed: through pgbouncer on a loaded machine a
     * connect (SCRAM twice) once took longer than 0.5 s and failed the session before the test
     * began */
    cfg.connect_timeout = pgtest_slack_ms() / 1000;
    db_error err;
    db_engine *e = db_engine_open(&cfg, &err);
    cr_assert_not_null(e, "%s", err.message);
    db_session *s;
    cr_assert_eq(db_session_open(e, DB_READ_WRITE, &s, &err), 0, "%s", err.message);
    test_proxy_freeze(&proxy);
    double t0 = pgtest_now_ms();
    cr_assert_null(db_query(s, "select 1", 0, NULL, &err));
    double ms = pgtest_now_ms() - t0;
    cr_assert_eq(err.kind, DB_ERR_STATEMENT_TIMEOUT, "%s: %s", db_errkind_name(err.kind),
                 err.message);
    pgtest_assert_within(ms, 300 + 1000 * cfg.connect_timeout,
                         "bounded by the statement timeout plus the cancel grace");
    db_session_close(s);
    db_stats st;
    db_engine_stats(e, &st);
    cr_assert_eq(st.open, 0, "the silent connection was discarded");
    one_read(e);
    db_engine_close(e);
    test_proxy_stop(&proxy);
    free(via);
}
