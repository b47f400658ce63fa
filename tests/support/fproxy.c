/* fproxy: see fproxy.h. */
#include "tests/support/fproxy.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db/url.h"

void fproxy_start(fproxy *p, const char *url)
{
    char *host = db_url_get(url, "host"), *port = db_url_get(url, "port");
    char upstream[300], pfile[] = "/tmp/fproxy-XXXXXX";
    snprintf(upstream, sizeof upstream, "%s:%s", host ? host : "127.0.0.1", port ? port : "5432");
    free(host), free(port);
    int fd = mkstemp(pfile);
    cr_assert(fd >= 0);
    close(fd);
    unlink(pfile);
    p->pid = fork();
    cr_assert(p->pid >= 0);
    if (p->pid == 0) {
        /* it dies with the test process, and never holds the test runner's output pipe open: a
         * test that fails before fproxy_stop must not leave ctest waiting for EOF */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
            _exit(127);
        execl(FAULTPROXY_BIN, "faultproxy", "--upstream", upstream, "--port-file", pfile,
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 250; i++) {
        FILE *f = fopen(pfile, "r");
        if (f) {
            int n = fscanf(f, "%d %d", &p->port, &p->control);
            fclose(f);
            unlink(pfile);
            cr_assert_eq(n, 2, "the port file has both ports");
            return;
        }
        usleep(20000);
    }
    cr_assert_fail("faultproxy did not write its port file");
}

char *fproxy_url(const fproxy *p, const char *url)
{
    char port[16];
    snprintf(port, sizeof port, "%d", p->port);
    char *host = db_url_get(url, "host");
    char *tmp = db_url_with(url, "port", port);
    char *out = tmp ? db_url_with(tmp, "host", host ? host : "127.0.0.1") : NULL;
    free(tmp), free(host);
    cr_assert(out, "the URL parses");
    return out;
}

const char *fproxy_cmd(const fproxy *p, const char *cmd)
{
    static char answer[256];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->control)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "the control port answers");
    dprintf(fd, "%s\n", cmd);
    size_t n = 0;
    while (n < sizeof answer - 1) {
        ssize_t r = read(fd, answer + n, 1);
        if (r <= 0 || answer[n] == '\n')
            break;
        n++;
    }
    answer[n] = '\0';
    close(fd);
    return answer;
}

long fproxy_stat(const fproxy *p, const char *name)
{
    const char *s = fproxy_cmd(p, "stats");
    char key[40];
    snprintf(key, sizeof key, " %s=", name);
    const char *at = strstr(s, key);
    cr_assert(at, "stats has %s: %s", name, s);
    return atol(at + strlen(key));
}

void fproxy_stop(fproxy *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        waitpid(p->pid, NULL, 0);
        p->pid = 0;
    }
}
