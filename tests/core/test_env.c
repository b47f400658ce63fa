/* env: settings parsing and the .env loader. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/env.h"

static char err[ENV_ERR_LEN];

Test(env, int_default_when_unset_or_empty)
{
    long v = 0;
    unsetenv("T_INT");
    cr_assert_eq(env_int("T_INT", 10, 1, 1000, &v, err), 0);
    cr_assert_eq(v, 10);
    setenv("T_INT", "", 1);
    cr_assert_eq(env_int("T_INT", 7, 1, 1000, &v, err), 0);
    cr_assert_eq(v, 7);
}

Test(env, int_rejects_words_and_ranges_with_one_line)
{
    long v;
    setenv("DB_POOL_MAX", "ten", 1);
    cr_assert_eq(env_int("DB_POOL_MAX", 10, 1, 1000, &v, err), -1);
    cr_assert_str_eq(err, "DB_POOL_MAX must be an integer from 1 to 1000, got \"ten\"");
    setenv("DB_POOL_MAX", "1001", 1);
    cr_assert_eq(env_int("DB_POOL_MAX", 10, 1, 1000, &v, err), -1);
    setenv("DB_POOL_MAX", "5x", 1);
    cr_assert_eq(env_int("DB_POOL_MAX", 10, 1, 1000, &v, err), -1);
    setenv("DB_POOL_MAX", "25", 1);
    cr_assert_eq(env_int("DB_POOL_MAX", 10, 1, 1000, &v, err), 0);
    cr_assert_eq(v, 25);
    cr_assert_null(strchr(err, '\n'));
}

Test(env, seconds_accept_fractions_reject_junk)
{
    double d;
    setenv("T_SEC", "0.5", 1);
    cr_assert_eq(env_seconds("T_SEC", 1, 0, 60, &d, err), 0);
    cr_assert_float_eq(d, 0.5, 1e-9);
    const char *bad[] = {"abc", "inf", "nan", "0x10", "-1", "61", "1s"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        setenv("T_SEC", bad[i], 1);
        cr_assert_eq(env_seconds("T_SEC", 1, 0, 60, &d, err), -1, "accepted %s", bad[i]);
        cr_assert(strstr(err, "T_SEC must be a number of seconds"), "%s", err);
    }
}

Test(env, bool_and_choice)
{
    bool b;
    setenv("T_B", "Yes", 1);
    cr_assert_eq(env_bool("T_B", false, &b, err), 0);
    cr_assert(b);
    setenv("T_B", "maybe", 1);
    cr_assert_eq(env_bool("T_B", false, &b, err), -1);
    static const char *const modes[] = {"pool", "per_request", NULL};
    int m;
    setenv("T_MODE", "PER_REQUEST", 1);
    cr_assert_eq(env_choice("T_MODE", "pool", modes, &m, err), 0);
    cr_assert_eq(m, 1);
    setenv("T_MODE", "lambda", 1);
    cr_assert_eq(env_choice("T_MODE", "pool", modes, &m, err), -1);
    cr_assert_str_eq(err, "T_MODE must be one of pool, per_request, got \"lambda\"");
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
}

Test(env, dotenv_loads_without_overriding_real_environment)
{
    char path[] = "/tmp/envtestXXXXXX";
    int fd = mkstemp(path);
    close(fd);
    write_file(path, "# comment\n"
                     "export T_A=plain value # trailing comment\n"
                     "T_B='single # not a comment'\n"
                     "T_C=\"line\\nnext \\\"q\\\"\"\n"
                     "T_REAL=from-file\n"
                     "\n"
                     "T_URL=postgresql://u:p@h/db?sslmode=require#frag\n");
    setenv("T_REAL", "from-env", 1);
    cr_assert_eq(env_load_file(path, err), 1, "%s", err);
    cr_assert_str_eq(getenv("T_A"), "plain value");
    cr_assert_str_eq(getenv("T_B"), "single # not a comment");
    cr_assert_str_eq(getenv("T_C"), "line\nnext \"q\"");
    cr_assert_str_eq(getenv("T_REAL"), "from-env");
    cr_assert_str_eq(getenv("T_URL"), "postgresql://u:p@h/db?sslmode=require#frag");
    unlink(path);
}

Test(env, dotenv_missing_file_is_fine_malformed_names_line)
{
    cr_assert_eq(env_load_file("/nonexistent/.env", err), 0);
    char path[] = "/tmp/envtestXXXXXX";
    int fd = mkstemp(path);
    close(fd);
    write_file(path, "GOOD=1\nthis line is wrong\n");
    cr_assert_eq(env_load_file(path, err), -1);
    cr_assert(strstr(err, "line 2: expected KEY=VALUE"), "%s", err);
    write_file(path, "Q='unterminated\n");
    cr_assert_eq(env_load_file(path, err), -1);
    unlink(path);
}
