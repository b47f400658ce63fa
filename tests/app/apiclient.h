/* apiclient: what the app suites share: start the real `api` binary against this suite's database,
 * talk HTTP/1.1 to it over a plain socket, sign test tokens with libjwt, apply the migrations.
 * Failures abort the current test (cr_assert). Strings returned are malloc'd, owned by the caller.
 */
#ifndef TESTS_APP_APICLIENT_H
#define TESTS_APP_APICLIENT_H

#include <stdbool.h>
#include <sys/types.h>

#define TEST_SECRET "test-secret-0123456789abcdef0123456789abcdef"
/* api_start's METRICS_TOKEN, and the header GET /metrics needs with it */
#define TEST_METRICS_TOKEN "test-metrics-token-0123456789"
#define TEST_METRICS_AUTH "Authorization: Bearer " TEST_METRICS_TOKEN "\r\n"

typedef struct api_server {
    pid_t pid;
    int port;
    char log[600]; /* file with the server's stdout+stderr */
} api_server;

/* Applies migrations/ to the database at `url` with the real migrate binary (`migrate up`).
 * Idempotent. */
void api_migrate(const char *url);

/* Starts bin/api with DATABASE_URL=db_url, JWT_SECRET=TEST_SECRET,
 * METRICS_TOKEN=TEST_METRICS_TOKEN, a free port and `extra_env`
 * ("NAME=value NAME2=value", may be NULL); waits until /health answers (5 s at most). */
void api_start(api_server *s, const char *db_url, const char *extra_env);

/* api_start with another server binary of bin/ ("framework-api": tests/app/framework). */
void api_start_bin(api_server *s, const char *bin, const char *db_url, const char *extra_env);

/* SIGTERM, waits (10 s at most), returns the exit status. */
int api_stop(api_server *s);

/* The server's log so far (malloc'd). */
char *api_log(const api_server *s);

/* Waits (30 s at most: a hang guard) until the server's start-up schema check has logged its
 * outcome: it runs beside the loops after /health answers and borrows a pooled connection, so a
 * test counting database round trips or connections must not start before it is done. */
void api_wait_startup(const api_server *s);

typedef struct api_response {
    int status;
    char *head; /* status line and headers */
    char *body;
    double ms; /* wall time of the exchange */
} api_response;

/* One request on a fresh connection. `headers` are extra "Name: value\r\n" lines (may be NULL);
 * `body` may be NULL. Returns the response (api_response_free it); status 0 if the connection
 * failed or closed without a response. */
api_response *api_call(int port, const char *method, const char *path, const char *headers,
                       const char *body);

/* api_call with "Authorization: Bearer <token for sub>" (valid one hour). */
api_response *api_as(int port, const char *sub, const char *method, const char *path,
                     const char *body);

/* Value of a response header (case-insensitive name), malloc'd, or NULL. */
char *api_header(const api_response *r, const char *name);

void api_response_free(api_response *r);

/* api_response_free of each of the n responses (NULLs included). */
void api_response_free_all(size_t n, api_response *const r[]);

/* A token: alg "HS256", "HS512" or "none"; exp relative to now (0: no exp claim). */
char *api_token(const char *sub, const char *alg, const char *secret, long exp_in, long nbf_in);

/* A user id unique to this test run ("u-<pid>-<n>-<tag>"). */
char *api_user(const char *tag);

#endif
