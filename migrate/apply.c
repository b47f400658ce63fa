/* apply: see apply.h. */
#include "migrate/apply.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <pg_query.h>

#include "migrate/history.h"
#include "migrate/split.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Appends formatted text to err (which always stays NUL-terminated). */
static void add(char *err, size_t errlen, const char *fmt, ...)
{
    size_t n = strlen(err);
    if (n + 1 >= errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - n, fmt, ap);
    va_end(ap);
}

static int simple(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    return ok ? 0 : -1;
}

static int set_lock_timeout(PGconn *c, const char *value, bool local, char *err, size_t errlen,
                            const char *label)
{
    const char *p[] = {value, local ? "t" : "f"};
    PGresult *r = PQexecParams(c, "SELECT set_config('lock_timeout', $1, $2::boolean)", 2, NULL, p,
                               NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *m = PQresultErrorMessage(r);
        snprintf(err, errlen, "%s: invalid lock timeout \"%s\": %.*s", label, value,
                 (int)strcspn(m, "\n"), m);
        PQclear(r);
        return -1;
    }
    PQclear(r);
    return 0;
}

/* The line within the statement of PostgreSQL's error position (a 1-based character count). */
static int error_line(const PGresult *r, const mig_stmt *s)
{
    const char *pos = PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION);
    int line = s->line;
    if (!pos)
        return line;
    long chars = atol(pos);
    for (const unsigned char *p = (const unsigned char *)s->sql; *p && chars > 1; p++) {
        if ((*p & 0xC0) != 0x80)
            chars--;
        if (*p == '\n')
            line++;
    }
    return line;
}

static void describe_failure(const mig_step *st, const mig_stmt *s, size_t index, const PGresult *r,
                             PGconn *c, char *err, size_t errlen)
{
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *detail = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
    const char *hint = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_HINT) : NULL;
    if (!msg) {
        const char *m = PQerrorMessage(c);
        add(err, errlen, "%s:%d: statement %zu failed: %.*s", st->label, error_line(r, s),
            index + 1, (int)strcspn(m, "\n"), m);
    } else {
        add(err, errlen, "%s:%d: statement %zu failed: %s (SQLSTATE %s)", st->label,
            error_line(r, s), index + 1, msg, state ? state : "?");
    }
    if (detail)
        add(err, errlen, "\ndetail: %s", detail);
    if (hint)
        add(err, errlen, "\nhint: %s", hint);
    else if (state && !strcmp(state, "25001"))
        add(err, errlen,
            "\nhint: this statement cannot run inside a transaction: add a line "
            "\"-- migrate:no-transaction\" to the file");
    else if (state && !strcmp(state, "55P03"))
        add(err, errlen,
            "\nhint: a lock was not granted within lock_timeout, so the migration "
            "stopped instead of stalling traffic queued behind it; retry when the "
            "table is quieter, or raise it (-- migrate:lock-timeout, --pg-lock-timeout)");
}

/* A BEGIN/COMMIT/ROLLBACK inside a transactional file would end migrate's transaction early and
 * commit half a migration without its history row. Returns the offending statement or NULL. */
static const mig_stmt *transaction_control(const mig_stmts *stmts)
{
    static const char *const words[] = {"begin", "commit",    "rollback", "end",    "abort",
                                        "start", "savepoint", "release",  "prepare"};
    for (size_t i = 0; i < stmts->count; i++) {
        const char *sql = stmts->items[i].sql;
        size_t n = strspn(sql, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
        for (size_t w = 0; w < sizeof words / sizeof *words; w++) {
            if (n != strlen(words[w]) || strncasecmp(sql, words[w], n))
                continue;
            /* START TRANSACTION only; PREPARE TRANSACTION only (PREPARE name AS ... is fine) */
            if ((w == 5 || w == 8) &&
                strncasecmp(sql + n + strspn(sql + n, " \t\r\n"), "transaction", 11))
                continue;
            return &stmts->items[i];
        }
    }
    return NULL;
}

/* Sends the statements one at a time, stopping at the first failure, which is described in err
 * (file, line, PostgreSQL's message); its index goes to *failed when failed is not NULL.
 * Returns 0 or -1. */
static int drop_invalid_before(PGconn *c, const mig_step *st, const mig_stmt *s, char *err,
                               size_t errlen);

static int run_statements(PGconn *c, const mig_step *st, const mig_stmts *stmts, size_t *failed,
                          char *err, size_t errlen)
{
    for (size_t i = 0; i < stmts->count; i++) {
        if (st->no_transaction && st->file &&
            drop_invalid_before(c, st, &stmts->items[i], err, errlen) < 0) {
            if (failed)
                *failed = i;
            return -1;
        }
        PGresult *r = PQexec(c, stmts->items[i].sql);
        ExecStatusType s = PQresultStatus(r);
        bool ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || s == PGRES_EMPTY_QUERY;
        if (!ok) {
            describe_failure(st, &stmts->items[i], i, r, c, err, errlen);
            if (failed)
                *failed = i;
        }
        PQclear(r);
        if (!ok)
            return -1;
    }
    return 0;
}

static int run_transactional(PGconn *c, const mig_step *st, const mig_stmts *stmts,
                             const char *lock_timeout, char *err, size_t errlen)
{
    double t0 = now_ms();
    const mig_stmt *tc = transaction_control(stmts);
    if (tc) {
        snprintf(err, errlen,
                 "%s:%d: \"%.40s\" would end the migration's transaction early; remove it (each "
                 "file already runs in one transaction) or mark the file "
                 "\"-- migrate:no-transaction\"",
                 st->label, tc->line, tc->sql);
        return -1;
    }
    if (simple(c, "BEGIN") < 0) {
        snprintf(err, errlen, "%s: BEGIN failed: %s", st->label, PQerrorMessage(c));
        return -1;
    }
    int rc = set_lock_timeout(c, lock_timeout, true, err, errlen, st->label);
    if (rc == 0 && run_statements(c, st, stmts, NULL, err, errlen) < 0) {
        add(err, errlen, "\nnothing was changed: the transaction was rolled back");
        rc = -1;
    }
    char herr[MIG_ERR_LEN];
    if (rc == 0) {
        rc = st->file ? mig_history_insert(c, st->file, (long)(now_ms() - t0 + 0.5), false, herr)
                      : mig_history_delete(c, st->version, herr);
        if (rc < 0)
            snprintf(err, errlen, "%s: %s", st->label, herr);
    }
    if (rc < 0) {
        simple(c, "ROLLBACK");
        return -1;
    }
    if (simple(c, "COMMIT") < 0) {
        snprintf(err, errlen, "%s: COMMIT failed: %s", st->label, PQerrorMessage(c));
        return -1;
    }
    return 0;
}

static void report_partial(PGconn *c, const mig_stmts *stmts, size_t failed, char *err,
                           size_t errlen)
{
    if (failed == 0)
        add(err, errlen, "\nno statement of this file ran before the failure");
    for (size_t i = 0; i < failed; i++)
        add(err, errlen, "\nstatement %zu (line %d) ran and stays applied", i + 1,
            stmts->items[i].line);
    if (failed + 1 < stmts->count)
        add(err, errlen, "\nstatements %zu to %zu did not run", failed + 2, stmts->count);
    char inv[1024];
    if (mig_invalid_indexes(c, inv, sizeof inv) > 0)
        add(err, errlen,
            "\nINVALID index left behind: %s (a failed CREATE INDEX CONCURRENTLY): the next up "
            "drops and rebuilds the ones this file creates",
            inv);
    add(err, errlen,
        "\nthe migration is not recorded as applied; make its statements idempotent "
        "(IF NOT EXISTS) or undo those that ran, then run up again");
}

/* The index a CREATE INDEX CONCURRENTLY statement builds: its name and its table's schema and name
 * as parsed (schema "" when unqualified). Returns false for any other statement. */
static bool concurrent_index(const char *sql, char *name, char *schema, char *table, size_t len)
{
    PgQueryParseResult p = pg_query_parse(sql);
    json_t *tree = p.error ? NULL : json_loads(p.parse_tree, 0, NULL);
    json_t *ix = json_object_get(
        json_object_get(json_array_get(json_object_get(tree, "stmts"), 0), "stmt"), "IndexStmt");
    json_t *rel = json_object_get(ix, "relation");
    const char *n = json_string_value(json_object_get(ix, "idxname"));
    const char *sc = json_string_value(json_object_get(rel, "schemaname"));
    const char *t = json_string_value(json_object_get(rel, "relname"));
    bool ok = ix && json_is_true(json_object_get(ix, "concurrent")) && n && t;
    if (ok) {
        snprintf(name, len, "%s", n);
        snprintf(schema, len, "%s", sc ? sc : "");
        snprintf(table, len, "%s", t);
    }
    json_decref(tree);
    pg_query_free_parse_result(p);
    return ok;
}

/* The index `name` in the schema of table [schema.]table: 1 valid, 0 INVALID (its qualified name
 * into qual), -1 absent or unknown. */
static int index_state(PGconn *c, const char *name, const char *schema, const char *table,
                       char *qual, size_t qlen)
{
    const char *p[] = {name, schema, table};
    PGresult *r = PQexecParams(
        c,
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(ic.relname), i.indisvalid::text "
        "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = ic.relnamespace WHERE ic.relname = $1 AND "
        "ic.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = to_regclass(CASE WHEN "
        "$2 = '' THEN quote_ident($3) ELSE quote_ident($2) || '.' || quote_ident($3) END))",
        3, NULL, p, NULL, NULL, 0);
    int st = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        snprintf(qual, qlen, "%s", PQgetvalue(r, 0, 0));
        st = !strcmp(PQgetvalue(r, 0, 1), "true");
    }
    PQclear(r);
    return st;
}

/* A failed CREATE INDEX CONCURRENTLY leaves an INVALID index that IF NOT EXISTS would keep while
 * enforcing nothing: before each such statement, an INVALID index of that name is dropped
 * (concurrently) so the statement builds it again. Returns 0, or -1 with err. */
static int drop_invalid_before(PGconn *c, const mig_step *st, const mig_stmt *s, char *err,
                               size_t errlen)
{
    char name[256], schema[256], table[256], qual[600], sql[700];
    if (!concurrent_index(s->sql, name, schema, table, sizeof name) ||
        index_state(c, name, schema, table, qual, sizeof qual) != 0)
        return 0;
    fprintf(stderr,
            "migrate: %s:%d: index %s is INVALID (left by a failed CREATE INDEX "
            "CONCURRENTLY): dropping it to build it again\n",
            st->label, s->line, qual);
    snprintf(sql, sizeof sql, "DROP INDEX CONCURRENTLY IF EXISTS %s", qual);
    if (simple(c, sql) < 0) {
        snprintf(err, errlen, "%s:%d: index %s is INVALID and cannot be dropped: %s", st->label,
                 s->line, qual, PQerrorMessage(c));
        return -1;
    }
    return 0;
}

/* After the file: every index it builds concurrently must be valid, else it is not recorded. */
static int check_built(PGconn *c, const mig_step *st, const mig_stmts *stmts, char *err,
                       size_t errlen)
{
    for (size_t i = 0; i < stmts->count; i++) {
        char name[256], schema[256], table[256], qual[600];
        if (concurrent_index(stmts->items[i].sql, name, schema, table, sizeof name) &&
            index_state(c, name, schema, table, qual, sizeof qual) == 0) {
            snprintf(err, errlen,
                     "%s:%d: index %s is INVALID after the file ran (a failed or interrupted "
                     "CREATE INDEX CONCURRENTLY): the migration is not recorded; run up again to "
                     "drop and rebuild it",
                     st->label, stmts->items[i].line, qual);
            return -1;
        }
    }
    return 0;
}

static int run_autocommit(PGconn *c, const mig_step *st, const mig_stmts *stmts,
                          const char *lock_timeout, char *err, size_t errlen)
{
    double t0 = now_ms();
    if (set_lock_timeout(c, lock_timeout, false, err, errlen, st->label) < 0)
        return -1;
    size_t failed;
    int rc = run_statements(c, st, stmts, &failed, err, errlen);
    if (rc < 0)
        report_partial(c, stmts, failed, err, errlen);
    if (rc == 0 && st->file)
        rc = check_built(c, st, stmts, err, errlen);
    char herr[MIG_ERR_LEN];
    if (rc == 0) {
        rc = st->file ? mig_history_insert(c, st->file, (long)(now_ms() - t0 + 0.5), false, herr)
                      : mig_history_delete(c, st->version, herr);
        if (rc < 0)
            snprintf(err, errlen, "%s: every statement ran but %s", st->label, herr);
    }
    simple(c, "RESET lock_timeout");
    return rc;
}

int mig_apply(PGconn *c, const mig_step *st, const char *default_lock_timeout, long *elapsed_ms,
              char *err, size_t errlen)
{
    err[0] = '\0';
    mig_stmts stmts;
    char serr[256];
    if (mig_split(st->sql, st->first_line, &stmts, serr, sizeof serr) < 0) {
        snprintf(err, errlen, "%s: %s", st->label, serr);
        mig_stmts_free(&stmts);
        return -1;
    }
    const char *lt = st->lock_timeout ? st->lock_timeout : default_lock_timeout;
    double t0 = now_ms();
    /* Each file starts from the session's defaults: a plain SET (search_path, statement_timeout,
     * a role) in an earlier file of the run stays for the session after its COMMIT otherwise.
     * DISCARD ALL would also release the migration's advisory lock, hence its parts one by one;
     * through a transaction-mode pooler they reset whichever backend serves the next file. */
    PGresult *rr = PQexec(c, "RESET ALL; RESET ROLE; RESET SESSION AUTHORIZATION; DISCARD TEMP; "
                             "DISCARD SEQUENCES; DEALLOCATE ALL; UNLISTEN *");
    if (PQresultStatus(rr) != PGRES_COMMAND_OK) {
        snprintf(err, errlen, "%s: cannot reset the session before the file: %s", st->label,
                 PQresultErrorMessage(rr));
        PQclear(rr);
        mig_stmts_free(&stmts);
        return -1;
    }
    PQclear(rr);
    int rc = st->no_transaction ? run_autocommit(c, st, &stmts, lt, err, errlen)
                                : run_transactional(c, st, &stmts, lt, err, errlen);
    *elapsed_ms = (long)(now_ms() - t0 + 0.5);
    mig_stmts_free(&stmts);
    return rc;
}

int mig_invalid_indexes(PGconn *c, char *out, size_t outlen)
{
    out[0] = '\0';
    PGresult *r = PQexecParams(
        c,
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(ic.relname) FROM pg_index i "
        "JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace "
        "WHERE NOT i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1",
        0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return -1;
    }
    int n = PQntuples(r);
    for (int i = 0; i < n; i++)
        add(out, outlen, "%s%s", i ? ", " : "", PQgetvalue(r, i, 0));
    PQclear(r);
    return n;
}
