/* env: see env.h. The .env parser is hand-written because no Debian-packaged C library reads dotenv
 * files; it follows the subset that docker compose and python-dotenv agree on. */
#include "core/env.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *env_str(const char *name, const char *def)
{
    const char *v = getenv(name);
    return (v && *v) ? v : def;
}

/* Quotes a user-supplied value for an error message, cutting it short so one bad value cannot flood
 * the log. */
static void quote_value(const char *v, char *out, size_t outlen)
{
    size_t n = strlen(v);
    if (n > 60)
        snprintf(out, outlen, "\"%.57s...\"", v);
    else
        snprintf(out, outlen, "\"%s\"", v);
}

int env_int(const char *name, long def, long min, long max, long *out, char err[ENV_ERR_LEN])
{
    const char *v = env_str(name, NULL);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    while (*end && isspace((unsigned char)*end))
        end++;
    if (errno || end == v || *end || x < min || x > max) {
        char q[80];
        quote_value(v, q, sizeof q);
        snprintf(err, ENV_ERR_LEN, "%s must be an integer from %ld to %ld, got %s", name, min, max,
                 q);
        return -1;
    }
    *out = x;
    return 0;
}

int env_parse_seconds(const char *text, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(text, &end);
    while (*end && isspace((unsigned char)*end))
        end++;
    /* strtod accepts "inf", "nan" and hex floats: a duration is a plain decimal number */
    if (errno || end == text || *end || !isfinite(x) || strpbrk(text, "xXnNiI"))
        return -1;
    *out = x;
    return 0;
}

int env_seconds(const char *name, double def, double min, double max, double *out,
                char err[ENV_ERR_LEN])
{
    const char *v = env_str(name, NULL);
    if (!v) {
        *out = def;
        return 0;
    }
    double x;
    if (env_parse_seconds(v, &x) < 0 || x < min || x > max) {
        char q[80];
        quote_value(v, q, sizeof q);
        snprintf(err, ENV_ERR_LEN, "%s must be a number of seconds from %g to %g, got %s", name,
                 min, max, q);
        return -1;
    }
    *out = x;
    return 0;
}

int env_bool(const char *name, bool def, bool *out, char err[ENV_ERR_LEN])
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    const char *v = env_str(name, NULL);
    if (!v) {
        *out = def;
        return 0;
    }
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(v, yes[i])) {
            *out = true;
            return 0;
        }
        if (!strcasecmp(v, no[i])) {
            *out = false;
            return 0;
        }
    }
    char q[80];
    quote_value(v, q, sizeof q);
    snprintf(err, ENV_ERR_LEN, "%s must be true or false, got %s", name, q);
    return -1;
}

int env_choice(const char *name, const char *def, const char *const choices[], int *out,
               char err[ENV_ERR_LEN])
{
    const char *v = env_str(name, def);
    for (int i = 0; choices[i]; i++) {
        if (!strcasecmp(v, choices[i])) {
            *out = i;
            return 0;
        }
    }
    char list[256] = "";
    size_t used = 0;
    for (int i = 0; choices[i] && used < sizeof list; i++)
        used +=
            (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", choices[i]);
    char q[80];
    quote_value(v, q, sizeof q);
    snprintf(err, ENV_ERR_LEN, "%s must be one of %s, got %s", name, list, q);
    return -1;
}

/* Parses the value part of a .env line in place; returns NULL on an unterminated quote. */
static char *parse_value(char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\'' || *p == '"') {
        char quote = *p++;
        char *dst = p, *src = p;
        while (*src && *src != quote) {
            if (quote == '"' && *src == '\\' && src[1]) {
                src++;
                *dst++ = *src == 'n' ? '\n' : *src == 't' ? '\t' : *src;
                src++;
            } else {
                *dst++ = *src++;
            }
        }
        if (*src != quote)
            return NULL;
        *dst = '\0';
        return p;
    }
    /* unquoted: an inline comment starts at " #" */
    for (char *c = p; *c; c++) {
        if (*c == '#' && c > p && (c[-1] == ' ' || c[-1] == '\t')) {
            *c = '\0';
            break;
        }
    }
    size_t n = strlen(p);
    while (n && isspace((unsigned char)p[n - 1]))
        p[--n] = '\0';
    return p;
}

int env_load_file(const char *path, char err[ENV_ERR_LEN])
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, ENV_ERR_LEN, "could not read %s: %s", path, strerror(errno));
        return -1;
    }
    char line[8192];
    int lineno = 0, rc = 1;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (!*p || *p == '#')
            continue;
        if (!strncmp(p, "export ", 7))
            p += 7;
        char *eq = strchr(p, '=');
        char *key_end = eq;
        while (key_end && key_end > p && isspace((unsigned char)key_end[-1]))
            key_end--;
        bool key_ok = eq && key_end > p;
        for (char *k = p; key_ok && k < key_end; k++)
            key_ok = isalnum((unsigned char)*k) || *k == '_';
        char *value = key_ok ? parse_value(eq + 1) : NULL;
        if (!value) {
            snprintf(err, ENV_ERR_LEN, "%s line %d: expected KEY=VALUE", path, lineno);
            rc = -1;
            break;
        }
        *key_end = '\0';
        if (!getenv(p))
            setenv(p, value, 0);
    }
    if (rc > 0 && ferror(f)) {
        snprintf(err, ENV_ERR_LEN, "could not read %s: %s", path, strerror(errno));
        rc = -1;
    }
    fclose(f);
    return rc;
}
