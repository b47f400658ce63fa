/* db/error: SQLSTATEs and libpq's connection failures are sorted into what the caller can do. */
#include <criterion/criterion.h>
#include <string.h>

#include "db/error.h"

Test(error, sqlstates_sort_into_kinds)
{
    cr_assert_eq(db_classify_sqlstate("08006"), DB_ERR_TRANSIENT);
    cr_assert_eq(db_classify_sqlstate("08001"), DB_ERR_TRANSIENT);
    cr_assert_eq(db_classify_sqlstate("57P01"), DB_ERR_TRANSIENT);
    cr_assert_eq(db_classify_sqlstate("57P03"), DB_ERR_TRANSIENT);
    cr_assert_eq(db_classify_sqlstate("53300"), DB_ERR_TRANSIENT);
    cr_assert_eq(db_classify_sqlstate("40001"), DB_ERR_RETRY_TX);
    cr_assert_eq(db_classify_sqlstate("40P01"), DB_ERR_RETRY_TX);
    cr_assert_eq(db_classify_sqlstate("57014"), DB_ERR_STATEMENT_TIMEOUT);
    cr_assert_eq(db_classify_sqlstate("28P01"), DB_ERR_CONFIG);
    cr_assert_eq(db_classify_sqlstate("3D000"), DB_ERR_CONFIG);
    cr_assert_eq(db_classify_sqlstate("42601"), DB_ERR_QUERY);
    cr_assert_eq(db_classify_sqlstate("23505"), DB_ERR_QUERY);
    cr_assert_eq(db_classify_sqlstate(""), DB_ERR_TRANSIENT);
    cr_assert_eq(db_classify_sqlstate(NULL), DB_ERR_TRANSIENT);
}

Test(error, transient_kinds_are_the_retryable_ones)
{
    db_error e;
    db_error_set(&e, DB_ERR_POOL_TIMEOUT, NULL, "no connection within %.1f s", 0.5);
    cr_assert(db_error_is_transient(&e));
    cr_assert_str_eq(e.message, "no connection within 0.5 s");
    cr_assert_str_eq(e.sqlstate, "");
    db_error_set(&e, DB_ERR_CONFIG, "28P01", "bad password");
    cr_assert_not(db_error_is_transient(&e));
    cr_assert_str_eq(e.sqlstate, "28P01");
    db_error_set(&e, DB_ERR_UNKNOWN_OUTCOME, NULL, "x");
    cr_assert_not(db_error_is_transient(&e));
    cr_assert_str_eq(db_errkind_name(DB_ERR_POOL_TIMEOUT), "pool_timeout");
    cr_assert_str_eq(db_errkind_name(DB_ERR_TRANSIENT), "transient");
}

Test(error, lost_connection_without_a_result_is_transient)
{
    db_error e;
    db_error_from_result(&e, NULL, NULL);
    cr_assert_eq(e.kind, DB_ERR_TRANSIENT);
    cr_assert_str_eq(e.sqlstate, "");
    cr_assert(e.message[0]);
    cr_assert(e.hint[0]);
}

Test(error, unparseable_connection_string_is_reported_by_libpq)
{
    PGconn *c = PQconnectdb("host=x bogus");
    db_error e;
    db_error_from_connect(&e, c);
    cr_assert(e.message[0]);
    cr_assert_null(strchr(e.message, '\n'), "one line: %s", e.message);
    PQfinish(c);
}

Test(error, sqlstates_of_a_connection_the_server_is_closing)
{
    static const char *const lost[] = {"08000", "08003", "08006", "08P01", "57P01", "57P02"};
    for (size_t i = 0; i < sizeof lost / sizeof lost[0]; i++)
        cr_expect(db_sqlstate_conn_lost(lost[i]), "%s", lost[i]);
    /* 57P03 (starting up) is a connect failure, not a connection closing under a statement */
    static const char *const not_lost[] = {"57P03", "57014", "40001", "23505", "", "5"};
    for (size_t i = 0; i < sizeof not_lost / sizeof not_lost[0]; i++)
        cr_expect(!db_sqlstate_conn_lost(not_lost[i]), "%s", not_lost[i]);
    cr_expect(!db_sqlstate_conn_lost(NULL));
}
