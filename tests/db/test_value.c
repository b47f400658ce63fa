/* db/value: values read from binary results are what PostgreSQL's own text output says, byte for
 * byte (timestamps as ISO 8601), for edge values too; and the same readers take text results.
 * Each case asks the real server for the value in both formats and compares. */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <string.h>

#include "db/engine.h"
#include "db/value.h"
#include "tests/support/pgtest.h"

static PGresult *fetch(PGconn *c, const char *sql, int format)
{
    PGresult *r = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, format);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    return r;
}

/* PostgreSQL's text for a timestamp, made ISO: its space a T, a Z after it. */
static void iso_of_text(const char *pg, char *out, size_t cap)
{
    snprintf(out, cap, "%sZ", pg);
    char *space = strchr(out, ' ');
    if (space)
        *space = 'T';
}

Test(value, timestamps_from_binary_are_what_the_server_writes)
{
    PGconn *c = pgtest_connect();
    /* whole seconds, every trailing-zero length, midnight, leap days, a value twice and another
     * time of its day (the last value and day are kept per thread), the epochs, a negative
     * (before 2000) fraction, far years, BC, infinity, and 400 days back from a fixed instant (the
     * two formats are two statements: now() would differ) */
    const char *sql =
        "select v from unnest(array['2026-11-26 19:40:00', '2026-11-26 19:40:00.1', "
        "'2026-11-26 19:40:00.12', '2026-11-26 19:40:00.123', '2026-11-26 19:40:00.1234', "
        "'2026-11-26 19:40:00.12345', '2026-11-26 19:40:00.123456', '2026-11-26 19:40:00.000001', "
        "'2026-12-31 23:59:59.999999', '2027-01-01 00:00:00', '2024-02-29 12:00:00.5', "
        "'2024-02-29 12:00:00.5', '2024-02-29 01:02:03', '2024-03-01 01:02:03', "
        "'2000-01-01 00:00:00', '1999-12-31 23:59:59.999999', '1970-01-01 00:00:00', "
        "'1969-07-20 20:17:40.05', '1900-03-01 00:00:00', '0001-01-01 00:00:00', "
        "'9999-12-31 23:59:59.999999', '12345-06-07 08:09:10.011', '0044-03-15 12:00:00 BC', "
        "'infinity', '-infinity']::timestamp[]) v "
        "union all select timestamp '2026-12-01 13:20:59.688537' - i * interval '1 day 1.000317 "
        "second' "
        "from generate_series(1, 400) i";
    PGresult *t = fetch(c, sql, 0), *b = fetch(c, sql, 1);
    cr_assert_eq(PQntuples(t), PQntuples(b));
    cr_assert_gt(PQntuples(t), 400);
    for (int i = 0; i < PQntuples(t); i++) {
        char want[DB_ISO_TIME_MAX + 8], got[DB_ISO_TIME_MAX], from_text[DB_ISO_TIME_MAX];
        iso_of_text(PQgetvalue(t, i, 0), want, sizeof want);
        size_t n = db_value_iso_time(b, i, 0, got);
        cr_assert_str_eq(got, want, "row %d: binary gave %s, the server writes %s", i, got,
                         PQgetvalue(t, i, 0));
        cr_assert_eq(n, strlen(got));
        db_value_iso_time(t, i, 0, from_text);
        cr_assert_str_eq(from_text, want);
    }
    PQclear(t);
    PQclear(b);
    PQfinish(c);
}

Test(value, bigints_and_booleans_in_both_formats)
{
    PGconn *c = pgtest_connect();
    const char *sql = "select v, v % 2 = 0 from unnest(array[0, 1, -1, 42, 9007199254740993, "
                      "9223372036854775807, -9223372036854775808]::bigint[]) v";
    PGresult *t = fetch(c, sql, 0), *b = fetch(c, sql, 1);
    for (int i = 0; i < PQntuples(t); i++) {
        char tb[24], tt[24];
        cr_assert_str_eq(db_value_int8_text(b, i, 0, tb), PQgetvalue(t, i, 0));
        cr_assert_str_eq(db_value_int8_text(t, i, 0, tt), PQgetvalue(t, i, 0));
        cr_assert_eq(db_value_int8(b, i, 0), db_value_int8(t, i, 0));
        cr_assert_eq(db_value_bool(b, i, 1), PQgetvalue(t, i, 1)[0] == 't', "row %d", i);
        cr_assert_eq(db_value_bool(t, i, 1), PQgetvalue(t, i, 1)[0] == 't', "row %d", i);
    }
    PQclear(t);
    PQclear(b);
    PQfinish(c);
}

/* db_query_format: binary results from a session, pipelined (a coroutine is not needed for the
 * plain path: outside one the session runs the statement on its own connection). */
Test(value, a_session_returns_binary_results_when_asked)
{
    char *url = pgtest_app_url();
    setenv("DATABASE_URL", url, 1);
    db_config cfg;
    char err_text[256];
    cr_assert_eq(db_config_from_env(&cfg, err_text, sizeof err_text), 0, "%s", err_text);
    db_error err;
    db_engine *e = db_engine_open(&cfg, &err);
    cr_assert_not_null(e, "%s", err.message);
    db_session *s;
    cr_assert_eq(db_session_open(e, DB_READ_ONLY, &s, &err), 0, "%s", err.message);
    const char *params[] = {"41"};
    PGresult *r =
        db_query_format(s, "select $1::bigint + 1, true, timestamp '2026-11-26 19:40:00.5'", 1,
                        params, DB_BINARY, &err);
    cr_assert_not_null(r, "%s", err.message);
    cr_assert_eq(PQfformat(r, 0), 1);
    cr_assert_eq(PQgetlength(r, 0, 0), 8);
    cr_assert_eq(db_value_int8(r, 0, 0), 42);
    cr_assert(db_value_bool(r, 0, 1));
    char t[DB_ISO_TIME_MAX];
    db_value_iso_time(r, 0, 2, t);
    cr_assert_str_eq(t, "2026-11-26T19:40:00.5Z");
    PQclear(r);
    r = db_query(s, "select 1::bigint", 0, NULL, &err);
    cr_assert_eq(PQfformat(r, 0), 0, "db_query stays text");
    PQclear(r);
    db_session_close(s);
    db_engine_close(e);
    free(url);
}
