/* schema_read: a database's schema as a flat list of objects, for `migrate diff`.
 *
 * Read with the same catalog functions as `migrate dump` (format_type, pg_get_expr,
 * pg_get_constraintdef, pg_get_indexdef, pg_get_viewdef, search_path = pg_catalog), so two
 * databases on one server describe equal objects with equal text. Identifiers come quoted and
 * schema-qualified, ready to paste into SQL. Objects of kinds `migrate diff` cannot change are
 * read too (kind MIG_OBJ_OTHER) so that a difference in them is reported, never skipped. */
#ifndef MIGRATE_SCHEMA_READ_H
#define MIGRATE_SCHEMA_READ_H

#include <libpq-fe.h>
#include <stddef.h>

#include "migrate/file.h"

enum {
    MIG_OBJ_SCHEMA = 'S',     /* key: schema */
    MIG_OBJ_EXTENSION = 'E',  /* key: name; def: its schema */
    MIG_OBJ_ENUM = 'T',       /* key: s.type; def: 'a', 'b'; a: labels separated by \x1f */
    MIG_OBJ_SEQUENCE = 'Q',   /* key: s.seq; def: AS .. INCREMENT .. CACHE .. [NO] CYCLE */
    MIG_OBJ_TABLE = 'R',      /* key: s.t; def: "UNLOGGED " or ""; a: partition key or NULL */
    MIG_OBJ_COLUMN = 'C',     /* key: s.t.c; def: type [COLLATE ..]; a: default; b: "t" when NOT
                                 NULL; c: identity "a"/"d"/""; d: generated expression */
    MIG_OBJ_CONSTRAINT = 'K', /* key: s.t.name; def: pg_get_constraintdef; a: contype; b: "t" when
                                 validated; c: pg_get_indexdef of its index (p, u) */
    MIG_OBJ_INDEX = 'I',      /* key: s.index; def: pg_get_indexdef */
    MIG_OBJ_VIEW = 'V',       /* key: s.v; def: pg_get_viewdef; a: "|s.t|s.u|" tables it reads */
    MIG_OBJ_COMMENT = 'M',    /* key: "TABLE s.t", "COLUMN s.t.c", ...; def: the comment */
    MIG_OBJ_OTHER = 'O',      /* key: "function s.f(int)", ...; def: its definition */
};

typedef struct mig_obj {
    char kind;
    char *key;   /* unique within the kind */
    char *table; /* columns, constraints, indexes: the table's key; else NULL */
    char *name;  /* the object's own quoted name (column, constraint, index without schema) */
    char *def, *a, *b, *c, *d; /* see the kinds; NULL when SQL NULL */
} mig_obj;

typedef struct mig_schema {
    mig_obj *items; /* ordered by kind, table, column number, key */
    size_t count;
} mig_schema;

/* Reads the schema of the database `c` is connected to. Returns 0, or -1 with err. Free with
 * mig_schema_free either way. */
int mig_schema_read(PGconn *c, mig_schema *out, char err[MIG_ERR_LEN]);

void mig_schema_free(mig_schema *s);

/* The object of `kind` with `key`, or NULL. */
const mig_obj *mig_schema_find(const mig_schema *s, char kind, const char *key);

#endif
