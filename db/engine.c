/* engine: the pools of one process (read-write, and read-only when DATABASE_URL_RO is set), their
 * reaper thread, and the figures for /metrics. Sessions are in session.c, the pool in pool.c. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "db/connect.h"
#include "db/engine_internal.h"
#include "db/url.h"

/* How long db_engine_close() waits for borrowed connections to come back. */
#define CLOSE_WAIT 10.0

/* The reaper wakes often enough to close an idle connection within a quarter of its idle timeout
 * after it expires, and at least every 5 s; it only takes each pool's lock briefly. */
static double reaper_interval(const db_config *cfg)
{
    double t = fmin(cfg->idle_timeout, cfg->max_lifetime) / 4;
    return fmax(0.02, fmin(t, 5.0));
}

static void *reaper_main(void *arg)
{
    db_engine *e = arg;
    double step = reaper_interval(&e->cfg);
    pthread_mutex_lock(&e->reaper_mu);
    while (!e->reaper_stop) {
        double t = db_now() + step;
        struct timespec ts = {(time_t)t, (long)((t - floor(t)) * 1e9)};
        if (pthread_cond_timedwait(&e->reaper_cond, &e->reaper_mu, &ts) != ETIMEDOUT)
            continue;
        pthread_mutex_unlock(&e->reaper_mu);
        db_pool_maintain(&e->rw);
        if (e->has_ro)
            db_pool_maintain(&e->ro);
        pthread_mutex_lock(&e->reaper_mu);
    }
    pthread_mutex_unlock(&e->reaper_mu);
    return NULL;
}

static void log_url(const char *what, const char *url, const char *variable)
{
    char *masked = db_url_mask(url);
    log_info("database %s: %s", what, masked ? masked : "(unparseable)");
    free(masked);
    db_warn_insecure_neon(url, variable);
}

static int start_reaper(db_engine *e)
{
    if (e->cfg.mode != DB_POOL_MODE_POOL)
        return 0; /* per_request keeps nothing to reap */
    if (pthread_create(&e->reaper, NULL, reaper_main, e) != 0)
        return -1;
    e->reaper_running = true;
    return 0;
}

db_engine *db_engine_open(const db_config *cfg, db_error *err)
{
    const char *rw = cfg->url_rw ? cfg->url_rw : cfg->url;
    char why[256];
    if (!rw || db_url_check(rw, why, sizeof why) < 0 ||
        (cfg->url_ro && db_url_check(cfg->url_ro, why, sizeof why) < 0)) {
        db_error_set(err, DB_ERR_CONFIG, NULL, "invalid database URL: %s",
                     rw ? why : "DATABASE_URL is not set");
        return NULL;
    }
    if (cfg->pool_max < 1) {
        db_error_set(err, DB_ERR_CONFIG, NULL, "DB_POOL_MAX must be at least 1");
        return NULL;
    }
    db_engine *e = calloc(1, sizeof *e);
    if (!e) {
        db_error_set(err, DB_ERR_CONFIG, NULL, "out of memory");
        return NULL;
    }
    e->cfg = *cfg;
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&e->reaper_cond, &a);
    pthread_condattr_destroy(&a);
    pthread_mutex_init(&e->reaper_mu, NULL);
    e->appname = cfg->application_name ? strdup(cfg->application_name) : NULL;
    e->cfg.application_name = e->appname;
    e->cfg.url = e->cfg.url_rw = e->cfg.url_ro = NULL; /* the pools keep their own copies */
    e->has_ro = cfg->url_ro != NULL;
    if (db_pool_init(&e->rw, rw, "rw", &e->cfg) < 0 ||
        (e->has_ro && db_pool_init(&e->ro, cfg->url_ro, "ro", &e->cfg) < 0) ||
        start_reaper(e) < 0) {
        db_error_set(err, DB_ERR_CONFIG, NULL, "could not create the database engine");
        db_engine_close(e);
        return NULL;
    }
    log_url("read-write", rw, cfg->url_rw ? "DATABASE_URL_RW" : "DATABASE_URL");
    if (e->has_ro)
        log_url("read-only", cfg->url_ro, "DATABASE_URL_RO");
    log_info("database engine: mode=%s pool_max=%d min_idle=%d idle_timeout=%gs "
             "max_lifetime=%gs acquire_timeout=%gs connect_timeout=%gs statement_timeout=%gs",
             cfg->mode == DB_POOL_MODE_POOL ? "pool" : "per_request", cfg->pool_max,
             cfg->pool_min_idle, cfg->idle_timeout, cfg->max_lifetime, cfg->acquire_timeout,
             cfg->connect_timeout, cfg->statement_timeout);
    return e;
}

void db_engine_close(db_engine *e)
{
    if (!e)
        return;
    if (e->reaper_running) {
        pthread_mutex_lock(&e->reaper_mu);
        e->reaper_stop = true;
        pthread_cond_signal(&e->reaper_cond);
        pthread_mutex_unlock(&e->reaper_mu);
        pthread_join(e->reaper, NULL);
    }
    bool done = true;
    if (e->rw.url)
        done = db_pool_close(&e->rw, CLOSE_WAIT) && done;
    if (e->has_ro && e->ro.url)
        done = db_pool_close(&e->ro, CLOSE_WAIT) && done;
    if (!done)
        return; /* a borrower still holds a pool: leaking it beats a use after free */
    pthread_mutex_destroy(&e->reaper_mu);
    pthread_cond_destroy(&e->reaper_cond);
    free(e->appname);
    free(e);
}

void db_engine_stats(db_engine *e, db_stats *out)
{
    memset(out, 0, sizeof *out);
    db_pool_stats_add(&e->rw, out);
    if (e->has_ro)
        db_pool_stats_add(&e->ro, out);
}
