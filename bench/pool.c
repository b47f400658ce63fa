/* pool benchmark: what a session costs on top of the query it runs.
 *
 *   pool URL [ITERATIONS]
 *
 * Compares, in the same run and against the same server, (a) a bare PQexecParams loop on one held
 * connection with (b) the engine: db_session_open + db_query + db_session_close per iteration, the
 * pool warm (one connection, reused). Both run the same trivial parameterized query. Rounds
 * alternate a/b (and which goes first) so that drift in the machine's load hits both alike; the
 * median round, the median of per-round ratios and the fastest round are reported.
 * Prints one line per variant and the overhead of (b) over (a). */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "db/engine.h"

#define ROUNDS 21

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const SQL = "select $1::int";

static double bare_round(PGconn *c, int n)
{
    const char *p[1] = {"1"};
    double t0 = now();
    for (int i = 0; i < n; i++) {
        PGresult *r = PQexecParams(c, SQL, 1, NULL, p, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "bare query failed: %s", PQerrorMessage(c));
            exit(1);
        }
        PQclear(r);
    }
    return (now() - t0) / n;
}

static double engine_round(db_engine *e, int n)
{
    const char *p[1] = {"1"};
    double t0 = now();
    for (int i = 0; i < n; i++) {
        db_session *s;
        db_error err;
        if (db_session_open(e, DB_READ_ONLY, &s, &err) < 0) {
            fprintf(stderr, "session failed: %s\n", err.message);
            exit(1);
        }
        PGresult *r = db_query(s, SQL, 1, p, &err);
        if (!r) {
            fprintf(stderr, "engine query failed: %s\n", err.message);
            exit(1);
        }
        PQclear(r);
        db_session_close(s);
    }
    return (now() - t0) / n;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: pool URL [ITERATIONS]\n");
        return 2;
    }
    int n = argc > 2 ? atoi(argv[2]) : 5000;
    log_configure(false, LOG_LVL_WARN);
    PGconn *c = PQconnectdb(argv[1]);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "connect failed: %s", PQerrorMessage(c));
        return 1;
    }
    db_config cfg = {.url = argv[1],
                     .application_name = "bench-pool",
                     .mode = DB_POOL_MODE_POOL,
                     .pool_max = 10,
                     .idle_timeout = 60,
                     .max_lifetime = 1800,
                     .acquire_timeout = 5,
                     .connect_timeout = 10,
                     .statement_timeout = 30,
                     .preping_after = 30};
    db_error err;
    db_engine *e = db_engine_open(&cfg, &err);
    if (!e) {
        fprintf(stderr, "engine: %s\n", err.message);
        return 1;
    }
    bare_round(c, n / 10 + 1); /* warm both: connection opened, caches hot */
    engine_round(e, n / 10 + 1);
    double bare[ROUNDS], pool[ROUNDS], ratio[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        /* alternate which goes first, so neither always runs right after the other */
        if (r % 2) {
            pool[r] = engine_round(e, n);
            bare[r] = bare_round(c, n);
        } else {
            bare[r] = bare_round(c, n);
            pool[r] = engine_round(e, n);
        }
        ratio[r] = pool[r] / bare[r];
    }
    qsort(bare, ROUNDS, sizeof bare[0], cmp);
    qsort(pool, ROUNDS, sizeof pool[0], cmp);
    qsort(ratio, ROUNDS, sizeof ratio[0], cmp);
    double b = bare[ROUNDS / 2], p = pool[ROUNDS / 2], best_b = bare[0], best_p = pool[0];
    db_stats st;
    db_engine_stats(e, &st);
    printf("%d rounds x %d iterations of \"%s\", median round\n", ROUNDS, n, SQL);
    printf("bare PQexecParams, one held connection : %7.1f us/query  %8.0f queries/s\n", b * 1e6,
           1 / b);
    printf("session open + db_query + session close: %7.1f us/session %7.0f sessions/s\n", p * 1e6,
           1 / p);
    printf("pool overhead per session              : %+7.1f us (%+.1f%%), median of per-round "
           "ratios %+.1f%%\n",
           (p - b) * 1e6, (p - b) / b * 100, (ratio[ROUNDS / 2] - 1) * 100);
    printf("fastest round                          : bare %.1f us, session %.1f us (%+.1f%%)\n",
           best_b * 1e6, best_p * 1e6, (best_p - best_b) / best_b * 100);
    printf("engine connections opened              : %lu (pool stays warm)\n",
           (unsigned long)st.connects);
    db_engine_close(e);
    PQfinish(c);
    return 0;
}
