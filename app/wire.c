/* wire: see wire.h. */
#include "app/wire.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "app/http.h"
#include "core/log.h"

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

/* ---- connections: counted, and a deadline for each request ---- */

typedef struct wire_conn {
    struct evhttp_connection *evcon;
    struct bufferevent *bev;
    struct evbuffer_cb_entry *tap;
    struct event *deadline; /* armed from a request's first byte until evhttp has read it */
    evutil_socket_t fd;
    bool reading;
} wire_conn;

static struct {
    long max;
    struct timeval timeout;
    atomic_long open;
    wire_conn **by_fd; /* a descriptor is one connection's at a time: no lock needed */
    long nfd;
} W;

/* Per loop thread: connections evhttp set up since the loop last ran the adopt event. */
static _Thread_local struct {
    struct bufferevent **fresh;
    bool *over; /* counted past MAX_CONNECTIONS when accepted */
    int n, cap;
    struct event *adopt;
} T;

int wire_init(long max_connections, double request_timeout)
{
    W.max = max_connections;
    W.timeout.tv_sec = (time_t)request_timeout;
    W.timeout.tv_usec = (suseconds_t)((request_timeout - (double)W.timeout.tv_sec) * 1e6);
    struct rlimit rl;
    W.nfd = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
                    rl.rlim_max < (1L << 22)
                ? (long)rl.rlim_max
                : 1L << 20;
    W.by_fd = calloc((size_t)W.nfd, sizeof *W.by_fd); /* untouched pages stay virtual */
    return W.by_fd ? 0 : -1;
}

long wire_connections(void)
{
    return atomic_load(&W.open);
}

/* One line per client address and minute at most: a slowloris run makes thousands. */
static bool log_once_a_minute(const char *addr)
{
    static _Thread_local struct {
        char addr[48];
        double at;
    } seen[64];
    unsigned h = 5381;
    for (const char *p = addr; *p; p++)
        h = h * 33 + (unsigned char)*p;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double now = (double)ts.tv_sec;
    __typeof__(&seen[0]) e = &seen[h % 64];
    if (!strcmp(e->addr, addr) && now - e->at < 60)
        return false;
    snprintf(e->addr, sizeof e->addr, "%s", addr);
    e->at = now;
    return true;
}

static void on_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    wire_conn *c = arg;
    if (c->fd >= 0 && c->fd < W.nfd && W.by_fd[c->fd] == c)
        W.by_fd[c->fd] = NULL;
    evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->tap);
    event_free(c->deadline);
    free(c);
    atomic_fetch_sub(&W.open, 1);
}

/* READ_TIMEOUT counts from a request's first byte, not between bytes (evhttp's own timeout is an
 * idle one, reset by every byte: a client sending one every few seconds kept its connection
 * forever). RFC 9112 9.5: a server may close a connection that does not complete its request. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    wire_conn *c = arg;
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(c->evcon, &addr, &port);
    if (log_once_a_minute(addr ? addr : "?"))
        log_warn("closed a connection from %s: request not received within READ_TIMEOUT (%gs); "
                 "further ones from this address are not logged for a minute",
                 addr ? addr : "?", (double)W.timeout.tv_sec + W.timeout.tv_usec / 1e6);
    evhttp_connection_free(c->evcon); /* calls on_closed */
}

/* Sees a connection's bytes as they arrive, before evhttp parses them. */
static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    wire_conn *c = arg;
    if (info->n_added && !c->reading) {
        c->reading = true;
        evtimer_add(c->deadline, &W.timeout);
    }
}

void wire_request_read(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    wire_conn *c = fd >= 0 && fd < W.nfd ? W.by_fd[fd] : NULL;
    if (c && c->evcon == evcon) {
        c->reading = false;
        evtimer_del(c->deadline);
    }
}

/* Past MAX_CONNECTIONS: a short answer written straight to the socket (nothing to parse, nothing
 * buffered), then closed. RFC 9110 15.6.4: 503 with Retry-After. */
static void refuse(struct evhttp_connection *evcon, evutil_socket_t fd)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Content-Type: application/json\r\nContent-Length: 46\r\n"
                               "Retry-After: 1\r\nConnection: close\r\n\r\n"
                               "{\"detail\":\"Too many connections, retry later\"}";
    _Static_assert(sizeof "{\"detail\":\"Too many connections, retry later\"}" - 1 == 46,
                   "Content-Length");
    (void)!send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd, SHUT_WR);
    static _Atomic double last;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double now = (double)ts.tv_sec;
    if (now - atomic_load(&last) >= 60) {
        atomic_store(&last, now);
        log_warn("MAX_CONNECTIONS (%ld) reached: new connections get 503 (logged once a minute)",
                 W.max);
    }
    evhttp_connection_free(evcon);
}

/* evhttp has made the connection around the bufferevent (its callbacks' argument is the
 * evhttp_connection, as evhttp_connection_base_bufferevent_new sets them) and nothing has been
 * read yet: the loop ran this before its next wait for events. */
static void adopt(struct bufferevent *bev, bool over)
{
    void *arg = NULL;
    bufferevent_getcb(bev, NULL, NULL, NULL, &arg);
    struct evhttp_connection *evcon = arg;
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (!evcon || evhttp_connection_get_bufferevent(evcon) != bev || fd < 0 || fd >= W.nfd) {
        atomic_fetch_sub(&W.open, 1);
        return;
    }
    if (over) {
        atomic_fetch_sub(&W.open, 1);
        refuse(evcon, fd);
        return;
    }
    wire_conn *c = calloc(1, sizeof *c);
    if (c) {
        c->deadline = evtimer_new(bufferevent_get_base(bev), on_deadline, c);
        c->tap = c->deadline ? evbuffer_add_cb(bufferevent_get_input(bev), on_input, c) : NULL;
    }
    if (!c || !c->tap) { /* out of memory: the connection is served, not counted */
        if (c && c->deadline)
            event_free(c->deadline);
        free(c);
        atomic_fetch_sub(&W.open, 1);
        return;
    }
    c->evcon = evcon;
    c->bev = bev;
    c->fd = fd;
    W.by_fd[fd] = c;
    evhttp_connection_set_closecb(evcon, on_closed, c);
}

static void on_adopt(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    for (int i = 0; i < T.n; i++)
        adopt(T.fresh[i], T.over[i]);
    T.n = 0;
}

/* Counts the connection now (the loops accept in turn on their own threads: counted later, two
 * could both see room for one), and queues bev for adopt(), run by an event made active now:
 * libevent runs the active events before it waits again, so before evhttp can have read from (or
 * freed) the connection. */
static void queue_adopt(struct event_base *base, struct bufferevent *bev)
{
    if (!T.adopt && !(T.adopt = event_new(base, -1, 0, on_adopt, NULL)))
        return;
    if (T.n == T.cap) {
        int cap = T.cap ? T.cap * 2 : 16;
        struct bufferevent **more = realloc(T.fresh, (size_t)cap * sizeof *more);
        bool *over = more ? realloc(T.over, (size_t)cap * sizeof *over) : NULL;
        if (more)
            T.fresh = more;
        if (!over)
            return;
        T.over = over;
        T.cap = cap;
    }
    T.over[T.n] = atomic_fetch_add(&W.open, 1) >= W.max;
    T.fresh[T.n++] = bev;
    event_active(T.adopt, EV_READ, 1);
}

void wire_thread_free(void)
{
    if (T.adopt)
        event_free(T.adopt);
    free(T.fresh);
    free(T.over);
    memset(&T, 0, sizeof T);
}

struct bufferevent *wire_bufferevent(struct event_base *base)
{
    /* what evhttp makes itself when the bevcb returns NULL (evhttp_get_request_connection) */
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev && !evbuffer_add_cb(bufferevent_get_output(bev), on_output, NULL)) {
        bufferevent_free(bev);
        return NULL;
    }
    if (bev && W.by_fd)
        queue_adopt(base, bev);
    return bev;
}
