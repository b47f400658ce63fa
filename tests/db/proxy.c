/* proxy: see proxy.h. Plain sockets and poll(); every loop checks `stop` at least every 50 ms so
 * test_proxy_stop() returns promptly. */
#include "proxy.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    test_proxy *p;
    int fd, index;
    double delay;
} relay_arg;

static int connect_upstream(test_proxy *p)
{
    char port[16];
    snprintf(port, sizeof port, "%d", p->up_port);
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(p->up_host, port, &hints, &ai) != 0)
        return -1;
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static void *relay(void *arg)
{
    relay_arg *a = arg;
    test_proxy *p = a->p;
    for (double waited = 0; waited < a->delay && !p->stop; waited += 0.01)
        usleep(10000);
    int up = p->stop ? -1 : connect_upstream(p);
    struct pollfd fds[2] = {{a->fd, POLLIN, 0}, {up, POLLIN, 0}};
    char buf[16384];
    while (up >= 0 && !p->stop) {
        if (a->index < p->frozen_below || a->index + 1 == p->frozen_one) {
            usleep(10000);
            continue;
        }
        int r = poll(fds, 2, 50);
        if (r <= 0)
            continue;
        int i;
        for (i = 0; i < 2; i++) {
            if (!fds[i].revents)
                continue;
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n <= 0 || write(fds[1 - i].fd, buf, (size_t)n) != n)
                break;
        }
        if (i < 2)
            break;
    }
    if (up >= 0)
        close(up);
    close(a->fd);
    free(a);
    return NULL;
}

static void *acceptor(void *arg)
{
    test_proxy *p = arg;
    while (!p->stop) {
        struct pollfd pf = {p->listen_fd, POLLIN, 0};
        if (poll(&pf, 1, 50) <= 0)
            continue;
        int fd = accept(p->listen_fd, NULL, NULL);
        if (fd < 0 || p->nconns == PROXY_MAX_CONNS) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        relay_arg *a = malloc(sizeof *a);
        *a = (relay_arg){p, fd, p->nconns, p->accepted++ == 0 ? p->first_delay : 0};
        pthread_create(&p->conns[p->nconns++], NULL, relay, a);
    }
    return NULL;
}

void test_proxy_start(test_proxy *p, const char *host, int port, double first_delay)
{
    memset(p, 0, sizeof *p);
    snprintf(p->up_host, sizeof p->up_host, "%s", host);
    p->up_port = port;
    p->first_delay = first_delay;
    p->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    cr_assert(bind(p->listen_fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    cr_assert(listen(p->listen_fd, 16) == 0);
    getsockname(p->listen_fd, (struct sockaddr *)&sa, &len);
    p->port = ntohs(sa.sin_port);
    pthread_create(&p->acceptor, NULL, acceptor, p);
}

void test_proxy_freeze(test_proxy *p)
{
    p->frozen_below = p->nconns;
}

void test_proxy_freeze_one(test_proxy *p, int index)
{
    p->frozen_one = index + 1;
}

void test_proxy_stop(test_proxy *p)
{
    p->stop = 1;
    pthread_join(p->acceptor, NULL);
    for (int i = 0; i < p->nconns; i++)
        pthread_join(p->conns[i], NULL);
    close(p->listen_fd);
}
