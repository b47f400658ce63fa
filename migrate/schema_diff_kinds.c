/* schema_diff_kinds: the objects beyond tables (see schema_diff.h): schemas, extensions, enums,
 * sequences, views, comments, and the kinds diff cannot change (reported when they differ). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/schema_diff.h"

/* Labels separated by \x1f into a NULL-terminated array (malloc'd, strings point into copy). */
static char **labels(const char *joined, char **copy, size_t *n)
{
    *copy = strdup(joined ? joined : "");
    *n = 0;
    char **v = calloc(strlen(*copy) + 2, sizeof *v);
    if (!*copy || !v)
        return v;
    if (!**copy)
        return v;
    for (char *p = *copy;; p++) {
        v[(*n)++] = p;
        p = strchr(p, '\x1f');
        if (!p)
            break;
        *p = '\0';
    }
    return v;
}

/* ALTER TYPE ... ADD VALUE for the labels b has beyond a, or a problem when a's labels are not
 * all in b in the same order. */
static int enum_values(mig_plan *p, const mig_obj *a, const mig_obj *b)
{
    char *ca, *cb;
    size_t na, nb;
    char **la = labels(a->a, &ca, &na), **lb = labels(b->a, &cb, &nb);
    int rc = 0;
    size_t j = 0;
    for (size_t i = 0; i < nb && j < na; i++)
        j += !strcmp(lb[i], la[j]);
    if (!la || !lb) {
        rc = -1;
    } else if (j < na) {
        rc = mig_plan_note(p, false,
                           "enum %s: values removed or reordered (%s -> %s): PostgreSQL cannot do "
                           "that in place; write this one by hand",
                           b->key, a->def, b->def);
    } else {
        for (size_t i = 0; i < nb; i++) {
            bool old = false;
            for (size_t k = 0; k < na; k++)
                old |= !strcmp(la[k], lb[i]);
            if (old)
                continue;
            char *v = mig_quote_literal(lb[i]);
            char *anchor = i > 0 ? mig_quote_literal(lb[i - 1]) : mig_quote_literal(lb[i + 1]);
            char what[512];
            snprintf(what, sizeof what, "add value %s to enum %s", v, b->key);
            rc |= mig_plan_add(p, MIG_PART_ENUM_VALUES, 0, false,
                               "an enum value cannot be removed: this file has no down", what,
                               mig_sprintf("ALTER TYPE %s ADD VALUE IF NOT EXISTS %s %s %s;\n",
                                           b->key, v, i > 0 ? "AFTER" : "BEFORE", anchor),
                               NULL);
            free(v);
            free(anchor);
        }
    }
    free(la);
    free(lb);
    free(ca);
    free(cb);
    return rc;
}

typedef struct {
    char kind;
    const char *noun;
    int create_phase, drop_phase;
} kind_info;

static const kind_info kinds[] = {
    {MIG_OBJ_SCHEMA, "schema", MIG_PH_CREATE_BASE, MIG_PH_DROP_BASE},
    {MIG_OBJ_EXTENSION, "extension", MIG_PH_CREATE_BASE, MIG_PH_DROP_BASE},
    {MIG_OBJ_ENUM, "enum", MIG_PH_CREATE_BASE, MIG_PH_DROP_BASE},
    {MIG_OBJ_SEQUENCE, "sequence", MIG_PH_CREATE_BASE, MIG_PH_DROP_BASE},
    {MIG_OBJ_VIEW, "view", MIG_PH_CREATE_VIEW, MIG_PH_DROP_VIEW},
    {MIG_OBJ_COMMENT, "comment on", MIG_PH_COMMENT, MIG_PH_DROP_COMMENT},
};

static char *create_sql(const mig_obj *o)
{
    switch (o->kind) {
    case MIG_OBJ_SCHEMA:
        return mig_sprintf("CREATE SCHEMA %s;\n", o->key);
    case MIG_OBJ_EXTENSION:
        return mig_sprintf("CREATE EXTENSION IF NOT EXISTS %s WITH SCHEMA %s;\n", o->key, o->def);
    case MIG_OBJ_ENUM:
        return mig_sprintf("CREATE TYPE %s AS ENUM (%s);\n", o->key, o->def);
    case MIG_OBJ_SEQUENCE:
        return mig_sprintf("CREATE SEQUENCE %s %s;\n", o->key, o->def);
    case MIG_OBJ_VIEW:
        return mig_sprintf("CREATE VIEW %s AS\n%s\n", o->key, o->def);
    default: {
        char *lit = mig_quote_literal(o->def);
        char *s = lit ? mig_sprintf("COMMENT ON %s IS %s;\n", o->key, lit) : NULL;
        free(lit);
        return s;
    }
    }
}

static char *drop_sql(const mig_obj *o)
{
    switch (o->kind) {
    case MIG_OBJ_SCHEMA:
        return mig_sprintf("DROP SCHEMA %s;\n", o->key);
    case MIG_OBJ_EXTENSION:
        return mig_sprintf("DROP EXTENSION %s;\n", o->key);
    case MIG_OBJ_ENUM:
        return mig_sprintf("DROP TYPE %s;\n", o->key);
    case MIG_OBJ_SEQUENCE:
        return mig_sprintf("DROP SEQUENCE %s;\n", o->key);
    case MIG_OBJ_VIEW:
        return mig_sprintf("DROP VIEW %s;\n", o->key);
    default:
        return mig_sprintf("COMMENT ON %s IS NULL;\n", o->key);
    }
}

/* True when view v reads a table listed in `retyped` ("|s.t|...|"). */
static bool reads_retyped(const mig_obj *v, const char *retyped)
{
    const char *p = v->a ? v->a : "";
    while ((p = strchr(p, '|')) && p[1]) {
        size_t n = strcspn(p + 1, "|");
        char key[600];
        snprintf(key, sizeof key, "|%.*s|", (int)n, p + 1);
        if (strstr(retyped, key))
            return true;
        p += n + 1;
    }
    return false;
}

static int one_kind(const mig_schema *A, const mig_schema *B, const kind_info *k,
                    const char *retyped, mig_plan *p)
{
    int rc = 0;
    char what[700];
    bool destructive_drop = k->kind != MIG_OBJ_VIEW && k->kind != MIG_OBJ_COMMENT;
    for (size_t i = 0; i < B->count; i++) {
        const mig_obj *b = &B->items[i];
        if (b->kind != k->kind)
            continue;
        const mig_obj *a = mig_schema_find(A, b->kind, b->key);
        if (a && !strcmp(a->def, b->def) && !(k->kind == MIG_OBJ_VIEW && reads_retyped(a, retyped)))
            continue;
        if (a && k->kind == MIG_OBJ_ENUM) {
            rc |= enum_values(p, a, b);
            continue;
        }
        snprintf(what, sizeof what, "%s %s %s", a ? "change" : "create", k->noun, b->key);
        if (a && k->kind == MIG_OBJ_SEQUENCE) {
            rc |= mig_plan_add(p, MIG_PART_MAIN, k->create_phase, false, NULL, what,
                               mig_sprintf("ALTER SEQUENCE %s %s;\n", b->key, b->def),
                               mig_sprintf("ALTER SEQUENCE %s %s;\n", a->key, a->def));
            continue;
        }
        if (a && k->kind == MIG_OBJ_EXTENSION) {
            rc |= mig_plan_add(p, MIG_PART_MAIN, k->create_phase, false, NULL, what,
                               mig_sprintf("ALTER EXTENSION %s SET SCHEMA %s;\n", b->key, b->def),
                               mig_sprintf("ALTER EXTENSION %s SET SCHEMA %s;\n", a->key, a->def));
            continue;
        }
        if (a && k->kind == MIG_OBJ_SCHEMA)
            continue;
        if (a && k->kind == MIG_OBJ_VIEW) /* dropped first, created again below */
            rc |= mig_plan_add(p, MIG_PART_MAIN, k->drop_phase, false, NULL, what, drop_sql(a),
                               create_sql(a));
        /* a comment that changes is set in one statement; its down sets the old text */
        char *down = a && k->kind == MIG_OBJ_COMMENT ? create_sql(a) : drop_sql(b);
        rc |=
            mig_plan_add(p, MIG_PART_MAIN, k->create_phase, false, NULL, what, create_sql(b), down);
    }
    for (size_t i = 0; i < A->count; i++) {
        const mig_obj *a = &A->items[i];
        if (a->kind != k->kind || mig_schema_find(B, a->kind, a->key))
            continue;
        snprintf(what, sizeof what, "drop %s %s", k->noun, a->key);
        rc |= mig_plan_add(p, MIG_PART_MAIN, k->drop_phase, destructive_drop,
                           destructive_drop ? "it is dropped with what it holds" : NULL, what,
                           drop_sql(a), create_sql(a));
    }
    return rc;
}

int mig_plan_other_kinds(const mig_schema *A, const mig_schema *B, const char *retyped, mig_plan *p)
{
    int rc = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        rc |= one_kind(A, B, &kinds[i], retyped, p);
    for (size_t i = 0; i < B->count; i++) {
        const mig_obj *b = &B->items[i], *a = mig_schema_find(A, b->kind, b->key);
        if (b->kind == MIG_OBJ_OTHER && (!a || strcmp(a->def, b->def)))
            rc |= mig_plan_note(p, false,
                                "cannot diff %s (%s in schema.sql): write this part of the "
                                "migration by hand",
                                b->key, a ? "changed" : "added");
    }
    for (size_t i = 0; i < A->count; i++) {
        const mig_obj *a = &A->items[i];
        if (a->kind == MIG_OBJ_OTHER && !mig_schema_find(B, a->kind, a->key))
            rc |= mig_plan_note(p, false,
                                "cannot diff %s (removed from schema.sql): write this part of "
                                "the migration by hand",
                                a->key);
    }
    return rc;
}
