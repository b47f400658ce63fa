/* The real `api` binary: bad configuration exits non-zero with one line naming the variable and
 * never a password; good configuration serves /health. */
#include <criterion/criterion.h>
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
    struct {
        const char *env, *expect;
    } cases[] = {
        {"DATABASE_URL=postgresql://u:hunter2@h/db PORT=http", "PORT must be an integer"},
        {"DATABASE_URL=postgresql://u:hunter2@h/db APP_ENV=staging", "APP_ENV must be one of"},
        {"DATABASE_URL='postgresql://u:hunter2@h/db?bogus=1'", "DATABASE_URL is not a valid"},
        {"DATABASE_URL=postgresql://u:hunter2@h/db LOG_LEVEL=loud", "LOG_LEVEL must be one of"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *out;
        int rc = run_api(cases[i].env, &out);
        cr_assert_eq(rc, 2, "%s: exit %d: %s", cases[i].env, rc, out);
        cr_assert(strstr(out, cases[i].expect), "%s: %s", cases[i].env, out);
        cr_assert_null(strstr(out, "hunter2"), "password leaked: %s", out);
        cr_assert_eq(count_lines(out), 1, "%s", out);
        free(out);
    }
}

Test(startup, serves_health_and_hides_password)
{
    char *url = pgtest_app_url();
    int port = pgtest_free_port();
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd,
             "cd /tmp && (env -i PATH=/usr/bin:/bin LOG_FORMAT=json APP_ENV=development "
             "DATABASE_URL='%s' PORT=%d %s & pid=$!; "
             "for i in $(seq 1 100); do curl -fsS http://127.0.0.1:%d/health && break; sleep 0.05; "
             "done; echo; kill -TERM $pid; wait $pid; echo exit=$?)",
             url, port, pgtest_bin("api"), port);
    int rc = pgtest_run(cmd, &out);
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
