/* hsp-rpc: a thin layer over gRPC C core 1.51 and protobuf-c.
 *
 * One event loop per daemon (hsp_rpc_loop_t) owns one completion queue;
 * every callback below runs on the loop's thread, so daemon state needs no
 * locks.  Other threads talk to the loop only through hsp_rpc_loop_post()
 * and hsp_rpc_loop_stop().
 *
 * Errors: functions return 0 or a negative errno and fill an hsp_error_t
 * (src/runtime/error.h) with a one-line message, like the runtime.
 */
#ifndef HSP_RPC_H
#define HSP_RPC_H

#include <grpc/grpc.h>
#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct hsp_rpc_loop hsp_rpc_loop_t;
typedef struct hsp_rpc_server hsp_rpc_server_t;
typedef struct hsp_rpc_call hsp_rpc_call_t;
typedef struct hsp_rpc_channel hsp_rpc_channel_t;
typedef struct hsp_rpc_stream hsp_rpc_stream_t;

/* ------------------------------------------------------------ the loop */

/* Calls grpc_init() (refcounted by grpc) and routes grpc's own log lines
 * through gpr_set_log_function to stderr only at ERROR unless
 * HSP_RPC_VERBOSE is set. */
int hsp_rpc_loop_new(hsp_rpc_loop_t **loop, hsp_error_t *err);
/* Runs until hsp_rpc_loop_stop(); then returns 0.  Servers and streams
 * still open are shut down by hsp_rpc_loop_free, not here. */
int hsp_rpc_loop_run(hsp_rpc_loop_t *loop);
/* Thread-safe and async-signal-unsafe; wakes the loop. */
void hsp_rpc_loop_stop(hsp_rpc_loop_t *loop);
/* Thread-safe: runs fn(arg) on the loop's thread soon (FIFO). */
int hsp_rpc_loop_post(hsp_rpc_loop_t *loop, void (*fn)(void *arg), void *arg);
/* Loop thread only.  Runs fn(arg) once after ms milliseconds; returns a
 * timer id > 0 that hsp_rpc_timer_cancel accepts until it fires. */
uint64_t hsp_rpc_timer_add(hsp_rpc_loop_t *loop, unsigned ms, void (*fn)(void *arg), void *arg);
void hsp_rpc_timer_cancel(hsp_rpc_loop_t *loop, uint64_t id);
/* Shuts every server down (cancel all calls, drain), cancels client
 * streams, drains the queue, destroys it, grpc_shutdown(). NULL-safe. */
void hsp_rpc_loop_free(hsp_rpc_loop_t *loop);
/* Milliseconds on CLOCK_MONOTONIC. */
int64_t hsp_rpc_now_ms(void);

/* "NOT_FOUND" for GRPC_STATUS_NOT_FOUND; "UNKNOWN" for a code out of range. */
const char *hsp_rpc_code_name(int code);

/* ------------------------------------------------------------ credentials */

enum hsp_rpc_cred_kind {
	HSP_RPC_INSECURE, /* tests of the layer only */
	HSP_RPC_LOCAL,	  /* unix sockets: grpc's local (UDS) credentials */
	HSP_RPC_TLS,	  /* server: cert+key, client cert requested and verified
			     against ca when given, not required;
			     client: verifies the server against ca, presents
			     cert+key when given */
};

struct hsp_rpc_creds {
	enum hsp_rpc_cred_kind kind;
	const char *ca_pem;   /* PEM text */
	const char *cert_pem; /* PEM text */
	const char *key_pem;  /* PEM text */
	/* client TLS: the name the server certificate must carry (SAN);
	 * NULL = the host part of the target */
	const char *server_name;
};

/* ------------------------------------------------------------ server */

enum hsp_rpc_kind {
	HSP_RPC_UNARY,
	HSP_RPC_SERVER_STREAM,
	HSP_RPC_BIDI_STREAM,
};

struct hsp_rpc_method {
	const char *path; /* "/hsp.v1.Ves/Create" */
	enum hsp_rpc_kind kind;
	const ProtobufCMessageDescriptor *request;
	const ProtobufCMessageDescriptor *response;
	/* UNARY and SERVER_STREAM: called once with the decoded request
	 * (owned by the layer, valid during the callback only).  BIDI: called
	 * once with req == NULL when the call arrives, then on_message for
	 * every message.  The handler answers now or later through the call
	 * (take a reference to answer later).  A request that does not decode
	 * is answered INVALID_ARGUMENT by the layer without calling it. */
	void (*handler)(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud);
	/* BIDI only: one decoded message (valid during the callback only). */
	void (*on_message)(hsp_rpc_call_t *call, const ProtobufCMessage *msg, void *ud);
	/* Optional: the call ended (finished by us, cancelled by the client,
	 * its deadline or max_ms passed, the peer vanished, server shutdown).
	 * Called exactly once per call that reached the handler; after it the
	 * call accepts no more sends (they return -ECANCELED). */
	void (*on_done)(hsp_rpc_call_t *call, bool cancelled, void *ud);
	/* Server-side maximum lifetime; 0 = the layer's default (60 s for
	 * UNARY and SERVER_STREAM, none for BIDI).  When it passes, the layer
	 * finishes the call with DEADLINE_EXCEEDED. */
	unsigned max_ms;
};

struct hsp_rpc_server_opts {
	/* keepalive: ping interval and how long a ping may go unanswered
	 * before the connection is dropped; 0 = 10000/5000 */
	unsigned keepalive_ms;
	unsigned keepalive_timeout_ms;
	/* largest request accepted; 0 = 4 MiB */
	size_t max_message;
};

/* methods must outlive the server.  ud is given to every callback. */
int hsp_rpc_server_new(hsp_rpc_loop_t *loop, const struct hsp_rpc_method *methods, size_t n,
		       const struct hsp_rpc_server_opts *opts, void *ud, hsp_rpc_server_t **srv,
		       hsp_error_t *err);
/* "127.0.0.1:0", "[::]:7443", "unix:/run/hsp/controller.sock".  Returns the
 * bound port (>0) for TCP, 1 for unix, or -errno. Before start only. */
int hsp_rpc_server_listen(hsp_rpc_server_t *srv, const char *addr,
			  const struct hsp_rpc_creds *creds, hsp_error_t *err);
int hsp_rpc_server_start(hsp_rpc_server_t *srv, hsp_error_t *err);
/* Stops accepting, cancels every open call (on_done runs for each),
 * destroys the server.  Loop thread only.  NULL-safe. */
void hsp_rpc_server_free(hsp_rpc_server_t *srv);

/* A call is refcounted: the handler's reference ends when it returns;
 * hsp_rpc_call_ref keeps it for a later answer. */
hsp_rpc_call_t *hsp_rpc_call_ref(hsp_rpc_call_t *call);
void hsp_rpc_call_unref(hsp_rpc_call_t *call);

/* UNARY: sends resp and status OK.  Streams: queues one message; sends
 * are sent in order, one in flight at a time (the layer's send queue).
 * 0, -ECANCELED when the call is over, -EINVAL on a finished call. */
int hsp_rpc_call_send(hsp_rpc_call_t *call, const ProtobufCMessage *msg);
/* Ends the call with a status after queued messages are sent; for UNARY
 * with code != OK no message is sent.  Idempotent: later calls are
 * ignored.  msg may be NULL. */
int hsp_rpc_call_finish(hsp_rpc_call_t *call, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The call ended (finished or cancelled). */
bool hsp_rpc_call_is_over(const hsp_rpc_call_t *call);
/* Bytes of messages queued to a stream's client and not yet handed to
 * grpc: a client that reads slower than the server sends makes it grow. */
size_t hsp_rpc_call_queued(const hsp_rpc_call_t *call);
/* Ends the call now with code and msg, dropping what is queued (unlike
 * finish, which sends it first); on_done sees it cancelled. */
void hsp_rpc_call_abort(hsp_rpc_call_t *call, grpc_status_code code, const char *msg);
/* The value of a request metadata key (lower-case), or NULL. Copied at
 * arrival; valid while the call lives. */
const char *hsp_rpc_call_metadata(const hsp_rpc_call_t *call, const char *key);
/* The verified client certificate's CN, or NULL (no certificate). */
const char *hsp_rpc_call_peer_cn(const hsp_rpc_call_t *call);
/* That certificate as PEM, or NULL: who holds its key, not only its name. */
const char *hsp_rpc_call_peer_cert(const hsp_rpc_call_t *call);
/* "tls", "local" or "insecure": which kind of port the call came in on. */
const char *hsp_rpc_call_transport(const hsp_rpc_call_t *call);
const char *hsp_rpc_call_method(const hsp_rpc_call_t *call);
/* Per-call slot for the daemon; free_fn runs when the last reference goes. */
void hsp_rpc_call_set_data(hsp_rpc_call_t *call, void *data, void (*free_fn)(void *));
void *hsp_rpc_call_get_data(const hsp_rpc_call_t *call);

/* ------------------------------------------------------------ client */

struct hsp_rpc_channel_opts {
	unsigned keepalive_ms;	       /* 0 = no keepalive pings */
	unsigned keepalive_timeout_ms; /* 0 = 5000 */
	/* own connection even to a target another channel of this process
	 * uses (GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL): simulated agents */
	bool own_connection;
	size_t max_message; /* largest response accepted; 0 = 4 MiB */
	/* reconnect backoff bounds; 0 = grpc's defaults */
	unsigned min_reconnect_ms, max_reconnect_ms;
};

int hsp_rpc_channel_new(const char *target, const struct hsp_rpc_creds *creds,
			const struct hsp_rpc_channel_opts *opts, hsp_rpc_channel_t **ch,
			hsp_error_t *err);
void hsp_rpc_channel_free(hsp_rpc_channel_t *ch);

struct hsp_rpc_md {
	const char *key;
	const char *value;
};

/* The outcome of a call as the client saw it. */
struct hsp_rpc_status {
	grpc_status_code code;
	char *message; /* malloc'd, may be NULL; hsp_rpc_status_clear frees */
};
void hsp_rpc_status_clear(struct hsp_rpc_status *st);

/* Blocking unary call on its own completion queue (any thread, any number
 * at once).  On OK *resp is the decoded response (free with
 * protobuf_c_message_free_unpacked).  Returns 0 when the call completed
 * (whatever its status: look at st->code), -errno when it could not be
 * made at all. deadline_ms 0 = 30 s. */
int hsp_rpc_unary(hsp_rpc_channel_t *ch, const char *path, const ProtobufCMessage *req,
		  const ProtobufCMessageDescriptor *resp_desc, const struct hsp_rpc_md *md,
		  size_t n_md, unsigned deadline_ms, ProtobufCMessage **resp,
		  struct hsp_rpc_status *st, hsp_error_t *err);

/* A client stream driven by a loop (server-streaming or bidi).  For
 * SERVER_STREAM, first is the request; for BIDI, first may be NULL or the
 * first message.  on_message gets each decoded response (valid during the
 * callback only); on_close runs exactly once with the final status, after
 * which the stream is freed by the layer: the owner must drop its
 * pointer there.  deadline_ms 0 = none. */
struct hsp_rpc_stream_cbs {
	void (*on_message)(hsp_rpc_stream_t *s, const ProtobufCMessage *msg, void *ud);
	void (*on_close)(hsp_rpc_stream_t *s, const struct hsp_rpc_status *st, void *ud);
	/* Optional: a message has gone out (the queue is shorter). */
	void (*on_sent)(hsp_rpc_stream_t *s, void *ud);
};

int hsp_rpc_stream_open(hsp_rpc_loop_t *loop, hsp_rpc_channel_t *ch, const char *path,
			enum hsp_rpc_kind kind, const ProtobufCMessage *first,
			const ProtobufCMessageDescriptor *resp_desc, const struct hsp_rpc_md *md,
			size_t n_md, unsigned deadline_ms, const struct hsp_rpc_stream_cbs *cbs,
			void *ud, hsp_rpc_stream_t **s, hsp_error_t *err);
/* Queues a message (BIDI). 0 or -ECANCELED once the stream is closing. */
int hsp_rpc_stream_send(hsp_rpc_stream_t *s, const ProtobufCMessage *msg);
/* Half-close: no more messages from us (BIDI). */
int hsp_rpc_stream_close_send(hsp_rpc_stream_t *s);
/* Cancels; on_close follows with CANCELLED. */
void hsp_rpc_stream_cancel(hsp_rpc_stream_t *s);
/* Bytes of messages queued and not yet handed to grpc: what a sender
 * faster than the peer reads piles up (the layer does not bound it). */
size_t hsp_rpc_stream_queued(const hsp_rpc_stream_t *s);

#endif
