/* error: see error.h. Classification by SQLSTATE first; connection failures at startup carry no
 * SQLSTATE in libpq (there is no PGresult), so those are recognised by libpq's and the server's
 * message text, which is English unless the client was built and run with another locale (the
 * fallback is "transient", so a translated message costs retries, never a wrong permanent error).
 */
#include "db/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *db_errkind_name(db_errkind kind)
{
    switch (kind) {
    case DB_OK:
        return "ok";
    case DB_ERR_TRANSIENT:
        return "transient";
    case DB_ERR_RETRY_TX:
        return "retry_transaction";
    case DB_ERR_POOL_TIMEOUT:
        return "pool_timeout";
    case DB_ERR_STATEMENT_TIMEOUT:
        return "statement_timeout";
    case DB_ERR_CONFIG:
        return "config";
    case DB_ERR_QUERY:
        return "query";
    case DB_ERR_CLOSED:
        return "closed";
    case DB_ERR_UNKNOWN_OUTCOME:
        return "unknown_outcome";
    }
    return "unknown";
}

bool db_error_is_transient(const db_error *err)
{
    return err->kind == DB_ERR_TRANSIENT || err->kind == DB_ERR_POOL_TIMEOUT ||
           err->kind == DB_ERR_RETRY_TX;
}

db_errkind db_classify_sqlstate(const char *s)
{
    if (!s || !*s)
        return DB_ERR_TRANSIENT; /* client-side failure: lost connection, timeout, EOF */
    if (!strncmp(s, "08", 2) || !strcmp(s, "57P01") || !strcmp(s, "57P02") || !strcmp(s, "57P03") ||
        !strcmp(s, "53300") || !strcmp(s, "25P03"))
        return DB_ERR_TRANSIENT;
    if (!strcmp(s, "40001") || !strcmp(s, "40P01"))
        return DB_ERR_RETRY_TX;
    if (!strcmp(s, "57014"))
        return DB_ERR_STATEMENT_TIMEOUT;
    /* 28xxx invalid authorization, 3D000 no such database, 42501 at connect time is rare */
    if (!strncmp(s, "28", 2) || !strcmp(s, "3D000"))
        return DB_ERR_CONFIG;
    return DB_ERR_QUERY;
}

/* First line of a libpq message, without the "FATAL:  " / "ERROR:  " severity tags (the host part
 * libpq puts in front, "connection to server at ... failed:", is kept: it says where). */
static void first_line(char *dst, size_t len, const char *msg)
{
    if (!msg || !*msg)
        msg = "unknown error";
    size_t n = strcspn(msg, "\n");
    snprintf(dst, len, "%.*s", (int)n, msg);
    static const char *const tags[] = {"FATAL:  ", "ERROR:  "};
    for (int i = 0; i < 2; i++) {
        char *p = strstr(dst, tags[i]);
        if (p)
            memmove(p, p + 8, strlen(p + 8) + 1);
    }
    n = strlen(dst);
    while (n && (dst[n - 1] == ' ' || dst[n - 1] == '\r'))
        dst[--n] = '\0';
}

static void set_hint(db_error *err, const char *hint)
{
    snprintf(err->hint, sizeof err->hint, "%s", hint ? hint : "");
}

/* The hint for a SQLSTATE, or NULL. */
static const char *hint_for_sqlstate(const char *s)
{
    if (!strcmp(s, "28P01") || !strcmp(s, "28000"))
        return "the password may be wrong or rotated; copy a fresh DATABASE_URL from the Neon "
               "console";
    if (!strcmp(s, "3D000"))
        return "check the database name at the end of DATABASE_URL";
    if (!strcmp(s, "53300"))
        return "too many connections: use the pooled URL (-pooler host) or lower DB_POOL_MAX";
    if (!strcmp(s, "57P01") || !strcmp(s, "57P02"))
        return "the server closed the connection (compute suspended or restarted); a new "
               "connection will be opened";
    if (!strcmp(s, "57P03"))
        return "the server is starting up; try again in a moment";
    if (!strcmp(s, "57014"))
        return "the statement exceeded DB_STATEMENT_TIMEOUT; make it cheaper or raise the timeout";
    if (!strcmp(s, "40001") || !strcmp(s, "40P01"))
        return "run the whole transaction again";
    if (!strcmp(s, "25P03"))
        return "a transaction was left open too long; never keep one open across requests";
    return NULL;
}

bool db_sqlstate_conn_lost(const char *s)
{
    return s && (!strncmp(s, "08", 2) || !strcmp(s, "57P01") || !strcmp(s, "57P02"));
}

void db_error_from_result(db_error *err, PGconn *conn, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    if (!msg || !*msg)
        msg = conn ? PQerrorMessage(conn) : NULL;
    memset(err, 0, sizeof *err);
    snprintf(err->sqlstate, sizeof err->sqlstate, "%s", state ? state : "");
    const char *constraint = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
    snprintf(err->constraint, sizeof err->constraint, "%s", constraint ? constraint : "");
    first_line(err->message, sizeof err->message, msg);
    if (state && *state) {
        err->kind = db_classify_sqlstate(state);
        set_hint(err, hint_for_sqlstate(state));
    } else if (!conn || PQstatus(conn) == CONNECTION_BAD || !res) {
        err->kind = DB_ERR_TRANSIENT;
        set_hint(err, "the connection to the server was lost; a new connection will be opened");
    } else {
        err->kind = DB_ERR_QUERY;
    }
}

/* Startup failures: known message fragments -> kind, SQLSTATE (when the server would have sent
 * one) and hint. Checked in order; the first match wins. */
static const struct {
    const char *fragment, *sqlstate;
    db_errkind kind;
    const char *hint;
} connect_rules[] = {
    {"password authentication failed", "28P01", DB_ERR_CONFIG,
     "the password may be wrong or rotated; copy a fresh DATABASE_URL from the Neon console"},
    /* pgbouncer's SCRAM failure reads "SASL authentication failed" */
    {"authentication failed", "28P01", DB_ERR_CONFIG,
     "the password may be wrong or rotated; copy a fresh DATABASE_URL from the Neon console"},
    {"no password supplied", "28P01", DB_ERR_CONFIG, "DATABASE_URL has no password; add one"},
    {"no pg_hba.conf entry", "28000", DB_ERR_CONFIG,
     "the server does not accept this user/host/TLS combination; check sslmode and the user"},
    {"role \"", "28000", DB_ERR_CONFIG, "check the user name in DATABASE_URL"},
    {"does not exist", "3D000", DB_ERR_CONFIG, "check the user and database names in DATABASE_URL"},
    {"no such database", "3D000", DB_ERR_CONFIG,
     "check the database name at the end of DATABASE_URL"},
    {"could not translate host name", "", DB_ERR_CONFIG,
     "check the host in DATABASE_URL (Neon: ep-<name>-<id>[-pooler].<region>.aws.neon.tech)"},
    {"endpoint is disabled", "", DB_ERR_CONFIG,
     "the Neon endpoint is disabled (quota or manual suspend); enable it in the Neon console"},
    {"endpoint ID is not specified", "", DB_ERR_CONFIG,
     "this libpq does not send SNI; add options=endpoint%3D<endpoint-id> to the URL"},
    {"unsupported startup parameter", "08P01", DB_ERR_CONFIG,
     "poolers reject startup options: remove options=... from the pooled URL, or use the "
     "direct URL"},
    {"server does not support SSL", "", DB_ERR_CONFIG,
     "the server refuses TLS but sslmode requires it; check the host and sslmode"},
    {"certificate", "", DB_ERR_CONFIG,
     "TLS certificate check failed; check sslrootcert (Neon: the system CA bundle) and sslmode"},
    {"too many clients", "53300", DB_ERR_TRANSIENT,
     "too many connections: use the pooled URL (-pooler host) or lower DB_POOL_MAX"},
    {"remaining connection slots", "53300", DB_ERR_TRANSIENT,
     "too many connections: use the pooled URL (-pooler host) or lower DB_POOL_MAX"},
    {"no more connections allowed", "53300", DB_ERR_TRANSIENT,
     "the pooler is full: lower DB_POOL_MAX or the number of processes"},
    {"starting up", "57P03", DB_ERR_TRANSIENT, "the server is starting up; retrying"},
    {"shutting down", "57P03", DB_ERR_TRANSIENT, "the server is shutting down or restarting"},
    {"Connection refused", "08001", DB_ERR_TRANSIENT,
     "is the server running and listening on this host and port? (a Neon compute may be waking "
     "up)"},
    {"timeout expired", "08001", DB_ERR_TRANSIENT,
     "the server did not answer in time (a Neon cold start?); raise DB_CONNECT_TIMEOUT if it "
     "happens often"},
    {"Couldn't connect to compute node", "08001", DB_ERR_TRANSIENT,
     "the Neon compute is waking up; retrying"},
};

void db_error_from_connect(db_error *err, PGconn *conn)
{
    const char *msg = conn ? PQerrorMessage(conn) : "out of memory";
    memset(err, 0, sizeof *err);
    err->kind = DB_ERR_TRANSIENT;
    /* keep the line that explains the failure: libpq prefixes it with the address it tried */
    first_line(err->message, sizeof err->message, msg);
    for (size_t i = 0; i < sizeof connect_rules / sizeof connect_rules[0]; i++) {
        if (msg && strstr(msg, connect_rules[i].fragment)) {
            err->kind = connect_rules[i].kind;
            snprintf(err->sqlstate, sizeof err->sqlstate, "%s", connect_rules[i].sqlstate);
            set_hint(err, connect_rules[i].hint);
            return;
        }
    }
    snprintf(err->sqlstate, sizeof err->sqlstate, "08001");
    set_hint(err, "could not reach the server; check the host and port in DATABASE_URL");
}

void db_error_set(db_error *err, db_errkind kind, const char *sqlstate, const char *fmt, ...)
{
    va_list ap;
    memset(err, 0, sizeof *err);
    err->kind = kind;
    snprintf(err->sqlstate, sizeof err->sqlstate, "%s", sqlstate ? sqlstate : "");
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}
