/* jsonw: JSON text written straight into a growable buffer, for the hot paths where building
 * jansson objects and dumping them costs more than the work itself: the task replies and every
 * log line. Strings are escaped exactly as jansson's
 * json_dumps does without flags (", \, control characters; valid UTF-8 passed through), so the
 * output is the same text; an invalid UTF-8 sequence, which jansson refuses, becomes U+FFFD.
 *
 * Storage: a jsonw may start on caller storage (jsonw_init, e.g. a stack array) and moves to the
 * heap when the text outgrows it; a zeroed jsonw starts on the heap. An allocation failure is
 * remembered: later appends do nothing and jsonw_data/jsonw_take return NULL. Release with
 * jsonw_free unless jsonw_take took the text. Any thread; one writer per jsonw. */
#ifndef CORE_JSONW_H
#define CORE_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct jsonw {
    char *buf;
    size_t len, cap;
    bool heap, failed;
} jsonw;

/* Starts w on `storage` (cap bytes, caller-owned; NULL/0 for none). */
void jsonw_init(jsonw *w, char *storage, size_t cap);

/* Appends n bytes as they are (JSON punctuation, numbers, literals). Inline: a page of tasks makes
 * a few hundred of these calls, nearly all of them into room the buffer already has. */
void jsonw_raw_grow(jsonw *w, const char *s, size_t n);
static inline void jsonw_raw(jsonw *w, const char *s, size_t n)
{
    if (w->len + n < w->cap && !w->failed) {
        memcpy(w->buf + w->len, s, n);
        w->len += n;
    } else {
        jsonw_raw_grow(w, s, n);
    }
}

/* jsonw_raw of n <= 32 bytes from s readable for 32: one copy of a fixed size (moves, not a
 * call to memcpy), for the keys of a model's fields, seven per row of a page. */
static inline void jsonw_raw32(jsonw *w, const char *s, size_t n)
{
    if (n <= 32 && w->len + 32 < w->cap && !w->failed) {
        memcpy(w->buf + w->len, s, 32);
        w->len += n;
    } else {
        jsonw_raw(w, s, n);
    }
}

/* Appends an integer as JSON text. */
void jsonw_int(jsonw *w, long long v);

/* Appends a NUL-terminated literal as it is. */
void jsonw_lit(jsonw *w, const char *s);

/* Appends s (UTF-8, NUL-terminated) as a quoted, escaped JSON string. */
void jsonw_str(jsonw *w, const char *s);

/* The text so far (not NUL-terminated) and its length, still owned by w; NULL after an allocation
 * failure. */
const char *jsonw_data(const jsonw *w, size_t *len);

/* The NUL-terminated text (malloc'd, the caller frees it) and its length; w is left empty. NULL
 * (and everything released) after an allocation failure. */
char *jsonw_take(jsonw *w, size_t *len);

/* Releases the heap storage, if any; w is left empty. */
void jsonw_free(jsonw *w);

#endif
