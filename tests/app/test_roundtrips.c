/* Database round trips per request, counted by the fault proxy (tests/tools/faultproxy: `turns`,
 * the times the server answered after the API had sent something new) between the real api and
 * the suite's database. Against a distant database (Neon from another region) each round trip is
 * the request's latency, so every endpoint must stay at one, warm. The Idempotency-Key POST has
 * its own test with the framework code that implements it. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/app/apiclient.h"
#include "tests/support/fproxy.h"
#include "tests/support/pgtest.h"

static fproxy proxy;

static void proxy_start(void)
{
    char *url = pgtest_url();
    fproxy_start(&proxy, url);
    free(url);
}

static void proxy_stop(void)
{
    fproxy_stop(&proxy);
}

TestSuite(roundtrips, .init = proxy_start, .fini = proxy_stop, .timeout = 60);

static long stat_of(const char *name)
{
    return fproxy_stat(&proxy, name);
}

static const char *control(const char *cmd)
{
    return fproxy_cmd(&proxy, cmd);
}

typedef struct {
    const char *what, *method, *path, *body;
    int status;
} call;

/* Runs c, then asserts it cost exactly `want` round trips and no new connection. */
static void expect_turns(int port, const char *user, const call *c, long want)
{
    cr_assert_str_eq(control("zero"), "ok");
    api_response *r = c->method[0] == '-' ? api_call(port, c->method + 1, c->path, NULL, c->body)
                                          : api_as(port, user, c->method, c->path, c->body);
    cr_assert_eq(r->status, c->status, "%s: %s\n%s", c->what, r->head, r->body);
    api_response_free(r);
    long turns = stat_of("turns"), accepted = stat_of("accepted");
    cr_expect_eq(turns, want, "%s: %ld database round trips, want %ld", c->what, turns, want);
    cr_expect_eq(accepted, 0, "%s opened a new database connection", c->what);
}

Test(roundtrips, every_endpoint_costs_one_round_trip_warm)
{
    char *direct = pgtest_url();
    api_migrate(direct);
    char *via = fproxy_url(&proxy, direct);
    free(direct);
    api_server srv;
    /* one pool connection: every request below finds it warm */
    api_start(&srv, via, "DB_POOL_MAX=1 DB_PIPELINE_CONNS=1");
    free(via);
    /* its query on the one connection would count in whichever request it met (CI once: the
     * PATCH, 2 round trips) */
    api_wait_startup(&srv);
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
