/* conn: see conn.h. */
#include "migrate/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/env.h"
#include "db/connect.h"
#include "db/url.h"

char *mig_direct_host(const char *hosts, bool *changed)
{
    *changed = false;
    size_t n = strlen(hosts);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (const char *h = hosts; *h;) {
        size_t len = strcspn(h, ","), label = strcspn(h, ".,");
        /* only the first label, and only as its suffix: ep-x-pooler.region... */
        if (label >= 8 && label <= len && !strncmp(h + label - 7, "-pooler", 7)) {
            memcpy(out + o, h, label - 7);
            o += label - 7;
            memcpy(out + o, h + label, len - label);
            o += len - label;
            *changed = true;
        } else {
            memcpy(out + o, h, len);
            o += len;
        }
        h += len;
        if (*h == ',')
            out[o++] = *h++;
    }
    out[o] = '\0';
    return out;
}

char *mig_direct_url(const char *url, bool *changed, char **old_host, char **new_host, char *err,
                     size_t errlen)
{
    *changed = false;
    if (db_url_check(url, err, errlen) < 0)
        return NULL;
    char *host = db_url_get(url, "host");
    if (!host)
        return strdup(url);
    char *direct = mig_direct_host(host, changed);
    char *out = NULL;
    if (direct && *changed)
        out = db_url_with(url, "host", direct);
    else if (direct)
        out = strdup(url);
    if (out && *changed && old_host && new_host) {
        *old_host = host;
        *new_host = direct;
        return out;
    }
    free(host);
    free(direct);
    return out;
}

const char *mig_pick_url(const char *flag_url, const char **source)
{
    if (flag_url && *flag_url) {
        *source = "--url";
        return flag_url;
    }
    const char *u = env_str("DATABASE_URL_UNPOOLED", NULL);
    if (u) {
        *source = "DATABASE_URL_UNPOOLED";
        return u;
    }
    *source = "DATABASE_URL";
    return env_str("DATABASE_URL", NULL);
}

PGconn *mig_connect(const char *url, double budget, db_errkind *kind)
{
    db_connect_opts opts = {
        .application_name = "migrate",
        .connect_timeout = 10,
        .budget = budget,
        .log_label = "migrate",
    };
    db_error e = {0};
    PGconn *c = db_connect(url, &opts, &e);
    if (kind)
        *kind = c ? DB_OK : e.kind;
    /* db_connect has logged the failure (host, SQLSTATE, hint; never the password) */
    return c;
}
