/* db/pipe deadlines: a pipelined statement queued behind a slow one answers within what the
 * settings promise (DB_ACQUIRE_TIMEOUT for its wait for a place in a batch, DB_STATEMENT_TIMEOUT
 * for its execution), and one not sent by then is never sent. A real lock (LOCK TABLE held by
 * another connection) makes every statement on the table wait; the sessions run as coroutines on a
 * libevent loop in the test thread, as in the API; direct and through pgbouncer (_pooler).
 *
 * Nothing is asserted inside a coroutine (see test_pipe.c): each records its outcome in a job. */
#include <event2/event.h>
#include <event2/thread.h>

#include "core/coro.h"
#include "engine_support.h"
#include "coro_loop.h"

typedef struct job {
    db_engine *e;
    const char *sql;
    double ms;
    db_access access;
    int rc; /* 0: the statement succeeded; -1: err says why */
    db_error err;
    char param[32];
    char value[32]; /* its result's last column in the first row, if any */
    bool finished;
} job;

static void job_run(void *arg)
{
    job *j = arg;
    double t0 = pgtest_now_ms();
    j->rc = -1;
    db_session *s;
    if (db_session_open(j->e, j->access, &s, &j->err) == 0) {
        const char *p[1] = {j->param};
        PGresult *r = db_query(s, j->sql, j->param[0] ? 1 : 0, j->param[0] ? p : NULL, &j->err);
        if (r)
            j->rc = 0;
        if (r && PQntuples(r) > 0)
            snprintf(j->value, sizeof j->value, "%s", PQgetvalue(r, 0, PQnfields(r) - 1));
        PQclear(r);
        db_session_close(s);
    }
    j->ms = pgtest_now_ms() - t0;
}

static void job_done(void *arg)
{
    job *j = arg;
    j->finished = true;
    L->pending--;
}

static void spawn_all(void *jobs, int n)
{
    for (int i = 0; i < n; i++) {
        L->pending++;
        cr_assert_eq(coro_spawn(job_run, job_done, (job *)jobs + i), 0, "coroutine %d", i);
    }
}

/* An admin connection holding `lock table <table>` (ACCESS EXCLUSIVE) in an open transaction:
 * every statement on the table waits for it. */
static PGconn *hold_lock(const char *table)
{
    PGconn *admin = pgtest_connect();
    char sql[256];
    snprintf(sql, sizeof sql,
             "drop table if exists %s; create table %s (i int); insert into %s "
             "values (1)",
             table, table, table);
    free(pgtest_query(admin, sql));
    snprintf(sql, sizeof sql, "begin; lock table %s", table);
    free(pgtest_query(admin, sql));
    return admin;
}

/* The count that `sql` returns, its $1 the engine's application_name. */
static int app_count(PGconn *c, const char *sql, const char *appname)
{
    const char *p[1] = {appname};
    PGresult *r = PQexecParams(c, sql, 1, NULL, p, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
    int n = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}

/* The engine's backends still waiting on a lock: statements it left queued on the server. */
static int waiting_on_lock(PGconn *admin, const char *appname)
{
    return app_count(admin,
                     "select count(*) from pg_stat_activity where application_name = $1 and "
                     "wait_event_type = 'Lock'",
                     appname);
}

/* The deadline under test: DB_ACQUIRE_TIMEOUT + DB_STATEMENT_TIMEOUT + 0.5 s (the issue's
 * margin: a cancel's round trip and the loop's scheduling on a busy machine). */
static double bound_ms(const db_config *cfg)
{
    return (cfg->acquire_timeout + cfg->statement_timeout + 0.5) * 1000;
}

static void assert_answered_in_time(const job *jobs, int n, const db_config *cfg)
{
    for (int i = 0; i < n; i++) {
        const job *j = &jobs[i];
        cr_assert(j->finished, "job %d never finished", i);
        cr_assert_eq(j->rc, -1, "job %d ran although the table stayed locked", i);
        /* both are 503 + Retry-After in the API; never UNKNOWN_OUTCOME: nothing ran */
        cr_assert(j->err.kind == DB_ERR_POOL_TIMEOUT || j->err.kind == DB_ERR_STATEMENT_TIMEOUT,
                  "job %d: %s: %s", i, db_errkind_name(j->err.kind), j->err.message);
        cr_assert_lt(j->ms, bound_ms(cfg), "job %d answered after %.0f ms (deadline %.0f ms)", i,
                     j->ms, bound_ms(cfg));
    }
}

enum { WAVE = 10, WAVES = 4 };

/* WAVES waves of WAVE statements, the later ones while the earlier are blocked (after the first
 * lane's batch ran into the lock, after the second's, and after the first was cancelled). */
static void run_waves(db_engine *e, job *jobs, db_access access, const char *sql, bool param)
{
    static const double at[WAVES] = {0, 0.25, 0.5, 1.2};
    static later_jobs later[WAVES];
    for (int i = 0; i < WAVE * WAVES; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].e = e;
        jobs[i].access = access;
        jobs[i].sql = sql;
        jobs[i].rc = -9;
        if (param)
            snprintf(jobs[i].param, sizeof jobs[i].param, "%d", 100 + i);
    }
    spawn_all(jobs, WAVE);
    for (int w = 1; w < WAVES; w++) {
        later[w] = (later_jobs){jobs + w * WAVE, WAVE};
        spawn_after(&later[w], at[w]);
    }
    run_settled(30);
}

static void config(db_config *cfg, char *url, char *app, const char *what, double slow_after)
{
    test_appname(app, 64, what);
    test_config(cfg, url, app);
    cfg->pipeline = true;
    cfg->pipeline_writes = true;
    cfg->pipeline_conns = 2;
    cfg->pipeline_write_conns = 2;
    cfg->pool_max = 4;
    cfg->acquire_timeout = 1.0;
    cfg->statement_timeout = 1.5;
    cfg->pipeline_slow_after = slow_after;
}

static void reads_behind_a_lock(double slow_after)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    config(&cfg, url, app, "dlread", slow_after);
    PGconn *admin = hold_lock("dl_read");
    db_engine *e = open_engine(&cfg);
    static job jobs[WAVE * WAVES];
    run_waves(e, jobs, DB_READ_ONLY, "select count(*) from dl_read", false);
    assert_answered_in_time(jobs, WAVE * WAVES, &cfg);
    cr_assert_eq(waiting_on_lock(admin, app), 0, "no statement was left queued on the server");
    free(pgtest_query(admin, "rollback"));
    /* the cancels left the lanes usable */
    job after;
    memset(&after, 0, sizeof after);
    after = (job){.e = e, .access = DB_READ_ONLY, .sql = "select count(*) from dl_read"};
    spawn_all(&after, 1);
    run_settled(10);
    cr_assert_eq(after.rc, 0, "%s", after.err.message);
    free(pgtest_query(admin, "drop table dl_read"));
    PQfinish(admin);
    finish(e);
    free(url);
}

TestSuite(deadline, .timeout = 120);

/* Before: 40 GETs behind a lock held longer than every timeout answered after up to 3x the
 * statement timeout (each batch queued behind the one before got a timeout of its own). */
Test(deadline, reads_queued_behind_a_lock_answer_within_acquire_plus_statement_timeout)
{
    reads_behind_a_lock(0); /* the lanes as configured, no slow-lane isolation */
}

Test(deadline, reads_behind_a_lock_answer_in_time_with_slow_lanes_isolated)
{
    reads_behind_a_lock(0.05); /* the lanes busy past 50 ms are set aside, up to DB_POOL_MAX */
}

/* Writes: the same bound, and none is sent after its deadline: once the lock is gone (and nothing
 * of the engine's is left in flight), not one row appeared. */
Test(deadline, writes_behind_a_lock_answer_in_time_and_are_never_sent_late)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    config(&cfg, url, app, "dlwrite", 0.05);
    PGconn *admin = hold_lock("dl_write");
    free(pgtest_query(admin, "savepoint s; delete from dl_write; release s"));
    db_engine *e = open_engine(&cfg);
    static job jobs[WAVE * WAVES];
    run_waves(e, jobs, DB_READ_WRITE, "insert into dl_write values ($1::int)", true);
    assert_answered_in_time(jobs, WAVE * WAVES, &cfg);
    cr_assert_eq(waiting_on_lock(admin, app), 0, "no statement was left queued on the server");
    cr_assert_eq(in_use(e), 0, "nothing in flight");
    free(pgtest_query(admin, "commit"));
    char *n = pgtest_query(admin, "select count(*) from dl_write");
    cr_assert_str_eq(n, "0", "inserts that timed out were not sent (or were rolled back)");
    free(n);
    free(pgtest_query(admin, "drop table dl_write"));
    PQfinish(admin);
    finish(e);
    free(url);
}

/* A read observed slow once (its statement's text) is sent alone from then on: the fast reads that
 * arrive with it in one loop iteration are answered long before it. The first time, they shared
 * its batch, behind it: once the lane was slow they were re-sent on another lane (rescue), and
 * their first copies' results, behind the slow one, were dropped. */
static double ended_ms[8];

static void job_done_at(void *arg)
{
    job *j = arg;
    ended_ms[j->param[0] ? atoi(j->param) : 0] = pgtest_now_ms();
    job_done(arg);
}

enum { Q = 5 };

/* The slow read (pg_sleep of `seconds`) and Q fast ones spawned in one loop iteration, the slow
 * one first. */
static void slow_then_fast(db_engine *e, job *jobs, double seconds)
{
    static char slow_sql[96];
    snprintf(slow_sql, sizeof slow_sql, "select pg_sleep(%.3f) from (select $1::int) p", seconds);
    jobs[0] = (job){.e = e, .access = DB_READ_ONLY, .sql = slow_sql, .param = "0"};
    for (int i = 1; i <= Q; i++) {
        jobs[i] = (job){.e = e, .access = DB_READ_ONLY, .sql = "select $1::int"};
        snprintf(jobs[i].param, sizeof jobs[i].param, "%d", i);
    }
    for (int i = 0; i <= Q; i++) {
        L->pending++;
        cr_assert_eq(coro_spawn(job_run, job_done_at, &jobs[i]), 0);
    }
    run_settled(20);
    for (int i = 0; i <= Q; i++)
        cr_assert_eq(jobs[i].rc, 0, "job %d: %s", i, jobs[i].err.message);
}

Test(deadline, fast_reads_never_wait_for_a_slow_one)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    /* scaled by the run's slack: the slow read must outlast a fresh connection's connect and
     * round trip by 400 ms, and a fast read must not pass for slow on a loaded machine */
    double slack = pgtest_slack_ms() / 1000.0;
    config(&cfg, url, app, "dlsolo", slack / 2);
    cfg.statement_timeout = 10 + 2 * slack;
    cfg.acquire_timeout = 1 + slack;
    db_engine *e = open_engine(&cfg);
    job jobs[1 + Q];
    for (int run = 0; run < 2; run++) { /* batched with it, then sent alone */
        slow_then_fast(e, jobs, 0.4 + slack);
        for (int i = 1; i <= Q; i++)
            cr_assert_lt(ended_ms[i], ended_ms[0] - 400,
                         "run %d: fast read %d ended %.0f ms before the slow one (behind it?)", run,
                         i, ended_ms[0] - ended_ms[i]);
    }
    /* and the fast statement was not blamed for the batch it shared: it still shares batches
     * (one connection for all Q), where a statement marked slow would take a lane each */
    db_stats before = stats(e);
    for (int i = 1; i <= Q; i++) {
        jobs[i] = (job){.e = e, .access = DB_READ_ONLY, .sql = "select $1::int"};
        snprintf(jobs[i].param, sizeof jobs[i].param, "%d", i);
    }
    spawn_all(jobs + 1, Q);
    run_settled(20);
    db_stats after = stats(e);
    cr_assert_eq(after.connects, before.connects, "fast reads opened %lu connections",
                 (unsigned long)(after.connects - before.connects));
    finish(e);
    free(url);
}

/* Reads sent behind one that blocks (here at a gate: an advisory lock the test holds) are re-sent
 * on another lane once the lane is slow, and answered while it still blocks: the gate opens only
 * when all of them finished (by its fallback, and the test fails, were they still behind it). Their
 * first copies' results, behind the blocked one, are dropped (no leak: the suite runs under ASan).
 * When `kill`, the blocked read's connection is terminated once they finished, with those copies
 * still in flight on it: the blocked read is re-sent on a fresh connection (a read is, after a
 * loss), the copies are not, and it is answered once the gate opens. */
static gate rescue_gate;
static int rescue_left;
static const char *rescue_app;

static void fast_done(void *arg)
{
    job_done(arg);
    if (--rescue_left > 0)
        return;
    if (!rescue_app) {
        gate_open(&rescue_gate);
        return;
    }
    PGconn *admin = pgtest_connect();
    cr_assert_eq(app_count(admin,
                           "select count(pg_terminate_backend(pid)) from pg_stat_activity where "
                           "application_name = $1 and wait_event_type = 'Lock'",
                           rescue_app),
                 1, "the blocked read's backend was terminated");
    PQfinish(admin);
    when_locked(1, NULL, &rescue_gate); /* the gate opens once the re-sent read waits at it */
}

static void reads_behind_a_blocked_one(bool kill)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    config(&cfg, url, app, kill ? "dlrekill" : "dlrescue", 0.05);
    double slack = pgtest_slack_ms() / 1000.0;
    cfg.statement_timeout = 20 + 2 * slack; /* longer than the gate's fallback */
    cfg.acquire_timeout = 5 + slack;
    db_engine *e = open_engine(&cfg);
    gate_shut(&rescue_gate, 0, 0, 10 + slack);
    rescue_left = Q;
    rescue_app = kill ? app : NULL;
    job jobs[1 + Q];
    jobs[0] = (job){.e = e, .access = DB_READ_ONLY, .sql = rescue_gate.sql};
    for (int i = 1; i <= Q; i++) {
        jobs[i] = (job){.e = e, .access = DB_READ_ONLY, .sql = "select $1::int"};
        snprintf(jobs[i].param, sizeof jobs[i].param, "%d", i);
    }
    for (int i = 0; i <= Q; i++) { /* one loop iteration: one batch, the blocked read first */
        L->pending++;
        cr_assert_eq(coro_spawn(job_run, i ? fast_done : job_done, &jobs[i]), 0);
    }
    run_settled(30 + 2 * slack);
    assert_gate_opened_by_jobs(&rescue_gate, "reads behind a blocked one");
    for (int i = 0; i <= Q; i++) {
        cr_assert(jobs[i].finished, "job %d never finished", i);
        cr_assert_eq(jobs[i].rc, 0, "job %d: %s", i, jobs[i].err.message);
    }
    finish(e);
    free(url);
}

Test(deadline, reads_behind_a_blocked_one_are_answered_on_another_lane)
{
    reads_behind_a_blocked_one(false);
}

Test(deadline, a_lost_connection_with_dropped_copies_in_flight_re_sends_only_the_read)
{
    reads_behind_a_blocked_one(true);
}

/* A rescued read whose new connection is lost waits for its first copy, behind the blocked read
 * on the first lane, and gets that copy's outcome: it is not sent a third time (a fresh connection
 * may meet the same fault, as through a pooler failing its server logins). The reads run at a
 * second gate that returns the backend's pid: every one must come from the first lane's backend,
 * the blocked read's. */
static gate first_gate, second_gate;

static void second_lane_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    const char *app = arg;
    PGconn *admin = pgtest_connect();
    int waiting = app_count(admin,
                            "select count(*) from pg_stat_activity where application_name = $1 "
                            "and wait_event_type = 'Lock'",
                            app);
    if (waiting < 2) { /* the blocked read, and the first moved read at the second gate */
        PQfinish(admin);
        struct timeval tv = {0, 10000};
        event_base_once(L->base, -1, EV_TIMEOUT, second_lane_cb, arg, &tv);
        return;
    }
    const char *p[2] = {app, second_gate.sql};
    PGresult *r = PQexecParams(admin,
                               "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                               "where application_name = $1 and query = $2",
                               2, NULL, p, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(admin));
    cr_assert_str_eq(PQgetvalue(r, 0, 0), "1", "the second lane's backend was terminated");
    PQclear(r);
    PQfinish(admin);
    gate_open(&first_gate);
    when_locked(1, NULL, &second_gate); /* the first copies now wait at the second gate */
}

Test(deadline, a_moved_read_that_loses_its_connection_waits_for_its_first_copy)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    config(&cfg, url, app, "dlpark", 0.05);
    double slack = pgtest_slack_ms() / 1000.0;
    cfg.statement_timeout = 20 + 2 * slack;
    cfg.acquire_timeout = 5 + slack;
    db_engine *e = open_engine(&cfg);
    gate_shut(&first_gate, 0, 0, 10 + slack);
    gate_shut(&second_gate, 1, 0, 10 + slack);
    job jobs[1 + Q];
    jobs[0] = (job){.e = e, .access = DB_READ_ONLY, .sql = first_gate.sql};
    for (int i = 1; i <= Q; i++)
        jobs[i] = (job){.e = e, .access = DB_READ_ONLY, .sql = second_gate.sql};
    spawn_all(jobs, 1 + Q); /* one loop iteration: one batch, the blocked read first */
    struct timeval tv = {0, 10000};
    cr_assert_eq(event_base_once(L->base, -1, EV_TIMEOUT, second_lane_cb, app, &tv), 0);
    run_settled(30 + 2 * slack);
    assert_gate_opened_by_jobs(&first_gate, "the moved reads' lane");
    for (int i = 0; i <= Q; i++) {
        cr_assert(jobs[i].finished, "job %d never finished", i);
        cr_assert_eq(jobs[i].rc, 0, "job %d: %s", i, jobs[i].err.message);
    }
    for (int i = 1; i <= Q; i++)
        cr_assert_str_eq(jobs[i].value, jobs[0].value,
                         "read %d was answered by backend %s, not by its first copy's (%s)", i,
                         jobs[i].value, jobs[0].value);
    finish(e);
    free(url);
}
