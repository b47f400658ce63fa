/* migrate/split: the statement splitter that no-transaction migrations depend on. Every way a ';'
 * can hide inside a statement is covered, plus line numbers and unterminated input. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "migrate/split.h"
#include <pg_query.h>

static mig_stmts split_ok(const char *sql)
{
    mig_stmts st;
    char err[256] = "";
    int rc = mig_split(sql, 1, &st, err, sizeof err);
    cr_assert_eq(rc, 0, "split failed: %s", err);
    return st;
}

Test(split, plain_statements_are_trimmed_and_numbered)
{
    mig_stmts st = split_ok("CREATE TABLE a (x int);\n\n  CREATE TABLE b (y int) ;\nSELECT 1");
    cr_assert_eq(st.count, 3);
    cr_assert_str_eq(st.items[0].sql, "CREATE TABLE a (x int)");
    cr_assert_str_eq(st.items[1].sql, "CREATE TABLE b (y int)");
    cr_assert_str_eq(st.items[2].sql, "SELECT 1");
    cr_assert_eq(st.items[0].line, 1);
    cr_assert_eq(st.items[1].line, 3);
    cr_assert_eq(st.items[2].line, 4);
    mig_stmts_free(&st);
}

Test(split, first_line_offsets_line_numbers)
{
    mig_stmts st;
    char err[64];
    cr_assert_eq(mig_split("\nSELECT 1;\nSELECT 2;", 10, &st, err, sizeof err), 0);
    cr_assert_eq(st.count, 2);
    cr_assert_eq(st.items[0].line, 11);
    cr_assert_eq(st.items[1].line, 12);
    mig_stmts_free(&st);
}

Test(split, semicolons_in_single_quotes_and_doubled_quotes)
{
    mig_stmts st = split_ok("INSERT INTO t VALUES ('a;b', 'it''s; fine');SELECT ';'");
    cr_assert_eq(st.count, 2);
    cr_assert_str_eq(st.items[0].sql, "INSERT INTO t VALUES ('a;b', 'it''s; fine')");
    cr_assert_str_eq(st.items[1].sql, "SELECT ';'");
    mig_stmts_free(&st);
}

Test(split, escape_strings_honour_backslashes)
{
    mig_stmts st = split_ok("SELECT E'a\\';b';SELECT e'\\\\';SELECT 2");
    cr_assert_eq(st.count, 3);
    cr_assert_str_eq(st.items[0].sql, "SELECT E'a\\';b'");
    cr_assert_str_eq(st.items[1].sql, "SELECT e'\\\\'");
    mig_stmts_free(&st);
}

Test(split, standard_strings_treat_backslash_as_a_character)
{
    /* with standard_conforming_strings (the default) 'a\' is a complete string */
    mig_stmts st = split_ok("SELECT 'a\\';SELECT 2");
    cr_assert_eq(st.count, 2);
    cr_assert_str_eq(st.items[0].sql, "SELECT 'a\\'");
    mig_stmts_free(&st);
}

Test(split, quoted_identifiers)
{
    mig_stmts st = split_ok("CREATE TABLE \"we;ird\"\"name\" (x int);SELECT 1");
    cr_assert_eq(st.count, 2);
    cr_assert_str_eq(st.items[0].sql, "CREATE TABLE \"we;ird\"\"name\" (x int)");
    mig_stmts_free(&st);
}

Test(split, dollar_quotes_plain_and_tagged)
{
    const char *fn = "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\n"
                     "BEGIN\n  PERFORM 1; RETURN 2;\nEND;\n$$";
    const char *tagged = "DO $body$ BEGIN RAISE NOTICE '$$;'; END $body$";
    char sql[512];
    snprintf(sql, sizeof sql, "%s;\n%s;\nSELECT 3;", fn, tagged);
    mig_stmts st = split_ok(sql);
    cr_assert_eq(st.count, 3);
    cr_assert_str_eq(st.items[0].sql, fn);
    cr_assert_str_eq(st.items[1].sql, tagged);
    cr_assert_eq(st.items[1].line, 6);
    cr_assert_eq(st.items[2].line, 7);
    mig_stmts_free(&st);
}

Test(split, nested_different_dollar_tags)
{
    const char *s = "SELECT $a$ $b$ ; $b$ ; $a$";
    mig_stmts st = split_ok("SELECT $a$ $b$ ; $b$ ; $a$;SELECT 1");
    cr_assert_eq(st.count, 2);
    cr_assert_str_eq(st.items[0].sql, s);
    mig_stmts_free(&st);
}

Test(split, positional_parameters_are_not_dollar_quotes)
{
    mig_stmts st = split_ok("PREPARE p AS SELECT $1 + $2;SELECT 1");
    cr_assert_eq(st.count, 2);
    cr_assert_str_eq(st.items[0].sql, "PREPARE p AS SELECT $1 + $2");
    mig_stmts_free(&st);
}

Test(split, dollar_inside_identifier_is_not_a_quote)
{
    mig_stmts st = split_ok("SELECT a$b$ FROM t;SELECT 1");
    cr_assert_eq(st.count, 2);
    cr_assert_str_eq(st.items[0].sql, "SELECT a$b$ FROM t");
    mig_stmts_free(&st);
}

Test(split, line_comments_hide_semicolons_and_quotes)
{
    mig_stmts st = split_ok("-- leading; comment 'x\nSELECT 1; -- trailing ; it's\nSELECT 2");
    cr_assert_eq(st.count, 2);
    cr_assert_str_eq(st.items[0].sql, "SELECT 1");
    cr_assert_eq(st.items[0].line, 2);
    cr_assert_eq(st.items[1].line, 3);
    mig_stmts_free(&st);
}

Test(split, nested_block_comments)
{
    mig_stmts st = split_ok("/* a; /* nested; */ still; 'x */ SELECT 1;SELECT 2");
    cr_assert_eq(st.count, 2);
    cr_assert_str_eq(st.items[0].sql, "SELECT 1");
    mig_stmts_free(&st);
}

Test(split, comment_only_and_empty_statements_are_dropped)
{
    mig_stmts st = split_ok(";;\n-- nothing\n/* nothing */;\n  ;SELECT 1;;");
    cr_assert_eq(st.count, 1);
    cr_assert_str_eq(st.items[0].sql, "SELECT 1");
    cr_assert_eq(st.items[0].line, 4);
    mig_stmts_free(&st);
    st = split_ok("");
    cr_assert_eq(st.count, 0);
    mig_stmts_free(&st);
}

Test(split, two_create_index_concurrently)
{
    mig_stmts st = split_ok("CREATE INDEX CONCURRENTLY a_idx ON t (a);\n"
                            "CREATE INDEX CONCURRENTLY b_idx ON t (lower(b)) WHERE b <> ';';\n");
    cr_assert_eq(st.count, 2);
    cr_assert_str_eq(st.items[1].sql,
                     "CREATE INDEX CONCURRENTLY b_idx ON t (lower(b)) WHERE b <> ';'");
    mig_stmts_free(&st);
}

Test(split, begin_atomic_function_bodies)
{
    const char *fn = "CREATE OR REPLACE FUNCTION f(x int) RETURNS int LANGUAGE sql\n"
                     "BEGIN ATOMIC\n  SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;\n  SELECT x;\nEND";
    char sql[512];
    snprintf(sql, sizeof sql, "%s;\nSELECT 2;", fn);
    mig_stmts st = split_ok(sql);
    cr_assert_eq(st.count, 2);
    cr_assert_str_eq(st.items[0].sql, fn);
    mig_stmts_free(&st);
}

Test(split, procedure_begin_atomic_and_transaction_begin)
{
    mig_stmts st =
        split_ok("CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END;"
                 "BEGIN;SELECT 1;COMMIT;");
    cr_assert_eq(st.count, 4);
    cr_assert_str_eq(st.items[1].sql, "BEGIN");
    cr_assert_str_eq(st.items[3].sql, "COMMIT");
    mig_stmts_free(&st);
}

Test(split, parentheses_keep_semicolons)
{
    /* ';' inside parentheses is a syntax error for the server, not a statement boundary */
    mig_stmts st = split_ok("SELECT (1;2);SELECT 3");
    cr_assert_eq(st.count, 2);
    mig_stmts_free(&st);
}

Test(split, unterminated_input_is_an_error_naming_the_line)
{
    const char *bad[] = {"SELECT 1;\nSELECT 'open", "SELECT 1;\n\nSELECT $x$ open $y$",
                         "SELECT \"open", "\n/* open /* nested */", "SELECT E'\\'"};
    const char *lines[] = {"line 2", "line 3", "line 1", "line 2", "line 1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        mig_stmts st;
        char err[256] = "";
        cr_assert_eq(mig_split(bad[i], 1, &st, err, sizeof err), -1, "accepted: %s", bad[i]);
        cr_assert(strstr(err, "not closed"), "%s", err);
        cr_assert(strstr(err, lines[i]), "%s: %s", bad[i], err);
        mig_stmts_free(&st);
    }
}

Test(split, utf8_and_unicode_escape_strings)
{
    mig_stmts st = split_ok("INSERT INTO t VALUES ('héllo; wörld');SELECT U&'d\\0061t;a'");
    cr_assert_eq(st.count, 2);
    cr_assert_str_eq(st.items[0].sql, "INSERT INTO t VALUES ('héllo; wörld')");
    mig_stmts_free(&st);
}

Test(split, dollar_tags_with_digits_and_underscores)
{
    mig_stmts st = split_ok("SELECT $_1$;$_1$;SELECT $a_b2$ x $a_b$ ; $a_b2$;SELECT 3");
    cr_assert_eq(st.count, 3);
    cr_assert_str_eq(st.items[0].sql, "SELECT $_1$;$_1$");
    cr_assert_str_eq(st.items[1].sql, "SELECT $a_b2$ x $a_b$ ; $a_b2$");
    mig_stmts_free(&st);
}

Test(split, crlf_and_comment_without_final_newline)
{
    mig_stmts st = split_ok("SELECT 1;\r\nSELECT 2 -- done; really");
    cr_assert_eq(st.count, 2);
    cr_assert_str_eq(st.items[1].sql, "SELECT 2 -- done; really");
    cr_assert_eq(st.items[1].line, 2);
    mig_stmts_free(&st);
}

Test(split, case_and_end_outside_function_bodies_do_not_nest)
{
    /* CASE ... END in ordinary statements must not swallow the following statements */
    mig_stmts st = split_ok("SELECT CASE WHEN true THEN 1 END;\nBEGIN;\nEND;\nSELECT 4;");
    cr_assert_eq(st.count, 4);
    cr_assert_str_eq(st.items[1].sql, "BEGIN");
    cr_assert_str_eq(st.items[2].sql, "END");
    mig_stmts_free(&st);
}

Test(split, plpgsql_create_function_with_single_quoted_body)
{
    const char *fn = "CREATE FUNCTION g() RETURNS void LANGUAGE plpgsql AS 'begin perform 1; end'";
    char sql[256];
    snprintf(sql, sizeof sql, "%s;SELECT 2;", fn);
    mig_stmts st = split_ok(sql);
    cr_assert_eq(st.count, 2);
    cr_assert_str_eq(st.items[0].sql, fn);
    mig_stmts_free(&st);
}

/* libpg_query's parser-based splitter (PostgreSQL 15's grammar) agrees with split.c on everything
 * that parses. split.c stays the splitter because libpg_query's scanner splitter cuts BEGIN ATOMIC
 * bodies apart, and its parser splitter rejects a whole file for one statement it cannot parse
 * (newer syntax on a PostgreSQL 16/17 server, or a typo the server should report with its line). */
Test(split, agrees_with_libpg_query_on_valid_sql)
{
    const char *inputs[] = {
        "CREATE TABLE a (x int);\n\n  CREATE TABLE b (y int) ;\nSELECT 1",
        "INSERT INTO t VALUES ('a;b', 'it''s; fine');SELECT ';'",
        "SELECT E'a\\';b';SELECT e'\\\\';SELECT 2",
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n  PERFORM 1; RETURN "
        "2;\nEND;\n$$;\nDO $body$ BEGIN RAISE NOTICE '$$;'; END $body$;\nSELECT 3;",
        "SELECT $a$ $b$ ; $b$ ; $a$;SELECT 1",
        "/* a; /* nested; */ still; 'x */ SELECT 1;SELECT 2",
        "CREATE OR REPLACE FUNCTION f(x int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT "
        "CASE WHEN x > 0 THEN 1 ELSE 0 END;\n  SELECT x;\nEND;\nSELECT 2;",
        "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END;"
        "BEGIN;SELECT 1;COMMIT;",
        "CREATE INDEX CONCURRENTLY a_idx ON t (a);\nCREATE INDEX CONCURRENTLY b_idx ON t "
        "(lower(b)) WHERE b <> ';';\n",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++) {
        mig_stmts st = split_ok(inputs[i]);
        PgQuerySplitResult r = pg_query_split_with_parser(inputs[i]);
        cr_assert_null(r.error, "%s", inputs[i]);
        cr_assert_eq((size_t)r.n_stmts, st.count, "%s", inputs[i]);
        for (int k = 0; k < r.n_stmts; k++) {
            /* libpg_query keeps leading comments and blanks; split.c starts at the first token */
            const char *theirs = inputs[i] + r.stmts[k]->stmt_location;
            size_t len = (size_t)r.stmts[k]->stmt_len;
            const char *hit = strstr(theirs, st.items[k].sql);
            cr_assert(hit && (size_t)(hit - theirs) + strlen(st.items[k].sql) <= len,
                      "statement %d of %s: [%s] vs [%.*s]", k, inputs[i], st.items[k].sql, (int)len,
                      theirs);
        }
        pg_query_free_split_result(r);
        mig_stmts_free(&st);
    }
}

Test(split, statements_carry_their_column_and_comments_their_statement)
{
    mig_stmts st = split_ok("-- head\nSELECT 1; -- after one\n  SELECT\n -- inside two\n 2;\n"
                            "-- before three\n\tSELECT 3;\n-- tail");
    cr_assert_eq(st.count, 3);
    cr_assert_eq(st.items[0].col, 1);
    cr_assert_eq(st.items[1].line, 3);
    cr_assert_eq(st.items[1].col, 3);
    cr_assert_eq(st.items[2].col, 2);
    cr_assert_eq(st.ncomments, 5);
    static const struct {
        const char *text;
        int line, col;
        size_t stmt;
    } want[] = {{"-- head", 1, 1, 0},
                {"-- after one", 2, 11, 0},
                {"-- inside two", 4, 2, 1},
                {"-- before three", 6, 1, 2},
                {"-- tail", 8, 1, 3}};
    for (size_t i = 0; i < 5; i++) {
        cr_expect_str_eq(st.comments[i].text, want[i].text);
        cr_expect_eq(st.comments[i].line, want[i].line, "%s", want[i].text);
        cr_expect_eq(st.comments[i].col, want[i].col, "%s", want[i].text);
        cr_expect_eq(st.comments[i].stmt, want[i].stmt, "%s", want[i].text);
    }
    mig_stmts_free(&st);
}
