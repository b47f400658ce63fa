/* The real `api` binary: bad configuration exits non-zero with one line naming the variable and
 * never a password; good configuration serves /health. */
#include <criterion/criterion.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/url.h"
#include "tests/support/pgtest.h"

static int run_api(const char *env, char **out)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd /tmp && env -i PATH=/usr/bin:/bin LOG_FORMAT=text %s timeout 10 %s", env,
             pgtest_bin("api"));
    return pgtest_run(cmd, out);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* A bad setting: exit 2 and one line that names it, without the password of the URL. */
typedef struct {
    const char *env, *expect;
} config_case;

static void expect_config_errors(const config_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *out;
        int rc = run_api(cases[i].env, &out);
        cr_assert_eq(rc, 2, "%s: exit %d: %s", cases[i].env, rc, out);
        cr_assert(strstr(out, cases[i].expect), "%s: %s", cases[i].env, out);
        cr_assert_null(strstr(out, "hunter2"), "password leaked: %s", out);
        cr_assert_eq(count_lines(out), 1, "%s", out);
        free(out);
    }
}

Test(startup, missing_database_url)
{
    char *out;
    int rc = run_api("", &out);
    cr_assert_eq(rc, 2, "exit %d: %s", rc, out);
    cr_assert(strstr(out, "DATABASE_URL is not set"), "%s", out);
    cr_assert_eq(count_lines(out), 1, "%s", out);
    free(out);
}

Test(startup, bad_values_name_the_variable)
{
    static const config_case cases[] = {
        {"DATABASE_URL=postgresql://u:hunter2@h/db PORT=http", "PORT must be an integer"},
        {"DATABASE_URL=postgresql://u:hunter2@h/db APP_ENV=staging", "APP_ENV must be one of"},
        {"DATABASE_URL='postgresql://u:hunter2@h/db?bogus=1'", "DATABASE_URL is not a valid"},
        {"DATABASE_URL=postgresql://u:hunter2@h/db LOG_LEVEL=loud", "LOG_LEVEL must be one of"},
        {"DATABASE_URL=postgresql://u:hunter2@h/db LOOPS=many",
         "LOOPS must be \"auto\" or an integer from 1 to 64, got \"many\""},
        {"DATABASE_URL=postgresql://u:hunter2@h/db LOOPS=0", "LOOPS must be \"auto\" or"},
    };
    expect_config_errors(cases, sizeof cases / sizeof *cases);
}

/* Starts the api with `env` (under `prefix`: taskset, say), waits for /health to answer (its body
 * goes to the output), stops it with SIGTERM; *out gets everything, "exit=N" last. */
static int serve_once(const char *url, const char *prefix, const char *env, char **out)
{
    int port = pgtest_free_port();
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd /tmp && (env -i PATH=/usr/bin:/bin APP_ENV=development %s DATABASE_URL='%s' "
             "PORT=%d %s %s 2>&1 & pid=$!; "
             "for i in $(seq 1 600); do curl -fsS http://127.0.0.1:%d/health && break; sleep 0.05; "
             "done; echo; kill -TERM $pid; wait $pid; echo exit=$?)",
             env, url, port, prefix, pgtest_bin("api"), port);
    return pgtest_run(cmd, out);
}

Test(startup, serves_health_and_hides_password)
{
    char *url = pgtest_app_url(), *out;
    int rc = serve_once(url, "", "LOG_FORMAT=json", &out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "{\"status\":\"ok\"}"), "%s", out);
    cr_assert(strstr(out, "exit=0"), "%s", out);
    char *password = db_url_get(url, "password");
    cr_assert_not_null(password, "the test URL has a password");
    cr_assert_null(strstr(out, password), "password leaked: %s", out);
    free(password);
    free(out);
    free(url);
}

Test(startup, production_needs_a_jwt_secret)
{
    static const config_case cases[] = {
        {"DATABASE_URL=postgresql://u:hunter2@h/db", "JWT_SECRET is not set"},
        {"DATABASE_URL=postgresql://u:hunter2@h/db JWT_SECRET=short", "at least 32 bytes"},
        {"DATABASE_URL=postgresql://u:hunter2@h/db BETTER_AUTH_SECRET=short", "BETTER_AUTH_SECRET"},
        {"DATABASE_URL=postgresql://u:hunter2@h/db WORKERS=0 APP_ENV=development",
         "WORKERS must be an integer"},
        {"DATABASE_URL=postgresql://u:hunter2@h/db IDEMPOTENCY_KEY_TTL=1d APP_ENV=development",
         "IDEMPOTENCY_KEY_TTL"},
        {"DATABASE_URL=postgresql://u:hunter2@h/db CORS_ORIGINS=app.example.com "
         "APP_ENV=development",
         "CORS_ORIGINS"},
    };
    expect_config_errors(cases, sizeof cases / sizeof *cases);
}

/* The identity provider's settings (AUTH_*): one line naming the problem. */
#define TEST_SECRET_32 "0123456789abcdef0123456789abcdef"

Test(startup, auth_settings_are_checked)
{
    static const config_case cases[] = {
        {"DATABASE_URL=postgresql://u:hunter2@h/db AUTH_JWKS_URL=ftp://auth.example.com/jwks",
         "AUTH_JWKS_URL must be an http(s) URL"},
        {"DATABASE_URL=postgresql://u:hunter2@h/db APP_ENV=development METRICS_TOKEN=short",
         "METRICS_TOKEN must be 16 to 512 printable characters"},
        {"DATABASE_URL=postgresql://u:hunter2@h/db APP_ENV=development RATE_LIMIT=100",
         "RATE_LIMIT must be a count per second, minute, hour or day, like 100/second, got "
         "\"100\""},
        {"DATABASE_URL=postgresql://u:hunter2@h/db APP_ENV=development RATE_LIMIT=0/second",
         "RATE_LIMIT must be"},
        {"DATABASE_URL=postgresql://u:hunter2@h/db APP_ENV=development RATE_LIMIT=10/week",
         "RATE_LIMIT must be"},
        {"DATABASE_URL=postgresql://u:hunter2@h/db AUTH_JWKS_URL=auth.example.com/jwks",
         "AUTH_JWKS_URL must be an http(s) URL"},
        {"DATABASE_URL=postgresql://u:hunter2@h/db AUTH_JWKS_URL=http://auth.example.com/jwks",
         "AUTH_JWKS_URL must use https://"},
        {"DATABASE_URL=postgresql://u:hunter2@h/db AUTH_JWKS_URL='https://a b.example/jwks'",
         "AUTH_JWKS_URL is not a valid URL"},
        {"DATABASE_URL=postgresql://u:hunter2@h/db AUTH_JWKS_URL=https://a.example/jwks "
         "AUTH_ALGORITHMS=EdDSA,HS512",
         "AUTH_ALGORITHMS: \"HS512\""},
        {"DATABASE_URL=postgresql://u:hunter2@h/db AUTH_JWKS_URL=https://a.example/jwks "
         "AUTH_ALGORITHMS=HS256",
         "AUTH_ALGORITHMS allows only HS256"},
        {"DATABASE_URL=postgresql://u:hunter2@h/db JWT_SECRET=" TEST_SECRET_32
         " AUTH_ALGORITHMS=EdDSA",
         "AUTH_JWKS_URL is not set"},
        {"DATABASE_URL=postgresql://u:hunter2@h/db AUTH_JWKS_URL=https://a.example/jwks "
         "AUTH_LEEWAY=1h",
         "AUTH_LEEWAY"},
        {"DATABASE_URL=postgresql://u:hunter2@h/db AUTH_JWKS_URL=https://a.example/jwks "
         "AUTH_JWKS_MIN_REFRESH=0",
         "AUTH_JWKS_MIN_REFRESH"},
    };
    expect_config_errors(cases, sizeof cases / sizeof *cases);
}

/* Development without a secret: a generated one, and a token + curl line that work. On the
 * framework test server (its GET /api/{user_id}/items), so the check needs no example resource:
 * the curl line printed is run as printed. */
Test(startup, development_prints_a_working_token)
{
    char *url = pgtest_app_url();
    int port = pgtest_free_port();
    char cmd[4096], *out;
    snprintf(
        cmd, sizeof cmd,
        "cd /tmp && (env -i PATH=/usr/bin:/bin LOG_FORMAT=text APP_ENV=development "
        "DATABASE_URL='%s' PORT=%d %s > /tmp/devtoken-%d.out 2>&1 & pid=$!; "
        "for i in $(seq 1 600); do curl -fsS -o /dev/null http://127.0.0.1:%d/health && break; "
        "sleep 0.05; done; "
        "line=$(grep -o \"curl -H 'Authorization: Bearer [A-Za-z0-9._-]*' http://[^ ]*\" "
        "/tmp/devtoken-%d.out | head -1); "
        "echo \"line=$line\"; "
        "eval \"${line:-false} -s -o /dev/null -w 'status=%%{http_code}\\n'\"; "
        "kill -TERM $pid; wait $pid; echo exit=$?; cat /tmp/devtoken-%d.out; "
        "rm -f /tmp/devtoken-%d.out)",
        url, port, pgtest_bin("framework-api"), port, port, port, port, port);
    int rc = pgtest_run(cmd, &out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "line=curl -H 'Authorization: Bearer ") &&
                  strstr(out, "/api/dev-user/items\n"),
              "%s", out);
    /* the token authenticates: the table may not exist in this suite's database, so anything but
     * 401 and 404 proves it (200 when migrated, 500 when not) */
    cr_assert(strstr(out, "status=") && !strstr(out, "status=401") && !strstr(out, "status=404") &&
                  !strstr(out, "status=000"),
              "%s", out);
    cr_assert(strstr(out, "exit=0"), "%s", out);
    free(out);
    free(url);
}

Test(startup, healthcheck_mode_answers_for_docker)
{
    char *url = pgtest_app_url();
    int port = pgtest_free_port(), dead = pgtest_free_port();
    char cmd[4096], *out;
    /* HOST=0.0.0.0 as in the image: the check must probe this machine */
    snprintf(
        cmd, sizeof cmd,
        "cd /tmp && (env -i PATH=/usr/bin:/bin APP_ENV=development HOST=0.0.0.0 "
        "DATABASE_URL='%s' PORT=%d %s >/dev/null 2>&1 & pid=$!; "
        "for i in $(seq 1 600); do curl -fsS -o /dev/null http://127.0.0.1:%d/health && break; "
        "sleep 0.05; done; "
        "env -i HOST=0.0.0.0 PORT=%d %s --healthcheck; echo live=$?; "
        "env -i PORT=%d %s --healthcheck; echo dead=$?; "
        "env -i PORT=none %s --healthcheck; echo bad=$?; "
        "kill -TERM $pid; wait $pid)",
        url, port, pgtest_bin("api"), port, port, pgtest_bin("api"), dead, pgtest_bin("api"),
        pgtest_bin("api"));
    int rc = pgtest_run(cmd, &out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "live=0"), "%s", out);
    cr_assert(strstr(out, "dead=1"), "%s", out);
    cr_assert(strstr(out, "nothing answers on 127.0.0.1"), "%s", out);
    cr_assert(strstr(out, "bad=1"), "%s", out);
    cr_assert(strstr(out, "PORT must be an integer"), "%s", out);
    free(out);
    free(url);
}

Test(startup, version_help_and_unknown_arguments)
{
    char cmd[2048], *out;
    snprintf(cmd, sizeof cmd, "%s --version", pgtest_bin("api"));
    cr_assert_eq(pgtest_run(cmd, &out), 0, "%s", out);
    cr_assert(!strncmp(out, "api ", 4) && strchr(out, '.'), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s --help", pgtest_bin("api"));
    cr_assert_eq(pgtest_run(cmd, &out), 0, "%s", out);
    cr_assert(strstr(out, "--healthcheck"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s --bogus", pgtest_bin("api"));
    cr_assert_eq(pgtest_run(cmd, &out), 2, "%s", out);
    cr_assert(strstr(out, "unknown argument \"--bogus\""), "%s", out);
    free(out);
}

/* How many loops the server started with `env` (its startup line), run under `prefix` (taskset). */
static int loops_started(const char *prefix, const char *env)
{
    char *url = pgtest_app_url(), *out, e[256];
    snprintf(e, sizeof e, "LOG_FORMAT=text %s", env);
    int rc = serve_once(url, prefix, e, &out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "exit=0"), "%s", out);
    const char *at = strstr(out, " loop(s), up to ");
    cr_assert(at, "no startup line: %s", out);
    while (at > out && at[-1] >= '0' && at[-1] <= '9')
        at--;
    int n = atoi(at);
    free(out);
    free(url);
    return n;
}

/* LOOPS=auto (the default): a loop per CPU the process may use, no more than DB_PIPELINE_CONNS
 * (each loop pipelines on its own share of those connections). */
Test(startup, loops_follow_the_cpus_and_the_pipelined_connections)
{
    cr_assert_eq(loops_started("taskset -c 0", "DB_PIPELINE_CONNS=8"), 1, "one CPU, one loop");
    cr_assert_eq(loops_started("", "DB_PIPELINE_CONNS=1"), 1, "one read connection, one loop");
    cr_assert_eq(loops_started("", "LOOPS=3"), 3, "an explicit count is kept");
    cpu_set_t set;
    cr_assert_eq(sched_getaffinity(0, sizeof set, &set), 0);
    if (CPU_COUNT(&set) >= 2) /* this machine: 2 CPUs, no cgroup limit below that */
        cr_assert_eq(loops_started("taskset -c 0,1", ""), 2,
                     "two CPUs, DB_PIPELINE_CONNS 2: two loops");
}

/* A second server on a taken port must fail loudly, not quietly take a share of the connections
 * (which SO_REUSEPORT would let it do); with LOOPS=2 both loops share the one listening socket. */
Test(startup, second_instance_on_the_same_port_fails)
{
    char *url = pgtest_app_url();
    int port = pgtest_free_port();
    char cmd[4096], *out;
    snprintf(
        cmd, sizeof cmd,
        "cd /tmp && (env -i PATH=/usr/bin:/bin APP_ENV=development LOOPS=2 LOG_FORMAT=text "
        "DATABASE_URL='%s' PORT=%d %s >/dev/null 2>&1 & pid=$!; "
        "for i in $(seq 1 600); do curl -fsS -o /dev/null http://127.0.0.1:%d/health && break; "
        "sleep 0.05; done; "
        "for i in 1 2 3 4 5 6; do curl -fsS http://127.0.0.1:%d/health; done; echo; "
        "env -i PATH=/usr/bin:/bin APP_ENV=development LOG_FORMAT=text DATABASE_URL='%s' "
        "PORT=%d timeout 10 %s; echo second=$?; "
        "kill -TERM $pid; wait $pid; echo first=$?)",
        url, port, pgtest_bin("api"), port, port, url, port, pgtest_bin("api"));
    int rc = pgtest_run(cmd, &out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "{\"status\":\"ok\"}{\"status\":\"ok\"}{\"status\":\"ok\"}"
                          "{\"status\":\"ok\"}{\"status\":\"ok\"}{\"status\":\"ok\"}"),
              "%s", out);
    cr_assert(strstr(out, "second=1"), "%s", out);
    cr_assert(strstr(out, "Address already in use"), "%s", out);
    cr_assert(strstr(out, "first=0"), "%s", out);
    free(out);
    free(url);
}
