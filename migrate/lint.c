/* lint: see lint.h. libpg_query returns the parse tree as JSON; jansson walks it. */
#include "migrate/lint.h"

#include <jansson.h>
#include <pg_query.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/split.h"

#define NO_TX "in a \"-- migrate:no-transaction\" file"

typedef struct {
    int line;
    char rule[64];
    bool has_reason;
    size_t stmt; /* index of the statement it applies to */
} ignore;

typedef struct {
    const char *path;
    bool no_tx;
    FILE *out;
    mig_lint_counts *counts;
    int line;    /* line of the statement being checked */
    size_t stmt; /* its index */
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
            return;
        }
    if (r->error)
        c->counts->errors++;
    else
        c->counts->warnings++;
    if (!c->out)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(c->out, "%s:%d: %s: %s", c->path, c->line, id, r->error ? "" : "warning: ");
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

/* ADD CONSTRAINT on an existing table. */
static void check_add_constraint(ctx *c, const char *table, json_t *b)
{
    const char *t = sfield(b, "contype"), *name = sfield(b, "conname");
    bool nv = flag(b, "skip_validation");
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
static void check_type_change(ctx *c, const char *table, const char *col, json_t *cd)
{
    const char *type = last_name(field(field(cd, "typeName"), "names"));
    bool textual = !strcmp(type, "text") || !strcmp(type, "varchar");
    if (textual && !field(cd, "raw_default"))
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
    if (is_new(c, rel) || strcmp(sfield(s, "objtype"), "OBJECT_TABLE"))
        return;
    json_t *cmd;
    size_t i;
    json_array_foreach(field(s, "cmds"), i, cmd)
    {
        json_t *b = field(cmd, "AlterTableCmd");
        const char *st = sfield(b, "subtype"), *name = sfield(b, "name");
        json_t *def = field(b, "def");
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
    } else if ((!strcmp(t, "DeleteStmt") || !strcmp(t, "UpdateStmt")) &&
               !strcmp(sfield(field(s, "relation"), "relname"), "pg_enum")) {
        finding(c, "enum-value-removal", "writing pg_enum directly to remove or reorder values");
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

/* Collects "-- migrate:lint-ignore" lines and attaches each to its statement. */
static int collect_ignores(ctx *c, const char *sql, int first_line, const mig_stmts *st)
{
    int line = first_line;
    for (const char *p = sql; *p; line++) {
        size_t n = strcspn(p, "\n");
        if (!strncmp(p, "-- migrate:lint-ignore", 22)) {
            ignore g = {.line = line};
            char rest[512];
            snprintf(rest, sizeof rest, "%.*s", (int)(n - 22), p + 22);
            char reason[2] = "";
            int got = sscanf(rest, "%63s %1s", g.rule, reason);
            g.has_reason = got == 2;
            g.stmt = st->count;
            for (size_t i = 0; i < st->count; i++) {
                int end = st->items[i].line;
                for (const char *q = st->items[i].sql; *q; q++)
                    end += *q == '\n';
                if (end >= line) {
                    g.stmt = i;
                    break;
                }
            }
            ignore *a = realloc(c->ign, (c->nign + 1) * sizeof *a);
            if (!a)
                return -1;
            c->ign = a;
            c->ign[c->nign++] = g;
        }
        p += n + (p[n] == '\n');
    }
    return 0;
}

static void check_ignores(ctx *c)
{
    for (size_t i = 0; i < c->nign; i++) {
        const ignore *g = &c->ign[i];
        c->line = g->line;
        c->stmt = (size_t)-1;
        if (!rule_by_id(g->rule))
            finding(c, "lint-ignore-invalid", "unknown rule \"%s\" in lint-ignore", g->rule);
        else if (!g->has_reason)
            finding(c, "lint-ignore-invalid", "lint-ignore %s without a reason", g->rule);
    }
}

int mig_lint_sql(const char *path, const char *sql, int first_line, bool no_transaction, FILE *out,
                 mig_lint_counts *counts)
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
    ctx c = {.path = path, .no_tx = no_transaction, .out = out, .counts = counts};
    int rc = collect_ignores(&c, sql, first_line, &st);
    check_ignores(&c);
    for (size_t i = 0; rc == 0 && i < st.count; i++) {
        c.line = st.items[i].line;
        c.stmt = i;
        PgQueryParseResult p = pg_query_parse(st.items[i].sql);
        json_t *tree = p.error ? NULL : json_loads(p.parse_tree, 0, NULL);
        if (!tree)
            finding(&c, "unparsed",
                    "PostgreSQL 15's parser cannot read this statement (%s); not "
                    "linted",
                    p.error ? p.error->message : "no parse tree");
        json_t *one;
        size_t k;
        json_array_foreach(field(tree, "stmts"), k, one) check_statement(&c, field(one, "stmt"));
        json_decref(tree);
        pg_query_free_parse_result(p);
    }
    for (size_t i = 0; i < c.nseen; i++) {
        free(c.seen[i]);
        free(c.seen_val[i]);
    }
    free(c.ign);
    mig_stmts_free(&st);
    return rc;
}

int mig_lint_file(const mig_file *f, FILE *out, mig_lint_counts *counts)
{
    if (f->lock_timeout && !strcmp(f->lock_timeout, "0")) {
        mig_lint_counts tmp = {0};
        ctx c = {.path = f->path, .out = out, .counts = &tmp, .line = 1, .stmt = (size_t)-1};
        finding(&c, "lock-timeout-disabled", "-- migrate:lock-timeout 0 disables the lock timeout");
        counts->warnings += tmp.warnings;
    }
    return mig_lint_sql(f->path, f->up, f->up_line, f->no_transaction, out, counts);
}
