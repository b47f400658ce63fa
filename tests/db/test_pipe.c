/* db/pipe: read-only sessions in coroutines of one event loop, pipelined on one pooled connection
 * (db/pipe.h). Each test runs its sessions as coroutines on a libevent loop in the test thread,
 * the way the API's loops do, against the real server; runs direct and through pgbouncer in
 * transaction mode (the _pooler run).
 *
 * Nothing is asserted inside a coroutine (a Criterion failure unwinds with longjmp, which must not
 * cross coroutine stacks): each coroutine records its outcome in a `job`, and the test thread
 * asserts once the loop has settled. */
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>

#include "core/coro.h"
#include "db/url.h"
#include "engine_support.h"
#include "coro_loop.h"
#include "proxy.h"
#include "tests/support/fproxy.h"

/* ---- a loop and its coroutines ---- */

typedef struct job job;
struct job {
    db_engine *e;
    const char *sql;
    void (*on_done)(job *); /* on the loop's stack, after the job finished */
    gate *opens;            /* a gate this job's completion counts down */
    const char *params[2];
    int nparams;
    /* outcome */
    int in_use_after_open; /* pool connections borrowed right after db_session_open */
    int rc;                /* 0: the statement returned rows; -1: err says why */
    int seq;               /* finished as the seq-th job of the loop (ordering, coro_loop.h) */
    double ms;
    double done_ms; /* pgtest_now_ms() when it finished */
    db_error err;
    char pbuf[2][32];
    char v0[64], v1[64]; /* row 0, columns 0 and 1 */
    bool finished, in_coro;
};

static void job_read(job *j, db_engine *e, const char *sql, int nparams, const char *p0,
                     const char *p1)
{
    memset(j, 0, sizeof *j);
    j->e = e;
    j->sql = sql;
    j->nparams = nparams;
    if (p0) {
        snprintf(j->pbuf[0], sizeof j->pbuf[0], "%s", p0);
        j->params[0] = j->pbuf[0];
    }
    if (p1) {
        snprintf(j->pbuf[1], sizeof j->pbuf[1], "%s", p1);
        j->params[1] = j->pbuf[1];
    }
    j->rc = -9; /* never ran */
}

/* `select $1::int * 2, pg_backend_pid()` with $1 = i. */
static const char *const DOUBLE_SQL = "select $1::int * 2, pg_backend_pid()";

static void job_double(job *j, db_engine *e, int i)
{
    char p[16];
    snprintf(p, sizeof p, "%d", i);
    job_read(j, e, DOUBLE_SQL, 1, p, NULL);
}

static void keep_result(job *j, PGresult *r)
{
    if (PQntuples(r) > 0) {
        snprintf(j->v0, sizeof j->v0, "%s", PQgetvalue(r, 0, 0));
        if (PQnfields(r) > 1)
            snprintf(j->v1, sizeof j->v1, "%s", PQgetvalue(r, 0, 1));
    }
}

/* In the coroutine: one read-only session, one statement. */
static void job_run(void *arg)
{
    job *j = arg;
    double t0 = pgtest_now_ms();
    j->in_coro = coro_active();
    j->rc = -1;
    db_session *s;
    if (db_session_open(j->e, DB_READ_ONLY, &s, &j->err) == 0) {
        j->in_use_after_open = in_use(j->e);
        PGresult *r = db_query(s, j->sql, j->nparams, j->params, &j->err);
        if (r) {
            j->rc = 0;
            keep_result(j, r);
            PQclear(r);
        }
        db_session_close(s);
    }
    j->ms = pgtest_now_ms() - t0;
}

/* On the loop's stack. */
static void job_done(void *arg)
{
    job *j = arg;
    j->finished = true;
    j->seq = ++L->finished;
    j->done_ms = pgtest_now_ms();
    L->pending--;
    gate_count_down(j->opens);
    if (j->on_done)
        j->on_done(j);
}

/* Starts j in a coroutine now (from the loop's stack). Returns 0 or -1. */
static int spawn(job *j)
{
    L->pending++;
    if (coro_spawn(job_run, job_done, j) < 0) {
        L->pending--;
        return -1;
    }
    return 0;
}

static void setup(db_config *cfg, char *url, char *app, const char *what)
{
    test_appname(app, 64, what);
    test_config(cfg, url, app);
    cfg->pipeline = true;
    /* no test here is about the acquire timeout (the one that is sets its own): a first connect
     * through pgbouncer beside a busy CI run took over test_config's 2 s once */
    cfg->acquire_timeout = 10;
}

static void spawn_all(void *jobs, int n)
{
    for (int i = 0; i < n; i++)
        cr_assert_eq(spawn((job *)jobs + i), 0, "coroutine %d", i);
}

/* Asserts job i of `select $1::int * 2, ...` answered 2*k. */
static void assert_doubled(const job *j, int i, int k)
{
    cr_assert(j->finished, "job %d never finished", i);
    cr_assert_eq(j->rc, 0, "job %d: %s: %s [%s]", i, db_errkind_name(j->err.kind), j->err.message,
                 j->err.sqlstate);
    char want[16];
    snprintf(want, sizeof want, "%d", 2 * k);
    cr_assert_str_eq(j->v0, want, "job %d got another statement's answer", i);
}

/* Terminates every server connection named `appname` (direct connection), waits until they are
 * gone, and returns how many there were. */
static int terminate_all(const char *appname)
{
    PGconn *c = pgtest_connect();
    const char *p[1] = {appname};
    PGresult *r = PQexecParams(c,
                               "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                               "where application_name = $1 and pid <> pg_backend_pid()",
                               1, NULL, p, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
    int n = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    for (int i = 0; i < 300 && count_conns(appname) > 0; i++)
        usleep(10000);
    cr_assert_eq(count_conns(appname), 0, "the terminated backends went away");
    return n;
}

TestSuite(pipe, .timeout = 90);

/* ---- 1. many concurrent reads, one connection ---- */

Test(pipe, many_concurrent_reads_get_their_own_answers_on_one_connection)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "many");
    cfg.pool_max = 4;
    db_engine *e = open_engine(&cfg);
    enum { N = 200 };
    static job jobs[N];
    for (int i = 0; i < N; i++)
        job_double(&jobs[i], e, i);
    spawn_all(jobs, N);
    run_settled(20);
    for (int i = 0; i < N; i++) {
        assert_doubled(&jobs[i], i, i);
        cr_assert(jobs[i].in_coro);
        cr_assert_eq(jobs[i].in_use_after_open, 0,
                     "job %d: a pipelined session borrows nothing when it opens", i);
        /* all were queued before the loop ran: one batch, one implicit transaction, so one server
         * backend answered every statement, even through pgbouncer */
        cr_assert_str_eq(jobs[i].v1, jobs[0].v1, "job %d ran on backend %s, job 0 on %s", i,
                         jobs[i].v1, jobs[0].v1);
    }
    db_stats st = stats(e);
    cr_assert_eq(st.acquires, 1, "%d sessions borrowed %lu times: not pipelined", N,
                 (unsigned long)st.acquires);
    cr_assert_eq(st.connects, 1, "connects %lu", (unsigned long)st.connects);
    cr_assert_eq(st.in_use, 0, "the pipeline gave its connection back");
    cr_assert_eq(st.idle, 1);
    cr_assert_eq(st.discarded, 0);
    if (!pgtest_via_pooler())
        cr_assert_eq(count_conns(app), 1);
    finish(e);
    free(url);
}

/* Coroutines that each run several sessions one after the other: the batches form by themselves
 * while earlier ones are in flight, and still share one connection. */
typedef struct {
    db_engine *e;
    int id, rounds, ok, wrong;
    db_error err;
} looper;

static void looper_run(void *arg)
{
    looper *a = arg;
    for (int i = 0; i < a->rounds; i++) {
        db_session *s;
        if (db_session_open(a->e, DB_READ_ONLY, &s, &a->err) < 0)
            continue;
        char p[16], want[16];
        snprintf(p, sizeof p, "%d", a->id * 1000 + i);
        snprintf(want, sizeof want, "%d", 2 * (a->id * 1000 + i));
        const char *params[1] = {p};
        PGresult *r = db_query(s, DOUBLE_SQL, 1, params, &a->err);
        if (r && !strcmp(PQgetvalue(r, 0, 0), want))
            a->ok++;
        else if (r)
            a->wrong++;
        PQclear(r);
        db_session_close(s);
    }
}

/* `done` of coroutines whose outcome is in their own struct: one fewer to wait for. */
static void one_done(void *arg)
{
    (void)arg;
    L->pending--;
}

Test(pipe, sessions_in_a_row_from_many_coroutines_keep_sharing_one_connection)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "rows");
    db_engine *e = open_engine(&cfg);
    enum { N = 50, ROUNDS = 10 };
    static looper a[N];
    for (int i = 0; i < N; i++) {
        a[i] = (looper){.e = e, .id = i, .rounds = ROUNDS};
        L->pending++;
        cr_assert_eq(coro_spawn(looper_run, one_done, &a[i]), 0);
    }
    run_settled(30);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(a[i].wrong, 0, "coroutine %d got another statement's answer", i);
        cr_assert_eq(a[i].ok, ROUNDS, "coroutine %d: %s", i, a[i].err.message);
    }
    db_stats st = stats(e);
    cr_assert_eq(st.connects, 1, "connects %lu", (unsigned long)st.connects);
    /* one borrow per busy period of the loop, not per session: far below N * ROUNDS */
    cr_assert_lt(st.acquires, N * ROUNDS / 10, "%lu borrows for %d sessions",
                 (unsigned long)st.acquires, N * ROUNDS);
    cr_assert_eq(st.in_use, 0);
    finish(e);
    free(url);
}

/* With DB_PIPELINE_CONNS=2, a read queued while a batch is in flight leaves at once on a second
 * connection instead of waiting for that batch; with both lanes busy, the next read joins the
 * batch that left first: never more than two connections. The slow batches wait at gates
 * (coro_loop.h) that open only when the reads that must not wait for them have finished. */
Test(pipe, a_read_sent_while_a_batch_is_in_flight_takes_the_second_lane)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "lanes");
    cfg.pipeline_conns = 2;
    cfg.statement_timeout = 60; /* longer than the gates' fallback */
    db_engine *e = open_engine(&cfg);
    enum { Q = 5 };
    job slow1, slow2, quick[Q], late;
    static gate g1, g2;
    gate_shut(&g1, 1, Q, 15); /* opens when the Q quick reads have finished */
    job_read(&slow1, e, g1.sql, 0, NULL, NULL);
    for (int i = 0; i < Q; i++) {
        job_double(&quick[i], e, i);
        quick[i].opens = &g1;
    }
    cr_assert_eq(spawn(&slow1), 0);
    later_jobs lq = {quick, Q};
    when_locked(1, &lq, NULL); /* while slow1's batch is in flight (at its gate) */
    run_settled(40);
    cr_assert_eq(slow1.rc, 0, "%s", slow1.err.message);
    assert_gate_opened_by_jobs(&g1, "the quick reads");
    for (int i = 0; i < Q; i++) {
        assert_doubled(&quick[i], i, i);
        cr_assert_lt(quick[i].seq, slow1.seq, "read %d finished before the slow batch", i);
        cr_assert_str_eq(quick[i].v1, quick[0].v1, "the quick reads shared one batch");
    }
    cr_assert_str_neq(quick[0].v1, slow1.v1, "on another backend than the slow batch");
    db_stats st = stats(e);
    cr_assert_eq(st.connects, 2, "connects %lu", (unsigned long)st.connects);

    /* both lanes busy: the late read waits for the batch that left first, on no third connection.
     * slow1's gate opens once late is queued; slow2's only when late has finished. */
    gate_shut(&g1, 1, 0, 15);
    gate_shut(&g2, 2, 1, 15);
    job_read(&slow1, e, g1.sql, 0, NULL, NULL);
    job_read(&slow2, e, g2.sql, 0, NULL, NULL);
    job_double(&late, e, 7);
    late.opens = &g2;
    cr_assert_eq(spawn(&slow1), 0);
    later_jobs l2 = {&slow2, 1}, l3 = {&late, 1};
    when_locked(1, &l2, NULL); /* slow1 in flight: slow2 on the other lane */
    when_locked(2, &l3, &g1);  /* both in flight: the late read, then slow1's batch may end */
    run_settled(40);
    cr_assert_eq(slow1.rc, 0, "%s", slow1.err.message);
    cr_assert_eq(slow2.rc, 0, "%s", slow2.err.message);
    assert_doubled(&late, 0, 7);
    assert_gate_opened_by_jobs(&g2, "the late read");
    if (!pgtest_via_pooler()) /* pgbouncer may put the next batch on another server backend */
        cr_assert_str_eq(late.v1, slow1.v1, "the late read joined the lane whose batch left first");
    cr_assert_gt(late.seq, slow1.seq, "it was answered behind that batch");
    cr_assert_lt(late.seq, slow2.seq, "and not behind the other one");
    st = stats(e);
    cr_assert_eq(st.connects, 2, "connects %lu", (unsigned long)st.connects);
    cr_assert_eq(st.in_use, 0);
    finish(e);
    free(url);
}

/* The lanes are the process's, shared among the loops: with DB_PIPELINE_CONNS=2 and two loops
 * (pipeline_threads), this thread has one lane, so a read sent while its batch is in flight
 * queues behind it on the same connection instead of opening a second. */
Test(pipe, a_loop_gets_its_share_of_the_lanes)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "share");
    cfg.pipeline_conns = 2;
    cfg.pipeline_threads = 2;
    cfg.statement_timeout = 60;
    db_engine *e = open_engine(&cfg);
    job slow, quick;
    static gate g;
    gate_shut(&g, 1, 0, 15);
    job_read(&slow, e, g.sql, 0, NULL, NULL);
    job_double(&quick, e, 3);
    cr_assert_eq(spawn(&slow), 0);
    later_jobs l = {&quick, 1};
    when_locked(1, &l, &g); /* the slow batch in flight: the quick read, then the batch ends */
    run_settled(40);
    cr_assert_eq(slow.rc, 0, "%s", slow.err.message);
    assert_doubled(&quick, 0, 3);
    cr_assert_gt(quick.seq, slow.seq, "it was answered behind the slow batch");
    db_stats st = stats(e);
    cr_assert_eq(st.connects, 1, "one lane, one connection: connects %lu",
                 (unsigned long)st.connects);
    finish(e);
    free(url);
}

/* Against a distant database (the fault proxy delaying every answer by D) a read queued while a
 * batch is in flight leaves at once behind it on the same connection: it is answered about 0.3 s
 * (when it was queued) after the first, not a whole round trip D after it. D is twice this run's
 * slack (pgtest_slack_ms), so the bound between the two cases holds at any speed of the machine. */
Test(pipe, a_read_queued_behind_a_batch_in_flight_waits_one_round_trip)
{
    char *url = pgtest_app_url(), app[64];
    static fproxy proxy;
    fproxy_start(&proxy, url);
    char *via = fproxy_url(&proxy, url);
    db_config cfg;
    setup(&cfg, via, app, "deep");
    cfg.statement_timeout = 60;
    db_engine *e = open_engine(&cfg);
    job warm, first, second;
    job_double(&warm, e, 1); /* connects without delay */
    spawn_all(&warm, 1);
    run_settled(20);
    assert_doubled(&warm, 0, 1);
    double slack = pgtest_slack_ms(), d = 300 + 2 * slack;
    char cmd[32];
    snprintf(cmd, sizeof cmd, "delay %.0f", d);
    cr_assert(!strncmp(fproxy_cmd(&proxy, cmd), "ok", 2));
    job_double(&first, e, 2);
    job_double(&second, e, 3);
    spawn_all(&first, 1);
    later_jobs l = {&second, 1};
    spawn_after(&l, 0.3);
    run_settled(60);
    assert_doubled(&first, 0, 2);
    assert_doubled(&second, 1, 3);
    cr_assert_geq(first.ms, d, "the delay holds (%.0f ms, delay %.0f ms)", first.ms, d);
    cr_assert_gt(second.seq, first.seq, "answered in order");
    /* behind the first batch's answer it would come a whole round trip (d) after it */
    double gap = second.done_ms - first.done_ms;
    cr_assert_lt(gap, 300 + slack, "the second read came %.0f ms after the first (delay %.0f ms)",
                 gap, d);
    db_stats st = stats(e);
    cr_assert_eq(st.connects, 1, "one connection (connects %lu)", (unsigned long)st.connects);
    cr_assert_eq(fproxy_stat(&proxy, "conns"), 1);
    finish(e);
    fproxy_stop(&proxy);
    free(via);
    free(url);
}

/* ---- 2. a failing statement fails alone ---- */

static const char *const DIV_SQL = "select $1::int * 2, 1 / $2::int";

Test(pipe, a_failing_statement_does_not_fail_the_others_of_its_batch)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "iso");
    db_engine *e = open_engine(&cfg);
    enum { N = 20, BAD = 5 };
    job jobs[N];
    for (int i = 0; i < N; i++) {
        char k[16];
        snprintf(k, sizeof k, "%d", i);
        job_read(&jobs[i], e, DIV_SQL, 2, k, i == BAD ? "0" : "1");
    }
    spawn_all(jobs, N); /* same loop iteration: one batch */
    run_settled(20);
    for (int i = 0; i < N; i++) {
        if (i == BAD)
            continue;
        assert_doubled(&jobs[i], i, i);
    }
    cr_assert_eq(jobs[BAD].rc, -1, "1/0 failed");
    cr_assert_eq(jobs[BAD].err.kind, DB_ERR_QUERY, "%s: %s", db_errkind_name(jobs[BAD].err.kind),
                 jobs[BAD].err.message);
    cr_assert_str_eq(jobs[BAD].err.sqlstate, "22012");
    cr_assert(strstr(jobs[BAD].err.message, "division by zero"), "%s", jobs[BAD].err.message);
    db_stats st = stats(e);
    cr_assert_eq(st.discarded, 0, "a statement's error leaves the connection usable");
    cr_assert_eq(st.connects, 1);
    cr_assert_eq(st.in_use, 0);
    finish(e);
    free(url);
}

Test(pipe, several_failing_statements_in_one_batch_fail_only_themselves)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "iso2");
    db_engine *e = open_engine(&cfg);
    /* failures early in the batch, so that the good statements behind them are skipped by the
     * server once per failure ahead of them, and re-sent as often */
    enum { N = 40 };
    job jobs[N];
    for (int i = 0; i < N; i++) {
        char k[16];
        snprintf(k, sizeof k, "%d", i);
        bool bad = i < 12 && i % 2 == 0; /* 0, 2, ..., 10: six failures */
        if (bad && i % 4 == 2)
            job_read(&jobs[i], e, "select $1::int", 1, "not a number", NULL);
        else
            job_read(&jobs[i], e, DIV_SQL, 2, k, bad ? "0" : "1");
    }
    spawn_all(jobs, N);
    run_settled(20);
    for (int i = 0; i < N; i++) {
        bool bad = i < 12 && i % 2 == 0;
        if (!bad) {
            assert_doubled(&jobs[i], i, i);
            continue;
        }
        cr_assert_eq(jobs[i].rc, -1, "job %d should have failed", i);
        cr_assert_eq(jobs[i].err.kind, DB_ERR_QUERY, "job %d: %s", i, jobs[i].err.message);
        cr_assert_str_eq(jobs[i].err.sqlstate, i % 4 == 2 ? "22P02" : "22012", "job %d: %s", i,
                         jobs[i].err.message);
    }
    db_stats st = stats(e);
    cr_assert_eq(st.acquires, 1, "one pipeline, re-sending on its connection (acquires %lu)",
                 (unsigned long)st.acquires);
    cr_assert_eq(st.connects, 1);
    cr_assert_eq(st.discarded, 0);
    cr_assert_eq(st.in_use, 0);
    finish(e);
    free(url);
}

/* ---- 2b. prepared statements (DB_PREPARE) ---- */

/* Runs one read on e in a coroutine and waits for it. */
static void run_one(job *j)
{
    cr_assert_eq(spawn(j), 0);
    run_settled(20);
    cr_assert(j->finished, "the read never finished");
}

/* How many statements the lane's connection has prepared with the text `text` (v0), and on which
 * backend (v1); through the lane itself, the only one (pipeline_conns = 1). */
static void count_prepared(job *j, db_engine *e, const char *text)
{
    static char sql[256];
    snprintf(sql, sizeof sql,
             "select count(*), pg_backend_pid() from pg_prepared_statements where statement = "
             "'%s'",
             text);
    job_read(j, e, sql, 0, NULL, NULL);
    run_one(j);
    cr_assert_eq(j->rc, 0, "%s", j->err.message);
}

/* DB_PREPARE=auto: on a direct connection a statement is parsed once per connection and its
 * later uses name it, in every batch; through pgbouncer 1.18 (no prepared-statement support:
 * named statements would land on other server connections) nothing is prepared. */
Test(pipe, a_statement_is_prepared_once_per_connection_unless_a_pooler_is_in_between)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "prep");
    cfg.pipeline_conns = 1;
    db_engine *e = open_engine(&cfg);
    enum { N = 10, ROUNDS = 3 };
    job jobs[N];
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < N; i++)
            job_double(&jobs[i], e, r * N + i);
        spawn_all(jobs, N);
        run_settled(20);
        for (int i = 0; i < N; i++)
            assert_doubled(&jobs[i], i, r * N + i);
    }
    job count;
    count_prepared(&count, e, DOUBLE_SQL);
    cr_assert_eq(stats(e).preparing, !pgtest_via_pooler(), "DB_PREPARE=auto decided");
    if (pgtest_via_pooler()) {
        cr_assert_str_eq(count.v0, "0", "nothing prepared through pgbouncer 1.18");
    } else {
        cr_assert_str_eq(count.v0, "1", "prepared once, used %d times", N * ROUNDS);
        cr_assert_str_eq(count.v1, jobs[0].v1, "on the connection that ran them");
    }
    db_stats st = stats(e);
    cr_assert_eq(st.connects, 1);
    cr_assert_eq(st.discarded, 0);
    finish(e);
    free(url);
}

Test(pipe, with_DB_PREPARE_off_nothing_is_prepared)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "noprep");
    cfg.pipeline_conns = 1;
    cfg.prepare = DB_PREPARE_OFF;
    db_engine *e = open_engine(&cfg);
    job j;
    for (int i = 0; i < 3; i++) {
        job_double(&j, e, i);
        run_one(&j);
        assert_doubled(&j, 0, i);
    }
    job count;
    count_prepared(&count, e, DOUBLE_SQL);
    cr_assert_str_eq(count.v0, "0");
    finish(e);
    free(url);
}

/* DB_PREPARE=on through a pooler that does not keep prepared statements (pgbouncer 1.18 in
 * transaction mode): the lane's next transaction lands on another server connection than the one
 * its statement was prepared on (another client holds that one; pgbouncer reuses server
 * connections last-in first-out), where the name is unknown (26000). The read is re-sent unnamed
 * and answers, and the pool stops preparing. Direct, the same steps keep preparing. */
Test(pipe, with_DB_PREPARE_on_a_pooler_that_loses_prepared_statements_turns_it_off)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "prepon");
    cfg.pipeline_conns = 1;
    cfg.prepare = DB_PREPARE_ON;
    db_engine *e = open_engine(&cfg);
    enum { N = 10 };
    job jobs[N];
    for (int i = 0; i < N; i++)
        job_double(&jobs[i], e, i);
    spawn_all(jobs, N);
    run_settled(20);
    for (int i = 0; i < N; i++)
        assert_doubled(&jobs[i], i, i);
    cr_assert_eq(stats(e).preparing, 1, "DB_PREPARE=on prepares");

    PGconn *other = PQconnectdb(url); /* through the pooler in the pooler run */
    cr_assert_eq(PQstatus(other), CONNECTION_OK, "%s", PQerrorMessage(other));
    PQclear(PQexec(other, "begin"));
    char *one = pgtest_query(other, "select 1"); /* holds the server connection last used */
    cr_assert_str_eq(one, "1");
    free(one);
    for (int i = 0; i < N; i++)
        job_double(&jobs[i], e, 100 + i);
    spawn_all(jobs, N);
    run_settled(20);
    for (int i = 0; i < N; i++)
        assert_doubled(&jobs[i], i, 100 + i);
    db_stats st = stats(e);
    if (pgtest_via_pooler())
        cr_assert_eq(st.preparing, 0, "the pool stopped preparing");
    else
        cr_assert_eq(st.preparing, 1, "direct: still prepared");
    cr_assert_eq(st.discarded, 0);
    PQclear(PQexec(other, "rollback"));
    PQfinish(other);
    finish(e);
    free(url);
}

/* A statement whose Parse fails (a table that does not exist) fails alone, every time it is sent,
 * with its own error: its failed Parse is not remembered as a prepared statement (that would
 * answer "prepared statement does not exist" the next time), and its batch's others are answered.
 */
Test(pipe, a_statement_whose_parse_fails_fails_alone_each_time)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "badparse");
    cfg.pipeline_conns = 1;
    db_engine *e = open_engine(&cfg);
    enum { N = 8, BAD = 3 };
    job jobs[N];
    for (int r = 0; r < 2; r++) {
        for (int i = 0; i < N; i++) {
            if (i == BAD)
                job_read(&jobs[i], e, "select x from no_such_table_here", 0, NULL, NULL);
            else
                job_double(&jobs[i], e, i);
        }
        spawn_all(jobs, N);
        run_settled(20);
        for (int i = 0; i < N; i++) {
            if (i != BAD) {
                assert_doubled(&jobs[i], i, i);
                continue;
            }
            cr_assert_eq(jobs[i].rc, -1, "round %d: the bad statement failed", r);
            cr_assert_eq(jobs[i].err.kind, DB_ERR_QUERY, "%s", jobs[i].err.message);
            cr_assert_str_eq(jobs[i].err.sqlstate, "42P01", "round %d: %s", r, jobs[i].err.message);
        }
    }
    db_stats st = stats(e);
    cr_assert_eq(st.discarded, 0, "a statement's error leaves the connection usable");
    finish(e);
    free(url);
}

/* A migration changes a column's type while the API runs: the plan cached for a prepared
 * statement that returns the column no longer fits (0A000 "cached plan must not change result
 * type"). The statement is prepared afresh and the read answers with the new type, instead of
 * failing until the connection is recycled. */
Test(pipe, a_read_whose_result_type_changed_is_prepared_afresh)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "replan");
    cfg.pipeline_conns = 1;
    PGconn *admin = pgtest_connect();
    free(pgtest_query(admin, "drop table if exists replan_r"));
    free(pgtest_query(admin, "create table replan_r (a int)"));
    free(pgtest_query(admin, "insert into replan_r values (21)"));
    db_engine *e = open_engine(&cfg);
    static const char *const SQL = "select a * 2, pg_typeof(a)::text from replan_r";
    job j;
    for (int i = 0; i < 2; i++) {
        job_read(&j, e, SQL, 0, NULL, NULL);
        run_one(&j);
        cr_assert_eq(j.rc, 0, "%s", j.err.message);
        cr_assert_str_eq(j.v1, "integer");
    }
    free(pgtest_query(admin, "alter table replan_r alter column a type bigint"));
    for (int i = 0; i < 2; i++) {
        job_read(&j, e, SQL, 0, NULL, NULL);
        run_one(&j);
        cr_assert_eq(j.rc, 0, "after the ALTER: %s: %s [%s]", db_errkind_name(j.err.kind),
                     j.err.message, j.err.sqlstate);
        cr_assert_str_eq(j.v0, "42");
        cr_assert_str_eq(j.v1, "bigint");
    }
    db_stats st = stats(e);
    cr_assert_eq(st.discarded, 0, "the connection was kept");
    cr_assert_eq(st.connects, 1);
    free(pgtest_query(admin, "drop table replan_r"));
    PQfinish(admin);
    finish(e);
    free(url);
}

/* ---- 3. statement timeout ---- */

Test(pipe, statement_timeout_cancels_the_slow_read_and_the_rest_succeed)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "stmt");
    cfg.statement_timeout = 0.3;
    db_engine *e = open_engine(&cfg);
    enum { AHEAD = 5, BEHIND = 10 };
    job ahead[AHEAD], sleeper, behind[BEHIND];
    for (int i = 0; i < AHEAD; i++)
        job_double(&ahead[i], e, i);
    job_read(&sleeper, e, "select pg_sleep(5)", 0, NULL, NULL);
    for (int i = 0; i < BEHIND; i++)
        job_double(&behind[i], e, 100 + i);
    /* one batch: AHEAD reads, the sleeper, then BEHIND reads the server skips after the cancel */
    spawn_all(ahead, AHEAD);
    cr_assert_eq(spawn(&sleeper), 0);
    spawn_all(behind, BEHIND);
    run_settled(20);

    cr_assert_eq(sleeper.rc, -1, "pg_sleep(5) was cancelled");
    cr_assert_eq(sleeper.err.kind, DB_ERR_STATEMENT_TIMEOUT, "%s: %s",
                 db_errkind_name(sleeper.err.kind), sleeper.err.message);
    cr_assert_str_eq(sleeper.err.sqlstate, "57014");
    /* the deadline under test: the timeout (300 ms), not the sleep (5 s); 57014 alone would not
     * show the cancel came on time */
    pgtest_assert_within(sleeper.ms, 300, "the sleeper's cancel");
    /* the server ran these before the sleeper, but it sends a batch's answers only at the
     * batch's Sync (or when its output buffer fills): they too waited for the cancel, which the
     * statement timeout bounds; those behind were re-sent once after it */
    for (int i = 0; i < AHEAD; i++) {
        assert_doubled(&ahead[i], i, i);
        pgtest_assert_within(ahead[i].ms, 300, "a read ahead of the sleeper");
    }
    for (int i = 0; i < BEHIND; i++) {
        assert_doubled(&behind[i], i, 100 + i);
        pgtest_assert_within(behind[i].ms, 300, "a read behind the sleeper");
    }

    /* reads issued after the timeout use the same connection: the cancel did not break it */
    job after[10];
    for (int i = 0; i < 10; i++)
        job_double(&after[i], e, 200 + i);
    spawn_all(after, 10);
    run_settled(20);
    for (int i = 0; i < 10; i++)
        assert_doubled(&after[i], i, 200 + i);
    db_stats st = stats(e);
    cr_assert_eq(st.discarded, 0, "discarded %lu", (unsigned long)st.discarded);
    cr_assert_eq(st.connects, 1, "connects %lu", (unsigned long)st.connects);
    cr_assert_eq(st.in_use, 0);
    finish(e);
    free(url);
}

/* ---- 4. lost connections ---- */

Test(pipe, reads_after_the_idle_pipeline_connection_was_terminated_succeed)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "lost");
    db_engine *e = open_engine(&cfg);
    job first[20], again[20];
    for (int i = 0; i < 20; i++)
        job_double(&first[i], e, i);
    spawn_all(first, 20);
    run_settled(20);
    for (int i = 0; i < 20; i++)
        assert_doubled(&first[i], i, i);

    /* the loop is idle: the pipeline's connection is back in the pool. Through pgbouncer the
     * backend that served the batch carries our application_name too (pgbouncer sets it when it
     * links our client), so both runs kill a real backend here. */
    int killed = terminate_all(app);
    cr_assert_geq(killed, 1, "a backend of this engine was terminated");

    for (int i = 0; i < 20; i++)
        job_double(&again[i], e, 100 + i);
    spawn_all(again, 20);
    run_settled(20);
    for (int i = 0; i < 20; i++)
        assert_doubled(&again[i], i, 100 + i);
    db_stats st = stats(e);
    if (!pgtest_via_pooler()) {
        /* direct: the dead idle connection was noticed when borrowed and replaced */
        cr_assert_eq(st.discarded, 1, "discarded %lu", (unsigned long)st.discarded);
        cr_assert_eq(st.connects, 2, "connects %lu", (unsigned long)st.connects);
    } else {
        /* pgbouncer: our client connection survives an idle server's death (pgbouncer opens
         * another server connection), so nothing may be discarded on our side */
        cr_log_info("via pgbouncer the client connection outlives the terminated server "
                    "connection: checking that it was kept, not replaced");
        cr_assert_eq(st.discarded, 0, "discarded %lu", (unsigned long)st.discarded);
        cr_assert_eq(st.connects, 1, "connects %lu", (unsigned long)st.connects);
    }
    cr_assert_eq(st.in_use, 0);
    finish(e);
    free(url);
}

Test(pipe, reads_of_a_batch_whose_connection_dies_are_resent_on_a_fresh_one)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "midb");
    db_engine *e = open_engine(&cfg);
    char sql[128];
    snprintf(sql, sizeof sql, "select pg_sleep(1), 'mark-%s'", app);
    pgtest_killer_arg k = {.marker = strchr(sql, 'm')};
    enum { AHEAD = 3, BEHIND = 20 };
    job ahead[AHEAD], victim, behind[BEHIND];
    for (int i = 0; i < AHEAD; i++)
        job_double(&ahead[i], e, i);
    job_read(&victim, e, sql, 0, NULL, NULL);
    for (int i = 0; i < BEHIND; i++)
        job_double(&behind[i], e, 100 + i);
    pthread_t t;
    pthread_create(&t, NULL, pgtest_killer, &k);
    spawn_all(ahead, AHEAD);
    cr_assert_eq(spawn(&victim), 0);
    spawn_all(behind, BEHIND);
    int rc = loop_run(20);
    pthread_join(t, NULL);
    cr_assert(k.killed, "the batch's backend was terminated while it ran the marked statement");
    cr_assert_eq(rc, 0, "settled: %d unfinished, %d borrowed", L->pending, in_use(e));
    for (int i = 0; i < AHEAD; i++)
        assert_doubled(&ahead[i], i, i);
    /* the statement whose backend died is a read outside a transaction: re-sent, like the
     * non-pipelined path does, instead of failing with the server's goodbye (57P01) */
    cr_assert_eq(victim.rc, 0, "the read under the terminated backend: %s: %s [%s]",
                 db_errkind_name(victim.err.kind), victim.err.message, victim.err.sqlstate);
    cr_assert(strstr(victim.v1, "mark-"), "%s", victim.v1);
    for (int i = 0; i < BEHIND; i++)
        assert_doubled(&behind[i], i, 100 + i);
    db_stats st = stats(e);
    cr_assert_eq(st.connects, 2, "a fresh connection replaced the lost one (connects %lu)",
                 (unsigned long)st.connects);
    cr_assert_eq(st.discarded, 1, "one connection was lost, discarded %lu",
                 (unsigned long)st.discarded);
    cr_assert_eq(st.in_use, 0);
    cr_assert_eq(st.open, 1);
    finish(e);
    free(url);
}

/* The same, when the pool's other idle connection is dead too but does not show it yet (the
 * terminator that killed the batch's backend killed every backend of the engine, and the goodbye
 * of an idle one may still be on its way when the driver looks at it; here: a silent network).
 * The unanswered reads must be re-sent on a connection opened for them, not on whatever the pool
 * has idle, or the one retry is spent on a second dead connection and the reads fail with 503
 * outside any outage (chaos runs saw this with backends terminated every second). */
Test(pipe, reads_lost_with_their_connection_are_resent_on_a_new_connection_not_an_idle_one)
{
    char app[64];
    char *url = pgtest_app_url(), pport[16];
    char *host = db_url_get(url, "host"), *port = db_url_get(url, "port");
    test_proxy proxy;
    test_proxy_start(&proxy, host, atoi(port), 0);
    snprintf(pport, sizeof pport, "%d", proxy.port);
    char *via = db_url_with(url, "port", pport);
    free(host), free(port);
    db_config cfg;
    setup(&cfg, via, app, "idle2");
    cfg.statement_timeout = 1.0;
    cfg.connect_timeout = pgtest_slack_ms() / 1000; /* reconnects must not fail on a busy machine */
    db_engine *e = open_engine(&cfg);
    /* two idle connections, opened outside the loop: proxy connection 0 (A) and 1 (B); B goes
     * back first, so A is on top of the pool's idle stack and the pipeline takes it */
    db_session *sa, *sb;
    db_error err;
    cr_assert_eq(db_session_open(e, DB_READ_WRITE, &sa, &err), 0, "%s", err.message);
    cr_assert_eq(db_exec(sa, "select 1", 0, NULL, &err), 0, "%s", err.message);
    cr_assert_eq(db_session_open(e, DB_READ_WRITE, &sb, &err), 0, "%s", err.message);
    cr_assert_eq(db_exec(sb, "select 1", 0, NULL, &err), 0, "%s", err.message);
    db_session_close(sb);
    db_session_close(sa);
    cr_assert_eq(proxy.accepted, 2);
    test_proxy_freeze_one(&proxy, 1); /* B: dead, but nothing to read on it */

    char sql[128];
    snprintf(sql, sizeof sql, "select pg_sleep(0.5), 'mark-%s'", app);
    pgtest_killer_arg k = {.marker = strchr(sql, 'm')};
    enum { BEHIND = 10 };
    job victim, behind[BEHIND];
    job_read(&victim, e, sql, 0, NULL, NULL);
    for (int i = 0; i < BEHIND; i++)
        job_double(&behind[i], e, 100 + i);
    pthread_t t;
    pthread_create(&t, NULL, pgtest_killer, &k);
    cr_assert_eq(spawn(&victim), 0);
    spawn_all(behind, BEHIND);
    int rc = loop_run(20);
    pthread_join(t, NULL);
    cr_assert(k.killed, "the batch's backend was terminated while it ran the marked statement");
    cr_assert_eq(rc, 0, "settled: %d unfinished, %d borrowed", L->pending, in_use(e));
    cr_assert_eq(victim.rc, 0, "the read under the terminated backend: %s: %s [%s] (%.0f ms)",
                 db_errkind_name(victim.err.kind), victim.err.message, victim.err.sqlstate,
                 victim.ms);
    cr_assert(strstr(victim.v1, "mark-"), "%s", victim.v1);
    for (int i = 0; i < BEHIND; i++)
        assert_doubled(&behind[i], i, 100 + i);
    finish(e);
    test_proxy_stop(&proxy);
    free(via);
    free(url);
}

/* A re-sent read whose fresh connection is lost too (a second, independent fault: chaos saw a cut
 * and a sweep of terminations meet) is re-sent again; a third loss fails it, with the transient
 * error (503 in the API), so a database that keeps killing it cannot hold it forever. */
static void lost_n_times(int times, bool succeeds)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, times == 2 ? "lost2" : "lost3");
    db_engine *e = open_engine(&cfg);
    char sql[128];
    snprintf(sql, sizeof sql, "select pg_sleep(1), 'mark-%s'", app);
    pgtest_killer_arg k = {.marker = strchr(sql, 'm'), .times = times};
    job victim;
    job_read(&victim, e, sql, 0, NULL, NULL);
    pthread_t t;
    pthread_create(&t, NULL, pgtest_killer, &k);
    cr_assert_eq(spawn(&victim), 0);
    int rc = loop_run(20);
    pthread_join(t, NULL);
    cr_assert_eq(k.killed, times, "terminated %d backends under the read, wanted %d", k.killed,
                 times);
    cr_assert_eq(rc, 0, "settled: %d unfinished, %d borrowed", L->pending, in_use(e));
    if (succeeds) {
        cr_assert_eq(victim.rc, 0, "the read lost %d times: %s: %s [%s]", times,
                     db_errkind_name(victim.err.kind), victim.err.message, victim.err.sqlstate);
        cr_assert(strstr(victim.v1, "mark-"), "%s", victim.v1);
    } else {
        cr_assert_eq(victim.rc, -1, "the read lost %d times succeeded", times);
        cr_assert_eq(victim.err.kind, DB_ERR_TRANSIENT, "%s", db_errkind_name(victim.err.kind));
        cr_assert_str_eq(victim.err.sqlstate, "08006");
    }
    db_stats st = stats(e);
    cr_assert_eq(st.connects, (uint64_t)times + (succeeds ? 1 : 0), "connects %lu",
                 (unsigned long)st.connects);
    cr_assert_eq(st.in_use, 0);
    finish(e);
    free(url);
}

Test(pipe, a_read_lost_twice_is_resent_again_and_succeeds)
{
    lost_n_times(2, true);
}

Test(pipe, a_read_lost_three_times_fails_with_the_transient_error)
{
    lost_n_times(3, false);
}

/* A connection that goes silent (no answer, no EOF) under a batch: the statement timeout plus the
 * cancel's grace bound the wait, the connection is given up, and the reads are re-sent once on a
 * fresh connection. */
Test(pipe, a_batch_on_a_silent_connection_never_hangs)
{
    char app[64];
    char *url = pgtest_app_url(), pport[16];
    char *host = db_url_get(url, "host"), *port = db_url_get(url, "port");
    test_proxy proxy;
    test_proxy_start(&proxy, host, atoi(port), 0);
    snprintf(pport, sizeof pport, "%d", proxy.port);
    char *via = db_url_with(url, "port", pport);
    free(host), free(port), free(url);
    db_config cfg;
    setup(&cfg, via, app, "silent");
    cfg.statement_timeout = 0.3;
    cfg.connect_timeout = pgtest_slack_ms() / 1000; /* also the cancel's grace */
    /* the reads sent on the silent connection are sent again after the grace and a reconnect, and
     * their time in the queue counts against DB_ACQUIRE_TIMEOUT: give it room, since answering them
     * is the subject here (a deadline that fires first is tests/db/test_deadline.c's) */
    cfg.acquire_timeout = 1 + 2 * cfg.connect_timeout;
    db_engine *e = open_engine(&cfg);
    job first[5], later[10];
    for (int i = 0; i < 5; i++)
        job_double(&first[i], e, i);
    spawn_all(first, 5);
    run_settled(20);
    for (int i = 0; i < 5; i++)
        assert_doubled(&first[i], i, i);

    test_proxy_freeze(&proxy); /* the pooled connection: later ones work */
    for (int i = 0; i < 10; i++)
        job_double(&later[i], e, 100 + i);
    spawn_all(later, 10);
    run_settled(20);
    for (int i = 0; i < 10; i++) {
        assert_doubled(&later[i], i, 100 + i);
        /* the deadline under test: the statement timeout, the cancel's grace and a reconnect
         * (both connect_timeout) */
        pgtest_assert_within(later[i].ms, 300 + 2000 * cfg.connect_timeout,
                             "bounded by the timeout and the grace");
    }
    db_stats st = stats(e);
    cr_assert_eq(st.discarded, 1, "the silent connection was discarded once (discarded %lu)",
                 (unsigned long)st.discarded);
    cr_assert_eq(st.connects, 2, "connects %lu", (unsigned long)st.connects);
    cr_assert_eq(st.open, 1);
    finish(e);
    test_proxy_stop(&proxy);
    free(via);
}

/* ---- 5. an explicit transaction next to the pipeline ---- */

enum { TX_READS = 50 };
static job tx_reads[TX_READS];
static int tx_reads_left;
static coro *tx_co;

typedef struct {
    db_engine *e;
    int step; /* how far it got */
    int in_use_after_open;
    bool in_tx, same_tx;
    char pid[32], read_only[8];
    db_error err;
} tx_job;

static void tx_read_done(job *j)
{
    (void)j;
    if (--tx_reads_left == 0 && tx_co)
        coro_wake(tx_co);
}

static void tx_run(void *arg)
{
    tx_job *t = arg;
    db_session *s;
    if (db_session_open(t->e, DB_READ_ONLY, &s, &t->err) < 0)
        return;
    t->in_use_after_open = in_use(t->e);
    t->step = 1;
    if (db_begin(s, &t->err) < 0)
        goto out;
    t->step = 2;
    t->in_tx = PQtransactionStatus(db_session_conn(s)) == PQTRANS_INTRANS;
    PGresult *r = db_query(s, "select pg_backend_pid(), current_setting('transaction_read_only')",
                           0, NULL, &t->err);
    if (!r)
        goto out;
    snprintf(t->pid, sizeof t->pid, "%s", PQgetvalue(r, 0, 0));
    snprintf(t->read_only, sizeof t->read_only, "%s", PQgetvalue(r, 0, 1));
    PQclear(r);
    t->step = 3;
    /* pipelined reads run while this transaction stays open */
    tx_co = coro_self();
    tx_reads_left = TX_READS;
    for (int i = 0; i < TX_READS; i++) {
        tx_reads[i].on_done = tx_read_done;
        L->pending++;
        if (coro_spawn_later(job_run, job_done, &tx_reads[i]) < 0) {
            L->pending--;
            tx_reads_left--;
        }
    }
    while (tx_reads_left > 0)
        coro_suspend();
    tx_co = NULL;
    t->step = 4;
    /* still the same transaction on the same backend: now() is its start, long past */
    r = db_query(s, "select pg_backend_pid()::text = $1 and now() < statement_timestamp()", 1,
                 (const char *const[]){t->pid}, &t->err);
    if (!r)
        goto out;
    t->same_tx = !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    t->step = 5;
    if (db_commit(s, &t->err) < 0)
        goto out;
    t->step = 6;
out:
    db_session_close(s);
}

Test(pipe, a_read_only_transaction_gets_its_own_connection_beside_the_pipeline)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "tx");
    db_engine *e = open_engine(&cfg);
    for (int i = 0; i < TX_READS; i++)
        job_double(&tx_reads[i], e, i);
    tx_job t = {.e = e};
    L->pending++;
    cr_assert_eq(coro_spawn(tx_run, one_done, &t), 0);
    run_settled(20);
    cr_assert_eq(t.step, 6, "the transaction stopped at step %d: %s: %s", t.step,
                 db_errkind_name(t.err.kind), t.err.message);
    cr_assert_eq(t.in_use_after_open, 0, "nothing borrowed before the session needed it");
    cr_assert(t.in_tx, "db_begin opened a transaction on the session's own connection");
    cr_assert_str_eq(t.read_only, "on", "BEGIN READ ONLY");
    cr_assert(t.same_tx, "the transaction spanned the pipelined reads on one backend");
    for (int i = 0; i < TX_READS; i++) {
        assert_doubled(&tx_reads[i], i, i);
        /* the transaction held its backend throughout, so the reads ran elsewhere (through
         * pgbouncer too: a server in a transaction is not shared) */
        cr_assert_str_neq(tx_reads[i].v1, t.pid, "read %d ran inside the transaction", i);
    }
    db_stats st = stats(e);
    cr_assert_eq(st.acquires, 2, "one borrow for the transaction, one for the pipeline (got %lu)",
                 (unsigned long)st.acquires);
    cr_assert_eq(st.in_use, 0);
    finish(e);
    free(url);
}

/* ---- 6. pipeline off ---- */

Test(pipe, with_the_pipeline_off_each_session_borrows_a_connection)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "off");
    cfg.pipeline = false;
    cfg.pool_max = 4;
    cfg.acquire_timeout = 10;
    db_engine *e = open_engine(&cfg);
    enum { N = 50 };
    static job jobs[N];
    for (int i = 0; i < N; i++)
        job_double(&jobs[i], e, i);
    spawn_all(jobs, N);
    run_settled(30);
    for (int i = 0; i < N; i++) {
        assert_doubled(&jobs[i], i, i);
        cr_assert_geq(jobs[i].in_use_after_open, 1, "job %d borrowed its connection up front", i);
    }
    db_stats st = stats(e);
    cr_assert_eq(st.acquires, N, "acquires %lu", (unsigned long)st.acquires);
    cr_assert_leq(st.connects, 4, "connects %lu", (unsigned long)st.connects);
    cr_assert_eq(st.in_use, 0);
    finish(e);
    free(url);
}

/* per_request mode is never pipelined either (session.c: pool mode only) */
Test(pipe, per_request_mode_is_not_pipelined)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "perreq");
    cfg.mode = DB_POOL_MODE_PER_REQUEST;
    db_engine *e = open_engine(&cfg);
    enum { N = 6 };
    job jobs[N];
    for (int i = 0; i < N; i++)
        job_double(&jobs[i], e, i);
    spawn_all(jobs, N);
    run_settled(30);
    for (int i = 0; i < N; i++) {
        assert_doubled(&jobs[i], i, i);
        cr_assert_geq(jobs[i].in_use_after_open, 1);
    }
    db_stats st = stats(e);
    cr_assert_eq(st.acquires, N);
    cr_assert_eq(st.connects, N, "one connection per session");
    finish(e);
    free(url);
}

/* ---- 7. outside a coroutine ---- */

typedef struct {
    db_engine *e;
    int in_use_after_open, rc;
    char v[32];
    db_error err;
} plain_arg;

/* A read-only session on the calling thread, not in a coroutine. No Criterion asserts: it also
 * runs on a plain thread. */
static void plain_read(plain_arg *a)
{
    db_session *s;
    a->rc = -1;
    if (db_session_open(a->e, DB_READ_ONLY, &s, &a->err) < 0)
        return;
    a->in_use_after_open = in_use(a->e);
    const char *params[1] = {"21"};
    PGresult *r = db_query(s, "select $1::int * 2", 1, params, &a->err);
    if (r) {
        a->rc = 0;
        snprintf(a->v, sizeof a->v, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    db_session_close(s);
}

static void *plain_thread(void *p)
{
    plain_read(p);
    return NULL;
}

Test(pipe, outside_a_coroutine_a_read_only_session_borrows_as_before)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "plain");
    db_engine *e = open_engine(&cfg);

    /* the loop's own thread, but not in a coroutine */
    plain_arg a = {.e = e};
    plain_read(&a);
    cr_assert_eq(a.rc, 0, "%s", a.err.message);
    cr_assert_str_eq(a.v, "42");
    cr_assert_eq(a.in_use_after_open, 1, "borrowed when opened: not pipelined");
    db_stats st = stats(e);
    cr_assert_eq(st.acquires, 1);
    cr_assert_eq(st.in_use, 0);

    /* a plain thread that never ran a loop */
    plain_arg b = {.e = e};
    pthread_t t;
    pthread_create(&t, NULL, plain_thread, &b);
    pthread_join(t, NULL);
    cr_assert_eq(b.rc, 0, "%s", b.err.message);
    cr_assert_str_eq(b.v, "42");
    cr_assert_eq(b.in_use_after_open, 1);

    /* and the same engine in a coroutine is pipelined: nothing borrowed at open */
    job j;
    job_double(&j, e, 21);
    cr_assert_eq(spawn(&j), 0);
    run_settled(20);
    assert_doubled(&j, 0, 21);
    cr_assert_eq(j.in_use_after_open, 0);
    st = stats(e);
    cr_assert_eq(st.acquires, 3);
    cr_assert_eq(st.in_use, 0);
    finish(e);
    free(url);
}

/* ---- several loop threads ---- */

enum { THREAD_READS = 100 };

typedef struct {
    db_engine *e;
    int base, rc;
    job jobs[THREAD_READS];
} loop_thread_arg;

/* A loop of its own on a second thread: no Criterion asserts here, the test thread checks. */
static void *loop_thread(void *p)
{
    loop_thread_arg *a = p;
    /* thread-local static, not a stack variable: L (also thread-local) points at it */
    static _Thread_local loop l;
    a->rc = -1;
    if (loop_open(&l, a->e) < 0)
        return NULL;
    for (int i = 0; i < THREAD_READS; i++)
        job_double(&a->jobs[i], a->e, a->base + i);
    int spawned = 0;
    for (int i = 0; i < THREAD_READS; i++)
        spawned += spawn(&a->jobs[i]) == 0;
    if (spawned == THREAD_READS)
        a->rc = loop_run(30);
    else
        loop_run(30);
    loop_close(&l);
    return NULL;
}

Test(pipe, each_loop_thread_pipelines_on_its_own_connection)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "threads");
    db_engine *e = open_engine(&cfg);
    static loop_thread_arg a[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        a[i].e = e;
        a[i].base = 1000 * (i + 1);
        pthread_create(&t[i], NULL, loop_thread, &a[i]);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(a[i].rc, 0, "loop thread %d did not settle", i);
        for (int k = 0; k < THREAD_READS; k++) {
            assert_doubled(&a[i].jobs[k], k, a[i].base + k);
            cr_assert_str_eq(a[i].jobs[k].v1, a[i].jobs[0].v1,
                             "thread %d: one batch on one backend", i);
        }
    }
    db_stats st = stats(e);
    cr_assert_leq(st.acquires, 2, "one borrow per loop (got %lu)", (unsigned long)st.acquires);
    cr_assert_leq(st.connects, 2);
    cr_assert_eq(st.in_use, 0);
    finish(e);
    free(url);
}

/* ---- an outage: reads must not queue behind a connect that is bound to fail ---- */

enum { OUTAGE_READS = 20 };
static job outage_jobs[OUTAGE_READS];

static void spawn_outage_reads(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    for (int i = 0; i < OUTAGE_READS; i++)
        if (spawn(&outage_jobs[i]) < 0)
            outage_jobs[i].rc = -8; /* asserted below */
}

Test(pipe, during_an_outage_reads_fail_at_once_while_the_driver_probes)
{
    /* a private server, stopped and started by this test (never the shared one) */
    static pgtest_cluster c;
    pgtest_cluster_start(&c);
    char app[64];
    db_config cfg;
    setup(&cfg, c.url, app, "outage");
    /* the probe's connect budget: the reads spawned 0.1 s into it must find it still probing, on
     * a busy machine too */
    cfg.connect_timeout = pgtest_slack_ms() / 1000;
    db_engine *e = open_engine(&cfg);
    job ok, lost, probe;
    job_double(&ok, e, 1);
    cr_assert_eq(spawn(&ok), 0);
    run_settled(10 + 3 * cfg.connect_timeout);
    assert_doubled(&ok, 0, 1);

    pgtest_cluster_stop(&c);
    /* the first read finds the connection dead and its connect fails: the pool now knows the
     * server is down */
    job_double(&lost, e, 2);
    cr_assert_eq(spawn(&lost), 0);
    run_settled(10 + 3 * cfg.connect_timeout);
    cr_assert_eq(lost.rc, -1, "a read succeeded with the server stopped");
    cr_assert_eq(lost.err.kind, DB_ERR_TRANSIENT, "%s", db_errkind_name(lost.err.kind));

    /* the next read's driver probes (up to the connect budget); reads arriving meanwhile
     * get the outage's error at once instead of waiting for the probe */
    uint64_t fast_before = stats(e).outage_fast_failures;
    job_double(&probe, e, 3);
    cr_assert_eq(spawn(&probe), 0);
    for (int i = 0; i < OUTAGE_READS; i++)
        job_double(&outage_jobs[i], e, 10 + i);
    struct timeval later = {0, 100000}; /* the driver has started connecting by then */
    cr_assert_eq(event_base_once(L->base, -1, EV_TIMEOUT, spawn_outage_reads, NULL, &later), 0);
    run_settled(10 + 3 * cfg.connect_timeout);
    cr_assert_eq(probe.rc, -1);
    for (int i = 0; i < OUTAGE_READS; i++) {
        job *j = &outage_jobs[i];
        cr_assert(j->finished, "read %d never finished", i);
        cr_assert_eq(j->rc, -1, "read %d succeeded with the server stopped", i);
        cr_assert_eq(j->err.kind, DB_ERR_TRANSIENT, "read %d: %s", i, db_errkind_name(j->err.kind));
        cr_assert(strstr(j->err.hint, "another request is checking"),
                  "read %d queued behind the probe instead of failing at once: %s (%.0f ms)", i,
                  j->err.hint, j->ms);
    }
    cr_assert_geq(stats(e).outage_fast_failures - fast_before, OUTAGE_READS);

    /* back: the next read reconnects */
    pgtest_cluster_restart(&c);
    job back;
    job_double(&back, e, 4);
    cr_assert_eq(spawn(&back), 0);
    run_settled(10 + 3 * cfg.connect_timeout);
    assert_doubled(&back, 0, 4);
    finish(e);
    pgtest_cluster_destroy(&c);
}
