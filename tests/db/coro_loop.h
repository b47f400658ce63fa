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

#endif
