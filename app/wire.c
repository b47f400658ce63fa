/* wire: see wire.h. */
#include "app/wire.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "app/http.h"
#include "core/log.h"

/* The start of evhttp_send_error's body in libevent 2.1 (ERR_FORMAT in http.c); no page of ours
 * starts so (/docs starts "<!DOCTYPE html>"). */
static const char page_start[] = "<HTML><HEAD>\n<TITLE>";
/* Its head, made by evhttp_send_page_: the status line, then this first. */
static const char page_head[] = "\r\nContent-Type: text/html\r\n";

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
static void rewrite_page(struct evbuffer *buf, const struct evbuffer_cb_info *info)
{
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

static void on_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)arg;
    /* only an addition the size of a page's body after a head can be one: the probe below stays
     * off the path of every other write */
    if (rewriting || info->n_added < sizeof page_start - 1 || info->n_added > 256 ||
        info->orig_size < sizeof page_head)
        return;
    /* a socket bufferevent keeps its output's start frozen (only its writes unfreeze it), and a
     * frozen start refuses copies and removals: seen on a keep-alive connection's second request,
     * whose error page then went out as HTML. Thawed for the rewrite, as libevent's own writes do.
     */
    char probe;
    struct evbuffer_ptr p;
    bool frozen = evbuffer_ptr_set(buf, &p, 0, EVBUFFER_PTR_SET) == 0 &&
                  evbuffer_copyout_from(buf, &p, &probe, 1) < 0;
    if (frozen)
        evbuffer_unfreeze(buf, 1);
    rewrite_page(buf, info);
    if (frozen)
        evbuffer_freeze(buf, 1);
}

/* ---- connections: counted, and a deadline for each request ---- */

/* Where the connection's byte stream is, as evhttp will frame it (framing_scan). */
typedef enum {
    F_LINE,     /* before a request line (empty lines are skipped) */
    F_HEAD,     /* header lines */
    F_BODY,     /* `left` bytes of a Content-Length body */
    F_SIZE,     /* a chunk-size line */
    F_DATA,     /* `left` bytes of chunk data */
    F_DATA_END, /* the CRLF after them */
    F_TRAILER,  /* trailer lines after the last chunk */
    F_OFF,      /* framing evhttp or dispatch.c reject and close on: not followed further */
    F_BAD,      /* a violation: the connection is answered 400 and closed */
    F_ANSWERED, /* the head check answered: the connection is closed, the body never read */
} framing_state;

/* The head lines kept for the head check (wire_head). */
enum { GOT_LINE, GOT_AUTHORIZATION, GOT_ORIGIN, GOT_REQUEST_ID, GOT_N };

/* A head line longer than this is not kept whole (only its start, for the framing headers). */
#define LINE_MAX_KEPT 16384

typedef struct wire_conn {
    struct evhttp_connection *evcon;
    struct bufferevent *bev;
    struct evbuffer_cb_entry *tap;
    struct event *deadline; /* armed from a request's first byte until evhttp has read it */
    void *owner;            /* wire_bufferevent's, for the head check */
    evutil_socket_t fd;
    bool reading;
    framing_state st;
    bool chunked, has_length, long_line;
    int inflight; /* requests begun (request line seen) and not yet answered */
    long long left, length;
    size_t nline, cap;
    char *line;        /* the current line: `start`, or malloc'd for a long head line */
    char *got[GOT_N];  /* the head's lines for the check: into kept[], NULL when absent */
    char *kept[GOT_N]; /* their storage, malloc'd, reused by the connection's next heads */
    size_t kept_cap[GOT_N];
    char *answer; /* F_ANSWERED: the check's response, malloc'd */
    size_t answer_len;
    char start[96]; /* what framing needs is in a line's start */
} wire_conn;

static struct {
    long max;
    wire_head_fn head_check;
    struct timeval timeout;
    atomic_long open;
    wire_conn **by_fd; /* a descriptor is one connection's at a time: no lock needed */
    long nfd;
} W;

/* Per loop thread: connections evhttp set up since the loop last ran the adopt event. */
typedef struct fresh_conn {
    struct bufferevent *bev;
    void *owner;
    bool over; /* counted past MAX_CONNECTIONS when accepted */
} fresh_conn;

typedef struct lingering {
    struct event *ev;
    double until;
    struct lingering *next, *prev;
} lingering;

static _Thread_local struct {
    fresh_conn *fresh;
    int n, cap;
    struct event *adopt;
    lingering *lingering; /* closing sockets of this loop (linger) */
} T;

int wire_init(long max_connections, double request_timeout, wire_head_fn head_check)
{
    W.max = max_connections;
    W.head_check = head_check;
    W.timeout.tv_sec = (time_t)request_timeout;
    W.timeout.tv_usec = (suseconds_t)((request_timeout - (double)W.timeout.tv_sec) * 1e6);
    struct rlimit rl;
    W.nfd = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
                    rl.rlim_max < (1L << 22)
                ? (long)rl.rlim_max
                : 1L << 20;
    W.by_fd = calloc((size_t)W.nfd, sizeof(wire_conn *)); /* untouched pages stay virtual */
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
    for (int i = 0; i < GOT_N; i++)
        free(c->kept[i]);
    if (c->line != c->start)
        free(c->line);
    free(c->answer);
    free(c);
    atomic_fetch_sub(&W.open, 1);
}

static double mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define LINGER_SECONDS 3.0

static void linger_close(lingering *l)
{
    evutil_socket_t fd = event_get_fd(l->ev);
    event_free(l->ev);
    close(fd);
    free(l);
    atomic_fetch_sub(&W.open, 1);
}

static void linger_end(lingering *l)
{
    if (l->prev)
        l->prev->next = l->next;
    else
        T.lingering = l->next;
    if (l->next)
        l->next->prev = l->prev;
    linger_close(l);
}

static void on_linger(evutil_socket_t fd, short what, void *arg)
{
    lingering *l = arg;
    ssize_t got = 0;
    /* MSG_TRUNC: Linux drops TCP data without copying it (tcp(7)); a client may send at line
     * rate, and copying what we throw away cost about a millisecond of CPU per 4 MiB */
    if (what & EV_READ)
        while ((got = recv(fd, NULL, 1 << 20, MSG_DONTWAIT | MSG_TRUNC)) > 0)
            ;
    if (!(what & EV_READ) || got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) ||
        mono_seconds() >= l->until)
        linger_end(l);
}

/* RFC 9112 9.6: a server that closes while the client is still sending (a body we refused) must
 * not just close: the kernel would answer the unread bytes with a reset, which can destroy the
 * answer before the client reads it. The sending side is shut (the client sees the end of the
 * answer), and what arrives is read and dropped until the client closes, for LINGER_SECONDS at
 * most (nginx's lingering_close). Takes a duplicate of the socket: evhttp closes its own. Counted
 * as a connection meanwhile. */
static void linger(struct event_base *base, evutil_socket_t fd)
{
    shutdown(fd, SHUT_WR);
    lingering *l = calloc(1, sizeof *l);
    evutil_socket_t dup_fd = l ? dup(fd) : -1;
    if (dup_fd >= 0)
        l->ev = event_new(base, dup_fd, EV_READ | EV_PERSIST, on_linger, l);
    struct timeval tick = {0, 500000};
    if (!l || !l->ev || event_add(l->ev, &tick) < 0) {
        if (l && l->ev)
            event_free(l->ev);
        if (dup_fd >= 0)
            close(dup_fd);
        free(l);
        return;
    }
    l->until = mono_seconds() + LINGER_SECONDS;
    l->next = T.lingering;
    if (T.lingering)
        T.lingering->prev = l;
    T.lingering = l;
    atomic_fetch_add(&W.open, 1);
}

/* Sends `text` (when nothing else waits to be written before it) and closes as linger() does. */
static void answer_and_close(wire_conn *c, const char *text, size_t len)
{
    if (!evbuffer_get_length(bufferevent_get_output(c->bev)))
        (void)!send(c->fd, text, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    linger(bufferevent_get_base(c->bev), c->fd);
    evhttp_connection_free(c->evcon); /* calls on_closed */
}

/* READ_TIMEOUT counts from a request's first byte, not between bytes (evhttp's own timeout is an
 * idle one, reset by every byte: a client sending one every few seconds kept its connection
 * forever). RFC 9112 9.5: a server may close a connection that does not complete its request. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    wire_conn *c = arg;
    if (c->st == F_BAD) { /* framing_scan found a violation */
        static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                                  "Content-Length: 37\r\nConnection: close\r\n\r\n"
                                  "{\"detail\":\"Invalid chunked encoding\"}";
        _Static_assert(sizeof "{\"detail\":\"Invalid chunked encoding\"}" - 1 == 37, "length");
        answer_and_close(c, bad, sizeof bad - 1);
        return;
    }
    if (c->st == F_ANSWERED) {
        answer_and_close(c, c->answer, c->answer_len);
        return;
    }
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(c->evcon, &addr, &port);
    if (log_once_a_minute(addr ? addr : "?"))
        log_warn("closed a connection from %s: request not received within READ_TIMEOUT (%gs); "
                 "further ones from this address are not logged for a minute",
                 addr ? addr : "?", (double)W.timeout.tv_sec + W.timeout.tv_usec / 1e6);
    evhttp_connection_free(c->evcon); /* calls on_closed */
}

/* RFC 9112 7.1: chunk-size = 1*HEXDIG, then BWS ";" chunk-ext or nothing. */
static bool chunk_size_line(wire_conn *c)
{
    size_t n = strspn(c->line, "0123456789abcdefABCDEF");
    const char *rest = c->line + n + strspn(c->line + n, " \t");
    if (!n || n > 15 || (*rest != ';' && (rest != c->line + n || *rest || c->long_line)))
        return false;
    c->left = strtoll(c->line, NULL, 16);
    c->st = c->left ? F_DATA : F_TRAILER;
    return true;
}

/* Keeps n bytes of text as the head's line i (c->got[i]); its storage stays with the connection:
 * no allocation per request once the lines fit. Out of memory: the line stays absent. */
static void keep(wire_conn *c, int i, const char *text, size_t n)
{
    if (n + 1 > c->kept_cap[i]) {
        size_t cap = n + 1 < 64 ? 64 : n + 1;
        char *more = realloc(c->kept[i], cap);
        if (!more)
            return;
        c->kept[i] = more;
        c->kept_cap[i] = cap;
    }
    memcpy(c->kept[i], text, n);
    c->kept[i][n] = '\0';
    c->got[i] = c->kept[i];
}

/* A header line: Content-Length and Transfer-Encoding decide where the body ends. Values that
 * dispatch.c (framing_error) or evhttp reject are not followed: the connection closes. */
static void header_line(wire_conn *c)
{
    char *colon = strchr(c->line, ':');
    if (!colon)
        return; /* evhttp answers 400 */
    const char *v = colon + 1 + strspn(colon + 1, " \t");
    size_t name = (size_t)(colon - c->line);
    if (W.head_check && !c->long_line) {
        static const struct {
            const char *name;
            size_t len;
        } kept[GOT_N] = {[GOT_AUTHORIZATION] = {"Authorization", 13},
                         [GOT_ORIGIN] = {"Origin", 6},
                         [GOT_REQUEST_ID] = {"X-Request-ID", 12}};
        for (int i = GOT_AUTHORIZATION; i < GOT_N; i++)
            if (name == kept[i].len && !strncasecmp(c->line, kept[i].name, name) && !c->got[i]) {
                size_t n = strlen(v);
                while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
                    n--;
                keep(c, i, v, n);
            }
    }
    if (name == 14 && !strncasecmp(c->line, "Content-Length", 14)) {
        char *end;
        long long n = strtoll(v, &end, 10);
        if (c->long_line || *v < '0' || *v > '9' || (*end && *end != ' ' && *end != '\t') ||
            (c->has_length && n != c->length))
            c->st = F_OFF;
        c->has_length = true;
        c->length = n;
    } else if (name == 17 && !strncasecmp(c->line, "Transfer-Encoding", 17)) {
        size_t len = strcspn(v, " \t");
        if (c->chunked || len != 7 || strncasecmp(v, "chunked", 7) ||
            v[len + strspn(v + len, " \t")])
            c->st = F_OFF;
        c->chunked = true;
    }
}

static void forget_head(wire_conn *c)
{
    for (int i = 0; i < GOT_N; i++)
        c->got[i] = NULL;
}

/* A head whose body follows, the only request in flight and nothing waiting to be written: the
 * check may answer it instead (F_ANSWERED). Earlier requests were all answered, so evhttp has
 * taken their bytes; what is left in the input is this request's, which is never parsed. */
static void check_head(wire_conn *c)
{
    char *line = c->got[GOT_LINE];
    if (!line || c->inflight != 1 || evbuffer_get_length(bufferevent_get_output(c->bev)))
        return;
    char *sp = strchr(line, ' ');
    if (!sp)
        return;
    *sp = '\0';
    char *target = sp + 1;
    target[strcspn(target, " ")] = '\0';
    wire_head h = {.method = line,
                   .target = target,
                   .authorization = c->got[GOT_AUTHORIZATION],
                   .origin = c->got[GOT_ORIGIN],
                   .request_id = c->got[GOT_REQUEST_ID]};
    size_t len = 0;
    char *answer = W.head_check(c->owner, &h, &len);
    if (answer) {
        c->answer = answer;
        c->answer_len = len;
        c->st = F_ANSWERED;
    }
}

/* One whole line (CR LF or LF stripped) in the state it ends. */
static void framing_line(wire_conn *c)
{
    bool empty = c->nline == 0 && !c->long_line;
    switch (c->st) {
    case F_LINE:
        if (!empty) {
            c->st = F_HEAD;
            c->chunked = c->has_length = false;
            c->inflight++;
            if (W.head_check && !c->long_line)
                keep(c, GOT_LINE, c->line, c->nline);
        }
        break;
    case F_HEAD:
        if (!empty) {
            header_line(c);
        } else if (c->chunked && c->has_length) {
            c->st = F_OFF; /* evhttp answers 400 */
        } else {
            c->st = c->chunked ? F_SIZE : c->length > 0 ? F_BODY : F_LINE;
            c->left = c->length;
            if (W.head_check && c->st != F_LINE)
                check_head(c);
            forget_head(c);
        }
        break;
    case F_SIZE:
        if (!chunk_size_line(c))
            c->st = F_BAD;
        break;
    case F_DATA_END:
        c->st = empty ? F_SIZE : F_BAD;
        break;
    case F_TRAILER:
        if (empty)
            c->st = F_LINE;
        break;
    default:
        break;
    }
}

/* Follows the request framing over `n` new bytes, as evhttp will read them (it has not yet):
 * RFC 9112 6.3 for where a body ends, 7.1 for the chunked coding, which libevent 2.1.12 reads
 * with strtoll (0x13, +13, " 13" and a missing CRLF after the data all pass there). */
/* Room for one more byte of the current line: a head line grows to LINE_MAX_KEPT when the head
 * check needs it whole; otherwise its start is enough. */
static bool line_room(wire_conn *c)
{
    if (c->nline < c->cap - 1)
        return true;
    if (!W.head_check || (c->st != F_LINE && c->st != F_HEAD) || c->cap >= LINE_MAX_KEPT)
        return false;
    size_t cap = c->cap * 4 < LINE_MAX_KEPT ? c->cap * 4 : LINE_MAX_KEPT;
    char *bigger = c->line == c->start ? malloc(cap) : realloc(c->line, cap);
    if (!bigger)
        return false;
    if (c->line == c->start)
        memcpy(bigger, c->start, c->nline);
    c->line = bigger;
    c->cap = cap;
    return true;
}

/* Appends len bytes to the current line, as far as line_room allows; the rest only marks it long.
 */
static void line_add(wire_conn *c, const char *s, size_t len)
{
    while (len) {
        if (!line_room(c)) {
            c->long_line = true;
            return;
        }
        size_t room = c->cap - 1 - c->nline, k = len < room ? len : room;
        memcpy(c->line + c->nline, s, k);
        c->nline += k;
        s += k;
        len -= k;
    }
}

/* A line at a time (memchr), not a byte at a time: this sees every byte of every request. */
static void framing_scan(wire_conn *c, const char *p, size_t n)
{
    for (size_t i = 0; i < n && c->st < F_OFF;) {
        if (c->st == F_BODY || c->st == F_DATA) {
            size_t take = (unsigned long long)c->left < n - i ? (size_t)c->left : n - i;
            c->left -= (long long)take;
            i += take;
            if (!c->left)
                c->st = c->st == F_BODY ? F_LINE : F_DATA_END;
            continue;
        }
        const char *nl = memchr(p + i, '\n', n - i);
        size_t seg = nl ? (size_t)(nl - (p + i)) : n - i;
        /* a CR is allowed only right before the LF (or as the last byte so far) */
        const char *cr = memchr(p + i, '\r', seg);
        if ((seg && c->nline && c->line[c->nline - 1] == '\r') || (cr && cr != p + i + seg - 1)) {
            c->st = c->st == F_SIZE || c->st == F_DATA_END ? F_BAD : F_OFF; /* a bare CR */
            return;
        }
        line_add(c, p + i, seg);
        i += seg;
        if (!nl)
            return;
        i++;
        if (c->nline && c->line[c->nline - 1] == '\r')
            c->nline--;
        c->line[c->nline] = '\0';
        framing_line(c);
        c->nline = 0;
        c->long_line = false;
    }
}

/* Sees a connection's bytes as they arrive, before evhttp parses them. */
static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    wire_conn *c = arg;
    if (!info->n_added)
        return;
    if (!c->reading) {
        c->reading = true;
        evtimer_add(c->deadline, &W.timeout);
    }
    if (c->st >= F_OFF)
        return;
    struct evbuffer_ptr at;
    struct evbuffer_iovec v[8];
    if (evbuffer_ptr_set(buf, &at, info->orig_size, EVBUFFER_PTR_SET) < 0)
        return;
    size_t todo = info->n_added;
    while (todo && c->st < F_OFF) {
        int nv = evbuffer_peek(buf, (ev_ssize_t)todo, &at, v, 8);
        size_t done = 0;
        for (int i = 0; i < nv && i < 8 && done < todo; i++) {
            size_t len = v[i].iov_len < todo - done ? v[i].iov_len : todo - done;
            framing_scan(c, v[i].iov_base, len);
            done += len;
        }
        if (!done || evbuffer_ptr_set(buf, &at, done, EVBUFFER_PTR_ADD) < 0)
            break;
        todo -= done;
    }
    if (c->st == F_BAD || c->st == F_ANSWERED) {
        /* evhttp must not parse what follows: it is thrown away, and the connection answered
         * and closed from the loop (not here, inside the bufferevent's own read) */
        evbuffer_drain(buf, evbuffer_get_length(buf));
        bufferevent_disable(c->bev, EV_READ);
        event_active(c->deadline, EV_TIMEOUT, 1);
    }
}

static wire_conn *conn_of(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    wire_conn *c = fd >= 0 && fd < W.nfd ? W.by_fd[fd] : NULL;
    return c && c->evcon == evcon ? c : NULL;
}

void wire_request_read(struct evhttp_request *req)
{
    wire_conn *c = conn_of(req);
    if (c) {
        c->reading = false;
        evtimer_del(c->deadline);
    }
}

void wire_request_answered(struct evhttp_request *req)
{
    wire_conn *c = conn_of(req);
    if (c && c->inflight > 0)
        c->inflight--;
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
static void adopt(struct bufferevent *bev, void *owner, bool over)
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
    c->owner = owner;
    c->line = c->start;
    c->cap = sizeof c->start;
    W.by_fd[fd] = c;
    evhttp_connection_set_closecb(evcon, on_closed, c);
}

static void on_adopt(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    for (int i = 0; i < T.n; i++)
        adopt(T.fresh[i].bev, T.fresh[i].owner, T.fresh[i].over);
    T.n = 0;
}

/* Counts the connection now (the loops accept in turn on their own threads: counted later, two
 * could both see room for one), and queues bev for adopt(), run by an event made active now:
 * libevent runs the active events before it waits again, so before evhttp can have read from (or
 * freed) the connection. */
static void queue_adopt(struct event_base *base, struct bufferevent *bev, void *owner)
{
    if (!T.adopt && !(T.adopt = event_new(base, -1, 0, on_adopt, NULL)))
        return;
    if (T.n == T.cap) {
        int cap = T.cap ? T.cap * 2 : 16;
        fresh_conn *more = realloc(T.fresh, (size_t)cap * sizeof *more);
        if (!more)
            return;
        T.fresh = more;
        T.cap = cap;
    }
    T.fresh[T.n++] =
        (fresh_conn){.bev = bev, .owner = owner, .over = atomic_fetch_add(&W.open, 1) >= W.max};
    event_active(T.adopt, EV_READ, 1);
}

void wire_thread_free(void)
{
    for (lingering *l = T.lingering, *next; l; l = next) {
        next = l->next;
        linger_close(l);
    }
    T.lingering = NULL;
    if (T.adopt)
        event_free(T.adopt);
    free(T.fresh);
    memset(&T, 0, sizeof T);
}

struct bufferevent *wire_bufferevent(struct event_base *base, void *owner)
{
    /* what evhttp makes itself when the bevcb returns NULL (evhttp_get_request_connection) */
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev && !evbuffer_add_cb(bufferevent_get_output(bev), on_output, NULL)) {
        bufferevent_free(bev);
        return NULL;
    }
    if (bev && W.by_fd)
        queue_adopt(base, bev, owner);
    return bev;
}
