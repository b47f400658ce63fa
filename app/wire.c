/* wire: see wire.h. */
#include "app/wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "app/http.h"
#include "core/log.h"

#define IN_MIN 4096         /* a connection's input buffer to start with */
#define CHUNK_LINE_MAX 1024 /* a chunk-size line with its extensions */
#define BODY_KEEP 65536     /* a body buffer larger than this is freed after its request */
#define LINGER_SECONDS 3.0

typedef enum {
    S_HEAD,     /* waiting for a whole head (empty lines before it are skipped) */
    S_BODY,     /* `left` bytes of a Content-Length body */
    S_SIZE,     /* a chunk-size line */
    S_DATA,     /* `left` bytes of chunk data */
    S_DATA_END, /* the CRLF after them */
    S_TRAILER,  /* trailer lines after the last chunk */
    S_BUSY,     /* the request is with the server (wire_reply ends it) */
    S_CLOSED,   /* closing: nothing more is read or parsed */
} conn_state;

typedef struct conn {
    wire_request req; /* first: wire_reply finds the connection from it */
    struct event *rd, *wr, *timer;
    evutil_socket_t fd;
    void *owner;
    struct sockaddr_storage peer;
    conn_state st;
    char *in; /* bytes read: [in_off, in_len) not yet consumed */
    size_t in_off, in_len, in_cap;
    size_t scanned; /* S_HEAD: bytes from in_off already searched for the head's end */
    size_t trailer; /* S_TRAILER: bytes of trailer lines so far */
    char *head;     /* the current request's head, copied out of `in` and parsed in place */
    size_t head_cap;
    wire_header *hdr;
    int hdr_cap;
    char *body;
    size_t body_len, body_cap;
    long long left;
    char *out; /* reply bytes the socket did not take yet: [out_off, out_len) */
    size_t out_off, out_len;
    bool keep_alive;  /* the request lets the connection stay open */
    bool eof;         /* the client shut its sending side */
    bool dead;        /* the socket was closed while the server had the request */
    bool reading;     /* rd is added */
    bool timing;      /* the timer counts a request begun (else an idle connection, or a write) */
    bool in_process;  /* conn_process is on the stack: closing is left to it */
    bool end_linger;  /* S_CLOSED: linger (an answer may still be read), else close at once */
    bool continue_ok; /* the head asked for 100-continue */
    struct conn *next, *prev;
} conn;

typedef struct lingering {
    struct event *ev;
    double until;
    struct lingering *next, *prev;
} lingering;

static struct {
    wire_config cfg;
    struct timeval timeout;
    atomic_long open;
} W;

static _Thread_local struct {
    conn *conns;
    lingering *lingering;
} T;

void wire_init(const wire_config *cfg)
{
    W.cfg = *cfg;
    W.timeout.tv_sec = (time_t)cfg->read_timeout;
    W.timeout.tv_usec = (suseconds_t)((cfg->read_timeout - (double)W.timeout.tv_sec) * 1e6);
}

long wire_connections(void)
{
    return atomic_load(&W.open);
}

static double mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- closing ---- */

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

/* RFC 9112 9.6: a server that closes while the client may still be sending must not just close:
 * the kernel would answer the unread bytes with a reset, which can destroy the answer before the
 * client reads it. The sending side is shut (the client sees the end of the answer), and what
 * arrives is read and dropped until the client closes, for LINGER_SECONDS at most (nginx's
 * lingering_close). Takes fd; counted as a connection meanwhile. */
static void linger(struct event_base *base, evutil_socket_t fd)
{
    shutdown(fd, SHUT_WR);
    lingering *l = calloc(1, sizeof *l);
    if (l)
        l->ev = event_new(base, fd, EV_READ | EV_PERSIST, on_linger, l);
    struct timeval tick = {0, 500000};
    if (!l || !l->ev || event_add(l->ev, &tick) < 0) {
        if (l && l->ev)
            event_free(l->ev);
        free(l);
        close(fd);
        return;
    }
    l->until = mono_seconds() + LINGER_SECONDS;
    l->next = T.lingering;
    if (T.lingering)
        T.lingering->prev = l;
    T.lingering = l;
    atomic_fetch_add(&W.open, 1);
}

static void conn_free(conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (T.conns == c)
        T.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    event_free(c->rd);
    event_free(c->wr);
    event_free(c->timer);
    if (c->fd >= 0)
        close(c->fd);
    free(c->in);
    free(c->head);
    free(c->hdr);
    free(c->body);
    free(c->out);
    free(c);
    atomic_fetch_sub(&W.open, 1);
}

static bool out_pending(const conn *c)
{
    return c->out_off < c->out_len;
}

/* Closes now: lingering (slow) when an answer may still be on its way to a client that is sending,
 * at once otherwise. A reply not yet written goes first (on_write comes back here). While the
 * server has the request, the socket closes and the connection waits for wire_reply. */
static void conn_close(conn *c, bool slow)
{
    if (c->st == S_BUSY) {
        event_del(c->rd);
        event_del(c->wr);
        event_del(c->timer);
        close(c->fd);
        c->fd = -1;
        c->dead = true;
        return;
    }
    c->st = S_CLOSED;
    c->end_linger = slow;
    if (slow && out_pending(c))
        return;
    if (slow && !c->eof) {
        struct event_base *base = event_get_base(c->rd);
        event_del(c->rd);
        linger(base, c->fd);
        c->fd = -1;
    }
    conn_free(c);
}

/* Inside conn_process the close is left to it (the connection is still on its stack). */
static void conn_end(conn *c, bool slow)
{
    if (c->in_process) {
        c->st = S_CLOSED;
        c->end_linger = slow;
        return;
    }
    conn_close(c, slow);
}

/* ---- writing ---- */

static void on_write(evutil_socket_t fd, short what, void *arg);

/* Writes a, then b; what the socket does not take waits in c->out for on_write. Returns -1 when
 * the client is gone. */
static int conn_write(conn *c, const char *a, size_t alen, const char *b, size_t blen)
{
    size_t done = 0;
    if (!out_pending(c)) {
        struct iovec v[2] = {{(void *)a, alen}, {(void *)b, blen}};
        ssize_t n = writev(c->fd, v, blen ? 2 : 1);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        done = n > 0 ? (size_t)n : 0;
        if (done == alen + blen)
            return 0;
    }
    size_t keep = c->out_len - c->out_off, more = alen + blen - done;
    char *out = malloc(keep + more);
    if (!out)
        return -1;
    if (keep)
        memcpy(out, c->out + c->out_off, keep);
    for (int i = 0; i < 2; i++) { /* the bytes of a, then of b, from `done` on */
        const char *p = i ? b : a;
        size_t len = i ? blen : alen;
        size_t skip = done < len ? done : len;
        if (len > skip) /* b may be NULL with blen 0: memcpy must not see it */
            memcpy(out + keep, p + skip, len - skip);
        keep += len - skip;
        done -= skip;
    }
    free(c->out);
    c->out = out;
    c->out_off = 0;
    c->out_len = keep;
    /* a client that does not read its reply gets READ_TIMEOUT to start */
    c->timing = false;
    event_add(c->timer, &W.timeout);
    event_add(c->wr, NULL);
    return 0;
}

static void conn_process(conn *c);

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    conn *c = arg;
    ssize_t n = write(fd, c->out + c->out_off, c->out_len - c->out_off);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        c->out_off = c->out_len;
        conn_close(c, false);
        return;
    }
    if (n > 0) {
        c->out_off += (size_t)n;
        event_add(c->timer, &W.timeout);
    }
    if (out_pending(c))
        return;
    event_del(c->wr);
    free(c->out);
    c->out = NULL;
    c->out_off = c->out_len = 0;
    if (c->st == S_CLOSED)
        conn_close(c, c->end_linger);
    else
        conn_process(c);
}

/* An error the connection cannot go on after: answered as JSON, then closed (wire.h). */
static void fail(conn *c, int status, const char *detail)
{
    char body[160], head[320];
    int blen = snprintf(body, sizeof body, "{\"detail\":\"%s\"}", detail);
    int hlen = snprintf(head, sizeof head,
                        "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %d\r\nX-Content-Type-Options: nosniff\r\n"
                        "Connection: close\r\n\r\n",
                        status, http_reason(status), blen);
    bool gone = conn_write(c, head, (size_t)hlen, body, (size_t)blen) < 0;
    conn_end(c, !gone);
}

/* ---- parsing ---- */

/* RFC 9110 5.6.2: tchar */
static bool is_tchar(unsigned char ch)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr(extra, ch));
}

static bool is_token(const char *s, size_t n)
{
    if (!n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i]))
            return false;
    return true;
}

/* Whether the comma-separated list `v` holds `token` (case-insensitive). */
static bool has_token(const char *v, const char *token)
{
    size_t n = strlen(token);
    while (v && *v) {
        v += strspn(v, " \t,");
        size_t len = strcspn(v, ",");
        size_t end = len;
        while (end && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end == n && !strncasecmp(v, token, n))
            return true;
        v += len;
    }
    return false;
}

const char *wire_header_get(const wire_request *req, const char *name)
{
    for (int i = 0; i < req->nheaders; i++)
        if (!strcasecmp(req->headers[i].name, name))
            return req->headers[i].value;
    return NULL;
}

/* Room for `n` more header fields. */
static bool header_room(conn *c, int n)
{
    if (n < c->hdr_cap)
        return true;
    int cap = c->hdr_cap ? c->hdr_cap * 2 : 16;
    wire_header *more = realloc(c->hdr, (size_t)cap * sizeof *more);
    if (!more)
        return false;
    c->hdr = more;
    c->hdr_cap = cap;
    return true;
}

/* Splits the request-target into path and query (in place: it is not needed whole after). The
 * asterisk-form and authority-form have no path (NULL): the server answers 404 or 501. */
static void split_target(wire_request *r, char *target)
{
    char *path = target;
    r->path = NULL;
    r->query = NULL;
    if (*target != '/') { /* absolute-form (RFC 9112 3.2.2): the path after the authority */
        size_t scheme = !strncasecmp(target, "http://", 7)    ? 7
                        : !strncasecmp(target, "https://", 8) ? 8
                                                              : 0;
        if (!scheme)
            return;
        path = target + scheme + strcspn(target + scheme, "/?#");
    }
    char *q = path + strcspn(path, "?#"), *query = *q == '?' ? q + 1 : NULL;
    *q = '\0';
    if (query)
        query[strcspn(query, "#")] = '\0';
    r->query = query;
    r->path = *path ? path : "/"; /* "http://host" and "http://host?q" */
}

/* The head [0, len) in c->head, NUL-terminated: request line and fields into c->req, framing into
 * c->left / c->st. Answers and returns -1 on an error. */
static int parse_head(conn *c, size_t len)
{
    char *h = c->head;
    wire_request *r = &c->req;
    if (memchr(h, '\0', len)) {
        fail(c, 400, "Invalid header: NUL");
        return -1;
    }
    /* RFC 9112 2.2: a CR only right before an LF */
    for (char *cr = memchr(h, '\r', len); cr; cr = memchr(cr + 1, '\r', len - (size_t)(cr + 1 - h)))
        if (cr[1] != '\n') {
            fail(c, 400, "Invalid header: bare CR");
            return -1;
        }
    char *eol = strchr(h, '\n');
    char *line_end = eol > h && eol[-1] == '\r' ? eol - 1 : eol;
    *line_end = '\0';
    char *sp1 = strchr(h, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || !is_token(h, (size_t)(sp1 - h)) || sp2 == sp1 + 1) {
        fail(c, 400, "Invalid request line");
        return -1;
    }
    *sp1 = *sp2 = '\0';
    const char *version = sp2 + 1;
    if (strncmp(version, "HTTP/1.", 7) || (version[7] != '0' && version[7] != '1') || version[8]) {
        fail(c, 400, "Invalid request line");
        return -1;
    }
    for (const unsigned char *t = (const unsigned char *)sp1 + 1; *t; t++)
        if (*t <= ' ' || *t == 0x7f) {
            fail(c, 400, "Invalid request line");
            return -1;
        }
    r->method = h;
    r->minor = version[7] - '0';
    char *target = sp1 + 1;
    const char *length = NULL, *coding = NULL, *connection = NULL, *expect = NULL;
    int n = 0;
    for (char *line = eol + 1; *line && *line != '\r' && *line != '\n';) {
        eol = strchr(line, '\n');
        line_end = eol[-1] == '\r' ? eol - 1 : eol;
        char *colon = memchr(line, ':', (size_t)(line_end - line));
        /* RFC 9112 5.1, 5.2: no blank before the colon, no obs-fold */
        if (!colon || !is_token(line, (size_t)(colon - line))) {
            fail(c, 400, "Invalid header");
            return -1;
        }
        char *v = colon + 1, *end = line_end;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        for (const unsigned char *p = (const unsigned char *)v; p < (const unsigned char *)end; p++)
            if ((*p < ' ' && *p != '\t') || *p == 0x7f) {
                fail(c, 400, "Invalid header");
                return -1;
            }
        *colon = '\0';
        *end = '\0';
        if (!header_room(c, n)) {
            fail(c, 503, "Service Unavailable");
            return -1;
        }
        c->hdr[n++] = (wire_header){line, v};
        if (!strcasecmp(line, "Content-Length")) {
            /* RFC 9110 8.6: 1*DIGIT; the same value repeated is one value, another is an error */
            if (!*v || strspn(v, "0123456789") != strlen(v)) {
                fail(c, 400, "Invalid Content-Length");
                return -1;
            }
            if (length && strcmp(length, v)) {
                fail(c, 400, "Conflicting Content-Length");
                return -1;
            }
            length = v;
        } else if (!strcasecmp(line, "Transfer-Encoding")) {
            /* RFC 9112 6.1: a coding the server does not understand is a 501 */
            if (coding || strcasecmp(v, "chunked")) {
                fail(c, 501, "Unsupported Transfer-Encoding");
                return -1;
            }
            coding = v;
        } else if (!strcasecmp(line, "Connection")) {
            connection = v;
        } else if (!strcasecmp(line, "Expect")) {
            expect = v;
        }
        line = eol + 1;
    }
    if (length && coding) { /* RFC 9112 6.1 */
        fail(c, 400, "Content-Length with Transfer-Encoding");
        return -1;
    }
    r->headers = c->hdr;
    r->nheaders = n;
    c->keep_alive =
        r->minor == 1 ? !has_token(connection, "close") : has_token(connection, "keep-alive");
    c->continue_ok = r->minor == 1 && expect && !strcasecmp(expect, "100-continue");
    c->body_len = 0;
    if (coding) {
        c->st = S_SIZE;
    } else if (length && strcmp(length + strspn(length, "0"), "")) {
        size_t digits = strlen(length + strspn(length, "0"));
        c->left = digits > 15 ? (long long)1 << 60 : atoll(length);
        c->st = S_BODY;
    } else {
        c->st = S_BUSY; /* no body */
    }
    if (c->st != S_BUSY && W.cfg.head_check) {
        wire_head head = {.method = r->method,
                          .target = target,
                          .authorization = wire_header_get(r, "Authorization"),
                          .origin = wire_header_get(r, "Origin"),
                          .request_id = wire_header_get(r, "X-Request-ID")};
        size_t alen = 0;
        char *answer = W.cfg.head_check(c->owner, &head, &alen);
        if (answer) {
            bool gone = conn_write(c, answer, alen, NULL, 0) < 0;
            free(answer);
            conn_end(c, !gone);
            return -1;
        }
    }
    if (c->st == S_BODY && (unsigned long long)c->left > W.cfg.max_body_bytes) {
        fail(c, 413, "Content Too Large");
        return -1;
    }
    split_target(r, target);
    return 0;
}

/* Room for `n` bytes of body. */
static bool body_room(conn *c, size_t n)
{
    if (c->body_len + n + 1 <= c->body_cap)
        return true;
    size_t cap = c->body_cap ? c->body_cap : 1024;
    while (cap < c->body_len + n + 1)
        cap *= 2;
    char *more = realloc(c->body, cap);
    if (!more)
        return false;
    c->body = more;
    c->body_cap = cap;
    return true;
}

static void body_take(conn *c, size_t n)
{
    memcpy(c->body + c->body_len, c->in + c->in_off, n);
    c->body_len += n;
    c->in_off += n;
}

/* The end of the line that starts at in_off (the LF's offset), or 0 when not all here. */
static size_t line_end(const conn *c)
{
    const char *nl = memchr(c->in + c->in_off, '\n', c->in_len - c->in_off);
    return nl ? (size_t)(nl - c->in) : 0;
}

/* Hands the request whole to the server. */
static void deliver(conn *c)
{
    c->st = S_BUSY;
    if (c->body_len)
        c->body[c->body_len] = '\0';
    c->req.body = c->body_len ? c->body : "";
    c->req.body_len = c->body_len;
    event_del(c->timer);
    c->timing = false;
    W.cfg.on_request(c->owner, &c->req);
}

/* One step of parsing what is buffered: 1 when it went on, 0 when it needs more bytes, -1 when
 * the connection is answered or closing (see c->st). */
static int step(conn *c)
{
    size_t avail = c->in_len - c->in_off;
    const char *p = c->in + c->in_off;
    switch (c->st) {
    case S_HEAD: {
        /* RFC 9112 2.2: empty lines before a request line are skipped */
        while (avail && (p[0] == '\n' || (p[0] == '\r' && avail > 1 && p[1] == '\n'))) {
            size_t k = p[0] == '\n' ? 1 : 2;
            c->in_off += k, p += k, avail -= k;
            c->scanned = 0;
        }
        const char *end = NULL;
        size_t from = c->scanned > 3 ? c->scanned - 3 : 0;
        for (const char *nl = memchr(p + from, '\n', avail - from); nl;
             nl = memchr(nl + 1, '\n', avail - (size_t)(nl + 1 - p))) {
            size_t at = (size_t)(nl - p);
            if (at + 1 < avail && p[at + 1] == '\n') {
                end = nl + 2;
                break;
            }
            if (at + 2 < avail && p[at + 1] == '\r' && p[at + 2] == '\n') {
                end = nl + 3;
                break;
            }
        }
        size_t len = end ? (size_t)(end - p) : avail;
        if (len > W.cfg.max_header_bytes) {
            fail(c, 431, "Request Header Fields Too Large");
            return -1;
        }
        if (!end) {
            c->scanned = avail;
            return 0;
        }
        c->scanned = 0;
        if (len + 1 > c->head_cap) {
            char *more = realloc(c->head, len + 1);
            if (!more) {
                fail(c, 503, "Service Unavailable");
                return -1;
            }
            c->head = more;
            c->head_cap = len + 1;
        }
        memcpy(c->head, p, len);
        c->head[len] = '\0';
        c->in_off += len;
        if (parse_head(c, len) < 0)
            return -1;
        if (c->st == S_BUSY) {
            deliver(c);
            return 1;
        }
        if (c->continue_ok && c->in_off == c->in_len) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            if (conn_write(c, cont, sizeof cont - 1, NULL, 0) < 0) {
                conn_end(c, false);
                return -1;
            }
        }
        return 1;
    }
    case S_BODY:
    case S_DATA: {
        if (!avail)
            return 0;
        size_t take = (unsigned long long)c->left < avail ? (size_t)c->left : avail;
        if (c->body_len + take > W.cfg.max_body_bytes) {
            fail(c, 413, "Content Too Large");
            return -1;
        }
        if (!body_room(c, take)) {
            fail(c, 503, "Service Unavailable");
            return -1;
        }
        body_take(c, take);
        c->left -= (long long)take;
        if (c->left)
            return 0;
        if (c->st == S_DATA) {
            c->st = S_DATA_END;
            return 1;
        }
        deliver(c);
        return 1;
    }
    case S_SIZE:
    case S_DATA_END:
    case S_TRAILER: {
        size_t nl = line_end(c);
        if (!nl) {
            size_t limit = c->st == S_TRAILER ? W.cfg.max_header_bytes : CHUNK_LINE_MAX;
            if (c->st == S_DATA_END ? avail >= 2 : avail > limit) {
                fail(c, c->st == S_TRAILER ? 431 : 400,
                     c->st == S_TRAILER ? "Request Header Fields Too Large"
                                        : "Invalid chunked encoding");
                return -1;
            }
            return 0;
        }
        char *line = c->in + c->in_off;
        size_t n = nl - c->in_off;
        c->in_off = nl + 1;
        if (n && line[n - 1] == '\r')
            n--;
        if (memchr(line, '\r', n)) {
            fail(c, 400, "Invalid chunked encoding");
            return -1;
        }
        if (c->st == S_DATA_END) {
            if (n) {
                fail(c, 400, "Invalid chunked encoding");
                return -1;
            }
            c->st = S_SIZE;
            return 1;
        }
        if (c->st == S_TRAILER) {
            c->trailer += n + 2;
            if (c->trailer > W.cfg.max_header_bytes) {
                fail(c, 431, "Request Header Fields Too Large");
                return -1;
            }
            if (!n) {
                c->trailer = 0;
                deliver(c);
            }
            return 1;
        }
        /* RFC 9112 7.1: chunk-size = 1*HEXDIG, then BWS ";" chunk-ext, or nothing */
        size_t digits = 0;
        while (digits < n && line[digits] && strchr("0123456789abcdefABCDEF", line[digits]))
            digits++;
        size_t rest = digits;
        while (rest < n && (line[rest] == ' ' || line[rest] == '\t'))
            rest++;
        if (!digits || digits > 15 || (rest < n && line[rest] != ';') ||
            (rest == n && rest != digits)) {
            fail(c, 400, "Invalid chunked encoding");
            return -1;
        }
        long long size = 0;
        for (size_t i = 0; i < digits; i++) {
            char ch = line[i];
            size = size * 16 + (ch <= '9' ? ch - '0' : (ch | 32) - 'a' + 10);
        }
        if (c->body_len + (unsigned long long)size > W.cfg.max_body_bytes) {
            fail(c, 413, "Content Too Large");
            return -1;
        }
        c->left = size;
        c->st = size ? S_DATA : S_TRAILER;
        return 1;
    }
    default:
        return 0;
    }
}

/* Consumed bytes go; a buffer emptied is kept for the next request, a large body is freed. */
static void compact(conn *c)
{
    if (c->in_off == c->in_len) {
        c->in_off = c->in_len = 0;
    } else if (c->in_off > 0 && c->in_len == c->in_cap) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
}

/* The timer: a request begun counts from its first byte (started now when none was counting);
 * an idle connection from now. */
static void settle_timer(conn *c)
{
    if (c->st == S_BUSY || out_pending(c))
        return;
    bool partial = c->st != S_HEAD || c->in_len > c->in_off;
    if (partial && c->timing)
        return;
    c->timing = partial;
    event_add(c->timer, &W.timeout);
}

/* Parses what is buffered while the connection may go on, then settles it: closed, waiting for
 * the server, or reading (and timed). c may be freed on return. */
static void conn_process(conn *c)
{
    c->in_process = true;
    while (c->st < S_BUSY && !out_pending(c) && step(c) > 0)
        ;
    c->in_process = false;
    if (c->st == S_CLOSED) {
        conn_close(c, c->end_linger);
        return;
    }
    compact(c);
    if (c->eof && c->st != S_BUSY && !out_pending(c)) {
        conn_close(c, false); /* nothing more can come: a request begun cannot end */
        return;
    }
    if (!c->reading && !c->eof) { /* on_read stops again if there is still no room */
        event_add(c->rd, NULL);
        c->reading = true;
    }
    settle_timer(c);
}

/* ---- reading ---- */

/* Room to read into: consumed bytes dropped, the buffer grown while a head may still need it. */
static bool in_room(conn *c)
{
    if (c->in_len < c->in_cap)
        return true;
    if (c->in_off > 0) { /* nothing points into it: the head was copied out */
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
        return true;
    }
    size_t max = W.cfg.max_header_bytes + IN_MIN;
    if (c->in_cap >= max || c->st == S_BUSY)
        return false;
    size_t cap = c->in_cap ? c->in_cap * 2 : IN_MIN;
    if (cap > max)
        cap = max;
    char *more = realloc(c->in, cap);
    if (!more)
        return false;
    c->in = more;
    c->in_cap = cap;
    return true;
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
    double now = mono_seconds();
    __typeof__(&seen[0]) e = &seen[h % 64];
    if (!strcmp(e->addr, addr) && now - e->at < 60)
        return false;
    snprintf(e->addr, sizeof e->addr, "%s", addr);
    e->at = now;
    return true;
}

/* READ_TIMEOUT passed: a request not read whole in time (RFC 9112 9.5), an idle keep-alive
 * connection, or a reply the client does not read. */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    conn *c = arg;
    if (c->timing) {
        char addr[INET6_ADDRSTRLEN] = "?";
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)&c->peer;
        if (in4->sin_family == AF_INET)
            inet_ntop(AF_INET, &in4->sin_addr, addr, sizeof addr);
        if (log_once_a_minute(addr))
            log_warn("closed a connection from %s: request not received within READ_TIMEOUT (%gs); "
                     "further ones from this address are not logged for a minute",
                     addr, W.cfg.read_timeout);
    }
    c->out_off = c->out_len; /* a reply not taken is dropped */
    conn_close(c, false);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    conn *c = arg;
    if (!in_room(c)) { /* a pipelining client waits until its earlier request is answered */
        event_del(c->rd);
        c->reading = false;
        return;
    }
    ssize_t n;
    size_t want = c->left < 65536 ? (size_t)c->left : 65536;
    if (c->st == S_BODY && c->in_off == c->in_len && body_room(c, want)) {
        /* a body of known length goes straight to its buffer (grown as it arrives) */
        n = recv(fd, c->body + c->body_len, want, 0);
        if (n > 0) {
            c->body_len += (size_t)n;
            c->left -= n;
            if (!c->left) {
                deliver(c);
                return;
            }
            settle_timer(c);
            return;
        }
    } else {
        n = recv(fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            if (c->st == S_BUSY || out_pending(c)) {
                settle_timer(c);
                return;
            }
            conn_process(c);
            return;
        }
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    event_del(c->rd);
    c->reading = false;
    if (n < 0) {
        c->out_off = c->out_len;
        conn_close(c, false);
        return;
    }
    c->eof = true; /* the client may still read its answers */
    if (c->st != S_BUSY && !out_pending(c))
        conn_process(c);
}

/* Past MAX_CONNECTIONS: a short answer written straight to the socket (nothing to parse, nothing
 * buffered), then closed. RFC 9110 15.6.4: 503 with Retry-After. */
static void refuse(evutil_socket_t fd)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Content-Type: application/json\r\nContent-Length: 46\r\n"
                               "Retry-After: 1\r\nConnection: close\r\n\r\n"
                               "{\"detail\":\"Too many connections, retry later\"}";
    _Static_assert(sizeof "{\"detail\":\"Too many connections, retry later\"}" - 1 == 46,
                   "Content-Length");
    (void)!send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd, SHUT_WR);
    close(fd);
    static _Atomic double last;
    double now = mono_seconds();
    if (now - atomic_load(&last) >= 60) {
        atomic_store(&last, now);
        log_warn("MAX_CONNECTIONS (%ld) reached: new connections get 503 (logged once a minute)",
                 W.cfg.max_connections);
    }
}

void wire_accept(struct event_base *base, evutil_socket_t fd, const struct sockaddr *peer,
                 socklen_t peer_len, void *owner)
{
    if (atomic_fetch_add(&W.open, 1) >= W.cfg.max_connections) {
        atomic_fetch_sub(&W.open, 1);
        refuse(fd);
        return;
    }
    conn *c = calloc(1, sizeof *c);
    if (c) {
        c->rd = event_new(base, fd, EV_READ | EV_PERSIST, on_read, c);
        c->wr = event_new(base, fd, EV_WRITE | EV_PERSIST, on_write, c);
        c->timer = evtimer_new(base, on_timer, c);
    }
    if (!c || !c->rd || !c->wr || !c->timer || event_add(c->rd, NULL) < 0) {
        if (c) {
            if (c->rd)
                event_free(c->rd);
            if (c->wr)
                event_free(c->wr);
            if (c->timer)
                event_free(c->timer);
        }
        free(c);
        close(fd);
        atomic_fetch_sub(&W.open, 1);
        return;
    }
    /* a reply is one write: nothing to gain from Nagle, a delayed ACK's wait to lose */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->owner = owner;
    if (peer_len <= sizeof c->peer)
        memcpy(&c->peer, peer, peer_len);
    c->reading = true;
    c->next = T.conns;
    if (T.conns)
        T.conns->prev = c;
    T.conns = c;
    settle_timer(c);
}

bool wire_closing(const wire_request *req)
{
    const conn *c = (const conn *)req;
    return !c->keep_alive || (c->eof && c->in_off == c->in_len);
}

void wire_reply(wire_request *req, const char *head, size_t head_len, char *body, size_t body_len,
                bool close)
{
    conn *c = (conn *)req;
    if (c->dead) {
        free(body);
        c->st = S_CLOSED;
        conn_free(c);
        return;
    }
    c->st = S_HEAD;
    if (c->body_cap > BODY_KEEP) {
        free(c->body);
        c->body = NULL;
        c->body_cap = 0;
    }
    c->body_len = 0;
    memset(&c->req, 0, sizeof c->req);
    bool gone = conn_write(c, head, head_len, body, body_len) < 0;
    free(body);
    if (gone || close || !c->keep_alive) {
        conn_end(c, !gone);
        return;
    }
    if (!c->in_process)
        conn_process(c);
}

void wire_thread_free(void)
{
    for (conn *c = T.conns, *next; c; c = next) { /* conn_free unlinks c */
        next = c->next;
        c->st = S_CLOSED;
        conn_free(c);
    }
    for (lingering *l = T.lingering, *next; l; l = next) {
        next = l->next;
        linger_close(l);
    }
    memset(&T, 0, sizeof T);
}
