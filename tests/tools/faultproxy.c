/* faultproxy: a TCP relay on loopback that injects the faults a serverless database shows, on
 * command: every connection dropped (the compute suspended), new ones refused for a while (an
 * outage), new ones held before they reach the server (a cold start), every answer delayed (a
 * distant region: this kernel has no netem), a connection cut in the middle of a result. It also
 * counts round trips ("turns": the server answering after the client sent something new), so a
 * test can assert how many a request costs.
 *
 *   faultproxy --upstream HOST:PORT [--listen PORT] [--control PORT] [--port-file FILE]
 *              [--delay MS] [--conn-delay MS]
 *
 * Commands, one per line on the control port, one answer line each ("ok ..." or "error ..."):
 *   drop | refuse SECONDS | conndelay MS | delay MS | cut | stats | zero | reset
 *
 * Used by the suites (tests/), the chaos run and the distant-database benchmarks (bench/). One
 * thread, one libevent loop; written here rather than taken from a package because Debian has no
 * toxiproxy and the kernel no netem (see ../shared/reference/tools.md). */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct chunk {
    STAILQ_ENTRY(chunk) next;
    struct timeval due;
    struct evbuffer *data;
} chunk;

struct proxy;

typedef struct conn {
    LIST_ENTRY(conn) link;
    struct proxy *p;
    struct bufferevent *client, *server;
    struct event *connect_timer, *delay_timer;
    STAILQ_HEAD(, chunk) delayed; /* server->client bytes waiting out the delay */
    bool asked;                   /* the client sent bytes the server has not answered yet */
    bool closing;                 /* close once the client's output buffer is flushed */
} conn;

typedef struct proxy {
    struct event_base *base;
    struct sockaddr_in upstream;
    LIST_HEAD(, conn) conns;
    int nconns;
    /* faults */
    struct timeval refuse_until;
    int conn_delay_ms, delay_ms;
    bool cut_armed;
    /* counters */
    unsigned long long accepted, refused, turns, up, down;
} proxy;

static void now(struct timeval *tv)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
}

static void conn_free(conn *c)
{
    chunk *k;
    while ((k = STAILQ_FIRST(&c->delayed))) {
        STAILQ_REMOVE_HEAD(&c->delayed, next);
        evbuffer_free(k->data);
        free(k);
    }
    if (c->connect_timer)
        event_free(c->connect_timer);
    if (c->delay_timer)
        event_free(c->delay_timer);
    if (c->client)
        bufferevent_free(c->client);
    if (c->server)
        bufferevent_free(c->server);
    LIST_REMOVE(c, link);
    c->p->nconns--;
    free(c);
}

/* Closes c once what is already queued for the client has been written (or at once when none). */
static void conn_close_after_flush(conn *c)
{
    if (c->server) {
        bufferevent_free(c->server);
        c->server = NULL;
    }
    if (!STAILQ_EMPTY(&c->delayed) || evbuffer_get_length(bufferevent_get_output(c->client)) > 0)
        c->closing = true; /* on_client_write finishes it; on_delay keeps feeding it */
    else
        conn_free(c);
}

static void on_client_write(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    if (c->closing && STAILQ_EMPTY(&c->delayed) &&
        evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        conn_free(c);
}

static void schedule_delay(conn *c)
{
    chunk *k = STAILQ_FIRST(&c->delayed);
    if (!k)
        return;
    struct timeval t, wait = {0, 0};
    now(&t);
    if (timercmp(&k->due, &t, >))
        timersub(&k->due, &t, &wait);
    event_add(c->delay_timer, &wait);
}

static void on_delay(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    struct timeval t;
    now(&t);
    chunk *k;
    while ((k = STAILQ_FIRST(&c->delayed)) && !timercmp(&k->due, &t, >)) {
        STAILQ_REMOVE_HEAD(&c->delayed, next);
        bufferevent_write_buffer(c->client, k->data);
        evbuffer_free(k->data);
        free(k);
    }
    if (c->closing && STAILQ_EMPTY(&c->delayed)) {
        on_client_write(c->client, c);
        return;
    }
    schedule_delay(c);
}

static void on_server_read(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    proxy *p = c->p;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    p->down += n;
    if (c->asked) {
        p->turns++;
        c->asked = false;
    }
    if (p->cut_armed) {
        p->cut_armed = false;
        evbuffer_remove_buffer(in, bufferevent_get_output(c->client), n / 2);
        evbuffer_drain(in, evbuffer_get_length(in));
        conn_close_after_flush(c);
        return;
    }
    if (p->delay_ms <= 0 && STAILQ_EMPTY(&c->delayed)) {
        bufferevent_write_buffer(c->client, in);
        return;
    }
    chunk *k = calloc(1, sizeof *k);
    if (!k || !(k->data = evbuffer_new())) {
        free(k);
        conn_free(c);
        return;
    }
    now(&k->due);
    struct timeval d = {p->delay_ms / 1000, (p->delay_ms % 1000) * 1000};
    timeradd(&k->due, &d, &k->due);
    evbuffer_add_buffer(k->data, in);
    bool was_empty = STAILQ_EMPTY(&c->delayed);
    STAILQ_INSERT_TAIL(&c->delayed, k, next);
    if (was_empty)
        schedule_delay(c);
}

static void on_client_read(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    c->p->up += evbuffer_get_length(in);
    c->asked = true;
    if (c->server)
        bufferevent_write_buffer(c->server, in); /* queued until connected when still connecting */
    else
        evbuffer_drain(in, evbuffer_get_length(in));
}

/* Both legs without Nagle's algorithm, as libpq's own sockets and real proxies (PgBouncer, Neon's
 * proxy) are: with it, a relayed answer waited for the ACK of the one before whenever a
 * connection had several in flight (a pipeline), and the receiver delays that ACK up to 40 ms:
 * through --delay 10 a fifth of the pipelined writes took 50 ms instead of 10. */
static void no_delay(evutil_socket_t fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Whether b's socket has Nagle's algorithm off, as the kernel says (the `stats` command). */
static bool has_no_delay(struct bufferevent *b)
{
    evutil_socket_t fd = b ? bufferevent_getfd(b) : -1;
    int v = 0;
    socklen_t len = sizeof v;
    return fd >= 0 && getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) == 0 && v;
}

static void on_server_event(struct bufferevent *bev, short what, void *arg)
{
    conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        no_delay(bufferevent_getfd(bev));
        return;
    }
    /* what the server said last (an error message, say) was relayed by on_server_read already */
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        conn_close_after_flush(c);
}

static void on_client_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        conn_free(arg);
}

static void connect_upstream(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    if (bufferevent_socket_connect(c->server, (struct sockaddr *)&c->p->upstream,
                                   sizeof c->p->upstream) < 0)
        conn_free(c);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    proxy *p = arg;
    struct timeval t;
    now(&t);
    if (timercmp(&t, &p->refuse_until, <)) {
        /* an outage: reset at once, as a host with nothing listening would */
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fd);
        p->refused++;
        return;
    }
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    no_delay(fd);
    c->p = p;
    STAILQ_INIT(&c->delayed);
    LIST_INSERT_HEAD(&p->conns, c, link);
    p->nconns++;
    p->accepted++;
    c->client = bufferevent_socket_new(p->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->server = bufferevent_socket_new(p->base, -1, BEV_OPT_CLOSE_ON_FREE);
    c->connect_timer = evtimer_new(p->base, connect_upstream, c);
    c->delay_timer = evtimer_new(p->base, on_delay, c);
    if (!c->client || !c->server || !c->connect_timer || !c->delay_timer) {
        conn_free(c);
        return;
    }
    bufferevent_setcb(c->client, on_client_read, on_client_write, on_client_event, c);
    bufferevent_setcb(c->server, on_server_read, NULL, on_server_event, c);
    bufferevent_enable(c->client, EV_READ | EV_WRITE);
    bufferevent_enable(c->server, EV_READ | EV_WRITE);
    struct timeval hold = {p->conn_delay_ms / 1000, (p->conn_delay_ms % 1000) * 1000};
    event_add(c->connect_timer, &hold);
}

/* ---- control ---- */

static void answer(struct bufferevent *bev, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void answer(struct bufferevent *bev, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    evbuffer_add_vprintf(bufferevent_get_output(bev), fmt, ap);
    va_end(ap);
    evbuffer_add(bufferevent_get_output(bev), "\n", 1);
}

/* Parses a non-negative integer argument; -1 when missing or malformed. */
static long arg_int(const char *s)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return (errno || *end || v < 0 || v > 86400000) ? -1 : v;
}

static void command(proxy *p, struct bufferevent *bev, char *line)
{
    char *cmd = strtok(line, " \t\r");
    char *arg = strtok(NULL, " \t\r");
    if (!cmd) {
        answer(bev, "error empty command");
    } else if (!strcmp(cmd, "drop")) {
        int n = 0;
        while (!LIST_EMPTY(&p->conns)) {
            conn_free(LIST_FIRST(&p->conns));
            n++;
        }
        answer(bev, "ok dropped=%d", n);
    } else if (!strcmp(cmd, "refuse") || !strcmp(cmd, "conndelay") || !strcmp(cmd, "delay")) {
        long v = arg_int(arg);
        if (v < 0) {
            answer(bev, "error %s needs a non-negative integer", cmd);
            return;
        }
        if (!strcmp(cmd, "refuse")) {
            now(&p->refuse_until);
            p->refuse_until.tv_sec += v;
        } else if (!strcmp(cmd, "conndelay")) {
            p->conn_delay_ms = (int)v;
        } else {
            p->delay_ms = (int)v;
        }
        answer(bev, "ok %s %ld", cmd, v);
    } else if (!strcmp(cmd, "cut")) {
        p->cut_armed = true;
        answer(bev, "ok cut armed");
    } else if (!strcmp(cmd, "stats")) {
        int nodelay = 0; /* connections with Nagle off on both legs */
        for (conn *c = LIST_FIRST(&p->conns); c; c = LIST_NEXT(c, link))
            nodelay += has_no_delay(c->client) && has_no_delay(c->server);
        answer(bev,
               "ok conns=%d accepted=%llu refused=%llu turns=%llu up=%llu down=%llu nodelay=%d",
               p->nconns, p->accepted, p->refused, p->turns, p->up, p->down, nodelay);
    } else if (!strcmp(cmd, "zero")) {
        p->accepted = p->refused = p->turns = p->up = p->down = 0;
        answer(bev, "ok");
    } else if (!strcmp(cmd, "reset")) {
        timerclear(&p->refuse_until);
        p->conn_delay_ms = p->delay_ms = 0;
        p->cut_armed = false;
        answer(bev, "ok");
    } else {
        answer(bev,
               "error unknown command \"%s\" (drop, refuse S, conndelay MS, delay MS, cut, "
               "stats, zero, reset)",
               cmd);
    }
}

static void on_control_read(struct bufferevent *bev, void *arg)
{
    char *line;
    size_t n;
    while ((line = evbuffer_readln(bufferevent_get_input(bev), &n, EVBUFFER_EOL_CRLF))) {
        command(arg, bev, line);
        free(line);
    }
    if (evbuffer_get_length(bufferevent_get_input(bev)) > 4096)
        bufferevent_free(bev); /* not a command: a line that long is someone else's protocol */
}

static void on_control_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        bufferevent_free(bev);
}

static void on_control_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                              int len, void *arg)
{
    proxy *p = arg;
    struct bufferevent *bev = bufferevent_socket_new(p->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        close(fd);
        return;
    }
    bufferevent_setcb(bev, on_control_read, NULL, on_control_event, p);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* ---- main ---- */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    event_base_loopbreak(arg);
}

static struct evconnlistener *listen_on(proxy *p, int port, evconnlistener_cb cb)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return evconnlistener_new_bind(p->base, cb, p, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 128,
                                   (struct sockaddr *)&sa, sizeof sa);
}

static int bound_port(struct evconnlistener *l)
{
    struct sockaddr_in sa = {0};
    socklen_t len = sizeof sa;
    if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sa, &len) < 0)
        return -1;
    return ntohs(sa.sin_port);
}

static int usage(const char *why)
{
    fprintf(stderr,
            "faultproxy: %s\n"
            "usage: faultproxy --upstream HOST:PORT [--listen PORT] [--control PORT] "
            "[--port-file FILE] [--delay MS] [--conn-delay MS]\n",
            why);
    return 2;
}

/* Resolves "host:port" (host an IPv4 address or a name such as localhost) into sa. */
static int parse_upstream(const char *s, struct sockaddr_in *sa)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || colon - s >= 256)
        return -1;
    char host[256];
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    long port = arg_int(colon + 1);
    if (port < 1 || port > 65535)
        return -1;
    struct evutil_addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
    if (evutil_getaddrinfo(host, NULL, &hints, &res) != 0)
        return -1;
    memcpy(sa, res->ai_addr, sizeof *sa);
    evutil_freeaddrinfo(res);
    sa->sin_port = htons((uint16_t)port);
    return 0;
}

int main(int argc, char **argv)
{
    proxy p = {0};
    LIST_INIT(&p.conns);
    const char *upstream = NULL, *port_file = NULL;
    long listen_port = 0, control_port = 0;
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n = arg_int(v);
        if (!strcmp(a, "--upstream") && v)
            upstream = v;
        else if (!strcmp(a, "--port-file") && v)
            port_file = v;
        else if (!strcmp(a, "--listen") && n >= 0 && n <= 65535)
            listen_port = n;
        else if (!strcmp(a, "--control") && n >= 0 && n <= 65535)
            control_port = n;
        else if (!strcmp(a, "--delay") && n >= 0)
            p.delay_ms = (int)n;
        else if (!strcmp(a, "--conn-delay") && n >= 0)
            p.conn_delay_ms = (int)n;
        else
            return usage(v || !strncmp(a, "--", 2) ? "bad or unknown option"
                                                   : "option needs a value");
    }
    if (!upstream)
        return usage("--upstream is required");
    if (parse_upstream(upstream, &p.upstream) < 0)
        return usage("--upstream must be HOST:PORT with a host that resolves to IPv4");

    signal(SIGPIPE, SIG_IGN);
    p.base = event_base_new();
    struct evconnlistener *data = p.base ? listen_on(&p, (int)listen_port, on_accept) : NULL;
    struct evconnlistener *ctl = data ? listen_on(&p, (int)control_port, on_control_accept) : NULL;
    if (!ctl) {
        fprintf(stderr, "faultproxy: could not listen on 127.0.0.1: %s\n", strerror(errno));
        return 1;
    }
    int lp = bound_port(data), cp = bound_port(ctl);
    if (port_file) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%d %d\n", lp, cp) < 0 || fclose(f) != 0 ||
            rename(tmp, port_file) < 0) {
            fprintf(stderr, "faultproxy: could not write %s: %s\n", port_file, strerror(errno));
            return 1;
        }
    }
    printf("faultproxy: listening on 127.0.0.1:%d, control 127.0.0.1:%d\n", lp, cp);
    fflush(stdout);

    struct event *term = evsignal_new(p.base, SIGTERM, on_signal, p.base);
    struct event *intr = evsignal_new(p.base, SIGINT, on_signal, p.base);
    event_add(term, NULL);
    event_add(intr, NULL);
    event_base_dispatch(p.base);

    /* conn_free unlinks each one (LIST_REMOVE), which the analyzer loses track of */
    while (!LIST_EMPTY(&p.conns))
        conn_free(LIST_FIRST(&p.conns)); // NOLINT(clang-analyzer-unix.Malloc)
    event_free(term);
    event_free(intr);
    evconnlistener_free(data);
    evconnlistener_free(ctl);
    event_base_free(p.base);
    return 0;
}
