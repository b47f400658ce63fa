/* jsonw: see jsonw.h. Written by hand because jansson only serializes its own object trees. */
#include "core/jsonw.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void jsonw_init(jsonw *w, char *storage, size_t cap)
{
    *w = (jsonw){.buf = storage, .cap = storage ? cap : 0};
}

static bool reserve(jsonw *w, size_t n)
{
    if (w->failed)
        return false;
    if (w->len + n + 1 <= w->cap)
        return true;
    size_t cap = w->cap ? w->cap * 2 : 256;
    while (cap < w->len + n + 1)
        cap *= 2;
    char *b = w->heap ? realloc(w->buf, cap) : malloc(cap);
    if (!b) {
        w->failed = true;
        return false;
    }
    if (!w->heap && w->len)
        memcpy(b, w->buf, w->len); /* leaving the caller's storage */
    w->buf = b;
    w->cap = cap;
    w->heap = true;
    return true;
}

void jsonw_raw_grow(jsonw *w, const char *s, size_t n)
{
    if (!reserve(w, n))
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

void jsonw_int(jsonw *w, long long v)
{
    char digits[24], *o = digits + sizeof digits;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--o = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--o = '-';
    jsonw_raw(w, o, (size_t)(digits + sizeof digits - o));
}

void jsonw_lit(jsonw *w, const char *s)
{
    jsonw_raw(w, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (lead byte >= 0x80), or 0 when it is not one
 * (overlong forms, surrogates and code points above U+10FFFF are not). */
static int utf8_seq(const unsigned char *s)
{
    int n = s[0] >= 0xF0 && s[0] <= 0xF4  ? 4
            : s[0] >= 0xE0 && s[0] < 0xF0 ? 3
            : s[0] >= 0xC2 && s[0] < 0xE0 ? 2
                                          : 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((n == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0))) ||
        (n == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))))
        return 0;
    return n;
}

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Whether one of the 8 bytes of v is a control, '"', '\\' or >= 0x80: the bytes a JSON string
 * cannot carry as they are (the usual SWAR tests: a byte below k sets its high bit in v - k*ONES
 * where it was clear in v; a false positive only follows a true one in the same word). */
static bool word_special(uint64_t v)
{
    uint64_t quote = v ^ (ONES * '"'), slash = v ^ (ONES * '\\');
    return ((v | ((v - ONES * 0x20) & ~v) | ((quote - ONES) & ~quote) | ((slash - ONES) & ~slash)) &
            HIGHS) != 0;
}

void jsonw_str(jsonw *w, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    if (!reserve(w, n * 6 + 2)) /* worst case: every byte a \u00XX */
        return;
    char *o = w->buf + w->len;
    *o++ = '"';
    const unsigned char *q = (const unsigned char *)s, *end = q + n;
    for (;;) {
        /* plain ASCII a word at a time: titles and descriptions are mostly that */
        const unsigned char *run = q;
        uint64_t v;
        while (end - q >= 8 && (memcpy(&v, q, 8), !word_special(v)))
            q += 8;
        while (q < end && *q >= 0x20 && *q < 0x80 && *q != '"' && *q != '\\')
            q++;
        memcpy(o, run, (size_t)(q - run));
        o += q - run;
        if (q == end)
            break;
        unsigned char c = *q;
        if (c >= 0x80) { /* s is NUL-terminated: utf8_seq stops at the end */
            int seq = utf8_seq(q);
            if (seq) {
                memcpy(o, q, (size_t)seq);
                o += seq;
                q += seq;
            } else {
                /* 6 bytes into the middle of the escaped string: no terminator wanted */
                memcpy(o, "\\uFFFD", 6); // NOLINT(bugprone-not-null-terminated-result)
                o += 6;
                q++;
            }
            continue;
        }
        q++;
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

const char *jsonw_data(const jsonw *w, size_t *len)
{
    *len = w->failed ? 0 : w->len;
    return w->failed ? NULL : w->buf;
}

void jsonw_free(jsonw *w)
{
    if (w->heap)
        free(w->buf);
    *w = (jsonw){0};
}

char *jsonw_take(jsonw *w, size_t *len)
{
    if (w->failed || !reserve(w, 0)) {
        jsonw_free(w);
        return NULL;
    }
    char *out = w->buf;
    if (!w->heap) { /* still on the caller's storage: hand out a copy */
        out = malloc(w->len + 1);
        if (!out) {
            jsonw_free(w);
            return NULL;
        }
        memcpy(out, w->buf, w->len);
    }
    out[w->len] = '\0';
    *len = w->len;
    *w = (jsonw){0};
    return out;
}
