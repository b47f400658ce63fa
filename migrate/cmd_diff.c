/* cmd_diff: `migrate diff NAME` and `migrate diff --check` (see schema_diff.h for the plan and
 * scratch.h for the databases). Nothing is written unless the plan verifies: its up applied to the
 * replayed migrations equals schema.sql, its down gives the original back, a second diff is empty.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/commands.h"
#include "migrate/diff.h"
#include "migrate/dump.h"
#include "migrate/lint.h"
#include "migrate/schema_diff.h"
#include "migrate/scratch.h"
#include "migrate/session.h"

static const char *const part_suffix[MIG_PART_COUNT] = {"_enum_values", "", "_validate", "_indexes",
                                                        "_constraints"};

typedef struct {
    const mig_opts *o;
    mig_scratch sc;
    mig_files files;
    mig_rename *renames;
    size_t nrenames;
    mig_schema orig, want;
    mig_plan plan;
    char *text[MIG_PART_COUNT];
    mig_file gen[MIG_PART_COUNT];
    char err[MIG_ERR_LEN];
} run;

static void print_plan(const mig_plan *p, FILE *out)
{
    for (size_t i = 0; i < p->count; i++)
        fprintf(out, "  %s%s\n", p->items[i].what,
                p->items[i].destructive ? " (destructive)"
                : p->items[i].rewrite   ? " (rewrites the table)"
                                        : "");
    for (size_t i = 0; i < p->nproblems; i++)
        fprintf(out, "  %s\n", p->problems[i]);
}

static void print_hints(const mig_plan *p)
{
    for (size_t i = 0; i < p->nhints; i++)
        fprintf(stderr, "migrate: hint: %s\n", p->hints[i]);
}

/* Replays every migration into A and schema.sql into B, reads both, builds the plan. */
static int prepare(run *r, const char *schema_path, const char *schema_sql)
{
    PGconn *a = r->sc.conn[0], *b = r->sc.conn[1];
    for (size_t i = 0; i < r->files.count; i++) {
        const mig_file *f = &r->files.items[i];
        if (mig_scratch_run(a, f->path, f->up, f->up_line, f->no_transaction, r->err) < 0) {
            mig_fail("replaying the migrations into a scratch database failed: %s", r->err);
            return MIG_EXIT_ERROR;
        }
    }
    if (mig_scratch_run(b, schema_path, schema_sql, 1, true, r->err) < 0) {
        mig_fail("loading %s into a scratch database failed: %s", schema_path, r->err);
        return MIG_EXIT_ERROR;
    }
    if (mig_schema_read(a, &r->orig, r->err) < 0 || mig_schema_read(b, &r->want, r->err) < 0 ||
        mig_plan_build(&r->orig, &r->want, r->renames, r->nrenames, &r->plan) < 0) {
        mig_fail("%s", r->err);
        return MIG_EXIT_ERROR;
    }
    return MIG_EXIT_OK;
}

static int by_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The dump of c (dump.h), each column line prefixed with its table's first line and without its
 * trailing ',', lines sorted: the same text for the same schema whatever the column order (a
 * column that diff adds goes last, schema.sql may place it anywhere). malloc'd, NULL with err. */
static char *normal_dump(PGconn *c, char err[MIG_ERR_LEN])
{
    char *d = mig_dump(c, NULL, err);
    if (!d)
        return NULL;
    size_t n = 0, cap = 64, total = 0;
    char **lines = malloc(cap * sizeof *lines), *out = NULL;
    const char *head = "";
    size_t head_len = 0;
    for (char *p = d; lines && *p;) {
        size_t len = strcspn(p, "\n");
        if (len && p[0] != ' ' && p[0] != ')') {
            head = p;
            head_len = len;
        }
        size_t body = len && p[len - 1] == ',' ? len - 1 : len;
        if (n == cap) {
            char **more = realloc(lines, (cap *= 2) * sizeof *lines);
            if (!more)
                break;
            lines = more;
        }
        lines[n] = p[0] == ' ' ? mig_sprintf("%.*s |%.*s", (int)head_len, head, (int)body, p)
                               : mig_sprintf("%.*s", (int)body, p);
        if (!lines[n])
            break;
        total += strlen(lines[n++]) + 1;
        p += len + (p[len] == '\n');
    }
    if (lines) {
        qsort(lines, n, sizeof *lines, by_text);
        out = malloc(total + 1);
    }
    if (out) {
        char *w = out;
        for (size_t i = 0; i < n; i++)
            w += sprintf(w, "%s\n", lines[i]);
        *w = '\0';
    } else {
        snprintf(err, MIG_ERR_LEN, "out of memory");
    }
    for (size_t i = 0; lines && i < n; i++)
        free(lines[i]);
    free(lines);
    free(d);
    return out;
}

/* Compares the dumps of A and B, which catch what the plan does not model (the options of an
 * identity's sequence, a trigger, a function): prints the lines that differ under `title`.
 * Returns the number of differing lines, 1 when a dump fails. */
static int dumps_differ(run *r, const char *title)
{
    char *a = normal_dump(r->sc.conn[0], r->err),
         *b = a ? normal_dump(r->sc.conn[1], r->err) : NULL;
    int n = a && b ? mig_diff_lines(a, b, NULL) : 1;
    if (n > 0) {
        fprintf(stderr, "migrate: error: %s\n", a && b ? title : r->err);
        if (a && b)
            mig_diff_lines(a, b, stderr);
    }
    free(a);
    free(b);
    return n;
}

/* Reads A and diffs it against `target`; prints what remains under `title`. Returns the number of
 * remaining differences (enum values that a down cannot remove are allowed when allow_enum). */
static int remaining(run *r, const mig_schema *target, const char *title, bool allow_enum)
{
    mig_schema now;
    mig_plan p;
    if (mig_schema_read(r->sc.conn[0], &now, r->err) < 0) {
        mig_fail("%s", r->err);
        mig_schema_free(&now);
        return 1;
    }
    int n = mig_plan_build(&now, target, NULL, 0, &p) < 0 ? 1 : (int)p.count;
    for (size_t i = 0; i < p.nproblems; i++)
        n += !(allow_enum && !strncmp(p.problems[i], "enum ", 5));
    if (n) {
        fprintf(stderr, "migrate: error: verification failed: %s; what still differs:\n", title);
        print_plan(&p, stderr);
    }
    mig_plan_free(&p);
    mig_schema_free(&now);
    return n;
}

static int lint_generated(run *r, const char *name, mig_lint_memory *mem);
static int apply_generated(run *r);

/* Renders, lints and applies the generated files to A (up), reverts them (down), applies them
 * again; compares after each step. Returns MIG_EXIT_OK when everything holds. */
static int verify(run *r, const char *name)
{
    /* lint reads the existing files first: it then knows the column types they declare */
    mig_lint_memory mem = {0};
    for (size_t i = 0; i < r->files.count; i++) {
        mig_lint_counts discard = {0};
        mig_lint_file(&r->files.items[i], NULL, &discard, &mem);
    }
    int rc = lint_generated(r, name, &mem);
    mig_lint_memory_free(&mem);
    if (rc != MIG_EXIT_OK)
        return rc;
    return apply_generated(r);
}

/* Renders the generated files and lints them after the existing ones (mem). */
static int lint_generated(run *r, const char *name, mig_lint_memory *mem)
{
    for (int k = 0; k < MIG_PART_COUNT; k++) {
        char stem[512], label[520];
        snprintf(stem, sizeof stem, "%s%s", name, part_suffix[k]);
        snprintf(label, sizeof label, "%s.sql", stem);
        r->text[k] = mig_plan_file(&r->plan, k, stem);
        if (!r->text[k])
            continue;
        if (mig_file_parse(label, r->text[k], strlen(r->text[k]), &r->gen[k], r->err) < 0) {
            mig_fail("generated file is malformed (a bug): %s", r->err);
            return MIG_EXIT_ERROR;
        }
        r->gen[k].path = strdup(label);
        mig_lint_counts n = {0};
        mig_lint_file(&r->gen[k], stderr, &n, mem);
        if (n.errors) {
            mig_fail("the generated %s does not pass lint (a bug): nothing was written", label);
            return MIG_EXIT_ERROR;
        }
    }
    return MIG_EXIT_OK;
}

/* Applies the generated files to A (up), reverts them (down), applies them again; compares after
 * each step. */
static int apply_generated(run *r)
{
    PGconn *a = r->sc.conn[0];
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < MIG_PART_COUNT; k++)
            if (r->text[k] && mig_scratch_run(a, r->gen[k].path, r->gen[k].up, r->gen[k].up_line,
                                              r->gen[k].no_transaction, r->err) < 0) {
                mig_fail("verification failed: the generated up does not apply: %s", r->err);
                return MIG_EXIT_ERROR;
            }
        if (remaining(r, &r->want, "after the up, the database differs from schema.sql", false) ||
            dumps_differ(r, "verification failed: after the up, the database differs from "
                            "schema.sql in what diff does not generate (\"-\": the migrations, "
                            "\"+\": schema.sql); write that change by hand (migrate new)"))
            return MIG_EXIT_ERROR;
        if (pass == 1)
            break;
        bool enum_part = r->text[MIG_PART_ENUM_VALUES] != NULL;
        for (int k = MIG_PART_COUNT; k-- > 0;)
            if (r->text[k] && k != MIG_PART_ENUM_VALUES &&
                mig_scratch_run(a, r->gen[k].path, r->gen[k].down, r->gen[k].down_line,
                                r->gen[k].no_transaction, r->err) < 0) {
                mig_fail("verification failed: the generated down does not apply: %s", r->err);
                return MIG_EXIT_ERROR;
            }
        if (remaining(r, &r->orig, "after the down, the database differs from the original",
                      enum_part))
            return MIG_EXIT_ERROR;
    }
    return MIG_EXIT_OK;
}

/* Writes the files (next versions), then schema.sql from the verified database. */
static int write_all(run *r, const char *name, const char *schema_path)
{
    char path[4096], version[MIG_VERSION_MAX] = "";
    for (int k = 0; k < MIG_PART_COUNT; k++) {
        if (!r->text[k])
            continue;
        char full[512];
        snprintf(full, sizeof full, "%s%s", name, part_suffix[k]);
        if (mig_file_create(r->o->dir, full, path, sizeof path, r->err) < 0 ||
            mig_text_write(path, r->text[k]) < 0) {
            mig_fail("%s", *r->err ? r->err : "cannot write the migration");
            return MIG_EXIT_ERROR;
        }
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        snprintf(version, sizeof version, "%.*s", (int)strspn(base, "0123456789"), base);
        printf("wrote %s%s\n", path, r->gen[k].no_transaction ? " (no transaction)" : "");
    }
    char *dump = mig_dump(r->sc.conn[0], version, r->err);
    if (!dump || mig_text_write(schema_path, dump) < 0) {
        mig_fail("cannot rewrite %s: %s", schema_path, dump ? "write failed" : r->err);
        free(dump);
        return MIG_EXIT_ERROR;
    }
    free(dump);
    printf("rewrote %s in canonical form\n", schema_path);
    return MIG_EXIT_OK;
}

/* An empty plan while the dumps differ: schema.sql changes what diff does not model. */
static bool unmodelled_difference(run *r)
{
    return r->plan.count == 0 && r->plan.nproblems == 0 &&
           dumps_differ(r, r->o->check
                               ? "schema.sql and the migrations disagree in what diff does not "
                                 "generate (\"-\": the migrations, \"+\": schema.sql)"
                               : "schema.sql and the migrations differ in what diff does not "
                                 "generate (\"-\": the migrations, \"+\": schema.sql): write "
                                 "that change by hand (migrate new); nothing was written");
}

static int decide(run *r, const char *schema_path)
{
    const mig_plan *p = &r->plan;
    if (unmodelled_difference(r))
        return MIG_EXIT_INTEGRITY;
    if (r->o->check) {
        if (p->count || p->nproblems) {
            printf("%s and the migrations disagree; a migration would:\n", schema_path);
            print_plan(p, stdout);
            print_hints(p);
            return MIG_EXIT_INTEGRITY;
        }
        if (!r->o->quiet)
            printf("ok: %s matches the migrations\n", schema_path);
        return MIG_EXIT_OK;
    }
    if (p->nproblems) {
        for (size_t i = 0; i < p->nproblems; i++)
            fprintf(stderr, "migrate: error: %s\n", p->problems[i]);
        print_hints(p);
        fprintf(stderr, "migrate: nothing was written\n");
        return MIG_EXIT_INTEGRITY;
    }
    if (p->count == 0) {
        if (!r->o->quiet)
            printf("nothing to do: %s matches the migrations\n", schema_path);
        return MIG_EXIT_OK;
    }
    size_t destructive = 0;
    for (size_t i = 0; i < p->count; i++)
        destructive += p->items[i].destructive;
    if (destructive && !r->o->allow_destructive) {
        for (size_t i = 0; i < p->count; i++)
            if (p->items[i].destructive)
                fprintf(stderr, "migrate: error: destructive: %s: %s\n", p->items[i].what,
                        p->items[i].hazard ? p->items[i].hazard : "");
        print_hints(p);
        fprintf(stderr, "migrate: nothing was written; pass --allow-destructive to generate "
                        "these changes\n");
        return MIG_EXIT_INTEGRITY;
    }
    size_t rewrites = 0;
    for (size_t i = 0; i < p->count; i++)
        rewrites += p->items[i].rewrite;
    if (rewrites && !r->o->allow_rewrite) {
        for (size_t i = 0; i < p->count; i++)
            if (p->items[i].rewrite)
                fprintf(stderr, "migrate: error: rewrite: %s: %s\n", p->items[i].what,
                        p->items[i].hazard ? p->items[i].hazard : "");
        print_hints(p);
        fprintf(stderr,
                "migrate: nothing was written; pass --allow-rewrite to generate these changes "
                "(fine for a small table), or do it online by hand: add a column of the new type, "
                "backfill it in batches, swap the columns in a short transaction\n");
        return MIG_EXIT_INTEGRITY;
    }
    print_hints(p);
    return -1; /* go on */
}

int mig_cmd_diff(const mig_opts *o)
{
    const char *dev = o->dev_url ? o->dev_url : getenv("MIGRATE_DEV_URL");
    if (!dev || !*dev) {
        mig_fail("migrate diff needs --dev-url URL or MIGRATE_DEV_URL: a scratch server of the "
                 "same major version where the role may create databases");
        return MIG_EXIT_USAGE;
    }
    run r = {.o = o};
    char name[MIG_NAME_MAX] = "";
    if (!o->check && mig_name_clean(o->arg, name, r.err) < 0) {
        mig_fail("%s", r.err);
        return MIG_EXIT_USAGE;
    }
    char schema_path[4096];
    snprintf(schema_path, sizeof schema_path, "%s/schema.sql", o->dir);
    char *schema_sql = mig_text_read(schema_path);
    int rc = MIG_EXIT_OK;
    if (!schema_sql) {
        mig_fail("cannot read %s: diff generates the migration from it (write it by hand or with "
                 "`migrate dump`)",
                 schema_path);
        return MIG_EXIT_USAGE;
    }
    if (mig_files_load(o->dir, &r.files, r.err) < 0) {
        mig_fail("%s", r.err);
        rc = MIG_EXIT_USAGE;
    }
    int nr = rc == MIG_EXIT_OK ? mig_renames_parse(schema_sql, &r.renames) : 0;
    r.nrenames = nr > 0 ? (size_t)nr : 0;
    if (rc == MIG_EXIT_OK && mig_scratch_open(&r.sc, dev, r.err) < 0) {
        if (!mig_scratch_interrupted())
            mig_fail("%s", r.err);
        rc = MIG_EXIT_ERROR;
    }
    if (rc == MIG_EXIT_OK)
        rc = prepare(&r, schema_path, schema_sql);
    if (rc == MIG_EXIT_OK) {
        int d = decide(&r, schema_path);
        rc = d >= 0 ? d : verify(&r, name);
        if (d < 0 && rc == MIG_EXIT_OK) {
            for (size_t i = 0; i < r.plan.count; i++)
                if (r.plan.items[i].hazard)
                    fprintf(stderr, "migrate: hazard: %s: %s\n", r.plan.items[i].what,
                            r.plan.items[i].hazard);
            rc = write_all(&r, name, schema_path);
        }
    }
    mig_scratch_close(&r.sc);
    if (mig_scratch_interrupted()) {
        fprintf(stderr, "migrate: interrupted: the scratch databases were dropped, nothing was "
                        "written\n");
        rc = 130;
    }
    for (int k = 0; k < MIG_PART_COUNT; k++) {
        free(r.text[k]);
        if (r.text[k] || r.gen[k].path)
            mig_file_free(&r.gen[k]);
    }
    mig_plan_free(&r.plan);
    mig_schema_free(&r.orig);
    mig_schema_free(&r.want);
    mig_renames_free(r.renames, r.nrenames);
    mig_files_free(&r.files);
    free(schema_sql);
    return rc;
}
