/* diff: see diff.h. */
#include "migrate/diff.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char **s; /* line starts (not NUL-terminated) */
    size_t *len;
    size_t *ctx; /* index of the line that heads this line's statement */
    size_t n;
} lines;

static int split_lines(const char *text, lines *l)
{
    size_t cap = 1;
    for (const char *p = text; *p; p++)
        cap += *p == '\n';
    l->s = malloc(cap * sizeof *l->s);
    l->len = malloc(cap * sizeof *l->len);
    l->ctx = malloc(cap * sizeof *l->ctx);
    l->n = 0;
    if (!l->s || !l->len || !l->ctx)
        return -1;
    size_t head = 0;
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        if (n > 0 && p[0] != ' ' && p[0] != ')' && p[0] != '\t')
            head = l->n;
        l->s[l->n] = p;
        l->len[l->n] = n;
        l->ctx[l->n] = head;
        l->n++;
        p += n + (p[n] == '\n');
    }
    return 0;
}

static void free_lines(lines *l)
{
    free(l->s);
    free(l->len);
    free(l->ctx);
}

static int same(const lines *a, size_t i, const lines *b, size_t j)
{
    return a->len[i] == b->len[j] && !memcmp(a->s[i], b->s[j], a->len[i]);
}

/* Prints one changed line, preceded by its statement's first line when that differs from the one
 * printed last (compared by text, so "-" and "+" lines of one table share a heading). */
static void show(FILE *out, char sign, const lines *l, size_t i, const char **last_head,
                 size_t *last_len)
{
    if (!out)
        return;
    size_t h = l->ctx[i];
    bool same_head =
        *last_head && *last_len == l->len[h] && !memcmp(*last_head, l->s[h], *last_len);
    if (h != i && !same_head)
        fprintf(out, " %.*s\n", (int)l->len[h], l->s[h]);
    *last_head = l->s[h];
    *last_len = l->len[h];
    fprintf(out, "%c%.*s\n", sign, (int)l->len[i], l->s[i]);
}

int mig_diff_lines(const char *expected, const char *actual, FILE *out)
{
    lines a = {0}, b = {0};
    int rc = -1;
    if (split_lines(expected, &a) < 0 || split_lines(actual, &b) < 0)
        goto done;
    /* t[i][j] = LCS length of a[i..] and b[j..] */
    size_t w = b.n + 1;
    unsigned *t = calloc((a.n + 1) * w, sizeof *t);
    if (!t)
        goto done;
    for (size_t i = a.n; i-- > 0;)
        for (size_t j = b.n; j-- > 0;)
            t[i * w + j] = same(&a, i, &b, j)                       ? t[(i + 1) * w + j + 1] + 1
                           : t[(i + 1) * w + j] >= t[i * w + j + 1] ? t[(i + 1) * w + j]
                                                                    : t[i * w + j + 1];
    size_t i = 0, j = 0, changed = 0, last_len = 0;
    const char *last_head = NULL;
    while (i < a.n || j < b.n) {
        if (i < a.n && j < b.n && same(&a, i, &b, j)) {
            i++, j++;
        } else if (j >= b.n || (i < a.n && t[(i + 1) * w + j] >= t[i * w + j + 1])) {
            show(out, '-', &a, i++, &last_head, &last_len);
            changed++;
        } else {
            show(out, '+', &b, j++, &last_head, &last_len);
            changed++;
        }
    }
    free(t);
    rc = (int)changed;
done:
    free_lines(&a);
    free_lines(&b);
    return rc;
}
