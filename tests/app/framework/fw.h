/* fw: what the framework suites share: a database with the project's migrations (the framework's
 * own table, idempotency_keys) plus items.sql, and the framework test server (framework-api: the
 * framework with routes.c of this folder) started on it. */
#ifndef TESTS_APP_FRAMEWORK_FW_H
#define TESTS_APP_FRAMEWORK_FW_H

#include "tests/app/apiclient.h"

/* Migrates this suite's database and creates the items tables (idempotent). */
void fw_prepare(void);

/* Runs items.sql on the database at `url`. */
void fw_create_items(const char *url);

/* fw_prepare, then starts framework-api with
 * `extra_env` (through pgbouncer in the _pooler run). */
void fw_serve(api_server *srv, const char *extra_env);

/* The single value of `sql` on this suite's database, as an integer. */
long fw_count(const char *sql);

#endif
