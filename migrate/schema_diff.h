/* schema_diff: the changes that take one schema (the migrations replayed) to another (schema.sql),
 * for `migrate diff`.
 *
 * Each change has its up SQL, the SQL that reverts it, the file it belongs in, and its hazards.
 * Changes to tables that exist already are online-safe: indexes CONCURRENTLY in a no-transaction
 * file; CHECK and FOREIGN KEY added NOT VALID, then validated in a later no-transaction file (the
 * ADD's ACCESS EXCLUSIVE lock is released before the scan); SET NOT NULL through such a CHECK;
 * UNIQUE / PRIMARY KEY through a unique index built concurrently, then ADD CONSTRAINT ... USING
 * INDEX (a later file); a volatile default set after the column is added. Tables created by the
 * same migration get plain DDL. A change the module cannot express (an enum value removed, a
 * function changed, ...) becomes a problem: the caller writes nothing. Renames are never guessed:
 * "-- migrate:renamed <table>.<new column> from <old column>" in schema.sql declares one, and a
 * drop + add of the same type in one table gives a hint pointing at that annotation. Pure. */
#ifndef MIGRATE_SCHEMA_DIFF_H
#define MIGRATE_SCHEMA_DIFF_H

#include <stdbool.h>
#include <stddef.h>

#include "migrate/schema_read.h"

/* The generated files, in version order. */
enum {
    MIG_PART_ENUM_VALUES, /* no transaction: ALTER TYPE ... ADD VALUE, before anything uses them */
    MIG_PART_MAIN,        /* one transaction */
    MIG_PART_VALIDATE,    /* no transaction: VALIDATE CONSTRAINT (and the SET NOT NULL it enables)
                             commit one by one, never in the transaction that added the constraint
                             NOT VALID (its ACCESS EXCLUSIVE lock would last through the scan) */
    MIG_PART_INDEXES,     /* no transaction: CREATE/DROP INDEX CONCURRENTLY */
    MIG_PART_CONSTRAINTS, /* one transaction: ADD CONSTRAINT ... USING INDEX */
    MIG_PART_COUNT
};

typedef struct mig_change {
    int part, phase;  /* file, then order inside it */
    size_t seq;       /* creation order, breaks ties */
    char *what;       /* "add column public.t.x" */
    char *up;         /* SQL ending in ";\n" (may hold a -- migrate:lint-ignore line) */
    char *down;       /* the SQL that reverts it, or NULL when it cannot be reverted */
    char *hazard;     /* or NULL */
    bool destructive; /* data may be lost: needs --allow-destructive */
    bool rewrite;     /* lossless, but the table is rewritten under ACCESS EXCLUSIVE:
                         needs --allow-rewrite */
} mig_change;

typedef struct mig_plan {
    mig_change *items; /* sorted by part, phase, seq after mig_plan_build */
    size_t count;
    char **problems; /* "cannot diff ...": nothing may be written */
    size_t nproblems;
    char **hints; /* "possible rename ..." */
    size_t nhints;
} mig_plan;

/* A rename declared in schema.sql: "-- migrate:renamed public.tasks.label from name" (a column:
 * table "public.tasks", to "label", from "name") or "-- migrate:renamed public.jobs from tasks" (a
 * table: table "public.jobs", to NULL, from "tasks", same schema). Quoted as in mig_obj keys. */
typedef struct mig_rename {
    char *table, *from, *to;
} mig_rename;

/* Builds the changes from `from` to `to`. Returns 0, or -1 when out of memory. Free the plan with
 * mig_plan_free either way. */
int mig_plan_build(const mig_schema *from, const mig_schema *to, const mig_rename *renames,
                   size_t nrenames, mig_plan *out);

void mig_plan_free(mig_plan *p);

/* The text of the file for `part` (header comment, directives, up, down in reverse order), or NULL
 * when the part has no change. malloc'd. */
char *mig_plan_file(const mig_plan *p, int part, const char *name);

/* Reads the "-- migrate:renamed" lines of schema.sql. Returns the
 * number found (array malloc'd into *out; free with mig_renames_free), -1 when out of memory. */
int mig_renames_parse(const char *schema_sql, mig_rename **out);
void mig_renames_free(mig_rename *r, size_t n);

/* Internal to schema_diff*.c. Phases of the main file, in order: */
enum {
    MIG_PH_CREATE_BASE,  /* schemas, extensions, enum types, sequences */
    MIG_PH_DROP_VIEW,    /* views that go or are recreated */
    MIG_PH_DROP_COMMENT, /* comments that go (before their object) */
    MIG_PH_DROP_CONSTRAINT,
    MIG_PH_DROP_INDEX,
    MIG_PH_CREATE_TABLE,
    MIG_PH_COLUMN,
    MIG_PH_DROP_TABLE,
    MIG_PH_ADD_CONSTRAINT,
    MIG_PH_NEW_INDEX,
    MIG_PH_CREATE_VIEW,
    MIG_PH_COMMENT,
    MIG_PH_DROP_BASE, /* sequences, enum types, extensions, schemas that go */
};
/* Adds a change taking ownership of up and down (malloc'd; down may be NULL). Returns 0 or -1. */
int mig_plan_add(mig_plan *p, int part, int phase, bool destructive, const char *hazard,
                 const char *what, char *up, char *down);
/* Adds a problem (hint false) or a hint. Returns 0 or -1. */
int mig_plan_note(mig_plan *p, bool hint, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Copies `from` into *out with each declared table rename done (the table's key, its columns',
 * constraints', indexes' and comments' keys and the definitions that name it), and adds the
 * ALTER TABLE ... RENAME TO changes; adds a "possible rename" hint for a dropped and a created
 * table with the same columns. Returns 0 or -1 (out of memory); free *out either way. */
int mig_schema_rename_tables(const mig_schema *from, const mig_schema *to,
                             const mig_rename *renames, size_t n, mig_schema *out, mig_plan *p);
char *mig_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *mig_quote_literal(const char *s);
/* the objects beyond tables: schemas, extensions, enums, sequences, views, comments, others */
/* `retyped`: "|s.t|...|" tables with a column whose type changes (their views are recreated). */
int mig_plan_other_kinds(const mig_schema *from, const mig_schema *to, const char *retyped,
                         mig_plan *p);

#endif
