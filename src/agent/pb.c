/* protobuf-c helpers.  The agent builds its messages the way
 * protobuf_c_message_unpack would (all malloc'd), so one function frees
 * any of them and a message can change hands between threads. */
#define _GNU_SOURCE
#include "agent.h"

#include <stdlib.h>
#include <string.h>

char *pb_str(const char *s)
{
	if (s == NULL || *s == '\0')
		return (char *)protobuf_c_empty_string;
	char *d = strdup(s);
	if (d == NULL)
		abort();
	return d;
}

/* A deep copy, through the wire format: simple and always right. */
void *pb_clone(const ProtobufCMessage *m)
{
	if (m == NULL)
		return NULL;
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n ? n : 1);
	if (buf == NULL)
		abort();
	protobuf_c_message_pack(m, buf);
	ProtobufCMessage *c = protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
	free(buf);
	if (c == NULL)
		abort();
	return c;
}

void pb_free(void *m)
{
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (p == NULL)
		abort();
	return p;
}

Hsp__V1__AgentMessage *pb_result_msg(uint64_t id, int code, const char *message)
{
	Hsp__V1__AgentMessage *m = xmalloc(sizeof(*m));
	Hsp__V1__CommandResult *r = xmalloc(sizeof(*r));
	hsp__v1__agent_message__init(m);
	hsp__v1__command_result__init(r);
	r->id = id;
	r->code = code;
	r->message = pb_str(message);
	m->msg_case = HSP__V1__AGENT_MESSAGE__MSG_RESULT;
	m->result = r;
	return m;
}

const char *pb_code_name(int code)
{
	return hsp_rpc_code_name(code);
}
