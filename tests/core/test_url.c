/* db/url: connection strings are parsed by libpq and printed without their password. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "db/url.h"

Test(url, mask_uri_hides_password_keeps_everything_else)
{
    char *m = db_url_mask("postgresql://alex:s3cr%40t@ep-cool-123-pooler.us-east-2.aws.neon.tech/"
                          "neondb?sslmode=require&channel_binding=require");
    cr_assert_not_null(m);
    cr_assert_null(strstr(m, "s3cr"), "%s", m);
    cr_assert(strstr(m, "alex:****@ep-cool-123-pooler.us-east-2.aws.neon.tech/neondb"), "%s", m);
    cr_assert(strstr(m, "sslmode=require"), "%s", m);
    cr_assert(strstr(m, "channel_binding=require"), "%s", m);
    free(m);
}

Test(url, mask_key_value_form)
{
    char *m = db_url_mask("host=localhost port=5433 user=app password='pa ss' dbname=todo");
    cr_assert_not_null(m);
    cr_assert_null(strstr(m, "pa ss"));
    cr_assert_null(strstr(m, "pa%20ss"));
    cr_assert_str_eq(m, "postgresql://app:****@localhost:5433/todo");
    free(m);
}

Test(url, check_reports_libpq_reason)
{
    char err[256];
    cr_assert_eq(db_url_check("postgresql://u:p@h/db?sslmode=require", err, sizeof err), 0);
    cr_assert_eq(db_url_check("postgresql://u:p@h/db?nosuchparam=1", err, sizeof err), -1);
    cr_assert(strstr(err, "nosuchparam"), "%s", err);
    cr_assert_eq(db_url_check("host=x bogus", err, sizeof err), -1);
    cr_assert_eq(db_url_check("", err, sizeof err), -1);
}

Test(url, with_replaces_one_parameter_and_keeps_the_rest)
{
    char *u = db_url_with("postgresql://u:p%27w@h:6543/db?sslmode=require&application_name=x",
                          "dbname", "other");
    cr_assert_not_null(u);
    char *db = db_url_get(u, "dbname"), *pw = db_url_get(u, "password"),
         *ssl = db_url_get(u, "sslmode"), *port = db_url_get(u, "port");
    cr_assert_str_eq(db, "other");
    cr_assert_str_eq(pw, "p'w");
    cr_assert_str_eq(ssl, "require");
    cr_assert_str_eq(port, "6543");
    free(db), free(pw), free(ssl), free(port), free(u);
    u = db_url_with("host=h dbname=d", "dbname", NULL);
    char *none = db_url_get(u, "dbname");
    cr_assert_null(none);
    free(u);
}

/* DB_PREPARE=auto prepares on Neon's pooled endpoint: a -pooler first label of a neon.tech host. */
Test(url, neon_pooler_is_the_pooler_label_of_a_neon_host)
{
    static const struct {
        const char *url;
        bool pooler;
    } cases[] = {
        {"postgresql://u:p@ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech/neondb", true},
        {"postgres://u:p@ep-x-1-pooler.eu-central-1.aws.neon.tech:5432/db?sslmode=require", true},
        {"host=ep-a-1-pooler.westus3.azure.neon.tech dbname=neondb user=u", true},
        {"host=ep-a-pooler.x.neon.tech,ep-b-pooler.y.neon.tech dbname=x", true},
        {"postgresql://u:p@ep-cool-darkness-123456.us-east-2.aws.neon.tech/neondb", false},
        {"host=ep-a-pooler.x.neon.tech,ep-b.y.neon.tech dbname=x", false},
        {"postgresql://u:p@db.ep-x-pooler.neon.tech/db", false},
        {"postgresql://u:p@ep-x-pooler.example.com/db", false},
        {"postgresql://u:p@ep-x-pooler.neon.tech.example.com/db", false},
        {"postgresql://u:p@localhost/db", false},
        {"postgresql:///db", false},
        {"not a url", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_assert_eq(db_url_neon_pooler(cases[i].url), cases[i].pooler, "%s", cases[i].url);
}
