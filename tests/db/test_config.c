/* db_config_from_env: defaults for Neon, and one-line errors naming the variable. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "db/engine.h"

static const char *const vars[] = {"DATABASE_URL",
                                   "DATABASE_URL_RW",
                                   "DATABASE_URL_RO",
                                   "DB_APPLICATION_NAME",
                                   "DB_POOL_MODE",
                                   "DB_POOL_MAX",
                                   "DB_POOL_MIN_IDLE",
                                   "DB_POOL_IDLE_TIMEOUT",
                                   "DB_POOL_MAX_LIFETIME",
                                   "DB_ACQUIRE_TIMEOUT",
                                   "DB_CONNECT_TIMEOUT",
                                   "DB_STATEMENT_TIMEOUT",
                                   "DB_PREPING_AFTER",
                                   "DB_PIPELINE",
                                   "DB_PIPELINE_CONNS",
                                   "DB_PIPELINE_WRITES",
                                   "DB_PIPELINE_WRITE_CONNS",
                                   "DB_PREPARE",
                                   NULL};

static void clean_env(void)
{
    for (int i = 0; vars[i]; i++)
        unsetenv(vars[i]);
    setenv("DATABASE_URL", "postgresql://u:secret@127.0.0.1:5432/todo", 1);
}

TestSuite(config, .init = clean_env);

Test(config, defaults_are_the_neon_ones)
{
    db_config c;
    char err[512];
    cr_assert_eq(db_config_from_env(&c, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(c.url, "postgresql://u:secret@127.0.0.1:5432/todo");
    cr_assert_null(c.url_rw);
    cr_assert_null(c.url_ro);
    cr_assert_str_eq(c.application_name, "neon-todo");
    cr_assert_eq(c.mode, DB_POOL_MODE_POOL);
    cr_assert_eq(c.pool_max, 10);
    cr_assert_eq(c.pool_min_idle, 0);
    cr_assert_lt(c.idle_timeout, 300, "idle connections close before Neon suspends");
    cr_assert_gt(c.max_lifetime, c.idle_timeout);
    cr_assert_eq(c.connect_timeout, 10);
    cr_assert_gt(c.acquire_timeout, 0);
    cr_assert_gt(c.preping_after, 0);
    cr_assert(c.pipeline, "read-only statements of coroutines are pipelined by default");
    cr_assert(c.pipeline_writes, "single write statements too, with group commit");
    cr_assert_eq(c.pipeline_conns, 2);
    cr_assert_eq(c.pipeline_write_conns, 4);
    cr_assert_eq(c.prepare, DB_PREPARE_AUTO);
}

Test(config, prepared_statements_auto_on_off)
{
    db_config c;
    char err[512];
    static const struct {
        const char *value;
        db_prepare_mode want;
    } cases[] = {{"auto", DB_PREPARE_AUTO}, {"on", DB_PREPARE_ON}, {"OFF", DB_PREPARE_OFF}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv("DB_PREPARE", cases[i].value, 1);
        cr_assert_eq(db_config_from_env(&c, err, sizeof err), 0, "%s", err);
        cr_assert_eq(c.prepare, cases[i].want, "DB_PREPARE=%s", cases[i].value);
    }
    setenv("DB_PREPARE", "yes", 1);
    cr_assert_eq(db_config_from_env(&c, err, sizeof err), -1);
    cr_assert(strstr(err, "DB_PREPARE must be one of auto, on, off"), "%s", err);
}

Test(config, pipelined_writes_switch_and_connections)
{
    db_config c;
    char err[512];
    setenv("DB_PIPELINE_WRITES", "false", 1);
    setenv("DB_PIPELINE_WRITE_CONNS", "8", 1);
    cr_assert_eq(db_config_from_env(&c, err, sizeof err), 0, "%s", err);
    cr_assert_not(c.pipeline_writes);
    cr_assert_eq(c.pipeline_write_conns, 8);
    setenv("DB_PIPELINE_WRITE_CONNS", "9", 1);
    cr_assert_eq(db_config_from_env(&c, err, sizeof err), -1);
    cr_assert(strstr(err, "DB_PIPELINE_WRITE_CONNS"), "%s", err);
    setenv("DB_PIPELINE_WRITE_CONNS", "4", 1);
    setenv("DB_PIPELINE_WRITES", "maybe", 1);
    cr_assert_eq(db_config_from_env(&c, err, sizeof err), -1);
    cr_assert_str_eq(err, "DB_PIPELINE_WRITES must be true or false, got \"maybe\"");
}

Test(config, pipeline_switch)
{
    db_config c;
    char err[512];
    static const char *const off[] = {"false", "0", "no", "OFF"};
    for (int i = 0; i < 4; i++) {
        setenv("DB_PIPELINE", off[i], 1);
        cr_assert_eq(db_config_from_env(&c, err, sizeof err), 0, "%s", err);
        cr_assert_not(c.pipeline, "DB_PIPELINE=%s", off[i]);
    }
    static const char *const on[] = {"true", "1", "yes", "On"};
    for (int i = 0; i < 4; i++) {
        setenv("DB_PIPELINE", on[i], 1);
        cr_assert_eq(db_config_from_env(&c, err, sizeof err), 0, "%s", err);
        cr_assert(c.pipeline, "DB_PIPELINE=%s", on[i]);
    }
    setenv("DB_PIPELINE", "maybe", 1);
    cr_assert_eq(db_config_from_env(&c, err, sizeof err), -1);
    cr_assert_str_eq(err, "DB_PIPELINE must be true or false, got \"maybe\"");
    cr_assert_null(strchr(err, '\n'));
}

Test(config, fractions_modes_and_overrides)
{
    setenv("DB_ACQUIRE_TIMEOUT", "0.5", 1);
    setenv("DB_POOL_MODE", "per_request", 1);
    setenv("DB_POOL_MAX", "3", 1);
    setenv("DB_STATEMENT_TIMEOUT", "0", 1);
    setenv("DB_APPLICATION_NAME", "my-app", 1);
    setenv("DATABASE_URL_RO", "postgresql://u:p@replica/todo", 1);
    db_config c;
    char err[512];
    cr_assert_eq(db_config_from_env(&c, err, sizeof err), 0, "%s", err);
    cr_assert_eq(c.acquire_timeout, 0.5);
    cr_assert_eq(c.mode, DB_POOL_MODE_PER_REQUEST);
    cr_assert_eq(c.pool_max, 3);
    cr_assert_eq(c.statement_timeout, 0);
    cr_assert_str_eq(c.application_name, "my-app");
    cr_assert_str_eq(c.url_ro, "postgresql://u:p@replica/todo");
}

Test(config, bad_values_give_one_line_naming_the_variable)
{
    db_config c;
    char err[512];
    setenv("DB_POOL_MAX", "ten", 1);
    cr_assert_eq(db_config_from_env(&c, err, sizeof err), -1);
    cr_assert_str_eq(err, "DB_POOL_MAX must be an integer from 1 to 1000, got \"ten\"");
    unsetenv("DB_POOL_MAX");

    setenv("DB_ACQUIRE_TIMEOUT", "soon", 1);
    cr_assert_eq(db_config_from_env(&c, err, sizeof err), -1);
    cr_assert(strstr(err, "DB_ACQUIRE_TIMEOUT"), "%s", err);
    unsetenv("DB_ACQUIRE_TIMEOUT");

    setenv("DB_POOL_MODE", "sometimes", 1);
    cr_assert_eq(db_config_from_env(&c, err, sizeof err), -1);
    cr_assert(strstr(err, "DB_POOL_MODE must be one of pool, per_request"), "%s", err);
    unsetenv("DB_POOL_MODE");

    setenv("DB_POOL_MAX", "2", 1);
    setenv("DB_POOL_MIN_IDLE", "5", 1);
    cr_assert_eq(db_config_from_env(&c, err, sizeof err), -1);
    cr_assert_str_eq(err, "DB_POOL_MIN_IDLE (5) must not exceed DB_POOL_MAX (2)");
    cr_assert_null(strchr(err, '\n'));
}

Test(config, bad_urls_name_their_variable_and_hide_the_password)
{
    db_config c;
    char err[512];
    unsetenv("DATABASE_URL");
    cr_assert_eq(db_config_from_env(&c, err, sizeof err), -1);
    cr_assert(!strncmp(err, "DATABASE_URL is not set", 23), "%s", err);

    setenv("DATABASE_URL", "postgresql://u:secret@h/db?nosuchparam=1", 1);
    cr_assert_eq(db_config_from_env(&c, err, sizeof err), -1);
    cr_assert(strstr(err, "DATABASE_URL is not a valid connection string"), "%s", err);
    cr_assert(strstr(err, "nosuchparam"), "%s", err);
    cr_assert_null(strstr(err, "secret"));

    setenv("DATABASE_URL", "postgresql://u:p@h/db", 1);
    setenv("DATABASE_URL_RO", "host=x bogus", 1);
    cr_assert_eq(db_config_from_env(&c, err, sizeof err), -1);
    cr_assert(!strncmp(err, "DATABASE_URL_RO is not a valid", 30), "%s", err);
}

Test(config, engine_refuses_an_invalid_configuration)
{
    db_config c = {.url = "host=x bogus", .pool_max = 1, .acquire_timeout = 1};
    db_error err;
    cr_assert_null(db_engine_open(&c, &err));
    cr_assert_eq(err.kind, DB_ERR_CONFIG);
    c.url = "postgresql://u:p@h/db";
    c.pool_max = 0;
    cr_assert_null(db_engine_open(&c, &err));
    cr_assert_eq(err.kind, DB_ERR_CONFIG);
}
