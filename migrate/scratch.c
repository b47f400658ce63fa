/* scratch: see scratch.h. */
#include "migrate/scratch.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db/url.h"
#include "migrate/split.h"

static volatile sig_atomic_t interrupted;
static PGcancel *volatile cancels[3]; /* A, B, admin */
static struct sigaction old_int, old_term;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
    char buf[256];
    for (int i = 0; i < 3; i++)
        if (cancels[i])
            PQcancel(cancels[i], buf, sizeof buf);
}

bool mig_scratch_interrupted(void)
{
    return interrupted != 0;
}

static int exec_admin(mig_scratch *s, const char *sql, char err[MIG_ERR_LEN])
{
    PGresult *r = PQexec(s->admin, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) {
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const char *m = PQresultErrorMessage(r);
        if (st && !strcmp(st, "42501"))
            snprintf(err, MIG_ERR_LEN,
                     "the --dev-url role \"%s\" may not create databases: migrate diff needs a "
                     "scratch server where its role has CREATEDB (ALTER ROLE %s CREATEDB)",
                     PQuser(s->admin), PQuser(s->admin));
        else
            snprintf(err, MIG_ERR_LEN, "on the --dev-url server: %.*s", (int)strcspn(m, "\n"), m);
    }
    PQclear(r);
    return ok ? 0 : -1;
}

/* DROP DATABASE ... WITH (FORCE) fails while a session it may not terminate is connected: an
 * autovacuum worker that started on the fresh database (a non-superuser role may not signal it), or
 * another role's session. Both go away by themselves, so the drop is retried for about 20 s; a last
 * failure names the server's reason and the database to drop by hand. */
static void drop_scratch(mig_scratch *s, const char *name)
{
    char sql[160], msg[512] = "";
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    bool ok = false;
    for (int attempt = 0; !ok && attempt < 40; attempt++) {
        PGresult *r = PQexec(s->admin, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok) {
            const char *m = PQresultErrorMessage(r);
            snprintf(msg, sizeof msg, "%.*s", (int)strcspn(m, "\n"), m);
        }
        PQclear(r);
        if (ok || PQstatus(s->admin) != CONNECTION_OK)
            break;
        if (attempt == 0)
            fprintf(stderr,
                    "migrate: scratch database %s is still in use (%s); retrying the drop\n", name,
                    msg);
        usleep(500000);
    }
    if (!ok)
        fprintf(stderr,
                "migrate: warning: could not drop scratch database %s: %s (a session the --dev-url "
                "role may not terminate, such as an autovacuum worker, stayed connected); drop it "
                "by hand: DROP DATABASE %s WITH (FORCE)\n",
                name, msg, name);
}

int mig_scratch_open(mig_scratch *s, const char *dev_url, char err[MIG_ERR_LEN])
{
    memset(s, 0, sizeof *s);
    s->admin = PQconnectdb(dev_url);
    if (PQstatus(s->admin) != CONNECTION_OK) {
        const char *m = PQerrorMessage(s->admin);
        snprintf(err, MIG_ERR_LEN, "cannot connect to the --dev-url server: %.*s",
                 (int)strcspn(m, "\n"), m);
        return -1;
    }
    PQclear(PQexec(s->admin, "SET client_min_messages = warning"));
    cancels[2] = PQgetCancel(s->admin);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    for (int i = 0; i < 2; i++) {
        /* pid and clock: two machines diffing against one server do not collide */
        snprintf(s->name[i], sizeof s->name[i], "migrate_diff_%d_%ld_%c", (int)getpid(),
                 (long)(time(NULL) % 1000000), 'a' + i);
        char sql[128];
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", s->name[i]);
        if (interrupted || exec_admin(s, sql, err) < 0) {
            if (interrupted)
                snprintf(err, MIG_ERR_LEN, "interrupted");
            return -1;
        }
        s->created[i] = true;
        char *url = db_url_with(dev_url, "dbname", s->name[i]);
        s->conn[i] = url ? PQconnectdb(url) : NULL;
        free(url);
        if (PQstatus(s->conn[i]) != CONNECTION_OK) {
            snprintf(err, MIG_ERR_LEN, "cannot connect to the scratch database %s: %.*s",
                     s->name[i], (int)strcspn(PQerrorMessage(s->conn[i]), "\n"),
                     PQerrorMessage(s->conn[i]));
            return -1;
        }
        PQclear(PQexec(s->conn[i], "SET client_min_messages = warning"));
        cancels[i] = PQgetCancel(s->conn[i]);
    }
    if (interrupted)
        snprintf(err, MIG_ERR_LEN, "interrupted");
    return interrupted ? -1 : 0;
}

void mig_scratch_close(mig_scratch *s)
{
    for (int i = 0; i < 2; i++) {
        PGcancel *c = cancels[i];
        cancels[i] = NULL;
        if (c)
            PQfreeCancel(c);
        if (s->conn[i])
            PQfinish(s->conn[i]);
        s->conn[i] = NULL;
    }
    for (int i = 0; i < 2 && s->admin; i++) {
        if (s->created[i])
            drop_scratch(s, s->name[i]);
        s->created[i] = false;
    }
    if (s->admin) {
        PGcancel *c = cancels[2];
        cancels[2] = NULL;
        if (c)
            PQfreeCancel(c);
        PQfinish(s->admin);
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
    }
    s->admin = NULL;
}

/* The line and column (bytes, 1-based) of the server's error position `pos` (characters, 1-based)
 * in `sql`, which starts at line:col. */
static void error_at(const char *sql, long pos, int *line, int *col)
{
    long chars = 0;
    for (const char *p = sql; *p; p++) {
        if (((unsigned char)*p & 0xC0) != 0x80 && ++chars == pos)
            return;
        *col = *p == '\n' ? 1 : *col + 1;
        *line += *p == '\n';
    }
}

static int run_one(PGconn *c, const char *sql, const char *label, int line, int col,
                   char err[MIG_ERR_LEN])
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok) {
        const char *m = PQresultErrorMessage(r);
        const char *pos = PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION);
        char where[32] = "";
        if (pos && atol(pos) > 0) { /* the server says where: a syntax error, an unknown name */
            error_at(sql, atol(pos), &line, &col);
            snprintf(where, sizeof where, ":%d", col);
        }
        snprintf(err, MIG_ERR_LEN, "%s:%d%s: %s%.*s", label, line, where,
                 interrupted ? "interrupted: " : "", (int)strcspn(m, "\n"), m);
    }
    PQclear(r);
    return ok ? 0 : -1;
}

int mig_scratch_run(PGconn *c, const char *label, const char *sql, int first_line, bool no_tx,
                    char err[MIG_ERR_LEN])
{
    mig_stmts st;
    char e[512];
    if (mig_split(sql, first_line, &st, e, sizeof e) < 0) {
        snprintf(err, MIG_ERR_LEN, "%s: %s", label, e);
        mig_stmts_free(&st);
        return -1;
    }
    int rc = no_tx ? 0 : run_one(c, "BEGIN", label, first_line, 1, err);
    for (size_t i = 0; rc == 0 && i < st.count; i++) {
        if (interrupted) {
            snprintf(err, MIG_ERR_LEN, "interrupted");
            rc = -1;
            break;
        }
        rc = run_one(c, st.items[i].sql, label, st.items[i].line, st.items[i].col, err);
    }
    if (!no_tx && rc == 0)
        rc = run_one(c, "COMMIT", label, first_line, 1, err);
    else if (!no_tx)
        PQclear(PQexec(c, "ROLLBACK"));
    mig_stmts_free(&st);
    return rc;
}
