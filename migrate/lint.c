/* lint: see lint.h. libpg_query returns the parse tree as JSON; jansson walks it. */
#include "migrate/lint.h"

#include <jansson.h>
#include <pg_query.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "migrate/split.h"

#define NO_TX "in a \"-- migrate:no-transaction\" file"

typedef struct {
    int line, col;
    char rule[64];
    bool has_reason;
    bool used;
    size_t stmt; /* index of the statement it applies to */
} ignore;

typedef struct {
    const char *path;
    bool no_tx;
    FILE *out;
    mig_lint_counts *counts;
    const mig_stmt *cur; /* the statement being checked, NULL for a finding at (line, col) */
    int at;              /* offset in cur->sql the finding points at, -1 for its start */
    int line, col;
    size_t stmt; /* index of cur */
    mig_lint_memory *mem;
    ignore *ign;
    size_t nign;
    char *seen[256]; /* "t:<table>" created here, "c:<table>.<constraint>" a NOT NULL check and
                        its column, "n:<table>.<column>" validated as not null, "a:<table>.<con>"
                        added NOT VALID here, "v:<table>" a constraint added by an earlier file
                        validated here */
    char *seen_val[256];
    size_t nseen;
} ctx;

static const mig_lint_rule *rule_by_id(const char *id)
{
    for (const mig_lint_rule *r = mig_lint_rules; r->id; r++)
        if (!strcmp(r->id, id))
            return r;
    return NULL;
}

static void remember(ctx *c, const char *kind, const char *a, const char *b, const char *val)
{
    if (c->nseen >= sizeof c->seen / sizeof *c->seen)
        return;
    size_t n = strlen(kind) + strlen(a) + (b ? strlen(b) : 0) + 3;
    char *k = malloc(n);
    if (!k)
        return;
    snprintf(k, n, "%s%s%s%s", kind, a, b ? "." : "", b ? b : "");
    c->seen_val[c->nseen] = val ? strdup(val) : NULL;
    c->seen[c->nseen++] = k;
}

static const char *recalled(const ctx *c, const char *kind, const char *a, const char *b)
{
    char k[512];
    snprintf(k, sizeof k, "%s%s%s%s", kind, a, b ? "." : "", b ? b : "");
    for (size_t i = 0; i < c->nseen; i++)
        if (!strcmp(c->seen[i], k))
            return c->seen_val[i] ? c->seen_val[i] : "";
    return NULL;
}

static void finding(ctx *c, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void finding(ctx *c, const char *id, const char *fmt, ...)
{
    const mig_lint_rule *r = rule_by_id(id);
    for (size_t i = 0; i < c->nign; i++)
        if (c->ign[i].stmt == c->stmt && !strcmp(c->ign[i].rule, id) && c->ign[i].has_reason) {
            c->counts->ignored++;
            c->ign[i].used = true;
            return;
        }
    if (r->error)
        c->counts->errors++;
    else
        c->counts->warnings++;
    if (!c->out)
        return;
    int line = c->line, col = c->col;
    if (c->cur) {
        line = c->cur->line;
        col = c->cur->col;
        for (int i = 0; i < c->at && c->cur->sql[i]; i++) {
            col = c->cur->sql[i] == '\n' ? 1 : col + 1;
            line += c->cur->sql[i] == '\n';
        }
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(c->out, "%s:%d:%d: %s: %s", c->path, line, col, id, r->error ? "" : "warning: ");
    vfprintf(c->out, fmt, ap);
    va_end(ap);
    fprintf(c->out, "\n    safe: %s\n", r->safe);
}

/* jansson helpers over libpg_query's JSON: nodes are {"TypeName": {fields}}. */
static json_t *field(json_t *o, const char *k)
{
    return json_is_object(o) ? json_object_get(o, k) : NULL;
}
static const char *sfield(json_t *o, const char *k)
{
    const char *s = json_string_value(field(o, k));
    return s ? s : "";
}
static bool flag(json_t *o, const char *k)
{
    return json_is_true(field(o, k));
}
static const char *node_type(json_t *n)
{
    void *it = json_is_object(n) ? json_object_iter(n) : NULL;
    return it ? json_object_iter_key(it) : "";
}
static json_t *node_body(json_t *n)
{
    void *it = json_is_object(n) ? json_object_iter(n) : NULL;
    return it ? json_object_iter_value(it) : NULL;
}
/* The last String of a name list ([{"String":{"sval":"pg_catalog"}},{"String":{"sval":"int4"}}]).
 */
static const char *last_name(json_t *list)
{
    size_t n = json_array_size(list);
    return n ? sfield(field(json_array_get(list, n - 1), "String"), "sval") : "";
}

/* Points the next findings at a node's "location" (when it has one). */
static void point_at(ctx *c, json_t *node)
{
    json_t *loc = field(node, "location");
    c->at = json_is_integer(loc) ? (int)json_integer_value(loc) : -1;
}

/* "varchar(20)", "text", "int8": a TypeName as lint compares it. */
static void type_text(json_t *tn, char *buf, size_t len)
{
    json_t *mods = field(tn, "typmods");
    json_t *m0 = field(field(field(json_array_get(mods, 0), "A_Const"), "ival"), "ival");
    if (json_array_size(mods) == 1 && json_is_integer(m0))
        snprintf(buf, len, "%s(%lld)", last_name(field(tn, "names")),
                 (long long)json_integer_value(m0));
    else if (json_array_size(mods) == 1) /* varchar(n) with n = 0 has no "ival" in the JSON */
        snprintf(buf, len, "%s(0)", last_name(field(tn, "names")));
    else
        snprintf(buf, len, "%s", last_name(field(tn, "names")));
}

static const char *mem_get(const mig_lint_memory *m, const char *table, const char *col)
{
    for (size_t i = 0; i < m->count; i++) {
        const char *k = m->cols[i];
        size_t n = strlen(table);
        if (!strncmp(k, table, n) && k[n] == '.' && !strcmp(k + n + 1, col))
            return *m->types[i] ? m->types[i] : NULL;
    }
    return NULL;
}

/* Records the type of table.col (NULL: forgets it). */
static void mem_set(mig_lint_memory *m, const char *table, const char *col, const char *type)
{
    for (size_t i = 0; i < m->count; i++) {
        size_t n = strlen(table);
        if (!strncmp(m->cols[i], table, n) && m->cols[i][n] == '.' &&
            !strcmp(m->cols[i] + n + 1, col)) {
            free(m->types[i]);
            m->types[i] = strdup(type ? type : "");
            return;
        }
    }
    if (!type)
        return;
    char **cols = realloc(m->cols, (m->count + 1) * sizeof *cols);
    if (cols)
        m->cols = cols;
    char **types = cols ? realloc(m->types, (m->count + 1) * sizeof *types) : NULL;
    if (!types)
        return;
    m->types = types;
    size_t n = strlen(table) + strlen(col) + 2;
    m->cols[m->count] = malloc(n);
    m->types[m->count] = strdup(type);
    if (!m->cols[m->count] || !m->types[m->count]) {
        free(m->cols[m->count]);
        free(m->types[m->count]);
        return;
    }
    snprintf(m->cols[m->count], n, "%s.%s", table, col);
    m->count++;
}

void mig_lint_memory_free(mig_lint_memory *m)
{
    for (size_t i = 0; i < m->count; i++) {
        free(m->cols[i]);
        free(m->types[i]);
    }
    free(m->cols);
    free(m->types);
    *m = (mig_lint_memory){0};
}

static void learn_column(ctx *c, const char *table, json_t *col)
{
    char type[96];
    type_text(field(col, "typeName"), type, sizeof type);
    mem_set(c->mem, table, sfield(col, "colname"), type);
}

static bool is_new(const ctx *c, json_t *relation)
{
    return recalled(c, "t:", sfield(relation, "relname"), NULL) != NULL;
}

/* True when the expression calls a volatile function (the ones a default commonly uses). */
static bool calls_volatile(json_t *e)
{
    static const char *const vol[] = {
        "random",           "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v1mc",
        "uuid_generate_v4", "clock_timestamp", "timeofday",        "nextval",
        "random_normal"};
    if (json_is_array(e)) {
        for (size_t i = 0; i < json_array_size(e); i++)
            if (calls_volatile(json_array_get(e, i)))
                return true;
        return false;
    }
    if (!json_is_object(e))
        return false;
    json_t *fc = field(e, "FuncCall");
    if (fc) {
        const char *fn = last_name(field(fc, "funcname"));
        for (size_t i = 0; i < sizeof vol / sizeof *vol; i++)
            if (!strcmp(fn, vol[i]))
                return true;
    }
    const char *k;
    json_t *v;
    json_object_foreach(e, k, v) if (calls_volatile(v)) return true;
    return false;
}

static bool is_int4_type(const char *t)
{
    return !strcmp(t, "int4") || !strcmp(t, "int2") || !strcmp(t, "serial") ||
           !strcmp(t, "serial4") || !strcmp(t, "smallserial") || !strcmp(t, "serial2");
}

static void check_new_column(ctx *c, const char *table, json_t *col)
{
    point_at(c, col);
    learn_column(c, table, col);
    const char *type = last_name(field(field(col, "typeName"), "names"));
    bool notnull = false, dflt = false, generated = false;
    json_t *con;
    size_t i;
    json_array_foreach(field(col, "constraints"), i, con)
    {
        json_t *b = field(con, "Constraint");
        const char *t = sfield(b, "contype");
        notnull |= !strcmp(t, "CONSTR_NOTNULL") || !strcmp(t, "CONSTR_PRIMARY");
        if (!strcmp(t, "CONSTR_DEFAULT")) {
            dflt = true;
            if (calls_volatile(field(b, "raw_expr")))
                finding(c, "volatile-default",
                        "column %s.%s gets a volatile default: every row is rewritten under an "
                        "ACCESS EXCLUSIVE lock",
                        table, sfield(col, "colname"));
        }
        if (!strcmp(t, "CONSTR_IDENTITY") || !strcmp(t, "CONSTR_GENERATED")) {
            generated = true;
            finding(c, "volatile-default",
                    "column %s.%s is an identity or generated column: adding it rewrites the "
                    "table under an ACCESS EXCLUSIVE lock",
                    table, sfield(col, "colname"));
        }
        if (!strcmp(t, "CONSTR_FOREIGN") && !flag(b, "skip_validation"))
            finding(c, "add-foreign-key",
                    "column %s.%s adds a foreign key that locks both tables (SHARE ROW EXCLUSIVE)",
                    table, sfield(col, "colname"));
        if (!strcmp(t, "CONSTR_CHECK") && !flag(b, "skip_validation"))
            finding(c, "add-check", "column %s.%s adds a CHECK under ACCESS EXCLUSIVE", table,
                    sfield(col, "colname"));
        if (!strcmp(t, "CONSTR_UNIQUE") || !strcmp(t, "CONSTR_PRIMARY"))
            finding(c, t[7] == 'U' ? "add-unique-constraint" : "add-primary-key",
                    "column %s.%s builds a unique index under ACCESS EXCLUSIVE", table,
                    sfield(col, "colname"));
    }
    if (strstr(type, "serial") && !generated)
        finding(c, "volatile-default",
                "column %s.%s is %s (a nextval() default): adding it rewrites the table", table,
                sfield(col, "colname"), type);
    if (notnull && !dflt && !generated && !strstr(type, "serial"))
        finding(c, "add-column-not-null",
                "column %s.%s is NOT NULL without a default: fails on a table that has rows", table,
                sfield(col, "colname"));
}

/* In a no-transaction file, an ADD CONSTRAINT runs again after a failure half way. */
static void check_rerun(ctx *c, const char *table, const char *name)
{
    if (c->no_tx && !(*name && recalled(c, "d:", table, name)))
        finding(c, "no-transaction-add-constraint",
                "ADD CONSTRAINT %s on %s " NO_TX " fails when the file runs again after failing "
                "half way (PostgreSQL has no ADD CONSTRAINT IF NOT EXISTS)%s",
                *name ? name : "(unnamed)", table,
                *name ? "" : "; an unnamed one is added once more on each run");
}

/* ADD CONSTRAINT on an existing table. */
static void check_add_constraint(ctx *c, const char *table, json_t *b)
{
    const char *t = sfield(b, "contype"), *name = sfield(b, "conname");
    bool nv = flag(b, "skip_validation");
    point_at(c, b);
    check_rerun(c, table, name);
    if (!strcmp(t, "CONSTR_FOREIGN") && !nv)
        finding(c, "add-foreign-key",
                "foreign key %s on %s is validated at once: both tables are locked (SHARE ROW "
                "EXCLUSIVE) while every row is scanned",
                *name ? name : "(unnamed)", table);
    if (!strcmp(t, "CONSTR_CHECK") && !nv)
        finding(c, "add-check",
                "CHECK %s on %s is validated at once: ACCESS EXCLUSIVE while every row is scanned",
                *name ? name : "(unnamed)", table);
    if ((!strcmp(t, "CONSTR_CHECK") || !strcmp(t, "CONSTR_FOREIGN")) && nv && *name)
        remember(c, "a:", table, name, NULL);
    if (!strcmp(t, "CONSTR_CHECK") && nv && *name) {
        json_t *nt = field(field(b, "raw_expr"), "NullTest");
        if (nt && !strcmp(sfield(nt, "nulltesttype"), "IS_NOT_NULL"))
            remember(c, "c:", table, name,
                     last_name(field(field(field(nt, "arg"), "ColumnRef"), "fields")));
    }
    bool using_index = *sfield(b, "indexname") != '\0';
    if (!strcmp(t, "CONSTR_UNIQUE") && !using_index)
        finding(c, "add-unique-constraint",
                "UNIQUE %s on %s builds its index under ACCESS EXCLUSIVE", *name ? name : "",
                table);
    if (!strcmp(t, "CONSTR_PRIMARY") && !using_index)
        finding(c, "add-primary-key", "PRIMARY KEY on %s builds its index under ACCESS EXCLUSIVE",
                table);
    if (!strcmp(t, "CONSTR_EXCLUSION"))
        finding(c, "add-exclusion-constraint",
                "EXCLUDE %s on %s builds its index under ACCESS EXCLUSIVE", name, table);
}

/* ALTER COLUMN ... TYPE: to text or varchar without USING is free when the column is varchar (a
 * CHECK on it is re-scanned, nothing is rewritten), which lint cannot see: a warning. Anything
 * else rewrites the table and its indexes under ACCESS EXCLUSIVE. */
/* Splits "varchar(20)" into its textual-ness and limit (-1: none). */
static bool textual_type(const char *t, long *limit)
{
    *limit = -1;
    if (!strcmp(t, "text") || !strcmp(t, "varchar"))
        return true;
    return sscanf(t, "varchar(%ld)", limit) == 1;
}

/* True when PostgreSQL (since 9.2) changes only the catalog: varchar(n) to varchar(m >= n), to
 * varchar or text, text to varchar; a CHECK on the column is still re-checked. */
static bool free_type_change(const char *from, const char *to)
{
    long lf, lt;
    if (!textual_type(from, &lf) || !textual_type(to, &lt))
        return false;
    return lt < 0 || (lf >= 0 && lt >= lf);
}

static void check_type_change(ctx *c, const char *table, const char *col, json_t *cd)
{
    const char *type = last_name(field(field(cd, "typeName"), "names"));
    bool textual = !strcmp(type, "text") || !strcmp(type, "varchar");
    char to[96];
    type_text(field(cd, "typeName"), to, sizeof to);
    char from_buf[96];
    const char *known = mem_get(c->mem, table, col), *from = NULL;
    if (known)
        from = strncpy(from_buf, known, sizeof from_buf - 1);
    from_buf[sizeof from_buf - 1] = '\0';
    point_at(c, cd);
    bool free_change = from && !field(cd, "raw_default") && free_type_change(from, to);
    mem_set(c->mem, table, col, to);
    if (free_change)
        return;
    if (from)
        finding(c, "column-type-change",
                "changing the type of %s.%s from %s to %s rewrites the table and its indexes "
                "under ACCESS EXCLUSIVE (reads and writes wait for the whole rewrite)",
                table, col, from, to);
    else if (textual && !field(cd, "raw_default"))
        finding(c, "column-type-maybe-rewrite",
                "changing the type of %s.%s to %s is free only when the column is varchar (no "
                "rewrite since PostgreSQL 9.2; a CHECK on it is re-scanned); from any other type "
                "it rewrites the table under ACCESS EXCLUSIVE",
                table, col, type);
    else
        finding(c, "column-type-change",
                "changing the type of %s.%s to %s rewrites the table and its indexes under "
                "ACCESS EXCLUSIVE (reads and writes wait for the whole rewrite)",
                table, col, type);
}

static void check_alter_table(ctx *c, json_t *s)
{
    json_t *rel = field(s, "relation");
    const char *table = sfield(rel, "relname");
    json_t *cmd;
    size_t i;
    if (strcmp(sfield(s, "objtype"), "OBJECT_TABLE"))
        return;
    if (is_new(c, rel)) { /* no lock rule applies; the types still matter to later files */
        json_array_foreach(field(s, "cmds"), i, cmd)
        {
            json_t *b = field(cmd, "AlterTableCmd"), *cd = field(field(b, "def"), "ColumnDef");
            const char *st = sfield(b, "subtype");
            if (!strcmp(st, "AT_AddColumn"))
                learn_column(c, table, cd);
            else if (!strcmp(st, "AT_AlterColumnType")) {
                char to[96];
                type_text(field(cd, "typeName"), to, sizeof to);
                mem_set(c->mem, table, sfield(b, "name"), to);
            }
        }
        return;
    }
    json_array_foreach(field(s, "cmds"), i, cmd)
    {
        json_t *b = field(cmd, "AlterTableCmd");
        const char *st = sfield(b, "subtype"), *name = sfield(b, "name");
        json_t *def = field(b, "def");
        c->at = -1;
        if (!strcmp(st, "AT_DropConstraint") && flag(b, "missing_ok"))
            remember(c, "d:", table, name, NULL);
        if (!strcmp(st, "AT_DropColumn"))
            mem_set(c->mem, table, name, NULL);
        if (!strcmp(st, "AT_AddColumn"))
            check_new_column(c, table, field(def, "ColumnDef"));
        else if (!strcmp(st, "AT_AddConstraint"))
            check_add_constraint(c, table, field(def, "Constraint"));
        else if (!strcmp(st, "AT_ValidateConstraint")) {
            const char *col = recalled(c, "c:", table, name);
            if (col)
                remember(c, "n:", table, col, NULL);
            else if (!recalled(c, "a:", table, name))
                remember(c, "v:", table, NULL, NULL); /* added by an earlier file: any column */
            if (!c->no_tx && recalled(c, "a:", table, name))
                finding(c, "validate-in-add-transaction",
                        "VALIDATE CONSTRAINT %s on %s runs in the transaction that added it NOT "
                        "VALID: the ADD's ACCESS EXCLUSIVE lock is held through the whole scan, "
                        "blocking reads and writes",
                        name, table);
        } else if (!strcmp(st, "AT_SetNotNull") && !recalled(c, "n:", table, name) &&
                   !recalled(c, "v:", table, NULL))
            finding(c, "set-not-null",
                    "SET NOT NULL on %s.%s scans the table under ACCESS EXCLUSIVE (no validated "
                    "CHECK (%s IS NOT NULL) earlier in this file)",
                    table, name, name);
        else if (!strcmp(st, "AT_AlterColumnType"))
            check_type_change(c, table, name, field(def, "ColumnDef"));
        else if (!strcmp(st, "AT_DropColumn"))
            finding(c, "drop-column",
                    "dropping %s.%s loses its data, and running code still uses it", table, name);
    }
}

static void check_drop(ctx *c, json_t *s)
{
    const char *type = sfield(s, "removeType");
    json_t *obj;
    size_t i;
    if (!strcmp(type, "OBJECT_INDEX")) {
        if (flag(s, "concurrent") && !c->no_tx)
            finding(c, "concurrently-in-transaction",
                    "DROP INDEX CONCURRENTLY cannot run inside a transaction");
        if (!flag(s, "concurrent"))
            finding(c, "drop-index-not-concurrent",
                    "DROP INDEX takes an ACCESS EXCLUSIVE lock on its table");
        if (c->no_tx && !flag(s, "missing_ok"))
            finding(c, "no-transaction-if-not-exists", "DROP INDEX without IF EXISTS " NO_TX);
    }
    if (!strcmp(type, "OBJECT_TABLE"))
        json_array_foreach(field(s, "objects"), i, obj)
        {
            const char *t = last_name(field(field(obj, "List"), "items"));
            if (!recalled(c, "t:", t, NULL))
                finding(c, "drop-table", "dropping table %s loses its data", t);
        }
}

static void check_create_table(ctx *c, json_t *s)
{
    json_t *rel = field(s, "relation"), *el;
    size_t i;
    if (c->no_tx && !flag(s, "if_not_exists"))
        finding(c, "no-transaction-if-not-exists", "CREATE TABLE without IF NOT EXISTS " NO_TX);
    json_array_foreach(field(s, "tableElts"), i, el)
    {
        json_t *col = field(el, "ColumnDef"), *con, *key;
        size_t j;
        if (col)
            learn_column(c, sfield(rel, "relname"), col);
        json_array_foreach(field(col, "constraints"), j, con)
        {
            if (!strcmp(sfield(field(con, "Constraint"), "contype"), "CONSTR_PRIMARY") &&
                is_int4_type(last_name(field(field(col, "typeName"), "names"))))
                finding(c, "int-primary-key", "primary key %s.%s is a 32-bit integer",
                        sfield(rel, "relname"), sfield(col, "colname"));
        }
        json_t *tc = field(el, "Constraint");
        if (tc && !strcmp(sfield(tc, "contype"), "CONSTR_PRIMARY"))
            json_array_foreach(field(tc, "keys"), j, key)
            {
                const char *k = sfield(field(key, "String"), "sval");
                json_t *other;
                size_t m;
                json_array_foreach(field(s, "tableElts"), m, other)
                {
                    json_t *oc = field(other, "ColumnDef");
                    if (oc && !strcmp(sfield(oc, "colname"), k) &&
                        is_int4_type(last_name(field(field(oc, "typeName"), "names"))))
                        finding(c, "int-primary-key", "primary key %s.%s is a 32-bit integer",
                                sfield(rel, "relname"), k);
                }
            }
    }
    remember(c, "t:", sfield(rel, "relname"), NULL, NULL);
}

static bool has_option(json_t *list, const char *name)
{
    json_t *o;
    size_t i;
    json_array_foreach(list, i,
                       o) if (!strcmp(sfield(field(o, "DefElem"), "defname"), name)) return true;
    return false;
}

static void check_truncate(ctx *c, json_t *s)
{
    bool cascade = !strcmp(sfield(s, "behavior"), "DROP_CASCADE");
    json_t *r;
    size_t i;
    json_array_foreach(field(s, "relations"), i, r)
    {
        json_t *rv = field(r, "RangeVar");
        if (is_new(c, rv))
            continue;
        point_at(c, rv);
        finding(c, "truncate", "TRUNCATE %s%s deletes every row under ACCESS EXCLUSIVE%s",
                sfield(rv, "relname"), cascade ? " CASCADE" : "",
                cascade ? ", and CASCADE also empties every table with a foreign key to it, "
                          "named nowhere in the file"
                        : "");
    }
}

/* True when a word of `body` (case-insensitive, outside nothing: a heuristic) is a DDL or dynamic
 * SQL keyword. */
static bool has_ddl_word(const char *body)
{
    static const char *const words[] = {"alter",  "create",  "drop",    "truncate",
                                        "rename", "execute", "cluster", "reindex"};
    for (const char *p = body; *p;) {
        if (!isalpha((unsigned char)*p) && *p != '_') {
            p++;
            continue;
        }
        const char *w = p;
        while (isalnum((unsigned char)*p) || *p == '_')
            p++;
        for (size_t i = 0; i < sizeof words / sizeof *words; i++)
            if (strlen(words[i]) == (size_t)(p - w) && !strncasecmp(w, words[i], (size_t)(p - w)))
                return true;
    }
    return false;
}

static void check_do(ctx *c, json_t *s)
{
    json_t *a;
    size_t i;
    json_array_foreach(field(s, "args"), i, a)
    {
        json_t *d = field(a, "DefElem");
        if (!strcmp(sfield(d, "defname"), "as") &&
            has_ddl_word(sfield(field(field(d, "arg"), "String"), "sval")))
            finding(c, "do-block-ddl",
                    "a DO block runs DDL (or dynamic SQL) that lint cannot check: its locks and "
                    "rewrites are unverified");
    }
}

static void check_transaction(ctx *c, json_t *s)
{
    static const char *const kinds[] = {"TRANS_STMT_BEGIN",
                                        "TRANS_STMT_START",
                                        "TRANS_STMT_COMMIT",
                                        "TRANS_STMT_ROLLBACK",
                                        "TRANS_STMT_PREPARE",
                                        "TRANS_STMT_COMMIT_PREPARED",
                                        "TRANS_STMT_ROLLBACK_PREPARED"};
    const char *k = sfield(s, "kind");
    if (c->no_tx)
        return;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (!strcmp(k, kinds[i]))
            finding(c, "transaction-control",
                    "%s inside a file migrate already runs in one transaction: the statements "
                    "after it run outside that transaction (no rollback if they fail, while the "
                    "history row is written apart)",
                    k + 11);
}

/* The statements beyond DDL: DML, TRUNCATE, DO, transaction control, maintenance, SET. */
static void check_other(ctx *c, const char *t, json_t *s)
{
    if ((!strcmp(t, "DeleteStmt") || !strcmp(t, "UpdateStmt")) &&
        !strcmp(sfield(field(s, "relation"), "relname"), "pg_enum")) {
        finding(c, "enum-value-removal", "writing pg_enum directly to remove or reorder values");
    } else if ((!strcmp(t, "DeleteStmt") || !strcmp(t, "UpdateStmt")) && !field(s, "whereClause") &&
               !is_new(c, field(s, "relation"))) {
        finding(c, "dml-without-where",
                "%s without WHERE on %s touches every row in one transaction: each row stays "
                "locked against writers until the migration commits",
                t[0] == 'D' ? "DELETE" : "UPDATE", sfield(field(s, "relation"), "relname"));
    } else if (!strcmp(t, "TruncateStmt")) {
        check_truncate(c, s);
    } else if (!strcmp(t, "DoStmt")) {
        check_do(c, s);
    } else if (!strcmp(t, "TransactionStmt")) {
        check_transaction(c, s);
    } else if (!strcmp(t, "VacuumStmt") && has_option(field(s, "options"), "full")) {
        finding(c, "vacuum-full", "VACUUM FULL rewrites the table under ACCESS EXCLUSIVE");
    } else if (!strcmp(t, "ClusterStmt")) {
        finding(c, "cluster", "CLUSTER rewrites the table under ACCESS EXCLUSIVE");
    } else if (!strcmp(t, "ReindexStmt")) {
        bool conc = has_option(field(s, "params"), "concurrently");
        if (!conc)
            finding(c, "reindex-not-concurrent",
                    "REINDEX locks out writes (and reads of the index)");
        else if (!c->no_tx)
            finding(c, "concurrently-in-transaction",
                    "REINDEX CONCURRENTLY cannot run inside a transaction");
    } else if (!strcmp(t, "VariableSetStmt") && !strcmp(sfield(s, "name"), "lock_timeout")) {
        json_t *a = node_body(json_array_get(field(s, "args"), 0));
        json_t *iv = field(a, "ival");
        const char *sv = sfield(field(a, "sval"), "sval");
        if ((iv && json_integer_value(field(iv, "ival")) == 0) || !strcmp(sv, "0"))
            finding(c, "lock-timeout-disabled", "lock_timeout is set to 0 (wait forever)");
    }
}

static void check_statement(ctx *c, json_t *stmt)
{
    const char *t = node_type(stmt);
    json_t *s = node_body(stmt);
    if (!strcmp(t, "CreateStmt")) {
        check_create_table(c, s);
    } else if (!strcmp(t, "IndexStmt")) {
        bool conc = flag(s, "concurrent");
        if (conc && !c->no_tx)
            finding(c, "concurrently-in-transaction",
                    "CREATE INDEX CONCURRENTLY cannot run inside a transaction");
        if (!conc && !is_new(c, field(s, "relation")))
            finding(c, "index-not-concurrent",
                    "CREATE INDEX on existing table %s blocks its writes while the index builds",
                    sfield(field(s, "relation"), "relname"));
        if (c->no_tx && !flag(s, "if_not_exists"))
            finding(c, "no-transaction-if-not-exists",
                    "CREATE INDEX without IF NOT EXISTS " NO_TX " (and check for an INVALID index "
                    "left by a failed run)");
    } else if (!strcmp(t, "AlterTableStmt")) {
        check_alter_table(c, s);
    } else if (!strcmp(t, "DropStmt")) {
        check_drop(c, s);
    } else if (!strcmp(t, "RenameStmt")) {
        const char *rt = sfield(s, "renameType"), *rel = sfield(field(s, "relation"), "relname");
        if (!strcmp(rt, "OBJECT_COLUMN")) {
            const char *old = mem_get(c->mem, rel, sfield(s, "subname"));
            char *type = old ? strdup(old) : NULL;
            mem_set(c->mem, rel, sfield(s, "subname"), NULL);
            mem_set(c->mem, rel, sfield(s, "newname"), type);
            free(type);
        }
        if (is_new(c, field(s, "relation")))
            return;
        if (!strcmp(rt, "OBJECT_COLUMN"))
            finding(c, "rename-column", "renaming %s.%s breaks the code that uses the old name",
                    rel, sfield(s, "subname"));
        else if (!strcmp(rt, "OBJECT_TABLE"))
            finding(c, "rename-table", "renaming table %s breaks the code that uses the old name",
                    rel);
    } else if (!strcmp(t, "AlterEnumStmt")) {
        if (*sfield(s, "oldVal"))
            finding(c, "enum-rename-value",
                    "renaming enum value '%s' breaks code and data using it", sfield(s, "oldVal"));
        else if (!c->no_tx)
            finding(c, "enum-add-value-in-transaction",
                    "ALTER TYPE %s ADD VALUE '%s' inside a transaction",
                    last_name(field(s, "typeName")), sfield(s, "newVal"));
    } else {
        check_other(c, t, s);
    }
}

/* Reads the "-- migrate:lint-ignore" comments wherever they stand: on their own line, indented,
 * or after a statement (split.h attaches each to its statement). */
static int collect_ignores(ctx *c, const mig_stmts *st)
{
    for (size_t i = 0; i < st->ncomments; i++) {
        const mig_comment *m = &st->comments[i];
        const char *p = m->text + 2;
        p += strspn(p, " \t");
        bool is_ignore = !strncmp(p, "migrate:lint-ignore", 19);
        if (!is_ignore && !strstr(m->text, "lint-ignore"))
            continue;
        ignore g = {.line = m->line, .col = m->col, .stmt = m->stmt};
        if (is_ignore) {
            char reason[2] = "";
            int got = sscanf(p + 19, "%63s %1s", g.rule, reason);
            g.has_reason = got == 2;
            if (p[19] && !isspace((unsigned char)p[19]))
                g.rule[0] = '\0'; /* "lint-ignored", "lint-ignore:": not the directive */
        }
        ignore *a = realloc(c->ign, (c->nign + 1) * sizeof *a);
        if (!a)
            return -1;
        c->ign = a;
        c->ign[c->nign++] = g;
    }
    return 0;
}

static void check_ignores(ctx *c)
{
    for (size_t i = 0; i < c->nign; i++) {
        const ignore *g = &c->ign[i];
        c->line = g->line;
        c->col = g->col;
        c->cur = NULL;
        c->stmt = (size_t)-1;
        if (!g->rule[0])
            finding(c, "lint-ignore-invalid",
                    "this comment mentions lint-ignore but is not read as one (write \"-- "
                    "migrate:lint-ignore RULE REASON\")");
        else if (!rule_by_id(g->rule))
            finding(c, "lint-ignore-invalid", "unknown rule \"%s\" in lint-ignore", g->rule);
        else if (!g->has_reason)
            finding(c, "lint-ignore-invalid", "lint-ignore %s without a reason", g->rule);
    }
}

int mig_lint_sql(const char *path, const char *sql, int first_line, bool no_transaction, FILE *out,
                 mig_lint_counts *counts, mig_lint_memory *mem)
{
    mig_stmts st;
    char err[512];
    if (mig_split(sql, first_line, &st, err, sizeof err) < 0) {
        if (out)
            fprintf(out, "%s: %s\n", path, err);
        counts->errors++;
        mig_stmts_free(&st);
        return -1;
    }
    mig_lint_memory local = {0};
    ctx c = {.path = path,
             .no_tx = no_transaction,
             .out = out,
             .counts = counts,
             .mem = mem ? mem : &local};
    int rc = collect_ignores(&c, &st);
    check_ignores(&c);
    for (size_t i = 0; rc == 0 && i < st.count; i++) {
        c.cur = &st.items[i];
        c.at = -1;
        c.stmt = i;
        PgQueryParseResult p = pg_query_parse(st.items[i].sql);
        json_t *tree = p.error ? NULL : json_loads(p.parse_tree, 0, NULL);
        if (p.error && p.error->cursorpos > 0)
            c.at = p.error->cursorpos - 1;
        if (!tree)
            finding(&c, "unparsed",
                    "PostgreSQL 15's parser cannot read this statement (%s); not "
                    "linted",
                    p.error ? p.error->message : "no parse tree");
        json_t *one;
        size_t k;
        json_array_foreach(field(tree, "stmts"), k, one)
        {
            c.at = -1;
            check_statement(&c, field(one, "stmt"));
        }
        json_decref(tree);
        pg_query_free_parse_result(p);
    }
    c.cur = NULL;
    for (size_t i = 0; rc == 0 && i < c.nign; i++)
        if (c.ign[i].has_reason && rule_by_id(c.ign[i].rule) && !c.ign[i].used) {
            c.line = c.ign[i].line;
            c.col = c.ign[i].col;
            c.stmt = (size_t)-1;
            finding(&c, "lint-ignore-unused",
                    "lint-ignore %s accepts no finding: the statement it applies to (the one it "
                    "stands in or follows on its line, else the next) has no %s finding",
                    c.ign[i].rule, c.ign[i].rule);
        }
    for (size_t i = 0; i < c.nseen; i++) {
        free(c.seen[i]);
        free(c.seen_val[i]);
    }
    free(c.ign);
    mig_lint_memory_free(&local);
    mig_stmts_free(&st);
    return rc;
}

int mig_lint_file(const mig_file *f, FILE *out, mig_lint_counts *counts, mig_lint_memory *mem)
{
    if (f->lock_timeout && !strcmp(f->lock_timeout, "0")) {
        mig_lint_counts tmp = {0};
        ctx c = {
            .path = f->path, .out = out, .counts = &tmp, .line = 1, .col = 1, .stmt = (size_t)-1};
        finding(&c, "lock-timeout-disabled", "-- migrate:lock-timeout 0 disables the lock timeout");
        counts->warnings += tmp.warnings;
    }
    return mig_lint_sql(f->path, f->up, f->up_line, f->no_transaction, out, counts, mem);
}
