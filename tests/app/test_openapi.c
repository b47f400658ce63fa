/* /openapi.json passes a real OpenAPI linter: Redocly CLI's recommended ruleset (errors fail the
 * test; warnings are printed). Uses `redocly` when installed (npm install -g @redocly/cli@2),
 * else `npx --yes @redocly/cli@2` (npm registry, cached after the first run). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/app/apiclient.h"
#include "tests/support/pgtest.h"

Test(openapi, passes_redocly_lint, .timeout = 300)
{
    char *app = pgtest_app_url();
    api_server srv;
    api_start(&srv, app, NULL);
    free(app);
    api_response *r = api_call(srv.port, "GET", "/openapi.json", NULL, NULL);
    cr_assert_eq(r->status, 200);
    char path[128];
    snprintf(path, sizeof path, "/tmp/openapi-%d.json", (int)getpid());
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(r->body, f);
    fclose(f);
    api_response_free(r);
    cr_assert_eq(api_stop(&srv), 0);

    char cmd[1024], *out;
    snprintf(cmd, sizeof cmd,
             "cd /tmp && if command -v redocly >/dev/null; then lint='redocly'; "
             "else lint='npx --yes @redocly/cli@2'; fi; "
             "timeout 240 $lint lint --format=stylish %s",
             path);
    int rc = pgtest_run(cmd, &out);
    unlink(path);
    cr_assert_eq(rc, 0, "redocly lint failed (exit %d):\n%s", rc, out);
    cr_assert(strstr(out, "valid"), "%s", out);
    free(out);
}
