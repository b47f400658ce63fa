/* healthcheck: see healthcheck.h. A blocking socket and one request line: pulling libevent's HTTP
 * client in for this would be more code, not less. */
#include "app/healthcheck.h"

#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits for `events` on fd until the deadline; returns 1 when ready, 0 on timeout or error. */
static int wait_fd(int fd, short events, double deadline)
{
    double left = deadline - now();
    if (left <= 0)
        return 0;
    struct pollfd p = {.fd = fd, .events = events};
    return poll(&p, 1, (int)(left * 1000) + 1) == 1;
}

static int connect_to(const char *host, int port, double deadline)
{
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, service, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0)
            continue;
        int err = 0;
        socklen_t len = sizeof err;
        if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 &&
            (!wait_fd(fd, POLLOUT, deadline) ||
             getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err)) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

int healthcheck_run(const char *host, int port, double timeout)
{
    if (!strcmp(host, "0.0.0.0") || !*host)
        host = "127.0.0.1";
    else if (!strcmp(host, "::"))
        host = "::1";
    double deadline = now() + timeout;
    int fd = connect_to(host, port, deadline);
    if (fd < 0) {
        fprintf(stderr, "healthcheck: nothing answers on %s:%d\n", host, port);
        return 1;
    }
    static const char request[] = "GET /health HTTP/1.1\r\nHost: localhost\r\n"
                                  "Connection: close\r\n\r\n";
    char reply[64] = "";
    size_t got = 0;
    if (send(fd, request, sizeof request - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof request - 1)) {
        while (got < sizeof reply - 1 && !memchr(reply, '\n', got) &&
               wait_fd(fd, POLLIN, deadline)) {
            ssize_t n = recv(fd, reply + got, sizeof reply - 1 - got, 0);
            if (n <= 0)
                break;
            got += (size_t)n;
            reply[got] = '\0';
        }
    }
    close(fd);
    int status = 0;
    if (sscanf(reply, "HTTP/1.%*d %d", &status) != 1 || status != 200) {
        fprintf(stderr, "healthcheck: GET /health on %s:%d answered %s\n", host, port,
                status ? "with a status other than 200" : "nothing in time");
        return 1;
    }
    return 0;
}
