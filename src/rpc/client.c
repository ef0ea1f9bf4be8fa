/* Channels and the blocking unary call.
 *
 * A unary call runs on a pluck queue of its own: any thread may call at
 * any time, and no queue ever has more than one plucker (grpc busy-spins
 * beyond six).  Queues are kept on the channel between calls: making and
 * destroying one per call was 4.8k of the client's 86k instructions per
 * call.  A queue goes back only once its call's single batch has been
 * plucked and the call released, so it holds no event when reused. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_UNARY_DEADLINE_MS 30000

/* More idle queues than threads calling at once are never needed. */
#define MAX_IDLE_CQS 8

struct hsp_rpc_channel {
	grpc_channel *ch;
	pthread_mutex_t lock; /* guards the idle queues */
	grpc_completion_queue *idle[MAX_IDLE_CQS];
	size_t n_idle;
};

static void cq_destroy(grpc_completion_queue *cq)
{
	grpc_completion_queue_shutdown(cq);
	grpc_completion_queue_destroy(cq);
}

static grpc_completion_queue *cq_take(hsp_rpc_channel_t *ch)
{
	grpc_completion_queue *cq = NULL;
	pthread_mutex_lock(&ch->lock);
	if (ch->n_idle > 0)
		cq = ch->idle[--ch->n_idle];
	pthread_mutex_unlock(&ch->lock);
	return cq ? cq : grpc_completion_queue_create_for_pluck(NULL);
}

static void cq_give(hsp_rpc_channel_t *ch, grpc_completion_queue *cq)
{
	pthread_mutex_lock(&ch->lock);
	if (ch->n_idle < MAX_IDLE_CQS) {
		ch->idle[ch->n_idle++] = cq;
		cq = NULL;
	}
	pthread_mutex_unlock(&ch->lock);
	if (cq)
		cq_destroy(cq);
}

grpc_channel *hsp_rpc_channel_grpc(hsp_rpc_channel_t *ch)
{
	return ch->ch;
}

int hsp_rpc_channel_new(const char *target, const struct hsp_rpc_creds *creds,
			const struct hsp_rpc_channel_opts *opts, hsp_rpc_channel_t **out,
			hsp_error_t *err)
{
	hsp_rpc_channel_t *ch = calloc(1, sizeof(*ch));
	if (ch == NULL)
		return hsp_make_errno(err, ENOMEM, "rpc: channel");
	hsp_rpc_grpc_init();
	grpc_channel_credentials *cc = hsp_rpc_channel_creds(creds, err);
	if (cc == NULL) {
		free(ch);
		grpc_shutdown();
		return -EINVAL;
	}
	struct hsp_rpc_args args;
	hsp_rpc_channel_args(&args, opts, creds);
	pthread_mutex_init(&ch->lock, NULL);
	ch->ch = grpc_channel_create(target, cc, &args.a);
	grpc_channel_credentials_release(cc);
	*out = ch;
	return 0;
}

void hsp_rpc_channel_free(hsp_rpc_channel_t *ch)
{
	if (ch == NULL)
		return;
	grpc_channel_destroy(ch->ch);
	for (size_t i = 0; i < ch->n_idle; i++)
		cq_destroy(ch->idle[i]);
	pthread_mutex_destroy(&ch->lock);
	free(ch);
	grpc_shutdown();
}

/* ------------------------------------------------------------ unary */

struct unary {
	grpc_metadata *md;
	size_t n_md;
	grpc_byte_buffer *req, *resp;
	grpc_metadata_array initial, trailing;
	grpc_status_code code;
	grpc_slice details;
};

static grpc_call_error unary_start(grpc_call *call, struct unary *u, void *tag)
{
	grpc_op ops[6] = {0};
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = u->n_md;
	ops[0].data.send_initial_metadata.metadata = u->md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = u->req;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &u->initial;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &u->resp;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &u->trailing;
	ops[5].data.recv_status_on_client.status = &u->code;
	ops[5].data.recv_status_on_client.status_details = &u->details;
	return grpc_call_start_batch(call, ops, 6, tag, NULL);
}

/* The outcome as the caller sees it: an OK without a usable message is
 * the server's fault and says so. */
static void unary_result(struct unary *u, const ProtobufCMessageDescriptor *resp_desc,
			 ProtobufCMessage **resp, struct hsp_rpc_status *st)
{
	st->code = u->code;
	st->message = GRPC_SLICE_LENGTH(u->details) ? hsp_rpc_slice_strdup(u->details) : NULL;
	if (u->code != GRPC_STATUS_OK)
		return;
	if (u->resp)
		*resp = hsp_rpc_unpack(resp_desc, u->resp);
	if (*resp == NULL) {
		st->code = GRPC_STATUS_INTERNAL;
		st->message = u->resp ? strdup("the response does not decode")
				      : strdup("the server sent no response");
	}
}

static void unary_clear(struct unary *u)
{
	hsp_rpc_md_free(u->md, u->n_md);
	if (u->req)
		grpc_byte_buffer_destroy(u->req);
	if (u->resp)
		grpc_byte_buffer_destroy(u->resp);
	grpc_metadata_array_destroy(&u->initial);
	grpc_metadata_array_destroy(&u->trailing);
	grpc_slice_unref(u->details);
}

int hsp_rpc_unary(hsp_rpc_channel_t *ch, const char *path, const ProtobufCMessage *req,
		  const ProtobufCMessageDescriptor *resp_desc, const struct hsp_rpc_md *md,
		  size_t n_md, unsigned deadline_ms, ProtobufCMessage **resp,
		  struct hsp_rpc_status *st, hsp_error_t *err)
{
	struct unary u = {.n_md = n_md, .code = GRPC_STATUS_UNKNOWN};
	int r = 0;

	*resp = NULL;
	st->code = GRPC_STATUS_UNKNOWN;
	st->message = NULL;
	if (resp_desc == NULL || req == NULL)
		return hsp_make_error(err, EINVAL, "rpc: %s: request and response type needed",
				      path);
	u.details = grpc_empty_slice();
	grpc_metadata_array_init(&u.initial);
	grpc_metadata_array_init(&u.trailing);
	u.md = hsp_rpc_md_new(md, n_md);
	u.req = hsp_rpc_pack(req);
	if (u.md == NULL || u.req == NULL) {
		unary_clear(&u);
		return hsp_make_errno(err, ENOMEM, "rpc: %s", path);
	}

	grpc_completion_queue *cq = cq_take(ch);
	gpr_timespec deadline =
	    hsp_rpc_deadline(deadline_ms ? deadline_ms : DEFAULT_UNARY_DEADLINE_MS);
	grpc_call *call =
	    grpc_channel_create_call(ch->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
				     grpc_slice_from_static_string(path), NULL, deadline, NULL);
	grpc_call_error e = unary_start(call, &u, &u);
	if (e != GRPC_CALL_OK) {
		r = hsp_make_error(err, EINVAL, "rpc: %s: cannot start the call (%d)", path, e);
		goto out;
	}
	/* The call's deadline bounds the wait. */
	grpc_completion_queue_pluck(cq, &u, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	unary_result(&u, resp_desc, resp, st);
out:
	grpc_call_unref(call);
	cq_give(ch, cq);
	unary_clear(&u);
	return r;
}
