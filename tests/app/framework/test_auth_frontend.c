/* The "done when": a real Better Auth server (npm better-auth, JWT plugin with its
 * defaults, tests/auth-frontend/server.mjs) and a frontend's calls (client.mjs: sign up, GET
 * /api/auth/token, then create/list/read/delete) against the framework's API configured as
 * docs/auth.md says (framework-api and its "items" resource, tests/app/framework/routes.c, so the
 * test does not depend on the Todo example). No code of either side knows about the other. The
 * npm packages come from the committed lockfile (tests/auth-frontend/install: npm ci, once). */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/app/apiclient.h"
#include "tests/app/framework/fw.h"
#include "tests/support/pgtest.h"

#define DIR PGTEST_SOURCE_DIR "/tests/auth-frontend"

static api_server srv;
static pid_t node_pid;
static char node_log[256];

static void up(void)
{
    char *out;
    int rc = pgtest_run(DIR "/install 2>&1", &out);
    cr_assert_eq(rc, 0, "tests/auth-frontend/install failed: %s", out);
    free(out);
    fw_prepare();
}

static void down(void)
{
    if (srv.pid > 0)
        cr_expect_eq(api_stop(&srv), 0, "api did not exit 0");
    if (node_pid > 0) {
        kill(node_pid, SIGTERM);
        waitpid(node_pid, NULL, 0);
    }
}

TestSuite(auth_frontend, .init = up, .fini = down, .timeout = 120);

/* Starts the Better Auth server on `port`; waits until its JWKS answers. */
static void start_better_auth(int port)
{
    snprintf(node_log, sizeof node_log, "/tmp/better-auth-%d-%d.log", (int)getpid(), port);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd " DIR " && PORT=%d exec node server.mjs >%s 2>&1", port,
             node_log);
    node_pid = fork();
    cr_assert(node_pid >= 0);
    if (node_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    double t0 = pgtest_now_ms();
    while (pgtest_now_ms() - t0 < 20000) {
        api_response *r = api_call(port, "GET", "/api/auth/jwks", NULL, NULL);
        int st = r->status;
        api_response_free(r);
        if (st == 200)
            return;
        usleep(100000);
    }
    char *out;
    snprintf(cmd, sizeof cmd, "cat %s", node_log);
    pgtest_run(cmd, &out);
    cr_assert_fail("Better Auth did not serve its JWKS within 20 s: %s", out);
}

Test(auth_frontend, better_auth_tokens_drive_the_api)
{
    int auth_port = pgtest_free_port();
    start_better_auth(auth_port);
    /* the settings docs/auth.md gives: JWKS, issuer and audience = BETTER_AUTH_URL; no secret */
    char env[512], *app = pgtest_app_url();
    snprintf(env, sizeof env,
             "JWT_SECRET= AUTH_JWKS_URL=http://127.0.0.1:%d/api/auth/jwks "
             "AUTH_ISSUER=http://127.0.0.1:%d AUTH_AUDIENCE=http://127.0.0.1:%d",
             auth_port, auth_port, auth_port);
    api_start_bin(&srv, "framework-api", app, env);
    free(app);
    char cmd[1024], *out;
    snprintf(cmd, sizeof cmd,
             "cd " DIR " && AUTH_URL=http://127.0.0.1:%d API_URL=http://127.0.0.1:%d "
             "timeout 60 node client.mjs 2>&1",
             auth_port, srv.port);
    int rc = pgtest_run(cmd, &out);
    if (rc != 0) {
        char *log = api_log(&srv);
        cr_assert_fail("client.mjs exit %d:\n%s\napi log:\n%s", rc, out, log);
    }
    cr_expect(strstr(out, "alg=EdDSA kid=yes"), "Better Auth's default is EdDSA with kid: %s", out);
    cr_expect(strstr(out, ": ok in "), "%s", out);
    fprintf(stderr, "%s", out);
    free(out);
}
