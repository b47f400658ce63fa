/* metrics: see metrics.h. Fixed arrays sized by the route limit (ROUTER_MAX_ROUTES, which
 * router_init enforces, so every route has its slot): no allocation per request. */
#include "app/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/jwks.h"
#include "app/router.h"
#include "app/wire.h"
#include "core/log.h"

#define MAX_ROUTES ROUTER_MAX_ROUTES
/* Distinct statuses counted per route: more than any route documents (router.h); a further one
 * is counted under status 0 and logged once. */
#define MAX_STATUSES 16

/* Up to 60 s: the slow tail (a request waiting out DB_ACQUIRE_TIMEOUT + DB_STATEMENT_TIMEOUT, 35 s
 * by default) lands in a bucket of its own rather than only in +Inf. */
static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                0.25,   0.5,   1,      2.5,   5,    10,    30,   60};
#define NBOUNDS (sizeof bounds / sizeof *bounds)

typedef struct {
    int status[MAX_STATUSES];
    unsigned long count[MAX_STATUSES];
    unsigned long bucket[NBOUNDS]; /* non-cumulative; rendered cumulative */
    unsigned long total;
    double sum;
} route_stats;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static route_stats stats[MAX_ROUTES + 1]; /* last slot: unmatched */
static struct {
    unsigned long count;
    double seconds;
} handler_wait;
#define MAX_LOOPS 64 /* LOOPS' bound (config.c) */
static unsigned long accepted[MAX_LOOPS];
static int nloops;

static const char *label(int i)
{
    return i == MAX_ROUTES ? "unmatched" : app_routes[i].path;
}

static const char *method(int i)
{
    return i == MAX_ROUTES ? "" : app_routes[i].method;
}

void metrics_handler_wait(double seconds)
{
    pthread_mutex_lock(&lock);
    handler_wait.count++;
    handler_wait.seconds += seconds;
    pthread_mutex_unlock(&lock);
}

void metrics_set_loops(int loops)
{
    pthread_mutex_lock(&lock);
    nloops = loops < 0 ? 0 : loops > MAX_LOOPS ? MAX_LOOPS : loops;
    pthread_mutex_unlock(&lock);
}

void metrics_connection_accepted(int loop)
{
    if (loop < 0 || loop >= MAX_LOOPS)
        return;
    pthread_mutex_lock(&lock);
    accepted[loop]++;
    pthread_mutex_unlock(&lock);
}

void metrics_observe(int route_index, int status, double seconds)
{
    if (route_index < 0 || route_index >= app_nroutes) /* unmatched (router_init caps the table) */
        route_index = MAX_ROUTES;
    route_stats *r = &stats[route_index];
    pthread_mutex_lock(&lock);
    bool counted = false;
    for (int i = 0; i < MAX_STATUSES - 1 && !counted; i++) {
        if (r->status[i] == status || r->status[i] == 0) {
            r->status[i] = status;
            r->count[i]++;
            counted = true;
        }
    }
    static bool warned;
    if (!counted) {
        r->status[MAX_STATUSES - 1] = -1; /* rendered as status "other" */
        r->count[MAX_STATUSES - 1]++;
        if (!warned) {
            warned = true;
            log_warn("metrics: route %s has more than %d statuses, status %d counted as other",
                     label(route_index), MAX_STATUSES - 1, status);
        }
    }
    size_t b = 0;
    while (b < NBOUNDS && seconds > bounds[b])
        b++;
    if (b < NBOUNDS)
        r->bucket[b]++;
    r->total++;
    r->sum += seconds;
    pthread_mutex_unlock(&lock);
}

static void render_requests(FILE *f, const route_stats *snap)
{
    fputs("# HELP http_requests_total Requests by route template and status.\n"
          "# TYPE http_requests_total counter\n",
          f);
    for (int i = 0; i <= MAX_ROUTES; i++)
        for (int s = 0; s < MAX_STATUSES; s++) {
            char code[16] = "other";
            if (!snap[i].status[s])
                continue;
            if (snap[i].status[s] > 0)
                snprintf(code, sizeof code, "%d", snap[i].status[s]);
            fprintf(f, "http_requests_total{method=\"%s\",route=\"%s\",status=\"%s\"} %lu\n",
                    method(i), label(i), code, snap[i].count[s]);
        }
    fputs("# HELP http_request_duration_seconds Time from request parsed to response queued.\n"
          "# TYPE http_request_duration_seconds histogram\n",
          f);
    for (int i = 0; i <= MAX_ROUTES; i++) {
        if (!snap[i].total)
            continue;
        unsigned long cum = 0;
        for (size_t b = 0; b < NBOUNDS; b++) {
            cum += snap[i].bucket[b];
            fprintf(f,
                    "http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"%g\"} "
                    "%lu\n",
                    method(i), label(i), bounds[b], cum);
        }
        fprintf(f,
                "http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"+Inf\"} %lu\n"
                "http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %.6f\n"
                "http_request_duration_seconds_count{method=\"%s\",route=\"%s\"} %lu\n",
                method(i), label(i), snap[i].total, method(i), label(i), snap[i].sum, method(i),
                label(i), snap[i].total);
    }
}

static void render_pool(FILE *f, db_engine *engine)
{
    db_stats s;
    db_engine_stats(engine, &s);
    fprintf(f,
            "# TYPE db_pool_connections gauge\n"
            "db_pool_connections{state=\"open\"} %d\n"
            "db_pool_connections{state=\"idle\"} %d\n"
            "db_pool_connections{state=\"in_use\"} %d\n"
            "# TYPE db_pool_waiting gauge\ndb_pool_waiting %d\n"
            "# TYPE db_pool_connects_total counter\ndb_pool_connects_total %lu\n"
            "# TYPE db_pool_connect_failures_total counter\ndb_pool_connect_failures_total %lu\n"
            "# TYPE db_pool_discarded_total counter\ndb_pool_discarded_total %lu\n"
            "# TYPE db_pool_acquires_total counter\ndb_pool_acquires_total %lu\n"
            "# TYPE db_pool_acquire_timeouts_total counter\ndb_pool_acquire_timeouts_total %lu\n"
            "# TYPE db_pool_acquire_wait_seconds_total counter\n"
            "db_pool_acquire_wait_seconds_total %.6f\n"
            "# TYPE db_pool_outage_fast_failures_total counter\n"
            "db_pool_outage_fast_failures_total %lu\n"
            "# HELP db_pool_preparing Pools whose pipelined statements are prepared (DB_PREPARE).\n"
            "# TYPE db_pool_preparing gauge\ndb_pool_preparing %d\n",
            s.open, s.idle, s.in_use, s.waiting, (unsigned long)s.connects,
            (unsigned long)s.connect_failures, (unsigned long)s.discarded,
            (unsigned long)s.acquires, (unsigned long)s.acquire_timeouts,
            s.acquire_wait_seconds_total, (unsigned long)s.outage_fast_failures, s.preparing);
}

char *metrics_render(db_engine *engine)
{
    route_stats *snap = malloc(sizeof stats);
    if (!snap)
        return NULL;
    pthread_mutex_lock(&lock);
    memcpy(snap, stats, sizeof stats);
    unsigned long wcount = handler_wait.count;
    double wsum = handler_wait.seconds;
    int loops = nloops;
    unsigned long acc[MAX_LOOPS];
    memcpy(acc, accepted, sizeof acc);
    pthread_mutex_unlock(&lock);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (f) {
        render_requests(f, snap);
        fprintf(f,
                "# HELP http_handler_wait_seconds Time requests waited for a free handler "
                "(WORKERS in progress).\n"
                "# TYPE http_handler_wait_seconds summary\n"
                "http_handler_wait_seconds_sum %.6f\n"
                "http_handler_wait_seconds_count %lu\n",
                wsum, wcount);
        if (loops > 0)
            fputs("# HELP http_connections_accepted_total Connections accepted, by event loop "
                  "(LOOPS).\n"
                  "# TYPE http_connections_accepted_total counter\n",
                  f);
        for (int i = 0; i < loops; i++)
            fprintf(f, "http_connections_accepted_total{loop=\"%d\"} %lu\n", i, acc[i]);
        fprintf(f,
                "# HELP http_connections_open Client connections open now, lingering closes "
                "included (MAX_CONNECTIONS caps them).\n"
                "# TYPE http_connections_open gauge\nhttp_connections_open %ld\n",
                wire_connections());
        if (engine)
            render_pool(f, engine);
        jwks_metrics(f);
        fclose(f);
    }
    free(snap);
    return out;
}
