/* cmd_apply: the commands that change the database: up, down, redo, baseline. All of them hold the
 * migration lock for their whole run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/apply.h"
#include "migrate/commands.h"
#include "migrate/session.h"
#include "migrate/split.h"

#define ERRBUF 16384

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static size_t count_statements(const char *sql)
{
    mig_stmts st;
    char err[256];
    size_t n = mig_split(sql, 1, &st, err, sizeof err) == 0 ? st.count : 0;
    mig_stmts_free(&st);
    return n;
}

/* Applies one file. When the connection died during a transactional file, nothing of it can have
 * committed except possibly everything (a lost COMMIT reply): *lost is set and the caller
 * reconnects, looks at the history and retries. */
static int apply_file(mig_session *s, const mig_file *f, bool *lost)
{
    mig_step st = {.label = f->path,
                   .version = f->version,
                   .sql = f->up,
                   .first_line = f->up_line,
                   .no_transaction = f->no_transaction,
                   .lock_timeout = f->lock_timeout,
                   .file = f};
    char *err = malloc(ERRBUF);
    long ms = 0;
    if (!err)
        return MIG_EXIT_ERROR;
    *lost = false;
    mig_say(s, "applying %s%s\n", base_name(f->path),
            f->no_transaction ? " (no transaction: one statement at a time)" : "");
    int rc = mig_apply(s->conn, &st, s->o->pg_lock_timeout, &ms, err, ERRBUF);
    if (rc < 0 && PQstatus(s->conn) == CONNECTION_BAD && !f->no_transaction) {
        *lost = true;
        fprintf(stderr, "migrate: the connection was lost while applying %s (%.*s); reconnecting\n",
                base_name(f->path), (int)strcspn(err, "\n"), err);
    } else if (rc < 0) {
        mig_fail("%s", err);
    } else {
        mig_say(s, "applied  %s in %ld ms\n", base_name(f->path), ms);
    }
    free(err);
    return rc < 0 ? MIG_EXIT_ERROR : MIG_EXIT_OK;
}

/* Applies f, reconnecting and retrying (up to 3 times) when the connection dies under a
 * transactional file: a safe point, since its transaction either committed with its history row
 * or left nothing behind. */
static int apply_with_retry(mig_session *s, const mig_file *f)
{
    for (int attempt = 0;; attempt++) {
        bool lost = false;
        int rc = apply_file(s, f, &lost);
        if (rc == MIG_EXIT_OK || !lost)
            return rc;
        if (attempt == 3) {
            mig_fail("%s: the connection was lost %d times; giving up", f->path, attempt + 1);
            return MIG_EXIT_ERROR;
        }
        rc = mig_session_reconnect(s);
        if (rc != MIG_EXIT_OK)
            return rc;
        if (mig_history_find(&s->hist, f->version)) {
            mig_say(s, "applied  %s (its COMMIT had gone through)\n", base_name(f->path));
            return MIG_EXIT_OK;
        }
    }
}

static void warn_invalid_indexes(mig_session *s)
{
    char inv[2048];
    if (mig_invalid_indexes(s->conn, inv, sizeof inv) > 0)
        fprintf(stderr,
                "migrate: warning: INVALID index(es) in the database: %s (a failed CREATE INDEX "
                "CONCURRENTLY); drop and recreate them\n",
                inv);
}

/* Refuses (exit 3) when files and history disagree in a way the flags do not allow. */
static int check_integrity(mig_session *s)
{
    int ch, mi, oo;
    mig_integrity(s, NULL, &ch, &mi, &oo);
    bool refuse = (ch && !s->o->allow_changed) || (mi && !s->o->allow_missing) ||
                  (oo && !s->o->allow_out_of_order);
    if (!refuse) {
        if (ch + mi + oo)
            mig_integrity(s, stderr, NULL, NULL, NULL);
        return MIG_EXIT_OK;
    }
    fprintf(stderr, "migrate: error: refusing to migrate: the files and schema_migrations "
                    "disagree:\n");
    mig_integrity(s, stderr, NULL, NULL, NULL);
    fprintf(stderr, "hint: fix the files; to proceed on purpose pass%s%s%s\n",
            ch ? " --allow-changed" : "", mi ? " --allow-missing" : "",
            oo ? " --allow-out-of-order" : "");
    return MIG_EXIT_INTEGRITY;
}

static void dry_run(mig_session *s, const mig_file *f)
{
    printf("would apply %s (%s, %zu statement%s)\n", base_name(f->path),
           f->no_transaction ? "no transaction" : "one transaction", count_statements(f->up),
           count_statements(f->up) == 1 ? "" : "s");
    if (!s->o->quiet)
        printf("%s%s", f->up, f->up[0] && f->up[strlen(f->up) - 1] != '\n' ? "\n" : "");
}

int mig_cmd_up(const mig_opts *o)
{
    mig_session s;
    int needs = MIG_NEED_FILES | MIG_NEED_HISTORY | (o->dry_run ? 0 : MIG_NEED_LOCK);
    int rc = mig_session_open(&s, o, needs);
    if (rc == MIG_EXIT_OK)
        rc = check_integrity(&s);
    if (rc == MIG_EXIT_OK && !o->no_lint)
        rc = mig_lint_before_up(&s);
    size_t done = 0;
    for (size_t i = 0; rc == MIG_EXIT_OK && i < s.files.count; i++) {
        const mig_file *f = &s.files.items[i];
        if (o->to && db_schema_version_cmp(f->version, o->to) > 0)
            break;
        if (mig_history_find(&s.hist, f->version))
            continue;
        if (o->dry_run)
            dry_run(&s, f);
        else
            rc = apply_with_retry(&s, f);
        done++;
    }
    if (rc == MIG_EXIT_OK && done == 0) {
        const mig_applied *l = mig_history_latest(&s.hist);
        mig_say(&s, "nothing to apply: the database is at version %s\n", l ? l->version : "none");
    } else if (rc == MIG_EXIT_OK && o->dry_run) {
        printf("dry run: nothing was changed\n");
    }
    if (s.conn && !o->dry_run && rc != MIG_EXIT_INTEGRITY)
        warn_invalid_indexes(&s);
    mig_session_close(&s);
    return rc;
}

/* Reverts applied migration `a` with the down SQL recorded when it was applied (the file's, with
 * its line numbers, when the file is present and unchanged). */
static int revert(mig_session *s, const mig_applied *a)
{
    const mig_file *f = mig_files_find(&s->files, a->version);
    char label[512];
    mig_step st = {.version = a->version,
                   .sql = a->down_sql,
                   .first_line = 1,
                   .no_transaction = a->no_transaction,
                   .lock_timeout = a->lock_timeout};
    if (f && !strcmp(f->checksum, a->checksum)) {
        st.label = f->path;
        st.sql = f->down;
        st.first_line = f->down_line;
    } else {
        snprintf(label, sizeof label, "%s_%s (down SQL stored in schema_migrations%s)", a->version,
                 a->name, f ? "; the file changed since" : "; the file is gone");
        st.label = label;
    }
    if (count_statements(st.sql) == 0) {
        mig_fail("%s has no down SQL: nothing was reverted (write a new migration to undo it)",
                 st.label);
        return MIG_EXIT_ERROR;
    }
    char *err = malloc(ERRBUF);
    long ms = 0;
    if (!err)
        return MIG_EXIT_ERROR;
    mig_say(s, "reverting %s_%s\n", a->version, a->name);
    int rc = mig_apply(s->conn, &st, s->o->pg_lock_timeout, &ms, err, ERRBUF);
    if (rc < 0)
        mig_fail("%s", err);
    else
        mig_say(s, "reverted  %s_%s in %ld ms\n", a->version, a->name, ms);
    free(err);
    return rc < 0 ? MIG_EXIT_ERROR : MIG_EXIT_OK;
}

int mig_cmd_down(const mig_opts *o)
{
    mig_session s;
    int rc = mig_session_open(&s, o, MIG_NEED_FILES | MIG_NEED_LOCK | MIG_NEED_HISTORY);
    long steps = o->steps ? o->steps : 1, done = 0;
    for (size_t i = s.hist.count; rc == MIG_EXIT_OK && i-- > 0;) {
        const mig_applied *a = &s.hist.items[i];
        if (o->to ? db_schema_version_cmp(a->version, o->to) <= 0 : done >= steps)
            break;
        rc = revert(&s, a);
        done++;
    }
    if (rc == MIG_EXIT_OK && done == 0)
        mig_say(&s, "nothing to revert\n");
    mig_session_close(&s);
    return rc;
}

int mig_cmd_redo(const mig_opts *o)
{
    mig_session s;
    int rc = mig_session_open(&s, o, MIG_NEED_FILES | MIG_NEED_LOCK | MIG_NEED_HISTORY);
    const mig_applied *a = rc == MIG_EXIT_OK ? mig_history_latest(&s.hist) : NULL;
    const mig_file *f = a ? mig_files_find(&s.files, a->version) : NULL;
    if (rc == MIG_EXIT_OK && !a) {
        mig_fail("nothing to redo: no migration is applied");
        rc = MIG_EXIT_ERROR;
    } else if (rc == MIG_EXIT_OK && !f) {
        mig_fail("cannot redo %s_%s: its file is not in %s (nothing was reverted)", a->version,
                 a->name, o->dir);
        rc = MIG_EXIT_ERROR;
    }
    if (rc == MIG_EXIT_OK)
        rc = revert(&s, a);
    if (rc == MIG_EXIT_OK)
        rc = apply_with_retry(&s, f);
    mig_session_close(&s);
    return rc;
}

int mig_cmd_baseline(const mig_opts *o)
{
    mig_session s;
    char err[MIG_ERR_LEN];
    int rc = mig_session_open(&s, o, MIG_NEED_FILES | MIG_NEED_LOCK | MIG_NEED_HISTORY);
    if (rc == MIG_EXIT_OK && s.hist.count) {
        mig_fail("schema_migrations already records %zu migration(s): baseline is for a database "
                 "migrate has never run on",
                 s.hist.count);
        rc = MIG_EXIT_ERROR;
    } else if (rc == MIG_EXIT_OK && !mig_files_find(&s.files, o->arg)) {
        mig_fail("no migration file with version %s in %s", o->arg, o->dir);
        rc = MIG_EXIT_USAGE;
    }
    size_t n = 0;
    if (rc == MIG_EXIT_OK) {
        PQclear(PQexec(s.conn, "BEGIN"));
        for (size_t i = 0; rc == MIG_EXIT_OK && i < s.files.count; i++) {
            const mig_file *f = &s.files.items[i];
            if (db_schema_version_cmp(f->version, o->arg) > 0)
                break;
            if (mig_history_insert(s.conn, f, 0, true, err) < 0) {
                mig_fail("%s", err);
                rc = MIG_EXIT_ERROR;
            }
            n++;
        }
        PGresult *r = PQexec(s.conn, rc == MIG_EXIT_OK ? "COMMIT" : "ROLLBACK");
        if (rc == MIG_EXIT_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
            mig_fail("baseline: COMMIT failed: %s", PQerrorMessage(s.conn));
            rc = MIG_EXIT_ERROR;
        }
        PQclear(r);
    }
    if (rc == MIG_EXIT_OK)
        mig_say(&s, "recorded %zu migration(s) up to %s as applied; nothing ran\n", n, o->arg);
    mig_session_close(&s);
    return rc;
}
