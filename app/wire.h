/* wire: a connection's bytes beside evhttp's parser, for what libevent 2.1.12 offers no hook.
 *
 * libevent answers some requests itself, before any callback of ours runs: a request line or
 * header it cannot parse (400), a body past evhttp_set_max_body_size (413), a method outside
 * evhttp_set_allowed_methods (501). Its pages are HTML (evhttp_send_error's fixed format), and
 * 2.1.12 has no error callback (evhttp_set_errorcb came in 2.2). The connection's bufferevent is
 * ours (evhttp_set_bevcb), so a callback on its output buffer sees each response as evhttp writes
 * it, before the socket does: a page of that format is replaced, head and body, by the API's JSON
 * error ({"detail": ...}, FastAPI's shape) with the same status and "Connection: close" (evhttp
 * closes the connection after it, as it would have after the page).
 *
 * It also counts the connections (MAX_CONNECTIONS: past it a new one gets a 503 written to its
 * socket and is closed) and gives each request READ_TIMEOUT from its first byte to be read whole
 * (evhttp's own timeout is reset by every byte). A connection is adopted once evhttp has set it
 * up: evhttp's callbacks on the bufferevent carry the evhttp_connection, which gets a close
 * callback that uncounts it.
 *
 * Thread: the callbacks run on the connection's loop thread; the count is atomic. */
#ifndef APP_WIRE_H
#define APP_WIRE_H

#include <event2/bufferevent.h>
#include <event2/event.h>

/* Reads the limits. Returns 0, or -1 when out of memory. Before the loops start. */
int wire_init(long max_connections, double request_timeout);

/* Client connections open now, all loops. */
long wire_connections(void);

/* evhttp has read `req` whole: its connection's deadline stops until the next request's first
 * byte. On the loop thread. */
struct evhttp_request;
void wire_request_read(struct evhttp_request *req);

/* Frees the calling loop thread's own state (its event is on that loop's base). */
void wire_thread_free(void);

/* A socket bufferevent (fd set later by evhttp) whose output is watched as above; NULL when out of
 * memory (evhttp then makes its own). */
struct bufferevent *wire_bufferevent(struct event_base *base);

#endif
