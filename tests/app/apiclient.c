/* apiclient: see apiclient.h. A plain blocking socket client keeps the tests independent of
 * the server's own HTTP code. */
#include "tests/app/apiclient.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jwt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/support/pgtest.h"

void api_migrate(const char *url)
{
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd, "%s up --url '%s' --dir '%s'", pgtest_bin("migrate"), url,
             pgtest_source_path("migrations"));
    int rc = pgtest_run(cmd, &out);
    cr_assert_eq(rc, 0, "migrate up failed: %s", out);
    free(out);
}

static bool health_ok(int port)
{
    api_response *r = api_call(port, "GET", "/health", NULL, NULL);
    bool ok = r->status == 200;
    api_response_free(r);
    return ok;
}

void api_start(api_server *s, const char *db_url, const char *extra_env)
{
    api_start_bin(s, "api", db_url, extra_env);
}

void api_start_bin(api_server *s, const char *bin, const char *db_url, const char *extra_env)
{
    memset(s, 0, sizeof *s);
    s->port = pgtest_free_port();
    /* the log stays beside the suite in the build tree (ctest's working directory), where a failed
     * run can be read and `rm -rf build` takes it, not in /tmp */
    char cwd[512];
    if (!getcwd(cwd, sizeof cwd))
        snprintf(cwd, sizeof cwd, "/tmp");
    snprintf(s->log, sizeof s->log, "%s/apitest-%d-%d.log", cwd, (int)getpid(), s->port);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd /tmp && exec env -i PATH=/usr/bin:/bin LOG_FORMAT=json APP_ENV=production "
             "JWT_SECRET=%s METRICS_TOKEN=%s DATABASE_URL='%s' PORT=%d DB_ACQUIRE_TIMEOUT=2 "
             "DB_CONNECT_TIMEOUT=2 %s %s >%s 2>&1",
             TEST_SECRET, TEST_METRICS_TOKEN, db_url, s->port, extra_env ? extra_env : "",
             pgtest_bin(bin), s->log);
    s->pid = fork();
    cr_assert(s->pid >= 0);
    if (s->pid == 0) {
        /* a test that fails an assertion exits without api_stop(): the server must not outlive it
         * (the death signal survives the exec of sh and of the api) */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    double t0 = pgtest_now_ms();
    /* a wait, not a measure: an api built with sanitizers on a loaded machine starts slowly */
    while (pgtest_now_ms() - t0 < 30000) {
        if (health_ok(s->port))
            return;
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            char *log = api_log(s);
            cr_assert_fail("api exited at startup: %s", log);
        }
        usleep(10000);
    }
    char *log = api_log(s);
    cr_assert_fail("api did not answer /health within 30 s: %s", log);
}

int api_stop(api_server *s)
{
    if (s->pid <= 0)
        return -1;
    kill(s->pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 1000; i++) {
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        usleep(10000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &st, 0);
    s->pid = 0;
    return -1;
}

char *api_log(const api_server *s)
{
    char cmd[sizeof s->log + 16], *out;
    snprintf(cmd, sizeof cmd, "cat %s", s->log);
    pgtest_run(cmd, &out);
    return out;
}

void api_wait_startup(const api_server *s)
{
    double t0 = pgtest_now_ms();
    for (;;) {
        char *log = api_log(s);
        /* app/main.c check_schema: "database schema at|is behind ..." or "schema check ..." */
        bool done = strstr(log, "\"database schema ") || strstr(log, "\"schema check ");
        if (done || pgtest_now_ms() - t0 > 30000) {
            cr_assert(done, "no schema check in the log within 30 s: %s", log);
            free(log);
            return;
        }
        free(log);
        usleep(10000);
    }
}

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w, n -= (size_t)w;
    }
}

api_response *api_call(int port, const char *method, const char *path, const char *headers,
                       const char *body)
{
    api_response *r = calloc(1, sizeof *r);
    double t0 = pgtest_now_ms();
    int fd = connect_port(port);
    if (fd < 0) {
        r->head = strdup(""), r->body = strdup("");
        return r;
    }
    char *req;
    size_t blen = body ? strlen(body) : 0;
    int n = asprintf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s",
                     method, path, port, headers ? headers : "");
    cr_assert(n > 0);
    send_all(fd, req, strlen(req));
    free(req);
    char cl[64];
    snprintf(cl, sizeof cl, body ? "Content-Length: %zu\r\n\r\n" : "\r\n", blen);
    send_all(fd, cl, strlen(cl));
    if (body)
        send_all(fd, body, blen);
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    while (poll(&pfd, 1, 30000) > 0) {
        if (cap - len < 4096)
            buf = realloc(buf, cap *= 2);
        ssize_t got = recv(fd, buf + len, cap - len - 1, 0);
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    buf[len] = '\0';
    r->ms = pgtest_now_ms() - t0;
    char *sep = strstr(buf, "\r\n\r\n");
    if (sep) {
        *sep = '\0';
        r->body = strdup(sep + 4);
    } else {
        r->body = strdup("");
    }
    r->head = buf;
    sscanf(buf, "HTTP/1.%*d %d", &r->status);
    return r;
}

api_response *api_as(int port, const char *sub, const char *method, const char *path,
                     const char *body)
{
    char *tok = api_token(sub, "HS256", TEST_SECRET, 3600, 0);
    char hdr[1024];
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", tok);
    free(tok);
    return api_call(port, method, path, hdr, body);
}

char *api_header(const api_response *r, const char *name)
{
    size_t n = strlen(name);
    for (const char *line = strstr(r->head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (!strncasecmp(h, name, n) && h[n] == ':') {
            h += n + 1;
            while (*h == ' ')
                h++;
            const char *end = strstr(h, "\r\n");
            return strndup(h, end ? (size_t)(end - h) : strlen(h));
        }
    }
    return NULL;
}

void api_response_free(api_response *r)
{
    if (!r)
        return;
    free(r->head);
    free(r->body);
    free(r);
}

void api_response_free_all(size_t n, api_response *const r[])
{
    for (size_t i = 0; i < n; i++)
        api_response_free(r[i]);
}

char *api_token(const char *sub, const char *alg, const char *secret, long exp_in, long nbf_in)
{
    jwt_t *jwt;
    cr_assert_eq(jwt_new(&jwt), 0);
    long now = (long)time(NULL);
    if (sub)
        jwt_add_grant(jwt, "sub", sub);
    if (exp_in)
        jwt_add_grant_int(jwt, "exp", now + exp_in);
    if (nbf_in)
        jwt_add_grant_int(jwt, "nbf", now + nbf_in);
    jwt_alg_t a = !strcmp(alg, "HS512")  ? JWT_ALG_HS512
                  : !strcmp(alg, "none") ? JWT_ALG_NONE
                                         : JWT_ALG_HS256;
    cr_assert_eq(jwt_set_alg(jwt, a, a == JWT_ALG_NONE ? NULL : (const unsigned char *)secret,
                             a == JWT_ALG_NONE ? 0 : (int)strlen(secret)),
                 0);
    char *out = jwt_encode_str(jwt);
    jwt_free(jwt);
    cr_assert(out);
    return out;
}

char *api_user(const char *tag)
{
    static int n;
    char *u;
    cr_assert(asprintf(&u, "u-%d-%d-%s", (int)getpid(), ++n, tag) > 0);
    return u;
}
