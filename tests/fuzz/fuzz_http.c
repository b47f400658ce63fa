/* fuzz_http: raw HTTP requests through the real server: libevent's parser, dispatch (routing, 404,
 * 405, 307, CORS preflight, 413, 431), the X-Request-ID and Idempotency-Key headers, the bearer
 * token, path/query/body validation, and the handlers up to the database. The API runs in this
 * process (server_run on a thread, as main does) with a DATABASE_URL whose port refuses
 * connections, so requests that get that far end in the outage's 503: no database is needed, and
 * the database layer's failure paths are exercised too. Input: the bytes a client sends on one
 * connection (several pipelined requests are fine); the harness reads until the server closes (30 s
 * at most). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <string.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "app/auth.h"
#include "app/config.h"
#include "app/router.h"
#include "app/server.h"
#include "core/log.h"
#include "tests/fuzz/fuzz.h"

static struct sockaddr_in addr;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &n) < 0)
        abort();
    close(fd);
    return ntohs(sa.sin_port);
}

static void *serve(void *arg)
{
    (void)arg;
    server_run();
    return NULL;
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        abort();
    /* a server that hangs is a finding; 30 s, not less: on a loaded machine (CI, shared cores) a
     * request whose connect is retried can take seconds without anything being wrong */
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    /* a connect the watchdog's SIGALRM interrupts goes on in the background: ask again */
    while (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        if (errno == EISCONN)
            break;
        if (errno != EINTR && errno != EALREADY) {
            close(fd);
            return -1;
        }
        usleep(1000);
    }
    return fd;
}

/* What the server says about itself (handlers in progress, pool), for a hang's report. */
static void dump_metrics(void)
{
    int fd = dial();
    static const char get[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                              "fuzz-metrics-token-0123456789\r\nConnection: close\r\n\r\n";
    if (fd < 0 || send(fd, get, sizeof get - 1, MSG_NOSIGNAL) < 0)
        return;
    char buf[65536];
    ssize_t n, len = 0;
    while (len < (ssize_t)sizeof buf - 1 &&
           (n = recv(fd, buf + len, sizeof buf - 1 - (size_t)len, 0)) > 0)
        len += n;
    buf[len] = '\0';
    fprintf(stderr, "fuzz_http: the server's /metrics:\n%s\n", buf);
    close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char port[16];
    snprintf(port, sizeof port, "%d", free_port());
    setenv("PORT", port, 1);
    setenv("HOST", "127.0.0.1", 1);
    setenv("JWT_SECRET", "fuzz-secret-fuzz-secret-fuzz-secret-0123", 1);
    setenv("METRICS_TOKEN", "fuzz-metrics-token-0123456789", 1);
    setenv("CORS_ORIGINS", "http://localhost:3000", 1);
    setenv("MAX_BODY_BYTES", "4096", 1);
    setenv("MAX_HEADER_BYTES", "2048", 1);
    setenv("READ_TIMEOUT", "2", 1);
    setenv("ACCESS_LOG", "false", 1);
    setenv("LOG_LEVEL", "error", 0); /* LOG_LEVEL=info to see the server */
    setenv("LOG_FORMAT", "text", 1);
    /* port 1: refused at once; the first failure starts the pool's outage mode (fast 503s) */
    setenv("DATABASE_URL", "postgresql://fuzz@127.0.0.1:1/fuzz", 1);
    setenv("DB_CONNECT_TIMEOUT", "0.2", 1);
    setenv("DB_ACQUIRE_TIMEOUT", "0.2", 1);
    char err[512];
    static app_config cfg;
    db_config dbc;
    if (log_configure_from_env(err, sizeof err) < 0 || app_config_load(&cfg, err, sizeof err) < 0 ||
        db_config_from_env(&dbc, err, sizeof err) < 0 ||
        auth_configure(cfg.jwt_secret, strlen(cfg.jwt_secret)) < 0 ||
        router_init(err, sizeof err) < 0) {
        fprintf(stderr, "fuzz_http: %s\n", err);
        abort();
    }
    app_config_settle(&cfg, &dbc); /* as main.c does */
    app.cfg = &cfg;
    db_error derr;
    app.engine = db_engine_open(&dbc, &derr);
    if (!app.engine) {
        fprintf(stderr, "fuzz_http: %s\n", derr.message);
        abort();
    }
    addr = (struct sockaddr_in){.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)cfg.port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    pthread_t t;
    if (pthread_create(&t, NULL, serve, NULL) != 0)
        abort();
    pthread_detach(t);              /* serves until the process ends */
    for (int i = 0; i < 500; i++) { /* up to 5 s for it to listen */
        int fd = dial();
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        usleep(10000);
    }
    fprintf(stderr, "fuzz_http: the server did not start listening\n");
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = dial();
    if (fd < 0)
        abort(); /* the server died */
    size_t off = 0;
    while (off < size) {
        ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* the server may close early (a request it refused) */
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    char buf[65536];
    time_t deadline = time(NULL) + 30;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0)
            break;
        /* libFuzzer's watchdog (-timeout) raises SIGALRM every timeout/2+1 seconds, and a socket
         * call with SO_RCVTIMEO is never restarted after a signal: EINTR is not the server's
         * doing. (This was the "hang" of earlier runs: one every 31 s of fuzzing.) */
        if (n < 0 && errno == EINTR && time(NULL) < deadline)
            continue;
        /* the server closed with input of ours unread (a request it refused): the kernel's
         * reset ends the answer */
        if (n < 0 && errno == ECONNRESET)
            break;
        if (n < 0) {
            fprintf(stderr, "fuzz_http: no end of the answer within 30 s (%s)\n", strerror(errno));
            dump_metrics();
            const char *wait = getenv("FUZZ_HTTP_HANG_WAIT"); /* time to attach a debugger */
            /* the watchdog's SIGALRM ends a sleep() early: wait out the whole time */
            for (time_t until = time(NULL) + (wait ? atoi(wait) : 0); time(NULL) < until;)
                sleep(1);
            abort();
        }
    }
    close(fd);
    return 0;
}
