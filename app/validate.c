/* validate: see validate.h. Messages are Pydantic v2's, word for word, so clients written against
 * FastAPI parse ours unchanged. */
#include "app/validate.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80; /* count every byte that starts a character */
    return n;
}

bool utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        int n;
        unsigned cp;
        if (c == 0)
            return false;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, cp = c & 0x07;
        } else {
            return false;
        }
        if (end - p <= n)
            return false;
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        static const unsigned min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += n + 1;
    }
    return true;
}

void validate_error(json_t *errors, const char *type, const char *loc1, const char *loc2,
                    long loc2_index, const char *msg, json_t *input, json_t *ctx)
{
    json_t *loc = json_pack("[s]", loc1);
    if (loc2)
        json_array_append_new(loc, json_string(loc2));
    else if (loc2_index >= 0)
        json_array_append_new(loc, json_integer(loc2_index));
    json_t *e = json_pack("{ss so ss so}", "type", type, "loc", loc, "msg", msg, "input",
                          input ? input : json_null());
    if (ctx)
        json_object_set_new(e, "ctx", ctx);
    json_array_append_new(errors, e);
}

static const char *where(param_in in)
{
    return in == PARAM_PATH ? "path" : "query";
}

/* string_too_short / string_too_long for a string of `chars` characters; true when within. */
static bool check_length(size_t chars, int min_len, int max_len, const char *loc1, const char *loc2,
                         json_t *input, json_t *errors)
{
    char msg[96];
    if (min_len > 0 && chars < (size_t)min_len) {
        snprintf(msg, sizeof msg, "String should have at least %d character%s", min_len,
                 min_len == 1 ? "" : "s");
        validate_error(errors, "string_too_short", loc1, loc2, -1, msg, json_incref(input),
                       json_pack("{si}", "min_length", min_len));
        return false;
    }
    if (max_len > 0 && chars > (size_t)max_len) {
        snprintf(msg, sizeof msg, "String should have at most %d character%s", max_len,
                 max_len == 1 ? "" : "s");
        validate_error(errors, "string_too_long", loc1, loc2, -1, msg, json_incref(input),
                       json_pack("{si}", "max_length", max_len));
        return false;
    }
    return true;
}

static bool check_choice(const param_spec *spec, const char *raw, json_t *errors)
{
    for (int i = 0; spec->choices[i]; i++)
        if (!strcmp(spec->choices[i], raw))
            return true;
    char expected[256] = "";
    size_t n = 0;
    for (int i = 0; spec->choices[i]; i++) {
        const char *sep = !i ? "" : spec->choices[i + 1] ? ", " : " or ";
        n += (size_t)snprintf(expected + n, sizeof expected - n, "%s'%s'", sep, spec->choices[i]);
        if (n >= sizeof expected)
            break;
    }
    char msg[300];
    snprintf(msg, sizeof msg, "Input should be %s", expected);
    validate_error(errors, "literal_error", where(spec->in), spec->name, -1, msg, json_string(raw),
                   json_pack("{ss}", "expected", expected));
    return false;
}

static bool check_int(const param_spec *spec, const char *raw, http_value *out, json_t *errors)
{
    const char *loc = where(spec->in);
    char *end;
    errno = 0;
    long long v = strtoll(raw, &end, 10);
    while (*end && isspace((unsigned char)*end))
        end++;
    if (!*raw || isspace((unsigned char)*raw) || *end || errno == ERANGE) {
        validate_error(errors, "int_parsing", loc, spec->name, -1,
                       "Input should be a valid integer, unable to parse string as an integer",
                       json_string(raw), NULL);
        return false;
    }
    char msg[96];
    if (spec->has_ge && v < spec->ge) {
        snprintf(msg, sizeof msg, "Input should be greater than or equal to %lld", spec->ge);
        validate_error(errors, "greater_than_equal", loc, spec->name, -1, msg, json_string(raw),
                       json_pack("{sI}", "ge", (json_int_t)spec->ge));
        return false;
    }
    if (spec->has_le && v > spec->le) {
        snprintf(msg, sizeof msg, "Input should be less than or equal to %lld", spec->le);
        validate_error(errors, "less_than_equal", loc, spec->name, -1, msg, json_string(raw),
                       json_pack("{sI}", "le", (json_int_t)spec->le));
        return false;
    }
    out->num = v;
    return true;
}

bool validate_param(const param_spec *spec, const char *raw, http_value *out, json_t *errors)
{
    memset(out, 0, sizeof *out);
    if (!raw)
        raw = spec->def;
    if (!raw)
        return true;
    out->str = raw;
    size_t len = strlen(raw);
    if (!utf8_valid(raw, len)) {
        validate_error(
            errors, "string_unicode", where(spec->in), spec->name, -1,
            "Input should be a valid string, unable to parse raw data as a unicode string", NULL,
            NULL);
        return false;
    }
    bool ok;
    if (spec->type == TYPE_INT) {
        ok = check_int(spec, raw, out, errors);
    } else {
        json_t *input = json_string(raw);
        ok = check_length(utf8_chars(raw, len), spec->min_len, spec->max_len, where(spec->in),
                          spec->name, input, errors);
        json_decref(input);
        if (ok && spec->choices)
            ok = check_choice(spec, raw, errors);
    }
    out->set = ok;
    return ok;
}

static bool blank(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return false;
    return true;
}

/* format "uri": Pydantic's AnyUrl, through libcurl's parser (the library made for it): a scheme
 * and a host. */
static bool check_uri(const field_spec *f, json_t *v, json_t *errors)
{
    CURLU *u = curl_url();
    char *host = NULL;
    CURLUcode rc =
        u ? curl_url_set(u, CURLUPART_URL, json_string_value(v), 0) : CURLUE_OUT_OF_MEMORY;
    if (rc == CURLUE_OK)
        rc = curl_url_get(u, CURLUPART_HOST, &host, 0);
    const char *why = rc == CURLUE_OK && host && *host ? NULL
                      : rc == CURLUE_BAD_SCHEME || !strstr(json_string_value(v), "://")
                          ? "relative URL without a base"
                          : "invalid international domain name or host";
    curl_free(host);
    curl_url_cleanup(u);
    if (!why)
        return true;
    char msg[128];
    snprintf(msg, sizeof msg, "Input should be a valid URL, %s", why);
    validate_error(errors, "url_parsing", "body", f->name, -1, msg, json_incref(v),
                   json_pack("{ss}", "error", why));
    return false;
}

/* The pattern is compiled per check: a few microseconds, only for fields that declare one. */
static bool check_pattern(const field_spec *f, json_t *v, json_t *errors)
{
    regex_t re;
    if (regcomp(&re, f->pattern, REG_EXTENDED | REG_NOSUB) != 0) {
        validate_error(errors, "value_error", "body", f->name, -1,
                       "Value error, the field's pattern does not compile", json_incref(v), NULL);
        return false;
    }
    bool ok = regexec(&re, json_string_value(v), 0, NULL, 0) == 0;
    regfree(&re);
    if (!ok) {
        char msg[300];
        snprintf(msg, sizeof msg, "String should match pattern '%s'", f->pattern);
        validate_error(errors, "string_pattern_mismatch", "body", f->name, -1, msg, json_incref(v),
                       json_pack("{ss}", "pattern", f->pattern));
    }
    return ok;
}

static void check_field(const field_spec *f, json_t *obj, json_t *errors)
{
    json_t *v = json_object_get(obj, f->name);
    if (!v) {
        if (f->required)
            validate_error(errors, "missing", "body", f->name, -1, "Field required",
                           json_incref(obj), NULL);
        else if (f->def_json) /* the default, applied once here: handlers read the body as is */
            json_object_set_new(obj, f->name, json_loads(f->def_json, JSON_DECODE_ANY, NULL));
        return;
    }
    if (json_is_null(v) && f->nullable)
        return;
    if (f->type == TYPE_INT) {
        if (!json_is_integer(v))
            validate_error(errors, "int_type", "body", f->name, -1,
                           "Input should be a valid integer", json_incref(v), NULL);
        return;
    }
    if (f->type == TYPE_BOOL) {
        if (!json_is_boolean(v))
            validate_error(errors, "bool_type", "body", f->name, -1,
                           "Input should be a valid boolean", json_incref(v), NULL);
        return;
    }
    if (!json_is_string(v)) {
        validate_error(errors, "string_type", "body", f->name, -1, "Input should be a valid string",
                       json_incref(v), NULL);
        return;
    }
    const char *s = json_string_value(v);
    if (!check_length(utf8_chars(s, json_string_length(v)), f->min_len, f->max_len, "body", f->name,
                      v, errors))
        return;
    if (f->pattern && !check_pattern(f, v, errors))
        return;
    if (f->format && !strcmp(f->format, "uri") && !check_uri(f, v, errors))
        return;
    if (f->not_blank && blank(s)) {
        char msg[128];
        snprintf(msg, sizeof msg, "Value error, %s must not be blank", f->name);
        validate_error(errors, "value_error", "body", f->name, -1, msg, json_incref(v),
                       json_pack("{ss}", "error", "must not be blank"));
    }
}

json_t *validate_body(const body_spec *spec, const char *body, size_t len, json_t *errors)
{
    size_t before = json_array_size(errors);
    if (len == 0) {
        validate_error(errors, "missing", "body", NULL, -1, "Field required", NULL, NULL);
        return NULL;
    }
    json_error_t jerr;
    /* jansson rejects invalid UTF-8 and \u0000, as PostgreSQL text would */
    json_t *obj = json_loadb(body, len, JSON_DECODE_ANY, &jerr);
    if (!obj) {
        validate_error(errors, "json_invalid", "body", NULL, jerr.position, "JSON decode error",
                       json_object(), json_pack("{ss}", "error", jerr.text));
        return NULL;
    }
    if (!json_is_object(obj)) {
        validate_error(errors, "model_attributes_type", "body", NULL, -1,
                       "Input should be a valid dictionary or object to extract fields from", obj,
                       NULL);
        return NULL;
    }
    for (const field_spec *f = spec->fields; f->name; f++)
        check_field(f, obj, errors);
    if (json_array_size(errors) != before) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}
