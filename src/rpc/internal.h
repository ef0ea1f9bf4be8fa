/* Shared between the files of hsp-rpc; not part of its API. */
#ifndef HSP_RPC_INTERNAL_H
#define HSP_RPC_INTERNAL_H

#include <grpc/byte_buffer.h>
#include <grpc/grpc_security.h>
#include <stddef.h>

#include "rpc.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Every tag given to grpc points at one of these, embedded in the object
 * that owns the operation; done runs on the loop thread. */
struct hsp_rpc_tag {
	void (*done)(struct hsp_rpc_tag *tag, bool ok);
};

/* Intrusive doubly-linked list: the loop's servers and client streams. */
struct hsp_rpc_link {
	struct hsp_rpc_link *prev, *next;
};

void hsp_rpc_link_init(struct hsp_rpc_link *head);
void hsp_rpc_link_add(struct hsp_rpc_link *head, struct hsp_rpc_link *l);
void hsp_rpc_link_del(struct hsp_rpc_link *l);
static inline bool hsp_rpc_link_empty(const struct hsp_rpc_link *head)
{
	return head->next == head;
}

/* ---------------------------------------------------------------- loop */

struct hsp_rpc_timer;

grpc_completion_queue *hsp_rpc_loop_cq(hsp_rpc_loop_t *loop);
struct hsp_rpc_link *hsp_rpc_loop_servers(hsp_rpc_loop_t *loop);
struct hsp_rpc_link *hsp_rpc_loop_streams(hsp_rpc_loop_t *loop);
/* Handles completions, timers and posts until done(arg) is true: the
 * drains of server and loop shutdown. */
void hsp_rpc_loop_pump(hsp_rpc_loop_t *loop, bool (*done)(void *arg), void *arg);
/* Handle-based timers for the layer itself (no id lookup on cancel). */
struct hsp_rpc_timer *hsp_rpc_timer_start(hsp_rpc_loop_t *loop, int64_t due_ms,
					  void (*fn)(void *arg), void *arg);
void hsp_rpc_timer_stop(hsp_rpc_loop_t *loop, struct hsp_rpc_timer *t);
/* grpc_init plus the log routing, once per process. */
void hsp_rpc_grpc_init(void);

/* ---------------------------------------------------------------- codec */

/* protobuf-c message -> a byte buffer grpc can send (NULL on ENOMEM). */
grpc_byte_buffer *hsp_rpc_pack(const ProtobufCMessage *msg);
/* A received buffer -> message, NULL when it does not decode. */
ProtobufCMessage *hsp_rpc_unpack(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb);
char *hsp_rpc_slice_strdup(grpc_slice s);
gpr_timespec hsp_rpc_deadline(int64_t ms_from_now);

/* FIFO of packed messages waiting for the single SEND_MESSAGE slot. */
struct hsp_rpc_sendq_item;
struct hsp_rpc_sendq {
	struct hsp_rpc_sendq_item *head, **tail;
	size_t bytes; /* of the messages waiting */
};
void hsp_rpc_sendq_init(struct hsp_rpc_sendq *q);
int hsp_rpc_sendq_push(struct hsp_rpc_sendq *q, grpc_byte_buffer *bb);
grpc_byte_buffer *hsp_rpc_sendq_pop(struct hsp_rpc_sendq *q);
void hsp_rpc_sendq_clear(struct hsp_rpc_sendq *q);
static inline bool hsp_rpc_sendq_empty(const struct hsp_rpc_sendq *q)
{
	return q->head == NULL;
}

/* Request metadata copied out of grpc's array (keys and values). */
struct hsp_rpc_mdcopy {
	char **kv; /* key0, value0, key1, value1, … */
	size_t n;
};
int hsp_rpc_mdcopy_init(struct hsp_rpc_mdcopy *c, const grpc_metadata_array *md);
const char *hsp_rpc_mdcopy_get(const struct hsp_rpc_mdcopy *c, const char *key);
void hsp_rpc_mdcopy_clear(struct hsp_rpc_mdcopy *c);

/* Outgoing metadata as grpc wants it (copied slices). */
grpc_metadata *hsp_rpc_md_new(const struct hsp_rpc_md *md, size_t n);
void hsp_rpc_md_free(grpc_metadata *md, size_t n);

/* ---------------------------------------------------------------- creds */

grpc_server_credentials *hsp_rpc_server_creds(const struct hsp_rpc_creds *c, hsp_error_t *err);
grpc_channel_credentials *hsp_rpc_channel_creds(const struct hsp_rpc_creds *c, hsp_error_t *err);

/* A small builder for grpc_channel_args. */
#define HSP_RPC_MAX_ARGS 16
struct hsp_rpc_args {
	grpc_arg v[HSP_RPC_MAX_ARGS];
	grpc_channel_args a;
};
void hsp_rpc_args_int(struct hsp_rpc_args *args, const char *key, int value);
void hsp_rpc_args_str(struct hsp_rpc_args *args, const char *key, const char *value);
void hsp_rpc_server_args(struct hsp_rpc_args *args, const struct hsp_rpc_server_opts *o);
void hsp_rpc_channel_args(struct hsp_rpc_args *args, const struct hsp_rpc_channel_opts *o,
			  const struct hsp_rpc_creds *c);

/* ---------------------------------------------------------------- server calls */

/* What a request context hands to call.c when a call arrives. */
struct hsp_rpc_arrival {
	grpc_call *call;
	const struct hsp_rpc_method *m; /* NULL: not a registered method */
	grpc_metadata_array *md;
	grpc_byte_buffer *payload; /* unary and server-streaming only */
	const char *path;	   /* for unregistered methods */
	bool reject;		   /* the server is shutting down */
};

/* Takes over arrival->call; the server's live count covers it until the
 * call is over. */
void hsp_rpc_call_arrived(hsp_rpc_server_t *srv, struct hsp_rpc_arrival *a);
hsp_rpc_loop_t *hsp_rpc_server_loop(hsp_rpc_server_t *srv);
void *hsp_rpc_server_ud(hsp_rpc_server_t *srv);
void hsp_rpc_server_call_begins(hsp_rpc_server_t *srv);
void hsp_rpc_server_call_ends(hsp_rpc_server_t *srv);
void hsp_rpc_server_free_all(hsp_rpc_loop_t *loop);

grpc_channel *hsp_rpc_channel_grpc(hsp_rpc_channel_t *ch);

/* Client streams still open when the loop goes away. */
void hsp_rpc_stream_cancel_all(hsp_rpc_loop_t *loop);

#endif
