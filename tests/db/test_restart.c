/* db/engine across a server restart, on a private cluster (never the shared one): while the
 * server is down sessions fail fast with a transient error; once it is back they work again,
 * without restarting the process. */
#include <pthread.h>

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
    cfg.connect_timeout =
        1 + pgtest_slack_ms() / 1000; /* the recovery connects on a loaded machine */
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
    pgtest_assert_within(ms, 4 * 1000 * cfg.connect_timeout, "failed, not a hang");

    pgtest_cluster_restart(&cluster);
    for (int i = 0; i < 5; i++)
        one_read(e);
    db_stats st;
    db_engine_stats(e, &st);
    cr_assert_eq(st.in_use, 0);
    cr_assert_eq(st.open, 1);
    db_engine_close(e);
}

typedef struct {
    db_engine *e;
    double ms;
    db_error err;
    int rc;
} attempt;

static void *try_open(void *arg)
{
    attempt *a = arg;
    double t0 = pgtest_now_ms();
    db_session *s = NULL;
    a->rc = db_session_open(a->e, DB_READ_WRITE, &s, &a->err);
    a->ms = pgtest_now_ms() - t0;
    db_session_close(s);
    return NULL;
}

/* During an outage one borrower probes the server; the others fail at once instead of each
 * spending its whole connect budget, and the first success ends the outage for everyone. */
Test(restart, outage_fails_fast_with_one_probe_and_recovers, .fini = destroy, .timeout = 120)
{
    pgtest_cluster_start(&cluster);
    char app[64];
    test_appname(app, sizeof app, "outage");
    db_config cfg;
    test_config(&cfg, cluster.url, app);
    cfg.pool_max = 8;
    /* the probe's budget: the borrowers started meanwhile must find it still probing, on a busy
     * machine too */
    cfg.connect_timeout = pgtest_slack_ms() / 1000;
    cfg.acquire_timeout = 2;
    db_error err;
    db_engine *e = db_engine_open(&cfg, &err);
    cr_assert_not_null(e, "%s", err.message);
    one_read(e);
    pgtest_cluster_stop(&cluster);

    /* the first failure after the server went away marks the outage */
    attempt first = {.e = e};
    try_open(&first);
    cr_assert_eq(first.rc, -1);
    cr_assert_eq(first.err.kind, DB_ERR_TRANSIENT, "%s", first.err.message);

    enum { N = 8 };
    attempt a[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        a[i] = (attempt){.e = e};
        pthread_create(&t[i], NULL, try_open, &a[i]);
    }
    int fast = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(a[i].rc, -1);
        cr_assert_eq(a[i].err.kind, DB_ERR_TRANSIENT, "%s: %s", db_errkind_name(a[i].err.kind),
                     a[i].err.message);
        /* failed at once, told another request is probing (not after a connect budget of its own)
         */
        fast += strstr(a[i].err.hint, "another request is checking") != NULL;
    }
    cr_assert_geq(fast, N - 1, "only %d of %d borrowers failed at once during the outage", fast, N);
    db_stats st;
    db_engine_stats(e, &st);
    cr_assert_geq(st.outage_fast_failures, (uint64_t)(N - 1));
    cr_assert_eq(st.in_use, 0);

    pgtest_cluster_restart(&cluster);
    /* the next borrower probes, finds the server back, and everyone works again */
    double t0 = pgtest_now_ms();
    for (int i = 0; i < 5; i++)
        one_read(e);
    pgtest_assert_within(pgtest_now_ms() - t0, 0, "recovered at the first probe");
    db_engine_close(e);
}
