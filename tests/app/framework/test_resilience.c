/* The server under trouble, on the framework test server (routes.c of this folder, no example
 * resource): a slow request (a row lock) must not stall /health or other reads; SIGTERM lets an
 * in-flight request finish and exits 0; a database that goes away gives 503 and comes back without
 * a restart; /ready reports a schema that is behind. Bounds are loose: these are properties, the
 * figures are in bench/. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/app/framework/fw.h"
#include "tests/support/pgtest.h"

TestSuite(resilience, .timeout = 90);

#define EXPECT(r, code) cr_assert_eq((r)->status, code, "%s\n%s", (r)->head, (r)->body)

static long long create(int port, const char *user, const char *title)
{
    char p[256], body[256];
    snprintf(p, sizeof p, "/api/%s/items", user);
    snprintf(body, sizeof body, "{\"name\":\"%s\"}", title);
    api_response *r = api_as(port, user, "POST", p, body);
    EXPECT(r, 201);
    long long id = atoll(strstr(r->body, "\"id\":") + 5);
    api_response_free(r);
    return id;
}

typedef struct {
    int port;
    const char *user;
    long long id;
    int status;
    double ms;
    double done_at; /* pgtest_now_ms() when the answer came */
} slow_call;

/* A write that waits on the row lock: DELETE of the item. */
static void *delete_item(void *arg)
{
    slow_call *c = arg;
    char p[256];
    snprintf(p, sizeof p, "/api/%s/items/%lld", c->user, c->id);
    api_response *r = api_as(c->port, c->user, "DELETE", p, NULL);
    c->status = r->status;
    c->ms = r->ms;
    c->done_at = pgtest_now_ms();
    api_response_free(r);
    return NULL;
}

static void *get_item(void *arg)
{
    slow_call *c = arg;
    char p[256];
    snprintf(p, sizeof p, "/api/%s/items/%lld", c->user, c->id);
    api_response *r = api_as(c->port, c->user, "GET", p, NULL);
    c->status = r->status;
    c->ms = r->ms;
    c->done_at = pgtest_now_ms();
    api_response_free(r);
    return NULL;
}

/* Waits (10 s at most) until `n` backends wait on a lock: the parked requests are really in flight.
 */
static void wait_for_lock_waiters(PGconn *c, int n)
{
    double t0 = pgtest_now_ms();
    for (;;) {
        char *got =
            pgtest_query(c, "select count(*) from pg_stat_activity "
                            "where wait_event_type = 'Lock' and datname = current_database()");
        int waiting = atoi(got);
        free(got);
        if (waiting >= n)
            return;
        cr_assert_lt(pgtest_now_ms() - t0, 10000, "only %d request(s) reached the lock", waiting);
        usleep(20000);
    }
}

/* Holds a row lock on item `id` in an open transaction on a direct connection. */
static PGconn *lock_item(long long id)
{
    PGconn *c = pgtest_connect();
    char sql[128];
    snprintf(sql, sizeof sql, "begin; select id from items where id = %lld for update", id);
    free(pgtest_query(c, sql));
    return c;
}

/* With `waiters` backends at least waiting on the lock once the three DELETEs are in. */
static void slow_requests(const char *env, int waiters)
{
    api_server srv;
    fw_serve(&srv, env);
    char *u = api_user("slow");
    long long locked = create(srv.port, u, "locked"), other = create(srv.port, u, "free");
    PGconn *holder = lock_item(locked);
    slow_call calls[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        calls[i] = (slow_call){.port = srv.port, .user = u, .id = locked};
        pthread_create(&th[i], NULL, delete_item, &calls[i]);
    }
    /* the three DELETEs now wait on the lock, holding 3 workers; pipelined writes
     * (DB_PIPELINE_WRITES, the default) share write lanes, so one to three backends wait */
    PGconn *watch = pgtest_connect();
    wait_for_lock_waiters(watch, waiters);
    PQfinish(watch);
    usleep(300000); /* the others have arrived too */
    char p[256];
    snprintf(p, sizeof p, "/api/%s/items/%lld", u, other);
    double worst = 0;
    for (int i = 0; i < 20; i++) {
        api_response *h = api_call(srv.port, "GET", "/health", NULL, NULL);
        api_response *g = api_as(srv.port, u, "GET", p, NULL);
        EXPECT(h, 200);
        EXPECT(g, 200);
        worst = h->ms > worst ? h->ms : worst;
        worst = g->ms > worst ? g->ms : worst;
        api_response_free(h);
        api_response_free(g);
    }
    /* the outcome: every one answered while the DELETEs still wait (asserted next); and none
     * queued behind anything for long */
    pgtest_assert_within(worst, 0, "a request while others waited on a lock");
    for (int i = 0; i < 3; i++)
        cr_assert_eq(calls[i].status, 0, "DELETE %d finished while the row was locked", i);
    free(pgtest_query(holder, "commit"));
    PQfinish(holder);
    int deleted = 0; /* one deletes the item, the two others then find it gone */
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        cr_assert(calls[i].status == 204 || calls[i].status == 404, "DELETE %d: %d", i,
                  calls[i].status);
        deleted += calls[i].status == 204;
    }
    cr_assert_eq(deleted, 1);
    cr_assert_eq(api_stop(&srv), 0);
    free(u);
}

Test(resilience, slow_requests_do_not_stall_others)
{
    slow_requests("WORKERS=6 DB_POOL_MAX=5", 1);
}

/* each write on a connection of its own: all three backends wait */
Test(resilience, slow_requests_do_not_stall_others_without_pipelined_writes)
{
    slow_requests("WORKERS=6 DB_POOL_MAX=5 DB_PIPELINE_WRITES=false", 3);
}

/* Concurrent reads of many users share pipelined batches (DB_PIPELINE, the default): each must
 * still get its own user's item, never a neighbour's answer. */
typedef struct {
    int port;
    char *user;
    long long id;
    int ok, wrong;
    char first_error[512];
} reader;

static void *read_own_item(void *arg)
{
    reader *r = arg;
    char p[256], want_title[160], want_user[128];
    snprintf(p, sizeof p, "/api/%s/items/%lld", r->user, r->id);
    snprintf(want_title, sizeof want_title, "\"name\":\"own %s\"", r->user);
    snprintf(want_user, sizeof want_user, "\"user_id\":\"%s\"", r->user);
    for (int i = 0; i < 40; i++) {
        api_response *g = api_as(r->port, r->user, "GET", p, NULL);
        if (g->status == 200 && strstr(g->body, want_title) && strstr(g->body, want_user)) {
            r->ok++;
        } else {
            if (!r->wrong)
                snprintf(r->first_error, sizeof r->first_error, "%d %s", g->status, g->body);
            r->wrong++;
        }
        api_response_free(g);
    }
    return NULL;
}

Test(resilience, concurrent_reads_of_many_users_each_get_their_own_item)
{
    api_server srv;
    fw_serve(&srv, "DB_POOL_MAX=2");
    enum { N = 12 };
    reader rd[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        char tag[32], name[160];
        snprintf(tag, sizeof tag, "many%d", i);
        rd[i] = (reader){.port = srv.port, .user = api_user(tag)};
        /* the name carries the user, so a swapped answer cannot look right */
        snprintf(name, sizeof name, "own %s", rd[i].user);
        rd[i].id = create(srv.port, rd[i].user, name);
    }
    for (int i = 0; i < N; i++)
        pthread_create(&th[i], NULL, read_own_item, &rd[i]);
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++) {
        cr_expect_eq(rd[i].ok, 40, "user %s: %d right, %d wrong, first wrong: %s", rd[i].user,
                     rd[i].ok, rd[i].wrong, rd[i].first_error);
        free(rd[i].user);
    }
    /* they really shared connections: without the pipeline every read borrows one (24 writes
     * above + 480 reads); batches of the readers' statements borrow once per batch or less */
    api_response *m = api_call(srv.port, "GET", "/metrics", TEST_METRICS_AUTH, NULL);
    EXPECT(m, 200);
    const char *a = strstr(m->body, "\ndb_pool_acquires_total ");
    cr_assert(a, "%s", m->body);
    long acquires = atol(a + strlen("\ndb_pool_acquires_total "));
    cr_expect_lt(acquires, N + N * 40, "%ld acquires: the reads were not pipelined", acquires);
    cr_log_info("%ld pool acquires for %d reads and %d writes", acquires, N * 40, N);
    api_response_free(m);
    cr_assert_eq(api_stop(&srv), 0);
}

/* The `loop` label's value of http_connections_accepted_total in a /metrics body, or -1. */
static long accepted_by(const char *metrics, int loop)
{
    char key[96];
    snprintf(key, sizeof key, "\nhttp_connections_accepted_total{loop=\"%d\"} ", loop);
    const char *at = strstr(metrics, key);
    return at ? atol(at + strlen(key)) : -1;
}

/* Connections accepted by each of 3 loops, from /metrics (whose own connection counts). */
static void accepted_now(int port, long a[3])
{
    api_response *m = api_call(port, "GET", "/metrics", TEST_METRICS_AUTH, NULL);
    EXPECT(m, 200);
    for (int i = 0; i < 3; i++) {
        a[i] = accepted_by(m->body, i);
        cr_assert_geq(a[i], 0, "no series for loop %d:\n%s", i, m->body);
    }
    cr_expect_eq(accepted_by(m->body, 3), -1, "a series for a loop that does not exist");
    api_response_free(m);
}

/* http_connections_open in a /metrics body, or -1. */
static long open_now(int port)
{
    api_response *m = api_call(port, "GET", "/metrics", TEST_METRICS_AUTH, NULL);
    EXPECT(m, 200);
    const char *at = strstr(m->body, "\nhttp_connections_open ");
    long n = at ? atol(at + strlen("\nhttp_connections_open ")) : -1;
    api_response_free(m);
    return n;
}

/* Connections go to the loops in turn, however they arrive: nine opened at once (all queued on
 * the listening socket before a loop wakes, where the first loop to run used to accept every one
 * of them) and kept open, plus the second /metrics request's own: three per loop and one more.
 * http_connections_open counts them while they are open, and no more once they closed. */
Test(resilience, connections_take_turns_among_the_loops)
{
    api_server srv;
    fw_serve(&srv, "LOOPS=3");
    long a0[3], a1[3];
    accepted_now(srv.port, a0); /* the startup's probes are counted too */
    enum { N = 9 };
    int fd[N];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv.port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    for (int i = 0; i < N; i++) {
        fd[i] = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert(fd[i] >= 0 && connect(fd[i], (struct sockaddr *)&sa, sizeof sa) == 0);
    }
    static const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < N; i++) { /* each answered on a kept-alive connection: accepted */
        cr_assert_eq(write(fd[i], req, sizeof req - 1), (ssize_t)(sizeof req - 1));
        struct pollfd p = {.fd = fd[i], .events = POLLIN};
        cr_assert_eq(poll(&p, 1, 5000), 1, "connection %d got no answer", i);
        char buf[512];
        ssize_t n = read(fd[i], buf, sizeof buf - 1);
        cr_assert(n > 12 && !strncmp(buf, "HTTP/1.1 200", 12), "connection %d", i);
    }
    accepted_now(srv.port, a1);
    long d[3] = {a1[0] - a0[0], a1[1] - a0[1], a1[2] - a0[2]};
    cr_expect(d[0] + d[1] + d[2] == N + 1 && d[0] >= 3 && d[0] <= 4 && d[1] >= 3 && d[1] <= 4 &&
                  d[2] >= 3 && d[2] <= 4,
              "connections accepted by each loop: %ld %ld %ld", d[0], d[1], d[2]);
    /* an earlier /metrics request's connection may still be closing: polled until it settles */
    long open = -1;
    for (int i = 0; i < 200 && (open = open_now(srv.port)) != N + 1; i++)
        usleep(10000);
    cr_expect_eq(open, N + 1, "open with the nine kept and /metrics' own: %ld", open);
    for (int i = 0; i < N; i++)
        close(fd[i]);
    for (int i = 0; i < 200 && (open = open_now(srv.port)) != 1; i++)
        usleep(10000);
    cr_expect_eq(open, 1, "open after the nine closed: %ld", open);
    cr_assert_eq(api_stop(&srv), 0);
}

/* WORKERS bounds the handlers in progress: with one, a request arriving while a DELETE waits on
 * a row lock waits its turn (and is counted in http_handler_wait_seconds), then gets its answer;
 * /health, answered on the loop, never waits. Two loops, which take connections in turn (one per
 * request here): the DELETE and the GET land on different loops, so the GET's place is handed
 * over by the other loop's finished DELETE (server.c's kick). */
Test(resilience, workers_bounds_handlers_in_progress)
{
    api_server srv;
    fw_serve(&srv, "WORKERS=1 LOOPS=2");
    char *u = api_user("bound");
    long long locked = create(srv.port, u, "locked"), other = create(srv.port, u, "free");
    PGconn *holder = lock_item(locked);
    slow_call put = {.port = srv.port, .user = u, .id = locked};
    pthread_t th;
    pthread_create(&th, NULL, delete_item, &put);
    PGconn *watch = pgtest_connect();
    wait_for_lock_waiters(watch, 1);
    PQfinish(watch);
    /* the GET waits for the only handler; released after 300 ms by committing the lock holder */
    slow_call get = {.port = srv.port, .user = u, .id = other};
    pthread_t tg;
    pthread_create(&tg, NULL, get_item, &get);
    usleep(300000);
    api_response *h = api_call(srv.port, "GET", "/health", NULL, NULL);
    EXPECT(h, 200);
    pgtest_assert_within(h->ms, 0, "/health while the only handler was busy");
    api_response_free(h);
    cr_assert_eq(get.status, 0, "the GET was answered while the only handler was busy");
    double committed = pgtest_now_ms();
    free(pgtest_query(holder, "commit"));
    PQfinish(holder);
    pthread_join(th, NULL);
    pthread_join(tg, NULL);
    cr_assert_eq(put.status, 204);
    cr_assert_eq(get.status, 200);
    cr_assert_geq(get.done_at, committed, "the GET was answered before the handler was free");
    api_response *m = api_call(srv.port, "GET", "/metrics", TEST_METRICS_AUTH, NULL);
    EXPECT(m, 200);
    const char *c = strstr(m->body, "\nhttp_handler_wait_seconds_count ");
    cr_assert(c, "%s", m->body);
    cr_expect_geq(atoi(c + strlen("\nhttp_handler_wait_seconds_count ")), 1);
    long a0 = accepted_by(m->body, 0), a1 = accepted_by(m->body, 1);
    cr_expect(a0 > 0 && a1 > 0 && labs(a0 - a1) <= 1, "the loops took turns: %ld %ld", a0, a1);
    api_response_free(m);
    cr_assert_eq(api_stop(&srv), 0);
    free(u);
}

Test(resilience, sigterm_finishes_in_flight_request)
{
    api_server srv;
    fw_serve(&srv, "SHUTDOWN_TIMEOUT=10");
    char *u = api_user("term");
    long long id = create(srv.port, u, "in flight");
    PGconn *holder = lock_item(id);
    slow_call call = {.port = srv.port, .user = u, .id = id};
    pthread_t th;
    pthread_create(&th, NULL, delete_item, &call);
    PGconn *watch = pgtest_connect();
    wait_for_lock_waiters(watch, 1);
    PQfinish(watch);
    cr_assert_eq(kill(srv.pid, SIGTERM), 0);
    int status = -1; /* 0: refused; polled for up to the run's slack (a wait, not a measure) */
    for (double t0 = pgtest_now_ms(); status != 0 && pgtest_now_ms() - t0 < pgtest_slack_ms();) {
        usleep(50000);
        api_response *r = api_call(srv.port, "GET", "/health", NULL, NULL);
        status = r->status;
        api_response_free(r);
    }
    cr_assert_eq(status, 0, "still accepting after SIGTERM (%d)", status);
    cr_assert_eq(call.status, 0, "the DELETE finished before the lock was released");
    free(pgtest_query(holder, "commit"));
    PQfinish(holder);
    pthread_join(th, NULL);
    cr_assert_eq(call.status, 204, "the in-flight DELETE got %d", call.status);
    int st;
    cr_assert_eq(waitpid(srv.pid, &st, 0), srv.pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
    srv.pid = 0;
    char *log = api_log(&srv);
    cr_assert(strstr(log, "SIGTERM") && strstr(log, "stopped"), "%s", log);
    free(log);
    free(u);
}

static void migrate_to(const char *url, const char *to)
{
    char cmd[2048], *out;
    snprintf(cmd, sizeof cmd, "%s -q up %s%s --url '%s' --dir '%s'", pgtest_bin("migrate"),
             to ? "--to " : "", to ? to : "", url, pgtest_source_path("migrations"));
    int rc = pgtest_run(cmd, &out);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
}

static int status_of(int port, const char *user, const char *path)
{
    api_response *r =
        user ? api_as(port, user, "GET", path, NULL) : api_call(port, "GET", path, NULL, NULL);
    int s = r->status;
    if (s == 503) {
        char *ra = api_header(r, "Retry-After");
        cr_assert(ra, "503 without Retry-After: %s", r->head);
        cr_assert(strstr(r->body, "\"detail\""), "%s", r->body);
        free(ra);
    }
    api_response_free(r);
    return s;
}

Test(resilience, schema_behind_then_database_down_and_back)
{
    pgtest_cluster c;
    pgtest_cluster_start(&c);
    migrate_to(c.url, "0002");
    fw_create_items(c.url);
    api_server srv;
    char env[96]; /* fail fast while the cluster is down, but not before a loaded connect */
    snprintf(env, sizeof env, "DB_CONNECT_TIMEOUT=%.1f DB_ACQUIRE_TIMEOUT=%.1f",
             1 + pgtest_slack_ms() / 1000, 1 + pgtest_slack_ms() / 1000);
    api_start_bin(&srv, "framework-api", c.url, env);
    api_response *r = api_call(srv.port, "GET", "/ready", NULL, NULL);
    EXPECT(r, 503);
    cr_assert(strstr(r->body, "schema behind"), "%s", r->body);
    api_response_free(r);
    /* the startup check runs beside the server (a cold Neon compute must not delay listening):
     * its warning may come a moment after the first /ready */
    api_wait_startup(&srv);
    char *log = api_log(&srv);
    cr_assert(strstr(log, "schema is behind"), "no startup warning: %s", log);
    free(log);
    migrate_to(c.url, NULL);
    cr_assert_eq(status_of(srv.port, NULL, "/ready"), 200);

    char *u = api_user("outage"), p[256];
    long long id = create(srv.port, u, "survives");
    snprintf(p, sizeof p, "/api/%s/items/%lld", u, id);
    cr_assert_eq(status_of(srv.port, u, p), 200);

    pgtest_cluster_stop(&c);
    cr_assert_eq(status_of(srv.port, u, p), 503);
    cr_assert_eq(status_of(srv.port, NULL, "/health"), 200);
    cr_assert_eq(status_of(srv.port, NULL, "/ready"), 503);

    pgtest_cluster_restart(&c);
    /* an unexpected database error: 500 with the request id, no SQL in the body */
    PGconn *admin = NULL;
    for (int i = 0; i < 100 && (!admin || PQstatus(admin) != CONNECTION_OK); i++) {
        PQfinish(admin);
        admin = PQconnectdb(c.url);
        if (PQstatus(admin) != CONNECTION_OK)
            usleep(100000);
    }
    cr_assert_eq(PQstatus(admin), CONNECTION_OK, "%s", PQerrorMessage(admin));
    free(pgtest_query(admin, "alter table items rename to items_moved"));
    double t1 = pgtest_now_ms();
    api_response *e = NULL;
    do { /* until the pool has reconnected: 503 first, then the missing table */
        api_response_free(e);
        e = api_as(srv.port, u, "GET", p, NULL);
    } while (e->status == 503 && pgtest_now_ms() - t1 < 15000 && usleep(200000) == 0);
    EXPECT(e, 500);
    cr_assert(strstr(e->body, "\"request_id\"") && !strstr(e->body, "items") &&
                  !strstr(e->body, "select") && !strstr(e->body, "relation"),
              "%s", e->body);
    api_response_free(e);
    free(pgtest_query(admin, "alter table items_moved rename to items"));
    PQfinish(admin);
    int s = 0;
    double t0 = pgtest_now_ms();
    while ((s = status_of(srv.port, u, p)) != 200 && pgtest_now_ms() - t0 < 15000)
        usleep(200000);
    cr_assert_eq(s, 200, "still %d after the database came back", s);
    cr_assert_eq(status_of(srv.port, NULL, "/ready"), 200);
    cr_assert_eq(api_stop(&srv), 0);
    pgtest_cluster_destroy(&c);
    free(u);
}

/* A client that never finishes its request holds a connection on the loop, not a handler, and is
 * dropped after READ_TIMEOUT. */
Test(resilience, slow_client_is_cut_off)
{
    char *app = pgtest_app_url();
    api_server srv;
    api_start_bin(&srv, "framework-api", app, "READ_TIMEOUT=1");
    free(app);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char *partial = "GET /health HTTP/1.1\r\nHost: x\r\n";
    cr_assert_gt(send(fd, partial, strlen(partial), 0), 0);
    for (int i = 0; i < 5; i++) {
        api_response *r = api_call(srv.port, "GET", "/health", NULL, NULL);
        EXPECT(r, 200);
        api_response_free(r);
    }
    double t0 = pgtest_now_ms();
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int wait = (int)(1000 + pgtest_slack_ms());
    cr_assert_eq(poll(&pfd, 1, wait), 1, "the server kept a stalled client for %d ms", wait);
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    cr_assert(n <= 0 || !strncmp(buf, "HTTP/1.1 4", 10), "unexpected answer to a stalled client");
    pgtest_assert_within(pgtest_now_ms() - t0, 1000, "cut off after READ_TIMEOUT=1");
    close(fd);
    cr_assert_eq(api_stop(&srv), 0);
}
