/* schema_rename: the rename annotations of schema.sql (schema_diff.h): parsing them, and doing the
 * declared table renames on the current schema before it is diffed, so that a renamed table's
 * columns, constraints and indexes compare equal instead of being dropped and created again. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/schema_diff.h"

/* Dots outside double quotes. */
static int dots(const char *s)
{
    int n = 0;
    bool q = false;
    for (; *s; s++) {
        if (*s == '"')
            q = !q;
        n += *s == '.' && !q;
    }
    return n;
}

int mig_renames_parse(const char *sql, mig_rename **out)
{
    *out = NULL;
    int n = 0;
    for (const char *line = sql; line && *line;) {
        char target[512], from[256];
        if (sscanf(line, "-- migrate:renamed %511s from %255s", target, from) == 2 &&
            dots(target) >= 1) {
            mig_rename *a = realloc(*out, (size_t)(n + 1) * sizeof *a);
            if (!a)
                return -1;
            *out = a;
            char *dot = strrchr(target, '.');
            bool table = dots(target) == 1;
            a[n].table = table ? strdup(target) : strndup(target, (size_t)(dot - target));
            a[n].to = table ? NULL : strdup(dot + 1);
            a[n].from = strdup(from);
            n++;
        }
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    return n;
}

void mig_renames_free(mig_rename *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].table);
        free(r[i].from);
        free(r[i].to);
    }
    free(r);
}

/* s with every `old` replaced by `new` (malloc'd); NULL stays NULL. */
static char *replace(const char *s, const char *old, const char *new)
{
    if (!s)
        return NULL;
    size_t lo = strlen(old), ln = strlen(new), n = 0;
    for (const char *p = s; (p = strstr(p, old)); p += lo)
        n++;
    char *r = malloc(strlen(s) + n * (ln > lo ? ln - lo : 0) + 1), *o = r;
    if (!r)
        return NULL;
    for (const char *p = s;;) {
        const char *h = strstr(p, old);
        if (!h) {
            strcpy(o, p);
            break;
        }
        memcpy(o, p, (size_t)(h - p));
        o += h - p;
        memcpy(o, new, ln);
        o += ln;
        p = h + lo;
    }
    return r;
}

/* One object with the table key `old` renamed to `new` wherever it is named. */
static void rename_in(mig_obj *o, const char *old, const char *new)
{
    char of[600], nf[600];
    char *const fields[] = {o->key, o->table, o->def, o->a, o->c};
    char *out[5];
    for (int i = 0; i < 5; i++) {
        char *v = fields[i];
        if (v && !strcmp(v, old)) {
            out[i] = strdup(new);
            continue;
        }
        snprintf(of, sizeof of, "%s.", old); /* column keys: s.t.c */
        snprintf(nf, sizeof nf, "%s.", new);
        char *a = v && !strncmp(v, of, strlen(of)) ? mig_sprintf("%s%s", nf, v + strlen(of))
                  : v                              ? strdup(v)
                                                   : NULL;
        snprintf(of, sizeof of, " %s ", old); /* TABLE s.t, ON s.t USING */
        snprintf(nf, sizeof nf, " %s ", new);
        char *b = replace(a, of, nf);
        snprintf(of, sizeof of, " %s.", old); /* COLUMN s.t.c */
        snprintf(nf, sizeof nf, " %s.", new);
        char *c = replace(b, of, nf);
        snprintf(of, sizeof of, " %s(", old); /* REFERENCES s.t(id) */
        snprintf(nf, sizeof nf, " %s(", new);
        char *d = replace(c, of, nf);
        snprintf(of, sizeof of, "|%s|", old); /* a view's tables */
        snprintf(nf, sizeof nf, "|%s|", new);
        out[i] = replace(d, of, nf);
        size_t lo = strlen(old), lv = out[i] ? strlen(out[i]) : 0;
        if (lv > lo && out[i][lv - lo - 1] == ' ' && !strcmp(out[i] + lv - lo, old)) {
            char *e = mig_sprintf("%.*s%s", (int)(lv - lo), out[i], new); /* "trigger t on s.t" */
            free(out[i]);
            out[i] = e;
        }
        free(a);
        free(b);
        free(c);
        free(d);
    }
    if (o->kind == MIG_OBJ_COMMENT && o->key && !strncmp(o->key, "TABLE ", 6) &&
        !strcmp(o->key + 6, old)) {
        free(out[0]);
        out[0] = mig_sprintf("TABLE %s", new);
    }
    for (int i = 0; i < 5; i++)
        free(fields[i]);
    o->key = out[0];
    o->table = out[1];
    o->def = out[2];
    o->a = out[3];
    o->c = out[4];
}

static char *dupn(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* "a|b|..." of a table's columns (name and type, in name order is not needed: attnum order). */
static char *columns_of(const mig_schema *s, const char *table)
{
    char *r = strdup("");
    for (size_t i = 0; r && i < s->count; i++) {
        const mig_obj *o = &s->items[i];
        if (o->kind != MIG_OBJ_COLUMN || strcmp(o->table, table))
            continue;
        char *n = mig_sprintf("%s%s %s|", r, o->name, o->def);
        free(r);
        r = n;
    }
    return r;
}

static int hints(const mig_schema *A, const mig_schema *B, mig_plan *p)
{
    int rc = 0;
    for (size_t i = 0; i < A->count; i++) {
        const mig_obj *a = &A->items[i];
        if (a->kind != MIG_OBJ_TABLE || mig_schema_find(B, MIG_OBJ_TABLE, a->key))
            continue;
        char *ca = columns_of(A, a->key);
        for (size_t k = 0; ca && k < B->count; k++) {
            const mig_obj *b = &B->items[k];
            if (b->kind != MIG_OBJ_TABLE || mig_schema_find(A, MIG_OBJ_TABLE, b->key))
                continue;
            char *cb = columns_of(B, b->key);
            const char *old = strrchr(a->key, '.');
            if (cb && !strcmp(ca, cb))
                rc |= mig_plan_note(p, true,
                                    "possible rename: table %s dropped and %s created with the "
                                    "same columns. If it is a rename, say so in schema.sql with "
                                    "the line \"-- migrate:renamed %s from %s\" and run diff again",
                                    a->key, b->key, b->key, old ? old + 1 : a->key);
            free(cb);
        }
        free(ca);
    }
    return rc;
}

int mig_schema_rename_tables(const mig_schema *A, const mig_schema *B, const mig_rename *r,
                             size_t n, mig_schema *out, mig_plan *p)
{
    out->count = 0;
    out->items = calloc(A->count + 1, sizeof *out->items);
    if (!out->items)
        return -1;
    for (size_t i = 0; i < A->count; i++) {
        const mig_obj *a = &A->items[i];
        out->items[out->count++] =
            (mig_obj){a->kind,    dupn(a->key), dupn(a->table), dupn(a->name), dupn(a->def),
                      dupn(a->a), dupn(a->b),   dupn(a->c),     dupn(a->d)};
    }
    int rc = 0;
    for (size_t k = 0; k < n; k++) {
        if (r[k].to)
            continue;
        char *schema = strndup(r[k].table, (size_t)(strrchr(r[k].table, '.') - r[k].table));
        char *old = schema ? mig_sprintf("%s.%s", schema, r[k].from) : NULL;
        const char *newname = strrchr(r[k].table, '.') + 1;
        if (old && mig_schema_find(A, MIG_OBJ_TABLE, old) &&
            !mig_schema_find(A, MIG_OBJ_TABLE, r[k].table) &&
            mig_schema_find(B, MIG_OBJ_TABLE, r[k].table)) {
            char what[1024];
            snprintf(what, sizeof what, "rename table %s to %s", old, newname);
            rc |= mig_plan_add(
                p, MIG_PART_MAIN, MIG_PH_CREATE_TABLE, false,
                "running code that uses the old name breaks at once", what,
                mig_sprintf("-- migrate:lint-ignore rename-table declared in schema.sql "
                            "(-- migrate:renamed)\nALTER TABLE %s RENAME TO %s;\n",
                            old, newname),
                mig_sprintf("ALTER TABLE %s RENAME TO %s;\n", r[k].table, r[k].from));
            for (size_t i = 0; i < out->count; i++)
                rename_in(&out->items[i], old, r[k].table);
        }
        free(schema);
        free(old);
    }
    return rc | hints(out, B, p);
}
