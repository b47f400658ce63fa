/* session: see session.h. */
#include "migrate/session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/env.h"
#include "db/connect.h"
#include "db/url.h"
#include "migrate/conn.h"
#include "migrate/lock.h"

void mig_say(const mig_session *s, const char *fmt, ...)
{
    if (s->o->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

void mig_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("migrate: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void notice(void *arg, const char *message)
{
    if (!*(const bool *)arg)
        fprintf(stderr, "migrate: %s", message);
}

char *mig_resolve_url(const mig_opts *o, int *rc)
{
    const char *source;
    const char *url = mig_pick_url(o->url, &source);
    *rc = MIG_EXIT_USAGE;
    if (!url) {
        mig_fail("no database URL: set DATABASE_URL_UNPOOLED or DATABASE_URL (environment or "
                 ".env), or pass --url");
        return NULL;
    }
    char err[512], *old_host = NULL, *new_host = NULL;
    bool changed;
    char *direct = mig_direct_url(url, &changed, &old_host, &new_host, err, sizeof err);
    if (!direct) {
        mig_fail("%s does not parse: %s", source, err);
        return NULL;
    }
    if (changed && !o->quiet)
        fprintf(stderr,
                "migrate: %s names the pooled host %s; using the direct host %s instead "
                "(migrations need a session of their own, which a transaction-mode pooler cannot "
                "give)\n",
                source, old_host, new_host);
    free(old_host);
    free(new_host);
    db_warn_insecure_neon(direct, source);
    *rc = MIG_EXIT_OK;
    return direct;
}

static int connect_session(mig_session *s)
{
    int rc;
    char *direct = mig_resolve_url(s->o, &rc);
    if (!direct)
        return rc;
    double budget;
    char eerr[ENV_ERR_LEN];
    if (env_seconds("MIGRATE_CONNECT_TIMEOUT", 30, 0, 3600, &budget, eerr) < 0) {
        free(direct);
        mig_fail("%s", eerr);
        return MIG_EXIT_USAGE;
    }
    s->conn = mig_connect(direct, budget, NULL);
    free(direct);
    if (!s->conn)
        return MIG_EXIT_ERROR;
    PQsetNoticeProcessor(s->conn, notice, (void *)&s->o->quiet);
    return MIG_EXIT_OK;
}

int mig_session_reload(mig_session *s)
{
    char err[MIG_ERR_LEN];
    mig_history_free(&s->hist);
    if (mig_history_load(s->conn, &s->hist, err) < 0) {
        mig_fail("%s", err);
        return MIG_EXIT_ERROR;
    }
    return MIG_EXIT_OK;
}

int mig_session_open(mig_session *s, const mig_opts *o, int needs)
{
    memset(s, 0, sizeof *s);
    s->o = o;
    char err[MIG_ERR_LEN];
    int rc = connect_session(s);
    if (rc != MIG_EXIT_OK)
        return rc;
    if ((needs & MIG_NEED_FILES) && mig_files_load(o->dir, &s->files, err) < 0) {
        mig_fail("%s", err);
        return MIG_EXIT_USAGE;
    }
    if (needs & MIG_NEED_LOCK) {
        int l = mig_lock_acquire(s->conn, o->lock_timeout, o->quiet, err);
        if (l != 0) {
            mig_fail("%s", err);
            return l > 0 ? MIG_EXIT_TIMEOUT : MIG_EXIT_ERROR;
        }
        s->locked = true;
        if (mig_history_ensure(s->conn, err) < 0) {
            mig_fail("%s", err);
            return MIG_EXIT_ERROR;
        }
    }
    if (needs & MIG_NEED_HISTORY)
        return mig_session_reload(s);
    return MIG_EXIT_OK;
}

int mig_session_reconnect(mig_session *s)
{
    PQfinish(s->conn);
    s->conn = NULL;
    s->locked = false;
    int rc = connect_session(s);
    if (rc != MIG_EXIT_OK)
        return rc;
    char err[MIG_ERR_LEN];
    int l = mig_lock_acquire(s->conn, s->o->lock_timeout, s->o->quiet, err);
    if (l != 0) {
        mig_fail("%s", err);
        return l > 0 ? MIG_EXIT_TIMEOUT : MIG_EXIT_ERROR;
    }
    s->locked = true;
    return mig_session_reload(s);
}

void mig_session_close(mig_session *s)
{
    if (s->conn && s->locked)
        mig_lock_release(s->conn);
    if (s->conn)
        PQfinish(s->conn);
    s->conn = NULL;
    mig_files_free(&s->files);
    mig_history_free(&s->hist);
}

int mig_integrity(const mig_session *s, FILE *out, int *changed, int *missing, int *out_of_order)
{
    int ch = 0, mi = 0, oo = 0;
    for (size_t i = 0; i < s->hist.count; i++) {
        const mig_applied *a = &s->hist.items[i];
        const mig_file *f = mig_files_find(&s->files, a->version);
        if (!f) {
            mi++;
            if (out)
                fprintf(out,
                        "applied migration %s_%s.sql is missing from %s (deleted or renamed after "
                        "it was applied)\n",
                        a->version, a->name, s->o->dir);
        } else if (strcmp(f->checksum, a->checksum)) {
            ch++;
            if (out)
                fprintf(
                    out,
                    "%s was edited after it was applied (sha256 now %.12s..., applied %.12s...): "
                    "write a new migration instead\n",
                    f->path, f->checksum, a->checksum);
        }
    }
    const mig_applied *latest = mig_history_latest(&s->hist);
    for (size_t i = 0; latest && i < s->files.count; i++) {
        const mig_file *f = &s->files.items[i];
        if (!mig_history_find(&s->hist, f->version) &&
            db_schema_version_cmp(f->version, latest->version) < 0) {
            oo++;
            if (out)
                fprintf(out,
                        "%s is pending but older than the newest applied migration %s_%s "
                        "(merged out of order): renumber it after %s\n",
                        f->path, latest->version, latest->name, latest->version);
        }
    }
    if (changed)
        *changed = ch;
    if (missing)
        *missing = mi;
    if (out_of_order)
        *out_of_order = oo;
    return ch + mi + oo;
}
