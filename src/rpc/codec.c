/* Messages in and out of grpc byte buffers, the send queue, metadata
 * copies. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

grpc_byte_buffer *hsp_rpc_pack(const ProtobufCMessage *msg)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	grpc_slice s = grpc_slice_malloc(n);
	protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
	/* The buffer holds its own reference. */
	grpc_slice_unref(s);
	return bb;
}

ProtobufCMessage *hsp_rpc_unpack(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb)
{
	grpc_byte_buffer_reader r;
	if (!grpc_byte_buffer_reader_init(&r, bb))
		return NULL; /* decompression failed */
	grpc_slice s = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	ProtobufCMessage *m =
	    protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
	grpc_slice_unref(s);
	return m;
}

char *hsp_rpc_slice_strdup(grpc_slice s)
{
	return strndup((const char *)GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s));
}

gpr_timespec hsp_rpc_deadline(int64_t ms_from_now)
{
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
			    gpr_time_from_millis(ms_from_now, GPR_TIMESPAN));
}

void hsp_rpc_status_clear(struct hsp_rpc_status *st)
{
	if (st == NULL)
		return;
	free(st->message);
	st->message = NULL;
	st->code = GRPC_STATUS_OK;
}

/* ------------------------------------------------------------ send queue */

struct hsp_rpc_sendq_item {
	struct hsp_rpc_sendq_item *next;
	grpc_byte_buffer *bb;
};

void hsp_rpc_sendq_init(struct hsp_rpc_sendq *q)
{
	q->head = NULL;
	q->tail = &q->head;
	q->bytes = 0;
}

int hsp_rpc_sendq_push(struct hsp_rpc_sendq *q, grpc_byte_buffer *bb)
{
	struct hsp_rpc_sendq_item *it = malloc(sizeof(*it));
	if (it == NULL)
		return -ENOMEM;
	it->next = NULL;
	it->bb = bb;
	*q->tail = it;
	q->tail = &it->next;
	q->bytes += grpc_byte_buffer_length(bb);
	return 0;
}

grpc_byte_buffer *hsp_rpc_sendq_pop(struct hsp_rpc_sendq *q)
{
	struct hsp_rpc_sendq_item *it = q->head;
	if (it == NULL)
		return NULL;
	q->head = it->next;
	if (q->head == NULL)
		q->tail = &q->head;
	grpc_byte_buffer *bb = it->bb;
	free(it);
	q->bytes -= grpc_byte_buffer_length(bb);
	return bb;
}

void hsp_rpc_sendq_clear(struct hsp_rpc_sendq *q)
{
	grpc_byte_buffer *bb;
	while ((bb = hsp_rpc_sendq_pop(q)) != NULL)
		grpc_byte_buffer_destroy(bb);
}

/* ------------------------------------------------------------ metadata */

int hsp_rpc_mdcopy_init(struct hsp_rpc_mdcopy *c, const grpc_metadata_array *md)
{
	c->n = 0;
	c->kv = NULL;
	if (md->count == 0)
		return 0;
	c->kv = calloc(2 * md->count, sizeof(char *));
	if (c->kv == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < md->count; i++) {
		c->kv[2 * i] = hsp_rpc_slice_strdup(md->metadata[i].key);
		c->kv[2 * i + 1] = hsp_rpc_slice_strdup(md->metadata[i].value);
		c->n++;
		if (c->kv[2 * i] == NULL || c->kv[2 * i + 1] == NULL)
			return -ENOMEM;
	}
	return 0;
}

const char *hsp_rpc_mdcopy_get(const struct hsp_rpc_mdcopy *c, const char *key)
{
	for (size_t i = 0; i < c->n; i++) {
		if (c->kv[2 * i] && strcmp(c->kv[2 * i], key) == 0)
			return c->kv[2 * i + 1];
	}
	return NULL;
}

void hsp_rpc_mdcopy_clear(struct hsp_rpc_mdcopy *c)
{
	for (size_t i = 0; i < 2 * c->n; i++)
		free(c->kv[i]);
	free(c->kv);
	c->kv = NULL;
	c->n = 0;
}

grpc_metadata *hsp_rpc_md_new(const struct hsp_rpc_md *md, size_t n)
{
	grpc_metadata *v = calloc(n ? n : 1, sizeof(*v));
	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		v[i].key = grpc_slice_from_copied_string(md[i].key);
		v[i].value = grpc_slice_from_copied_string(md[i].value);
	}
	return v;
}

void hsp_rpc_md_free(grpc_metadata *md, size_t n)
{
	if (md == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		grpc_slice_unref(md[i].key);
		grpc_slice_unref(md[i].value);
	}
	free(md);
}

const char *hsp_rpc_code_name(int code)
{
	static const char *const names[] = {
	    "OK",
	    "CANCELLED",
	    "UNKNOWN",
	    "INVALID_ARGUMENT",
	    "DEADLINE_EXCEEDED",
	    "NOT_FOUND",
	    "ALREADY_EXISTS",
	    "PERMISSION_DENIED",
	    "RESOURCE_EXHAUSTED",
	    "FAILED_PRECONDITION",
	    "ABORTED",
	    "OUT_OF_RANGE",
	    "UNIMPLEMENTED",
	    "INTERNAL",
	    "UNAVAILABLE",
	    "DATA_LOSS",
	    "UNAUTHENTICATED",
	};
	if (code < 0 || code >= (int)(sizeof(names) / sizeof(names[0])))
		return "UNKNOWN";
	return names[code];
}
