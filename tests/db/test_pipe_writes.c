/* db/pipe, write lanes (DB_PIPELINE_WRITES): single statements of read-write sessions in
 * coroutines, batched into one implicit transaction per batch (group commit). Each test runs its
 * sessions as coroutines on a libevent loop in the test thread, the way the API's loops do,
 * against the real server; runs direct and through pgbouncer in transaction mode (the _pooler
 * run). The semantics tested are those listed in db/pipe.h.
 *
 * Nothing is asserted inside a coroutine (a Criterion failure unwinds with longjmp, which must not
 * cross coroutine stacks): each coroutine records its outcome in a `job`, and the test thread
 * asserts once the loop has settled. */
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>

#include "core/coro.h"
#include "engine_support.h"
#include "coro_loop.h"

/* ---- its coroutines (the loop: coro_loop.h) ---- */

typedef struct job {
    db_engine *e;
    const char *sql;
    const char *params[4];
    const char *replay_sql; /* on IK001: run with params[0], row 0 in replay0/1 (a replay) */
    double ms;
    db_access access;
    int nparams;
    int rc; /* 0: the statement succeeded; -1: err says why */
    bool finished;
    char pbuf[4][64];
    char v0[64], v1[64], replay0[64], replay1[64];
    db_error err;
    int seq;     /* finished as the seq-th job of the loop (ordering, coro_loop.h) */
    gate *opens; /* a gate this job's completion counts down */
} job;

/* A statement of a read-write session with up to 4 text parameters (NULL ends them). */
static void job_set(job *j, db_engine *e, const char *sql, const char *p0, const char *p1,
                    const char *p2)
{
    memset(j, 0, sizeof *j);
    j->e = e;
    j->access = DB_READ_WRITE;
    j->sql = sql;
    const char *p[3] = {p0, p1, p2};
    for (int i = 0; i < 3 && p[i]; i++) {
        snprintf(j->pbuf[i], sizeof j->pbuf[i], "%s", p[i]);
        j->params[i] = j->pbuf[i];
        j->nparams = i + 1;
    }
    j->rc = -9; /* never ran */
}

static void keep_row(char *v0, char *v1, PGresult *r)
{
    if (PQntuples(r) > 0) {
        snprintf(v0, 64, "%s", PQgetvalue(r, 0, 0));
        if (PQnfields(r) > 1)
            snprintf(v1, 64, "%s", PQgetvalue(r, 0, 1));
    }
}

static void job_run(void *arg)
{
    job *j = arg;
    double t0 = pgtest_now_ms();
    j->rc = -1;
    db_session *s;
    if (db_session_open(j->e, j->access, &s, &j->err) == 0) {
        PGresult *r = db_query(s, j->sql, j->nparams, j->params, &j->err);
        if (r) {
            j->rc = 0;
            keep_row(j->v0, j->v1, r);
            PQclear(r);
        } else if (j->replay_sql && !strcmp(j->err.sqlstate, "IK001")) {
            db_error e2;
            r = db_query(s, j->replay_sql, 1, j->params, &e2);
            if (r) {
                keep_row(j->replay0, j->replay1, r);
                PQclear(r);
            }
        }
        db_session_close(s);
    }
    j->ms = pgtest_now_ms() - t0;
}

static void job_done(void *arg)
{
    job *j = arg;
    j->finished = true;
    j->seq = ++L->finished;
    L->pending--;
    gate_count_down(j->opens);
}

static void spawn_all(void *jobs, int n)
{
    for (int i = 0; i < n; i++) {
        L->pending++;
        cr_assert_eq(coro_spawn(job_run, job_done, (job *)jobs + i), 0, "coroutine %d", i);
    }
}

static void setup(db_config *cfg, char *url, char *app, const char *what)
{
    test_appname(app, 64, what);
    test_config(cfg, url, app);
    cfg->pipeline = true;
    cfg->pipeline_writes = true;
    cfg->pipeline_conns = 2;
    cfg->pipeline_write_conns = 2;
}

/* Runs sql on a direct connection; returns row 0 column 0 (malloc'd), or NULL. */
static char *q(const char *sql)
{
    PGconn *c = pgtest_connect();
    char *v = pgtest_query(c, sql);
    PQfinish(c);
    return v;
}

static void exec_direct(const char *sql)
{
    free(q(sql));
}

static long qlong(const char *sql)
{
    char *v = q(sql);
    long n = v ? atol(v) : -1;
    free(v);
    return n;
}

static void assert_ok(const job *j, int i)
{
    cr_assert(j->finished, "write %d never finished", i);
    cr_assert_eq(j->rc, 0, "write %d: %s: %s [%s]", i, db_errkind_name(j->err.kind), j->err.message,
                 j->err.sqlstate);
}

static void assert_failed(const job *j, int i, db_errkind kind, const char *sqlstate)
{
    cr_assert(j->finished, "write %d never finished", i);
    cr_assert_eq(j->rc, -1, "write %d should have failed", i);
    cr_assert_eq(j->err.kind, kind, "write %d: %s: %s [%s]", i, db_errkind_name(j->err.kind),
                 j->err.message, j->err.sqlstate);
    cr_assert_str_eq(j->err.sqlstate, sqlstate, "write %d: %s", i, j->err.message);
}

TestSuite(pipe_writes, .timeout = 90);

/* ---- 1. group commit ---- */

Test(pipe_writes, the_writes_of_one_batch_commit_in_one_transaction)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "wone");
    exec_direct("drop table if exists w_one; create table w_one (k int)");
    db_engine *e = open_engine(&cfg);
    enum { N = 20 };
    job jobs[N], later[N];
    const char *sql = "insert into w_one values ($1::int) returning pg_current_xact_id()::text, k";
    for (int i = 0; i < N; i++) {
        char k[16];
        snprintf(k, sizeof k, "%d", i);
        job_set(&jobs[i], e, sql, k, NULL, NULL);
        snprintf(k, sizeof k, "%d", 100 + i);
        job_set(&later[i], e, sql, k, NULL, NULL);
    }
    spawn_all(jobs, N); /* same loop iteration: one batch */
    run_settled(20);
    for (int i = 0; i < N; i++) {
        assert_ok(&jobs[i], i);
        cr_assert_str_eq(jobs[i].v0, jobs[0].v0, "write %d in the batch's one transaction", i);
        cr_assert_eq(atoi(jobs[i].v1), i, "write %d got another statement's answer", i);
    }
    spawn_all(later, N);
    run_settled(20);
    for (int i = 0; i < N; i++)
        assert_ok(&later[i], i);
    cr_assert_str_neq(later[0].v0, jobs[0].v0, "a later batch is a transaction of its own");
    cr_assert_eq(qlong("select count(*) from w_one"), 2 * N);
    cr_assert_eq(qlong("select count(distinct k) from w_one"), 2 * N);
    db_stats st = stats(e);
    cr_assert_eq(st.connects, 1, "one write lane (connects %lu)", (unsigned long)st.connects);
    finish(e);
    free(url);
}

/* A migration changes the type of a column the writes return while the API runs: the first write
 * of the next batch meets 0A000 ("cached plan must not change result type") on its prepared
 * statement, before anything executed. That is not its outcome: it is prepared afresh and re-sent,
 * the batch's others after it too, and every write lands exactly once. */
Test(pipe_writes, writes_whose_result_type_changed_are_prepared_afresh_and_land_once)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "wreplan");
    cfg.pipeline_write_conns = 1;
    exec_direct("drop table if exists w_replan; create table w_replan (k int primary key, a int);"
                "insert into w_replan select i, 0 from generate_series(0, 9) i");
    db_engine *e = open_engine(&cfg);
    enum { N = 10 };
    job jobs[N];
    const char *sql = "update w_replan set a = a + 1 where k = $1::int returning a, pg_typeof(a)";
    for (int round = 0; round < 2; round++) {
        if (round == 1)
            exec_direct("alter table w_replan alter column a type bigint");
        for (int i = 0; i < N; i++) {
            char k[16];
            snprintf(k, sizeof k, "%d", i);
            job_set(&jobs[i], e, sql, k, NULL, NULL);
        }
        spawn_all(jobs, N);
        run_settled(20);
        for (int i = 0; i < N; i++) {
            assert_ok(&jobs[i], i);
            cr_assert_eq(atoi(jobs[i].v0), round + 1, "write %d, round %d", i, round);
            cr_assert_str_eq(jobs[i].v1, round ? "bigint" : "integer");
        }
    }
    cr_assert_eq(qlong("select count(*) from w_replan where a = 2"), N, "each write landed once");
    db_stats st = stats(e);
    cr_assert_eq(st.discarded, 0, "the connection was kept");
    finish(e);
    free(url);
}

/* ---- 2. a statement that fails ---- */

Test(pipe_writes, a_failing_write_rolls_back_its_batch_and_fails_alone)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "wfail");
    exec_direct("drop table if exists w_fail; create table w_fail (k int check (k >= 0))");
    db_engine *e = open_engine(&cfg);
    enum { N = 20, NEG = 5, BAD = 9 };
    job jobs[N];
    for (int i = 0; i < N; i++) {
        char k[16];
        snprintf(k, sizeof k, "%d", i == NEG ? -1 : i);
        job_set(&jobs[i], e, "insert into w_fail values ($1::int) returning k",
                i == BAD ? "not a number" : k, NULL, NULL);
    }
    spawn_all(jobs, N);
    run_settled(20);
    for (int i = 0; i < N; i++) {
        if (i == NEG)
            assert_failed(&jobs[i], i, DB_ERR_QUERY, "23514");
        else if (i == BAD)
            assert_failed(&jobs[i], i, DB_ERR_QUERY, "22P02");
        else
            assert_ok(&jobs[i], i);
    }
    /* the writes rolled back with a failing neighbour were re-sent, each landed exactly once */
    cr_assert_eq(qlong("select count(*) from w_fail"), N - 2);
    cr_assert_eq(qlong("select count(distinct k) from w_fail"), N - 2);
    db_stats st = stats(e);
    cr_assert_eq(st.discarded, 0, "a statement's error leaves the connection usable");
    cr_assert_eq(st.connects, 1);
    finish(e);
    free(url);
}

/* A constraint checked at commit (deferred): the batch's commit fails, nothing of it committed.
 * Which statement caused it is unknown, so each is re-sent alone: the duplicate gets the error,
 * the others commit. Their results were not handed out before the commit (they would have
 * reported success for a write that was rolled back). */
Test(pipe_writes, an_error_at_commit_resends_each_write_alone)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "wcommit");
    exec_direct("drop table if exists w_commit; "
                "create table w_commit (k int unique deferrable initially deferred)");
    db_engine *e = open_engine(&cfg);
    enum { N = 4 };
    job jobs[N];
    const char *keys[N] = {"1", "1", "2", "3"};
    for (int i = 0; i < N; i++)
        job_set(&jobs[i], e, "insert into w_commit values ($1::int) returning k", keys[i], NULL,
                NULL);
    spawn_all(jobs, N);
    run_settled(20);
    int failed = 0;
    for (int i = 0; i < N; i++) {
        cr_assert(jobs[i].finished, "write %d never finished", i);
        if (jobs[i].rc == 0)
            continue;
        failed++;
        cr_assert(i < 2, "write %d (a distinct key) failed: %s", i, jobs[i].err.message);
        assert_failed(&jobs[i], i, DB_ERR_QUERY, "23505");
    }
    cr_assert_eq(failed, 1, "one of the two writes of key 1 fails, at its own commit");
    cr_assert_eq(qlong("select count(*) from w_commit"), 3);
    cr_assert_eq(qlong("select count(distinct k) from w_commit"), 3);
    finish(e);
    free(url);
}

/* ---- 3. Idempotency-Key claims (app/idempotency.c's shape: insert ... on conflict do update
 * that raises IK001 when the key is taken, then a read of the stored row) ---- */

#define CLAIM_SQL                                                                                  \
    "insert into w_keys values ($1, $2, $3::int) on conflict (k) do update set h = w_taken() "     \
    "returning v"
#define REPLAY_SQL "select h, v from w_keys where k = $1"

static void keys_table(void)
{
    exec_direct("drop table if exists w_keys; "
                "create table w_keys (k text primary key, h text not null, v int); "
                "create or replace function w_taken() returns text language plpgsql as "
                "$$ begin raise exception 'key taken' using errcode = 'IK001'; end $$");
}

static void claim(job *j, db_engine *e, const char *key, const char *hash, const char *v)
{
    job_set(j, e, CLAIM_SQL, key, hash, v);
    j->replay_sql = REPLAY_SQL;
}

/* A retry in the same batch as its first request would see the first's row in the batch's own
 * transaction, and abort it: it is re-sent alone after the first committed, so it waits and
 * replays as between separate transactions; a different body with the same key sees the other
 * hash (the API's 422). */
Test(pipe_writes, a_retry_with_the_same_key_in_the_same_batch_replays_the_first)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "wkey");
    keys_table();
    db_engine *e = open_engine(&cfg);
    job jobs[4];
    claim(&jobs[0], e, "a", "h1", "1");
    claim(&jobs[1], e, "a", "h1", "2"); /* the retry */
    claim(&jobs[2], e, "a", "h2", "3"); /* same key, another body */
    claim(&jobs[3], e, "b", "h1", "4");
    spawn_all(jobs, 4);
    run_settled(20);
    assert_ok(&jobs[0], 0);
    cr_assert_str_eq(jobs[0].v0, "1");
    assert_ok(&jobs[3], 3);
    assert_failed(&jobs[1], 1, DB_ERR_QUERY, "IK001");
    cr_assert_str_eq(jobs[1].replay0, "h1", "the retry found the first's claim committed");
    cr_assert_str_eq(jobs[1].replay1, "1", "and replays its result");
    assert_failed(&jobs[2], 2, DB_ERR_QUERY, "IK001");
    cr_assert_str_eq(jobs[2].replay0, "h1", "another body sees another hash: 422");
    cr_assert_eq(qlong("select count(*) from w_keys"), 2);
    finish(e);
    free(url);
}

/* The retry on the other lane while the first's batch is still open: it waits on the key's row
 * lock until that batch commits, then replays. */
Test(pipe_writes, a_retry_with_the_same_key_on_another_lane_waits_and_replays)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "wkey2");
    cfg.statement_timeout = 60; /* longer than the gate's fallback */
    keys_table();
    db_engine *e = open_engine(&cfg);
    job first[2], retry;
    static gate g; /* keeps the first's batch open until the retry has been sent */
    gate_shut(&g, 1, 0, 15);
    claim(&first[0], e, "c", "h1", "5");
    job_set(&first[1], e, g.sql, NULL, NULL, NULL);
    claim(&retry, e, "c", "h1", "6");
    spawn_all(first, 2);
    later_jobs l = {&retry, 1};
    when_locked(1, &l, NULL); /* the first's batch is open (at the gate): the retry */
    when_locked(2, NULL, &g); /* the retry waits on the key's row lock: the first commits */
    run_settled(40);
    assert_ok(&first[0], 0);
    assert_ok(&first[1], 1);
    assert_failed(&retry, 0, DB_ERR_QUERY, "IK001");
    /* it replays the first's committed result, so it ran after that commit: the gate opened only
     * once it waited on the key's row lock (when_locked 2). Not which of the two the loop reads
     * first: the server releases the lock before it sends the commit's answer, so the retry's
     * answer may come in on the other lane first (seen on a busy machine). */
    cr_assert_str_eq(retry.replay1, "5", "the retry replays the first's result");
    cr_assert_eq(qlong("select count(*) from w_keys"), 1);
    cr_assert_eq(stats(e).connects, 2, "two write lanes");
    finish(e);
    free(url);
}

/* ---- 4. lanes that lock rows in opposite orders ---- */

Test(pipe_writes, a_deadlock_between_lanes_resends_the_innocent_and_every_write_lands_once)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "wdead");
    exec_direct("drop table if exists w_dl; create table w_dl (id int primary key, v int); "
                "insert into w_dl values (1, 0), (2, 0)");
    db_engine *e = open_engine(&cfg);
    const char *inc = "update w_dl set v = v + 1 where id = $1::int returning v";
    job a[3], b[3];
    job_set(&a[0], e, inc, "1", NULL, NULL);
    job_set(&a[1], e, "select pg_sleep(0.4)", NULL, NULL, NULL);
    job_set(&a[2], e, inc, "2", NULL, NULL);
    job_set(&b[0], e, inc, "2", NULL, NULL);
    job_set(&b[1], e, "select pg_sleep(0.4)", NULL, NULL, NULL);
    job_set(&b[2], e, inc, "1", NULL, NULL);
    spawn_all(a, 3); /* lane 1: row 1, then row 2 */
    later_jobs l = {b, 3};
    spawn_after(&l, 0.1); /* lane 2: row 2, then row 1 */
    run_settled(30);
    for (int i = 0; i < 3; i++) {
        assert_ok(&a[i], i);
        assert_ok(&b[i], 3 + i);
    }
    cr_assert_eq(qlong("select v from w_dl where id = 1"), 2, "each increment landed once");
    cr_assert_eq(qlong("select v from w_dl where id = 2"), 2, "each increment landed once");
    finish(e);
    free(url);
}

/* ---- 5. statement timeout ---- */

Test(pipe_writes, statement_timeout_cancels_the_slow_write_and_the_rest_commit_once)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "wstmt");
    cfg.statement_timeout = 0.3;
    exec_direct("drop table if exists w_to; create table w_to (k int)");
    db_engine *e = open_engine(&cfg);
    enum { N = 9, SLOW = 3 };
    job jobs[N];
    for (int i = 0; i < N; i++) {
        char k[16];
        snprintf(k, sizeof k, "%d", i);
        if (i == SLOW)
            job_set(&jobs[i], e, "select pg_sleep(5)", NULL, NULL, NULL);
        else
            job_set(&jobs[i], e, "insert into w_to values ($1::int)", k, NULL, NULL);
    }
    spawn_all(jobs, N);
    run_settled(20);
    assert_failed(&jobs[SLOW], SLOW, DB_ERR_STATEMENT_TIMEOUT, "57014");
    pgtest_assert_within(jobs[SLOW].ms, 300, "the slow write's cancel");
    for (int i = 0; i < N; i++)
        if (i != SLOW)
            assert_ok(&jobs[i], i);
    cr_assert_eq(qlong("select count(*) from w_to"), N - 1);
    cr_assert_eq(qlong("select count(distinct k) from w_to"), N - 1);
    cr_assert_eq(stats(e).discarded, 0, "the cancel left the connection usable");
    finish(e);
    free(url);
}

/* ---- 6. a lost connection ---- */

/* The writes of a batch whose connection dies may or may not have committed (here they did not:
 * the backend died mid-transaction): none is re-sent, each fails with UNKNOWN_OUTCOME. */
Test(pipe_writes, writes_of_a_batch_whose_connection_dies_fail_and_are_never_resent)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "wlost");
    exec_direct("drop table if exists w_lost; create table w_lost (k int)");
    db_engine *e = open_engine(&cfg);
    char sql[128];
    snprintf(sql, sizeof sql, "select pg_sleep(1), 'mark-%s'", app);
    pgtest_killer_arg k = {.marker = strchr(sql, 'm')};
    enum { N = 7, VICTIM = 3 };
    job jobs[N];
    for (int i = 0; i < N; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        if (i == VICTIM)
            job_set(&jobs[i], e, sql, NULL, NULL, NULL);
        else
            job_set(&jobs[i], e, "insert into w_lost values ($1::int)", v, NULL, NULL);
    }
    pthread_t t;
    pthread_create(&t, NULL, pgtest_killer, &k);
    spawn_all(jobs, N);
    run_settled(20);
    pthread_join(t, NULL);
    cr_assert(k.killed, "the batch's backend was terminated");
    for (int i = 0; i < N; i++) {
        cr_assert(jobs[i].finished, "write %d never finished", i);
        cr_assert_eq(jobs[i].rc, -1, "write %d succeeded on a lost connection", i);
        cr_assert_eq(jobs[i].err.kind, DB_ERR_UNKNOWN_OUTCOME, "write %d: %s: %s", i,
                     db_errkind_name(jobs[i].err.kind), jobs[i].err.message);
        cr_assert(strstr(jobs[i].err.hint, "may or may not"), "write %d: hint %s", i,
                  jobs[i].err.hint);
    }
    cr_assert_eq(qlong("select count(*) from w_lost"), 0, "nothing re-sent");
    /* the lane works again on a new connection */
    job after;
    job_set(&after, e, "insert into w_lost values (100) returning k", NULL, NULL, NULL);
    spawn_all(&after, 1);
    run_settled(20);
    assert_ok(&after, 0);
    cr_assert_eq(qlong("select count(*) from w_lost"), 1);
    finish(e);
    free(url);
}

/* ---- 7. a row lock ---- */

/* The test holds a row lock on its gate's connection (coro_loop.h): the gate's opening (the
 * connection closes) releases the row too. */
static void gate_lock_row(gate *g, const char *table)
{
    char sql[128];
    snprintf(sql, sizeof sql, "begin; select id from %s where id = 1 for update", table);
    free(pgtest_query(g->holder, sql));
}

/* A write waiting on a row lock holds up its own lane only: a write on another row takes the other
 * lane, reads their own, and both answer at once; the waiting write commits once the lock goes. */
Test(pipe_writes, a_write_waiting_on_a_row_lock_holds_up_only_its_lane)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "wlock");
    cfg.statement_timeout = 60; /* longer than the gate's fallback */
    exec_direct("drop table if exists w_lock; create table w_lock (id int primary key, v int); "
                "insert into w_lock values (1, 0), (2, 0)");
    db_engine *e = open_engine(&cfg);
    static gate g; /* the row lock goes when the two others have finished */
    gate_shut(&g, 1, 2, 15);
    gate_lock_row(&g, "w_lock");
    const char *inc = "update w_lock set v = v + 1 where id = $1::int returning v";
    job waits, others[2];
    job_set(&waits, e, inc, "1", NULL, NULL);
    job_set(&others[0], e, inc, "2", NULL, NULL);
    job_set(&others[1], e, "select 7", NULL, NULL, NULL);
    others[1].access = DB_READ_ONLY;
    others[0].opens = others[1].opens = &g;
    spawn_all(&waits, 1);
    later_jobs l = {others, 2};
    when_locked(1, &l, NULL); /* once the write waits on the lock */
    run_settled(40);
    assert_ok(&others[0], 0);
    assert_ok(&others[1], 1);
    assert_gate_opened_by_jobs(&g, "the write on another row and the read");
    assert_ok(&waits, 2);
    cr_assert_gt(waits.seq, others[0].seq, "the locked write waited for the lock");
    cr_assert_gt(waits.seq, others[1].seq, "the locked write waited for the lock");
    cr_assert_eq(qlong("select sum(v) from w_lock"), 2);
    finish(e);
    free(url);
}

/* Both lanes busy, one of them stuck on a row lock: a new write queues behind the lane that is
 * moving, not behind the stuck one (whose batch left first). */
Test(pipe_writes, with_both_lanes_busy_a_write_avoids_the_one_stuck_on_a_lock)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "wstuck");
    cfg.statement_timeout = 60; /* longer than the gate's fallback */
    exec_direct("drop table if exists w_stuck; create table w_stuck (id int primary key, v int); "
                "insert into w_stuck values (1, 0), (2, 0)");
    db_engine *e = open_engine(&cfg);
    static gate g; /* the row lock goes when the late write has finished */
    gate_shut(&g, 1, 1, 15);
    gate_lock_row(&g, "w_stuck");
    const char *inc = "update w_stuck set v = v + 1 where id = $1::int returning v";
    job waits, busy, late;
    job_set(&waits, e, inc, "1", NULL, NULL);
    static gate busy_gate; /* lane 2's batch is in flight until the late write is queued */
    gate_shut(&busy_gate, 2, 0, 15);
    job_set(&busy, e, busy_gate.sql, NULL, NULL, NULL);
    job_set(&late, e, inc, "2", NULL, NULL);
    late.opens = &g;
    spawn_all(&waits, 1); /* lane 1, stuck */
    later_jobs l1 = {&busy, 1}, l2 = {&late, 1};
    when_locked(1, &l1, NULL);       /* lane 2, busy at its gate */
    when_locked(2, &l2, &busy_gate); /* both busy (and connected): the late write, then lane
                                        2 moves on */
    run_settled(40);
    assert_ok(&busy, 0);
    assert_ok(&late, 1);
    assert_gate_opened_by_jobs(&g, "the late write (queued behind the lock?)");
    assert_ok(&waits, 2);
    cr_assert_gt(late.seq, busy.seq, "the late write was answered behind lane 2's batch");
    cr_assert_gt(waits.seq, late.seq, "the locked write waited for the lock");
    cr_assert_eq(qlong("select sum(v) from w_stuck"), 2);
    finish(e);
    free(url);
}

/* DB_POOL_MAX reached: a lane waiting for a connection takes no new writes while another lane has
 * one; they queue behind its batch instead of waiting (and timing out) with the starved lane. */
Test(pipe_writes, a_lane_waiting_for_a_pool_connection_takes_no_new_writes)
{
    char *url = pgtest_app_url(), app[64];
    db_config cfg;
    setup(&cfg, url, app, "wstarve");
    cfg.pool_max = 1;
    /* long enough that `behind`, spawned 0.2 s into starved's wait, finds it still waiting */
    cfg.acquire_timeout = 1 + pgtest_slack_ms() / 1000;
    cfg.statement_timeout = 60;
    db_engine *e = open_engine(&cfg);
    job slow, starved, behind;
    static gate g; /* slow holds the only connection until starved gave up */
    gate_shut(&g, 1, 1, 30);
    job_set(&slow, e, g.sql, NULL, NULL, NULL);
    job_set(&starved, e, "select 1", NULL, NULL, NULL);
    starved.opens = &g;
    job_set(&behind, e, "select 2", NULL, NULL, NULL);
    spawn_all(&slow, 1); /* lane 1 holds the only connection */
    later_jobs l1 = {&starved, 1}, l2 = {&behind, 1};
    spawn_after(&l1, 0.2); /* lane 2: waits for a connection, then gives up */
    spawn_after(&l2, 0.4); /* joins lane 1's pipeline, not lane 2's wait */
    run_settled(60);
    assert_ok(&slow, 0);
    assert_failed(&starved, 1, DB_ERR_POOL_TIMEOUT, "");
    assert_gate_opened_by_jobs(&g, "the starved write");
    assert_ok(&behind, 2);
    cr_assert_str_eq(behind.v0, "2");
    finish(e);
    free(url);
}
