/* pgtest: what the integration suites share. Every suite runs under tests/harness/with-db, which
 * gives it a database of its own on a real PostgreSQL (never a mock); these helpers build URLs to
 * it, start the project's real binaries, and start private clusters for tests that must stop a
 * server. Failures abort the current Criterion test with a message (cr_assert), so callers need not
 * check return values. Strings returned are malloc'd and owned by the caller unless noted. */
#ifndef TESTS_PGTEST_H
#define TESTS_PGTEST_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <sys/types.h>

/* Direct URL of this suite's database (superuser locally, the branch owner on Neon). */
char *pgtest_url(void);

/* URL the code under test should use: through pgbouncer when the suite runs with --pooler
 * (TEST_VIA_POOLER=1 and TEST_POOLER_URL set), else the direct URL. */
char *pgtest_app_url(void);

/* True when this run goes through pgbouncer in transaction mode. */
bool pgtest_via_pooler(void);

/* An open connection to this suite's database over the direct URL; PQfinish() it. */
PGconn *pgtest_connect(void);

/* A thread (pthread_create(&t, NULL, pgtest_killer, &arg)) that terminates the backend running
 * the statement whose text contains `marker`, then each backend the statement is re-sent to:
 * `times` backends in all (0: one), polling every 5 ms for about 3 s. Connects over the direct
 * URL. `killed` counts the backends terminated; `pids` are theirs. */
typedef struct pgtest_killer_arg {
    const char *marker;
    int times;
    int pids[8];
    volatile int killed;
} pgtest_killer_arg;
void *pgtest_killer(void *arg);

/* Runs SQL (no parameters) and asserts it succeeded; returns the first column of the first row as a
 * malloc'd string, or NULL when the result has no rows. */
char *pgtest_query(PGconn *conn, const char *sql);

/* Drops database `name` WITH (FORCE) over the direct URL, retrying for up to 30 s while a session
 * the role may not terminate is connected (an autovacuum worker, when the role is not superuser, as
 * on Neon); asserts it is gone. */
void pgtest_drop_database(const char *name);

/* Absolute path of a built binary ("api", "migrate") or of a file in the source tree. Static
 * strings. */
const char *pgtest_bin(const char *name);
const char *pgtest_source_path(const char *relative);

/* The numeric address (for libpq's hostaddr) at which `url`'s server accepts TCP connections: its
 * host resolved like libpq resolves it (getaddrinfo: "localhost", a container's service name, any
 * DNS name or IP literal), the first address whose port answers. Lets a test give the server
 * another host name (host=<fake name> hostaddr=<this>) without DNS. malloc'd. */
char *pgtest_host_address(const char *url);

/* A free TCP port on 127.0.0.1 (bound and released; good enough for tests). */
int pgtest_free_port(void);

/* A private PostgreSQL cluster for tests that stop and start the server (scripts/pg-cluster). */
typedef struct pgtest_cluster {
    char dir[256];
    char url[512];
    int port;
} pgtest_cluster;

/* Creates and starts a cluster in a fresh temp dir. Takes about a second. */
void pgtest_cluster_start(pgtest_cluster *c);
/* Stops it (fast shutdown: connected clients are terminated) / starts it again on the same port. */
void pgtest_cluster_stop(pgtest_cluster *c);
void pgtest_cluster_restart(pgtest_cluster *c);
/* Stops it and removes its directory. Safe to call twice. */
void pgtest_cluster_destroy(pgtest_cluster *c);

/* Runs a command line through /bin/sh, capturing stdout+stderr into *output (malloc'd, may be NULL
 * if not wanted). Returns the exit status (or 128+signal). */
int pgtest_run(const char *cmdline, char **output);

/* Milliseconds from a monotonic clock. */
double pgtest_now_ms(void);

/* Wall-clock bounds in the suites (docs/testing.md). A test asserts an outcome; when the outcome
 * is a deadline honoured (a connect budget, an acquire timeout), its upper bound is the deadline
 * plus pgtest_slack_ms(), which scales with how fast this machine is right now:
 *   pgtest_baseline_ms()  the median of 3 rounds of ordinary work against the test server
 *                         (connect, 10 round trips of `select 1`, disconnect), measured once per
 *                         test process (Criterion runs each test in a process of its own, so at
 *                         that test's load);
 *   pgtest_slack_ms()     max(2000, 10 * baseline): 2 s on an idle machine, more on a busy one.
 * Lower bounds ("waited at least the timeout") need no slack: a busy machine only makes a wait
 * longer. */
double pgtest_baseline_ms(void);
double pgtest_slack_ms(void);

/* Asserts that `ms` (a measured wait) is within `deadline_ms` plus the slack. */
#define pgtest_assert_within(ms, deadline_ms, what)                                                \
    do {                                                                                           \
        double pgtest_ms_ = (ms), pgtest_dl_ = (deadline_ms), pgtest_sl_ = pgtest_slack_ms();      \
        cr_assert_lt(pgtest_ms_, pgtest_dl_ + pgtest_sl_,                                          \
                     "%s: %.0f ms, over the deadline %.0f ms + slack %.0f ms (baseline %.0f ms)",  \
                     (what), pgtest_ms_, pgtest_dl_, pgtest_sl_, pgtest_baseline_ms());            \
    } while (0)

#endif
