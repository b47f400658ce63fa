/* jobs: see jobs.h. */
#include "app/jobs.h"

#include <event2/event.h>
#include <math.h>

#include "app/idempotency.h"
#include "app/server.h"
#include "core/coro.h"
#include "core/log.h"

typedef struct job {
    const char *name;
    /* seconds between runs from the settings; 0: the job is off */
    double (*interval)(const app_config *cfg);
    /* the work, in a coroutine with a read-write session; *done counts what it did */
    int (*run)(db_session *s, long *done, db_error *err);
    const char *done_what; /* logged after the count when done > 0 */
    /* state */
    struct event *timer;
    bool running;
} job;

/* Expired keys are deleted every TTL, at most hourly: a key is at most two TTLs old. */
static double idempotency_interval(const app_config *cfg)
{
    double ttl = cfg->idempotency_ttl;
    return ttl <= 0 ? 0 : fmin(fmax(ttl, 1), 3600);
}

static job jobs[] = {
    {.name = "expire-idempotency-keys",
     .interval = idempotency_interval,
     .run = idempotency_expire,
     .done_what = "expired idempotency key(s) deleted"},
};
#define NJOBS (sizeof jobs / sizeof jobs[0])

static void job_run(void *arg)
{
    job *j = arg;
    db_session *s;
    db_error err;
    long done = 0;
    if (db_session_open(app.engine, DB_READ_WRITE, &s, &err) < 0) {
        log_warn("background job %s skipped: %s", j->name, err.message);
        return;
    }
    int rc = j->run(s, &done, &err);
    db_session_close(s);
    if (rc < 0)
        log_warn("background job %s failed: %s", j->name, err.message);
    else if (done > 0)
        log_info("background job %s: %ld %s", j->name, done, j->done_what);
}

static void job_done(void *arg)
{
    ((job *)arg)->running = false;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    job *j = arg;
    if (j->running) /* the previous run is still going: skip this turn */
        return;
    j->running = true;
    if (coro_spawn(job_run, job_done, j) < 0) {
        j->running = false;
        log_warn("background job %s skipped: out of memory", j->name);
    }
}

int jobs_start(struct event_base *base)
{
    for (size_t i = 0; i < NJOBS; i++) {
        job *j = &jobs[i];
        double every = j->interval(app.cfg);
        if (every <= 0)
            continue;
        j->timer = event_new(base, -1, EV_PERSIST, on_timer, j);
        struct timeval tv = {(time_t)every, (suseconds_t)((every - floor(every)) * 1e6)};
        if (!j->timer || event_add(j->timer, &tv) < 0)
            return -1;
    }
    return 0;
}

void jobs_stop(void)
{
    for (size_t i = 0; i < NJOBS; i++)
        if (jobs[i].timer) {
            event_free(jobs[i].timer);
            jobs[i].timer = NULL;
        }
}
