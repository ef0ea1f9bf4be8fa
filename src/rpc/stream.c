/* Client streams driven by a loop: server-streaming, bidi, and async
 * unary.
 *
 * The layer owns a stream: it is freed once on_close has run and every
 * batch it started has come back.  RECV_STATUS_ON_CLIENT runs from the
 * start; on_close waits for it and for the receive in flight, so every
 * message grpc delivered reaches on_message before on_close. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct hsp_rpc_stream {
	hsp_rpc_loop_t *loop;
	struct hsp_rpc_link link; /* in the loop's list until on_close */
	grpc_call *call;
	const ProtobufCMessageDescriptor *resp_desc;
	struct hsp_rpc_stream_cbs cbs;
	void *ud;
	int inflight; /* batches */

	grpc_metadata *md;
	size_t n_md;
	struct hsp_rpc_sendq sendq;
	grpc_byte_buffer *sending;
	bool send_busy, md_sent, close_wanted, close_sent;

	grpc_metadata_array initial, trailing;
	grpc_byte_buffer *recv_bb;
	bool recv_busy, initial_asked;

	grpc_status_code code;
	grpc_slice details;
	bool status_arrived, cancelled, closed;
	struct hsp_rpc_tag send_tag, recv_tag, status_tag;
};

static void stream_free(hsp_rpc_stream_t *s)
{
	hsp_rpc_sendq_clear(&s->sendq);
	if (s->call)
		grpc_call_unref(s->call);
	hsp_rpc_md_free(s->md, s->n_md);
	grpc_metadata_array_destroy(&s->initial);
	grpc_metadata_array_destroy(&s->trailing);
	grpc_slice_unref(s->details);
	free(s);
}

static void maybe_close(hsp_rpc_stream_t *s)
{
	if (!s->closed && s->status_arrived && !s->recv_busy) {
		s->closed = true;
		hsp_rpc_link_del(&s->link);
		struct hsp_rpc_status st = {.code = s->code};
		if (GRPC_SLICE_LENGTH(s->details))
			st.message = hsp_rpc_slice_strdup(s->details);
		s->cbs.on_close(s, &st, s->ud);
		hsp_rpc_status_clear(&st);
	}
	if (s->closed && s->inflight == 0)
		stream_free(s);
}

static int start_batch(hsp_rpc_stream_t *s, const grpc_op *ops, size_t n, struct hsp_rpc_tag *t)
{
	if (grpc_call_start_batch(s->call, ops, n, t, NULL) != GRPC_CALL_OK)
		return -EIO;
	s->inflight++;
	return 0;
}

/* ------------------------------------------------------------ sending */

static int pump(hsp_rpc_stream_t *s)
{
	if (s->status_arrived || s->send_busy)
		return 0;
	grpc_op ops[3] = {0};
	size_t n = 0;
	if (!s->md_sent) {
		ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
		ops[n].data.send_initial_metadata.count = s->n_md;
		ops[n++].data.send_initial_metadata.metadata = s->md;
	}
	grpc_byte_buffer *bb = hsp_rpc_sendq_pop(&s->sendq);
	if (bb) {
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = bb;
	}
	bool with_close = s->close_wanted && !s->close_sent && hsp_rpc_sendq_empty(&s->sendq);
	if (with_close)
		ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	if (n == 0)
		return 0;
	if (start_batch(s, ops, n, &s->send_tag) < 0) {
		if (bb)
			grpc_byte_buffer_destroy(bb);
		grpc_call_cancel_with_status(s->call, GRPC_STATUS_INTERNAL, "cannot send", NULL);
		return -EIO;
	}
	s->md_sent = true;
	s->close_sent |= with_close;
	s->sending = bb;
	s->send_busy = true;
	return 0;
}

static void send_done(struct hsp_rpc_tag *tag, bool ok)
{
	hsp_rpc_stream_t *s = container_of(tag, hsp_rpc_stream_t, send_tag);
	if (s->sending)
		grpc_byte_buffer_destroy(s->sending);
	s->sending = NULL;
	s->send_busy = false;
	s->inflight--;
	if (ok && !s->closed)
		pump(s);
	else
		hsp_rpc_sendq_clear(&s->sendq);
	if (ok && !s->closed && s->cbs.on_sent)
		s->cbs.on_sent(s, s->ud);
	maybe_close(s);
}

size_t hsp_rpc_stream_queued(const hsp_rpc_stream_t *s)
{
	return s->sendq.bytes;
}

int hsp_rpc_stream_send(hsp_rpc_stream_t *s, const ProtobufCMessage *msg)
{
	if (s->closed || s->cancelled || s->status_arrived)
		return -ECANCELED;
	if (s->close_wanted)
		return -EINVAL;
	grpc_byte_buffer *bb = hsp_rpc_pack(msg);
	if (bb == NULL)
		return -ENOMEM;
	if (hsp_rpc_sendq_push(&s->sendq, bb) < 0) {
		grpc_byte_buffer_destroy(bb);
		return -ENOMEM;
	}
	return pump(s);
}

int hsp_rpc_stream_close_send(hsp_rpc_stream_t *s)
{
	if (s->closed || s->cancelled || s->status_arrived)
		return -ECANCELED;
	s->close_wanted = true;
	return pump(s);
}

void hsp_rpc_stream_cancel(hsp_rpc_stream_t *s)
{
	if (s->closed || s->cancelled)
		return;
	s->cancelled = true;
	grpc_call_cancel(s->call, NULL);
}

void hsp_rpc_stream_cancel_all(hsp_rpc_loop_t *loop)
{
	struct hsp_rpc_link *head = hsp_rpc_loop_streams(loop);
	for (struct hsp_rpc_link *l = head->next; l != head; l = l->next)
		hsp_rpc_stream_cancel(container_of(l, hsp_rpc_stream_t, link));
}

/* ------------------------------------------------------------ receiving */

static int recv_start(hsp_rpc_stream_t *s)
{
	grpc_op ops[2] = {0};
	size_t n = 0;
	if (!s->initial_asked) {
		s->initial_asked = true;
		ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
		ops[n++].data.recv_initial_metadata.recv_initial_metadata = &s->initial;
	}
	ops[n].op = GRPC_OP_RECV_MESSAGE;
	ops[n++].data.recv_message.recv_message = &s->recv_bb;
	if (start_batch(s, ops, n, &s->recv_tag) < 0) {
		grpc_call_cancel_with_status(s->call, GRPC_STATUS_INTERNAL, "cannot receive", NULL);
		return -EIO;
	}
	s->recv_busy = true;
	return 0;
}

static void deliver(hsp_rpc_stream_t *s, grpc_byte_buffer *bb)
{
	ProtobufCMessage *msg = hsp_rpc_unpack(s->resp_desc, bb);
	if (msg == NULL) {
		s->cancelled = true;
		grpc_call_cancel_with_status(s->call, GRPC_STATUS_INTERNAL,
					     "a response does not decode", NULL);
		return;
	}
	if (s->cbs.on_message)
		s->cbs.on_message(s, msg, s->ud);
	protobuf_c_message_free_unpacked(msg, NULL);
}

static void recv_done(struct hsp_rpc_tag *tag, bool ok)
{
	hsp_rpc_stream_t *s = container_of(tag, hsp_rpc_stream_t, recv_tag);
	grpc_byte_buffer *bb = s->recv_bb;
	s->recv_bb = NULL;
	s->recv_busy = false;
	s->inflight--;
	if (ok && bb && !s->cancelled) {
		deliver(s, bb);
		/* A NULL buffer (end of stream) or a failure ends the reading. */
		if (!s->cancelled)
			recv_start(s);
	}
	if (bb)
		grpc_byte_buffer_destroy(bb);
	maybe_close(s);
}

static void status_done(struct hsp_rpc_tag *tag, bool ok)
{
	(void)ok;
	hsp_rpc_stream_t *s = container_of(tag, hsp_rpc_stream_t, status_tag);
	s->status_arrived = true;
	s->inflight--;
	hsp_rpc_sendq_clear(&s->sendq);
	maybe_close(s);
}

static int status_start(hsp_rpc_stream_t *s)
{
	grpc_op op = {.op = GRPC_OP_RECV_STATUS_ON_CLIENT};
	op.data.recv_status_on_client.trailing_metadata = &s->trailing;
	op.data.recv_status_on_client.status = &s->code;
	op.data.recv_status_on_client.status_details = &s->details;
	return start_batch(s, &op, 1, &s->status_tag);
}

/* ------------------------------------------------------------ open */

static hsp_rpc_stream_t *stream_new(hsp_rpc_loop_t *loop, const struct hsp_rpc_md *md, size_t n_md,
				    const ProtobufCMessage *first)
{
	hsp_rpc_stream_t *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->loop = loop;
	s->details = grpc_empty_slice();
	s->code = GRPC_STATUS_UNKNOWN;
	s->send_tag.done = send_done;
	s->recv_tag.done = recv_done;
	s->status_tag.done = status_done;
	hsp_rpc_link_init(&s->link);
	hsp_rpc_sendq_init(&s->sendq);
	grpc_metadata_array_init(&s->initial);
	grpc_metadata_array_init(&s->trailing);
	s->n_md = n_md;
	s->md = hsp_rpc_md_new(md, n_md);
	grpc_byte_buffer *bb = first ? hsp_rpc_pack(first) : NULL;
	if (s->md == NULL || (first && bb == NULL) ||
	    (bb && hsp_rpc_sendq_push(&s->sendq, bb) < 0)) {
		if (bb)
			grpc_byte_buffer_destroy(bb);
		stream_free(s);
		return NULL;
	}
	return s;
}

/* Status first: whatever happens next, the end is seen.  The initial
 * metadata goes out at once so the server sees the call even before a
 * first message. */
static int stream_start(hsp_rpc_stream_t *s)
{
	if (status_start(s) < 0)
		return -EIO;
	/* These cancel the call when they fail; on_close reports it. */
	recv_start(s);
	pump(s);
	return 0;
}

int hsp_rpc_stream_open(hsp_rpc_loop_t *loop, hsp_rpc_channel_t *ch, const char *path,
			enum hsp_rpc_kind kind, const ProtobufCMessage *first,
			const ProtobufCMessageDescriptor *resp_desc, const struct hsp_rpc_md *md,
			size_t n_md, unsigned deadline_ms, const struct hsp_rpc_stream_cbs *cbs,
			void *ud, hsp_rpc_stream_t **out, hsp_error_t *err)
{
	if ((kind != HSP_RPC_BIDI_STREAM && first == NULL) || resp_desc == NULL || cbs == NULL ||
	    cbs->on_close == NULL)
		return hsp_make_error(err, EINVAL,
				      "rpc: %s: request, response type and on_close needed", path);
	hsp_rpc_stream_t *s = stream_new(loop, md, n_md, first);
	if (s == NULL)
		return hsp_make_errno(err, ENOMEM, "rpc: %s", path);
	s->resp_desc = resp_desc;
	s->cbs = *cbs;
	s->ud = ud;
	s->close_wanted = kind != HSP_RPC_BIDI_STREAM;
	gpr_timespec deadline =
	    deadline_ms ? hsp_rpc_deadline(deadline_ms) : gpr_inf_future(GPR_CLOCK_REALTIME);
	s->call = grpc_channel_create_call(
	    hsp_rpc_channel_grpc(ch), NULL, GRPC_PROPAGATE_DEFAULTS, hsp_rpc_loop_cq(loop),
	    grpc_slice_from_static_string(path), NULL, deadline, NULL);
	if (stream_start(s) < 0) {
		stream_free(s);
		return hsp_make_error(err, EIO, "rpc: %s: cannot start the call", path);
	}
	hsp_rpc_link_add(hsp_rpc_loop_streams(loop), &s->link);
	*out = s;
	return 0;
}
