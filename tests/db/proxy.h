/* A small TCP proxy for tests: it holds the first connection for `first_delay` seconds before
 * connecting it upstream, the way Neon's proxy holds a client while the compute wakes up. */
#ifndef TESTS_DB_PROXY_H
#define TESTS_DB_PROXY_H

#include <pthread.h>

#define PROXY_MAX_CONNS 32

typedef struct test_proxy {
    int listen_fd, port, up_port;
    char up_host[128];
    double first_delay;
    volatile int stop;
    int accepted;
    pthread_t acceptor, conns[PROXY_MAX_CONNS];
    int nconns;
    volatile int frozen_below; /* connections with a lower index stop relaying (a silent network) */
    volatile int frozen_one;   /* index + 1 of one more silent connection, 0: none */
} test_proxy;

/* Listens on a free 127.0.0.1 port (p->port) and relays to host:port. Asserts on failure. */
void test_proxy_start(test_proxy *p, const char *host, int port, double first_delay);

/* Every connection relayed so far goes silent: bytes are neither forwarded nor is anything closed,
 * like a host that vanished or a NAT that forgot the connection. Later connections work. */
void test_proxy_freeze(test_proxy *p);

/* Only the connection accepted `index`-th (from 0) goes silent. */
void test_proxy_freeze_one(test_proxy *p, int index);

/* Stops accepting, closes every relayed connection and joins the threads. */
void test_proxy_stop(test_proxy *p);

#endif
