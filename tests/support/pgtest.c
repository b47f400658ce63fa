/* pgtest: see pgtest.h. */
#include "tests/support/pgtest.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "db/url.h"

static const char *required_env(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v && *v, "%s is not set: run this suite through tests/harness/with-db", name);
    return v;
}

char *pgtest_url(void)
{
    char *u =
        db_url_with(required_env("TEST_DATABASE_URL"), "dbname", required_env("TEST_DB_NAME"));
    cr_assert(u, "TEST_DATABASE_URL does not parse");
    return u;
}

bool pgtest_via_pooler(void)
{
    const char *via = getenv("TEST_VIA_POOLER"), *pooler = getenv("TEST_POOLER_URL");
    return via && !strcmp(via, "1") && pooler && *pooler;
}

char *pgtest_app_url(void)
{
    if (!pgtest_via_pooler())
        return pgtest_url();
    char *u = db_url_with(getenv("TEST_POOLER_URL"), "dbname", required_env("TEST_DB_NAME"));
    cr_assert(u, "TEST_POOLER_URL does not parse");
    return u;
}

PGconn *pgtest_connect(void)
{
    char *url = pgtest_url();
    PGconn *c = PQconnectdb(url);
    free(url);
    cr_assert(PQstatus(c) == CONNECTION_OK, "cannot connect to the test database: %s",
              PQerrorMessage(c));
    return c;
}

void *pgtest_killer(void *p)
{
    pgtest_killer_arg *k = p;
    int times = k->times > 0 ? k->times : 1;
    PGconn *c = pgtest_connect();
    char like[128];
    snprintf(like, sizeof like, "%%%s%%", k->marker);
    const char *params[1] = {like};
    for (int i = 0; i < 600 && k->killed < times && PQstatus(c) == CONNECTION_OK; i++) {
        PGresult *r = PQexecParams(c,
                                   "select pid, pg_terminate_backend(pid) from pg_stat_activity "
                                   "where query like $1 and state = 'active' "
                                   "and pid <> pg_backend_pid()",
                                   1, NULL, params, NULL, NULL, 0);
        for (int j = 0; PQresultStatus(r) == PGRES_TUPLES_OK && j < PQntuples(r); j++) {
            if (strcmp(PQgetvalue(r, j, 1), "t") != 0)
                continue;
            int pid = atoi(PQgetvalue(r, j, 0)), seen = 0;
            for (int n = 0; n < k->killed; n++)
                seen |= k->pids[n] == pid; /* still dying: not a second kill */
            if (!seen && k->killed < 8)
                k->pids[k->killed++] = pid;
        }
        PQclear(r);
        usleep(5000);
    }
    PQfinish(c);
    return NULL;
}

char *pgtest_query(PGconn *conn, const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "query failed: %s\n%s",
              PQresultErrorMessage(r), sql);
    char *out = (st == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQnfields(r) > 0)
                    ? strdup(PQgetvalue(r, 0, 0))
                    : NULL;
    PQclear(r);
    return out;
}

void pgtest_drop_database(const char *name)
{
    PGconn *c = pgtest_connect();
    char *id = PQescapeIdentifier(c, name, strlen(name));
    cr_assert_not_null(id, "%s", PQerrorMessage(c));
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", id);
    PQfreemem(id);
    PGresult *r = NULL;
    /* 42501: a session this role may not terminate (an autovacuum worker) is connected; it ends by
     * itself, as migrate diff's scratch drop (migrate/scratch.c) also assumes. */
    for (int attempt = 0; attempt < 60; attempt++) {
        PQclear(r);
        r = PQexec(c, sql);
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (PQresultStatus(r) == PGRES_COMMAND_OK || !state || strcmp(state, "42501"))
            break;
        usleep(500000);
    }
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK, "query failed: %s\n%s",
              PQresultErrorMessage(r), sql);
    PQclear(r);
    PQfinish(c);
}

const char *pgtest_bin(const char *name)
{
    static _Thread_local char path[1024];
    snprintf(path, sizeof path, "%s/%s", PGTEST_BIN_DIR, name);
    return path;
}

const char *pgtest_source_path(const char *relative)
{
    static _Thread_local char path[1024];
    snprintf(path, sizeof path, "%s/%s", PGTEST_SOURCE_DIR, relative);
    return path;
}

/* connect() with a timeout: true when the address accepts a TCP connection within 2 s */
static bool answers(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return false;
    bool ok = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
    if (!ok && errno == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t len = sizeof err;
        ok = poll(&p, 1, 2000) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
             err == 0;
    }
    close(fd);
    return ok;
}

char *pgtest_host_address(const char *url)
{
    char *host = db_url_get(url, "host"), *port = db_url_get(url, "port");
    cr_assert(host, "the test URL names no host");
    cr_assert(host[0] != '/' && host[0] != '@', "the test URL uses a Unix socket (%s), not TCP",
              host);
    cr_assert(!strchr(host, ','), "the test URL names several hosts (%s)", host);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, port ? port : "5432", &hints, &res);
    cr_assert(rc == 0, "cannot resolve %s: %s", host, gai_strerror(rc));
    char addr[NI_MAXHOST] = "";
    for (const struct addrinfo *ai = res; ai && !addr[0]; ai = ai->ai_next)
        if (answers(ai))
            cr_assert(getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof addr, NULL, 0,
                                  NI_NUMERICHOST) == 0);
    freeaddrinfo(res);
    cr_assert(addr[0], "no address of %s answers on port %s", host, port ? port : "5432");
    free(host);
    free(port);
    return strdup(addr);
}

int pgtest_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

int pgtest_run(const char *cmdline, char **output)
{
    char *full;
    cr_assert(asprintf(&full, "(%s) 2>&1", cmdline) > 0);
    FILE *p = popen(full, "r");
    free(full);
    cr_assert(p, "cannot run %s", cmdline);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 1024)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    int st = pclose(p);
    if (output)
        *output = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

void pgtest_cluster_start(pgtest_cluster *c)
{
    memset(c, 0, sizeof *c);
    /* under the harness's directory when there is one, so a test that dies before its cleanup
     * still has its cluster stopped by the harness */
    const char *tmp = getenv("TEST_TMPDIR");
    snprintf(c->dir, sizeof c->dir, "%s/private.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert(mkdtemp(c->dir), "mkdtemp failed");
    char cmd[4096], *out = NULL;
    /* pg-cluster picks the port itself and retries another when it is taken at bind time */
    snprintf(cmd, sizeof cmd, "chmod 755 %s && %s start %s/c && cat %s/c/port", c->dir,
             pgtest_source_path("scripts/pg-cluster"), c->dir, c->dir);
    int rc = pgtest_run(cmd, &out);
    cr_assert(rc == 0, "private cluster did not start: %s", out);
    size_t n = strlen(out);
    while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
    /* the last two lines printed are the URL and the port */
    char *last = strrchr(out, '\n');
    cr_assert(last, "unexpected pg-cluster output: %s", out);
    c->port = atoi(last + 1);
    *last = '\0';
    char *url = strrchr(out, '\n');
    snprintf(c->url, sizeof c->url, "%s", url ? url + 1 : out);
    free(out);
}

static void cluster_cmd(pgtest_cluster *c, const char *verb)
{
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s %s %s/c", pgtest_source_path("scripts/pg-cluster"), verb, c->dir);
    int rc = pgtest_run(cmd, &out);
    cr_assert(rc == 0, "pg-cluster %s failed: %s", verb, out);
    free(out);
}

void pgtest_cluster_stop(pgtest_cluster *c)
{
    cluster_cmd(c, "stop");
}

void pgtest_cluster_restart(pgtest_cluster *c)
{
    cluster_cmd(c, "start");
}

void pgtest_cluster_destroy(pgtest_cluster *c)
{
    if (!c->dir[0])
        return;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s stop %s/c; rm -rf %s", pgtest_source_path("scripts/pg-cluster"),
             c->dir, c->dir);
    pgtest_run(cmd, NULL);
    c->dir[0] = '\0';
}

double pgtest_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* One round of ordinary work: connect, 10 round trips, disconnect. */
static double baseline_round(const char *url)
{
    double t0 = pgtest_now_ms();
    PGconn *c = PQconnectdb(url);
    cr_assert(PQstatus(c) == CONNECTION_OK, "baseline: %s", PQerrorMessage(c));
    for (int i = 0; i < 10; i++)
        PQclear(PQexec(c, "select 1"));
    PQfinish(c);
    return pgtest_now_ms() - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double pgtest_baseline_ms(void)
{
    static double baseline = -1;
    if (baseline >= 0)
        return baseline;
    char *url = pgtest_url();
    double r[3];
    for (int i = 0; i < 3; i++)
        r[i] = baseline_round(url);
    free(url);
    qsort(r, 3, sizeof r[0], cmp_double);
    baseline = r[1];
    return baseline;
}

double pgtest_slack_ms(void)
{
    double s = 10 * pgtest_baseline_ms();
    return s > 2000 ? s : 2000;
}
