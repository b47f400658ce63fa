/* coro_loop: the test thread's libevent loop with coroutines on it, the way the API's loops run
 * them, for the suites whose sessions run in coroutines (test_pipe.c, test_pipe_writes.c). Each
 * suite defines its own `job` and spawn_all() (coro_spawn; L->pending counts the unfinished
 * ones), and spawn_after() here spawns some of them later; open_engine() opens the engine and this
 * loop, run_settled() runs it until every job finished and no pool connection is borrowed, finish()
 * closes both. Include after engine_support.h. */
#ifndef TESTS_DB_CORO_LOOP_H
#define TESTS_DB_CORO_LOOP_H

#include <event2/event.h>
#include <event2/thread.h>

#include "core/coro.h"

typedef struct loop {
    struct event_base *base;
    db_engine *e;
    int pending; /* jobs spawned and not finished */
    double deadline;
    struct event *tick;
    int finished; /* jobs finished so far: a job's `seq` is this count when it finished */
} loop;

static _Thread_local loop *L;

static inline int in_use(db_engine *e)
{
    db_stats st;
    db_engine_stats(e, &st);
    return st.in_use;
}

static inline void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    loop *l = arg;
    /* settled: every job finished and the pipeline gave its connection back */
    if ((l->pending == 0 && in_use(l->e) == 0) || coro_now() > l->deadline)
        event_base_loopbreak(l->base);
}

/* Makes a loop on the calling thread the coroutines' scheduler. evthread_use_pthreads() must
 * have been called (open_engine does). Returns 0 or -1. */
static inline int loop_open(loop *l, db_engine *e)
{
    memset(l, 0, sizeof *l);
    l->e = e;
    l->base = event_base_new();
    if (!l->base || coro_thread_init(l->base) < 0)
        return -1;
    l->tick = event_new(l->base, -1, EV_PERSIST, on_tick, l);
    struct timeval tv = {0, 5000};
    if (!l->tick || event_add(l->tick, &tv) < 0)
        return -1;
    L = l;
    return 0;
}

static inline void loop_close(loop *l)
{
    coro_thread_free();
    event_free(l->tick);
    event_base_free(l->base);
    L = NULL;
}

/* Runs the loop until every job finished and no pool connection is borrowed, or `seconds`
 * passed. Returns 0 when settled, -1 on the deadline. */
static inline int loop_run(double seconds)
{
    L->deadline = coro_now() + seconds;
    event_base_dispatch(L->base);
    return L->pending == 0 && in_use(L->e) == 0 ? 0 : -1;
}

/* The test thread's loop. */
static loop main_loop;

static inline db_engine *open_engine(const db_config *cfg)
{
    db_error err;
    db_engine *e = db_engine_open(cfg, &err);
    cr_assert_not_null(e, "%s", err.message);
    evthread_use_pthreads();
    cr_assert_eq(loop_open(&main_loop, e), 0, "event loop and coroutines");
    return e;
}

static inline void finish(db_engine *e)
{
    loop_close(&main_loop);
    coro_offload_shutdown();
    db_engine_close(e);
}

static inline void run_settled(double seconds)
{
    int rc = loop_run(seconds);
    cr_assert_eq(rc, 0,
                 "the loop did not settle within %g s: %d job(s) unfinished, %d connection(s) "
                 "still borrowed",
                 seconds, L->pending, in_use(L->e));
}

static inline db_stats stats(db_engine *e)
{
    db_stats st;
    db_engine_stats(e, &st);
    return st;
}

/* Jobs spawned later, from the loop: each suite defines spawn_all(jobs, n) for its own job type
 * (an array of n). */
static void spawn_all(void *jobs, int n);

typedef struct {
    void *jobs;
    int n;
} later_jobs;

static inline void spawn_later_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    later_jobs *l = arg;
    spawn_all(l->jobs, l->n);
}

/* Spawns l's jobs after `seconds`: once the batch of those spawned now has left (its lane is
 * then no longer gathering, so these take another lane). */
static inline void spawn_after(later_jobs *l, double seconds)
{
    struct timeval tv = {0, (suseconds_t)(seconds * 1e6)};
    cr_assert_eq(event_base_once(L->base, -1, EV_TIMEOUT, spawn_later_cb, l, &tv), 0);
}

/* ---- gates: ordering instead of time ----
 *
 * "X did not wait for Y" is shown by ordering, not by a time, so that it holds on a machine of any
 * speed: Y runs gate_sql(), which blocks in the server on an advisory lock the test holds on a
 * direct connection of its own; the gate opens (the test's connection closes, the lock goes) when
 * X finished (gate_open from X's completion, see gate.left), so Y cannot finish before X. Were X
 * held up behind Y, the gate would open only by its fallback timer, and gate.by_fallback says so:
 * the test fails, after `fallback` seconds instead of hanging. Statements waiting at a gate need a
 * statement_timeout longer than the fallback. */
typedef struct gate {
    PGconn *holder; /* holds the lock while the gate is shut */
    long long key;
    bool open, by_fallback;
    int left;      /* finishing jobs that open it (the suite's job_done counts them down) */
    int opened_at; /* L->finished when it opened: jobs with seq <= opened_at finished before */
    char sql[96];  /* the statement that waits at the gate (and returns pg_backend_pid()) */
} gate;

static inline void gate_open(gate *g)
{
    if (g->open)
        return;
    g->open = true;
    g->opened_at = L->finished;
    PQfinish(g->holder); /* its session ends: the lock is released */
    g->holder = NULL;
}

static inline void gate_fallback_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    gate *g = arg;
    if (!g->open) {
        g->by_fallback = true;
        gate_open(g);
    }
}

/* Shuts g (gate number n of the test, 0..15): takes the lock; opens by itself after `fallback`
 * seconds. left = the number of jobs whose completion opens it (0: the test opens it). */
static inline void gate_shut(gate *g, int n, int left, double fallback)
{
    memset(g, 0, sizeof *g);
    g->key = 0x7e570000LL * 16 + (long long)getpid() * 16 + n;
    g->left = left;
    snprintf(g->sql, sizeof g->sql, "select pg_advisory_xact_lock_shared(%lld), pg_backend_pid()",
             g->key);
    g->holder = pgtest_connect();
    char lock[64];
    snprintf(lock, sizeof lock, "select pg_advisory_lock(%lld)", g->key);
    PGresult *r = PQexec(g->holder, lock);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "gate: %s", PQerrorMessage(g->holder));
    PQclear(r);
    struct timeval tv = {(time_t)fallback, 0};
    cr_assert_eq(event_base_once(L->base, -1, EV_TIMEOUT, gate_fallback_cb, g, &tv), 0);
}

/* One of the jobs that open g finished (call from the suite's job_done). */
static inline void gate_count_down(gate *g)
{
    if (g && --g->left == 0)
        gate_open(g);
}

/* Asserts that g was opened by the jobs it waited for, not by its fallback timer. */
#define assert_gate_opened_by_jobs(g, what)                                                        \
    cr_assert(!(g)->by_fallback, "%s: still waiting after the gate's fallback (%s)", (what),       \
              "held up behind the statement at the gate")

/* Opens g from the loop after `seconds` (the test's own schedule, not an assertion). */
static inline void gate_open_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    gate_open(arg);
}

static inline void gate_open_after(gate *g, double seconds)
{
    struct timeval tv = {0, (suseconds_t)(seconds * 1e6)};
    cr_assert_eq(event_base_once(L->base, -1, EV_TIMEOUT, gate_open_cb, g, &tv), 0);
}

/* ---- acting once statements wait on a lock ----
 *
 * when_locked(n, l, g): once `n` statements of this suite's database wait on a lock (a gate or a
 * row lock; pg_stat_activity, polled from the loop every 10 ms), spawns l's jobs (if l) and then
 * opens g (if g). So "a read sent while a batch is in flight" is sent while that batch provably
 * is in flight, however slow the machine. */
typedef struct when_locked_arg {
    int n;
    later_jobs *l;
    gate *g;
    PGconn *c;
} when_locked_arg;

static inline void when_locked_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    when_locked_arg *w = arg;
    PGresult *r = PQexec(w->c, "select count(*) from pg_stat_activity where wait_event_type = "
                               "'Lock' and datname = current_database()");
    int waiting = PQresultStatus(r) == PGRES_TUPLES_OK ? atoi(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    if (waiting < w->n && PQstatus(w->c) == CONNECTION_OK) {
        struct timeval tv = {0, 10000};
        event_base_once(L->base, -1, EV_TIMEOUT, when_locked_cb, w, &tv);
        return;
    }
    PQfinish(w->c);
    if (w->l)
        spawn_all(w->l->jobs, w->l->n);
    if (w->g)
        gate_open(w->g);
    free(w);
}

static inline void when_locked(int n, later_jobs *l, gate *g)
{
    when_locked_arg *w = calloc(1, sizeof *w);
    cr_assert_not_null(w);
    *w = (when_locked_arg){.n = n, .l = l, .g = g, .c = pgtest_connect()};
    struct timeval tv = {0, 10000};
    cr_assert_eq(event_base_once(L->base, -1, EV_TIMEOUT, when_locked_cb, w, &tv), 0);
}

#endif
