/* jsonw: see jsonw.h. Written by hand because jansson only serializes its own object trees. */
#include "app/jsonw.h"

#include <stdlib.h>
#include <string.h>

static bool reserve(jsonw *w, size_t n)
{
    if (w->failed)
        return false;
    if (w->len + n + 1 <= w->cap)
        return true;
    size_t cap = w->cap ? w->cap : 256;
    while (cap < w->len + n + 1)
        cap *= 2;
    char *b = realloc(w->buf, cap);
    if (!b) {
        w->failed = true;
        return false;
    }
    w->buf = b;
    w->cap = cap;
    return true;
}

void jsonw_raw(jsonw *w, const char *s, size_t n)
{
    if (!reserve(w, n))
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

void jsonw_lit(jsonw *w, const char *s)
{
    jsonw_raw(w, s, strlen(s));
}

void jsonw_str(jsonw *w, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    if (!reserve(w, n * 6 + 2)) /* worst case: every byte a \u00XX */
        return;
    char *o = w->buf + w->len;
    *o++ = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"':
        case '\\':
            *o++ = (char)c;
            break;
        case '\b':
            *o++ = 'b';
            break;
        case '\f':
            *o++ = 'f';
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\t':
            *o++ = 't';
            break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o++ = '"';
    w->len = (size_t)(o - w->buf);
}

char *jsonw_take(jsonw *w, size_t *len)
{
    if (w->failed || !reserve(w, 0)) {
        free(w->buf);
        *w = (jsonw){0};
        return NULL;
    }
    w->buf[w->len] = '\0';
    char *out = w->buf;
    *len = w->len;
    *w = (jsonw){0};
    return out;
}
