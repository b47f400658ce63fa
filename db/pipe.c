/* pipe: see pipe.h. One channel per (loop thread, pool); its driver is a coroutine that lives
 * while the channel has statements, sends a batch, hands out the results, and repeats. Everything
 * here runs on one thread: no locks. */
#include "db/pipe.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/coro.h"
#include "core/log.h"

typedef struct item {
    const char *sql;
    int nparams;
    const char *const *params;
    int format;       /* of the results: 0 text, 1 binary */
    double queued_at; /* coro_now() when the caller queued it: its deadlines count from there */
    uint64_t hash;    /* of sql, when slow statements are set aside (class_of) */
    PGresult *res;
    db_error err; /* when res is NULL */
    bool done, timed_out;
    bool ghost;   /* left in a batch by rescue() in place of a read re-sent elsewhere: its results
                   * are dropped; heap-allocated, freed with them */
    bool rescued; /* re-sent elsewhere by rescue() once: it is not moved again */
    bool parked;  /* rescued, then its new connection was lost: it waits for its ghost's outcome */
    struct item *twin; /* a rescued read's ghost, and a ghost's read, while both live; else NULL */
    int lost; /* connections lost while it waited for its result: a read is re-sent until LOST_MAX
               */
    int stmt; /* sent as the connection's prepared statement stmts->s[stmt], or -1: unnamed */
    unsigned name; /* and that statement's name (stmt_of) */
    bool parse;    /* its Parse was sent before it, and that Parse's result is still to come */
    int replans;   /* times it was re-sent because of its prepared statement (replan, REPLANS) */
    /* write lanes only (see pipe.h): */
    bool first;   /* the first statement of its batch: an error of its own is its own outcome */
    bool alone;   /* sent as a batch of its own (after an error of a batch, or at its commit) */
    int races;    /* deadlocks and serialization failures it lost, alone: re-sent up to RACES */
    unsigned seq; /* the batch it was sent in */
    coro *co;
    struct item *next;
} item;

/* A read whose connection is lost is re-sent on a fresh one; the third loss fails it. Twice, not
 * once: under backends terminated every second (chaos) a re-sent read now and then met a second,
 * independent fault (a sweep, a cut) on its fresh connection and failed with 503 outside any
 * outage. Each re-send needs a connection that opened, that is a database that answers, so this
 * does not stretch an outage: then the reconnect fails and the reads fail at once. */
#define LOST_MAX 3

typedef struct chan {
    db_pool *pool;
    double timeout, grace;
    db_conn *conn;
    item *qhead, *qtail;  /* waiting for the next batch */
    item *batch;          /* sent, in order, results pending */
    double sent_at;       /* when the last batch left */
    double answered_at;   /* when the last batch was answered (its Sync), or the lane started */
    double head_since;    /* when the batch the server is running now started to run */
    double last_answer;   /* when the last result arrived (a statement's own time, answered) */
    double rescued_since; /* head_since of the batch whose reads behind it rescue() moved */
    coro *driver;
    int syncs;   /* batches in flight (each ends with a Sync) */
    bool writes; /* a write lane: one implicit transaction per batch, results at its Sync */
    bool solo;   /* it runs a statement observed slow (class_of), alone: it takes nothing else */
    bool driving;
    bool gathering; /* driving, and its next batch not sent yet: newcomers join it */
    bool acquiring; /* the driver waits for a connection from the pool */
    bool waiting;   /* the driver waits for answers: newcomers wake it to leave at once */
    /* write lanes: */
    bool commit_err_ended;       /* libpq ended commit_err's results (a NULL) */
    unsigned seq_sent, seq_read; /* batches sent, batches answered up to their Sync */
    item *held, **htail;         /* executed in the batch being read: committed at its Sync */
    PGresult *commit_err;        /* the batch's commit failed (an error after its last statement) */
} chan;

/* A statement alone in its batch that loses a deadlock or a serialization failure this often gets
 * that error: two single statements can deadlock only when one of them takes several row locks. */
#define RACES 3

/* ---- prepared statements (DB_PREPARE; see pipe.h) ---- */

/* Up to STMTS_MAX statements of a connection are prepared at once: an API's are a few dozen; a
 * caller that builds its SQL per request gets unnamed ones past that, not a growing cache. */
#define STMTS_MAX 64
/* How often a statement is re-sent because of its prepared statement (replan): a migration's
 * ALTER happens once, and a pool stops preparing at the first name the server does not know. */
#define REPLANS 2

enum { ST_FREE, ST_PARSING, ST_READY };

typedef struct stmt {
    const char *seen; /* the caller's pointer last time: usually the same static string */
    char *sql;        /* owned copy; NULL when free */
    uint64_t hash;
    unsigned name;       /* its name's number: never sent twice on a connection (stmt_name) */
    unsigned seq;        /* ST_PARSING: the batch its Parse was sent in */
    unsigned char state; /* ST_FREE: an unused slot */
} stmt;

struct db_stmts {
    int n;              /* slots used so far (some may be free again) */
    unsigned next_name; /* the number of the next name */
    char tag[17];       /* random, in every name: see stmt_name */
    stmt s[STMTS_MAX];
};

void db_pipe_stmts_free(struct db_stmts *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->n; i++)
        free(st->s[i].sql);
    free(st);
}

/* A statement text's hash, for the tables below (never stored or sent). Eight bytes a step: a
 * list's statement is 600 bytes, hashed for every read, and FNV-1a's byte a step cost 2,400
 * instructions of it. Each word is mixed in with multiplies and a shift-xor (as murmur's and
 * xxHash's finalizers do); the length goes in first. */
static uint64_t text_hash(const char *s)
{
    size_t n = strlen(s), i = 0;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n, w;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        h = (h ^ (w * 0xff51afd7ed558ccdull)) * 0xc4ceb9fe1a85ec53ull;
        h ^= h >> 29;
    }
    w = 0;
    memcpy(&w, s + i, n - i);
    h = (h ^ (w * 0xff51afd7ed558ccdull)) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 32);
}

/* A slot's statement is not to be used again (its Parse failed or was skipped, or its plan's
 * result type changed). Its name is not reused: PgBouncer's prepared-statement support (Neon's
 * pooler) registers a name at the Parse, whatever the server answers, and closes the connection
 * of a client that sends a Parse of a registered name. */
static void stmt_drop(stmt *s)
{
    free(s->sql);
    s->sql = NULL;
    s->seen = NULL;
    s->state = ST_FREE;
}

/* The slot of the prepared statement to send `sql` as on connection c in batch `seq`, or -1 to
 * send it unnamed. *parse: its Parse must go first (and its result comes first). A statement
 * whose Parse is still unanswered can be used in the same batch only: if that Parse fails or is
 * skipped, the rest of its batch is skipped too, where a later batch would run and meet a missing
 * name. */
static int stmt_for(db_conn *c, const char *sql, unsigned seq, bool *parse)
{
    *parse = false;
    struct db_stmts *st = c->stmts;
    if (!st) {
        if (!(st = c->stmts = calloc(1, sizeof *st)))
            return -1;
        uint64_t r = 0;
        if (getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r) /* not seeded yet: unlikely */
            r = (uint64_t)(uintptr_t)st ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(coro_now() * 1e9);
        snprintf(st->tag, sizeof st->tag, "%016llx", (unsigned long long)r);
    }
    uint64_t h = 0;
    bool hashed = false;
    int free_slot = -1;
    for (int i = 0; i < st->n; i++) {
        stmt *s = &st->s[i];
        if (s->state == ST_FREE) {
            free_slot = free_slot < 0 ? i : free_slot;
            continue;
        }
        /* the same pointer is usually the same static string: then no hash to compute; the
         * text is compared all the same (a caller's buffer may hold another statement now) */
        if (s->seen != sql) {
            if (!hashed) {
                h = text_hash(sql);
                hashed = true;
            }
            if (s->hash != h)
                continue;
        }
        if (strcmp(s->sql, sql))
            continue;
        s->seen = sql;
        if (s->state == ST_READY)
            return i;
        return s->seq == seq ? i : -1; /* ST_PARSING */
    }
    int i = free_slot >= 0 ? free_slot : st->n < STMTS_MAX ? st->n : -1;
    if (i < 0)
        return -1;
    stmt *s = &st->s[i];
    if (!(s->sql = strdup(sql)))
        return -1;
    if (i == st->n)
        st->n++;
    s->seen = sql;
    s->hash = hashed ? h : text_hash(sql);
    s->name = st->next_name++;
    s->state = ST_PARSING;
    s->seq = seq;
    *parse = true;
    return i;
}

/* A name no other connection uses, even another process's: through a pooler that does not keep
 * prepared statements (DB_PREPARE=on by mistake, or a pooler that changed), a Bind may reach a
 * server connection where another client prepared its own statements; with names like "p0" it
 * could run theirs with our parameters. With a random tag it finds nothing (26000), and replan()
 * stops preparing. */
static void stmt_name(char *buf, size_t len, const struct db_stmts *st, unsigned name)
{
    snprintf(buf, len, "ntd_%s_%u", st->tag, name);
}

/* The slot `it` was sent with, if it still holds the statement `it` named (a slot dropped and
 * taken by another statement meanwhile does not). */
static stmt *stmt_of(db_conn *c, const item *it)
{
    stmt *s = it->stmt >= 0 && c->stmts ? &c->stmts->s[it->stmt] : NULL;
    return s && s->state != ST_FREE && s->name == it->name ? s : NULL;
}

/* The result r of its Parse: its statement is on the server now, or not. A Parse that failed
 * (not skipped) keeps its error as the statement's outcome: the statement itself is then skipped.
 * Returns true when r says the server is closing the connection (r freed). */
static bool parsed(db_conn *c, item *it, PGresult *r)
{
    stmt *s = stmt_of(c, it);
    ExecStatusType st = PQresultStatus(r);
    if (s && st == PGRES_COMMAND_OK)
        s->state = ST_READY;
    else if (s)
        stmt_drop(s);
    bool bye = st != PGRES_COMMAND_OK && st != PGRES_PIPELINE_ABORTED &&
               db_sqlstate_conn_lost(PQresultErrorField(r, PG_DIAG_SQLSTATE));
    if (st == PGRES_COMMAND_OK || st == PGRES_PIPELINE_ABORTED || it->res || bye) {
        PQclear(r);
        return bye;
    }
    it->res = r;
    return false;
}

/* Whether its error result is its prepared statement's, not its own, so that it must be re-sent
 * (found before it executed, so a write too): the result type of a cached plan changed (0A000: an
 * ALTER of a column it returns), and the statement is prepared afresh under a new name; or the
 * name is unknown or taken (26000, 42P05): a pooler in between does not keep prepared statements
 * (each transaction may get another server connection), so the pool stops preparing and it goes
 * unnamed. */
static bool replan(chan *ch, item *it)
{
    const char *state = PQresultErrorField(it->res, PG_DIAG_SQLSTATE);
    if (it->stmt < 0 || !state || it->replans >= REPLANS)
        return false;
    if (!strcmp(state, "26000") || !strcmp(state, "42P05")) {
        if (atomic_exchange(&ch->pool->prepare, DB_PREP_NO) != DB_PREP_NO)
            log_warn("database (%s): a prepared statement was not found on the server (%s): a "
                     "pooler that does not keep prepared statements is in between; statements "
                     "are sent unnamed from now on (set DB_PREPARE=off to say so)",
                     ch->pool->label, state);
    } else if (!strcmp(state, "0A000")) {
        stmt *s = stmt_of(ch->conn, it);
        if (s)
            stmt_drop(s);
    } else {
        return false;
    }
    it->replans++;
    return true;
}

/* Up to DB_PIPELINE_CONNS connections (lanes) per pool, split among the loop threads (at least
 * one each: db_config.pipeline_threads), each lane with its own batches in flight. One lane runs
 * every pipelined statement on one backend, that is on one CPU of the server; two (the default)
 * keep two backends busy and overlap a distant database's round trips while holding at most two
 * connections, which is what Neon's connection limits reward (docs/benchmarks.md). Two pools per
 * engine at most, and tests may open a few engines in one process. */
#define CHANS (4 * DB_PIPELINE_CONNS_MAX)
static _Thread_local chan chans[CHANS];

/* A lane is slow while the batch the server runs on it has run longer than
 * DB_PIPELINE_SLOW_AFTER (0: never): it takes no new statements while another lane can, sends
 * nothing further behind that batch, and does not count against DB_PIPELINE_CONNS, so that fast
 * statements go to another connection (up to DB_POOL_MAX) instead of waiting behind it. */
static bool lane_slow(const chan *ch, double now)
{
    double after = ch->pool->cfg->pipeline_slow_after;
    return ch->solo || (after > 0 && ch->driving && ch->syncs > 0 && now - ch->head_since > after);
}

/* Whether a busy lane a is a better place than b to queue behind: for reads the one whose batch
 * left first (the likeliest to answer first), or, with slow lanes set aside, the one whose running
 * batch started last (the longer a batch has run, the longer it tends to run on); for writes the
 * one that answered a batch last: a lane whose batch waits on a row lock answers nothing meanwhile
 * and gets no new writes while another lane moves. */
static bool better_busy(const chan *a, const chan *b)
{
    if (a->writes)
        return a->answered_at > b->answered_at;
    if (a->pool->cfg->pipeline_slow_after > 0)
        return a->head_since > b->head_since;
    return a->sent_at < b->sent_at;
}

/* The loop's share of DB_PIPELINE_CONNS (or _WRITE_CONNS): lanes busy at once with statements
 * that are not slow; *most: lanes in all, slow ones included (DB_POOL_MAX's share, at most
 * DB_PIPELINE_CONNS_MAX; the configured lanes when slow lanes are not set aside). */
static int lane_count(const db_pool *p, bool writes, int *most)
{
    const db_config *cfg = p->cfg;
    int threads = cfg->pipeline_threads > 1 ? cfg->pipeline_threads : 1;
    int lanes = (writes ? cfg->pipeline_write_conns : cfg->pipeline_conns) / threads;
    if (lanes < 1 || lanes > DB_PIPELINE_CONNS_MAX)
        lanes = 1; /* at least one per loop; or a config not from db_config_from_env() */
    int all = cfg->pipeline_slow_after > 0 ? cfg->pool_max / threads : lanes;
    *most = all < lanes ? lanes : all > DB_PIPELINE_CONNS_MAX ? DB_PIPELINE_CONNS_MAX : all;
    return lanes;
}

/* A chans[] entry for a new lane of (p, writes): unused, or idle (a closed engine's, or the other
 * kind's); NULL when none is. */
static chan *lane_new(db_pool *p, bool writes)
{
    for (int i = 0; i < CHANS; i++) {
        if (!(chans[i].pool == p && chans[i].writes == writes) && !chans[i].driving) {
            chans[i] = (chan){.pool = p, .writes = writes};
            return &chans[i];
        }
    }
    return NULL;
}

/* The lanes of one kind sorted by what they can take now (chan_for). */
typedef struct lane_sort {
    chan *best, *idle, *starved, *slow;
    int busy; /* lanes driving that are not slow */
} lane_sort;

/* Sorts the n lanes into k; returns one gathering its next batch, if any. */
static chan *lanes_sort(chan **lane, int n, double now, lane_sort *k)
{
    *k = (lane_sort){0};
    for (int i = 0; i < n; i++) {
        chan *c = lane[i];
        bool slow = lane_slow(c, now);
        k->busy += c->driving && !slow;
        /* a lane waiting for a pool connection (DB_POOL_MAX reached) takes new statements only
         * when no other can: a lane with a connection may keep it as long as it has work */
        if (c->acquiring)
            k->starved = k->starved ? k->starved : c;
        else if (slow)
            k->slow = !k->slow || c->head_since > k->slow->head_since ? c : k->slow;
        else if (c->gathering)
            return c;
        else if (!c->driving)
            k->idle = k->idle ? k->idle : c;
        else if (!k->best || better_busy(c, k->best))
            k->best = c;
    }
    return NULL;
}

/* The lane for a statement observed slow: `free` (idle or new), marked solo; else as any other. */
static chan *solo_lane(chan *free, chan *gathering, const lane_sort *k)
{
    if (free) {
        free->solo = true;
        return free;
    }
    return gathering ? gathering : k->best ? k->best : k->starved ? k->starved : k->slow;
}

/* The lane for a new statement: one observed slow (`solo`, see class_of) alone on an idle or a
 * new lane; else one gathering its next batch, else an idle one (started by the
 * caller) while fewer than the loop's share of lanes are busy with statements that are not slow,
 * else the best busy one that is not slow (better_busy), else a new lane within DB_POOL_MAX; one
 * waiting for a pool connection, then the slow one whose batch started last, only when nothing
 * else can take it. */
static chan *chan_for(db_pool *p, bool writes, bool solo)
{
    chan *lane[DB_PIPELINE_CONNS_MAX];
    int most, lanes = lane_count(p, writes, &most), n = 0;
    for (int i = 0; i < CHANS && n < most; i++)
        if (chans[i].pool == p && chans[i].writes == writes)
            lane[n++] = &chans[i];
    while (n < lanes && (lane[n] = lane_new(p, writes)))
        n++;
    lane_sort k;
    chan *gathering = lanes_sort(lane, n, coro_now(), &k);
    if (solo) /* a statement observed slow: alone on an idle or a new lane, when there is one */
        return solo_lane(k.idle ? k.idle : n < most ? lane_new(p, writes) : NULL, gathering, &k);
    if (gathering)
        return gathering;
    if (k.idle && (k.busy < lanes || !k.best))
        return k.idle;
    if (k.best)
        return k.best;
    chan *fresh = n < most ? lane_new(p, writes) : NULL;
    return fresh ? fresh : k.starved ? k.starved : k.slow;
}

static void finish(item *it)
{
    item *t = it->twin;
    if (it->ghost && t && t->parked) { /* its read lost its new lane: this outcome is the read's */
        t->res = it->res;
        t->err = it->err;
        t->timed_out = it->timed_out;
        t->parked = false;
        t->twin = NULL;
        free(it);
        finish(t);
        return;
    }
    if (t)
        t->twin = NULL; /* a read answered elsewhere: its ghost drops what it gets */
    if (it->ghost) {
        PQclear(it->res);
        free(it);
        return;
    }
    it->done = true;
    coro_wake(it->co);
}

/* A ghost that will get no outcome (skipped, or its connection lost) goes. Returns its read when
 * that one waits for it (parked): to be re-sent in the ghost's place; else NULL. */
static item *ghost_gone(item *g)
{
    item *t = g->twin;
    PQclear(g->res);
    free(g);
    if (!t)
        return NULL;
    t->twin = NULL;
    if (!t->parked)
        return NULL;
    t->parked = false;
    return t;
}

/* ---- statements observed slow (DB_PIPELINE_SLOW_AFTER) ----
 * A batch is answered at its Sync: the fast reads batched with a slow one wait for it whatever
 * lane it is on. So each loop remembers, per statement text (a read's SQL, by hash, in a small
 * direct-mapped table), whether it ran longer than DB_PIPELINE_SLOW_AFTER. The server runs a
 * pipeline's statements one after the other, so a statement's own time is from the later of its
 * batch's start and the previous result's arrival to its own result's arrival: the slow statement
 * is named exactly, and the fast reads behind it in its batch are not blamed for it. One slow run
 * marks a statement slow at once (the second run of a slow search is sent alone); two fast ones
 * in a row clear it (a moving average, quick to mark and slower to clear, so a one-off stall of a
 * busy machine does not keep a fast statement alone). A statement marked slow is sent alone, on
 * an idle or a new lane that takes nothing else while it runs (chan.solo). */
#define CLASSES 64
#define CLASS_MARK 0.75  /* weight of a slow run: one marks the statement (over 0.5) */
#define CLASS_CLEAR 0.25 /* weight of a fast run */

typedef struct stmt_class {
    uint64_t hash;
    double slow; /* the moving average of "it ran slow" (0 or 1) */
} stmt_class;

static _Thread_local stmt_class classes[CLASSES];

static stmt_class *class_of(uint64_t hash)
{
    stmt_class *c = &classes[hash % CLASSES];
    if (c->hash != hash)
        *c = (stmt_class){.hash = hash};
    return c;
}

/* A read's result arrived: its own time is a sample of its statement's; it is done. */
static void answered(chan *ch, item *it, bool cancelled)
{
    double now = coro_now();
    if (it->hash) {
        double began = ch->last_answer > ch->head_since ? ch->last_answer : ch->head_since;
        stmt_class *c = class_of(it->hash);
        if (now - began > ch->pool->cfg->pipeline_slow_after)
            c->slow += CLASS_MARK * (1 - c->slow);
        else
            c->slow -= CLASS_CLEAR * c->slow;
    }
    ch->last_answer = now;
    it->timed_out = cancelled;
    finish(it);
}

static void enqueue_front(chan *ch, item *list)
{
    if (!list)
        return;
    item *last = list;
    while (last->next)
        last = last->next;
    last->next = ch->qhead;
    ch->qhead = list;
    if (!ch->qtail)
        ch->qtail = last;
}

/* Ends the wait of every statement of `list` with err. */
static void fail_all(item *list, const db_error *err)
{
    for (item *it = list, *next; it; it = next) {
        next = it->next;
        it->err = *err;
        finish(it);
    }
}

static void release(chan *ch, bool broken)
{
    if (!ch->conn)
        return;
    if (!broken && PQpipelineStatus(ch->conn->pg) != PQ_PIPELINE_OFF &&
        !PQexitPipelineMode(ch->conn->pg))
        broken = true;
    db_pool_release(ch->pool, ch->conn, broken);
    ch->conn = NULL;
}

/* The moment a statement queued at `queued_at` may no longer be sent: its wait for a place in a
 * batch counts against DB_ACQUIRE_TIMEOUT, as a session's wait for a connection does. */
static double send_by(const chan *ch, double queued_at)
{
    return queued_at + ch->pool->cfg->acquire_timeout;
}

/* Fails the queued statements whose time to be sent has passed (they are never sent: a read
 * answers 503, a write did not happen). Returns the earliest such moment of those left, 0 when
 * none are queued. */
static double expire_queued(chan *ch, double now)
{
    double next = 0;
    item **pp = &ch->qhead, *last = NULL;
    while (*pp) {
        item *it = *pp;
        double by = send_by(ch, it->queued_at);
        if (now < by) {
            next = next == 0 || by < next ? by : next;
            last = it;
            pp = &it->next;
            continue;
        }
        *pp = it->next;
        it->next = NULL;
        db_error_set(&it->err, DB_ERR_POOL_TIMEOUT, NULL,
                     "the statement waited %g s (DB_ACQUIRE_TIMEOUT) for its turn on a database "
                     "connection and was not sent",
                     ch->pool->cfg->acquire_timeout);
        snprintf(it->err.hint, sizeof it->err.hint,
                 "retry later; slower statements held the connections (DB_POOL_MAX, "
                 "DB_PIPELINE_SLOW_AFTER)");
        finish(it);
    }
    ch->qtail = last;
    return next;
}

/* When the batch that starts to run now is cancelled: DB_STATEMENT_TIMEOUT from now, or earlier
 * when one of its statements waited in the pipeline behind slower batches: none is answered
 * later than DB_ACQUIRE_TIMEOUT + DB_STATEMENT_TIMEOUT after it was queued. 0: no limit. */
static double head_deadline(const chan *ch, double now)
{
    if (ch->timeout <= 0)
        return 0;
    double d = now + ch->timeout;
    const item *head = ch->batch;
    for (const item *it = head; it && it->seq == head->seq; it = it->next) {
        double by = send_by(ch, it->queued_at) + ch->timeout;
        d = by < d ? by : d;
    }
    return d;
}

/* Sends the queued statements as one batch, behind those already in flight (libpq's pipeline
 * takes new statements while earlier answers are pending: against a distant database a statement
 * leaves at once instead of waiting a round trip for the batch before it). Returns 0, or -1 when
 * the connection failed. */
static int send_batch(chan *ch)
{
    PGconn *pg = ch->conn->pg;
    if (expire_queued(ch, coro_now()) == 0)
        return 0; /* nothing left to send */
    item *list = ch->qhead, **tail = &ch->batch;
    ch->qhead = ch->qtail = NULL;
    while (*tail)
        tail = &(*tail)->next;
    *tail = list;
    ch->gathering = false;
    ch->sent_at = coro_now();
    bool open = false; /* a batch without its Sync yet */
    bool prepare = atomic_load_explicit(&ch->pool->prepare, memory_order_relaxed) == DB_PREP_YES;
    for (item *it = list; it; it = it->next) {
        if (it->alone && open) {
            if (!PQpipelineSync(pg))
                return -1;
            ch->syncs++;
            ch->seq_sent++;
            open = false;
        }
        it->first = !open;
        it->seq = ch->seq_sent;
        it->parse = false; /* a re-sent statement's earlier Parse is answered */
        it->stmt = prepare ? stmt_for(ch->conn, it->sql, it->seq, &it->parse) : -1;
        if (it->stmt >= 0) {
            char name[48];
            it->name = ch->conn->stmts->s[it->stmt].name;
            stmt_name(name, sizeof name, ch->conn->stmts, it->name);
            if ((it->parse && !PQsendPrepare(pg, name, it->sql, it->nparams, NULL)) ||
                !PQsendQueryPrepared(pg, name, it->nparams, it->params, NULL, NULL, it->format))
                return -1;
        } else if (!PQsendQueryParams(pg, it->sql, it->nparams, NULL, it->params, NULL, NULL,
                                      it->format)) {
            return -1;
        }
        open = true;
        if (it->alone) {
            if (!PQpipelineSync(pg))
                return -1;
            ch->syncs++;
            ch->seq_sent++;
            open = false;
        }
    }
    if (open) {
        if (!PQpipelineSync(pg))
            return -1;
        ch->syncs++;
        ch->seq_sent++;
    }
    return 0;
}

/* An error result that means the server is closing the connection: a terminated backend's FATAL
 * goodbye (57P01), a shutdown (57P02), a connection failure (08xxx; PgBouncer's own goodbyes).
 * libpq reports the goodbye as the running statement's
 * result and notices the EOF behind it only at its next read, so CONNECTION_BAD alone comes too
 * late: the statement would end with the goodbye instead of being re-sent like the others. */
static bool says_goodbye(const PGresult *r)
{
    return db_sqlstate_conn_lost(PQresultErrorField(r, PG_DIAG_SQLSTATE));
}

static void append(item ***tail, item *it)
{
    it->next = NULL;
    **tail = it;
    *tail = &it->next;
}

static bool ok_result(const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    return st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
}

/* A write lane's statement `it` ended with the error it->res: the batch's transaction was rolled
 * back. What it executed before (ch->held) is re-sent; its error is its own when it was first in
 * its batch (nothing before it in the transaction could have caused it) or a cancel, else it is
 * re-sent alone, behind them (a unique violation against a row of its own batch, or a retry of an
 * Idempotency-Key that its own batch claimed, then waits and replays as between transactions). A
 * deadlock or serialization failure is re-sent alone up to RACES times. */
static void write_failed(chan *ch, item *it, bool cancelled, item ***rtail)
{
    for (item *h = ch->held, *next; h; h = next) {
        next = h->next;
        PQclear(h->res);
        h->res = NULL;
        append(rtail, h);
    }
    ch->held = NULL;
    ch->htail = &ch->held;
    const char *state = PQresultErrorField(it->res, PG_DIAG_SQLSTATE);
    bool race = state && (!strcmp(state, "40P01") || !strcmp(state, "40001"));
    /* a result type changed under its prepared statement: not its outcome, re-sent afresh */
    bool replanned = !cancelled && replan(ch, it);
    if (cancelled || (it->first && !replanned && !(race && it->races++ < RACES))) {
        it->timed_out = cancelled;
        finish(it);
        return;
    }
    PQclear(it->res);
    it->res = NULL;
    it->alone = true;
    append(rtail, it);
}

/* A write lane's batch was answered up to its Sync: what it executed committed, unless its commit
 * failed; then a statement alone gets the error, several are re-sent alone each (which of them
 * made the commit fail is unknown). */
static void write_synced(chan *ch, item ***rtail)
{
    PGresult *cerr = ch->commit_err;
    ch->commit_err = NULL;
    ch->commit_err_ended = false;
    if (cerr && ch->held && !ch->held->next) {
        PQclear(ch->held->res);
        ch->held->res = cerr;
        cerr = NULL;
    }
    for (item *h = ch->held, *next; h; h = next) {
        next = h->next;
        if (cerr) {
            PQclear(h->res);
            h->res = NULL;
            h->alone = true;
            append(rtail, h);
        } else {
            finish(h);
        }
    }
    PQclear(cerr);
    ch->held = NULL;
    ch->htail = &ch->held;
    ch->seq_read++;
}

/* Waits until the connection is readable (or writable, while `write`: the rest of a batch to
 * send) or the deadline passes, as coro_wait_fd, waking earlier to fail the statements held back
 * (`hold`: after a cancel, or behind a slow batch) whose time to be sent passed: then 2. */
static int wait_answers(chan *ch, bool write, bool hold, double deadline)
{
    ch->waiting = !write && !hold; /* a newcomer's wake-up then reads as "readable" */
    double expiry = expire_queued(ch, coro_now());
    bool expires_first = expiry > 0 && (deadline == 0 || expiry < deadline);
    int ready = coro_wait_fd(PQsocket(ch->conn->pg), write, expires_first ? expiry : deadline);
    ch->waiting = false;
    return ready == 0 && expires_first ? 2 : ready;
}

/* Queues `it` on lane ch, behind what ch has queued, and starts ch's driver or wakes it. Returns
 * 0, or -1 when out of memory (`it` is then not queued). */
static void drive(void *arg);
static int lane_enqueue(chan *ch, item *it)
{
    if (!ch->driving) {
        /* started at the loop's next iteration: the requests already read join this batch */
        if (coro_spawn_later(drive, NULL, ch) < 0)
            return -1;
        ch->driving = ch->gathering = true;
    }
    it->next = NULL;
    if (ch->qtail)
        ch->qtail->next = it;
    else
        ch->qhead = it;
    ch->qtail = it;
    if (ch->waiting) { /* leaves now, behind the batches in flight */
        ch->waiting = false;
        coro_wake(ch->driver);
    }
    return 0;
}

/* ---- reads behind a slow statement (DB_PIPELINE_SLOW_AFTER) ----
 * The server runs a connection's statements in order, so reads sent behind one that turns out
 * slow (the first run of a slow search, a lock, a backend starved of CPU by the server's other
 * work) wait for it however fast they are: a loop's worth of requests stalled as long as the slow
 * one runs. Once the lane is slow, they are re-sent on a lane that can run them now, and a copy
 * of each (a ghost) stays in its place to take its results and drop them. A read has no effects,
 * so running it twice costs only the server's time, as the re-send of a read whose connection was
 * lost does. The moved copy answers the caller, unless its new connection is lost: then the read
 * waits for its ghost's outcome (parked) instead of a third copy, which through a pooler failing
 * its server logins may be lost again. A write lane's batch is one transaction: its writes
 * stay. */

/* Whether `it`, in flight behind a slow statement, may move to another lane: not a ghost, not
 * moved before, not a statement observed slow (it would only slow another lane). */
static bool movable(const item *it)
{
    const stmt_class *c = &classes[it->hash % CLASSES];
    return !it->ghost && !it->rescued && !(it->hash && c->hash == it->hash && c->slow > 0.5);
}

/* When the reads behind ch's running statement are due to move (its batch slow), or 0: nothing
 * to move, or moved already for this batch. */
static double rescue_at(const chan *ch)
{
    double after = ch->pool->cfg->pipeline_slow_after;
    if (ch->writes || after <= 0 || !ch->batch || ch->rescued_since == ch->head_since)
        return 0;
    bool behind = false;
    for (const item *it = ch->batch->next; it && !behind; it = it->next)
        behind = movable(it);
    return behind ? ch->head_since + after : 0;
}

/* A lane that can run reads moved off ch now: not slow, not waiting for a pool connection, with
 * a connection or one the pool lends at once; else NULL (they stay behind the slow one). */
static chan *rescue_lane(chan *ch, double now)
{
    chan *to = chan_for(ch->pool, false, false);
    if (!to || to == ch || to->acquiring || lane_slow(to, now) ||
        (!to->conn && !db_pool_can_lend(ch->pool)))
        return NULL;
    to->timeout = ch->timeout;
    to->grace = ch->grace;
    return to;
}

/* Moves the reads in flight behind ch's running statement to lanes that can run them now, each
 * leaving a ghost in its place. Queued reads stay: they have no copy to fall back on, and a lane
 * takes new ones only when no other lane can. */
static void rescue(chan *ch, double now)
{
    ch->rescued_since = ch->head_since;
    for (item **pp = &ch->batch->next; *pp; pp = &(*pp)->next) {
        if (!movable(*pp))
            continue;
        chan *to = rescue_lane(ch, now);
        item *it = *pp, *g = to ? malloc(sizeof *g) : NULL;
        if (!g)
            return;
        *g = *it;
        g->ghost = true;
        g->hash = 0; /* its time is the slow one's, not its own */
        g->co = NULL;
        g->twin = it;
        it->twin = g;
        it->rescued = true;
        if (lane_enqueue(to, it) < 0) {
            it->rescued = false;
            it->twin = NULL;
            it->next = g->next;
            free(g);
            return;
        }
        *pp = g;
    }
}

/* ---- reading a lane's batches (read_batch) ---- */

/* read_batch's state: the batches in flight on one lane, read in order. */
typedef struct reader {
    chan *ch;
    PGconn *pg;
    double deadline; /* the running batch's (head_deadline), or the end of the cancel's grace */
    bool cancelled;  /* the running batch was cancelled: its statements end as timed out */
    bool goodbye;    /* a result said the server is closing the connection (says_goodbye) */
    item *retry, **rtail; /* to be re-sent: queued again, in front, at the batch's Sync */
} reader;

/* What read_batch does after a result (take_result). */
typedef enum {
    TAKE_NEXT,  /* take the next result */
    TAKE_CHECK, /* take the next one unless the connection is gone or said goodbye */
    TAKE_WAIT,  /* nothing more to take before more input */
    TAKE_DONE   /* every batch in flight is answered */
} take;

/* The batch at the head of ch->batch starts to run now: its deadline (head_deadline), no cancel. */
static void batch_runs(reader *rd)
{
    rd->cancelled = false;
    rd->ch->head_since = coro_now();
    rd->deadline = head_deadline(rd->ch, rd->ch->head_since);
}

static bool conn_gone(const reader *rd)
{
    return PQstatus(rd->pg) == CONNECTION_BAD || rd->goodbye;
}

/* `it` goes back to the queue, without its result, at its batch's Sync. */
static void requeue(reader *rd, item *it)
{
    PQclear(it->res);
    it->res = NULL;
    if (it->ghost)
        it = ghost_gone(it); /* its read is another lane's, unless it waits for this copy */
    if (it)
        append(&rd->rtail, it);
}

/* The result r of the Parse sent just before `it`, or the NULL that ends it. When r says
 * goodbye, `it` stays in ch->batch, unanswered. */
static take take_parse(reader *rd, item *it, PGresult *r)
{
    if (!r)
        it->parse = false;
    else if (parsed(rd->ch->conn, it, r))
        rd->goodbye = true;
    return TAKE_CHECK;
}

/* A read's results ended: its outcome, unless its prepared statement failed it (replan). */
static void read_ended(reader *rd, item *it)
{
    if (it->res && !ok_result(it->res) && replan(rd->ch, it))
        requeue(rd, it); /* re-sent, prepared afresh */
    else
        answered(rd->ch, it, rd->cancelled);
}

/* A write's results ended: held until its batch's Sync when it executed (write_synced), else its
 * batch is rolled back (write_failed). */
static void write_ended(reader *rd, item *it)
{
    if (it->res && ok_result(it->res))
        append(&rd->ch->htail, it);
    else
        write_failed(rd->ch, it, rd->cancelled, &rd->rtail);
}

/* The NULL that ends a statement's results (or, on a write lane, the commit's error), or that
 * says nothing more has come. */
static take statement_ended(reader *rd, item *it, bool at_commit)
{
    chan *ch = rd->ch;
    if (at_commit && ch->commit_err && !ch->commit_err_ended) {
        ch->commit_err_ended = true; /* the end of the commit's error: a Sync follows */
        return TAKE_NEXT;
    }
    if (!it || at_commit)
        return TAKE_WAIT;
    ch->batch = it->next;
    it->next = NULL;
    if (it->res && PQresultStatus(it->res) == PGRES_PIPELINE_ABORTED)
        requeue(rd, it); /* skipped because a neighbour failed */
    else if (ch->writes)
        write_ended(rd, it);
    else
        read_ended(rd, it);
    return TAKE_NEXT;
}

/* A batch's Sync: it is answered; what it skipped goes back to the queue, in front; the next
 * batch in flight runs now, with a deadline of its own. */
static take synced(reader *rd, PGresult *r)
{
    chan *ch = rd->ch;
    PQclear(r);
    ch->answered_at = coro_now();
    if (ch->writes)
        write_synced(ch, &rd->rtail);
    enqueue_front(ch, rd->retry);
    rd->retry = NULL;
    rd->rtail = &rd->retry;
    if (--ch->syncs == 0)
        return TAKE_DONE;
    batch_runs(rd);
    return TAKE_NEXT;
}

/* On a write lane, between a batch's last statement and its Sync: its commit's error. */
static take commit_result(reader *rd, PGresult *r)
{
    chan *ch = rd->ch;
    rd->goodbye = says_goodbye(r);
    if (!ch->commit_err)
        ch->commit_err = r;
    else
        PQclear(r);
    return TAKE_CHECK;
}

/* A result of the statement `it`: the first decides (an error, or the rows). A goodbye leaves
 * `it` in ch->batch, unanswered. */
static take statement_result(reader *rd, item *it, PGresult *r)
{
    rd->goodbye = it && !it->res && says_goodbye(r);
    if (it && !it->res)
        it->res = r;
    else
        PQclear(r);
    return TAKE_CHECK;
}

/* Hands the result r (NULL: the end of a statement's results) to whom it belongs. */
static take take_result(reader *rd, PGresult *r)
{
    chan *ch = rd->ch;
    item *it = ch->batch;
    bool sync = r && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
    /* on a write lane, between its batch's last statement and its Sync: the commit's */
    bool at_commit = ch->writes && (!it || it->seq != ch->seq_read);
    /* its Parse's result, then a NULL; a Sync first is the end of the batch before it */
    if (!at_commit && it && it->parse && !sync)
        return take_parse(rd, it, r);
    if (!r)
        return statement_ended(rd, it, at_commit);
    if (sync)
        return synced(rd, r);
    if (at_commit)
        return commit_result(rd, r);
    return statement_result(rd, it, r);
}

/* Takes the results libpq has read so far. Returns 0 when every batch in flight is answered, 1
 * when more input is needed, -1 when the connection is gone or the server said goodbye. */
static int take_results(reader *rd)
{
    while (!PQisBusy(rd->pg)) {
        take t = take_result(rd, PQgetResult(rd->pg));
        if (t == TAKE_DONE)
            return 0;
        if (t == TAKE_WAIT)
            break;
        if (t == TAKE_CHECK && conn_gone(rd))
            return -1;
    }
    return conn_gone(rd) ? -1 : 1;
}

/* The running batch's deadline passed: it is cancelled (the running statement ends with 57014,
 * the rest are skipped) and the server has the cancel's grace to answer. Returns -1 when it was
 * cancelled already, or there is no grace. */
static int deadline_passed(reader *rd)
{
    if (rd->cancelled || rd->ch->grace < 0)
        return -1;
    rd->cancelled = true;
    db_cancel(rd->pg);
    rd->deadline = coro_now() + rd->ch->grace;
    return 0;
}

/* Sends what was queued meanwhile as a further batch, then waits for input. Returns 0 to read on,
 * -1 when the connection failed or stayed silent past the deadline and the cancel's grace. */
static int send_and_wait(reader *rd)
{
    chan *ch = rd->ch;
    double now = coro_now();
    /* not after a cancel: what it skips is re-sent anyway */
    double rescue_by = rd->cancelled ? 0 : rescue_at(ch);
    if (rescue_by > 0 && now >= rescue_by && lane_slow(ch, now)) {
        rescue(ch, now);
        rescue_by = 0;
    }
    /* not after a cancel: what it skips would be re-sent behind it anyway; not behind a slow
     * batch: held back, they wait for it at most until their time to be sent passes */
    bool hold = rd->cancelled || lane_slow(ch, now);
    if (ch->qhead && !hold && send_batch(ch) < 0)
        return -1;
    int unsent = PQflush(rd->pg);
    if (unsent < 0)
        return -1;
    /* waking for the rescue a little after the lane turns slow (lane_slow's "longer than") */
    bool for_rescue = rescue_by > 0 && (rd->deadline == 0 || rescue_by < rd->deadline);
    int ready = wait_answers(ch, unsent == 1, hold, for_rescue ? rescue_by + 0.001 : rd->deadline);
    if (ready == 2 || (ready == 0 && for_rescue)) /* queued statements expired, or a rescue */
        return 0;
    if (ready == 0)
        return deadline_passed(rd);
    if (ready < 0 || !PQconsumeInput(rd->pg))
        /* a connection gone: collect the error results libpq made up for what was in flight */
        return PQstatus(rd->pg) == CONNECTION_BAD ? 0 : -1;
    return 0;
}

/* Reads the batches' results and hands each to its statement; statements queued meanwhile leave
 * as further batches. Statements the server skipped because an earlier one failed go back to the
 * queue, with no limit on how often: that cannot loop, since the first statement of a batch is
 * never skipped, so every batch answers at least one (a fixed cap would fail good reads queued
 * behind a few bad ones). On a write lane a statement's result is handed out only at its batch's
 * Sync, once the batch committed (write_failed, write_synced). The statement timeout applies per
 * batch, from the moment the one before it was answered. Returns 0 when no batch is in flight any
 * more, -1 when the connection failed or stayed silent past the deadline and the cancel's grace:
 * the unanswered statements are then still in ch->batch (and, on a write lane, those executed
 * in ch->held). */
static int read_batch(chan *ch)
{
    reader rd = {.ch = ch, .pg = ch->conn->pg};
    rd.rtail = &rd.retry;
    batch_runs(&rd);
    if (!ch->htail)
        ch->htail = &ch->held;
    for (;;) {
        int more = take_results(&rd);
        if (more == 0)
            return 0;
        if (more < 0 || send_and_wait(&rd) < 0)
            break;
    }
    /* the connection is gone (or mute): statements answered stay answered */
    enqueue_front(ch, rd.retry);
    return -1;
}

/* The driver has statements and no connection: borrows one from the pool and enters pipeline
 * mode. Returns false when it got none (then everyone queued failed, like a session that could
 * not open, or the connection was broken and the driver tries again). */
static bool lane_connect(chan *ch)
{
    db_error err;
    db_conn *c;
    ch->acquiring = true;
    int got = db_pool_acquire(ch->pool, db_now() + ch->pool->cfg->acquire_timeout, &c, &err);
    ch->acquiring = false;
    if (got < 0) {
        item *list = ch->qhead;
        ch->qhead = ch->qtail = NULL;
        fail_all(list, &err);
        return false;
    }
    if (!PQenterPipelineMode(c->pg)) { /* only when not idle: a broken connection */
        db_pool_release(ch->pool, c, true);
        return false;
    }
    ch->conn = c;
    ch->answered_at = coro_now();
    return true;
}

/* A write lane lost its connection: what it executed or maybe executed, and maybe committed, is
 * never re-sent (the client retries, with an Idempotency-Key when it must not write twice); its
 * batches' state is reset. UNKNOWN_OUTCOME, as the unpipelined path says (db/session.c): a
 * TRANSIENT would be a 503 + Retry-After, an invitation to retry that a generic client takes for
 * a POST without a key too, and that may write twice. Returns the statements to fail (those
 * executed first), and sets *lost to their error. */
static item *writes_lost(chan *ch, item *unanswered, db_error *lost)
{
    db_error_set(lost, DB_ERR_UNKNOWN_OUTCOME, "08006",
                 "the database connection was lost before the write's commit was confirmed");
    snprintf(lost->hint, sizeof lost->hint,
             "the write may or may not have committed; check before retrying, or retry with an "
             "idempotency key");
    if (ch->htail && ch->held) {
        *ch->htail = unanswered;
        unanswered = ch->held;
    }
    ch->held = NULL;
    ch->htail = &ch->held;
    PQclear(ch->commit_err);
    ch->commit_err = NULL;
    ch->commit_err_ended = false;
    ch->seq_read = ch->seq_sent;
    return unanswered;
}

/* The lane's connection was lost (or stayed mute): what was not answered is re-sent on a fresh
 * connection (reads, up to LOST_MAX), or fails (writes: writes_lost). */
static void lane_lost(chan *ch)
{
    db_error lost;
    db_error_set(&lost, DB_ERR_TRANSIENT, "08006",
                 "the database connection was lost while the statement waited for its result");
    snprintf(lost.hint, sizeof lost.hint, "retry in a moment");
    const char *why = PQerrorMessage(ch->conn->pg);
    log_warn("database connection lost under pipelined statements: %s",
             why && *why ? why : "no answer within DB_STATEMENT_TIMEOUT, nor to the cancel");
    item *unanswered = ch->batch, *resend = NULL, **rtail = &resend;
    ch->batch = NULL;
    ch->syncs = 0;
    if (ch->writes)
        unanswered = writes_lost(ch, unanswered, &lost);
    for (item *it = unanswered, *next; it; it = next) {
        next = it->next;
        it->next = NULL;
        PQclear(it->res);
        it->res = NULL;
        if (it->ghost && !(it = ghost_gone(it)))
            continue;
        if (it->twin) {
            /* a rescued read whose first copy, behind the slow statement, still runs: it waits
             * for that one, as it would have without the rescue (through a pooler that is
             * failing its logins, a fresh connection would only be lost again) */
            it->parked = true;
            continue;
        }
        if (ch->writes || ++it->lost >= LOST_MAX) {
            fail_all(it, &lost);
        } else {
            *rtail = it;
            rtail = &it->next;
        }
    }
    if (!resend) {
        release(ch, true); /* counted in the pool's `discarded` there, once */
        return;
    }
    /* Re-sent on a connection opened for them, in the lost one's slot: not on one the pool has
     * idle, which the same event (a restart, a sweep of pg_terminate_backend) may have killed
     * without its goodbye having arrived yet, so that the one retry would be spent on a second
     * dead connection. */
    pthread_mutex_lock(&ch->pool->mu);
    ch->pool->discarded++;
    pthread_mutex_unlock(&ch->pool->mu);
    db_error cerr;
    ch->conn = db_pool_reconnect(ch->pool, ch->conn, &cerr);
    if (!ch->conn) {
        fail_all(resend, &cerr); /* like a session that could not open */
        return;
    }
    if (!PQenterPipelineMode(ch->conn->pg))
        release(ch, true);
    enqueue_front(ch, resend);
}

/* The channel's driver: while statements are queued, a connection, a batch, its answers. */
static void drive(void *arg)
{
    chan *ch = arg;
    ch->driver = coro_self();
    while (ch->qhead) {
        if (!ch->conn && !lane_connect(ch))
            continue;
        if (send_batch(ch) < 0 || (ch->syncs > 0 && read_batch(ch) < 0))
            lane_lost(ch);
    }
    release(ch, false);
    ch->driving = ch->gathering = ch->solo = false;
}

PGresult *db_pipe_query(db_pool *p, bool write, double timeout, double grace, const char *sql,
                        int nparams, const char *const *params, int format, bool *timed_out,
                        db_error *err)
{
    double after = p->cfg->pipeline_slow_after;
    uint64_t hash = after > 0 && !write ? text_hash(sql) : 0;
    chan *ch = chan_for(p, write, hash && class_of(hash)->slow > 0.5);
    *timed_out = false;
    if (!ch) {
        db_error_set(err, DB_ERR_TRANSIENT, NULL, "too many database pools on one thread");
        return NULL;
    }
    /* the driver (or another session) is probing a server that went away: answer now, as the
     * pool answers borrowers during an outage, instead of queueing for up to the connect timeout */
    if (!ch->conn && db_pool_failing_fast(p, err))
        return NULL;
    ch->timeout = timeout;
    ch->grace = grace;
    item it = {.sql = sql,
               .nparams = nparams,
               .params = params,
               .format = format,
               .queued_at = coro_now(),
               .hash = hash,
               .co = coro_self()};
    if (lane_enqueue(ch, &it) < 0) {
        db_error_set(err, DB_ERR_TRANSIENT, NULL, "out of memory");
        return NULL;
    }
    while (!it.done)
        coro_suspend();
    *timed_out = it.timed_out;
    if (!it.res)
        *err = it.err;
    return it.res;
}
