/* Server calls.
 *
 * Ownership: the handler's reference, one per daemon hsp_rpc_call_ref, and
 * one per grpc batch in flight.  RECV_CLOSE_ON_SERVER is the only
 * reliable end signal (cancel, deadline, vanished peer), so its reference
 * keeps the call alive until on_done has run.  It is started on arrival,
 * except for a unary call: there it waits until the handler returns
 * (nothing can happen to the call meanwhile, the loop is in the handler)
 * and goes into the reply's batch when the handler has answered, which
 * saves a batch and a completion per call.  Sends go through a queue with
 * one SEND_MESSAGE in flight; the status follows the last queued message,
 * in the same batch when it can. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_MS 60000

struct hsp_rpc_call {
	int refs;
	hsp_rpc_loop_t *loop;
	hsp_rpc_server_t *srv; /* NULL once over */
	const struct hsp_rpc_method *m;
	void *ud;
	grpc_call *call;
	char *path;
	struct hsp_rpc_mdcopy md;
	char *peer_cn;
	char *peer_cert; /* PEM, when peer_cn is set */
	const char *transport;
	void *data;
	void (*data_free)(void *data);
	int64_t arrived_ms;
	struct hsp_rpc_timer *max_timer;

	struct hsp_rpc_sendq sendq;
	grpc_byte_buffer *sending;
	grpc_status_code code;
	grpc_slice details;
	bool send_busy, md_sent, finishing, status_sent, over, reached;
	bool close_started, holding; /* holding: sends wait for the handler */

	grpc_byte_buffer *recv_bb;
	int cancelled;
	struct hsp_rpc_tag close_tag, send_tag, recv_tag, reply_tag;
};

hsp_rpc_call_t *hsp_rpc_call_ref(hsp_rpc_call_t *c)
{
	c->refs++;
	return c;
}

void hsp_rpc_call_unref(hsp_rpc_call_t *c)
{
	if (c == NULL || --c->refs > 0)
		return;
	if (c->data_free)
		c->data_free(c->data);
	hsp_rpc_sendq_clear(&c->sendq);
	if (c->call)
		grpc_call_unref(c->call);
	hsp_rpc_mdcopy_clear(&c->md);
	grpc_slice_unref(c->details);
	free(c->peer_cn);
	free(c->peer_cert);
	free(c->path);
	free(c);
}

bool hsp_rpc_call_is_over(const hsp_rpc_call_t *c)
{
	return c->over;
}

const char *hsp_rpc_call_metadata(const hsp_rpc_call_t *c, const char *key)
{
	return hsp_rpc_mdcopy_get(&c->md, key);
}

const char *hsp_rpc_call_peer_cn(const hsp_rpc_call_t *c)
{
	return c->peer_cn;
}

const char *hsp_rpc_call_peer_cert(const hsp_rpc_call_t *c)
{
	return c->peer_cert;
}

size_t hsp_rpc_call_queued(const hsp_rpc_call_t *c)
{
	return c->sendq.bytes;
}

const char *hsp_rpc_call_transport(const hsp_rpc_call_t *c)
{
	return c->transport;
}

const char *hsp_rpc_call_method(const hsp_rpc_call_t *c)
{
	return c->m ? c->m->path : c->path;
}

void hsp_rpc_call_set_data(hsp_rpc_call_t *c, void *data, void (*free_fn)(void *))
{
	c->data = data;
	c->data_free = free_fn;
}

void *hsp_rpc_call_get_data(const hsp_rpc_call_t *c)
{
	return c->data;
}

/* ------------------------------------------------------------ sending */

static void send_done(struct hsp_rpc_tag *tag, bool ok);
static void follow(hsp_rpc_call_t *c);

static int start_batch(hsp_rpc_call_t *c, const grpc_op *ops, size_t n, struct hsp_rpc_tag *tag)
{
	if (grpc_call_start_batch(c->call, ops, n, tag, NULL) != GRPC_CALL_OK)
		return -EIO;
	hsp_rpc_call_ref(c);
	return 0;
}

/* Starts the next send batch when the slot is free. */
static int pump(hsp_rpc_call_t *c)
{
	if (c->over || c->send_busy || c->status_sent || c->holding)
		return 0;
	grpc_op ops[4] = {0};
	size_t n = 0;
	if (!c->md_sent)
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	grpc_byte_buffer *bb = hsp_rpc_sendq_pop(&c->sendq);
	if (bb) {
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = bb;
	}
	bool with_status = c->finishing && hsp_rpc_sendq_empty(&c->sendq);
	if (with_status) {
		ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
		ops[n].data.send_status_from_server.status = c->code;
		ops[n++].data.send_status_from_server.status_details = &c->details;
	}
	bool with_close = with_status && !c->close_started;
	if (with_close) {
		ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
		ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
	}
	if (bb == NULL && !with_status)
		return 0;
	if (start_batch(c, ops, n, with_close ? &c->reply_tag : &c->send_tag) < 0) {
		if (bb)
			grpc_byte_buffer_destroy(bb);
		grpc_call_cancel_with_status(c->call, GRPC_STATUS_INTERNAL, "cannot send", NULL);
		if (with_close)
			follow(c);
		return -EIO;
	}
	c->close_started = c->close_started || with_close;
	c->md_sent = true;
	c->sending = bb;
	c->send_busy = true;
	c->status_sent = with_status;
	return 0;
}

static void send_done(struct hsp_rpc_tag *tag, bool ok)
{
	hsp_rpc_call_t *c = container_of(tag, hsp_rpc_call_t, send_tag);
	if (c->sending)
		grpc_byte_buffer_destroy(c->sending);
	c->sending = NULL;
	c->send_busy = false;
	/* A failed send means the call is dead; RECV_CLOSE reports it. */
	if (ok)
		pump(c);
	else
		hsp_rpc_sendq_clear(&c->sendq);
	hsp_rpc_call_unref(c);
}

int hsp_rpc_call_send(hsp_rpc_call_t *c, const ProtobufCMessage *msg)
{
	if (c->over)
		return -ECANCELED;
	if (c->finishing || c->m == NULL || msg->descriptor != c->m->response)
		return -EINVAL;
	grpc_byte_buffer *bb = hsp_rpc_pack(msg);
	if (bb == NULL)
		return -ENOMEM;
	if (hsp_rpc_sendq_push(&c->sendq, bb) < 0) {
		grpc_byte_buffer_destroy(bb);
		return -ENOMEM;
	}
	if (c->m->kind == HSP_RPC_UNARY) {
		c->finishing = true;
		c->code = GRPC_STATUS_OK;
	}
	return pump(c);
}

static int finish_v(hsp_rpc_call_t *c, grpc_status_code code, const char *fmt, va_list ap)
{
	if (c->finishing)
		return 0;
	if (c->over)
		return -ECANCELED;
	char *msg = NULL;
	if (fmt && vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	c->finishing = true;
	c->code = code;
	if (msg) {
		c->details = grpc_slice_from_copied_string(msg);
		free(msg);
	}
	return pump(c);
}

int hsp_rpc_call_finish(hsp_rpc_call_t *c, grpc_status_code code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = finish_v(c, code, fmt, ap);
	va_end(ap);
	return r;
}

void hsp_rpc_call_abort(hsp_rpc_call_t *c, grpc_status_code code, const char *msg)
{
	if (c->over || c->call == NULL)
		return;
	hsp_rpc_sendq_clear(&c->sendq);
	grpc_call_cancel_with_status(c->call, code, msg, NULL);
}

/* ------------------------------------------------------------ receiving */

static void close_done(struct hsp_rpc_tag *tag, bool ok)
{
	hsp_rpc_call_t *c = container_of(tag, hsp_rpc_call_t, close_tag);
	c->over = true;
	hsp_rpc_timer_stop(c->loop, c->max_timer);
	c->max_timer = NULL;
	hsp_rpc_sendq_clear(&c->sendq);
	if (c->srv)
		hsp_rpc_server_call_ends(c->srv);
	c->srv = NULL;
	if (c->reached && c->m->on_done)
		c->m->on_done(c, !ok || c->cancelled, c->ud);
	hsp_rpc_call_unref(c);
}

/* The reply's batch carried the close too: both halves end here. */
static void reply_done(struct hsp_rpc_tag *tag, bool ok)
{
	hsp_rpc_call_t *c = container_of(tag, hsp_rpc_call_t, reply_tag);
	hsp_rpc_call_ref(c); /* the batch held one reference; each half drops one */
	send_done(&c->send_tag, ok);
	close_done(&c->close_tag, ok);
}

static int recv_start(hsp_rpc_call_t *c);

static void recv_done(struct hsp_rpc_tag *tag, bool ok)
{
	hsp_rpc_call_t *c = container_of(tag, hsp_rpc_call_t, recv_tag);
	grpc_byte_buffer *bb = c->recv_bb;
	c->recv_bb = NULL;
	/* NULL: the client closed its side; nothing more to read. */
	if (ok && bb && !c->over && !c->finishing) {
		ProtobufCMessage *msg = hsp_rpc_unpack(c->m->request, bb);
		if (msg == NULL) {
			grpc_call_cancel_with_status(c->call, GRPC_STATUS_INVALID_ARGUMENT,
						     "message does not decode", NULL);
		} else {
			c->m->on_message(c, msg, c->ud);
			protobuf_c_message_free_unpacked(msg, NULL);
			if (!c->over && !c->finishing)
				recv_start(c);
		}
	}
	if (bb)
		grpc_byte_buffer_destroy(bb);
	hsp_rpc_call_unref(c);
}

/* A stream that cannot read is cancelled rather than left half deaf. */
static int recv_start(hsp_rpc_call_t *c)
{
	grpc_op op = {.op = GRPC_OP_RECV_MESSAGE};
	op.data.recv_message.recv_message = &c->recv_bb;
	int r = start_batch(c, &op, 1, &c->recv_tag);
	if (r < 0)
		grpc_call_cancel_with_status(c->call, GRPC_STATUS_INTERNAL, "cannot receive", NULL);
	return r;
}

/* Starts the close batch unless it runs already.  Never fails with a
 * fresh call; a call that cannot be followed is cancelled and ends at once. */
static void follow(hsp_rpc_call_t *c)
{
	if (c->close_started)
		return;
	c->close_started = true;
	grpc_op op = {.op = GRPC_OP_RECV_CLOSE_ON_SERVER};
	op.data.recv_close_on_server.cancelled = &c->cancelled;
	if (start_batch(c, &op, 1, &c->close_tag) == 0)
		return;
	grpc_call_cancel(c->call, NULL);
	hsp_rpc_call_ref(c); /* close_done drops the batch's reference */
	close_done(&c->close_tag, false);
}

/* ------------------------------------------------------------ arrival */

static bool prop_is(const grpc_auth_property *p, const char *v)
{
	return p && p->value_length == strlen(v) && memcmp(p->value, v, p->value_length) == 0;
}

static const grpc_auth_property *first_prop(grpc_auth_context *ac, const char *name)
{
	grpc_auth_property_iterator it = grpc_auth_context_find_properties_by_name(ac, name);
	return grpc_auth_property_iterator_next(&it);
}

static void read_auth(hsp_rpc_call_t *c)
{
	c->transport = "insecure";
	grpc_auth_context *ac = grpc_call_auth_context(c->call);
	if (ac == NULL)
		return;
	const grpc_auth_property *t = first_prop(ac, GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME);
	if (prop_is(t, GRPC_SSL_TRANSPORT_SECURITY_TYPE) ||
	    prop_is(t, GRPC_TLS_TRANSPORT_SECURITY_TYPE))
		c->transport = "tls";
	else if (prop_is(t, "local"))
		c->transport = "local";
	if (strcmp(c->transport, "tls") == 0 && grpc_auth_context_peer_is_authenticated(ac)) {
		const grpc_auth_property *cn = first_prop(ac, GRPC_X509_CN_PROPERTY_NAME);
		const grpc_auth_property *pem = first_prop(ac, GRPC_X509_PEM_CERT_PROPERTY_NAME);
		if (cn)
			c->peer_cn = strndup(cn->value, cn->value_length);
		if (cn && pem)
			c->peer_cert = strndup(pem->value, pem->value_length);
	}
	grpc_auth_context_release(ac);
}

static hsp_rpc_call_t *call_new(hsp_rpc_server_t *srv, struct hsp_rpc_arrival *a)
{
	hsp_rpc_call_t *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->refs = 1;
	c->loop = hsp_rpc_server_loop(srv);
	c->ud = hsp_rpc_server_ud(srv);
	c->m = a->m;
	c->call = a->call;
	c->arrived_ms = hsp_rpc_now_ms();
	c->details = grpc_empty_slice();
	c->close_tag.done = close_done;
	c->send_tag.done = send_done;
	c->recv_tag.done = recv_done;
	c->reply_tag.done = reply_done;
	hsp_rpc_sendq_init(&c->sendq);
	if (a->path)
		c->path = strdup(a->path);
	read_auth(c);
	if (hsp_rpc_mdcopy_init(&c->md, a->md) < 0 || (a->path && c->path == NULL)) {
		c->call = NULL;
		hsp_rpc_call_unref(c);
		return NULL;
	}
	return c;
}

static void max_time_passed(void *arg)
{
	hsp_rpc_call_t *c = arg;
	c->max_timer = NULL;
	/* Cancelling, not finishing: queued messages a slow client does not
	 * read must not hold the status back. */
	grpc_call_cancel_with_status(c->call, GRPC_STATUS_DEADLINE_EXCEEDED,
				     "the server's time limit for this call passed", NULL);
}

static void arm_max_time(hsp_rpc_call_t *c)
{
	unsigned max = c->m->max_ms;
	if (max == 0 && c->m->kind != HSP_RPC_BIDI_STREAM)
		max = DEFAULT_MAX_MS;
	if (max == 0 || c->over)
		return;
	c->max_timer = hsp_rpc_timer_start(c->loop, c->arrived_ms + max, max_time_passed, c);
}

static void dispatch(hsp_rpc_call_t *c, grpc_byte_buffer *payload)
{
	const struct hsp_rpc_method *m = c->m;
	if (m->kind == HSP_RPC_BIDI_STREAM) {
		c->reached = true;
		m->handler(c, NULL, c->ud);
		if (!c->over && !c->finishing)
			recv_start(c);
	} else {
		ProtobufCMessage *req = payload ? hsp_rpc_unpack(m->request, payload) : NULL;
		if (req == NULL) {
			hsp_rpc_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT,
					    "the request does not decode as %s", m->request->name);
			return;
		}
		c->reached = true;
		m->handler(c, req, c->ud);
		protobuf_c_message_free_unpacked(req, NULL);
	}
	arm_max_time(c);
}

void hsp_rpc_call_arrived(hsp_rpc_server_t *srv, struct hsp_rpc_arrival *a)
{
	hsp_rpc_call_t *c = call_new(srv, a);
	if (c == NULL) {
		grpc_call_cancel_with_status(a->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "no memory",
					     NULL);
		grpc_call_unref(a->call);
		return;
	}
	c->srv = srv;
	hsp_rpc_server_call_begins(srv);
	bool unary = !a->reject && c->m && c->m->kind == HSP_RPC_UNARY;
	if (!unary)
		follow(c);
	if (c->over)
		; /* could not be followed */
	else if (a->reject)
		hsp_rpc_call_finish(c, GRPC_STATUS_UNAVAILABLE, "the server is shutting down");
	else if (c->m == NULL)
		hsp_rpc_call_finish(c, GRPC_STATUS_UNIMPLEMENTED, "unknown method %s", c->path);
	else {
		c->holding = unary;
		dispatch(c, a->payload);
		c->holding = false;
		pump(c); /* an answer made in the handler, with the close */
		follow(c);
	}
	hsp_rpc_call_unref(c);
}
