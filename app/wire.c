/* wire: see wire.h. */
#include "app/wire.h"

#include <event2/buffer.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/http.h"

/* The start of evhttp_send_error's body in libevent 2.1 (ERR_FORMAT in http.c); no page of ours
 * starts so (/docs starts "<!DOCTYPE html>"). */
static const char page_start[] = "<HTML><HEAD>\n<TITLE>";
/* Its head, made by evhttp_send_page_: the status line, then these two first. */
static const char page_head[] = "\r\nContent-Type: text/html\r\nConnection: close\r\n";

#define HEAD_WINDOW 512 /* the page's head is ~130 bytes */

static _Thread_local bool rewriting; /* our own edits call us again */

/* The offset of the last "HTTP/1." in text[0..n), or -1. */
static long last_status_line(const char *text, size_t n)
{
    static const char sl[] = "HTTP/1.";
    for (size_t i = n >= sizeof sl - 1 ? n - (sizeof sl - 1) + 1 : 0; i-- > 0;)
        if (!memcmp(text + i, sl, sizeof sl - 1))
            return (long)i;
    return -1;
}

/* Replaces the bytes of buf from `start` on (libevent's page) with the JSON error. */
static void replace_page(struct evbuffer *buf, size_t start, int status)
{
    const char *reason = http_reason(status);
    char body[128], head[256];
    int blen = snprintf(body, sizeof body, "{\"detail\":\"%s\"}", reason);
    int hlen = snprintf(head, sizeof head,
                        "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %d\r\nX-Content-Type-Options: nosniff\r\n"
                        "Connection: close\r\n\r\n",
                        status, reason, blen);
    struct evbuffer *before = evbuffer_new();
    if (!before)
        return;
    rewriting = true;
    /* what precedes is earlier responses not yet written: kept, in order */
    if (evbuffer_remove_buffer(buf, before, start) == (int)start) {
        evbuffer_drain(buf, evbuffer_get_length(buf));
        evbuffer_add_buffer(buf, before);
        evbuffer_add(buf, head, (size_t)hlen);
        evbuffer_add(buf, body, (size_t)blen);
    } else { /* cannot happen (start < length); the page is then sent as it is */
        evbuffer_prepend_buffer(buf, before);
    }
    rewriting = false;
    evbuffer_free(before);
}

/* evhttp writes a response as a few additions: the status line, a header per addition, the blank
 * line, then the body in one. The body's addition is where a page is recognised. */
static void on_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)arg;
    if (rewriting || info->n_added < sizeof page_start - 1 || info->n_added > 256 ||
        info->orig_size < sizeof page_head)
        return;
    char text[HEAD_WINDOW];
    struct evbuffer_ptr p;
    if (evbuffer_ptr_set(buf, &p, info->orig_size, EVBUFFER_PTR_SET) < 0 ||
        evbuffer_copyout_from(buf, &p, text, sizeof page_start - 1) !=
            (ev_ssize_t)sizeof page_start - 1 ||
        memcmp(text, page_start, sizeof page_start - 1))
        return;
    /* the head just before: from the last status line to the body */
    size_t from = info->orig_size > HEAD_WINDOW ? info->orig_size - HEAD_WINDOW : 0;
    size_t n = info->orig_size - from;
    if (evbuffer_ptr_set(buf, &p, from, EVBUFFER_PTR_SET) < 0 ||
        evbuffer_copyout_from(buf, &p, text, n) != (ev_ssize_t)n)
        return;
    long at = last_status_line(text, n);
    int status = 0;
    if (at < 0 || sscanf(text + at, "HTTP/1.%*d %3d", &status) != 1 || status < 400 || status > 599)
        return;
    const char *eol = memchr(text + at, '\r', n - (size_t)at);
    if (!eol || (size_t)(text + n - eol) < sizeof page_head - 1 ||
        memcmp(eol, page_head, sizeof page_head - 1))
        return;
    replace_page(buf, from + (size_t)at, status);
}

struct bufferevent *wire_bufferevent(struct event_base *base)
{
    /* what evhttp makes itself when the bevcb returns NULL (evhttp_get_request_connection) */
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev && !evbuffer_add_cb(bufferevent_get_output(bev), on_output, NULL)) {
        bufferevent_free(bev);
        return NULL;
    }
    return bev;
}
