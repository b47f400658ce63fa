/* cmd_lint: `migrate lint [FILE...]`, and the lint that `migrate up` runs before applying. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
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

/* True for <dir>/schema.sql: the declared schema `diff` reads, not a migration (so that
 * `migrate lint migrations/NNNN_x.sql migrations/schema.sql` lints the migrations only). */
static bool is_schema_file(const char *path)
{
    const char *base = strrchr(path, '/');
    return !strcmp(base ? base + 1 : path, "schema.sql");
}

int mig_cmd_lint(const mig_opts *o)
{
    mig_lint_counts n = {0};
    mig_lint_memory mem = {0};
    int linted = 0;
    if (o->nfiles > 0) {
        for (int i = 0; i < o->nfiles; i++) {
            if (is_schema_file(o->files[i])) {
                if (!o->quiet)
                    printf("lint: skipping %s (the declared schema, not a migration)\n",
                           o->files[i]);
                continue;
            }
            mig_file f;
            char err[MIG_ERR_LEN];
            if (mig_file_load(o->files[i], &f, err) < 0) {
                mig_fail("%s", err);
                mig_file_free(&f);
                mig_lint_memory_free(&mem);
                return MIG_EXIT_USAGE;
            }
            mig_lint_file(&f, stdout, &n, &mem);
            mig_file_free(&f);
            linted++;
        }
    } else {
        mig_session s;
        int rc = mig_session_open(&s, o, MIG_NEED_FILES | MIG_NEED_HISTORY);
        for (size_t i = 0; rc == MIG_EXIT_OK && i < s.files.count; i++) {
            bool applied = mig_history_find(&s.hist, s.files.items[i].version);
            mig_lint_counts discard = {0};
            /* applied files are read for what they declare, their findings are history */
            mig_lint_file(&s.files.items[i], applied ? NULL : stdout, applied ? &discard : &n,
                          &mem);
            linted += !applied;
        }
        mig_session_close(&s);
        if (rc != MIG_EXIT_OK) {
            mig_lint_memory_free(&mem);
            return rc;
        }
    }
    mig_lint_memory_free(&mem);
    if (!o->quiet || n.errors)
        summary(stdout, &n);
    if (!o->quiet && linted == 0)
        printf("lint: no pending migration to lint\n");
    return n.errors ? MIG_EXIT_INTEGRITY : MIG_EXIT_OK;
}

int mig_lint_before_up(const mig_session *s)
{
    mig_lint_counts n = {0};
    mig_lint_memory mem = {0};
    for (size_t i = 0; i < s->files.count; i++) {
        const mig_file *f = &s->files.items[i];
        if (s->o->to && db_schema_version_cmp(f->version, s->o->to) > 0)
            break;
        mig_lint_counts one = {0};
        if (mig_history_find(&s->hist, f->version)) {
            mig_lint_file(f, NULL, &one, &mem); /* what it declares, for the files after it */
            continue;
        }
        char *buf = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&buf, &len);
        mig_lint_file(f, out, &one, &mem);
        if (out)
            fclose(out);
        if (one.errors && buf) /* print only the files that stop the run */
            fputs(buf, stderr);
        free(buf);
        n.errors += one.errors;
        n.warnings += one.errors ? one.warnings : 0;
        n.ignored += one.errors ? one.ignored : 0;
    }
    mig_lint_memory_free(&mem);
    if (n.errors == 0)
        return MIG_EXIT_OK;
    summary(stderr, &n);
    mig_fail("refusing to migrate: lint found %d error(s) in the pending migrations; nothing was "
             "applied (fix them, accept one with \"-- migrate:lint-ignore RULE REASON\", or pass "
             "--no-lint)",
             n.errors);
    return MIG_EXIT_INTEGRITY;
}
