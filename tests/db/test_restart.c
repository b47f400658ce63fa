/* db/engine across a server restart, on a private cluster (never the shared one): while the
 * server is down sessions fail fast with a transient error; once it is back they work again,
 * without restarting the process. */
#include "engine_support.h"

static pgtest_cluster cluster;

static void destroy(void)
{
    pgtest_cluster_destroy(&cluster);
}

Test(restart, sessions_fail_fast_while_down_and_recover_after, .fini = destroy, .timeout = 120)
{
    pgtest_cluster_start(&cluster);
    char app[64];
    test_appname(app, sizeof app, "restart");
    db_config cfg;
    test_config(&cfg, cluster.url, app);
    cfg.connect_timeout = 1;
    db_error err;
    db_engine *e = db_engine_open(&cfg, &err);
    cr_assert_not_null(e, "%s", err.message);
    one_read(e);

    db_session *held;
    cr_assert_eq(db_session_open(e, DB_READ_ONLY, &held, &err), 0, "%s", err.message);
    pgtest_cluster_stop(&cluster);

    double t0 = pgtest_now_ms();
    cr_assert_null(db_query(held, "select 1", 0, NULL, &err));
    cr_assert_eq(err.kind, DB_ERR_TRANSIENT, "%s: %s", db_errkind_name(err.kind), err.message);
    db_session_close(held);
    db_session *s = NULL;
    cr_assert_eq(db_session_open(e, DB_READ_ONLY, &s, &err), -1);
    cr_assert_eq(err.kind, DB_ERR_TRANSIENT, "%s: %s", db_errkind_name(err.kind), err.message);
    double ms = pgtest_now_ms() - t0;
    cr_assert_lt(ms, 4 * 1000 * cfg.connect_timeout, "failed in %.0f ms, not a hang", ms);

    pgtest_cluster_restart(&cluster);
    for (int i = 0; i < 5; i++)
        one_read(e);
    db_stats st;
    db_engine_stats(e, &st);
    cr_assert_eq(st.in_use, 0);
    cr_assert_eq(st.open, 1);
    db_engine_close(e);
}
