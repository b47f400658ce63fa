/* wire: HTTP/1.1 on the server's sockets. Each accepted connection is read, framed and parsed
 * here, and each request is handed whole to the server's callback; the reply comes back as bytes
 * to write. One request per connection is in flight at a time: a pipelined client's next request
 * is parsed once the previous one was answered, so replies leave in order.
 *
 * Why not libevent's evhttp or a packaged parser: evhttp 2.1.12 frames bodies differently from a
 * strict proxy (the first of two Content-Length values, strtoll chunk sizes, no body for
 * "Transfer-Encoding: gzip, chunked"), answers its own errors as HTML with no hook before 2.2, and
 * resets its timeout on every byte; keeping it meant scanning every byte a second time beside it,
 * and it cost 10 us of CPU per request over a bare socket (bench/http-floor.sh). Debian's
 * http-parser (2.9) is archived upstream and, built non-strict, takes any two bytes after chunk
 * data. The rules here are RFC 9112's, strictly:
 *  - request line: method SP origin-form (or absolute-form, or "*") SP HTTP/1.0 or HTTP/1.1; empty
 *    lines before it are skipped (2.2); a bare CR anywhere in the head is a 400;
 *  - header fields: a token, ':' right after it, the value without surrounding blanks; no obs-fold
 *    (5.2), no control characters; the whole head within MAX_HEADER_BYTES, else 431 and close;
 *  - the body (6.3): Content-Length = 1*DIGIT, repeated only with the same value (RFC 9110 8.6);
 *    Transfer-Encoding exactly "chunked", never with Content-Length; chunk-size = 1*HEXDIG then
 *    ";" extensions or nothing, CRLF after each chunk's data (7.1); past MAX_BODY_BYTES, 413 from
 *    the head (or as soon as chunks pass it), before the body is buffered;
 *  - any of these errors is answered as JSON ({"detail": ...}, FastAPI's shape) and the
 *    connection is closed (9.6: the sending side shut, what the client still sends read and
 *    dropped for a few seconds, so the close does not destroy the answer with a reset);
 *  - READ_TIMEOUT counts from a request's first byte to its last (a client trickling bytes does not
 *    extend it), and bounds an idle keep-alive connection and a reply the client does not read;
 *  - MAX_CONNECTIONS: past it a new connection gets a 503 written to its socket and is closed.
 *
 * Thread: a connection lives on the loop thread that accepted it; every function below runs there
 * except wire_init and wire_connections. */
#ifndef APP_WIRE_H
#define APP_WIRE_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct wire_header {
    const char *name, *value; /* NUL-terminated; value without surrounding blanks */
} wire_header;

/* A request read whole. It and every string it points to belong to the connection and stay valid
 * until wire_reply. */
typedef struct wire_request {
    const char *method; /* "GET", "POST", ... as sent (a token) */
    const char *path;   /* the target's path, still percent-encoded; NULL for "*" and the like */
    const char *query;  /* after '?' (without a fragment), or NULL */
    const wire_header *headers;
    int nheaders;
    const char *body; /* NUL-terminated (the NUL is not counted); "" without a body */
    size_t body_len;
    int minor; /* HTTP/1.minor */
} wire_request;

/* The value of the first header field `name` (case-insensitive), or NULL. */
const char *wire_header_get(const wire_request *req, const char *name);

/* A request's head when a body follows it, before the body is read. Strings as in wire_request. */
typedef struct wire_head {
    const char *method, *target;
    const char *authorization, *origin, *request_id;
} wire_head;

/* Decides on a head before its body is read: NULL to go on, or a whole HTTP/1.1 response
 * (malloc'd, wire frees it) of *len bytes, which is sent instead; the connection is then closed,
 * the body never buffered. `owner` is wire_accept's. */
typedef char *(*wire_head_fn)(void *owner, const wire_head *head, size_t *len);

/* A request read whole: answer it with wire_reply, now or later (the connection waits). */
typedef void (*wire_request_fn)(void *owner, wire_request *req);

typedef struct wire_config {
    long max_connections;
    double read_timeout; /* seconds */
    size_t max_header_bytes, max_body_bytes;
    wire_request_fn on_request;
    wire_head_fn head_check; /* may be NULL */
} wire_config;

/* Keeps the configuration. Before the loops start. */
void wire_init(const wire_config *cfg);

/* Takes an accepted, non-blocking socket: served on `base` (its loop's), closed by wire. `owner`
 * goes to the callbacks. */
void wire_accept(struct event_base *base, evutil_socket_t fd, const struct sockaddr *peer,
                 socklen_t peer_len, void *owner);

/* Answers `req`: writes head (copied) then body (malloc'd, taken: freed once written; may be
 * NULL), and closes the connection after them when `close`. `req` is invalid afterwards. If the
 * client went away meanwhile, the bytes are dropped. */
void wire_reply(wire_request *req, const char *head, size_t head_len, char *body, size_t body_len,
                bool close);

/* True when the connection of `req` will close after its reply whatever the server says: the
 * client asked (Connection: close, HTTP/1.0 without keep-alive), or it stopped sending and no
 * further request of its is buffered. */
bool wire_closing(const wire_request *req);

/* Client connections open now, all loops. Any thread. */
long wire_connections(void);

/* Closes the calling loop thread's connections (idle, lingering or abandoned) and frees its state.
 * On that thread, after its loop stopped. */
void wire_thread_free(void);

#endif
