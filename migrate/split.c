/* split: see split.h. The rules follow psql's lexer (src/fe_utils/psqlscan.l). */
#include "migrate/split.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const char *text;
    size_t pos;      /* next character to read */
    size_t line_pos; /* `line` is the line number of text[line_pos] */
    int line;
    size_t line_start; /* position of the first character of line `line` */
    int last_end_line; /* line of the ';' that ended the last statement, 0 before one */
    long stmt_start;   /* -1 while the current statement has no token yet */
    int stmt_line, stmt_col;
    int paren_depth;
    int begin_depth; /* BEGIN ... END blocks of CREATE FUNCTION/PROCEDURE bodies */
    int ident_count; /* identifiers seen in this statement */
    char idents[4];  /* first letter of the first 4 when they are
                        create/or/replace/function/procedure */
    mig_stmts *out;
} lexer;

static bool ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool ident_char(unsigned char c)
{
    return ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

static int line_at(lexer *lx, size_t pos)
{
    for (; lx->line_pos < pos; lx->line_pos++)
        if (lx->text[lx->line_pos] == '\n') {
            lx->line++;
            lx->line_start = lx->line_pos + 1;
        }
    return lx->line;
}

/* Column of pos, which must be on the line line_at() last returned. */
static int col_at(const lexer *lx, size_t pos)
{
    return (int)(pos - lx->line_start) + 1;
}

static void reset_statement(lexer *lx)
{
    lx->stmt_start = -1;
    lx->paren_depth = lx->begin_depth = lx->ident_count = 0;
    memset(lx->idents, 0, sizeof lx->idents);
}

static int emit(lexer *lx, size_t end)
{
    if (lx->stmt_start < 0)
        return 0;
    size_t start = (size_t)lx->stmt_start;
    while (end > start && strchr(" \t\r\n\f\v", lx->text[end - 1]))
        end--;
    mig_stmt *items = realloc(lx->out->items, (lx->out->count + 1) * sizeof *items);
    if (!items)
        return -1;
    lx->out->items = items;
    char *sql = strndup(lx->text + start, end - start);
    if (!sql)
        return -1;
    items[lx->out->count].sql = sql;
    items[lx->out->count].line = lx->stmt_line;
    items[lx->out->count].col = lx->stmt_col;
    lx->out->count++;
    reset_statement(lx);
    return 0;
}

/* psql's heuristic: inside CREATE [OR REPLACE] FUNCTION|PROCEDURE, BEGIN (ATOMIC) ... END is a body
 * whose semicolons do not end the statement; CASE ... END nests inside it. */
static void track_identifier(lexer *lx, const char *word, size_t len)
{
    static const char *const keys[] = {"create", "or", "replace", "function", "procedure"};
    int n = lx->ident_count++;
    if (n < 4) {
        for (size_t k = 0; k < 5; k++)
            if (strlen(keys[k]) == len && !strncasecmp(word, keys[k], len))
                lx->idents[n] = keys[k][0];
    }
    const char *id = lx->idents;
    bool in_create =
        id[0] == 'c' && (id[1] == 'f' || id[1] == 'p' ||
                         (id[1] == 'o' && id[2] == 'r' && (id[3] == 'f' || id[3] == 'p')));
    if (!in_create || lx->paren_depth != 0)
        return;
    if (len == 5 && !strncasecmp(word, "begin", 5))
        lx->begin_depth++;
    else if (len == 4 && !strncasecmp(word, "case", 4) && lx->begin_depth >= 1)
        lx->begin_depth++;
    else if (len == 3 && !strncasecmp(word, "end", 3) && lx->begin_depth > 0)
        lx->begin_depth--;
}

/* Skips a quoted run starting at the opening quote; returns false when it is not closed. */
static bool skip_quoted(lexer *lx, char quote, bool backslash_escapes)
{
    const char *t = lx->text;
    size_t i = lx->pos + 1;
    for (;;) {
        if (!t[i])
            return false;
        if (backslash_escapes && t[i] == '\\' && t[i + 1]) {
            i += 2;
        } else if (t[i] == quote && t[i + 1] == quote) {
            i += 2;
        } else if (t[i] == quote) {
            lx->pos = i + 1;
            return true;
        } else {
            i++;
        }
    }
}

/* At '$': a dollar quote ($$ or $tag$) is skipped whole. Returns 1 when skipped, 0 when this '$' is
 * not a dollar quote (a $1 parameter), -1 when the dollar quote is not closed. */
static int skip_dollar(lexer *lx)
{
    const char *t = lx->text;
    size_t i = lx->pos + 1;
    if (t[i] != '$') {
        if (!ident_start((unsigned char)t[i]))
            return 0;
        while (ident_char((unsigned char)t[i]) && t[i] != '$')
            i++;
        if (t[i] != '$')
            return 0;
    }
    size_t taglen = i + 1 - lx->pos;
    char *tag = strndup(t + lx->pos, taglen);
    if (!tag)
        return -1;
    const char *close = strstr(t + i + 1, tag);
    free(tag);
    if (!close)
        return -1;
    lx->pos = (size_t)(close - t) + taglen;
    return 1;
}

/* Skips a block comment (they nest in PostgreSQL); returns false when it is not closed. */
static bool skip_block_comment(lexer *lx)
{
    const char *t = lx->text;
    size_t i = lx->pos + 2;
    int depth = 1;
    while (t[i]) {
        if (t[i] == '/' && t[i + 1] == '*') {
            depth++;
            i += 2;
        } else if (t[i] == '*' && t[i + 1] == '/') {
            i += 2;
            if (--depth == 0) {
                lx->pos = i;
                return true;
            }
        } else {
            i++;
        }
    }
    return false;
}

/* Records the line comment at lx->pos and moves to the end of its line. */
static int comment(lexer *lx)
{
    const char *t = lx->text;
    size_t start = lx->pos;
    while (t[lx->pos] && t[lx->pos] != '\n')
        lx->pos++;
    mig_stmts *out = lx->out;
    mig_comment *a = realloc(out->comments, (out->ncomments + 1) * sizeof *a);
    if (!a)
        return -1;
    out->comments = a;
    mig_comment *m = &a[out->ncomments];
    m->line = line_at(lx, start);
    m->col = col_at(lx, start);
    m->stmt = out->count;
    if (lx->stmt_start < 0 && out->count > 0 && lx->last_end_line == m->line)
        m->stmt = out->count - 1; /* "...; -- comment" belongs to the statement it follows */
    m->text = strndup(t + start, lx->pos - start);
    if (!m->text)
        return -1;
    out->ncomments++;
    return 0;
}

static int unterminated(lexer *lx, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s starting on line %d is not closed", what, line_at(lx, lx->pos));
    return -1;
}

/* Consumes one token or one character at lx->pos. Returns 0, or -1 with err set. */
static int step(lexer *lx, char *err, size_t errlen)
{
    const char *t = lx->text;
    unsigned char c = (unsigned char)t[lx->pos];
    if (strchr(" \t\r\n\f\v", c)) {
        lx->pos++;
        return 0;
    }
    if (c == '-' && t[lx->pos + 1] == '-') {
        if (comment(lx) < 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        return 0;
    }
    if (c == '/' && t[lx->pos + 1] == '*')
        return skip_block_comment(lx) ? 0 : unterminated(lx, "a block comment", err, errlen);
    if (c == ';' && lx->paren_depth == 0 && lx->begin_depth == 0) {
        if (lx->stmt_start >= 0)
            lx->last_end_line = line_at(lx, lx->pos);
        if (emit(lx, lx->pos) < 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        lx->pos++;
        return 0;
    }
    if (lx->stmt_start < 0) {
        lx->stmt_start = (long)lx->pos;
        lx->stmt_line = line_at(lx, lx->pos); /* line_at only moves forward: ask in text order */
        lx->stmt_col = col_at(lx, lx->pos);
    }
    if (c == '\'')
        return skip_quoted(lx, '\'', false) ? 0 : unterminated(lx, "a quoted string", err, errlen);
    if (c == '"')
        return skip_quoted(lx, '"', false) ? 0
                                           : unterminated(lx, "a quoted identifier", err, errlen);
    if (c == '$') {
        int r = skip_dollar(lx);
        if (r < 0)
            return unterminated(lx, "a dollar-quoted string", err, errlen);
        if (r == 0)
            lx->pos++;
        return 0;
    }
    if ((c == 'E' || c == 'e') && t[lx->pos + 1] == '\'') {
        lx->pos++; /* E'...': backslash escapes */
        return skip_quoted(lx, '\'', true) ? 0 : unterminated(lx, "a quoted string", err, errlen);
    }
    if (ident_start(c)) {
        size_t start = lx->pos;
        while (ident_char((unsigned char)t[lx->pos]))
            lx->pos++;
        track_identifier(lx, t + start, lx->pos - start);
        return 0;
    }
    if (c == '(')
        lx->paren_depth++;
    else if (c == ')' && lx->paren_depth > 0)
        lx->paren_depth--;
    lx->pos++;
    return 0;
}

int mig_split(const char *sql, int first_line, mig_stmts *out, char *err, size_t errlen)
{
    out->items = NULL;
    out->count = 0;
    out->comments = NULL;
    out->ncomments = 0;
    lexer lx = {.text = sql, .line = first_line, .out = out};
    reset_statement(&lx);
    while (sql[lx.pos])
        if (step(&lx, err, errlen) < 0)
            return -1;
    if (emit(&lx, lx.pos) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

void mig_stmts_free(mig_stmts *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->items[i].sql);
    free(list->items);
    for (size_t i = 0; i < list->ncomments; i++)
        free(list->comments[i].text);
    free(list->comments);
    list->items = NULL;
    list->count = 0;
    list->comments = NULL;
    list->ncomments = 0;
}
