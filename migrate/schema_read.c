/* schema_read: see schema_read.h. One catalog query (migrate/sql/schema_read.sql), one row per
 * object: (kind, key, table, name, def, a, b, c, d, ord). */
#include "migrate/schema_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The catalog query, from migrate/sql/schema_read.sql (compiled in: migrate/CMakeLists.txt). */
#include "sql/schema_read.sql.h"

static char *dup_or_null(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

int mig_schema_read(PGconn *c, mig_schema *out, char err[MIG_ERR_LEN])
{
    out->items = NULL;
    out->count = 0;
    PGresult *r = PQexec(c, "SELECT set_config('search_path', 'pg_catalog', false)");
    PQclear(r);
    r = PQexecParams(c, migrate_sql_schema_read, 0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *m = PQresultErrorMessage(r);
        snprintf(err, MIG_ERR_LEN, "reading the schema from the catalogs failed: %.*s",
                 (int)strcspn(m, "\n"), m);
        PQclear(r);
        PQclear(PQexec(c, "RESET search_path"));
        return -1;
    }
    int n = PQntuples(r);
    out->items = calloc((size_t)n + 1, sizeof *out->items);
    if (!out->items) {
        PQclear(r);
        snprintf(err, MIG_ERR_LEN, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        mig_obj *o = &out->items[out->count++];
        o->kind = PQgetvalue(r, i, 0)[0];
        o->key = dup_or_null(r, i, 1);
        o->table = dup_or_null(r, i, 2);
        o->name = dup_or_null(r, i, 3);
        o->def = dup_or_null(r, i, 4);
        o->a = dup_or_null(r, i, 5);
        o->b = dup_or_null(r, i, 6);
        o->c = dup_or_null(r, i, 7);
        o->d = dup_or_null(r, i, 8);
        if (!o->def)
            o->def = strdup("");
    }
    PQclear(r);
    PQclear(PQexec(c, "RESET search_path"));
    return 0;
}

void mig_schema_free(mig_schema *s)
{
    for (size_t i = 0; i < s->count; i++) {
        mig_obj *o = &s->items[i];
        free(o->key);
        free(o->table);
        free(o->name);
        free(o->def);
        free(o->a);
        free(o->b);
        free(o->c);
        free(o->d);
    }
    free(s->items);
    s->items = NULL;
    s->count = 0;
}

const mig_obj *mig_schema_find(const mig_schema *s, char kind, const char *key)
{
    for (size_t i = 0; i < s->count; i++)
        if (s->items[i].kind == kind && !strcmp(s->items[i].key, key))
            return &s->items[i];
    return NULL;
}
