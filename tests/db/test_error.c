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
