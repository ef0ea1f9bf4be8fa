/* What every public API handler does first and last: authenticate, and
 * answer while recording the call's latency for /metrics. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ctl.h"
#include "utils.h"

struct api_call {
	int64_t start_us;
};

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void observe(hsp_rpc_call_t *call, grpc_status_code code)
{
	struct api_call *a = hsp_rpc_call_get_data(call);
	if (a == NULL)
		return;
	metrics_observe(hsp_rpc_call_method(call), now_us() - a->start_us, code);
	a->start_us = 0;
}

bool api_begin(hsp_rpc_call_t *call, struct ctl_caller *who)
{
	struct api_call *a = calloc(1, sizeof(*a));
	if (a) {
		a->start_us = now_us();
		hsp_rpc_call_set_data(call, a, free);
	}
	if (caller_identify(call, who) == 0)
		return true;
	const char *auth = hsp_rpc_call_metadata(call, "authorization");
	api_fail(call, GRPC_STATUS_UNAUTHENTICATED,
		 auth ? "the bearer token is not valid (unknown, revoked or expired)"
		      : "no bearer token: send `authorization: Bearer <token>` metadata");
	return false;
}

void api_reply(hsp_rpc_call_t *call, const ProtobufCMessage *msg)
{
	struct api_call *a = hsp_rpc_call_get_data(call);
	if (a && a->start_us)
		observe(call, GRPC_STATUS_OK);
	hsp_rpc_call_send(call, msg);
}

void api_fail(hsp_rpc_call_t *call, grpc_status_code code, const char *fmt, ...)
{
	cleanup_free char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	struct api_call *a = hsp_rpc_call_get_data(call);
	if (a && a->start_us)
		observe(call, code);
	hsp_rpc_call_finish(call, code, "%s", msg ? msg : "error");
}
