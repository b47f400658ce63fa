/* cmd_info: the commands that only read: status, current, history, check, dump (dump writes a file,
 * never the database). None takes the migration lock. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate/apply.h"
#include "migrate/commands.h"
#include "migrate/diff.h"
#include "migrate/dump.h"
#include "migrate/session.h"

static int pending_count(const mig_session *s)
{
    int n = 0;
    for (size_t i = 0; i < s->files.count; i++)
        n += !mig_history_find(&s->hist, s->files.items[i].version);
    return n;
}

/* Prints every migration (files and history merged, in version order). */
static void print_list(const mig_session *s)
{
    size_t i = 0, j = 0;
    while (i < s->files.count || j < s->hist.count) {
        const mig_file *f = i < s->files.count ? &s->files.items[i] : NULL;
        const mig_applied *a = j < s->hist.count ? &s->hist.items[j] : NULL;
        int c = !f ? 1 : !a ? -1 : db_schema_version_cmp(f->version, a->version);
        if (c < 0) {
            printf("%-6s %-40s pending\n", f->version, f->name);
            i++;
            continue;
        }
        const char *note = !f                                 ? "  (FILE MISSING)"
                           : strcmp(f->checksum, a->checksum) ? "  (FILE CHANGED)"
                                                              : "";
        /* a is set: c >= 0 only when the history has an entry left */
        // NOLINTNEXTLINE(clang-analyzer-core.NullDereference)
        printf("%-6s %-40s applied %s (%ld ms)%s%s\n", a->version, a->name, a->applied_at,
               a->execution_ms, a->baseline ? " baseline" : "", note);
        j++;
        i += c == 0;
    }
}

int mig_cmd_status(const mig_opts *o)
{
    mig_session s;
    int rc = mig_session_open(&s, o, MIG_NEED_FILES | MIG_NEED_HISTORY);
    if (rc != MIG_EXIT_OK) {
        mig_session_close(&s);
        return rc;
    }
    if (!o->quiet)
        print_list(&s);
    int pending = pending_count(&s);
    int problems = mig_integrity(&s, o->quiet ? NULL : stdout, NULL, NULL, NULL);
    char inv[2048];
    if (mig_invalid_indexes(s.conn, inv, sizeof inv) > 0) {
        problems++;
        if (!o->quiet)
            printf("INVALID index(es): %s (a failed CREATE INDEX CONCURRENTLY)\n", inv);
    }
    const mig_applied *l = mig_history_latest(&s.hist);
    mig_say(&s, "version %s, %d pending, %d problem(s)\n", l ? l->version : "none", pending,
            problems);
    mig_session_close(&s);
    if (!o->exit_code)
        return MIG_EXIT_OK;
    return problems ? MIG_EXIT_INTEGRITY : pending ? MIG_EXIT_PENDING : MIG_EXIT_OK;
}

int mig_cmd_current(const mig_opts *o)
{
    mig_session s;
    int rc = mig_session_open(&s, o, MIG_NEED_HISTORY);
    if (rc == MIG_EXIT_OK) {
        const mig_applied *l = mig_history_latest(&s.hist);
        printf("%s\n", l ? l->version : "none");
    }
    mig_session_close(&s);
    return rc;
}

int mig_cmd_history(const mig_opts *o)
{
    mig_session s;
    int rc = mig_session_open(&s, o, MIG_NEED_HISTORY);
    for (size_t i = 0; rc == MIG_EXIT_OK && i < s.hist.count; i++) {
        const mig_applied *a = &s.hist.items[i];
        printf("%-6s %-40s %s %6ld ms  by %s%s%s\n", a->version, a->name, a->applied_at,
               a->execution_ms, a->applied_by, a->baseline ? " (baseline)" : "",
               a->no_transaction ? " (no transaction)" : "");
    }
    if (rc == MIG_EXIT_OK && s.hist.count == 0 && !o->quiet)
        fprintf(stderr, "migrate: no migration has been applied\n");
    mig_session_close(&s);
    return rc;
}

static void schema_path(const mig_opts *o, char *out, size_t len)
{
    snprintf(out, len, "%s/schema.sql", o->dir);
}

int mig_cmd_check(const mig_opts *o)
{
    mig_session s;
    int rc = mig_session_open(&s, o, MIG_NEED_FILES | MIG_NEED_HISTORY);
    if (rc != MIG_EXIT_OK) {
        mig_session_close(&s);
        return rc;
    }
    int problems = mig_integrity(&s, stdout, NULL, NULL, NULL);
    for (size_t i = 0; i < s.files.count; i++)
        if (!mig_history_find(&s.hist, s.files.items[i].version)) {
            printf("%s is not applied\n", s.files.items[i].path);
            problems++;
        }
    char path[4096], err[MIG_ERR_LEN], inv[2048];
    if (mig_invalid_indexes(s.conn, inv, sizeof inv) > 0) {
        printf("INVALID index(es): %s (a failed CREATE INDEX CONCURRENTLY: it enforces nothing; "
               "`migrate up` rebuilds one its pending file creates, else DROP INDEX CONCURRENTLY "
               "it and create it again)\n",
               inv);
        problems++;
    }
    schema_path(o, path, sizeof path);
    const mig_applied *l = mig_history_latest(&s.hist);
    char *expected = mig_text_read(path), *live = mig_dump(s.conn, l ? l->version : NULL, err);
    if (!live) {
        mig_fail("%s", err);
        rc = MIG_EXIT_ERROR;
    } else if (!expected) {
        printf("%s is missing: run `migrate dump` on a migrated database and commit it\n", path);
        problems++;
    } else {
        int d = mig_diff_lines(expected, live, NULL);
        if (d != 0) {
            printf("the live schema differs from %s (-: only in the file, +: only in the "
                   "database):\n",
                   path);
            mig_diff_lines(expected, live, stdout);
            problems++;
        }
    }
    free(expected);
    free(live);
    if (rc == MIG_EXIT_OK && problems == 0)
        mig_say(&s, "ok: history matches the files and the schema matches %s\n", path);
    mig_session_close(&s);
    return rc != MIG_EXIT_OK ? rc : problems ? MIG_EXIT_INTEGRITY : MIG_EXIT_OK;
}

int mig_cmd_dump(const mig_opts *o)
{
    mig_session s;
    int rc = mig_session_open(&s, o, MIG_NEED_HISTORY);
    char err[MIG_ERR_LEN], path[4096];
    const mig_applied *l = mig_history_latest(&s.hist);
    char *text = rc == MIG_EXIT_OK ? mig_dump(s.conn, l ? l->version : NULL, err) : NULL;
    if (rc == MIG_EXIT_OK && !text) {
        mig_fail("%s", err);
        rc = MIG_EXIT_ERROR;
    }
    if (text && o->output && !strcmp(o->output, "-")) {
        fputs(text, stdout);
    } else if (text) {
        if (o->output)
            snprintf(path, sizeof path, "%s", o->output);
        else
            schema_path(o, path, sizeof path);
        if (mig_text_write(path, text) < 0) {
            mig_fail("cannot write %s: %s", path, strerror(errno));
            rc = MIG_EXIT_ERROR;
        } else {
            mig_say(&s, "wrote %s\n", path);
        }
    }
    free(text);
    mig_session_close(&s);
    return rc;
}
