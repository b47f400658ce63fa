/* validate: path, query and body checks with FastAPI's 422 in Pydantic v2's shape.
 *
 * Every problem of a request is collected at once into one JSON array of objects like
 *     {"type": "string_too_long", "loc": ["body", "title"], "msg": "...", "input": ..., "ctx": {}}
 * The same specs drive /openapi.json (openapi.c), so what is documented is what is enforced.
 * Strings are measured in Unicode code points (what Python's len() counts), never bytes.
 * Pure functions of their inputs: any thread. */
#ifndef APP_VALIDATE_H
#define APP_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "app/http.h"

typedef enum { PARAM_PATH, PARAM_QUERY } param_in;
typedef enum { TYPE_STRING, TYPE_INT, TYPE_BOOL } value_type;

/* A path or query parameter. Lists end with an entry whose name is NULL. */
typedef struct param_spec {
    const char *name;
    param_in in;
    value_type type;            /* TYPE_STRING or TYPE_INT */
    const char *def;            /* default as text, NULL: none (absent stays unset) */
    const char *const *choices; /* NULL-terminated literals (Literal[...]), or NULL */
    bool has_ge, has_le;
    long long ge, le;
    int min_len, max_len; /* characters; 0: no limit */
    const char *description;
} param_spec;

/* A field of a JSON object: a request body's (validated) or a response model's (router.h).
 * Lists end with an entry whose name is NULL. */
typedef struct field_spec {
    const char *name;
    value_type type; /* TYPE_STRING, TYPE_INT or TYPE_BOOL */
    bool required;
    bool nullable;
    int min_len, max_len; /* characters; 0: no limit */
    bool not_blank;       /* refuse strings made only of whitespace */
    const char *def_json; /* default ("false", "null"), may be NULL: a request body that leaves
                             the field out gets it (validate_body), and OpenAPI shows it */
    const char *description;
    /* strings: OpenAPI format. "uri": validated in request bodies (an absolute URL with a scheme
     * and a host; 422 url_parsing). "date-time": documented (responses), not validated. */
    const char *format;
    /* strings: a POSIX extended regular expression the value must match somewhere (anchor it with
     * ^...$ for the whole value); 422 string_pattern_mismatch; in OpenAPI as `pattern` (keep to
     * the syntax ERE and ECMA-262 share: classes, [a-z], *, +, ?, {m,n}, ^, $, |). */
    const char *pattern;
} field_spec;

/* A model: a JSON object's schema name and fields (a request body, a response). */
typedef struct body_spec {
    const char *schema; /* component name in OpenAPI ("TaskCreate", "Task") */
    const field_spec *fields;
} body_spec;

/* Number of Unicode code points in a valid UTF-8 string of len bytes. */
size_t utf8_chars(const char *s, size_t len);

/* True when s[0..len) is valid UTF-8 (no overlongs, no surrogates) without NUL bytes. */
bool utf8_valid(const char *s, size_t len);

/* Appends one error object to `errors` (a JSON array). `input` and `ctx` are stolen (may be NULL:
 * ctx omitted; input NULL means JSON null). loc2 may be NULL (loc has one element) and loc2_index
 * >= 0 adds an integer instead (json_invalid's byte offset). */
void validate_error(json_t *errors, const char *type, const char *loc1, const char *loc2,
                    long loc2_index, const char *msg, json_t *input, json_t *ctx);

/* Checks one raw parameter value (already percent-decoded; NULL when absent) against its spec and
 * stores the result in *out (pointing at `raw` or at the spec's default). Appends problems to
 * errors. Returns true when valid. */
bool validate_param(const param_spec *spec, const char *raw, http_value *out, json_t *errors);

/* Parses body[0..len) as JSON and checks it against spec. Returns the object (caller owns it), with
 * every field the body left out and the spec gives a default (def_json) set to it, or NULL with
 * problems appended to errors (json_invalid, model_attributes_type, missing, ...). */
json_t *validate_body(const body_spec *spec, const char *body, size_t len, json_t *errors);

#endif
