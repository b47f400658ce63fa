/* coro: coroutines on a libevent loop. Spawning and `done`, stack reuse, the waits (fd, parker,
 * offload, suspend/wake) yielding inside a coroutine and blocking outside one, parkers woken from
 * another thread, coro_spawn_later, and the log request id following each coroutine.
 *
 * Every loop run is bounded (run_until fails the test after 5 s), and every wait has a deadline, so
 * a bug fails a test instead of hanging it. Assertions that abort stay on the test's own stack:
 * coroutines only record what they saw. */
#include <criterion/criterion.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/coro.h"
#include "core/log.h"

static struct event_base *base;
static struct event *guard;
static bool guard_fired;
static int finished, expected;
static pthread_t loop_thread;

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
    guard_fired = true;
    event_base_loopbreak(base);
}

static void setup(void)
{
    /* before the base exists: coro_unpark from other threads needs a locked, notifiable base */
    cr_assert_eq(evthread_use_pthreads(), 0);
    base = event_base_new();
    cr_assert_not_null(base);
    cr_assert_eq(coro_thread_init(base), 0);
    guard = evtimer_new(base, on_guard, NULL);
    cr_assert_not_null(guard);
    loop_thread = pthread_self();
    log_set_request_id(NULL);
}

static void teardown(void)
{
    coro_thread_free();
    event_free(guard);
    event_base_free(base);
    libevent_global_shutdown();
}

TestSuite(coro, .init = setup, .fini = teardown, .timeout = 10);

/* A `done` that counts finished coroutines and stops the loop when `expected` have finished. */
static bool done_on_coro;
static void count_done(void *arg)
{
    if (coro_active() || coro_self())
        done_on_coro = true;
    if (++finished >= expected)
        event_base_loopbreak(base);
}

/* Runs the loop until `want` coroutines have finished in all, 5 s at most (then fails). The loop
 * does not exit when empty: a parked coroutine has no pending event until it is unparked. */
static void run_until(int want)
{
    expected = want;
    if (finished < want) {
        struct timeval five = {5, 0};
        evtimer_add(guard, &five);
        event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
        evtimer_del(guard);
    }
    cr_assert_not(guard_fired, "only %d of %d coroutines finished within 5 s", finished, want);
    cr_assert_eq(finished, want);
    cr_assert_not(done_on_coro, "done ran inside a coroutine");
}

/* Runs cb(arg) on the loop after `ms` milliseconds. */
static void after_ms(int ms, void (*cb)(evutil_socket_t, short, void *), void *arg)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    cr_assert_eq(event_base_once(base, -1, EV_TIMEOUT, cb, arg, &tv), 0);
}

static void sockpair(int sv[2])
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

static void closepair(int sv[2])
{
    close(sv[0]);
    close(sv[1]);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
    cr_assert_eq(pthread_create(t, NULL, fn, arg), 0);
}

/* --- coro_spawn, done, stacks --- */

static struct {
    int step;
    bool active_in_fn;
    coro *self;
    int done_calls, step_at_done;
    bool active_in_done;
    coro *self_in_done;
} sp;

static void fn_two_steps(void *arg)
{
    sp.active_in_fn = coro_active();
    sp.self = coro_self();
    sp.step = 1;
    coro_suspend();
    sp.step = 2;
}

static void done_two_steps(void *arg)
{
    sp.done_calls++;
    sp.step_at_done = sp.step;
    sp.active_in_done = coro_active();
    sp.self_in_done = coro_self();
    count_done(arg);
}

Test(coro, spawn_runs_fn_until_its_first_wait_and_done_after_it_on_the_loop_stack)
{
    cr_assert_not(coro_active());
    cr_assert_null(coro_self());
    cr_assert_eq(coro_spawn(fn_two_steps, done_two_steps, NULL), 0);
    cr_assert_eq(sp.step, 1, "fn ran at once, up to its first wait");
    cr_assert(sp.active_in_fn, "fn runs in a coroutine");
    cr_assert_not_null(sp.self);
    cr_assert_eq(sp.done_calls, 0, "done waits until fn has returned");
    cr_assert_not(coro_active(), "back on the loop's stack after the wait");
    cr_assert_null(coro_self());

    coro_wake(sp.self);
    cr_assert_eq(sp.step, 1, "coro_wake makes it runnable, it does not run it");
    run_until(1);
    cr_assert_eq(sp.step, 2);
    cr_assert_eq(sp.done_calls, 1);
    cr_assert_eq(sp.step_at_done, 2, "done ran after fn returned");
    cr_assert_not(sp.active_in_done, "done runs on the loop's stack");
    cr_assert_null(sp.self_in_done);
}

static int quick_runs;
static void fn_quick(void *arg)
{
    quick_runs++;
}

Test(coro, spawn_of_a_fn_that_never_waits_runs_fn_and_done_inside_the_call)
{
    cr_assert_eq(coro_spawn(fn_quick, count_done, NULL), 0);
    cr_assert_eq(quick_runs, 1);
    cr_assert_eq(finished, 1, "done already ran");
    cr_assert_eq(coro_spawn(fn_quick, NULL, NULL), 0, "done may be NULL");
    cr_assert_eq(quick_runs, 2);
    cr_assert_not(done_on_coro);
}

#define SEQUENTIAL 1000
static struct {
    int ready[2];
    coro *seen[SEQUENTIAL];
    int n, ready_results;
    bool spawn_failed;
} seq;

static void fn_wait_readable(void *arg)
{
    seq.seen[seq.n++] = coro_self();
    /* a byte is always pending: the wait yields to the loop and comes back at its next turn */
    if (coro_wait_fd(seq.ready[0], false, coro_now() + 5) == 1)
        seq.ready_results++;
}

static void done_spawn_next(void *arg)
{
    count_done(arg);
    if (seq.n < SEQUENTIAL && coro_spawn(fn_wait_readable, done_spawn_next, NULL) < 0)
        seq.spawn_failed = true;
}

Test(coro, a_finished_coroutine_is_reused_by_the_next_spawn)
{
    sockpair(seq.ready);
    cr_assert_eq(write(seq.ready[1], "x", 1), 1);
    /* each coroutine yields once; its `done` spawns the next one, 1000 in a row */
    cr_assert_eq(coro_spawn(fn_wait_readable, done_spawn_next, NULL), 0);
    run_until(SEQUENTIAL);
    cr_assert_not(seq.spawn_failed);
    cr_assert_eq(seq.n, SEQUENTIAL);
    cr_assert_eq(seq.ready_results, SEQUENTIAL, "every wait saw the fd readable");
    for (int i = 1; i < SEQUENTIAL; i++)
        cr_assert_eq(seq.seen[i], seq.seen[0], "spawn %d got a new coroutine instead of reusing",
                     i);
    closepair(seq.ready);
}

#define BATCH 20
static void fn_record_self_and_suspend(void *arg)
{
    *(coro **)arg = coro_self();
    coro_suspend();
}

Test(coro, concurrent_coroutines_have_their_own_stacks_that_later_spawns_reuse)
{
    coro *first[BATCH] = {0}, *second[BATCH] = {0};
    for (int i = 0; i < BATCH; i++)
        cr_assert_eq(coro_spawn(fn_record_self_and_suspend, count_done, &first[i]), 0);
    for (int i = 0; i < BATCH; i++)
        for (int j = 0; j < i; j++)
            cr_assert_neq(first[i], first[j], "two suspended coroutines share one");
    for (int i = 0; i < BATCH; i++)
        coro_wake(first[i]);
    run_until(BATCH);

    for (int i = 0; i < BATCH; i++)
        cr_assert_eq(coro_spawn(fn_record_self_and_suspend, count_done, &second[i]), 0);
    for (int i = 0; i < BATCH; i++) {
        bool reused = false;
        for (int j = 0; j < BATCH; j++)
            reused |= second[i] == first[j];
        cr_assert(reused, "spawn %d allocated a new stack while %d idle ones were kept", i, BATCH);
        for (int j = 0; j < i; j++)
            cr_assert_neq(second[i], second[j]);
    }
    for (int i = 0; i < BATCH; i++)
        coro_wake(second[i]);
    run_until(2 * BATCH);
}

/* --- coro_wait_fd --- */

static struct {
    int pair[2];
    int result;
    bool saw_timer, other_ran, result_before_other;
    char byte;
    double waited;
} wf;

static void fn_wait_pair(void *arg)
{
    double t0 = coro_now();
    wf.result = coro_wait_fd(wf.pair[0], false, t0 + 5);
    wf.waited = coro_now() - t0;
    wf.saw_timer = *(bool *)arg;
    if (read(wf.pair[0], &wf.byte, 1) != 1)
        wf.byte = 0;
}

static void fn_other(void *arg)
{
    wf.result_before_other = wf.result != -2;
    wf.other_ran = true;
}

static bool timer_fired;
static void on_timer_write(evutil_socket_t fd, short what, void *arg)
{
    timer_fired = true;
    cr_expect_eq(write(wf.pair[1], "k", 1), 1);
}

Test(coro, wait_fd_yields_to_the_loop_until_the_fd_is_readable)
{
    sockpair(wf.pair);
    wf.result = -2;
    cr_assert_eq(coro_spawn(fn_wait_pair, count_done, &timer_fired), 0);
    cr_assert_eq(wf.result, -2, "the coroutine is waiting, and coro_spawn returned");
    /* meanwhile the loop's thread runs other coroutines and events */
    cr_assert_eq(coro_spawn(fn_other, count_done, NULL), 0);
    cr_assert(wf.other_ran);
    cr_assert_not(wf.result_before_other);
    after_ms(20, on_timer_write, NULL);
    run_until(2);
    cr_assert_eq(wf.result, 1);
    cr_assert(wf.saw_timer, "woken by the byte the loop's timer wrote");
    cr_assert_eq(wf.byte, 'k');
    cr_assert_lt(wf.waited, 4.0, "readiness woke it, not its deadline");
    closepair(wf.pair);
}

static struct {
    int pair[2];
    int timed_out, writable, past;
    double waited;
} wd;

static void fn_wait_deadlines(void *arg)
{
    double t0 = coro_now();
    wd.timed_out = coro_wait_fd(wd.pair[0], false, t0 + 0.05);
    wd.waited = coro_now() - t0;
    wd.writable = coro_wait_fd(wd.pair[0], true, coro_now() + 5);
    wd.past = coro_wait_fd(wd.pair[0], false, coro_now() - 1);
}

Test(coro, wait_fd_in_a_coroutine_returns_0_at_its_deadline)
{
    sockpair(wd.pair);
    wd.timed_out = wd.writable = wd.past = -2;
    cr_assert_eq(coro_spawn(fn_wait_deadlines, count_done, NULL), 0);
    cr_assert_eq(wd.timed_out, -2, "waiting for its deadline on the loop");
    run_until(1);
    cr_assert_eq(wd.timed_out, 0);
    cr_assert_geq(wd.waited, 0.045, "returned after %.3f s, before its deadline", wd.waited);
    cr_assert_lt(wd.waited, 4.0);
    cr_assert_eq(wd.writable, 1, "an empty socket is writable at once");
    cr_assert_eq(wd.past, 0, "a deadline already past times out");
    closepair(wd.pair);
}

static struct {
    int pair[2];
    int fd_r, park_r;
    double fd_waited, park_waited;
    bool finished;
    int spins;
} busy;

static void fn_work_then_wait(void *arg)
{
    /* a first wait, so that what follows runs in a loop callback, where libevent caches the
     * time its iteration began */
    coro_wait_fd(busy.pair[0], true, coro_now() + 5);
    sleep_ms(200); /* 200 ms of work on the loop's thread */
    double t0 = coro_now();
    busy.fd_r = coro_wait_fd(busy.pair[0], false, t0 + 0.1);
    busy.fd_waited = coro_now() - t0;

    sleep_ms(200);
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    coro_parker p;
    coro_parker_init(&p);
    pthread_mutex_lock(&m);
    t0 = coro_now();
    busy.park_r = coro_park(&p, &m, t0 + 0.1);
    busy.park_waited = coro_now() - t0;
    pthread_mutex_unlock(&m);
    coro_parker_destroy(&p);
    busy.finished = true;
}

/* Other requests keep the loop turning (each turn re-reads the clock). */
static void fn_keep_loop_busy(void *arg)
{
    while (!busy.finished && coro_wait_fd(busy.pair[1], true, coro_now() + 5) == 1)
        busy.spins++;
}

Test(coro, a_deadline_counts_from_the_wait_not_from_the_start_of_the_loop_iteration)
{
    sockpair(busy.pair);
    busy.fd_r = busy.park_r = -2;
    cr_assert_eq(coro_spawn(fn_work_then_wait, count_done, NULL), 0);
    cr_assert_eq(coro_spawn(fn_keep_loop_busy, count_done, NULL), 0);
    run_until(2);
    cr_assert_gt(busy.spins, 2);
    cr_assert_eq(busy.fd_r, 0);
    cr_assert_geq(busy.fd_waited, 0.095, "a 100 ms wait_fd ended after %.3f s", busy.fd_waited);
    cr_assert_eq(busy.park_r, 1);
    cr_assert_geq(busy.park_waited, 0.095, "a 100 ms park ended after %.3f s", busy.park_waited);
    closepair(busy.pair);
}

/* Outside a coroutine: the same waits block in poll(). Returns NULL or what went wrong (no
 * assertions: it also runs on a thread of its own). */
static const char *blocking_waits(int sv[2])
{
    double t0 = coro_now();
    if (coro_wait_fd(sv[0], false, t0 + 0.05) != 0)
        return "an empty socket's wait did not time out";
    double waited = coro_now() - t0;
    if (waited < 0.045 || waited > 4.0)
        return "a 50 ms wait did not last 50 ms";
    if (coro_wait_fd(sv[0], true, coro_now() + 5) != 1)
        return "an empty socket is not writable";
    if (coro_wait_fd(sv[0], false, coro_now() - 1) != 0)
        return "a deadline already past did not time out";
    if (write(sv[1], "z", 1) != 1)
        return "write";
    if (coro_wait_fd(sv[0], false, coro_now() + 5) != 1)
        return "a socket with a byte pending is not readable";
    if (coro_wait_fd(sv[0], false, 0) != 1)
        return "no deadline, already readable: not 1";
    char c;
    if (read(sv[0], &c, 1) != 1)
        return "read";
    return NULL;
}

static void *writer_after_50ms(void *arg)
{
    sleep_ms(50);
    return write(*(int *)arg, "w", 1) == 1 ? NULL : "write";
}

static void *thread_blocking_waits(void *arg)
{
    if (coro_active())
        return "coro_active() on a thread without a scheduler";
    return (void *)blocking_waits(arg);
}

Test(coro, wait_fd_outside_a_coroutine_polls_with_the_same_results)
{
    int sv[2];
    sockpair(sv);
    const char *failed = blocking_waits(sv); /* the loop's thread, on its own stack */
    cr_assert_null(failed, "on the loop's thread: %s", failed);

    pthread_t t; /* a thread without a scheduler */
    start_thread(&t, thread_blocking_waits, sv);
    void *out;
    pthread_join(t, &out);
    cr_assert_null(out, "on another thread: %s", (const char *)out);

    /* blocks until another thread writes */
    start_thread(&t, writer_after_50ms, &sv[1]);
    double t0 = coro_now();
    cr_assert_eq(coro_wait_fd(sv[0], false, t0 + 5), 1);
    cr_assert_lt(coro_now() - t0, 4.0);
    pthread_join(t, &out);
    cr_assert_null(out);
    closepair(sv);
}

static struct {
    int fd;
    int result, err;
} bad;

static void fn_wait_bad_fd(void *arg)
{
    errno = 0;
    bad.result = coro_wait_fd(bad.fd, false, coro_now() + 0.2);
    bad.err = errno;
}

Test(coro, wait_fd_on_a_closed_fd_returns_minus_1_in_and_outside_a_coroutine)
{
    int sv[2];
    sockpair(sv);
    bad.fd = sv[0];
    closepair(sv); /* bad.fd now names no open file */
    bad.result = -2;
    cr_assert_eq(coro_spawn(fn_wait_bad_fd, count_done, NULL), 0);
    run_until(1);
    cr_assert_eq(bad.result, -1);
    cr_assert_eq(bad.err, EBADF);

    errno = 0;
    cr_assert_eq(coro_wait_fd(bad.fd, false, coro_now() + 0.2), -1);
    cr_assert_eq(errno, EBADF);
}

/* --- coro_park / coro_unpark --- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static coro_parker pk;

static struct {
    bool flag;
    int result;
    bool relocked, resumed_on_loop;
    coro *parked_co;
    pthread_t unparker;
} pr;

static void fn_park_until_flag(void *arg)
{
    double deadline = coro_now() + 5;
    pthread_mutex_lock(&mu);
    int r = 0;
    while (!pr.flag && (r = coro_park(&pk, &mu, deadline)) == 0)
        ;
    pr.result = r;
    pr.relocked = pthread_mutex_trylock(&mu) == EBUSY;
    pr.parked_co = pk.co;
    pr.resumed_on_loop = pthread_equal(pthread_self(), loop_thread);
    pthread_mutex_unlock(&mu);
}

static void fn_set_flag_and_unpark(void *arg)
{
    pthread_mutex_lock(&mu);
    pr.flag = true;
    coro_unpark(&pk);
    pthread_mutex_unlock(&mu);
}

Test(coro, park_is_woken_by_an_unpark_from_another_coroutine)
{
    coro_parker_init(&pk);
    pr.result = -2;
    cr_assert_eq(coro_spawn(fn_park_until_flag, count_done, NULL), 0);
    pthread_mutex_lock(&mu);
    cr_assert_not_null(pk.co, "the coroutine is parked");
    pthread_mutex_unlock(&mu);
    cr_assert_eq(coro_spawn(fn_set_flag_and_unpark, count_done, NULL), 0);
    cr_assert_eq(pr.result, -2, "resumed by the loop, not inside coro_unpark");
    run_until(2);
    cr_assert_eq(pr.result, 0);
    cr_assert(pr.relocked, "coro_park returns with the mutex locked again");
    cr_assert_null(pr.parked_co, "the parker forgets the coroutine once it returned");
    coro_parker_destroy(&pk);
}

static void *thread_set_flag_and_unpark(void *arg)
{
    pthread_mutex_lock(&mu);
    pr.unparker = pthread_self();
    pr.flag = true;
    coro_unpark(&pk);
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void *thread_unpark_after_50ms(void *arg)
{
    sleep_ms(50);
    return thread_set_flag_and_unpark(arg);
}

Test(coro, park_is_woken_by_an_unpark_from_another_thread)
{
    coro_parker_init(&pk);
    pr.result = -2;
    cr_assert_eq(coro_spawn(fn_park_until_flag, count_done, NULL), 0);
    cr_assert_not_null(pk.co);
    pthread_t t; /* unparks 50 ms later: the loop's thread sleeps in epoll_wait by then */
    start_thread(&t, thread_unpark_after_50ms, NULL);
    run_until(1);
    pthread_join(t, NULL);
    cr_assert_eq(pr.result, 0);
    cr_assert(pr.flag);
    cr_assert_not(pthread_equal(pr.unparker, loop_thread));
    cr_assert(pr.resumed_on_loop, "the coroutine still runs on the loop's thread");
    cr_assert(pr.relocked);
    coro_parker_destroy(&pk);
}

/* Turns taken by a coroutine (even n) and a thread (odd n), each waking the other. */
#define ROUNDS 500
static struct {
    coro_parker co_p, th_p;
    int n, co_timeouts, th_timeouts;
} pp;

static void fn_ping(void *arg)
{
    double deadline = coro_now() + 4;
    pthread_mutex_lock(&mu);
    while (pp.n < 2 * ROUNDS) {
        if (pp.n % 2 == 0) {
            pp.n++;
            coro_unpark(&pp.th_p);
        } else if (coro_park(&pp.co_p, &mu, deadline) && pp.n % 2 == 1) {
            pp.co_timeouts++;
            break;
        }
    }
    pthread_mutex_unlock(&mu);
}

static void *thread_pong(void *arg)
{
    double deadline = coro_now() + 4;
    pthread_mutex_lock(&mu);
    while (pp.n < 2 * ROUNDS) {
        if (pp.n % 2 == 1) {
            pp.n++;
            coro_unpark(&pp.co_p);
        } else if (coro_park(&pp.th_p, &mu, deadline) && pp.n % 2 == 0) {
            pp.th_timeouts++;
            break;
        }
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

Test(coro, park_and_unpark_hand_over_500_times_between_a_coroutine_and_a_thread)
{
    coro_parker_init(&pp.co_p);
    coro_parker_init(&pp.th_p);
    pthread_t t;
    start_thread(&t, thread_pong, NULL);
    cr_assert_eq(coro_spawn(fn_ping, count_done, NULL), 0);
    run_until(1);
    pthread_join(t, NULL);
    cr_assert_eq(pp.co_timeouts, 0, "a wake-up of the coroutine was lost");
    cr_assert_eq(pp.th_timeouts, 0, "a wake-up of the thread was lost");
    cr_assert_eq(pp.n, 2 * ROUNDS);
    coro_parker_destroy(&pp.co_p);
    coro_parker_destroy(&pp.th_p);
}

static struct {
    int r;
    double waited;
    bool relocked;
    coro *left;
} sh;

static void fn_short_park(void *arg)
{
    pthread_mutex_lock(&mu);
    double t0 = coro_now();
    sh.r = coro_park(&pk, &mu, t0 + 0.05);
    sh.waited = coro_now() - t0;
    sh.relocked = pthread_mutex_trylock(&mu) == EBUSY;
    sh.left = pk.co;
    pthread_mutex_unlock(&mu);
}

Test(coro, park_returns_1_at_its_deadline)
{
    coro_parker_init(&pk);
    sh.r = -2;
    cr_assert_eq(coro_spawn(fn_short_park, count_done, NULL), 0);
    cr_assert_eq(sh.r, -2, "parked on the loop");
    run_until(1);
    cr_assert_eq(sh.r, 1, "timed out");
    cr_assert_geq(sh.waited, 0.045, "returned after %.3f s, before its deadline", sh.waited);
    cr_assert_lt(sh.waited, 4.0);
    cr_assert(sh.relocked, "coro_park returns with the mutex locked again");
    cr_assert_null(sh.left, "the parker forgets the coroutine once it returned");
    coro_parker_destroy(&pk);
}

/* An unpark that comes after the park timed out but before the coroutine got the mutex back
 * activates the coroutine's event once more: that must not wake the coroutine's next wait. */
static struct {
    int park_r, next_r;
    double next_waited;
    bool unparked_a_coroutine;
    int pair[2];
    int locked; /* the thread holds the mutex (atomic) */
} late;

static void fn_park_then_wait(void *arg)
{
    pthread_mutex_lock(&mu);
    late.park_r = coro_park(&pk, &mu, coro_now() + 0.05);
    pthread_mutex_unlock(&mu);
    double t0 = coro_now();
    late.next_r = coro_wait_fd(late.pair[0], false, t0 + 0.1);
    late.next_waited = coro_now() - t0;
}

static void *thread_late_unpark(void *arg)
{
    pthread_mutex_lock(&mu);
    __atomic_store_n(&late.locked, 1, __ATOMIC_SEQ_CST);
    sleep_ms(300); /* the park times out meanwhile; its coroutine then waits for the mutex */
    late.unparked_a_coroutine = pk.co != NULL;
    coro_unpark(&pk);
    pthread_mutex_unlock(&mu);
    return NULL;
}

Test(coro, an_unpark_racing_with_the_timeout_does_not_wake_the_next_wait)
{
    coro_parker_init(&pk);
    sockpair(late.pair);
    late.park_r = late.next_r = -2;
    cr_assert_eq(coro_spawn(fn_park_then_wait, count_done, NULL), 0);
    pthread_t t;
    start_thread(&t, thread_late_unpark, NULL); /* the coroutine is parked: the mutex is free */
    /* the loop (which times the park out) runs only once the thread holds the mutex: the race is
     * set up by ordering, not by the thread starting within the park's 50 ms */
    while (!__atomic_load_n(&late.locked, __ATOMIC_SEQ_CST))
        usleep(1000);
    run_until(1);
    pthread_join(t, NULL);
    cr_assert(late.unparked_a_coroutine, "the unpark did not race");
    cr_assert_eq(late.park_r, 1, "the deadline passed before the unpark");
    cr_assert_eq(late.next_r, 0, "the stale unpark woke the following wait");
    cr_assert_geq(late.next_waited, 0.095, "waited %.3f s", late.next_waited);
    closepair(late.pair);
    coro_parker_destroy(&pk);
}

Test(coro, park_outside_a_coroutine_is_a_condition_variable)
{
    coro_parker_init(&pk);
    pthread_t t;
    start_thread(&t, thread_unpark_after_50ms, NULL);
    double t0 = coro_now();
    pthread_mutex_lock(&mu);
    int r = 0;
    while (!pr.flag && (r = coro_park(&pk, &mu, t0 + 5)) == 0)
        ;
    cr_assert_eq(pthread_mutex_trylock(&mu), EBUSY, "returns with the mutex locked");
    pthread_mutex_unlock(&mu);
    pthread_join(t, NULL);
    cr_assert_eq(r, 0);
    cr_assert(pr.flag);
    cr_assert_lt(coro_now() - t0, 4.0);

    pthread_mutex_lock(&mu);
    t0 = coro_now();
    cr_assert_eq(coro_park(&pk, &mu, t0 + 0.05), 1, "nobody unparks: times out");
    double waited = coro_now() - t0;
    cr_assert_eq(pthread_mutex_trylock(&mu), EBUSY);
    pthread_mutex_unlock(&mu);
    cr_assert_geq(waited, 0.045, "returned after %.3f s, before its deadline", waited);
    cr_assert_lt(waited, 4.0);
    coro_parker_destroy(&pk);
}

/* --- coro_offload --- */

static pthread_mutex_t tick_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tick_cv = PTHREAD_COND_INITIALIZER;
static bool ticked;

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    pthread_mutex_lock(&tick_mu);
    ticked = true;
    pthread_cond_broadcast(&tick_cv);
    pthread_mutex_unlock(&tick_mu);
}

static struct {
    pthread_t fn_thread, co_before, co_after;
    bool saw_tick, co_resumed_during_fn, fn_returned, co_resumed;
} of;

static void fn_offloaded(void *arg)
{
    of.fn_thread = pthread_self();
    sleep_ms(100);
    /* the loop's 10 ms timer fires while we run: the loop is not blocked. Bounded. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&tick_mu);
    while (!ticked && pthread_cond_timedwait(&tick_cv, &tick_mu, &until) == 0)
        ;
    of.saw_tick = ticked;
    pthread_mutex_unlock(&tick_mu);
    of.co_resumed_during_fn = of.co_resumed;
    of.fn_returned = true;
}

static void fn_offloading(void *arg)
{
    of.co_before = pthread_self();
    coro_offload(fn_offloaded, NULL);
    of.co_resumed = true;
    of.co_after = pthread_self();
}

Test(coro, offload_runs_fn_on_a_helper_thread_while_the_loop_keeps_serving)
{
    cr_assert_eq(coro_spawn(fn_offloading, count_done, NULL), 0);
    cr_assert_not(of.co_resumed, "the coroutine is suspended while fn runs");
    after_ms(10, on_tick, NULL);
    run_until(1);
    coro_offload_shutdown();
    cr_assert(of.fn_returned);
    cr_assert(of.co_resumed);
    cr_assert_not(pthread_equal(of.fn_thread, loop_thread), "fn ran on the loop's thread");
    cr_assert(pthread_equal(of.co_before, loop_thread));
    cr_assert(pthread_equal(of.co_after, loop_thread));
    cr_assert(of.saw_tick, "the loop's timer did not fire while fn ran");
    cr_assert_not(of.co_resumed_during_fn, "the coroutine resumed before fn returned");
}

#define PARALLEL 3
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int running, met;
    pthread_t threads[PARALLEL];
} par = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void fn_meet(void *arg)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&par.mu);
    par.threads[par.running++] = pthread_self();
    pthread_cond_broadcast(&par.cv);
    while (par.running < PARALLEL && pthread_cond_timedwait(&par.cv, &par.mu, &until) == 0)
        ;
    if (par.running == PARALLEL)
        par.met++;
    pthread_mutex_unlock(&par.mu);
}

static void fn_offload_meet(void *arg)
{
    coro_offload(fn_meet, NULL);
}

Test(coro, offloads_of_several_coroutines_run_at_the_same_time)
{
    for (int i = 0; i < PARALLEL; i++)
        cr_assert_eq(coro_spawn(fn_offload_meet, count_done, NULL), 0);
    run_until(PARALLEL);
    coro_offload_shutdown();
    cr_assert_eq(par.met, PARALLEL, "the offloaded calls did not all run at once");
    for (int i = 0; i < PARALLEL; i++) {
        cr_assert_not(pthread_equal(par.threads[i], loop_thread));
        for (int j = 0; j < i; j++)
            cr_assert_not(pthread_equal(par.threads[i], par.threads[j]));
    }
}

static void fn_record_thread(void *arg)
{
    *(pthread_t *)arg = pthread_self();
}

static void *thread_offload_inline(void *arg)
{
    pthread_t ran = 0;
    coro_offload(fn_record_thread, &ran);
    *(bool *)arg = pthread_equal(ran, pthread_self());
    return NULL;
}

Test(coro, offload_outside_a_coroutine_runs_fn_inline)
{
    pthread_t ran = 0;
    coro_offload(fn_record_thread, &ran); /* the loop's thread, on its own stack */
    cr_assert(pthread_equal(ran, pthread_self()), "fn did not run on the caller's thread");

    bool inline_there = false; /* a thread without a scheduler */
    pthread_t t;
    start_thread(&t, thread_offload_inline, &inline_there);
    pthread_join(t, NULL);
    cr_assert(inline_there);
    coro_offload_shutdown();
}

/* --- coro_suspend / coro_wake, coro_spawn_later --- */

static struct {
    coro *sleeper;
    bool resumed, resumed_inside_wake;
    int wakes;
} sw;

static void fn_sleeper(void *arg)
{
    sw.sleeper = coro_self();
    coro_suspend();
    sw.resumed = true;
}

static void fn_waker(void *arg)
{
    coro_wake(sw.sleeper);
    sw.resumed_inside_wake = sw.resumed;
}

Test(coro, suspend_waits_for_a_wake_from_another_coroutine)
{
    cr_assert_eq(coro_spawn(fn_sleeper, count_done, NULL), 0);
    cr_assert_eq(coro_spawn(fn_waker, count_done, NULL), 0);
    cr_assert_not(sw.resumed_inside_wake, "the woken coroutine ran inside coro_wake");
    cr_assert_not(sw.resumed);
    run_until(2);
    cr_assert(sw.resumed);
}

static void on_wake_sleeper(evutil_socket_t fd, short what, void *arg)
{
    coro_wake(sw.sleeper);
}

static void fn_sleeper_twice(void *arg)
{
    sw.sleeper = coro_self();
    coro_suspend();
    sw.wakes++;
    coro_suspend();
    sw.wakes++;
}

Test(coro, suspend_can_be_woken_from_the_loop_stack_again_and_again)
{
    cr_assert_eq(coro_spawn(fn_sleeper_twice, count_done, NULL), 0);
    after_ms(5, on_wake_sleeper, NULL);
    after_ms(30, on_wake_sleeper, NULL);
    run_until(1);
    cr_assert_eq(sw.wakes, 2);
}

static struct {
    char order[8];
    int n;
    bool active[4];
} sl;

static void fn_mark(void *arg)
{
    sl.active[sl.n] = coro_active();
    sl.order[sl.n++] = *(const char *)arg;
}

static void on_mark(evutil_socket_t fd, short what, void *arg)
{
    sl.order[sl.n++] = *(const char *)arg;
}

Test(coro, spawn_later_starts_fn_at_the_next_loop_iteration_after_what_is_pending)
{
    struct event *ev = event_new(base, -1, 0, on_mark, "e");
    cr_assert_not_null(ev);
    event_active(ev, EV_READ, 1); /* already pending when the spawns are asked for */
    cr_assert_eq(coro_spawn_later(fn_mark, count_done, "a"), 0);
    cr_assert_eq(coro_spawn_later(fn_mark, count_done, "b"), 0);
    cr_assert_eq(sl.n, 0, "fn ran inside coro_spawn_later");
    cr_assert_eq(finished, 0);
    run_until(2);
    event_free(ev);
    cr_assert_eq(sl.n, 3);
    cr_assert_arr_eq(sl.order, "eab", 3, "order %.3s", sl.order);
    cr_assert(sl.active[1] && sl.active[2], "fn runs in a coroutine");
}

static struct {
    int later_r;
    bool ran_inside;
    coro *parent, *child;
} sc;

static void fn_child(void *arg)
{
    sc.child = coro_self();
}

static void fn_parent(void *arg)
{
    sc.parent = coro_self();
    sc.later_r = coro_spawn_later(fn_child, count_done, NULL);
    sc.ran_inside = sc.child != NULL;
}

Test(coro, spawn_later_from_a_coroutine_starts_another_one_later)
{
    sc.later_r = -2;
    cr_assert_eq(coro_spawn(fn_parent, count_done, NULL), 0);
    cr_assert_eq(sc.later_r, 0);
    cr_assert_eq(finished, 1, "the parent finished");
    cr_assert_null(sc.child, "the child started inside the parent's call");
    cr_assert_not(sc.ran_inside);
    run_until(2);
    cr_assert_not_null(sc.child);
    cr_assert_eq(sc.child, sc.parent, "the finished parent's stack was reused");
}

/* --- the log request id --- */

static struct {
    int pair[2];
    char a[80], b[80], c[80], on_loop[80], loop_after_spawns[80];
    coro *b_co;
} rid;

static void copy_id(char *dst)
{
    snprintf(dst, 80, "%s", log_request_id_get());
}

static void fn_rid_fd(void *arg) /* waits for a socket */
{
    log_set_request_id("req-a");
    coro_wait_fd(rid.pair[0], false, coro_now() + 5);
    copy_id(rid.a);
}

static void fn_rid_suspend(void *arg) /* waits for a wake */
{
    log_set_request_id("req-b");
    rid.b_co = coro_self();
    coro_suspend();
    copy_id(rid.b);
}

static void fn_rid_offloaded(void *arg)
{
    sleep_ms(10);
}

static void fn_rid_offload(void *arg) /* waits for a helper thread */
{
    log_set_request_id("req-c");
    coro_offload(fn_rid_offloaded, NULL);
    copy_id(rid.c);
}

static void on_rid_timer(evutil_socket_t fd, short what, void *arg)
{
    copy_id(rid.on_loop);
    coro_wake(rid.b_co);
    cr_expect_eq(write(rid.pair[1], "r", 1), 1);
}

Test(coro, the_log_request_id_follows_each_coroutine_across_its_waits)
{
    sockpair(rid.pair);
    cr_assert_eq(coro_spawn(fn_rid_fd, count_done, NULL), 0);
    cr_assert_eq(coro_spawn(fn_rid_suspend, count_done, NULL), 0);
    cr_assert_eq(coro_spawn(fn_rid_offload, count_done, NULL), 0);
    copy_id(rid.loop_after_spawns);
    after_ms(20, on_rid_timer, NULL);
    run_until(3);
    coro_offload_shutdown();
    cr_assert_str_eq(rid.loop_after_spawns, "", "a coroutine's id stayed on the loop's stack");
    cr_assert_str_eq(rid.on_loop, "", "a waiting coroutine's id leaked into a loop callback");
    cr_assert_str_eq(rid.a, "req-a");
    cr_assert_str_eq(rid.b, "req-b");
    cr_assert_str_eq(rid.c, "req-c");
    cr_assert_str_eq(log_request_id_get(), "");
    closepair(rid.pair);
}

static void fn_set_id_and_return(void *arg)
{
    log_set_request_id("finished-request");
}

static void fn_copy_id(void *arg)
{
    copy_id(arg);
}

Test(coro, a_reused_coroutine_starts_with_the_spawners_id_like_a_new_one)
{
    char fresh[80] = "?", reused[80] = "?", reused_none[80] = "?";
    log_set_request_id("spawner-1");
    cr_assert_eq(coro_spawn(fn_copy_id, NULL, fresh), 0); /* a new coroutine */
    cr_assert_str_eq(fresh, "spawner-1");

    cr_assert_eq(coro_spawn(fn_set_id_and_return, NULL, NULL), 0); /* reuses it, leaves an id */
    log_set_request_id("spawner-2");
    cr_assert_eq(coro_spawn(fn_copy_id, NULL, reused), 0); /* reuses it again */
    cr_assert_str_eq(reused, "spawner-2", "started with a finished coroutine's id");

    cr_assert_eq(coro_spawn(fn_set_id_and_return, NULL, NULL), 0);
    cr_assert_str_eq(log_request_id_get(), "");
    cr_assert_eq(coro_spawn(fn_copy_id, NULL, reused_none), 0);
    cr_assert_str_eq(reused_none, "", "started with a finished coroutine's id");
}
