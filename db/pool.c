/* pool: see pool.h. Connections are opened and closed outside the lock; the lock only guards
 * counters and lists, so a slow connect (a Neon cold start) never blocks other borrowers. */
#include "db/pool.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/coro.h"
#include "core/log.h"
#include "db/pipe.h"
#include "db/url.h"
#include "db/connect.h"

enum { W_WAITING, W_CONN, W_SLOT, W_CLOSED };

struct db_waiter {
    coro_parker parker; /* a coroutine (the API) or a thread (everything else) */
    int outcome;
    db_conn *conn;
    db_waiter *next;
};

double db_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int db_pool_init(db_pool *p, const char *url, const char *label, const db_config *cfg)
{
    memset(p, 0, sizeof *p);
    p->url = strdup(url);
    if (!p->url)
        return -1;
    p->label = label;
    p->cfg = cfg;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&p->drained, &a);
    pthread_condattr_destroy(&a);
    int prep = cfg->prepare == DB_PREPARE_ON    ? DB_PREP_YES
               : cfg->prepare == DB_PREPARE_OFF ? DB_PREP_NO
                                                : DB_PREP_UNDECIDED;
    if (prep == DB_PREP_UNDECIDED && db_url_neon_pooler(url)) {
        prep = DB_PREP_YES;
        log_info("database (%s): statements are prepared once per connection (DB_PREPARE=auto: "
                 "Neon's pooler keeps protocol-level prepared statements)",
                 label);
    }
    atomic_init(&p->prepare, prep);
    return 0;
}

static struct timespec abs_mono(double t)
{
    struct timespec ts = {(time_t)t, (long)((t - floor(t)) * 1e9)};
    return ts;
}

/* Hands a freed slot to the first waiter, or gives it up. Locked. */
static void slot_freed_locked(db_pool *p)
{
    db_waiter *w = p->whead;
    if (!w) {
        p->open--;
        return;
    }
    p->whead = w->next;
    if (!p->whead)
        p->wtail = NULL;
    w->outcome = W_SLOT;
    p->in_use++;
    coro_unpark(&w->parker);
}

/* A borrower gives up its slot (its connection is closed or was never opened). Locked. */
static void give_back_slot_locked(db_pool *p)
{
    p->in_use--;
    slot_freed_locked(p);
    if (p->closing && p->in_use == 0)
        pthread_cond_broadcast(&p->drained);
}

static void unlink_waiter_locked(db_pool *p, db_waiter *w)
{
    db_waiter **pp = &p->whead, *prev = NULL;
    while (*pp && *pp != w) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = w->next;
    if (p->wtail == w)
        p->wtail = prev;
}

/* Queues the caller (thread or coroutine) until it is handed a connection or a slot, the deadline
 * passes or the pool closes. Locked (the wait releases the lock). Returns the waiter's outcome. */
static int wait_turn_locked(db_pool *p, double deadline, db_conn **conn)
{
    db_waiter w = {.outcome = W_WAITING};
    coro_parker_init(&w.parker);
    if (p->wtail)
        p->wtail->next = &w;
    else
        p->whead = &w;
    p->wtail = &w;
    p->waiting++;
    while (w.outcome == W_WAITING) {
        if (coro_park(&w.parker, &p->mu, deadline) && w.outcome == W_WAITING) {
            unlink_waiter_locked(p, &w);
            break;
        }
    }
    p->waiting--;
    coro_parker_destroy(&w.parker);
    *conn = w.conn;
    return w.outcome;
}

typedef struct connect_call {
    const char *url;
    db_connect_opts opts;
    db_error *err;
    PGconn *pg;
    bool detect; /* find out whether pg reaches PostgreSQL directly (DB_PREPARE=auto) */
    int direct;  /* then: 1 yes, 0 no (a pooler), -1 unknown (the query failed) */
} connect_call;

/* Name resolution and the TLS and SCRAM handshakes block: on a helper thread when called from a
 * coroutine (coro_offload), so that a Neon cold start never stalls an event loop. */
static void connect_now(void *arg)
{
    connect_call *c = arg;
    c->pg = db_connect(c->url, &c->opts, c->err);
    c->direct = -1;
    if (c->pg && c->detect) {
        /* A pooler answers the startup with a cancel key of its own (PgBouncer: random bytes), so
         * the pid the connection announced is the backend's only when nothing is in between.
         * One round trip, on the pool's first connection only, bounded like the connect. */
        bool sent, timed_out;
        PGresult *r = db_exec_wait(c->pg, "select pg_backend_pid()", 0, NULL, 0,
                                   c->opts.connect_timeout, -1, &sent, &timed_out);
        if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            c->direct = atoi(PQgetvalue(r, 0, 0)) == PQbackendPID(c->pg);
        PQclear(r);
        if (!r) { /* silent or gone right after its startup: a failed connect */
            PQfinish(c->pg);
            c->pg = NULL;
            db_error_set(c->err, DB_ERR_TRANSIENT, "08006",
                         "the database did not answer its first query within %g s",
                         c->opts.connect_timeout);
        }
    }
}

/* DB_PREPARE=auto, from the first connection that could tell. */
static void decide_prepare(db_pool *p, int direct)
{
    int undecided = DB_PREP_UNDECIDED;
    if (direct < 0 ||
        !atomic_compare_exchange_strong(&p->prepare, &undecided, direct ? DB_PREP_YES : DB_PREP_NO))
        return;
    if (direct)
        log_info("database (%s): statements are prepared once per connection (DB_PREPARE=auto: "
                 "a direct connection to PostgreSQL)",
                 p->label);
    else
        log_info("database (%s): statements are sent unnamed (DB_PREPARE=auto: a pooler is in "
                 "between; set DB_PREPARE=on if it keeps prepared statements, as PgBouncer 1.21+ "
                 "with max_prepared_statements does)",
                 p->label);
}

/* During an outage, a borrower that would wait for the probe fails at once with its error. Locked.
 */
static void fast_failure_locked(db_pool *p, db_error *err)
{
    p->fast_failures++;
    *err = p->down_err;
    snprintf(err->hint, sizeof err->hint,
             "the database has been unreachable for %.1f s; another request is checking "
             "whether it is back",
             db_now() - p->down_since);
}

bool db_pool_failing_fast(db_pool *p, db_error *err)
{
    pthread_mutex_lock(&p->mu);
    bool fail = p->down_since > 0 && p->probing;
    if (fail)
        fast_failure_locked(p, err);
    pthread_mutex_unlock(&p->mu);
    return fail;
}

/* Opens a connection, retrying transient failures within the connect timeout.
 *
 * During an outage only one borrower at a time retries (the probe); the others fail at once with
 * the probe's last error. Without this, every queued request would spend its whole budget on
 * retries of its own, and an outage would turn into a queue of requests each waiting seconds for
 * its 503; with it, the API answers 503 + Retry-After at once and the first success ends the
 * outage for everyone. */
static db_conn *open_conn(db_pool *p, db_error *err)
{
    const db_config *cfg = p->cfg;
    pthread_mutex_lock(&p->mu);
    bool probe = p->down_since > 0;
    if (probe && p->probing) {
        fast_failure_locked(p, err);
        pthread_mutex_unlock(&p->mu);
        return NULL;
    }
    p->probing = probe;
    pthread_mutex_unlock(&p->mu);

    connect_call call = {.url = p->url,
                         .opts = {.application_name = cfg->application_name,
                                  .connect_timeout = cfg->connect_timeout,
                                  .budget = cfg->connect_timeout,
                                  .log_label = p->label},
                         .err = err,
                         /* only the pipeline prepares: no query for an engine without one */
                         .detect = cfg->pipeline && atomic_load(&p->prepare) == DB_PREP_UNDECIDED};
    coro_offload(connect_now, &call);
    PGconn *pg = call.pg;
    if (pg && call.detect)
        decide_prepare(p, call.direct);
    /* statements never block on a full socket buffer (exec.c flushes the rest while it waits):
     * an event loop must not stall on one slow connection */
    if (pg)
        PQsetnonblocking(pg, 1);
    db_conn *c = pg ? calloc(1, sizeof *c) : NULL;
    pthread_mutex_lock(&p->mu);
    if (probe)
        p->probing = false;
    if (c) {
        p->connects++;
        p->down_since = 0;
    } else {
        p->connect_failures++;
        if (!pg && err->kind == DB_ERR_TRANSIENT) {
            if (p->down_since == 0)
                p->down_since = db_now();
            p->down_err = *err;
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (!c) {
        if (pg) {
            PQfinish(pg);
            db_error_set(err, DB_ERR_TRANSIENT, NULL, "out of memory");
        }
        return NULL;
    }
    c->pg = pg;
    c->created = c->last_used = db_now();
    /* up to 20% earlier than the maximum, so connections opened together do not expire together */
    c->expires = c->created + cfg->max_lifetime * (1.0 - 0.2 * ((double)rand() / RAND_MAX));
    return c;
}

static void close_conn(db_conn *c)
{
    if (c) {
        PQfinish(c->pg);
        db_pipe_stmts_free(c->stmts);
        free(c);
    }
}

/* A connection the server has already dropped (terminated backend, restart, Neon suspend) has
 * something to read while idle: the goodbye error message and then EOF. Nothing else arrives on an
 * idle connection of ours (no LISTEN, and PgBouncer sends nothing to idle clients), so readable
 * means dead; a zero-timeout poll() sees that without a round trip. libpq alone would not tell:
 * PQconsumeInput() happily buffers the goodbye and reports the connection as fine. */
static bool looks_dead(PGconn *pg)
{
    struct pollfd fd = {PQsocket(pg), POLLIN, 0};
    if (PQstatus(pg) != CONNECTION_OK || fd.fd < 0)
        return true;
    return poll(&fd, 1, 0) != 0;
}

static bool ping(db_pool *p, PGconn *pg)
{
    bool sent, timed_out;
    PGresult *r = db_exec_wait(pg, "", 0, NULL, 0, p->cfg->connect_timeout, -1, &sent, &timed_out);
    bool ok = r && PQresultStatus(r) == PGRES_EMPTY_QUERY && !timed_out;
    PQclear(r);
    return ok;
}

/* Checks an idle connection before it is handed out; replaces it when it is dead or too old. */
static db_conn *check_idle(db_pool *p, db_conn *c, db_error *err)
{
    double now = db_now();
    const char *why = NULL;
    if (now >= c->expires)
        return db_pool_reconnect(p, c, err); /* recycled at its lifetime: not counted as broken */
    if (looks_dead(c->pg))
        why = "closed by the server";
    else if (now - c->last_used >= p->cfg->preping_after && !ping(p, c->pg))
        why = "failed its pre-ping";
    else
        return c;
    log_info("discarding a pooled connection that %s", why);
    pthread_mutex_lock(&p->mu);
    p->discarded++;
    pthread_mutex_unlock(&p->mu);
    return db_pool_reconnect(p, c, err);
}

int db_pool_acquire(db_pool *p, double deadline, db_conn **out, db_error *err)
{
    double t0 = db_now();
    db_conn *c = NULL;
    int got = W_WAITING;
    pthread_mutex_lock(&p->mu);
    p->acquires++;
    if (p->closing) {
        got = W_CLOSED;
    } else if (!p->whead && p->idle) {
        c = p->idle;
        p->idle = c->next;
        p->nidle--;
        p->in_use++;
        got = W_CONN;
    } else if (!p->whead && p->open < p->cfg->pool_max) {
        p->open++;
        p->in_use++;
        got = W_SLOT;
    } else {
        got = wait_turn_locked(p, deadline, &c);
    }
    if (got == W_WAITING)
        p->acquire_timeouts++;
    p->wait_total += db_now() - t0;
    pthread_mutex_unlock(&p->mu);

    switch (got) {
    case W_CLOSED:
        db_error_set(err, DB_ERR_CLOSED, NULL, "the database engine is shut down");
        return -1;
    case W_WAITING:
        db_error_set(err, DB_ERR_POOL_TIMEOUT, NULL,
                     "no database connection became free within %g s (%d in use)",
                     p->cfg->acquire_timeout, p->cfg->pool_max);
        snprintf(err->hint, sizeof err->hint,
                 "retry later; if this persists raise DB_POOL_MAX or DB_ACQUIRE_TIMEOUT, or "
                 "shorten transactions");
        return -1;
    case W_CONN:
        c->next = NULL;
        *out = check_idle(p, c, err);
        return *out ? 0 : -1;
    default: /* W_SLOT */
        *out = open_conn(p, err);
        if (*out)
            return 0;
        pthread_mutex_lock(&p->mu);
        give_back_slot_locked(p);
        pthread_mutex_unlock(&p->mu);
        return -1;
    }
}

bool db_pool_can_lend(db_pool *p)
{
    pthread_mutex_lock(&p->mu);
    bool can =
        !p->closing && !p->whead && (p->idle || (p->open < p->cfg->pool_max && p->down_since == 0));
    pthread_mutex_unlock(&p->mu);
    return can;
}

void db_pool_release(db_pool *p, db_conn *c, bool broken)
{
    if (!c)
        return;
    double now = db_now();
    bool discard = broken || PQstatus(c->pg) != CONNECTION_OK ||
                   p->cfg->mode == DB_POOL_MODE_PER_REQUEST || now >= c->expires;
    if (discard) {
        /* closed before its slot is handed on, so the server never sees more than max */
        close_conn(c);
        c = NULL;
    }
    pthread_mutex_lock(&p->mu);
    if (broken)
        p->discarded++;
    if (!c || p->closing) {
        give_back_slot_locked(p);
    } else if (p->whead) {
        db_waiter *w = p->whead; /* in_use passes to the waiter unchanged */
        p->whead = w->next;
        if (!p->whead)
            p->wtail = NULL;
        c->last_used = now;
        w->conn = c;
        w->outcome = W_CONN;
        coro_unpark(&w->parker);
        c = NULL;
    } else {
        p->in_use--;
        c->last_used = now;
        c->next = p->idle;
        p->idle = c;
        p->nidle++;
        c = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    close_conn(c); /* only when the pool closed meanwhile */
}

db_conn *db_pool_reconnect(db_pool *p, db_conn *c, db_error *err)
{
    close_conn(c); /* first, so that the slot never stands for two server connections */
    db_conn *fresh = open_conn(p, err);
    if (!fresh) {
        pthread_mutex_lock(&p->mu);
        give_back_slot_locked(p);
        pthread_mutex_unlock(&p->mu);
    }
    return fresh;
}

void db_pool_maintain(db_pool *p)
{
    const db_config *cfg = p->cfg;
    double now = db_now();
    db_conn *doomed = NULL;
    bool fill = false;
    pthread_mutex_lock(&p->mu);
    /* the list is most recently used first: walk it and drop what aged out */
    int keep = 0;
    for (db_conn **pp = &p->idle; *pp;) {
        db_conn *c = *pp;
        bool idle_too_long = now - c->last_used >= cfg->idle_timeout && keep >= cfg->pool_min_idle;
        if (idle_too_long || now >= c->expires) {
            *pp = c->next;
            c->next = doomed;
            doomed = c;
            p->nidle--;
            p->open--;
        } else {
            keep++;
            pp = &c->next;
        }
    }
    if (!p->closing && !p->whead && p->nidle + p->in_use < cfg->pool_min_idle &&
        p->open < cfg->pool_max) {
        p->open++;
        fill = true;
    }
    pthread_mutex_unlock(&p->mu);
    while (doomed) {
        db_conn *next = doomed->next;
        close_conn(doomed);
        doomed = next;
    }
    if (!fill)
        return;
    db_error err;
    db_conn *c = open_conn(p, &err);
    pthread_mutex_lock(&p->mu);
    p->in_use++; /* so that release() files it as idle (or hands it to a waiter) */
    pthread_mutex_unlock(&p->mu);
    if (c) {
        db_pool_release(p, c, false);
    } else {
        pthread_mutex_lock(&p->mu);
        give_back_slot_locked(p);
        pthread_mutex_unlock(&p->mu);
    }
}

bool db_pool_close(db_pool *p, double wait)
{
    pthread_mutex_lock(&p->mu);
    p->closing = true;
    for (db_waiter *w = p->whead; w; w = w->next) {
        w->outcome = W_CLOSED;
        coro_unpark(&w->parker);
    }
    p->whead = p->wtail = NULL;
    struct timespec ts = abs_mono(db_now() + wait);
    while (p->in_use > 0 && pthread_cond_timedwait(&p->drained, &p->mu, &ts) != ETIMEDOUT)
        ;
    db_conn *idle = p->idle;
    p->idle = NULL;
    p->open -= p->nidle;
    p->nidle = 0;
    int left = p->in_use;
    /* waiters woken above may still be reading their outcome under this lock */
    while (p->waiting > 0) {
        pthread_mutex_unlock(&p->mu);
        sched_yield();
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    while (idle) {
        db_conn *next = idle->next;
        close_conn(idle);
        idle = next;
    }
    if (left) {
        log_warn("database pool %s closed with %d connection(s) still borrowed", p->label, left);
        return false;
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->drained);
    free(p->url);
    return true;
}

void db_pool_stats_add(db_pool *p, db_stats *out)
{
    pthread_mutex_lock(&p->mu);
    out->open += p->open;
    out->idle += p->nidle;
    out->in_use += p->in_use;
    out->waiting += p->waiting;
    out->connects += p->connects;
    out->connect_failures += p->connect_failures;
    out->outage_fast_failures += p->fast_failures;
    out->discarded += p->discarded;
    out->acquires += p->acquires;
    out->acquire_timeouts += p->acquire_timeouts;
    out->acquire_wait_seconds_total += p->wait_total;
    out->preparing += atomic_load(&p->prepare) == DB_PREP_YES;
    pthread_mutex_unlock(&p->mu);
}
