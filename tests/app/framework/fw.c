/* fw: see fw.h. */
#include "tests/app/framework/fw.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/support/pgtest.h"

void fw_prepare(void)
{
    char *url = pgtest_url();
    api_migrate(url);
    fw_create_items(url);
    free(url);
}

void fw_create_items(const char *url)
{
    char *sql = NULL;
    FILE *f = fopen(pgtest_source_path("tests/app/framework/items.sql"), "r");
    cr_assert(f, "tests/app/framework/items.sql missing");
    size_t n = 0;
    cr_assert(getdelim(&sql, &n, '\0', f) > 0);
    fclose(f);
    PGconn *c = PQconnectdb(url);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "items.sql: %s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    free(sql);
}

void fw_serve(api_server *srv, const char *extra_env)
{
    fw_prepare();
    char *app = pgtest_app_url();
    api_start_bin(srv, "framework-api", app, extra_env);
    free(app);
}

long fw_count(const char *sql)
{
    PGconn *c = pgtest_connect();
    char *v = pgtest_query(c, sql);
    long n = atol(v);
    free(v);
    PQfinish(c);
    return n;
}
