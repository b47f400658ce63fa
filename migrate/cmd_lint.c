/* cmd_lint: `migrate lint [FILE...]`, and the lint that `migrate up` runs before applying. */
#include <stdio.h>
#include <string.h>

#include "migrate/commands.h"
#include "migrate/lint.h"
#include "migrate/session.h"

static void summary(FILE *out, const mig_lint_counts *n)
{
    fprintf(out, "lint: %d error(s), %d warning(s)%s", n->errors, n->warnings,
            n->ignored ? "" : "\n");
    if (n->ignored)
        fprintf(out, ", %d accepted by -- migrate:lint-ignore\n", n->ignored);
}

int mig_cmd_lint(const mig_opts *o)
{
    mig_lint_counts n = {0};
    int linted = 0;
    if (o->nfiles > 0) {
        for (int i = 0; i < o->nfiles; i++) {
            mig_file f;
            char err[MIG_ERR_LEN];
            if (mig_file_load(o->files[i], &f, err) < 0) {
                mig_fail("%s", err);
                mig_file_free(&f);
                return MIG_EXIT_USAGE;
            }
            mig_lint_file(&f, stdout, &n);
            mig_file_free(&f);
            linted++;
        }
    } else {
        mig_session s;
        int rc = mig_session_open(&s, o, MIG_NEED_FILES | MIG_NEED_HISTORY);
        for (size_t i = 0; rc == MIG_EXIT_OK && i < s.files.count; i++)
            if (!mig_history_find(&s.hist, s.files.items[i].version)) {
                mig_lint_file(&s.files.items[i], stdout, &n);
                linted++;
            }
        mig_session_close(&s);
        if (rc != MIG_EXIT_OK)
            return rc;
    }
    if (!o->quiet || n.errors)
        summary(stdout, &n);
    if (!o->quiet && linted == 0)
        printf("lint: no pending migration to lint\n");
    return n.errors ? MIG_EXIT_INTEGRITY : MIG_EXIT_OK;
}

int mig_lint_before_up(const mig_session *s)
{
    mig_lint_counts n = {0};
    for (size_t i = 0; i < s->files.count; i++) {
        const mig_file *f = &s->files.items[i];
        if (s->o->to && db_schema_version_cmp(f->version, s->o->to) > 0)
            break;
        if (mig_history_find(&s->hist, f->version))
            continue;
        mig_lint_counts one = {0};
        mig_lint_file(f, NULL, &one);
        if (one.errors)
            mig_lint_file(f, stderr, &n); /* print only the files that stop the run */
    }
    if (n.errors == 0)
        return MIG_EXIT_OK;
    summary(stderr, &n);
    mig_fail("refusing to migrate: lint found %d error(s) in the pending migrations; nothing was "
             "applied (fix them, accept one with \"-- migrate:lint-ignore RULE REASON\", or pass "
             "--no-lint)",
             n.errors);
    return MIG_EXIT_INTEGRITY;
}
