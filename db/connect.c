/* connect: see connect.h.
 *
 * Each attempt uses libpq's non-blocking connect (PQconnectStartParams + PQconnectPoll) with our
 * own poll() deadline instead of libpq's connect_timeout: that one is whole seconds (minimum 2),
 * applies per host, and cannot be cut short by the caller's remaining budget. */
#include "db/connect.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/log.h"
#include "db/url.h"

#define BACKOFF_BASE 0.1
/* 0.5 s, not more: the server is back at most this long before the retry notices it (the chaos
 * runs' recovery time), and during an outage only one borrower per pool retries (the probe), so a
 * short cap costs the server two connection attempts a second, not a thundering herd. */
#define BACKOFF_CAP 0.5
#define DEFAULT_CONNECT_TIMEOUT 10.0

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_seconds(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Uniform in [0, 1). Jitter only needs to spread clients apart, not be unpredictable, so a
 * per-thread xorshift64* seeded from the clock and the thread's stack address is enough. */
static double jitter_unit(void)
{
    static _Thread_local uint64_t state;
    if (!state) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&ts;
        state |= 1;
    }
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return (double)((state * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

/* One attempt, finished by `deadline`. Returns the connection (status OK or BAD; NULL only when
 * libpq is out of memory); *timed_out tells a deadline apart from a failure libpq reported. */
static PGconn *attempt(const char *url, const char *appname, double deadline, bool *timed_out)
{
    /* entries before the expanded URL are defaults the URL may override */
    const char *keys[5], *vals[5];
    int n = 0;
    if (appname && *appname) {
        keys[n] = "application_name";
        vals[n++] = appname;
    }
    keys[n] = "keepalives";
    vals[n++] = "1";
    keys[n] = "keepalives_idle";
    vals[n++] = "30"; /* notice a vanished server in about a minute, not two hours */
    keys[n] = "dbname";
    vals[n++] = url;
    keys[n] = NULL;
    vals[n] = NULL;

    *timed_out = false;
    PGconn *c = PQconnectStartParams(keys, vals, 1);
    if (!c || PQstatus(c) == CONNECTION_BAD)
        return c;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        double left = deadline - mono_now();
        if (left <= 0) {
            *timed_out = true;
            return c;
        }
        /* the socket can change between calls (next address, next host): ask every time */
        struct pollfd p = {PQsocket(c), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};
        int r = poll(&p, 1, (int)ceil(left * 1000));
        if (r < 0 && errno != EINTR) {
            *timed_out = true;
            return c;
        }
        if (r > 0)
            st = PQconnectPoll(c);
    }
    return c;
}

static void log_failure(const char *label, PGconn *c, const char *url, int attempt_no,
                        const db_error *err, bool final)
{
    if (!log_enabled(final ? LOG_LVL_ERROR : LOG_LVL_WARN))
        return;
    /* host and database only: the URL itself may carry a password */
    char *host = c && PQhost(c) ? strdup(PQhost(c)) : db_url_get(url, "host");
    char *db = c && PQdb(c) ? strdup(PQdb(c)) : db_url_get(url, "dbname");
    json_t *f =
        json_pack("{s:s, s:s, s:s, s:i, s:s, s:s}", "pool", label ? label : "db", "host",
                  host ? host : "localhost", "database", db ? db : "", "attempt", attempt_no,
                  "kind", db_errkind_name(err->kind), "sqlstate", err->sqlstate);
    if (f && err->hint[0])
        json_object_set_new(f, "hint", json_string(err->hint));
    log_fields(final ? LOG_LVL_ERROR : LOG_LVL_WARN, f, "%s: %s",
               final ? "could not connect, giving up" : "could not connect", err->message);
    free(host);
    free(db);
}

PGconn *db_connect(const char *url, const db_connect_opts *opts, db_error *err)
{
    static const db_connect_opts none = {0};
    if (!opts)
        opts = &none;
    double per_attempt =
        opts->connect_timeout > 0 ? opts->connect_timeout : DEFAULT_CONNECT_TIMEOUT;
    double start = mono_now();
    double end = start + (opts->budget > 0 ? opts->budget : per_attempt);

    for (int n = 1;; n++) {
        double now = mono_now();
        double deadline = fmax(fmin(now + per_attempt, end), now + 0.05);
        bool timed_out;
        PGconn *c = attempt(url, opts->application_name, deadline, &timed_out);
        if (c && !timed_out && PQstatus(c) == CONNECTION_OK) {
            if (n > 1)
                log_info("connected after %d attempts in %.2f s", n, mono_now() - start);
            return c;
        }
        if (timed_out) {
            db_error_set(err, DB_ERR_TRANSIENT, "08001",
                         "connection to server at \"%s\" timed out after %.1f s",
                         c && PQhost(c) ? PQhost(c) : "?", deadline - now);
            snprintf(err->hint, sizeof err->hint, "%s",
                     "the server did not answer in time (a Neon cold start?); raise "
                     "DB_CONNECT_TIMEOUT if it happens often");
        } else {
            db_error_from_connect(err, c);
        }
        /* full jitter: sleep anywhere between 0 and the exponential step, so clients that
         * failed together do not come back together */
        double step = fmin(BACKOFF_CAP, BACKOFF_BASE * pow(2, n - 1));
        double left = end - mono_now();
        bool last = err->kind != DB_ERR_TRANSIENT || opts->budget <= 0 || left < 0.1;
        /* never sleep through the budget: the last attempt gets at least 50 ms */
        double pause = fmin(step * jitter_unit(), left - 0.05);
        log_failure(opts->log_label, c, url, n, err, last);
        PQfinish(c);
        if (last)
            return NULL;
        sleep_seconds(pause);
        if (mono_now() >= end - 0.02)
            return NULL; /* the sleep overran the budget (a loaded machine): keep this error */
    }
}

/* sslmode values that let libpq talk plaintext */
static bool weak_sslmode(const char *mode)
{
    return !mode || !strcmp(mode, "disable") || !strcmp(mode, "allow") || !strcmp(mode, "prefer");
}

static bool is_neon_host(const char *hosts)
{
    /* host lists are comma-separated; any Neon host in it counts */
    const char *p = hosts;
    while (p && *p) {
        size_t n = strcspn(p, ",");
        static const char suffix[] = ".neon.tech";
        size_t sl = sizeof suffix - 1;
        if (n >= sl && !strncasecmp(p + n - sl, suffix, sl))
            return true;
        p += n;
        if (*p == ',')
            p++;
    }
    return false;
}

int db_warn_insecure_neon(const char *url, const char *variable)
{
    char *host = db_url_get(url, "host");
    char *mode = db_url_get(url, "sslmode");
    const char *effective = mode ? mode : getenv("PGSSLMODE");
    if (effective && !*effective)
        effective = NULL;
    int warned = 0;
    if (host && is_neon_host(host) && weak_sslmode(effective)) {
        log_fields(LOG_LVL_WARN,
                   json_pack("{s:s, s:s, s:s}", "variable", variable ? variable : "DATABASE_URL",
                             "host", host, "sslmode", effective ? effective : "prefer"),
                   "%s points at Neon with sslmode=%s, which allows plaintext; hint: add "
                   "?sslmode=require (better: verify-full) to it",
                   variable ? variable : "DATABASE_URL", effective ? effective : "prefer");
        warned = 1;
    }
    free(host);
    free(mode);
    return warned;
}
