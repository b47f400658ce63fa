/* server: loops, handler coroutines, signals, graceful shutdown. See server.h for the model. */
#include "app/server.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/exchange.h"
#include "app/jobs.h"
#include "app/metrics.h"
#include "app/wire.h"
#include "core/coro.h"
#include "core/log.h"

app_ctx app;

#define FREELIST_MAX 256

typedef struct loop {
    int index;
    struct event_base *base;
    struct evconnlistener *listener; /* NULL once draining */
    auth_cache *tokens;
    exchange *backlog, *btail; /* requests waiting for a handler (WORKERS reached) */
    struct event *kick;        /* another loop's handler finished: start what waits here */
    struct event *turn;        /* the previous loop accepted a connection: this one accepts next */
    struct event *resume;      /* accept() failed (EMFILE): listen again a little later */
    exchange *free;            /* recycled exchanges */
    int nfree;
    pthread_t thread;
} loop;

static struct {
    loop *loops;
    int nloops;
    /* WORKERS bounds the handlers in progress in the whole process, not per loop: a loop whose
     * share were taken by a few slow requests would otherwise keep new requests waiting while
     * another loop sits idle. A finished handler hands its place to its own loop's next waiting
     * request, else gives it back and kicks the loops where requests wait. */
    int workers;
    atomic_int running;  /* handlers in progress, all loops */
    atomic_int waiting;  /* requests in the loops' backlogs */
    atomic_int inflight; /* requests given to handlers and not yet replied */
    atomic_bool draining;
    double deadline;
    struct event *drain_timer;
    bool timed_out;
} S;

exchange *loop_exchange_get(loop *lp)
{
    exchange *x = lp->free;
    if (x) {
        lp->free = x->next;
        lp->nfree--;
        memset(x, 0, sizeof *x);
        return x;
    }
    x = calloc(1, sizeof *x);
    if (!x) {
        log_error("out of memory");
        abort();
    }
    return x;
}

void loop_exchange_put(loop *lp, exchange *x)
{
    if (lp->nfree >= FREELIST_MAX) {
        free(x);
        return;
    }
    x->next = lp->free;
    lp->free = x;
    lp->nfree++;
}

auth_cache *loop_auth_cache(loop *lp)
{
    return lp->tokens;
}

static void handler_start(loop *lp, exchange *x);

/* In the coroutine: the handler with its session. Its database waits yield to the loop. */
static void handler_run(void *arg)
{
    dispatch_run(arg);
}

/* A place among the WORKERS handlers in progress, if one is free. */
static bool handler_claim(void)
{
    int n = atomic_load(&S.running);
    while (n < S.workers)
        if (atomic_compare_exchange_weak(&S.running, &n, n + 1))
            return true;
    return false;
}

/* The loop's oldest waiting request, removed from its backlog. */
static exchange *backlog_pop(loop *lp)
{
    exchange *x = lp->backlog;
    lp->backlog = x->next;
    if (!lp->backlog)
        lp->btail = NULL;
    atomic_fetch_sub(&S.waiting, 1);
    metrics_handler_wait(now_seconds() - x->t0);
    return x;
}

/* Starts the loop's waiting requests while places are free. */
static void backlog_drain(loop *lp)
{
    while (lp->backlog && handler_claim())
        handler_start(lp, backlog_pop(lp));
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    backlog_drain(arg);
}

/* Back on the loop's stack: the reply, then the place goes to the next request that waited. */
static void handler_done(void *arg)
{
    exchange *x = arg;
    loop *lp = x->loop;
    dispatch_finish(x);
    atomic_fetch_sub(&S.inflight, 1);
    if (lp->backlog) { /* the place passes on, still claimed */
        handler_start(lp, backlog_pop(lp));
        return;
    }
    atomic_fetch_sub(&S.running, 1);
    /* seq_cst: a loop that queued a request after this load saw `running` lowered first */
    if (atomic_load(&S.waiting) > 0)
        for (int i = 0; i < S.nloops; i++)
            if (&S.loops[i] != lp)
                event_active(S.loops[i].kick, EV_READ, 1);
}

/* Runs x's handler in a coroutine, on a place already claimed. */
static void handler_start(loop *lp, exchange *x)
{
    if (coro_spawn(handler_run, handler_done, x) < 0) {
        log_error("out of memory for a handler's stack");
        http_reply_detail(&x->res, 503, "Service Unavailable");
        http_header_add(&x->res, "Retry-After", "1");
        handler_done(x);
    }
}

static void on_request(void *arg, wire_request *wr)
{
    loop *lp = arg;
    exchange *x = dispatch_request(lp, wr);
    if (!x)
        return;
    atomic_fetch_add(&S.inflight, 1);
    if (!lp->backlog && handler_claim()) {
        handler_start(lp, x);
        return;
    }
    x->next = NULL;
    if (lp->btail)
        lp->btail->next = x;
    else
        lp->backlog = x;
    lp->btail = x;
    atomic_fetch_add(&S.waiting, 1);
    backlog_drain(lp); /* a handler may have finished since the claim failed, and kicked no one */
}

/* Connections go to the loops in turn. The loops share one listening socket, so every idle loop
 * wakes for a new connection and the first to run accepts all that are queued: wrk's 32 at once,
 * or the few keep-alive connections of a proxy, could all land on one loop, leaving the others'
 * CPU and their share of the pipelined database connections (DB_PIPELINE_CONNS is split among
 * the loops) unused, by chance, for the life of the connections. Instead one loop at a time
 * listens; each accepted connection passes the turn on. libevent calls this for every connection
 * it accepts, and stops accepting when the callback disabled the listener. */
static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    loop *lp = arg;
    metrics_connection_accepted(lp->index);
    if (S.nloops > 1) {
        evconnlistener_disable(l);
        event_active(S.loops[(lp->index + 1) % S.nloops].turn, EV_READ, 1);
    }
    wire_accept(lp->base, fd, sa, (socklen_t)len, lp);
}

static void on_turn(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    loop *lp = arg;
    if (lp->listener) /* NULL once draining (stop_accepting) */
        evconnlistener_enable(lp->listener);
}

/* accept() failed other than EAGAIN/ECONNABORTED: at the descriptor limit (EMFILE, ENFILE) the
 * pending connection stays queued and the socket stays readable, so listening on would spin
 * (libevent logs a line and retries at once, forever). The listener pauses for 100 ms instead;
 * one line per pause at most once a second. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    loop *lp = arg;
    static _Atomic double last;
    int err = EVUTIL_SOCKET_ERROR();
    evconnlistener_disable(l);
    double now = now_seconds();
    if (now - atomic_load(&last) >= 1) {
        atomic_store(&last, now);
        log_warn("accept failed (%s): not accepting for 100 ms",
                 evutil_socket_error_to_string(err));
    }
    struct timeval tv = {0, 100000};
    event_add(lp->resume, &tv);
}

/* The loop: held-back log lines are written once per iteration, before epoll may block. */
static void loop_run(loop *lp)
{
    log_buffer_lines(true);
    while (!event_base_got_exit(lp->base) && !event_base_got_break(lp->base)) {
        log_flush();
        if (event_base_loop(lp->base, EVLOOP_ONCE | EVLOOP_NO_EXIT_ON_EMPTY) < 0)
            break;
    }
    log_buffer_lines(false);
}

static int loop_init(loop *lp, int index, struct sockaddr_in *sa)
{
    lp->index = index;
    /* the changelist folds an event's add/del pairs within one iteration (a database socket's
     * write interest, a connection's) into one epoll_ctl */
    struct event_config *ec = event_config_new();
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    lp->base = event_base_new_with_config(ec);
    event_config_free(ec);
    lp->kick = lp->base ? event_new(lp->base, -1, 0, on_kick, lp) : NULL;
    lp->turn = lp->base ? event_new(lp->base, -1, 0, on_turn, lp) : NULL;
    lp->resume = lp->base ? evtimer_new(lp->base, on_turn, lp) : NULL;
    if (!lp->kick || !lp->turn || !lp->resume)
        return -1;
    lp->tokens = auth_cache_new();
    /* One listening socket, shared by every loop (each accepts on its own dup of it). Not
     * SO_REUSEPORT: with it a second server started on the same port by mistake would silently
     * receive a share of the connections instead of failing with "address in use". */
    struct evconnlistener *l;
    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC;
    if (index == 0) {
        l = evconnlistener_new_bind(lp->base, on_accept, lp, flags | LEV_OPT_REUSEABLE, 1024,
                                    (struct sockaddr *)sa, sizeof *sa);
    } else {
        evutil_socket_t fd = dup(evconnlistener_get_fd(S.loops[0].listener));
        l = fd >= 0 && evutil_make_socket_nonblocking(fd) == 0
                ? evconnlistener_new(lp->base, on_accept, lp, flags | LEV_OPT_DISABLED, -1,
                                     fd) /* -1: already listening; the first loop's turn */
                : NULL;
        if (!l && fd >= 0)
            close(fd);
    }
    if (!l)
        return -1;
    evconnlistener_set_error_cb(l, on_accept_error);
    lp->listener = l;
    return 0;
}

static void loop_free(loop *lp)
{
    for (exchange *x = lp->free, *next; x; x = next) {
        next = x->next;
        free(x);
    }
    if (lp->kick)
        event_free(lp->kick);
    if (lp->turn)
        event_free(lp->turn);
    if (lp->resume)
        event_free(lp->resume);
    if (lp->listener)
        evconnlistener_free(lp->listener);
    auth_cache_free(lp->tokens);
    if (lp->base)
        event_base_free(lp->base);
}

/* Runs on the loop's thread, which owns the coroutines (they exist only there). */
static void loop_serve(loop *lp)
{
    if (coro_thread_init(lp->base) < 0) {
        log_error("out of memory");
        return;
    }
    loop_run(lp);
    wire_thread_free();
    coro_thread_free();
}

static void *loop_main(void *arg)
{
    loop_serve(arg);
    return NULL;
}

static void stop_accepting(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    loop *lp = arg;
    if (lp->listener)
        evconnlistener_free(lp->listener);
    lp->listener = NULL;
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    int left = atomic_load(&S.inflight);
    /* a pipeline's driver may still be reading its last batch's Sync after the last handler got
     * its answer: the loops keep running until it has given its connection back too, or the
     * engine would wait for it in vain once they stopped */
    db_stats st = {0};
    db_engine_stats(app.engine, &st);
    if ((left > 0 || st.in_use > 0) && now_seconds() < S.deadline)
        return;
    if (left > 0) {
        log_error("shutdown timeout: %d request(s) still running, giving up on them", left);
        S.timed_out = true;
    }
    event_del(S.drain_timer);
    /* The last replies were queued on their connections but may not be written yet (that takes
     * the loop's next iteration): stopping the loops at once could drop them (seen as a PUT that
     * finished during the drain but whose client got no answer). A short grace lets them out. */
    struct timeval grace = {0, left > 0 ? 0 : 50000};
    for (int i = 0; i < S.nloops; i++)
        event_base_loopexit(S.loops[i].base, &grace);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what, (void)arg;
    if (S.deadline > 0)
        return; /* already draining */
    log_info("received %s: no new connections; finishing %d in-flight request(s) within %gs",
             sig == SIGTERM ? "SIGTERM" : "SIGINT", atomic_load(&S.inflight),
             app.cfg->shutdown_timeout);
    S.deadline = now_seconds() + app.cfg->shutdown_timeout;
    atomic_store(&S.draining, true);
    jobs_stop(); /* no new background runs; one in progress holds a session the drain waits for */
    struct timeval zero = {0, 0};
    for (int i = 0; i < S.nloops; i++)
        event_base_once(S.loops[i].base, -1, EV_TIMEOUT, stop_accepting, &S.loops[i], &zero);
    struct timeval tick = {0, 10000};
    event_add(S.drain_timer, &tick);
}

bool server_draining(void)
{
    return atomic_load(&S.draining);
}

static int start_threads(void)
{
    for (int i = 1; i < S.nloops; i++)
        if (pthread_create(&S.loops[i].thread, NULL, loop_main, &S.loops[i]) != 0)
            return -1;
    return 0;
}

static void stop_threads(int started_loops)
{
    if (S.timed_out) {
        /* handlers are still suspended inside queries, holding pool connections and stacks:
         * nothing can be freed safely, and the kernel closes the sockets and connections for us.
         * The other loops were told to exit too: joined first, so that their held-back log lines
         * are written (loop_run flushes them on its way out). */
        for (int i = 1; i < started_loops; i++)
            pthread_join(S.loops[i].thread, NULL);
        log_error("exiting with requests still running");
        _exit(1);
    }
    for (int i = 1; i < started_loops; i++) {
        event_base_loopexit(S.loops[i].base, NULL);
        pthread_join(S.loops[i].thread, NULL);
    }
    coro_offload_shutdown();
}

int server_run(void)
{
    const app_config *cfg = app.cfg;
    evthread_use_pthreads();
    signal(SIGPIPE, SIG_IGN);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
    if (inet_pton(AF_INET, cfg->host, &sa.sin_addr) != 1) {
        log_error("HOST must be an IPv4 address like 127.0.0.1 or 0.0.0.0, got \"%s\"", cfg->host);
        return 1;
    }
    wire_init(&(wire_config){.max_connections = cfg->max_connections,
                             .read_timeout = cfg->read_timeout,
                             .max_header_bytes = (size_t)cfg->max_header_bytes,
                             .max_body_bytes = (size_t)cfg->max_body_bytes,
                             .on_request = on_request,
                             .head_check = dispatch_head});
    S.nloops = cfg->loops;
    S.workers = cfg->workers;
    S.loops = calloc((size_t)S.nloops, sizeof *S.loops);
    metrics_set_loops(S.nloops);
    int rc = 0;
    for (int i = 0; i < S.nloops; i++)
        if (rc == 0 && loop_init(&S.loops[i], i, &sa) < 0) {
            log_error("could not listen on %s:%d: %s", cfg->host, cfg->port,
                      evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
            rc = 1;
        }
    struct event *term = NULL, *intr = NULL;
    if (rc == 0) {
        struct event_base *main_base = S.loops[0].base;
        term = evsignal_new(main_base, SIGTERM, on_signal, NULL);
        intr = evsignal_new(main_base, SIGINT, on_signal, NULL);
        S.drain_timer = event_new(main_base, -1, EV_PERSIST, on_drain_tick, NULL);
        event_add(term, NULL);
        event_add(intr, NULL);
        if (jobs_start(main_base) < 0 || start_threads() < 0) {
            log_error("could not start threads");
            rc = 1;
        } else {
            log_info("listening on http://%s:%d (%d loop(s), up to %d handler(s) in all)",
                     cfg->host, cfg->port, S.nloops, S.workers);
            loop_serve(&S.loops[0]);
        }
    }
    stop_threads(rc == 0 ? S.nloops : 1);
    jobs_stop(); /* their timers live on the first loop's base, freed below */
    if (term)
        event_free(term);
    if (intr)
        event_free(intr);
    if (S.drain_timer)
        event_free(S.drain_timer);
    for (int i = 0; i < S.nloops; i++)
        loop_free(&S.loops[i]);
    free(S.loops);
    return rc ? rc : S.timed_out ? 1 : 0;
}
