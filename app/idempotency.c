/* idempotency: see idempotency.h. */
#include "app/idempotency.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app/resource.h"
#include "app/router.h"
#include "app/server.h"
#include "core/log.h"

/* SQLSTATE of idempotency_key_taken() (migration 0003). */
#define KEY_TAKEN "IK001"

/* Hex SHA-256 of what makes two requests the same request: method, route, parameter values and
 * the body as validated (keys sorted, compact: other spacing or key order is the same body). */
static void request_hash(const http_request *req, char out[65])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char digest[32];
    unsigned int n = 0;
    const route *r = req->route;
    char *canon = req->body ? json_dumps(req->body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (md && EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        EVP_DigestUpdate(md, r->method, strlen(r->method) + 1);
        EVP_DigestUpdate(md, r->path, strlen(r->path) + 1);
        for (int i = 0; r->params && r->params[i].name; i++) {
            const char *v = req->values[i].set && req->values[i].str ? req->values[i].str : "";
            EVP_DigestUpdate(md, req->values[i].set ? "1" : "0", 1);
            EVP_DigestUpdate(md, v, strlen(v) + 1);
        }
        if (canon)
            EVP_DigestUpdate(md, canon, strlen(canon));
        EVP_DigestFinal_ex(md, digest, &n);
    }
    EVP_MD_CTX_free(md);
    free(canon);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", i < n ? digest[i] : 0);
}

/* ---- the handler's statement as a CTE ---- */

/* Skips spaces and comments. */
static const char *skip_ws(const char *p)
{
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (p[0] == '-' && p[1] == '-') {
            while (*p && *p != '\n')
                p++;
        } else if (p[0] == '/' && p[1] == '*') {
            const char *e = strstr(p + 2, "*/");
            if (!e)
                return NULL;
            p = e + 2;
        } else {
            return p;
        }
    }
}

/* At a quote (' or "): past the string or quoted identifier it opens (a doubled quote is part of
 * it; E'..' strings take backslash escapes); NULL when unterminated. */
static const char *skip_quoted(const char *p)
{
    bool esc = *p == '\'' && (p[-1] == 'E' || p[-1] == 'e');
    char quote = *p++;
    while (*p && !(*p == quote && p[1] != quote)) {
        if (*p == quote || (esc && *p == '\\' && p[1]))
            p++;
        p++;
    }
    return *p ? p + 1 : NULL;
}

/* At '$': past the dollar quote it opens ($$..$$ or $tag$..$tag$), NULL when unterminated; the
 * next character when it opens none (a parameter such as $1; "$a" is not a quote either). */
static const char *skip_dollar(const char *p)
{
    if (p[1] != '$' && !isalpha((unsigned char)p[1]) && p[1] != '_')
        return p + 1;
    const char *t = p + 1;
    while (isalnum((unsigned char)*t) || *t == '_')
        t++;
    if (*t != '$')
        return p + 1;
    size_t taglen = (size_t)(t - p + 1);
    const char *e = p + taglen;
    while ((e = strchr(e, '$')) && strncmp(e, p, taglen))
        e++;
    return e ? e + taglen : NULL;
}

/* At '(' : returns the character after its matching ')', past strings, quoted identifiers, dollar
 * quotes and comments; NULL when unbalanced. */
static const char *skip_parens(const char *p)
{
    int depth = 0;
    while (p && *p) {
        if (!(p = skip_ws(p)) || !*p) /* a comment or spaces up to the end: unbalanced */
            return NULL;
        if (*p == '(') {
            depth++;
            p++;
        } else if (*p == ')') {
            p++;
            if (--depth == 0)
                return p;
        } else if (*p == '\'' || *p == '"') {
            p = skip_quoted(p);
        } else if (*p == '$') {
            p = skip_dollar(p);
        } else {
            p++;
        }
    }
    return NULL;
}

/* An identifier, bare or quoted; NULL when none. */
static const char *skip_ident(const char *p)
{
    if (*p == '"') {
        for (p++; *p; p++)
            if (*p == '"' && *++p != '"')
                return p;
        return NULL;
    }
    if (!isalpha((unsigned char)*p) && *p != '_')
        return NULL;
    while (isalnum((unsigned char)*p) || *p == '_' || *p == '$')
        p++;
    return p;
}

static bool keyword(const char **p, const char *word)
{
    size_t n = strlen(word);
    if (strncasecmp(*p, word, n) || isalnum((unsigned char)(*p)[n]) || (*p)[n] == '_')
        return false;
    const char *q = skip_ws(*p + n);
    if (!q)
        return false;
    *p = q;
    return true;
}

long idempotency_with_end(const char *sql)
{
    const char *p = skip_ws(sql);
    if (!p || !keyword(&p, "with"))
        return 0;
    keyword(&p, "recursive");
    for (;;) {
        if (!(p = skip_ident(p)) || !(p = skip_ws(p)))
            return -1;
        if (*p == '(' && (!(p = skip_parens(p)) || !(p = skip_ws(p))))
            return -1;
        if (!keyword(&p, "as"))
            return -1;
        keyword(&p, "not");
        keyword(&p, "materialized");
        if (*p != '(' || !(p = skip_parens(p)) || !(p = skip_ws(p)))
            return -1;
        if (*p != ',')
            return p - sql;
        if (!(p = skip_ws(p + 1)))
            return -1;
    }
}

/* The handler's statement with the key's claim: one statement, so the key is stored with its
 * result or not at all. A key in use and not expired makes the DO UPDATE call
 * idempotency_key_taken(), which fails the whole statement (the handler's write included) with
 * KEY_TAKEN; a concurrent first request holds the row's lock, so this waits until it is done. */
static char *wrap(const char *sql, int nparams)
{
    long end = idempotency_with_end(sql);
    if (end < 0)
        end = 0; /* unparsed: nest it whole (PostgreSQL says what it does not allow) */
    const char *main = sql + end;
    size_t mlen = strlen(main);
    while (mlen && (isspace((unsigned char)main[mlen - 1]) || main[mlen - 1] == ';'))
        mlen--;
    int u = nparams + 1, k = nparams + 2, h = nparams + 3, t = nparams + 4;
    char *out = NULL;
    int n = asprintf(
        &out,
        "%.*s%sidem_r as (%.*s), idem_k as (insert into idempotency_keys "
        "(user_id, key, request_hash, result) select $%d, $%d, $%d, json_build_object("
        "'cols', (select json_agg(c) from (select row_to_json(idem_r) j from idem_r limit 1) x, "
        "json_object_keys(x.j) c), "
        "'rows', (select coalesce(json_agg(idem_r::text), '[]') from idem_r))::text "
        "on conflict (user_id, key) do update set request_hash = case when $%d::float8 > 0 and "
        "idempotency_keys.created_at < now() - $%d::float8 * interval '1 second' "
        "then excluded.request_hash else idempotency_key_taken() end, "
        "status = null, body = null, result = excluded.result, created_at = now()) "
        "select * from idem_r",
        (int)end, sql, end ? ", " : "with ", (int)mlen, main, u, k, h, t, t);
    return n < 0 ? NULL : out;
}

/* ---- a stored result as a PGresult ---- */

int idempotency_parse_row(const char *text, char **values, int max)
{
    const char *p = text;
    if (*p++ != '(')
        return -1;
    int n = 0;
    for (;;) {
        if (n == max)
            goto fail;
        if (*p == ',' || *p == ')') { /* nothing between the commas: NULL */
            values[n++] = NULL;
        } else {
            char *v = malloc(strlen(p) + 1), *o = v;
            if (!v)
                goto fail;
            bool quoted = false;
            while (*p && (quoted || (*p != ',' && *p != ')'))) {
                if (*p == '\\' && p[1]) {
                    *o++ = p[1];
                    p += 2;
                } else if (*p == '"') {
                    if (quoted && p[1] == '"') {
                        *o++ = '"';
                        p += 2;
                    } else {
                        quoted = !quoted;
                        p++;
                    }
                } else {
                    *o++ = *p++;
                }
            }
            *o = '\0';
            values[n++] = v;
            if (!*p)
                goto fail;
        }
        if (*p++ == ')') {
            if (*p)
                goto fail;
            return n;
        }
    }
fail:
    for (int i = 0; i < n; i++)
        free(values[i]);
    return -1;
}

/* {"cols": [...], "rows": ["(...)", ...]} as a result with text columns; NULL when malformed. */
static PGresult *stored_result(const char *stored)
{
    json_t *doc = json_loads(stored, 0, NULL);
    json_t *cols = json_object_get(doc, "cols"), *rows = json_object_get(doc, "rows");
    PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    int ncols = (int)json_array_size(cols);
    bool ok = r && json_is_array(rows) && ncols <= HTTP_MAX_PARAMS * 8;
    if (ok && ncols) {
        PGresAttDesc att[HTTP_MAX_PARAMS * 8];
        for (int c = 0; c < ncols; c++)
            att[c] = (PGresAttDesc){.name = (char *)json_string_value(json_array_get(cols, c)),
                                    .typlen = -1,
                                    .atttypmod = -1};
        for (int c = 0; c < ncols; c++)
            ok = ok && att[c].name;
        ok = ok && PQsetResultAttrs(r, ncols, att);
    }
    for (size_t i = 0; ok && i < json_array_size(rows); i++) {
        char *v[HTTP_MAX_PARAMS * 8];
        const char *text = json_string_value(json_array_get(rows, i));
        int n = text ? idempotency_parse_row(text, v, HTTP_MAX_PARAMS * 8) : -1;
        ok = n == ncols;
        for (int c = 0; c < n; c++) {
            ok = ok && PQsetvalue(r, (int)i, c, v[c], v[c] ? (int)strlen(v[c]) : -1);
            free(v[c]);
        }
    }
    json_decref(doc);
    if (!ok) {
        PQclear(r);
        return NULL;
    }
    return r;
}

/* ---- the hook ---- */

/* The key is in use, or the statement failed: the stored rows when the key is taken by the same
 * request, else an outcome. `own` is the handler's own failure (a constraint of its table that
 * fired before the key's claim could): with no row for the key it is the request's answer, kept in
 * err as it was. */
static PGresult *replay(idempotency *ctx, db_session *s, const db_error *own, db_error *err)
{
    const char *params[] = {ctx->req->user_id ? ctx->req->user_id : "", ctx->req->idempotency_key};
    PGresult *r = db_query(s,
                           "select request_hash, result, status, body from idempotency_keys "
                           "where user_id = $1 and key = $2",
                           2, params, err);
    if (!r)
        return NULL;
    PGresult *out = NULL;
    if (own && !PQntuples(r)) {
        PQclear(r);
        *err = *own;
        return NULL;
    }
    if (!PQntuples(r) || (PQgetisnull(r, 0, 1) && PQgetisnull(r, 0, 3))) {
        ctx->outcome = 409; /* deleted meanwhile, or an older version's unfinished request */
    } else if (strcmp(PQgetvalue(r, 0, 0), ctx->hash)) {
        ctx->outcome = 422;
    } else if (PQgetisnull(r, 0, 1)) { /* a response stored by 0002's code */
        ctx->outcome = 200;
        ctx->legacy_status = PQgetisnull(r, 0, 2) ? 200 : atoi(PQgetvalue(r, 0, 2));
        ctx->legacy_body = strdup(PQgetvalue(r, 0, 3));
    } else if (!(out = stored_result(PQgetvalue(r, 0, 1)))) {
        db_error_set(err, DB_ERR_QUERY, NULL, "idempotency_keys.result is malformed");
        ctx->outcome = 500;
    } else {
        ctx->replayed = true;
    }
    PQclear(r);
    if (!out && ctx->outcome != 500)
        db_error_set(err, DB_ERR_QUERY, KEY_TAKEN,
                     "Idempotency-Key in use: the framework answers (not an error)");
    return out;
}

static PGresult *hook(void *arg, db_session *s, const char *sql, int nparams,
                      const char *const *params, int format, db_error *err)
{
    idempotency *ctx = arg;
    if (ctx->statements++) {
        ctx->outcome = 500;
        db_error_set(err, DB_ERR_CONFIG, NULL,
                     "an Idempotency-Key route's handler ran a second statement (one statement "
                     "per request: see app/idempotency.h)");
        return NULL;
    }
    char *wrapped = wrap(sql, nparams);
    const char **all = malloc(sizeof *all * (size_t)(nparams + 4));
    if (!wrapped || !all) {
        free(wrapped);
        free(all);
        db_error_set(err, DB_ERR_TRANSIENT, NULL, "out of memory");
        return NULL;
    }
    char ttl[32];
    snprintf(ttl, sizeof ttl, "%.3f", app.cfg->idempotency_ttl);
    for (int i = 0; i < nparams; i++)
        all[i] = params[i];
    all[nparams] = ctx->req->user_id ? ctx->req->user_id : "";
    all[nparams + 1] = ctx->req->idempotency_key;
    all[nparams + 2] = ctx->hash;
    all[nparams + 3] = ttl;
    PGresult *r = db_query_format(s, wrapped, nparams + 4, all, format, err);
    free(wrapped);
    free(all);
    if (!r && err->kind == DB_ERR_QUERY) {
        /* The key's claim and the handler's write are one statement, and PostgreSQL does not say
         * which part fails first: a retry whose write hits the table's own UNIQUE (the row the
         * first request inserted) fails before the key's conflict can. Whatever failed, a key
         * already stored decides the answer (replay, 422, 409); only without one is the failure
         * the handler's. */
        db_error own = *err;
        return replay(ctx, s, strcmp(own.sqlstate, KEY_TAKEN) ? &own : NULL, err);
    }
    return r;
}

void idempotency_begin(idempotency *ctx, const http_request *req, db_session *s)
{
    *ctx = (idempotency){.req = req};
    request_hash(req, ctx->hash);
    db_session_set_query_hook(s, hook, ctx);
}

/* A response stored by 0002's code has no headers: its Location is the request's path + "/" +
 * the body's "id", as tasks.c wrote it. */
static void legacy_location(const idempotency *ctx, http_response *res)
{
    json_t *body = json_loads(ctx->legacy_body ? ctx->legacy_body : "", 0, NULL);
    json_t *id = json_object_get(body, "id");
    if (ctx->req->route->location && json_is_integer(id)) {
        char *path = resource_path(ctx->req);
        http_header_add(res, "Location", "%s/%lld", path ? path : "",
                        (long long)json_integer_value(id));
        free(path);
    }
    json_decref(body);
}

void idempotency_end(idempotency *ctx, db_session *s, http_response *res)
{
    db_session_set_query_hook(s, NULL, NULL);
    switch (ctx->outcome) {
    case 0:
        /* on the success status only: /openapi.json documents it there (openapi.c) */
        if (ctx->replayed && res->status == ctx->req->route->status)
            http_header_add(res, "Idempotent-Replayed", "true");
        break;
    case 200:
        http_response_reset(res);
        http_reply_raw(res, ctx->legacy_status, "application/json", ctx->legacy_body,
                       strlen(ctx->legacy_body ? ctx->legacy_body : ""));
        legacy_location(ctx, res);
        http_header_add(res, "Idempotent-Replayed", "true");
        break;
    case 409:
        http_response_reset(res);
        http_reply_detail(res, 409, "A request with this Idempotency-Key is in progress");
        break;
    case 422:
        http_response_reset(res);
        http_reply_detail(res, 422,
                          "Idempotency-Key was already used with a different request body");
        break;
    default:
        log_error("Idempotency-Key on %s %s: the handler ran a second statement or the stored "
                  "result is malformed",
                  ctx->req->route->method, ctx->req->route->path);
        http_response_reset(res); /* dispatch answers 500 */
        break;
    }
    free(ctx->legacy_body);
    ctx->legacy_body = NULL;
}

/* Up to this many rows per statement, so a large backlog never holds long locks. */
#define EXPIRE_BATCH 1000

int idempotency_expire(db_session *s, long *deleted, db_error *err)
{
    *deleted = 0;
    if (app.cfg->idempotency_ttl <= 0)
        return 0;
    char ttl[32], batch[16];
    snprintf(ttl, sizeof ttl, "%.3f", app.cfg->idempotency_ttl);
    snprintf(batch, sizeof batch, "%d", EXPIRE_BATCH);
    const char *params[] = {ttl, batch};
    for (int round = 0; round < 100; round++) {
        PGresult *r = db_query(s,
                               "delete from idempotency_keys where ctid = any(array("
                               "select ctid from idempotency_keys "
                               "where created_at < now() - $1::float8 * interval '1 second' "
                               "limit $2::int))",
                               2, params, err);
        if (!r)
            return -1;
        long n = atol(PQcmdTuples(r));
        PQclear(r);
        *deleted += n;
        if (n < EXPIRE_BATCH)
            break;
    }
    return 0;
}
