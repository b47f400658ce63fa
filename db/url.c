/* url: see url.h. */
#include "db/url.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing string; on allocation failure `data` becomes NULL and stays NULL. */
typedef struct {
    char *data;
    size_t len, cap;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n)
{
    if (!b->data)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            free(b->data);
            b->data = NULL;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void sb_puts(strbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* Percent-encodes everything but RFC 3986 unreserved characters (and ',' ':' for host lists). */
static void sb_put_pct(strbuf *b, const char *s, const char *keep)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~", c) || (keep && strchr(keep, c))) {
            sb_put(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            sb_put(b, e, 3);
        }
    }
}

static PQconninfoOption *parse(const char *url, char **errmsg)
{
    if (!url || !*url) {
        if (errmsg)
            *errmsg = NULL;
        return NULL;
    }
    return PQconninfoParse(url, errmsg);
}

int db_url_check(const char *url, char *err, size_t errlen)
{
    char *msg = NULL;
    PQconninfoOption *opts = parse(url, &msg);
    if (!opts) {
        /* libpq's message names the bad part ("invalid URI query parameter", "missing "=" after
         * ..."); it never echoes a password back */
        const char *m = msg ? msg : "empty connection string";
        size_t n = strcspn(m, "\n");
        snprintf(err, errlen, "%.*s", (int)n, m);
        PQfreemem(msg);
        return -1;
    }
    PQconninfoFree(opts);
    return 0;
}

static const char *opt(PQconninfoOption *opts, const char *key)
{
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (!strcmp(o->keyword, key))
            return (o->val && *o->val) ? o->val : NULL;
    return NULL;
}

char *db_url_mask(const char *url)
{
    PQconninfoOption *opts = parse(url, NULL);
    if (!opts)
        return NULL;
    strbuf b = {malloc(64), 0, 64};
    if (b.data)
        b.data[0] = '\0';
    sb_puts(&b, "postgresql://");
    const char *user = opt(opts, "user"), *host = opt(opts, "host"), *port = opt(opts, "port");
    const char *dbname = opt(opts, "dbname");
    if (user) {
        sb_put_pct(&b, user, NULL);
        if (opt(opts, "password"))
            sb_puts(&b, ":****");
        sb_puts(&b, "@");
    }
    /* a host that is a socket directory cannot sit in the authority part: it goes in the query */
    bool host_in_query = host && host[0] == '/';
    if (host && !host_in_query)
        sb_put_pct(&b, host, ",:[]");
    if (port && !strchr(port, ',')) {
        sb_puts(&b, ":");
        sb_puts(&b, port);
    }
    sb_puts(&b, "/");
    if (dbname)
        sb_put_pct(&b, dbname, NULL);
    char sep = '?';
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        const char *k = o->keyword;
        if (!o->val || !*o->val || !strcmp(k, "user") || !strcmp(k, "password") ||
            !strcmp(k, "dbname") || (!strcmp(k, "host") && !host_in_query) ||
            (!strcmp(k, "port") && !strchr(o->val, ',')))
            continue;
        sb_put(&b, &sep, 1);
        sep = '&';
        sb_puts(&b, k);
        sb_puts(&b, "=");
        sb_put_pct(&b, o->val, ",");
    }
    PQconninfoFree(opts);
    return b.data;
}

/* Appends value in key=value syntax: single-quoted, with \ and ' escaped. */
static void sb_put_kv(strbuf *b, const char *key, const char *value)
{
    if (b->len)
        sb_puts(b, " ");
    sb_puts(b, key);
    sb_puts(b, "='");
    for (const char *s = value; *s; s++) {
        if (*s == '\'' || *s == '\\')
            sb_puts(b, "\\");
        sb_put(b, s, 1);
    }
    sb_puts(b, "'");
}

char *db_url_with(const char *url, const char *key, const char *value)
{
    PQconninfoOption *opts = parse(url, NULL);
    if (!opts)
        return NULL;
    strbuf b = {malloc(128), 0, 128};
    if (b.data)
        b.data[0] = '\0';
    bool done = false;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!strcmp(o->keyword, key)) {
            done = true;
            if (value)
                sb_put_kv(&b, key, value);
        } else if (o->val && *o->val) {
            sb_put_kv(&b, o->keyword, o->val);
        }
    }
    if (!done && value)
        sb_put_kv(&b, key, value);
    PQconninfoFree(opts);
    return b.data;
}

char *db_url_get(const char *url, const char *key)
{
    PQconninfoOption *opts = parse(url, NULL);
    if (!opts)
        return NULL;
    const char *v = opt(opts, key);
    char *r = v ? strdup(v) : NULL;
    PQconninfoFree(opts);
    return r;
}

bool db_url_neon_pooler(const char *url)
{
    char *hosts = db_url_get(url, "host");
    bool all = hosts != NULL;
    for (const char *h = hosts; all && *h;) {
        size_t len = strcspn(h, ","), label = strcspn(h, ".,");
        static const char suffix[] = ".neon.tech";
        size_t sl = sizeof suffix - 1;
        all = label >= 8 && label < len && !strncmp(h + label - 7, "-pooler", 7) && len > sl &&
              !strncmp(h + len - sl, suffix, sl);
        h += len;
        if (*h == ',')
            h++;
    }
    free(hosts);
    return all;
}
