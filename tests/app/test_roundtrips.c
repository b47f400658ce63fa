/* Database round trips per request, counted by the fault proxy (tests/tools/faultproxy: `turns`,
 * the times the server answered after the API had sent something new) between the real api and
 * the suite's database. Against a distant database (Neon from another region) each round trip is
 * the request's latency, so every endpoint must stay at one, warm. The Idempotency-Key POST has
 * its own test with the framework code that implements it. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db/url.h"
#include "tests/app/apiclient.h"
#include "tests/support/pgtest.h"

static pid_t proxy_pid;
static int proxy_port, control_port;

/* Starts faultproxy in front of the suite's database (direct URL). */
static void proxy_start(void)
{
    char *url = pgtest_url(), *host = db_url_get(url, "host"), *port = db_url_get(url, "port");
    char upstream[300], pfile[] = "/tmp/roundtrips-proxy-XXXXXX";
    snprintf(upstream, sizeof upstream, "%s:%s", host ? host : "127.0.0.1", port ? port : "5432");
    free(url), free(host), free(port);
    int fd = mkstemp(pfile);
    cr_assert(fd >= 0);
    close(fd);
    unlink(pfile);
    proxy_pid = fork();
    cr_assert(proxy_pid >= 0);
    if (proxy_pid == 0) {
        freopen("/dev/null", "w", stdout);
        execl(FAULTPROXY_BIN, "faultproxy", "--upstream", upstream, "--port-file", pfile,
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 250; i++) {
        FILE *f = fopen(pfile, "r");
        if (f) {
            int n = fscanf(f, "%d %d", &proxy_port, &control_port);
            fclose(f);
            unlink(pfile);
            cr_assert_eq(n, 2, "the port file has both ports");
            return;
        }
        usleep(20000);
    }
    cr_assert_fail("faultproxy did not write its port file");
}

static void proxy_stop(void)
{
    if (proxy_pid > 0) {
        kill(proxy_pid, SIGTERM);
        waitpid(proxy_pid, NULL, 0);
        proxy_pid = 0;
    }
}

TestSuite(roundtrips, .init = proxy_start, .fini = proxy_stop, .timeout = 60);

/* One command on the control port; the answer line (static buffer). */
static const char *control(const char *cmd)
{
    static char answer[256];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)control_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "the control port answers");
    dprintf(fd, "%s\n", cmd);
    size_t n = 0;
    while (n < sizeof answer - 1) {
        ssize_t r = read(fd, answer + n, 1);
        if (r <= 0 || answer[n] == '\n')
            break;
        n++;
    }
    answer[n] = '\0';
    close(fd);
    return answer;
}

static long stat_of(const char *name)
{
    const char *s = control("stats");
    char key[40];
    snprintf(key, sizeof key, " %s=", name);
    const char *at = strstr(s, key);
    cr_assert(at, "stats has %s: %s", name, s);
    return atol(at + strlen(key));
}

typedef struct {
    const char *what, *method, *path, *body;
    int status;
} call;

/* Runs c, then asserts it cost exactly `want` round trips and no new connection. */
static void expect_turns(int port, const char *user, const call *c, long want)
{
    long conns = stat_of("accepted");
    cr_assert_str_eq(control("zero"), "ok");
    api_response *r = c->method[0] == '-' ? api_call(port, c->method + 1, c->path, NULL, c->body)
                                          : api_as(port, user, c->method, c->path, c->body);
    cr_assert_eq(r->status, c->status, "%s: %s\n%s", c->what, r->head, r->body);
    api_response_free(r);
    long turns = stat_of("turns"), accepted = stat_of("accepted");
    cr_expect_eq(turns, want, "%s: %ld database round trips, want %ld", c->what, turns, want);
    cr_expect_eq(accepted, 0, "%s opened a database connection (warm pool: %ld before)", c->what,
                 conns);
}

Test(roundtrips, every_endpoint_costs_one_round_trip_warm)
{
    char *direct = pgtest_url();
    api_migrate(direct);
    char port[16];
    snprintf(port, sizeof port, "%d", proxy_port);
    char *host = db_url_get(direct, "host");
    char *tmp = db_url_with(direct, "port", port);
    char *via = db_url_with(tmp, "host", host ? host : "127.0.0.1");
    free(tmp), free(host), free(direct);
    cr_assert(via);
    api_server srv;
    /* one pool connection: every request below finds it warm */
    api_start(&srv, via, "DB_POOL_MAX=1 DB_PIPELINE_CONNS=1");
    free(via);
    char *user = api_user("rt");
    char tasks[256], task[300], done[320];
    snprintf(tasks, sizeof tasks, "/api/%s/tasks", user);

    /* warm: the first request connects */
    api_response *r = api_as(srv.port, user, "POST", tasks, "{\"title\":\"warm\"}");
    cr_assert_eq(r->status, 201, "%s\n%s", r->head, r->body);
    long long id = atoll(strstr(r->body, "\"id\":") + 5);
    api_response_free(r);
    snprintf(task, sizeof task, "%s/%lld", tasks, id);
    snprintf(done, sizeof done, "%s/complete", task);

    const call calls[] = {
        {"GET /ready", "-GET", "/ready", NULL, 200},
        {"GET a task", "GET", task, NULL, 200},
        {"GET the list (page and total)", "GET", tasks, NULL, 200},
        {"GET the list, filtered and searched", "GET", NULL, NULL, 200},
        {"POST a task", "POST", tasks, "{\"title\":\"one trip\",\"description\":\"d\"}", 201},
        {"PUT a task", "PUT", task, "{\"title\":\"replaced\",\"completed\":true}", 200},
        {"PATCH complete", "PATCH", done, NULL, 200},
        {"GET a missing task", "GET", NULL, NULL, 404},
        {"DELETE a task", "DELETE", task, NULL, 204},
        {"DELETE a missing task", "DELETE", task, NULL, 404},
    };
    char filtered[400], missing[300];
    snprintf(filtered, sizeof filtered, "%s?status=completed&search=repl&sort=title&order=asc",
             tasks);
    snprintf(missing, sizeof missing, "%s/%lld", tasks, id + 1000000);
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        call c = calls[i];
        if (!c.path)
            c.path = c.status == 404 ? missing : filtered;
        expect_turns(srv.port, user, &c, 1);
    }
    /* and the server's own connection count: one connection carried all of it */
    cr_expect_eq(stat_of("conns"), 1, "server connections held: %ld", stat_of("conns"));
    free(user);
    cr_assert_eq(api_stop(&srv), 0);
}
