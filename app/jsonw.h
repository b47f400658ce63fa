/* jsonw: JSON text written straight into a growable buffer, for the hot replies (a task, a list of
 * tasks) where building jansson objects and dumping them cost more than the query's own client side
 * (measured: ~5 us per task with jansson). Strings are escaped exactly as jansson's json_dumps does
 * without flags (", \, control characters; UTF-8 passed through), so the output is the same text.
 *
 * Ownership: the buffer is malloc'd; jsonw_take hands it to the caller. An allocation failure is
 * remembered and reported by jsonw_take (NULL). Any thread; one writer per jsonw. */
#ifndef APP_JSONW_H
#define APP_JSONW_H

#include <stdbool.h>
#include <stddef.h>

typedef struct jsonw {
    char *buf;
    size_t len, cap;
    bool failed;
} jsonw;

/* Appends n bytes as they are (JSON punctuation, numbers, literals). */
void jsonw_raw(jsonw *w, const char *s, size_t n);

/* Appends a NUL-terminated literal as it is. */
void jsonw_lit(jsonw *w, const char *s);

/* Appends s (UTF-8, NUL-terminated) as a quoted, escaped JSON string. */
void jsonw_str(jsonw *w, const char *s);

/* The NUL-terminated text and its length; the caller frees it. NULL (and the buffer freed) when an
 * allocation failed. */
char *jsonw_take(jsonw *w, size_t *len);

#endif
