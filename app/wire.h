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
 * (evhttp's own timeout is reset by every byte), and its head a check before the body is read
 * (wire_head_fn: a request without a valid token is answered 401 before its body is buffered). A
 * connection answered that way, or for bad framing, is closed as RFC 9112 9.6 asks: the answer
 * written, the sending side shut, and what the client still sends read and thrown away for a few
 * seconds, so that the close does not reset the connection before the client read the answer.
 * A connection is adopted once evhttp has set it
 * up: evhttp's callbacks on the bufferevent carry the evhttp_connection, which gets a close
 * callback that uncounts it.
 *
 * Thread: the callbacks run on the connection's loop thread; the count is atomic. */
#ifndef APP_WIRE_H
#define APP_WIRE_H

#include <event2/bufferevent.h>
#include <event2/event.h>

/* A request's head as its last line arrives, when a body follows and nothing else is in flight on
 * the connection: evhttp has not read the body (nor, usually, the head). Strings are
 * NUL-terminated, wire's, valid during the call; NULL when the head has no such line (or it was too
 * long). */
typedef struct wire_head {
    const char *method, *target;
    const char *authorization, *origin, *request_id;
} wire_head;

/* Decides on a head before its body is read: NULL to go on, or a whole HTTP/1.1 response
 * (malloc'd, wire frees it) of *len bytes, which is sent instead; the connection is then closed,
 * the body never buffered. `owner` is wire_bufferevent's. On the connection's loop thread. */
typedef char *(*wire_head_fn)(void *owner, const wire_head *head, size_t *len);

/* Reads the limits; head_check may be NULL. Returns 0, or -1 when out of memory. Before the loops
 * start. */
int wire_init(long max_connections, double request_timeout, wire_head_fn head_check);

/* Client connections open now, all loops. */
long wire_connections(void);

/* evhttp has read `req` whole: its connection's deadline stops until the next request's first
 * byte. On the loop thread. */
struct evhttp_request;
void wire_request_read(struct evhttp_request *req);

/* `req`'s response was handed to evhttp (evhttp_send_reply): the request is no longer in flight.
 * On the loop thread, before the send (req is freed by it). */
void wire_request_answered(struct evhttp_request *req);

/* Frees the calling loop thread's own state (its event is on that loop's base). */
void wire_thread_free(void);

/* A socket bufferevent (fd set later by evhttp) whose output is watched as above; NULL when out of
 * memory (evhttp then makes its own). `owner` goes to the head check. */
struct bufferevent *wire_bufferevent(struct event_base *base, void *owner);

#endif
