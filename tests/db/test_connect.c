/* db/connect: one connection the way Neon needs it: retries what may pass, fails fast on what
 * will not, and says what to fix. Runs against the harness's real PostgreSQL. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "db/connect.h"
#include "db/url.h"
#include "tests/support/pgtest.h"

Test(connect, opens_with_application_name_and_keeps_url_parameters)
{
    char *url = pgtest_app_url();
    db_connect_opts o = {.application_name = "test-connect-app", .budget = 5, .log_label = "test"};
    db_error err;
    PGconn *c = db_connect(url, &o, &err);
    cr_assert_not_null(c, "%s", err.message);
    char *name = pgtest_query(c, "select current_setting('application_name')");
    cr_assert_str_eq(name, "test-connect-app");
    free(name);
    PQfinish(c);

    /* a name in the URL wins over the default */
    char *named = db_url_with(url, "application_name", "from-url");
    c = db_connect(named, &o, &err);
    cr_assert_not_null(c, "%s", err.message);
    name = pgtest_query(c, "select current_setting('application_name')");
    cr_assert_str_eq(name, "from-url");
    free(name);
    PQfinish(c);
    free(named);
    free(url);
}

Test(connect, wrong_password_fails_fast_with_a_hint)
{
    char *url = pgtest_url();
    char *bad = db_url_with(url, "password", "definitely-wrong");
    db_connect_opts o = {.budget = 5};
    db_error err;
    double t0 = pgtest_now_ms();
    PGconn *c = db_connect(bad, &o, &err);
    double ms = pgtest_now_ms() - t0;
    cr_assert_null(c);
    cr_assert_eq(err.kind, DB_ERR_CONFIG, "%s: %s", db_errkind_name(err.kind), err.message);
    cr_assert_str_eq(err.sqlstate, "28P01");
    cr_assert(strstr(err.hint, "password"), "%s", err.hint);
    cr_assert_null(strstr(err.message, "definitely-wrong"));
    /* the budget is 5 s: a retried error would take it all */
    pgtest_assert_within(ms, 0, "permanent errors are not retried");
    free(bad);
    free(url);
}

Test(connect, missing_database_is_a_config_error)
{
    char *url = pgtest_url();
    char *bad = db_url_with(url, "dbname", "no_such_database_here");
    db_error err;
    db_connect_opts o = {.budget = 5};
    PGconn *c = db_connect(bad, &o, &err);
    cr_assert_null(c);
    cr_assert_eq(err.kind, DB_ERR_CONFIG, "%s", err.message);
    cr_assert_str_eq(err.sqlstate, "3D000");
    free(bad);
    free(url);
}

Test(connect, refused_is_retried_within_the_budget_then_transient)
{
    char url[128];
    snprintf(url, sizeof url, "postgresql://u:p@127.0.0.1:%d/db", pgtest_free_port());
    db_connect_opts o = {.budget = 0.8, .connect_timeout = 1};
    db_error err;
    double t0 = pgtest_now_ms();
    PGconn *c = db_connect(url, &o, &err);
    double ms = pgtest_now_ms() - t0;
    cr_assert_null(c);
    cr_assert_eq(err.kind, DB_ERR_TRANSIENT, "%s", err.message);
    cr_assert(strstr(err.message, "refused"), "%s", err.message);
    cr_assert_geq(ms, 600, "kept retrying for the budget (%.0f ms)", ms);
    pgtest_assert_within(ms, 800, "stopped at the budget");
}

Test(connect, budget_zero_means_one_attempt)
{
    char url[128];
    snprintf(url, sizeof url, "postgresql://u:p@127.0.0.1:%d/db", pgtest_free_port());
    db_error err;
    double t0 = pgtest_now_ms();
    cr_assert_null(db_connect(url, NULL, &err));
    double ms = pgtest_now_ms() - t0;
    cr_assert_eq(err.kind, DB_ERR_TRANSIENT);
    /* a refused connect fails at once: only retries (with their sleeps) could take long */
    pgtest_assert_within(ms, 0, "one attempt, no retries");
}

Test(connect, unknown_host_is_a_config_error)
{
    db_error err;
    db_connect_opts o = {.budget = 3};
    PGconn *c = db_connect("postgresql://u:p@no-such-host.invalid/db", &o, &err);
    cr_assert_null(c);
    cr_assert_eq(err.kind, DB_ERR_CONFIG, "%s", err.message);
    cr_assert(strstr(err.hint, "host"), "%s", err.hint);
}

Test(connect, warns_about_plaintext_to_neon)
{
    cr_assert_eq(db_warn_insecure_neon("postgresql://u:p@ep-x-1-pooler.us-east-2.aws.neon.tech/db",
                                       "DATABASE_URL"),
                 1);
    cr_assert_eq(db_warn_insecure_neon(
                     "postgresql://u:p@ep-x-1.us-east-2.aws.neon.tech/db?sslmode=disable", "X"),
                 1);
    cr_assert_eq(db_warn_insecure_neon(
                     "postgresql://u:p@ep-x-1.us-east-2.aws.neon.tech/db?sslmode=require", "X"),
                 0);
    cr_assert_eq(
        db_warn_insecure_neon("postgresql://u:p@ep-x-1.aws.neon.tech/db?sslmode=verify-full", "X"),
        0);
    cr_assert_eq(db_warn_insecure_neon("postgresql://u:p@127.0.0.1/db", "X"), 0);
}
