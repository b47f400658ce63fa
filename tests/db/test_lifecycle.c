/* db/engine connection lifecycle: idle timeout, max lifetime, min idle, per-request mode and
 * read-replica routing. Runs direct and through pgbouncer (the _pooler run). */
#include "db/url.h"
#include "engine_support.h"

static void hold(db_engine *e, int n)
{
    db_session *s[8];
    db_error err;
    for (int i = 0; i < n; i++)
        cr_assert_eq(db_session_open(e, DB_READ_ONLY, &s[i], &err), 0, "%s", err.message);
    for (int i = 0; i < n; i++)
        db_session_close(s[i]);
}

/* Polls the engine until `open` reaches want (or 15 s pass: a wait, not a measure); returns the
 * last value. */
static int wait_open(db_engine *e, int want)
{
    db_stats st;
    for (int i = 0; i < 1500; i++) {
        db_engine_stats(e, &st);
        if (st.open == want)
            break;
        usleep(10000);
    }
    return st.open;
}

/* Polls until the server has at most `want` connections of `app` (or 15 s pass); returns the last
 * count. */
static int wait_server_conns(const char *app, int want)
{
    int n = -1;
    for (int i = 0; i < 1500 && (n = count_conns(app)) > want; i++)
        usleep(10000);
    return n;
}

Test(lifecycle, idle_connections_are_closed_after_the_idle_timeout)
{
    char *url = pgtest_app_url(), app[64];
    test_appname(app, sizeof app, "idle");
    db_config cfg;
    test_config(&cfg, url, app);
    cfg.idle_timeout = 0.3;
    db_error err;
    db_engine *e = db_engine_open(&cfg, &err);
    hold(e, 3);
    db_stats st;
    db_engine_stats(e, &st);
    cr_assert_eq(st.open, 3);
    cr_assert_eq(wait_open(e, 0), 0, "idle connections closed by the reaper");
    if (!pgtest_via_pooler())
        cr_assert_eq(wait_server_conns(app, 0), 0);
    one_read(e);
    db_engine_close(e);
    free(url);
}

Test(lifecycle, min_idle_connections_are_kept_and_filled_in_the_background)
{
    char *url = pgtest_app_url(), app[64];
    test_appname(app, sizeof app, "minidle");
    db_config cfg;
    test_config(&cfg, url, app);
    cfg.idle_timeout = 0.2;
    cfg.pool_min_idle = 2;
    db_error err;
    db_engine *e = db_engine_open(&cfg, &err);
    cr_assert_eq(wait_open(e, 2), 2, "filled to min idle without any session");
    hold(e, 4);
    usleep(800000);
    cr_assert_eq(wait_open(e, 2), 2, "idle timeout stops at min idle");
    db_engine_close(e);
    free(url);
}

Test(lifecycle, connections_are_recycled_at_their_max_lifetime)
{
    char *url = pgtest_app_url(), app[64];
    test_appname(app, sizeof app, "life");
    db_config cfg;
    test_config(&cfg, url, app);
    cfg.max_lifetime = 0.25;
    db_error err;
    db_engine *e = db_engine_open(&cfg, &err);
    db_stats st;
    double t0 = pgtest_now_ms();
    do { /* with the default lifetime nothing would ever be recycled here */
        one_read(e);
        usleep(20000);
        db_engine_stats(e, &st);
    } while (st.connects < 3 && pgtest_now_ms() - t0 < 15000);
    cr_assert_geq(st.connects, 3, "recycled: %lu connects", (unsigned long)st.connects);
    cr_assert_leq(st.open, 1);
    cr_assert_eq(st.discarded, 0, "recycling is not counted as broken");
    if (!pgtest_via_pooler())
        cr_assert_leq(wait_server_conns(app, 1), 1);
    db_engine_close(e);
    free(url);
}

Test(lifecycle, per_request_mode_keeps_no_connection)
{
    char *url = pgtest_app_url(), app[64];
    test_appname(app, sizeof app, "perreq");
    db_config cfg;
    test_config(&cfg, url, app);
    cfg.mode = DB_POOL_MODE_PER_REQUEST;
    db_error err;
    db_engine *e = db_engine_open(&cfg, &err);
    db_session *s;
    cr_assert_eq(db_session_open(e, DB_READ_WRITE, &s, &err), 0, "%s", err.message);
    if (!pgtest_via_pooler())
        cr_assert_eq(count_conns(app), 1);
    db_session_close(s);
    db_stats st;
    db_engine_stats(e, &st);
    cr_assert_eq(st.open, 0);
    if (!pgtest_via_pooler())
        cr_assert_eq(wait_server_conns(app, 0), 0, "closed when the session ended");
    for (int i = 0; i < 3; i++)
        one_read(e);
    db_engine_stats(e, &st);
    cr_assert_eq(st.connects, 4);
    cr_assert_eq(st.open, 0);
    cr_assert_eq(st.idle, 0);
    db_engine_close(e);
    free(url);
}

static char replica_db[128];

static void drop_replica(void)
{
    if (!replica_db[0])
        return;
    pgtest_drop_database(replica_db);
}

static char *current_db(db_engine *e, db_access access)
{
    db_session *s;
    db_error err;
    cr_assert_eq(db_session_open(e, access, &s, &err), 0, "%s", err.message);
    PGresult *r = db_query(s, "select current_database()", 0, NULL, &err);
    cr_assert_not_null(r, "%s", err.message);
    char *name = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    db_session_close(s);
    return name;
}

Test(lifecycle, read_only_sessions_go_to_the_replica_url, .fini = drop_replica)
{
    /* the "replica" is a second database: enough to tell where each session went */
    snprintf(replica_db, sizeof replica_db, "%s_ro", getenv("TEST_DB_NAME"));
    PGconn *c = pgtest_connect();
    char *id = PQescapeIdentifier(c, replica_db, strlen(replica_db));
    char sql[256];
    snprintf(sql, sizeof sql, "create database %s", id);
    PQfreemem(id);
    free(pgtest_query(c, sql));
    PQfinish(c);

    char *url = pgtest_app_url(), app[64];
    char *ro = db_url_with(url, "dbname", replica_db);
    test_appname(app, sizeof app, "replica");
    db_config cfg;
    test_config(&cfg, url, app);
    cfg.url_ro = ro;
    db_error err;
    db_engine *e = db_engine_open(&cfg, &err);
    cr_assert_not_null(e, "%s", err.message);
    char *a = current_db(e, DB_READ_ONLY), *b = current_db(e, DB_READ_WRITE);
    cr_assert_str_eq(a, replica_db);
    cr_assert_str_eq(b, getenv("TEST_DB_NAME"));
    db_stats st;
    db_engine_stats(e, &st);
    cr_assert_eq(st.open, 2, "one pool per URL");
    free(a), free(b);
    db_engine_close(e);
    free(ro), free(url);
}
