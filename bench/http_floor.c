/* http_floor: the two baselines of bench/http-floor.sh, each answering every request with the API's
 * GET /health reply (same status line, headers and body), on 127.0.0.1:PORT, one thread, until
 * killed:
 *
 *   http_floor raw PORT     epoll and a read, a search for the blank line and a write per request:
 *                           what a keep-alive HTTP/1.1 exchange costs at the least (no parsing, no
 *                           limits: a measuring stick, not a server)
 *   http_floor evhttp PORT  libevent's evhttp with nothing of the API's: what evhttp itself costs
 *
 * The API's own loop sits on evhttp; the difference between these two is what replacing evhttp
 * could save per request (issue 31), the difference between evhttp and the API what the API adds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BODY "{\"status\":\"ok\"}"
#define REQUEST_ID "0123456789abcdef0123456789abcdef"

static const char reply[] = "HTTP/1.1 200 OK\r\n"
                            "Content-Type: application/json\r\n"
                            "X-Request-ID: " REQUEST_ID "\r\n"
                            "X-Content-Type-Options: nosniff\r\n"
                            "Date: Mon, 07 Dec 2026 05:00:00 GMT\r\n"
                            "Content-Length: 15\r\n"
                            "\r\n" BODY;

typedef struct conn {
    int fd;
    size_t n;
    char buf[8192];
} conn;

/* Reads what came; answers each complete head in it. Returns -1 when the connection is done. */
static int serve(conn *c)
{
    ssize_t r = read(c->fd, c->buf + c->n, sizeof c->buf - c->n);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (r <= 0)
        return -1;
    c->n += (size_t)r;
    const char *end;
    while ((end = memmem(c->buf, c->n, "\r\n\r\n", 4))) {
        size_t used = (size_t)(end + 4 - c->buf);
        if (write(c->fd, reply, sizeof reply - 1) != (ssize_t)(sizeof reply - 1))
            return -1; /* a reply this small fits an empty socket buffer, or the client is gone */
        memmove(c->buf, c->buf + used, c->n - used);
        c->n -= used;
    }
    return c->n == sizeof c->buf ? -1 : 0; /* a head larger than the buffer */
}

static int run_raw(int port)
{
    int one = 1, ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (ls < 0 || ep < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 512) < 0 ||
        epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev) < 0) {
        perror("http_floor: listen");
        return 1;
    }
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(ep, evs, 64, -1);
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (c && serve(c) < 0) {
                close(c->fd);
                free(c);
                continue;
            }
            int fd;
            while (!c && (fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                conn *nc = calloc(1, sizeof *nc);
                struct epoll_event e = {.events = EPOLLIN, .data.ptr = nc};
                if (!nc || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0) {
                    close(fd);
                    free(nc);
                    continue;
                }
                nc->fd = fd;
            }
        }
    }
}

static void on_request(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evbuffer *b = evbuffer_new();
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    if (!b || evbuffer_add(b, BODY, sizeof BODY - 1) < 0) {
        evhttp_send_error(req, 500, NULL);
    } else {
        evhttp_add_header(h, "Content-Type", "application/json");
        evhttp_add_header(h, "X-Request-ID", REQUEST_ID);
        evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
        evhttp_send_reply(req, 200, "OK", b);
    }
    if (b)
        evbuffer_free(b);
}

static int run_evhttp(int port)
{
    struct event_config *cfg = event_config_new();
    if (cfg)
        event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST); /* as app/server.c */
    struct event_base *base = cfg ? event_base_new_with_config(cfg) : NULL;
    struct evhttp *http = base ? evhttp_new(base) : NULL;
    if (!http || evhttp_bind_socket(http, "127.0.0.1", (ev_uint16_t)port) < 0) {
        fprintf(stderr, "http_floor: cannot listen on 127.0.0.1:%d\n", port);
        return 1;
    }
    evhttp_set_gencb(http, on_request, NULL);
    return event_base_dispatch(base) < 0;
}

int main(int argc, char **argv)
{
    int port = argc == 3 ? atoi(argv[2]) : 0;
    if (port <= 0 || port > 65535 || (strcmp(argv[1], "raw") && strcmp(argv[1], "evhttp"))) {
        fprintf(stderr, "usage: http_floor raw|evhttp PORT\n");
        return 2;
    }
    return strcmp(argv[1], "raw") ? run_evhttp(port) : run_raw(port);
}
