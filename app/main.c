/* api: the HTTP server's entry point. Reads the configuration, serves until SIGTERM/SIGINT. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/config.h"
#include "core/env.h"
#include "core/log.h"
#include "db/url.h"

static void on_request(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Content-Type", "application/json");
    struct evbuffer *body = evbuffer_new();
    const char *path = evhttp_request_get_uri(req);
    if (!strcmp(path, "/health") && evhttp_request_get_command(req) == EVHTTP_REQ_GET) {
        evbuffer_add_printf(body, "{\"status\":\"ok\"}");
        evhttp_send_reply(req, 200, "OK", body);
    } else {
        evbuffer_add_printf(body, "{\"detail\":\"Not Found\"}");
        evhttp_send_reply(req, 404, "Not Found", body);
    }
    evbuffer_free(body);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    log_info("received %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    event_base_loopexit(arg, NULL);
}

int main(void)
{
    char err[ENV_ERR_LEN];
    if (env_load_file(".env", err) < 0 || log_configure_from_env(err, sizeof err) < 0) {
        fprintf(stderr, "api: %s\n", err);
        return 2;
    }
    app_config cfg;
    if (app_config_load(&cfg, err, sizeof err) < 0) {
        log_error("%s", err);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    struct evhttp *http = evhttp_new(base);
    if (evhttp_bind_socket(http, cfg.host, (ev_uint16_t)cfg.port) != 0) {
        log_error("could not listen on %s:%d", cfg.host, cfg.port);
        return 1;
    }
    evhttp_set_gencb(http, on_request, NULL);
    struct event *term = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *intr = evsignal_new(base, SIGINT, on_signal, base);
    event_add(term, NULL);
    event_add(intr, NULL);
    char *masked = db_url_mask(cfg.database_url);
    log_info("listening on http://%s:%d (database %s)", cfg.host, cfg.port, masked);
    free(masked);
    event_base_dispatch(base);
    event_free(term);
    event_free(intr);
    evhttp_free(http);
    event_base_free(base);
    log_info("stopped");
    return 0;
}
